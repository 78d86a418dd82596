//! In-context evaluation: accuracy and loss at every position (the curve of accuracy against
//! the number of examples seen), on fixed tasks and examples so curves compare across runs.

use burn::prelude::*;
use burn::tensor::Transaction;
use burn::tensor::activation::log_softmax;
use serde::{Deserialize, Serialize};

use crate::model::Transformer;
use crate::task::{Batch, Projections, Task, TaskSampler, mix_seed, rng};
use crate::tokens::TokenFormat;
use crate::{Dataset, Error};

/// Which tasks an evaluation set uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvalTasks {
    /// Tasks of the training pool (with an unlimited pool: fresh draws of the same kind).
    Seen,
    /// Tasks the learner never trained on.
    Unseen,
}

/// A fixed set of evaluation sequences.
///
/// A dataset of `k` classes is evaluated on `k` labels: each task permutes its classes among
/// the first `k` of the learner's labels, and the learner's prediction is read over those `k`
/// outputs (renormalised), as the baselines know `k` too. So a first guess is right 1/k of
/// the time, not 1/n_classes. (With k = n_classes, as for MNIST, nothing is restricted.)
#[derive(Debug, Clone)]
pub struct EvalSet {
    /// Label for curves ("mnist seen tasks", ...).
    pub name: String,
    /// The sequences, in batches.
    pub batches: Vec<Batch>,
    /// The labels the tasks use and the predictions are read over: the dataset's classes.
    pub classes: usize,
    /// Further views of the same sequences the learner's prediction is averaged over
    /// ([`EvalSet::with_views`]); empty: the learner sees each sequence once.
    views: Vec<View>,
}

/// The sequences of an [`EvalSet`] redrawn as other tasks: the same examples in the same
/// order, through a fresh projection, with the labels renamed again. Only what differs from the
/// set's own batches is kept (the examples are the set's), one entry per batch.
#[derive(Debug, Clone)]
struct View {
    /// Per batch, the projections, `[batch, n_in, d_in]` as in [`Batch::projection`].
    projection: Vec<Vec<f32>>,
    /// Per batch, the renamed labels, `[batch, seq]` as in [`Batch::labels`].
    labels: Vec<Vec<u32>>,
    /// Per batch, `[batch, classes]` row-major: `rename[b * classes + l]` is the label this
    /// view gives what the set's sequence `b` calls `l`.
    rename: Vec<Vec<i64>>,
}

impl View {
    /// The set's batch `i` as this view shows it (the set's examples; this view's projections
    /// and labels, not copies of the set's to be replaced).
    fn batch(&self, i: usize, own: &Batch) -> Batch {
        Batch {
            batch_size: own.batch_size,
            seq_len: own.seq_len,
            n_in: own.n_in,
            d_in: own.d_in,
            x: own.x.clone(),
            projection: Projections::Values(self.projection[i].clone()),
            labels: self.labels[i].clone(),
            indices: own.indices.clone(),
        }
    }
}

/// The random streams of seen- and unseen-task sets.
const SEEN_STREAM: u64 = 0x7365_656e;
const UNSEEN_STREAM: u64 = 0x756e_7365_656e;
/// The random stream of [`EvalSet::with_views`].
const VIEW_STREAM: u64 = 0x7669_6577;

/// Sequences sampled and scored together (the batches of an [`EvalSet`]).
const EVAL_BATCH: usize = 32;

/// Sequences per forward pass when a batch is scored: all of it on a GPU (a pass is a kernel
/// launch per op), 4 on Flex, whose activations are held in the process's memory (the page's
/// training worker: a WebAssembly memory never shrinks, and 32 sequences' forward pass was its
/// high-water mark). A sequence's logits do not depend on the others in its pass, so the curves
/// are the same either way.
fn sequences_per_pass(device: &Device) -> usize {
    if crate::kernels::on_flex(device) {
        4
    } else {
        EVAL_BATCH
    }
}

impl EvalSet {
    /// `sequences` sequences of `seq_len` examples from `data`, tasks and examples drawn from
    /// `seed` (and, for [`EvalTasks::Seen`], tasks from `train_sampler`'s pool).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: impl Into<String>,
        data: &Dataset,
        tasks: EvalTasks,
        train_sampler: &TaskSampler,
        pool_size: Option<u64>,
        sequences: usize,
        seq_len: usize,
        d_in: usize,
        n_classes: usize,
        seed: u64,
    ) -> Result<Self, Error> {
        if tasks == EvalTasks::Unseen {
            return Self::unseen(name, data, sequences, seq_len, d_in, n_classes, seed);
        }
        let stream = mix_seed(seed, SEEN_STREAM);
        let task_seed = |i: u64| match pool_size {
            Some(n) => train_sampler.pool_task_seed(i % n),
            None => mix_seed(stream, i),
        };
        let shape = (sequences, seq_len, d_in, n_classes);
        Self::build(name, data, task_seed, shape, stream)
    }

    /// `sequences` sequences of `seq_len` examples of tasks no learner trained on, tasks and
    /// examples drawn from `seed`: [`EvalSet::new`] with [`EvalTasks::Unseen`], which needs no
    /// training stream.
    pub fn unseen(
        name: impl Into<String>,
        data: &Dataset,
        sequences: usize,
        seq_len: usize,
        d_in: usize,
        n_classes: usize,
        seed: u64,
    ) -> Result<Self, Error> {
        let stream = mix_seed(seed, UNSEEN_STREAM);
        let task_seed = |i: u64| mix_seed(stream, i);
        let shape = (sequences, seq_len, d_in, n_classes);
        Self::build(name, data, task_seed, shape, stream)
    }

    /// The set of tasks `task_seed(0..sequences)`, examples drawn from `examples_seed`;
    /// `shape`: sequences, examples per sequence, the learner's input width and its classes.
    fn build(
        name: impl Into<String>,
        data: &Dataset,
        task_seed: impl Fn(u64) -> u64,
        shape: (usize, usize, usize, usize),
        examples_seed: u64,
    ) -> Result<Self, Error> {
        let (sequences, seq_len, d_in, n_classes) = shape;
        data.check_classes(n_classes)?;
        let mut r = rng(examples_seed);
        let all: Vec<Task> = (0..sequences as u64)
            .map(|i| Task::from_seed(task_seed(i), data.n_features, d_in, data.n_classes, false))
            .collect();
        let batches = all
            .chunks(EVAL_BATCH)
            .map(|chunk| Batch::sample(data, chunk, seq_len, d_in, &mut r))
            .collect();
        Ok(Self {
            name: name.into(),
            batches,
            classes: data.n_classes,
            views: Vec::new(),
        })
    }

    /// This set read by an ensemble: the learner's prediction at each position is the mean of
    /// its predicted probabilities over `views` views of the sequence, the set's own and
    /// `views - 1` more drawn from `seed`, each the same examples in the same order as another
    /// task (a fresh random projection, the classes renamed again). A learner of random
    /// projections and renamings should not care which one it is shown; averaging over several
    /// is the ensembling tabular in-context learners use (TabPFN). Costs `views` forward passes.
    /// `views` ≤ 1: the set as it is.
    pub fn with_views(mut self, views: usize, seed: u64) -> Self {
        let k = self.classes;
        let view = |v: u64| {
            let seed = mix_seed(mix_seed(seed, VIEW_STREAM), v);
            let mut sequence = 0u64;
            let mut view = View {
                projection: Vec::with_capacity(self.batches.len()),
                labels: Vec::with_capacity(self.batches.len()),
                rename: Vec::with_capacity(self.batches.len()),
            };
            for batch in &self.batches {
                let mut projection = Vec::with_capacity(batch.batch_size * batch.n_in * batch.d_in);
                let mut labels = batch.labels.clone();
                let mut rename = Vec::with_capacity(batch.batch_size * k);
                for b in 0..batch.batch_size {
                    let task =
                        Task::from_seed(mix_seed(seed, sequence), batch.n_in, batch.d_in, k, false);
                    sequence += 1;
                    projection.extend_from_slice(&task.projection);
                    for l in &mut labels[b * batch.seq_len..][..batch.seq_len] {
                        *l = task.permutation[*l as usize];
                    }
                    rename.extend(task.permutation.iter().map(|&l| i64::from(l)));
                }
                view.projection.push(projection);
                view.labels.push(labels);
                view.rename.push(rename);
            }
            view
        };
        self.views = (1..views.max(1) as u64).map(view).collect();
        self
    }

    /// Views the learner's prediction is averaged over (1: the set's own only).
    pub fn views(&self) -> usize {
        1 + self.views.len()
    }

    /// Sequence length.
    pub fn seq_len(&self) -> usize {
        self.batches.first().map_or(0, |b| b.seq_len)
    }
}

/// Accuracy and loss at every position, averaged over an evaluation set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Curve {
    /// Evaluation set name.
    pub name: String,
    /// `accuracy[j]`: accuracy of the prediction for example j+1, made after seeing j examples.
    pub accuracy: Vec<f32>,
    /// Mean cross-entropy at each position (not finite for a broken model: JSON writes that as
    /// `null`, read back as NaN).
    #[serde(deserialize_with = "floats_or_null")]
    pub loss: Vec<f32>,
}

fn floats_or_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
    let values: Vec<Option<f32>> = Deserialize::deserialize(d)?;
    Ok(values.into_iter().map(|v| v.unwrap_or(f32::NAN)).collect())
}

impl Curve {
    /// Accuracy after `k` examples have been predicted, i.e. at the k-th example (1-based).
    pub fn accuracy_at(&self, k: usize) -> Option<f32> {
        k.checked_sub(1).and_then(|i| self.accuracy.get(i)).copied()
    }
}

/// One reading of an [`EvalSet`] as device tensors: per-position sums of correct predictions
/// and of losses over its sequences (`[seq]` each), and, when asked for, each sequence's hits.
/// Nothing is read back.
pub struct Sums {
    /// Correct predictions at each position, summed over the sequences.
    pub correct: Tensor<1>,
    /// Losses at each position, summed over the sequences.
    pub loss: Tensor<1>,
    /// Each sequence's hits (1 right, 0 wrong) at each position, `[sequences, seq]`, if they
    /// were asked for.
    pub hits: Option<Tensor<2>>,
}

/// The sums behind an [`EvalSet`]'s curves ([`curve_tensors`]).
pub struct CurveSums {
    /// The set as read: with views, the learner's probabilities averaged over them.
    pub read: Sums,
    /// The learner alone (each sequence's own view), for a set with views; `None` for a set
    /// without, which is read alone.
    pub alone: Option<Sums>,
    /// Sequences summed over.
    pub count: usize,
}

/// Each sequence's outcome at some positions, read back: the per-sequence results behind a
/// curve (the learner's, at every position; a baseline's, where it was fit), for statistics
/// over sequences, the unit an evaluation set draws independently.
#[derive(Debug, Clone, PartialEq)]
pub struct Hits {
    /// The positions scored (1-based), in order.
    pub positions: Vec<usize>,
    /// `[sequences, positions.len()]` row-major: 1 where the prediction there was right.
    pub values: Vec<f32>,
}

impl Hits {
    /// Sequences held.
    pub fn sequences(&self) -> usize {
        self.values.len() / self.positions.len().max(1)
    }

    /// The accuracy at each scored position over all the sequences: the curve behind which
    /// these are, `(position, accuracy)`.
    pub fn curve(&self) -> Vec<(usize, f32)> {
        let n = self.sequences();
        self.positions
            .iter()
            .enumerate()
            .map(|(i, &k)| {
                let right: f32 = (0..n)
                    .map(|s| self.values[s * self.positions.len() + i])
                    .sum();
                (k, right / n.max(1) as f32)
            })
            .collect()
    }

    /// The first `sequences` sequences' (at most all) accuracies over those of `over` that
    /// were scored: one mean per sequence.
    pub fn means(&self, over: &[usize], sequences: usize) -> Vec<f32> {
        let at: Vec<usize> = over
            .iter()
            .filter_map(|k| self.positions.iter().position(|p| p == k))
            .collect();
        self.values
            .chunks(self.positions.len().max(1))
            .take(sequences)
            .map(|row| at.iter().map(|&j| row[j]).sum::<f32>() / at.len().max(1) as f32)
            .collect()
    }

    /// These outcomes minus `other`'s, paired by sequence (the first sequences both hold), each
    /// sequence's accuracy over `over`: `(the mean difference, its standard error)`.
    pub fn minus(&self, other: &Hits, over: &[usize]) -> (f32, f32) {
        let n = self.sequences().min(other.sequences());
        let (ours, theirs) = (self.means(over, n), other.means(over, n));
        let diff: Vec<f32> = ours.iter().zip(&theirs).map(|(a, b)| a - b).collect();
        mean_and_se(&diff)
    }
}

/// The last quarter of a sequence of `seq_len` positions (1-based, in order), the positions
/// the held-out suite and the page's comparisons read a learner over.
pub fn last_quarter(seq_len: usize) -> Vec<usize> {
    ((seq_len - seq_len / 4 + 1)..=seq_len).collect()
}

/// How one learner stands to another, from their paired difference and its standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Ahead by more than twice the standard error.
    Above,
    /// Within twice the standard error.
    Level,
    /// Behind by more than twice the standard error.
    Below,
}

impl Verdict {
    /// Ahead or behind when `difference` is more than twice `standard_error` from zero, else
    /// level.
    pub fn of(difference: f32, standard_error: f32) -> Self {
        if difference > 2.0 * standard_error {
            Verdict::Above
        } else if difference < -2.0 * standard_error {
            Verdict::Below
        } else {
            Verdict::Level
        }
    }
}

/// The mean of `values` and its standard error (the sample standard deviation over √n; 0 for
/// fewer than two values).
pub fn mean_and_se(values: &[f32]) -> (f32, f32) {
    let n = values.len();
    if n == 0 {
        return (0.0, 0.0);
    }
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n as f64;
    if n < 2 {
        return (mean as f32, 0.0);
    }
    let var = values
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / (n - 1) as f64;
    (mean as f32, (var / n as f64).sqrt() as f32)
}

/// A learner's reading of an [`EvalSet`] with the outcomes behind it
/// ([`evaluate_with_hits`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Reading {
    /// The set's curve (with views, of their averaged prediction).
    pub viewed: Curve,
    /// The learner alone's curve (the same as `viewed` for a set without views).
    pub alone: Curve,
    /// Each sequence's hits behind `viewed`.
    pub viewed_hits: Hits,
    /// Each sequence's hits behind `alone`.
    pub alone_hits: Hits,
}

/// The sums behind `set`'s curve (and, for a set with views, the learner alone's, from the
/// same forward passes), with each sequence's hits if `with_hits`.
pub fn curve_tensors(
    model: &Transformer,
    format: TokenFormat,
    n_classes: usize,
    set: &EvalSet,
    device: &Device,
    with_hits: bool,
) -> CurveSums {
    let per_pass = sequences_per_pass(device);
    curve_tensors_by(model, format, n_classes, set, device, per_pass, with_hits)
}

/// [`curve_tensors`], `per_pass` sequences per forward pass.
fn curve_tensors_by(
    model: &Transformer,
    format: TokenFormat,
    n_classes: usize,
    set: &EvalSet,
    device: &Device,
    per_pass: usize,
    with_hits: bool,
) -> CurveSums {
    let model = model.valid();
    let device = device.clone().without_autodiff();
    let t = set.seq_len();
    let zeros = || Tensor::<1>::zeros([t], &device);
    let (mut correct, mut loss, mut hits_read) = (zeros(), zeros(), Vec::new());
    let mut alone = (!set.views.is_empty()).then(|| (zeros(), zeros(), Vec::new()));
    let mut count = 0;
    // Log-probabilities over the set's classes only (renormalised), `[batch, t, classes]`.
    let read = |batch: &Batch| {
        let (tokens, targets) = format.encode(batch, n_classes, &device);
        let logits = tokens
            .split(per_pass, 0)
            .into_iter()
            .map(|part| format.prediction_logits(model.forward(part)))
            .collect();
        let logp = log_softmax(Tensor::cat(logits, 0), 2);
        let outputs = logp.dims()[2];
        let logp = if set.classes < outputs {
            log_softmax(logp.narrow(2, 0, set.classes), 2)
        } else {
            logp
        };
        (logp, targets)
    };
    // Per-position sums of hits and of losses of `logp` against `targets`, and the hits.
    let score = |logp: Tensor<3>, targets: Tensor<2, Int>| {
        let [b, t, _] = logp.dims();
        let predicted = logp.clone().argmax(2).reshape([b, t]);
        let hits = predicted.equal(targets.clone()).float();
        let nll = logp
            .gather(2, targets.unsqueeze_dim::<3>(2))
            .neg()
            .reshape([b, t]);
        (
            hits.clone().sum_dim(0).reshape([t]),
            nll.sum_dim(0).reshape([t]),
            hits,
        )
    };
    for (i, batch) in set.batches.iter().enumerate() {
        let (mut logp, targets) = read(batch);
        let [b, _, k] = logp.dims();
        if let Some((alone_correct, alone_loss, alone_hits)) = &mut alone {
            let (right, nll, hits) = score(logp.clone(), targets.clone());
            *alone_correct = alone_correct.clone() + right;
            *alone_loss = alone_loss.clone() + nll;
            if with_hits {
                alone_hits.push(hits);
            }
            // Each view's prediction in the set's labels, then the mean of the probabilities:
            // log(mean_v p_v) = m + log(sum_v exp(logp_v - m)) - ln V.
            let mut all = vec![logp];
            for view in &set.views {
                let (logp_v, _) = read(&view.batch(i, batch));
                let rename = Tensor::<2, Int>::from_data(
                    TensorData::new(view.rename[i].clone(), [b, k]),
                    &device,
                )
                .unsqueeze_dim::<3>(1)
                .expand([b, t, k]);
                all.push(logp_v.gather(2, rename));
            }
            let all = Tensor::stack::<4>(all, 0);
            let m = all.clone().max_dim(0);
            let mean = (all - m.clone()).exp().sum_dim(0).log() + m - (set.views() as f32).ln();
            logp = mean.squeeze_dim::<3>(0);
        }
        let (right, nll, hits) = score(logp, targets);
        correct = correct + right;
        loss = loss + nll;
        if with_hits {
            hits_read.push(hits);
        }
        count += b;
    }
    let hits = |all: Vec<Tensor<2>>| {
        with_hits.then(|| {
            if all.is_empty() {
                Tensor::<2>::zeros([0, t], &device)
            } else {
                Tensor::cat(all, 0)
            }
        })
    };
    CurveSums {
        read: Sums {
            correct,
            loss,
            hits: hits(hits_read),
        },
        alone: alone.map(|(correct, loss, all)| Sums {
            correct,
            loss,
            hits: hits(all),
        }),
        count,
    }
}

/// Evaluates `model` on `set`, reading the two curves back in one asynchronous round trip
/// (works in the browser). With views, the curve of their averaged prediction.
pub async fn evaluate(
    model: &Transformer,
    format: TokenFormat,
    n_classes: usize,
    set: &EvalSet,
    device: &Device,
) -> Result<Curve, Error> {
    let (viewed, _) = evaluate_views(model, format, n_classes, set, device).await?;
    Ok(viewed)
}

/// Evaluates `model` on `set` as [`evaluate`] does, and also reads the learner alone from
/// the same forward passes: `(the set's curve, the learner alone's)`. For a set without views
/// the two are the same curve; with `v` views, this costs `v` forward passes where reading
/// the two curves apart would cost `v + 1`. Both carry the set's name.
pub async fn evaluate_views(
    model: &Transformer,
    format: TokenFormat,
    n_classes: usize,
    set: &EvalSet,
    device: &Device,
) -> Result<(Curve, Curve), Error> {
    let (viewed, alone, _) = read_back(model, format, n_classes, set, device, false).await?;
    Ok((viewed, alone))
}

/// [`evaluate_views`], with each sequence's hits behind the two curves (for standard errors
/// and paired comparisons over sequences), from the same forward passes and round trip.
pub async fn evaluate_with_hits(
    model: &Transformer,
    format: TokenFormat,
    n_classes: usize,
    set: &EvalSet,
    device: &Device,
) -> Result<Reading, Error> {
    let (viewed, alone, hits) = read_back(model, format, n_classes, set, device, true).await?;
    let (viewed_hits, alone_hits) = hits.expect("hits were asked for");
    Ok(Reading {
        viewed,
        alone,
        viewed_hits,
        alone_hits,
    })
}

/// The two curves of [`evaluate_views`] and, if `with_hits`, the hits behind them, read in
/// one asynchronous round trip.
async fn read_back(
    model: &Transformer,
    format: TokenFormat,
    n_classes: usize,
    set: &EvalSet,
    device: &Device,
    with_hits: bool,
) -> Result<(Curve, Curve, Option<(Hits, Hits)>), Error> {
    let sums = curve_tensors(model, format, n_classes, set, device, with_hits);
    let count = sums.count;
    // Registered per reading: correct, loss, and (with hits) the hits.
    let per = if with_hits { 3 } else { 2 };
    let mut reads = Transaction::default();
    for s in std::iter::once(sums.read).chain(sums.alone) {
        reads = reads.register(s.correct).register(s.loss);
        if let Some(hits) = s.hits {
            reads = reads.register(hits);
        }
    }
    let data = reads
        .execute_async()
        .await
        .map_err(|e| Error::Device(format!("reading evaluation: {e:?}")))?;
    let values = |d: &TensorData| -> Result<Vec<f32>, Error> {
        d.try_to_vec::<f32>()
            .map_err(|e| Error::Device(format!("evaluation data: {e:?}")))
    };
    let mean = |d: &TensorData| -> Result<Vec<f32>, Error> {
        Ok(values(d)?.into_iter().map(|x| x / count as f32).collect())
    };
    // The reading registered from `at` on.
    let reading = |at: usize| -> Result<(Curve, Option<Hits>), Error> {
        let curve = Curve {
            name: set.name.clone(),
            accuracy: mean(&data[at])?,
            loss: mean(&data[at + 1])?,
        };
        let hits = with_hits
            .then(|| {
                values(&data[at + 2]).map(|values| Hits {
                    positions: (1..=set.seq_len()).collect(),
                    values,
                })
            })
            .transpose()?;
        Ok((curve, hits))
    };
    let (viewed, viewed_hits) = reading(0)?;
    let (alone, alone_hits) = if data.len() > per {
        reading(per)?
    } else {
        (viewed.clone(), viewed_hits.clone())
    };
    Ok((viewed, alone, viewed_hits.zip(alone_hits)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::SYNTHETIC;

    /// A view keeps each sequence's examples and renames its labels by one permutation of
    /// the set's classes, the one it records; its projections are new.
    #[test]
    fn views_keep_the_examples_and_rename_the_labels_consistently() {
        let data = SYNTHETIC[1].make(3).unwrap().prepared(1).unwrap();
        let k = data.n_classes;
        let set = EvalSet::unseen("blobs", &data, 40, 12, 16, 10, 7).unwrap();
        assert_eq!(set.views(), 1);
        let viewed = set.clone().with_views(3, 11);
        assert_eq!(viewed.views(), 3);
        assert_eq!(viewed.batches.len(), set.batches.len());
        for view in &viewed.views {
            for (i, (own, rename)) in set.batches.iter().zip(&view.rename).enumerate() {
                let seen = view.batch(i, own);
                assert_eq!(own.x, seen.x);
                assert_eq!(own.indices, seen.indices);
                assert_ne!(own.projection, seen.projection);
                for b in 0..own.batch_size {
                    let map = &rename[b * k..(b + 1) * k];
                    let mut sorted = map.to_vec();
                    sorted.sort_unstable();
                    assert_eq!(sorted, (0..k as i64).collect::<Vec<_>>());
                    for j in 0..own.seq_len {
                        let l = own.labels[b * own.seq_len + j] as usize;
                        assert_eq!(i64::from(seen.labels[b * own.seq_len + j]), map[l]);
                    }
                }
            }
        }
        // Seeded: the same seed draws the same views, another seed others.
        let again = set.clone().with_views(3, 11);
        let other = set.with_views(3, 12);
        assert_eq!(again.views[1].rename, viewed.views[1].rename);
        assert_eq!(again.views[1].projection[0], viewed.views[1].projection[0]);
        assert_ne!(other.views[1].projection[0], viewed.views[1].projection[0]);
    }

    /// The mean and its standard error, by hand: [1, 0, 1, 0] has mean 1/2 and sample
    /// deviation √(1/3), so an error of √(1/3) / 2.
    #[test]
    fn standard_errors_are_the_sample_deviation_over_root_n() {
        let (m, e) = mean_and_se(&[1.0, 0.0, 1.0, 0.0]);
        assert_eq!(m, 0.5);
        assert!((e - (1.0f32 / 3.0).sqrt() / 2.0).abs() < 1e-6, "{e}");
        assert_eq!(mean_and_se(&[0.7]), (0.7, 0.0));
        assert_eq!(mean_and_se(&[]), (0.0, 0.0));
        // Per-sequence means over some positions; positions not scored are left out.
        let hits = Hits {
            positions: vec![2, 4, 6],
            values: vec![1.0, 0.0, 1.0, 0.0, 0.0, 1.0],
        };
        assert_eq!(hits.sequences(), 2);
        assert_eq!(hits.means(&[4, 6, 8], usize::MAX), vec![0.5, 0.5]);
        assert_eq!(hits.means(&[2], 1), vec![1.0]);
        assert_eq!(hits.curve(), vec![(2, 0.5), (4, 0.0), (6, 1.0)]);
        // Paired on the sequences both hold: [1, 0] minus [0, 1] at position 2.
        let other = Hits {
            positions: vec![2],
            values: vec![0.0, 1.0, 1.0],
        };
        let (d, e) = hits.minus(&other, &[2]);
        assert_eq!(d, 0.0);
        assert!((e - 1.0).abs() < 1e-6, "{e}");
        assert_eq!(hits.minus(&hits, &[2, 4, 6]), (0.0, 0.0));
    }

    /// The hits read back with a set's curves are the outcomes behind them: their accuracy
    /// at each position is the curve's, bit for bit, alone and with views; and a baseline's
    /// hits give its curve.
    #[test]
    fn hits_are_the_outcomes_behind_the_curves() {
        let device = Device::flex();
        let data = SYNTHETIC[1].make(5).unwrap().prepared(1).unwrap();
        let config = crate::RunConfig::preset("browser").unwrap();
        let m = &config.model;
        let model = m.init(3, &device).unwrap();
        let t = 12;
        let set = EvalSet::unseen("blobs", &data, 40, t, m.d_in, m.n_classes, 7)
            .unwrap()
            .with_views(3, 9);
        let format = config.tasks.format;
        let reading = pollster::block_on(evaluate_with_hits(
            &model,
            format,
            m.n_classes,
            &set,
            &device,
        ))
        .unwrap();
        let (viewed, alone) =
            pollster::block_on(evaluate_views(&model, format, m.n_classes, &set, &device)).unwrap();
        assert_eq!((&reading.viewed, &reading.alone), (&viewed, &alone));
        for (hits, curve) in [
            (&reading.viewed_hits, &viewed),
            (&reading.alone_hits, &alone),
        ] {
            assert_eq!(hits.sequences(), 40);
            assert!(hits.values.iter().all(|&v| v == 0.0 || v == 1.0));
            let accuracy: Vec<f32> = hits.curve().into_iter().map(|p| p.1).collect();
            assert_eq!(accuracy, curve.accuracy);
        }
        assert_ne!(reading.viewed_hits, reading.alone_hits);
        let baseline = crate::baselines::Baseline::Knn { k: 1 };
        let positions = [1, 5, 12, 13];
        let hits = baseline.hits_on(&set, &positions, 16, crate::baselines::Inputs::Projected);
        assert_eq!(
            (hits.positions.clone(), hits.sequences()),
            (vec![1, 5, 12], 16)
        );
        assert_eq!(hits.curve(), baseline.curve(&set, &positions, 16));
    }

    /// The last quarter: 76–100 of 100 (the suite's), 24–30 of 30, 7–8 of 8.
    #[test]
    fn the_last_quarter_is_the_last_positions_of_a_sequence() {
        assert_eq!(last_quarter(100), (76..=100).collect::<Vec<_>>());
        assert_eq!(last_quarter(30), (24..=30).collect::<Vec<_>>());
        assert_eq!(last_quarter(8), [7, 8]);
    }

    /// A gap is called real only beyond twice its standard error, either way.
    #[test]
    fn a_gap_is_called_real_only_beyond_twice_its_standard_error() {
        assert_eq!(Verdict::of(0.05, 0.02), Verdict::Above);
        assert_eq!(Verdict::of(0.03, 0.02), Verdict::Level);
        assert_eq!(Verdict::of(-0.03, 0.02), Verdict::Level);
        assert_eq!(Verdict::of(-0.05, 0.02), Verdict::Below);
        assert_eq!(Verdict::of(0.0, 0.0), Verdict::Level);
    }

    /// Scoring a batch in several forward passes (Flex's 4 sequences a pass) gives the curves of
    /// one pass bit for bit, for both token formats (the page's model): a sequence's logits do
    /// not depend on the other sequences of its pass.
    #[test]
    fn forward_passes_of_any_size_give_the_same_curves() {
        let device = Device::flex();
        let data = SYNTHETIC[1].make(5).unwrap().prepared(1).unwrap();
        for format in [TokenFormat::Pair, TokenFormat::Paper] {
            let mut config = crate::RunConfig::preset("browser").unwrap();
            config.tasks.format = format;
            let m = &config.model;
            let model = m.init(3, &device).unwrap();
            // 40 sequences: a batch of 32 and one of 8, cut into uneven passes too.
            let t = config.tasks.seq_len;
            let set = EvalSet::unseen("blobs", &data, 40, t, m.d_in, m.n_classes, 7).unwrap();
            let read = |per_pass| {
                let sums =
                    curve_tensors_by(&model, format, m.n_classes, &set, &device, per_pass, true);
                let r = sums.read;
                (
                    r.correct.into_data(),
                    r.loss.into_data(),
                    r.hits.map(|h| h.into_data()),
                    sums.count,
                )
            };
            let whole = read(EVAL_BATCH);
            for per_pass in [1, 4, 5, 8] {
                assert_eq!(read(per_pass), whole, "{format:?}, {per_pass} a pass");
            }
        }
    }
}
