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

/// Per-position sums of correct predictions and of losses over an [`EvalSet`], as device
/// tensors (`[seq]` each). Nothing is read back.
pub struct CurveSums {
    /// The set as read: with views, the learner's probabilities averaged over them.
    pub correct: Tensor<1>,
    /// Losses of the set as read.
    pub loss: Tensor<1>,
    /// The learner alone (each sequence's own view), `(correct, loss)`, for a set with views;
    /// `None` for a set without, which is read alone.
    pub alone: Option<(Tensor<1>, Tensor<1>)>,
    /// Sequences summed over.
    pub count: usize,
}

/// The sums behind `set`'s curve (and, for a set with views, the learner alone's, from the
/// same forward passes).
pub fn curve_tensors(
    model: &Transformer,
    format: TokenFormat,
    n_classes: usize,
    set: &EvalSet,
    device: &Device,
) -> CurveSums {
    let per_pass = sequences_per_pass(device);
    curve_tensors_by(model, format, n_classes, set, device, per_pass)
}

/// [`curve_tensors`], `per_pass` sequences per forward pass.
fn curve_tensors_by(
    model: &Transformer,
    format: TokenFormat,
    n_classes: usize,
    set: &EvalSet,
    device: &Device,
    per_pass: usize,
) -> CurveSums {
    let model = model.valid();
    let device = device.clone().without_autodiff();
    let t = set.seq_len();
    let zeros = || Tensor::<1>::zeros([t], &device);
    let (mut correct, mut loss) = (zeros(), zeros());
    let mut alone = (!set.views.is_empty()).then(|| (zeros(), zeros()));
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
    // Per-position sums of hits and of losses of `logp` against `targets`.
    let score = |logp: Tensor<3>, targets: Tensor<2, Int>| {
        let [b, t, _] = logp.dims();
        let predicted = logp.clone().argmax(2).reshape([b, t]);
        let hits = predicted.equal(targets.clone()).float();
        let nll = logp
            .gather(2, targets.unsqueeze_dim::<3>(2))
            .neg()
            .reshape([b, t]);
        (hits.sum_dim(0).reshape([t]), nll.sum_dim(0).reshape([t]))
    };
    for (i, batch) in set.batches.iter().enumerate() {
        let (mut logp, targets) = read(batch);
        let [b, _, k] = logp.dims();
        if let Some((alone_correct, alone_loss)) = &mut alone {
            let (hits, nll) = score(logp.clone(), targets.clone());
            *alone_correct = alone_correct.clone() + hits;
            *alone_loss = alone_loss.clone() + nll;
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
        let (hits, nll) = score(logp, targets);
        correct = correct + hits;
        loss = loss + nll;
        count += b;
    }
    CurveSums {
        correct,
        loss,
        alone,
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
    let sums = curve_tensors(model, format, n_classes, set, device);
    let mut reads = Transaction::default()
        .register(sums.correct)
        .register(sums.loss);
    if let Some((correct, loss)) = sums.alone {
        reads = reads.register(correct).register(loss);
    }
    let data = reads
        .execute_async()
        .await
        .map_err(|e| Error::Device(format!("reading evaluation: {e:?}")))?;
    let count = sums.count;
    let read = |d: &TensorData| -> Result<Vec<f32>, Error> {
        let v = d
            .try_to_vec::<f32>()
            .map_err(|e| Error::Device(format!("evaluation data: {e:?}")))?;
        Ok(v.into_iter().map(|x| x / count as f32).collect())
    };
    // The curve whose accuracy and loss were registered at `at` and `at + 1`.
    let curve = |at: usize| -> Result<Curve, Error> {
        Ok(Curve {
            name: set.name.clone(),
            accuracy: read(&data[at])?,
            loss: read(&data[at + 1])?,
        })
    };
    let viewed = curve(0)?;
    let alone = if data.len() > 2 {
        curve(2)?
    } else {
        viewed.clone()
    };
    Ok((viewed, alone))
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
                let sums = curve_tensors_by(&model, format, m.n_classes, &set, &device, per_pass);
                (sums.correct.into_data(), sums.loss.into_data(), sums.count)
            };
            let whole = read(EVAL_BATCH);
            for per_pass in [1, 4, 5, 8] {
                assert_eq!(read(per_pass), whole, "{format:?}, {per_pass} a pass");
            }
        }
    }
}
