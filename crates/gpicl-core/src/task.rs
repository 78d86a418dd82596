//! Tasks and batches (paper §3): a task is a seed; from it come a random linear projection of
//! the inputs and a random permutation of the labels. Batches are CPU arrays; [`crate::tokens`]
//! turns them into the model's token sequences on a device.

use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::{Dataset, Error};
use burn::prelude::{Device, Tensor, TensorData};

/// Mixes two 64-bit values into a well-spread seed (SplitMix64 finaliser). Used to derive
/// independent seeds for named streams from one run seed.
pub fn mix_seed(a: u64, b: u64) -> u64 {
    fn splitmix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    splitmix(a ^ splitmix(b))
}

/// A seeded random generator, the project's one source of randomness.
pub fn rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

/// Where meta-training draws its tasks' projections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ProjectionSource {
    /// On the host, from each task's seeded stream ([`Task::from_seed`]), then uploaded: the
    /// tasks of every run before device draws, and of every evaluation set.
    #[default]
    Host,
    /// On the training device, from a counter-based generator keyed by each task's seed
    /// ([`crate::normals`]): nothing but the keys is uploaded, and the same tasks on every
    /// backend to within [`crate::normals::DEVICE_TOLERANCE`]. Other draws than `Host`'s (the
    /// same distribution), so other tasks from the same seeds; not with `low_rank`.
    Device,
}

/// One task: a projection from the dataset's feature width to the model's input width, and a
/// permutation of the labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    /// Row-major `n_in × d_in` matrix with entries drawn from N(0, 1/n_in); empty for a task
    /// whose projection is drawn on the device ([`Task::permutation_from_seed`]).
    pub projection: Vec<f32>,
    /// `permutation[y]` is the label the learner must output for true class `y`.
    pub permutation: Vec<u32>,
}

impl Task {
    /// The task of `seed` for datasets of width `n_in`, a model input of width `d_in` and
    /// `n_classes` labels. With `fixed_permutation` the labels are left unpermuted (the paper's
    /// bias intervention keeps the projection random but fixes the permutation).
    pub fn from_seed(
        seed: u64,
        n_in: usize,
        d_in: usize,
        n_classes: usize,
        fixed_permutation: bool,
    ) -> Self {
        let mut r = rng(seed);
        let scale = 1.0 / (n_in as f32).sqrt();
        let projection = (0..n_in * d_in)
            .map(|_| {
                let z: f32 = StandardNormal.sample(&mut r);
                z * scale
            })
            .collect();
        let mut permutation: Vec<u32> = (0..n_classes as u32).collect();
        if !fixed_permutation {
            permutation.shuffle(&mut r);
        }
        Self {
            projection,
            permutation,
        }
    }

    /// The task of `seed` as [`ProjectionSource::Device`] draws it: its permutation from a
    /// stream of its own, no projection (the device draws it, keyed by `seed`).
    pub fn permutation_from_seed(seed: u64, n_classes: usize, fixed_permutation: bool) -> Self {
        let mut permutation: Vec<u32> = (0..n_classes as u32).collect();
        if !fixed_permutation {
            permutation.shuffle(&mut rng(mix_seed(seed, 0x7065_726d)));
        }
        Self {
            projection: Vec::new(),
            permutation,
        }
    }
}

/// A random `n_in × d_in` projection of low rank (seeded): a bottleneck of rank `r`, drawn
/// log-uniformly from 1 to `min(n_in, d_in)`, as `U · V` with `U` from N(0, 1/n_in) and `V`
/// from N(0, 1/r), so its entries have the variance of [`Task::from_seed`]'s.
pub fn low_rank_projection(seed: u64, n_in: usize, d_in: usize) -> Vec<f32> {
    let mut r = rng(seed);
    let max = n_in.min(d_in).max(1) as f64;
    // exp(U · ln(max + 1)), floored: 1..=max, each rank about as likely as its log-width.
    let rank = ((max + 1.0).ln() * r.random::<f64>())
        .exp()
        .floor()
        .clamp(1.0, max) as usize;
    let mut normal = |scale: f32| -> f32 {
        let z: f32 = StandardNormal.sample(&mut r);
        z * scale
    };
    let u: Vec<f32> = (0..n_in * rank)
        .map(|_| normal(1.0 / (n_in as f32).sqrt()))
        .collect();
    let v: Vec<f32> = (0..rank * d_in)
        .map(|_| normal(1.0 / (rank as f32).sqrt()))
        .collect();
    let mut a = vec![0.0; n_in * d_in];
    for (i, row) in a.chunks_exact_mut(d_in).enumerate() {
        for k in 0..rank {
            let uik = u[i * rank + k];
            for (o, &vkj) in row.iter_mut().zip(&v[k * d_in..(k + 1) * d_in]) {
                *o += uik * vkj;
            }
        }
    }
    a
}

/// The prior random tables draw their labelling functions from ([`random_table`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TablePrior {
    /// A random one-hidden-layer tanh network of 16 units (near-linear to folded boundaries).
    #[default]
    Net,
    /// Each table one of four kinds, uniformly: the network above; a linear map (the class the
    /// largest of `k` random linear functions); a parity of 2 or 3 features thresholded (XOR-like,
    /// 2 classes, the other features noise); rings (the distance to a random centre cut into
    /// `k` bands of equal count).
    Mixed,
    /// The four kinds of [`TablePrior::Mixed`] over rows some of whose columns are categories,
    /// as a table's text columns reach the learner: one-hot, each slot standardised over the
    /// table's rows (`categorical_columns`).
    Categorical,
}

/// The labelling function of one random table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TableKind {
    Net,
    Linear,
    Parity,
    Rings,
}

/// A sequence of a random table (a task from a prior over tables, not from a dataset): `r`
/// features drawn from N(0, 1), labelled by a random function of them, seen through a random
/// projection and with the labels renamed, as a table's tasks are at evaluation.
///
/// From `seed`: the number of classes `k` (2 to `n_classes`, uniformly) and of features `r`
/// (1 to `n_in`, log-uniformly); the function, from `prior` ([`TablePrior`]; with
/// [`TablePrior::Net`], a random one-hidden-layer tanh network of 16 units with `k` outputs,
/// its weights scaled by `s` (log-uniform in 0.3…3: small `s` draws near-linear boundaries,
/// large `s` folded ones), an example's class its largest output, the outputs centred over
/// the sequence so that classes are not all one); the classes are renamed among the first `k`
/// labels. Returns the rows (`[seq_len, n_in]`, features past `r` zero), the projection
/// (`n_in × d_in`, rows past `r` zero, the rest from N(0, 1/r)) and the labels.
pub fn random_table(
    seed: u64,
    seq_len: usize,
    n_in: usize,
    d_in: usize,
    n_classes: usize,
    prior: TablePrior,
) -> (Vec<f32>, Vec<f32>, Vec<u32>) {
    let (x, labels, features, mut r) = table_rows(seed, seq_len, n_in, n_classes, prior);
    let projection = table_projection(&mut r, features, n_in, d_in);
    (x, projection, labels)
}

/// A random table's projection drawn on the host, from its stream after its rows: rows past
/// `features` zero, the rest from N(0, 1/features).
fn table_projection(r: &mut ChaCha8Rng, features: usize, n_in: usize, d_in: usize) -> Vec<f32> {
    let sd = 1.0 / (features as f32).sqrt();
    let mut projection = vec![0.0; n_in * d_in];
    for v in &mut projection[..features * d_in] {
        let z: f32 = StandardNormal.sample(r);
        *v = z * sd;
    }
    projection
}

/// A random table's rows and labels ([`random_table`]), the number of features in use, and
/// the table's stream where the projection's draws would start.
fn table_rows(
    seed: u64,
    seq_len: usize,
    n_in: usize,
    n_classes: usize,
    prior: TablePrior,
) -> (Vec<f32>, Vec<u32>, usize, ChaCha8Rng) {
    const HIDDEN: usize = 16;
    let mut r = rng(seed);
    let mut k = r.random_range(2..=n_classes.max(2));
    let features = ((n_in.max(1) as f64 + 1.0).ln() * r.random::<f64>())
        .exp()
        .floor()
        .clamp(1.0, n_in.max(1) as f64) as usize;
    let scale = (0.3f64.ln() + (10.0f64).ln() * r.random::<f64>()).exp() as f32;
    let kind = match prior {
        TablePrior::Net => TableKind::Net,
        TablePrior::Mixed | TablePrior::Categorical => [
            TableKind::Net,
            TableKind::Linear,
            TableKind::Parity,
            TableKind::Rings,
        ][r.random_range(0..4)],
    };
    if kind == TableKind::Parity {
        k = 2;
    }
    let normal = |r: &mut ChaCha8Rng, sd: f32| -> f32 {
        let z: f32 = StandardNormal.sample(r);
        z * sd
    };
    let normals = |r: &mut ChaCha8Rng, n: usize, sd: f32| -> Vec<f32> {
        (0..n).map(|_| normal(r, sd)).collect()
    };
    // The rows: `features` values from N(0, 1), the rest zero. Each kind draws its function's
    // parameters first, then the rows (the order the `Net` prior has always drawn).
    let draw_rows = |r: &mut ChaCha8Rng| -> Vec<f32> {
        let mut x = vec![0.0; seq_len * n_in];
        for row in x.chunks_exact_mut(n_in) {
            for v in &mut row[..features] {
                *v = normal(r, 1.0);
            }
        }
        if prior == TablePrior::Categorical {
            categorical_columns(r, &mut x, n_in, features);
        }
        x
    };
    // Each row's features in use.
    fn used(x: &[f32], n_in: usize, features: usize) -> impl Iterator<Item = &[f32]> {
        x.chunks_exact(n_in).map(move |row| &row[..features])
    }
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(a, b)| a * b).sum::<f32>();
    let (x, classes): (Vec<f32>, Vec<usize>) = match kind {
        TableKind::Net => {
            let w1 = normals(&mut r, HIDDEN * features, scale / (features as f32).sqrt());
            let b1 = normals(&mut r, HIDDEN, scale * 0.5);
            let w2 = normals(&mut r, k * HIDDEN, 1.0 / (HIDDEN as f32).sqrt());
            let x = draw_rows(&mut r);
            let out = used(&x, n_in, features)
                .flat_map(|row| {
                    let h: Vec<f32> = (0..HIDDEN)
                        .map(|u| (dot(&w1[u * features..(u + 1) * features], row) + b1[u]).tanh())
                        .collect();
                    (0..k)
                        .map(|c| dot(&w2[c * HIDDEN..(c + 1) * HIDDEN], &h))
                        .collect::<Vec<_>>()
                })
                .collect();
            (x, largest_centred(out, k))
        }
        TableKind::Linear => {
            let w = normals(&mut r, k * features, 1.0);
            let x = draw_rows(&mut r);
            let out = used(&x, n_in, features)
                .flat_map(|row| {
                    (0..k)
                        .map(|c| dot(&w[c * features..(c + 1) * features], row))
                        .collect::<Vec<_>>()
                })
                .collect();
            (x, largest_centred(out, k))
        }
        TableKind::Parity => {
            let m = r.random_range(2..=3).min(features);
            let thresholds = normals(&mut r, m, 0.5);
            let x = draw_rows(&mut r);
            let classes = used(&x, n_in, features)
                .map(|row| thresholds.iter().zip(row).filter(|(t, v)| v > t).count() % 2)
                .collect();
            (x, classes)
        }
        TableKind::Rings => {
            let centre = normals(&mut r, features, 0.5);
            let x = draw_rows(&mut r);
            let distance: Vec<f32> = used(&x, n_in, features)
                .map(|row| {
                    row.iter()
                        .zip(&centre)
                        .map(|(v, c)| (v - c) * (v - c))
                        .sum()
                })
                .collect();
            // Bands of equal count: an example's band is its distance's rank cut into k.
            let mut order: Vec<usize> = (0..distance.len()).collect();
            order.sort_by(|&a, &b| distance[a].total_cmp(&distance[b]));
            let mut band = vec![0; distance.len()];
            for (rank, &i) in order.iter().enumerate() {
                band[i] = rank * k / distance.len().max(1);
            }
            (x, band)
        }
    };
    let mut names: Vec<u32> = (0..k as u32).collect();
    names.shuffle(&mut r);
    let labels = classes.into_iter().map(|c| names[c]).collect();
    (x, labels, features, r)
}

/// Makes some of the first `features` columns of the rows `x` (row-major, `n_in` wide) one
/// categorical column each, as the CSV reader makes a text column ([`crate::parse::parse_csv`])
/// and [`Dataset::prepared`] standardises it: the table draws a share `p` (uniform in 0…1);
/// slot after slot, with probability `p` the next 2…6 slots become one column of as many
/// categories (their frequencies random), one-hot, each slot standardised over the rows (a
/// slot all one value is 0).
fn categorical_columns(r: &mut ChaCha8Rng, x: &mut [f32], n_in: usize, features: usize) {
    let rows = (x.len() / n_in).max(1) as f32;
    let share: f64 = r.random();
    let mut j = 0;
    while j < features {
        let q = r.random_range(2..=6usize).min(features - j);
        if q < 2 || r.random::<f64>() >= share {
            j += 1;
            continue;
        }
        // Category frequencies: exponential weights, so some categories are rare.
        let weights: Vec<f64> = (0..q).map(|_| -r.random::<f64>().max(1e-9).ln()).collect();
        let total: f64 = weights.iter().sum();
        for row in x.chunks_exact_mut(n_in) {
            let mut u = r.random::<f64>() * total;
            let mut category = q - 1;
            for (c, w) in weights.iter().enumerate() {
                if u < *w {
                    category = c;
                    break;
                }
                u -= w;
            }
            for (c, v) in row[j..j + q].iter_mut().enumerate() {
                *v = if c == category { 1.0 } else { 0.0 };
            }
        }
        for column in j..j + q {
            let mean = x.chunks_exact(n_in).map(|row| row[column]).sum::<f32>() / rows;
            let variance = x
                .chunks_exact(n_in)
                .map(|row| (row[column] - mean) * (row[column] - mean))
                .sum::<f32>()
                / rows;
            let sd = variance.sqrt();
            for row in x.chunks_exact_mut(n_in) {
                row[column] = if sd > 0.0 {
                    (row[column] - mean) / sd
                } else {
                    0.0
                };
            }
        }
        j += q;
    }
}

/// For each row of `k` outputs (`out`, row-major), the class whose output is largest once each
/// output is centred over all the rows (so that no class is empty for a constant offset).
fn largest_centred(mut out: Vec<f32>, k: usize) -> Vec<usize> {
    let rows = (out.len() / k).max(1) as f32;
    for c in 0..k {
        let mean = out.iter().skip(c).step_by(k).sum::<f32>() / rows;
        for v in out.iter_mut().skip(c).step_by(k) {
            *v -= mean;
        }
    }
    out.chunks_exact(k)
        .map(|o| (0..k).fold(0, |b, c| if o[c] > o[b] { c } else { b }))
        .collect()
}

/// Which classes a training sequence draws its examples from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceClasses {
    /// All the dataset's classes, renamed by the task among the learner's labels.
    All,
    /// `k` classes chosen at random for the sequence (a "bursty" sequence: fewer classes,
    /// more examples of each in context), renamed as for [`SequenceClasses::All`].
    Some(usize),
    /// A number of classes `k` drawn uniformly from 2 to all, `k` classes chosen at random,
    /// renamed among the first `k` labels (in the order the task's permutation gives them):
    /// the tasks a k-class dataset gives at evaluation.
    Varied,
}

/// Where the meta-training tasks come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskPool {
    /// A finite pool of `2^log2` task seeds (few tasks → memorisation).
    Finite {
        /// Base-2 logarithm of the number of tasks.
        log2: u32,
    },
    /// A fresh task for every sequence.
    Unlimited,
}

impl TaskPool {
    /// The number of tasks, `None` when unlimited.
    pub fn size(&self) -> Option<u64> {
        match *self {
            TaskPool::Finite { log2 } => Some(1u64 << log2.min(63)),
            TaskPool::Unlimited => None,
        }
    }
}

/// Sequences of examples with task-transformed labels, kept on the CPU.
///
/// The projection is applied on the device (one batched matmul), so `x` holds raw features.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// Sequences in the batch.
    pub batch_size: usize,
    /// Examples per sequence.
    pub seq_len: usize,
    /// Dataset feature width.
    pub n_in: usize,
    /// Model input width (projection output).
    pub d_in: usize,
    /// Raw features, `[batch, seq, n_in]`; empty where the trainer gathers the examples on
    /// the device from [`Batch::indices`] ([`TaskSampler::set_examples_on_device`]).
    pub x: Vec<f32>,
    /// One projection per sequence, `n_in × d_in` each.
    pub projection: Projections,
    /// Permuted labels (the targets), `[batch, seq]`.
    pub labels: Vec<u32>,
    /// Which example of the dataset stands at each place, `[batch, seq]` (`usize::MAX` in a
    /// random table's sequence, [`random_table`]).
    pub indices: Vec<usize>,
}

/// A batch's projections, one `n_in × d_in` matrix per sequence.
#[derive(Debug, Clone, PartialEq)]
pub enum Projections {
    /// Drawn on the host, `[batch, n_in, d_in]` ([`ProjectionSource::Host`]).
    Values(Vec<f32>),
    /// Drawn where the batch is encoded ([`ProjectionSource::Device`]): sequence `b`'s entry
    /// `(i, j)` is `row_scale[b · n_in + i] · normals(keys[b], n_in · d_in)[i · d_in + j]`
    /// ([`crate::normals`]).
    Drawn {
        /// One stream per sequence.
        keys: Vec<u64>,
        /// Per sequence and input row, the scale of that row's entries, `[batch, n_in]`.
        row_scale: Vec<f32>,
    },
}

impl Projections {
    /// Sequence `b`'s matrix, row-major `n_in × d_in`, on the host.
    pub fn of(&self, b: usize, n_in: usize, d_in: usize) -> Vec<f32> {
        match self {
            Projections::Values(v) => v[b * n_in * d_in..(b + 1) * n_in * d_in].to_vec(),
            Projections::Drawn { keys, row_scale } => {
                let mut a = crate::normals::normals(keys[b], n_in * d_in);
                for (row, s) in a.chunks_exact_mut(d_in).zip(&row_scale[b * n_in..]) {
                    row.iter_mut().for_each(|v| *v *= s);
                }
                a
            }
        }
    }

    /// All of them as one `[batch, n_in, d_in]` tensor on `device`: values uploaded; keys drawn
    /// on a GPU ([`crate::normals::normals_on`]), or on the host and uploaded where the device
    /// is the CPU (Flex: the host's draws, in parallel, are faster than its element-wise
    /// kernels) and in the browser (the page's module keeps no integer kernels for this).
    pub fn to_device(&self, batch: usize, n_in: usize, d_in: usize, device: &Device) -> Tensor<3> {
        let upload = |values: Vec<f32>| {
            Tensor::<3>::from_data(TensorData::new(values, [batch, n_in, d_in]), device)
        };
        match self {
            Projections::Values(v) => upload(v.clone()),
            Projections::Drawn { .. } => match self.drawn_on(batch, n_in, d_in, device) {
                Some(a) => a,
                None => {
                    let drawn =
                        crate::map_indexed((0..batch).collect(), |_, b| self.of(b, n_in, d_in));
                    upload(drawn.concat())
                }
            },
        }
    }

    /// Keyed projections drawn on `device` itself, natively on a GPU; `None` elsewhere.
    #[cfg(not(target_family = "wasm"))]
    fn drawn_on(
        &self,
        batch: usize,
        n_in: usize,
        d_in: usize,
        device: &Device,
    ) -> Option<Tensor<3>> {
        let Projections::Drawn { keys, row_scale } = self else {
            return None;
        };
        if crate::kernels::on_flex(device) {
            return None;
        }
        let a = crate::normals::normals_on(keys, n_in * d_in, device).reshape([batch, n_in, d_in]);
        let scale =
            Tensor::<3>::from_data(TensorData::new(row_scale.clone(), [batch, n_in, 1]), device);
        Some(a * scale)
    }

    /// In the browser the host draws them (see [`Projections::to_device`]).
    #[cfg(target_family = "wasm")]
    fn drawn_on(&self, _: usize, _: usize, _: usize, _: &Device) -> Option<Tensor<3>> {
        None
    }
}

/// Projects one raw input row (`n_in` values) by a task's row-major `n_in × d_in` projection
/// ([`Task::projection`]) on the CPU.
pub fn project(projection: &[f32], x: &[f32], d_in: usize) -> Vec<f32> {
    let mut out = vec![0.0; d_in];
    for (&xi, row) in x.iter().zip(projection.chunks_exact(d_in)) {
        for (o, a) in out.iter_mut().zip(row) {
            *o += xi * a;
        }
    }
    out
}

impl Batch {
    /// Sequence `b`'s projected inputs `A·x`, `[seq, d_in]`: what the learner sees of each
    /// example (computed on the CPU, for baselines; training projects on the device).
    pub fn projected(&self, b: usize) -> Vec<f32> {
        let (n, d) = (self.n_in, self.d_in);
        let a = &self.projection.of(b, n, d);
        self.x[b * self.seq_len * n..(b + 1) * self.seq_len * n]
            .chunks_exact(n)
            .flat_map(|x| project(a, x, d))
            .collect()
    }

    /// Builds a batch: sequence `b` uses `tasks[b]` and examples drawn uniformly (with
    /// replacement) from `data` by `rng`.
    pub fn sample(
        data: &Dataset,
        tasks: &[Task],
        seq_len: usize,
        d_in: usize,
        rng: &mut ChaCha8Rng,
    ) -> Self {
        Self::sample_classes(data, tasks, seq_len, d_in, SequenceClasses::All, rng)
    }

    /// Like [`Batch::sample`], each sequence drawing its examples from the classes `classes`
    /// says.
    pub fn sample_classes(
        data: &Dataset,
        tasks: &[Task],
        seq_len: usize,
        d_in: usize,
        classes: SequenceClasses,
        rng: &mut ChaCha8Rng,
    ) -> Self {
        Self::sample_from(data, tasks, seq_len, d_in, classes, true, rng)
    }

    /// [`Batch::sample_classes`], copying the examples' features into [`Batch::x`] only if
    /// `copy_x` (the same draws either way).
    fn sample_from(
        data: &Dataset,
        tasks: &[Task],
        seq_len: usize,
        d_in: usize,
        classes: SequenceClasses,
        copy_x: bool,
        rng: &mut ChaCha8Rng,
    ) -> Self {
        let grouped = || {
            let mut by_class = vec![Vec::new(); data.n_classes];
            for (i, &y) in data.labels.iter().enumerate() {
                by_class[y as usize].push(i);
            }
            by_class.retain(|c: &Vec<usize>| !c.is_empty());
            by_class
        };
        // Per sequence: `Some(k)` picks k classes, `Varied` also draws k; `None`: all classes.
        let by_class = match classes {
            SequenceClasses::Some(k) if k < data.n_classes => Some((grouped(), Some(k))),
            SequenceClasses::Varied if data.n_classes > 2 => Some((grouped(), None)),
            _ => None,
        };
        let n_in = data.n_features;
        let batch_size = tasks.len();
        let mut x = Vec::with_capacity(if copy_x {
            batch_size * seq_len * n_in
        } else {
            0
        });
        let mut projection = Vec::with_capacity(batch_size * n_in * d_in);
        let mut labels = Vec::with_capacity(batch_size * seq_len);
        let mut indices = Vec::with_capacity(batch_size * seq_len);
        for task in tasks {
            debug_assert!(task.projection.is_empty() || task.projection.len() == n_in * d_in);
            projection.extend_from_slice(&task.projection);
            let chosen: Option<Vec<&Vec<usize>>> = by_class.as_ref().map(|(by_class, k)| {
                let k = k.unwrap_or_else(|| rng.random_range(2..=by_class.len()));
                let mut order: Vec<usize> = (0..by_class.len()).collect();
                let (picked, _) = order.partial_shuffle(rng, k);
                picked.iter().map(|&c| &by_class[c]).collect()
            });
            // `Varied`: the chosen classes' labels, in the task's order, become 0..k.
            let renamed: Option<Vec<u32>> = match (&chosen, classes) {
                (Some(picked), SequenceClasses::Varied) => {
                    let label =
                        |members: &Vec<usize>| task.permutation[data.labels[members[0]] as usize];
                    let mut order: Vec<u32> = picked.iter().map(|m| label(m)).collect();
                    order.sort_unstable();
                    let mut renamed = vec![u32::MAX; task.permutation.len()];
                    for (rank, &l) in order.iter().enumerate() {
                        renamed[l as usize] = rank as u32;
                    }
                    Some(renamed)
                }
                _ => None,
            };
            for _ in 0..seq_len {
                let i = match &chosen {
                    Some(classes) => {
                        let members = classes[rng.random_range(0..classes.len())];
                        members[rng.random_range(0..members.len())]
                    }
                    None => rng.random_range(0..data.len()),
                };
                if copy_x {
                    data.extend_row(i, &mut x);
                }
                let label = task.permutation[data.labels[i] as usize];
                labels.push(renamed.as_ref().map_or(label, |r| r[label as usize]));
                indices.push(i);
            }
        }
        Self {
            batch_size,
            seq_len,
            n_in,
            d_in,
            x,
            projection: Projections::Values(projection),
            labels,
            indices,
        }
    }
}

/// Samples meta-training batches: tasks from a [`TaskPool`] (with the bias fraction) and
/// examples from a dataset, all from one seeded stream.
#[derive(Debug, Clone)]
pub struct TaskSampler {
    pool: TaskPool,
    pool_seed: u64,
    bias_fraction: f32,
    classes: SequenceClasses,
    low_rank: bool,
    projections: ProjectionSource,
    tables: f32,
    table_prior: TablePrior,
    examples_on_device: bool,
    d_in: usize,
    n_classes: usize,
    rng: ChaCha8Rng,
}

impl TaskSampler {
    /// A sampler for a model with input width `d_in` and `n_classes` outputs.
    pub fn new(
        pool: TaskPool,
        bias_fraction: f32,
        d_in: usize,
        n_classes: usize,
        seed: u64,
    ) -> Result<Self, Error> {
        if !(0.0..=1.0).contains(&bias_fraction) {
            return Err(Error::Config(format!(
                "bias fraction {bias_fraction} is not in [0, 1]"
            )));
        }
        Ok(Self {
            pool,
            pool_seed: mix_seed(seed, 0x7061_6f6f),
            bias_fraction,
            classes: SequenceClasses::All,
            low_rank: false,
            projections: ProjectionSource::Host,
            tables: 0.0,
            table_prior: TablePrior::Net,
            examples_on_device: false,
            d_in,
            n_classes,
            rng: rng(mix_seed(seed, 0x7374_7265_616d)),
        })
    }

    /// Gives every following task a low-rank projection ([`low_rank_projection`], from the
    /// task's seed).
    pub fn set_low_rank(&mut self, on: bool) {
        self.low_rank = on;
    }

    /// Where the following batches' projections are drawn ([`ProjectionSource`]; the
    /// configuration refuses `Device` with low-rank projections, which stay on the host).
    pub fn set_projections(&mut self, source: ProjectionSource) {
        self.projections = source;
    }

    /// Makes this fraction of each following batch (the last sequences) random tables
    /// ([`random_table`], from `prior`) instead of tasks of the dataset.
    pub fn set_tables(&mut self, fraction: f32, prior: TablePrior) {
        self.tables = fraction;
        self.table_prior = prior;
    }

    /// Whether the trainer gathers the following batches' examples on its device from their
    /// indices ([`Batch::indices`]). Then a batch of the dataset's examples alone leaves
    /// [`Batch::x`] empty: the host skips a copy of every example, 128 × 100 × 784 values a
    /// step at `paper`. A batch with random tables still carries all its rows (they are
    /// uploaded). The draws are the same either way.
    pub fn set_examples_on_device(&mut self, on: bool) {
        self.examples_on_device = on;
    }

    /// Which classes the following training sequences draw from; the trainer changes it over
    /// a run for a curriculum.
    pub fn set_classes(&mut self, classes: SequenceClasses) {
        self.classes = classes;
    }

    /// The seed of the `i`-th task of the training pool.
    pub fn pool_task_seed(&self, i: u64) -> u64 {
        mix_seed(self.pool_seed, i)
    }

    /// Draws the next batch of `batch_size` sequences of `seq_len` examples from `data`.
    /// The first `round(bias_fraction · batch_size)` sequences keep the labels unpermuted; the
    /// last `round(tables · batch_size)` are random tables (of the dataset's width).
    pub fn next_batch(&mut self, data: &Dataset, batch_size: usize, seq_len: usize) -> Batch {
        let n_tables = ((self.tables * batch_size as f32).round() as usize).min(batch_size);
        let n_biased = (self.bias_fraction * batch_size as f32).round() as usize;
        let seeds: Vec<u64> = (0..batch_size - n_tables)
            .map(|_| match self.pool.size() {
                Some(n) => {
                    let i = self.rng.random_range(0..n);
                    self.pool_task_seed(i)
                }
                None => self.rng.random(),
            })
            .collect();
        // Each task comes from its own seed, so drawing them in parallel (natively, where the
        // projections' normal draws are a step's largest CPU cost) gives the same tasks.
        let (n_in, d_in, n_classes) = (data.n_features, self.d_in, self.n_classes);
        let low_rank = self.low_rank;
        let on_device = self.projections == ProjectionSource::Device;
        // On the device: each task's stream keyed by its seed, every row at N(0, 1/n_in).
        let mut drawn = on_device.then(|| {
            let row_scale = vec![1.0 / (n_in as f32).sqrt(); seeds.len() * n_in];
            (seeds.clone(), row_scale)
        });
        let tasks = crate::map_indexed(seeds, |b, seed| {
            if on_device {
                return Task::permutation_from_seed(seed, n_classes, b < n_biased);
            }
            let mut task = Task::from_seed(seed, n_in, d_in, n_classes, b < n_biased);
            if low_rank {
                task.projection = low_rank_projection(mix_seed(seed, 0x7261_6e6b), n_in, d_in);
            }
            task
        });
        let mut batch = Batch::sample_from(
            data,
            &tasks,
            seq_len,
            self.d_in,
            self.classes,
            !self.examples_on_device || n_tables > 0,
            &mut self.rng,
        );
        let table_seeds: Vec<u64> = (0..n_tables).map(|_| self.rng.random()).collect();
        let prior = self.table_prior;
        let tables = crate::map_indexed(table_seeds, |_, seed| {
            let (x, labels, features, mut r) = table_rows(seed, seq_len, n_in, n_classes, prior);
            let projection = match on_device {
                true => Vec::new(),
                false => table_projection(&mut r, features, n_in, d_in),
            };
            (seed, x, labels, features, projection)
        });
        for (seed, x, labels, features, projection) in tables {
            batch.x.extend_from_slice(&x);
            batch.labels.extend_from_slice(&labels);
            batch
                .indices
                .extend(std::iter::repeat_n(usize::MAX, seq_len));
            batch.batch_size += 1;
            if let Some((keys, row_scale)) = &mut drawn {
                // The table's rows past its features are zero, the rest at N(0, 1/features).
                keys.push(mix_seed(seed, 0x7461_626c));
                let sd = 1.0 / (features as f32).sqrt();
                row_scale.extend((0..n_in).map(|i| if i < features { sd } else { 0.0 }));
            } else if let Projections::Values(v) = &mut batch.projection {
                v.extend_from_slice(&projection);
            }
        }
        if let Some((keys, row_scale)) = drawn {
            batch.projection = Projections::Drawn { keys, row_scale };
        }
        batch
    }

    /// The state of the random stream, so a resumed run continues where it stopped.
    pub fn word_pos(&self) -> u128 {
        self.rng.get_word_pos()
    }

    /// Restores the stream position saved by [`TaskSampler::word_pos`].
    pub fn set_word_pos(&mut self, pos: u128) {
        self.rng.set_word_pos(pos);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy(n: usize, width: usize, classes: u32) -> Dataset {
        let features = (0..n * width).map(|v| (v % 7) as f32).collect();
        let labels = (0..n as u32).map(|i| i % classes).collect();
        Dataset::new("toy", features, width, labels, None).unwrap()
    }

    #[test]
    fn examples_gathered_on_the_device_are_not_copied_on_the_host() {
        let data = toy(50, 6, 10);
        for tables in [0.0, 0.5] {
            let batches = |on_device: bool| {
                let mut s = TaskSampler::new(TaskPool::Unlimited, 0.0, 8, 10, 3).unwrap();
                s.set_tables(tables, TablePrior::Net);
                s.set_examples_on_device(on_device);
                (0..3)
                    .map(|_| s.next_batch(&data, 4, 7))
                    .collect::<Vec<_>>()
            };
            let (copied, gathered) = (batches(false), batches(true));
            for (c, g) in copied.iter().zip(&gathered) {
                assert_eq!(c.x.len(), 4 * 7 * 6);
                if tables > 0.0 {
                    // Random tables' rows are the batch's own: all still travel.
                    assert_eq!(g, c);
                } else {
                    assert!(g.x.is_empty());
                    assert_eq!(
                        Batch {
                            x: c.x.clone(),
                            ..g.clone()
                        },
                        *c
                    );
                }
            }
        }
    }

    /// A batch left without its examples (for a trainer that gathers them on the device) is
    /// refused by the host's encoding with the reason, not with a shape error.
    #[test]
    #[should_panic(expected = "encoded by the trainer that sampled it")]
    fn a_batch_without_its_examples_is_not_encoded_from_the_host() {
        let data = toy(50, 6, 10);
        let mut s = TaskSampler::new(TaskPool::Unlimited, 0.0, 8, 10, 3).unwrap();
        s.set_examples_on_device(true);
        let batch = s.next_batch(&data, 4, 7);
        crate::tokens::TokenFormat::Pair.encode(&batch, 10, &Device::flex());
    }

    #[test]
    fn projection_has_the_papers_statistics() {
        let (n_in, d_in) = (200, 100);
        let t = Task::from_seed(7, n_in, d_in, 10, false);
        let n = t.projection.len() as f64;
        let mean = t.projection.iter().map(|&v| v as f64).sum::<f64>() / n;
        let var = t
            .projection
            .iter()
            .map(|&v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        // N(0, 1/n_in): with 20 000 draws the sample mean's std is ~3.5e-4 and the variance's ~1e-4.
        assert!(mean.abs() < 2e-3, "mean {mean}");
        assert!(
            (var * n_in as f64 - 1.0).abs() < 0.05,
            "var·n_in {}",
            var * n_in as f64
        );
    }

    /// Random tables: seeded, zero past their features, labels among their first k labels,
    /// and classes that are not one: the largest class holds well under all the examples on
    /// average, and every class count 2…10 occurs.
    #[test]
    fn random_tables_are_seeded_tables_of_several_classes() {
        let (t, n_in, d_in) = (100, 49, 49);
        assert_eq!(
            random_table(5, t, n_in, d_in, 10, TablePrior::Net),
            random_table(5, t, n_in, d_in, 10, TablePrior::Net)
        );
        assert_ne!(
            random_table(5, t, n_in, d_in, 10, TablePrior::Net),
            random_table(6, t, n_in, d_in, 10, TablePrior::Net)
        );
        for prior in [TablePrior::Net, TablePrior::Mixed, TablePrior::Categorical] {
            let mut largest = 0.0;
            let mut counts = std::collections::BTreeSet::new();
            for seed in 0..300 {
                let (x, a, labels) = random_table(seed, t, n_in, d_in, 10, prior);
                assert_eq!((x.len(), a.len(), labels.len()), (t * n_in, n_in * d_in, t));
                // The features in use: the projection's nonzero rows; the rows' values past them 0.
                let used = a
                    .chunks_exact(d_in)
                    .take_while(|row| row.iter().any(|&v| v != 0.0))
                    .count();
                assert!((1..=n_in).contains(&used));
                assert!(a[used * d_in..].iter().all(|&v| v == 0.0));
                assert!(
                    x.chunks_exact(n_in)
                        .all(|row| row[used..].iter().all(|&v| v == 0.0))
                );
                let mut per = [0usize; 10];
                for &l in &labels {
                    per[l as usize] += 1;
                }
                let k = per.iter().rposition(|&n| n > 0).unwrap() + 1;
                counts.insert(k);
                largest += *per.iter().max().unwrap() as f64 / t as f64 / 300.0;
            }
            assert!(
                largest < 0.75,
                "the largest class holds {largest:.2} of a table on average"
            );
            // Every class count 2…10; a categorical table whose columns are nearly all one
            // category may come out of one class.
            assert!(
                (2..=10).all(|k| counts.contains(&k)) && counts.len() <= 10,
                "class counts seen: {counts:?}"
            );
            if prior != TablePrior::Categorical {
                assert!(
                    !counts.contains(&1),
                    "{prior:?}: class counts seen: {counts:?}"
                );
            }
        }
        // The mixed prior draws other tables from the same seeds than the network alone.
        assert_ne!(
            random_table(5, t, n_in, d_in, 10, TablePrior::Mixed),
            random_table(5, t, n_in, d_in, 10, TablePrior::Net)
        );
    }

    /// The categorical prior's tables: some columns one-hot categories, each slot standardised
    /// (two values, mean 0, deviation 1), the others Gaussian; in most tables some of each.
    #[test]
    fn categorical_tables_hold_one_hot_columns_standardised() {
        let (t, n_in) = (100, 49);
        let (mut categorical, mut numeric) = (0, 0);
        for seed in 0..100 {
            let (x, _, _) = random_table(seed, t, n_in, 49, 10, TablePrior::Categorical);
            for column in 0..n_in {
                let values: Vec<f32> = x.chunks_exact(n_in).map(|row| row[column]).collect();
                let mut distinct = values.clone();
                distinct.sort_by(f32::total_cmp);
                distinct.dedup();
                if distinct.len() == 2 {
                    categorical += 1;
                    let mean = values.iter().sum::<f32>() / t as f32;
                    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / t as f32;
                    assert!(
                        mean.abs() < 1e-4 && (var - 1.0).abs() < 1e-3,
                        "{mean} {var}"
                    );
                } else if distinct.len() > 2 {
                    numeric += 1;
                }
            }
        }
        assert!(
            categorical > 500 && numeric > 300,
            "{categorical} {numeric}"
        );
    }

    /// Each prior draws the tables it always drew (the `Net` prior those of runs made before
    /// the mixed prior existed; the `Mixed` prior those the shipped learner's last stage
    /// trained on; the `Categorical` prior those of the stage in
    /// `docs/results/suite-views/categorical-2026-12-03.md`), so their commands reproduce: a
    /// checksum of a few tables each.
    #[test]
    fn the_priors_draw_the_tables_they_always_drew() {
        for (prior, seeds, expected) in [
            (TablePrior::Net, 20, 7150.611631),
            (TablePrior::Mixed, 40, 12381.469313),
            (TablePrior::Categorical, 40, 12260.069089),
        ] {
            let mut sum = 0.0f64;
            for seed in 0..seeds {
                let (x, a, labels) = random_table(seed, 100, 49, 49, 10, prior);
                sum += x.iter().map(|&v| f64::from(v)).sum::<f64>()
                    + a.iter().map(|&v| f64::from(v).abs()).sum::<f64>()
                    + labels.iter().map(|&l| f64::from(l)).sum::<f64>();
            }
            assert!((sum - expected).abs() < 1e-3, "{prior:?}: checksum {sum}");
        }
    }

    #[test]
    fn permutations_are_valid_and_vary() {
        let mut distinct = std::collections::HashSet::new();
        for seed in 0..50 {
            let t = Task::from_seed(seed, 4, 4, 10, false);
            let mut sorted = t.permutation.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (0..10).collect::<Vec<_>>());
            distinct.insert(t.permutation);
        }
        assert!(distinct.len() > 45);
        assert_eq!(
            Task::from_seed(3, 4, 4, 10, true).permutation,
            (0..10).collect::<Vec<_>>()
        );
    }

    #[test]
    fn tasks_and_batches_are_deterministic_in_their_seeds() {
        assert_eq!(
            Task::from_seed(5, 8, 4, 10, false),
            Task::from_seed(5, 8, 4, 10, false)
        );
        assert_ne!(
            Task::from_seed(5, 8, 4, 10, false),
            Task::from_seed(6, 8, 4, 10, false)
        );
        let data = toy(100, 8, 10);
        let mut a = TaskSampler::new(TaskPool::Finite { log2: 3 }, 0.0, 4, 10, 1).unwrap();
        let mut b = TaskSampler::new(TaskPool::Finite { log2: 3 }, 0.0, 4, 10, 1).unwrap();
        let (ba, bb) = (a.next_batch(&data, 4, 6), b.next_batch(&data, 4, 6));
        assert_eq!(
            (ba.x, ba.labels, ba.projection),
            (bb.x, bb.labels, bb.projection)
        );
        let mut c = TaskSampler::new(TaskPool::Finite { log2: 3 }, 0.0, 4, 10, 2).unwrap();
        assert_ne!(c.next_batch(&data, 4, 6).x, b.next_batch(&data, 4, 6).x);
    }

    #[test]
    fn finite_pool_draws_only_its_tasks() {
        let data = toy(50, 3, 10);
        let mut s = TaskSampler::new(TaskPool::Finite { log2: 1 }, 0.0, 2, 10, 9).unwrap();
        let allowed: Vec<Vec<f32>> = (0..2)
            .map(|i| Task::from_seed(s.pool_task_seed(i), 3, 2, 10, false).projection)
            .collect();
        for _ in 0..5 {
            let b = s.next_batch(&data, 3, 2);
            for i in 0..3 {
                assert!(allowed.contains(&b.projection.of(i, 3, 2)));
            }
        }
    }

    #[test]
    fn bias_fraction_fixes_the_permutation_of_that_share() {
        // Dataset whose label equals its single feature, so the batch reveals the permutation.
        let data = Dataset::new(
            "id",
            (0..10).map(|v| v as f32).collect(),
            1,
            (0..10).collect(),
            None,
        )
        .unwrap();
        let mut s = TaskSampler::new(TaskPool::Unlimited, 0.25, 1, 10, 3).unwrap();
        let b = s.next_batch(&data, 8, 30);
        let identity_rows = (0..8)
            .filter(|&r| (0..30).all(|j| b.labels[r * 30 + j] as f32 == b.x[r * 30 + j]))
            .count();
        assert_eq!(identity_rows, 2);
        assert!(TaskSampler::new(TaskPool::Unlimited, 1.5, 1, 10, 3).is_err());
    }

    #[test]
    fn classes_per_sequence_limits_the_labels_of_each_sequence() {
        let data = toy(200, 2, 10);
        let mut s = TaskSampler::new(TaskPool::Unlimited, 0.0, 2, 10, 4).unwrap();
        s.set_classes(SequenceClasses::Some(3));
        let b = s.next_batch(&data, 6, 40);
        for row in b.labels.chunks(40) {
            let mut distinct = row.to_vec();
            distinct.sort_unstable();
            distinct.dedup();
            assert!(distinct.len() <= 3 && distinct.len() >= 2, "{distinct:?}");
        }
    }

    #[test]
    fn low_rank_projections_have_a_rank_of_their_own_and_the_usual_scale() {
        let (n, d) = (12, 9);
        let mut ranks = Vec::new();
        let mut squares = 0.0;
        for seed in 0..200 {
            let a = low_rank_projection(seed, n, d);
            assert_eq!(a, low_rank_projection(seed, n, d));
            squares += a.iter().map(|v| v * v).sum::<f32>() / (n * d) as f32;
            // Rank by Gaussian elimination.
            let mut m: Vec<Vec<f64>> = a
                .chunks(d)
                .map(|r| r.iter().map(|&v| v as f64).collect())
                .collect();
            let mut rank = 0;
            for c in 0..d {
                let Some(p) = (rank..n).max_by(|&x, &y| m[x][c].abs().total_cmp(&m[y][c].abs()))
                else {
                    break;
                };
                if m[p][c].abs() < 1e-4 {
                    continue;
                }
                m.swap(rank, p);
                let pivot = m[rank].clone();
                for (r, row) in m.iter_mut().enumerate() {
                    if r != rank {
                        let f = row[c] / pivot[c];
                        for (x, q) in row.iter_mut().zip(&pivot) {
                            *x -= f * q;
                        }
                    }
                }
                rank += 1;
            }
            ranks.push(rank);
        }
        ranks.sort_unstable();
        assert_eq!((ranks[0], *ranks.last().unwrap()), (1, 9), "{ranks:?}");
        // Entries' mean square is 1/n_in, as the full-rank projection's.
        let mean = squares / 200.0;
        assert!((mean - 1.0 / n as f32).abs() < 0.015, "{mean}");
        // The sampler uses them when asked, and only then.
        let data = toy(50, n, 10);
        let mut s = TaskSampler::new(TaskPool::Unlimited, 0.0, d, 10, 2).unwrap();
        let full = s.clone().next_batch(&data, 4, 5);
        s.set_low_rank(true);
        let low = s.next_batch(&data, 4, 5);
        assert_eq!((full.x, full.labels), (low.x.clone(), low.labels.clone()));
        assert_ne!(full.projection, low.projection);
    }

    #[test]
    fn varied_classes_rename_k_classes_among_the_first_k_labels() {
        let data = toy(400, 2, 10);
        let mut s = TaskSampler::new(TaskPool::Unlimited, 0.0, 2, 10, 5).unwrap();
        s.set_classes(SequenceClasses::Varied);
        let b = s.next_batch(&data, 64, 60);
        let mut sizes = Vec::new();
        for (row, idx) in b.labels.chunks(60).zip(b.indices.chunks(60)) {
            let mut distinct = row.to_vec();
            distinct.sort_unstable();
            distinct.dedup();
            // k classes drawn, k labels used: 0..k (all of them, in 60 examples, but rarely).
            let k = *distinct.last().unwrap() as usize + 1;
            assert!((2..=10).contains(&k) && distinct.len() <= k, "{distinct:?}");
            // One class, one label, within a sequence.
            for (a, b) in row
                .iter()
                .zip(idx)
                .flat_map(|p| row.iter().zip(idx).map(move |q| (p, q)))
            {
                assert_eq!(data.labels[*a.1] == data.labels[*b.1], a.0 == b.0);
            }
            sizes.push(k);
        }
        sizes.sort_unstable();
        sizes.dedup();
        assert!(sizes.len() >= 6, "k varies: {sizes:?}");
    }

    #[test]
    fn device_draws_are_other_tasks_of_the_same_kind() {
        let data = toy(60, 5, 10);
        let sampler = |source| {
            let mut s = TaskSampler::new(TaskPool::Unlimited, 0.25, 4, 10, 3).unwrap();
            s.set_tables(0.5, TablePrior::Mixed);
            s.set_projections(source);
            s.next_batch(&data, 8, 6)
        };
        let (host, drawn) = (
            sampler(ProjectionSource::Host),
            sampler(ProjectionSource::Device),
        );
        // The same examples and tables from the same stream; other permutations and projections.
        assert_eq!(host.x, drawn.x);
        assert_eq!(host.indices, drawn.indices);
        assert_ne!(host.labels, drawn.labels);
        assert_eq!(sampler(ProjectionSource::Device), drawn);
        let Projections::Drawn { keys, row_scale } = &drawn.projection else {
            panic!("device draws carry keys");
        };
        assert_eq!((keys.len(), row_scale.len()), (8, 8 * 5));
        for b in 0..8 {
            let a = drawn.projection.of(b, 5, 4);
            let used = a
                .chunks(4)
                .filter(|row| row.iter().any(|&v| v != 0.0))
                .count();
            if b < 4 {
                // A dataset's task: every row, at N(0, 1/n_in).
                assert_eq!(used, 5);
                assert!(
                    row_scale[b * 5..][..5]
                        .iter()
                        .all(|&s| s == 1.0 / 5f32.sqrt())
                );
            } else {
                // A random table: the rows of its features, as the host's projection has.
                let host_used = host
                    .projection
                    .of(b, 5, 4)
                    .chunks(4)
                    .filter(|row| row.iter().any(|&v| v != 0.0))
                    .count();
                assert_eq!(used, host_used);
            }
        }
        // The first quarter keeps the labels unpermuted, as on the host.
        assert_eq!(host.labels[..12], drawn.labels[..12]);
    }

    #[test]
    fn sampler_stream_resumes_from_its_position() {
        let data = toy(30, 2, 10);
        let mut a = TaskSampler::new(TaskPool::Unlimited, 0.0, 2, 10, 4).unwrap();
        a.next_batch(&data, 2, 3);
        let pos = a.word_pos();
        let next = a.next_batch(&data, 2, 3);
        let mut b = TaskSampler::new(TaskPool::Unlimited, 0.0, 2, 10, 4).unwrap();
        b.set_word_pos(pos);
        assert_eq!(b.next_batch(&data, 2, 3).x, next.x);
    }
}
