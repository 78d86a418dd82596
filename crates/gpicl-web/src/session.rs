//! One meta-training run as the page drives it: training steps whose losses are read back in
//! one asynchronous round trip, and the three evaluation curves; plus the step-through's task.
//! No DOM here: the same code runs on WebGPU in the page and on Flex in native tests.

use std::rc::Rc;

use burn::prelude::*;
use gpicl_core::eval::evaluate;
use gpicl_core::task::{Batch, Task, mix_seed, rng};
use gpicl_core::{Checkpoint, Curve, Dataset, Error, EvalSet, RunConfig, Trainer};

use crate::data::{PageData, WalkData};

/// A loss above this has exploded: guessing costs ln(classes), about 2.3 nats, and no learner
/// recovers from being this confidently wrong.
pub const EXPLODED_LOSS: f32 = 1e4;

/// A meta-training run on the page's data.
pub struct Session {
    trainer: Trainer,
    data: Rc<PageData>,
    sets: Vec<EvalSet>,
}

impl Session {
    /// A fresh run of `config` on `device`.
    pub fn new(config: RunConfig, data: Rc<PageData>, device: &Device) -> Result<Self, Error> {
        Self::with(Trainer::new(config, device)?, data)
    }

    /// Continues the run saved in `checkpoint` (from the page, an autosave, or the CLI).
    pub fn resume(
        checkpoint: &Checkpoint,
        data: Rc<PageData>,
        device: &Device,
    ) -> Result<Self, Error> {
        Self::with(Trainer::resume(checkpoint, device)?, data)
    }

    fn with(trainer: Trainer, data: Rc<PageData>) -> Result<Self, Error> {
        let sets = trainer.eval_sets(&data.train, &data.test, &data.fashion)?;
        Ok(Self {
            trainer,
            data,
            sets,
        })
    }

    /// The run as it stands (weights, optimizer state, step), read in one asynchronous round
    /// trip; `backend` names the device for the record.
    pub async fn checkpoint(&self, backend: &str) -> Result<Checkpoint, Error> {
        self.trainer.checkpoint(backend).await
    }

    /// Splits each training step into `n` micro-batches (see
    /// [`gpicl_core::Trainer::set_micro_batches`]).
    pub fn set_micro_batches(&mut self, n: usize) {
        self.trainer.set_micro_batches(n);
    }

    /// The run's configuration.
    pub fn config(&self) -> &RunConfig {
        self.trainer.config()
    }

    /// Steps completed.
    pub fn step_count(&self) -> usize {
        self.trainer.step_count()
    }

    /// The evaluation set of unseen tasks (the baselines are scored on its first sequences).
    pub fn unseen_tasks(&self) -> &EvalSet {
        &self.sets[1]
    }

    /// Names of the evaluation curves, in the order [`Session::evaluate`] returns them.
    pub fn curve_names(&self) -> Vec<String> {
        self.sets.iter().map(|s| s.name.clone()).collect()
    }

    /// Runs `steps` meta-training steps and returns their losses, read in one round trip.
    /// A loss that is not finite or above [`EXPLODED_LOSS`] is [`Error::Diverged`], with
    /// what to change.
    pub async fn train(&mut self, steps: usize) -> Result<Vec<f32>, Error> {
        let mut losses = Vec::with_capacity(steps);
        for _ in 0..steps {
            losses.push(self.trainer.step(&self.data.train)?);
        }
        if losses.is_empty() {
            return Ok(Vec::new());
        }
        let data = Tensor::cat(losses, 0)
            .into_data_async()
            .await
            .map_err(|e| Error::Device(format!("reading the loss: {e:?}")))?;
        let losses = data
            .try_to_vec::<f32>()
            .map_err(|e| Error::Device(format!("loss data: {e:?}")))?;
        if let Some(i) = losses
            .iter()
            .position(|l| !l.is_finite() || *l > EXPLODED_LOSS)
        {
            let step = self.step_count() - losses.len() + i + 1;
            return Err(Error::Diverged(format!(
                "the loss became {} at step {step}: training diverged. Lower the learning rate \
                 or raise Adam ε.",
                losses[i]
            )));
        }
        Ok(losses)
    }

    /// Accuracy-vs-examples curves on the training pool's tasks, unseen tasks, and the unseen
    /// dataset.
    pub async fn evaluate(&self) -> Result<Vec<Curve>, Error> {
        let c = self.config();
        let mut curves = Vec::with_capacity(self.sets.len());
        for set in &self.sets {
            curves.push(
                evaluate(
                    self.trainer.model(),
                    c.tasks.format,
                    c.model.n_classes,
                    set,
                    self.trainer.device(),
                )
                .await?,
            );
        }
        Ok(curves)
    }
}

/// One unseen task's sequence for the step-through (seeded by `seed`): MNIST test images (the
/// first ones, which the page also has at full size), a random projection and a random
/// permutation of the labels, `config`'s length. The batch's `indices` say which of
/// `data.shown` to show.
pub fn walk(data: &WalkData, config: &RunConfig, seed: u64) -> Batch {
    sequence(&data.inputs, config, seed)
}

/// The task of [`sequence`]`(data, config, seed)`: its projection and label permutation (of
/// the data's classes among as many of the learner's labels, as evaluation sets do).
pub fn sequence_task(data: &Dataset, config: &RunConfig, seed: u64) -> Task {
    Task::from_seed(
        mix_seed(seed, 0x7761_6c6b),
        data.n_features,
        config.model.d_in,
        data.n_classes.min(config.model.n_classes),
        false,
    )
}

/// One sequence of an unseen task of `data` (seeded by `seed`), `config`'s length.
pub fn sequence(data: &Dataset, config: &RunConfig, seed: u64) -> Batch {
    let task = sequence_task(data, config, seed);
    let mut r = rng(mix_seed(mix_seed(seed, 0x7761_6c6b), 1));
    Batch::sample(
        data,
        &[task],
        config.tasks.seq_len,
        config.model.d_in,
        &mut r,
    )
}
