//! In-context evaluation: accuracy and loss at every position (the curve of accuracy against
//! the number of examples seen), on fixed tasks and examples so curves compare across runs.

use burn::prelude::*;
use burn::tensor::Transaction;
use burn::tensor::activation::log_softmax;
use serde::{Deserialize, Serialize};

use crate::model::Transformer;
use crate::task::{Batch, Task, TaskSampler, mix_seed, rng};
use crate::tokens::TokenFormat;
use crate::train::sequence_loss;
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
}

/// The random streams of seen- and unseen-task sets.
const SEEN_STREAM: u64 = 0x7365_656e;
const UNSEEN_STREAM: u64 = 0x756e_7365_656e;

/// Sequences evaluated per forward pass.
const EVAL_BATCH: usize = 32;

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
        let stream = match tasks {
            EvalTasks::Seen => SEEN_STREAM,
            EvalTasks::Unseen => UNSEEN_STREAM,
        };
        let task_seed = |i: u64| match (tasks, pool_size) {
            (EvalTasks::Seen, Some(n)) => train_sampler.pool_task_seed(i % n),
            _ => mix_seed(mix_seed(seed, stream), i),
        };
        let shape = (sequences, seq_len, d_in, n_classes);
        Self::build(name, data, task_seed, shape, mix_seed(seed, stream))
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
        })
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

/// Per-position sums of correct predictions and of losses over `set`, as device tensors
/// (`[seq]` each), plus the number of sequences. Nothing is read back.
pub fn curve_tensors(
    model: &Transformer,
    format: TokenFormat,
    n_classes: usize,
    set: &EvalSet,
    device: &Device,
) -> (Tensor<1>, Tensor<1>, usize) {
    let model = model.valid();
    let device = device.clone().without_autodiff();
    let t = set.seq_len();
    let mut correct = Tensor::<1>::zeros([t], &device);
    let mut loss = Tensor::<1>::zeros([t], &device);
    let mut count = 0;
    for batch in &set.batches {
        let (tokens, targets) = format.encode(batch, n_classes, &device);
        let (_, logp) = sequence_loss(&model, format, tokens, targets.clone());
        let [b, _, outputs] = logp.dims();
        // Read over the set's classes only (renormalised).
        let logp = if set.classes < outputs {
            log_softmax(logp.narrow(2, 0, set.classes), 2)
        } else {
            logp
        };
        let predicted = logp.clone().argmax(2).reshape([b, t]);
        let hits = predicted.equal(targets.clone()).float();
        let nll = logp
            .gather(2, targets.unsqueeze_dim::<3>(2))
            .neg()
            .reshape([b, t]);
        correct = correct + hits.sum_dim(0).reshape([t]);
        loss = loss + nll.sum_dim(0).reshape([t]);
        count += b;
    }
    (correct, loss, count)
}

/// Evaluates `model` on `set`, reading the two curves back in one asynchronous round trip
/// (works in the browser).
pub async fn evaluate(
    model: &Transformer,
    format: TokenFormat,
    n_classes: usize,
    set: &EvalSet,
    device: &Device,
) -> Result<Curve, Error> {
    let (correct, loss, count) = curve_tensors(model, format, n_classes, set, device);
    let data = Transaction::default()
        .register(correct)
        .register(loss)
        .execute_async()
        .await
        .map_err(|e| Error::Device(format!("reading evaluation: {e:?}")))?;
    let read = |d: &TensorData| -> Result<Vec<f32>, Error> {
        let v = d
            .try_to_vec::<f32>()
            .map_err(|e| Error::Device(format!("evaluation data: {e:?}")))?;
        Ok(v.into_iter().map(|x| x / count as f32).collect())
    };
    Ok(Curve {
        name: set.name.clone(),
        accuracy: read(&data[0])?,
        loss: read(&data[1])?,
    })
}
