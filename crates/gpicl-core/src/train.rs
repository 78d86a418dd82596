//! Meta-training: sample a batch of tasks, forward, cross-entropy at every position, backward,
//! Adam. A step never reads from the device, so the same loop drives the browser (which reads
//! asynchronously) and the CLI.

use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::prelude::*;
use burn::tensor::Bytes;
use burn::tensor::activation::log_softmax;
use serde::{Deserialize, Serialize};

use crate::checkpoint::{Checkpoint, read_values};
use crate::config::{RunConfig, TrainConfig};
use crate::eval::{EvalSet, EvalTasks};
use crate::model::Transformer;
use crate::optim::Adam;
use crate::task::{Batch, SequenceClasses, TaskSampler, mix_seed};
use crate::tokens::TokenFormat;
use crate::{Dataset, Error};

/// Mean cross-entropy over all positions of all sequences, and the per-position predictions'
/// log-probabilities `[batch, seq, classes]`.
pub fn sequence_loss(
    model: &Transformer,
    format: TokenFormat,
    tokens: Tensor<3>,
    targets: Tensor<2, Int>,
) -> (Tensor<1>, Tensor<3>) {
    let logits = format.prediction_logits(model.forward(tokens));
    let logp = log_softmax(logits, 2);
    let nll = logp.clone().gather(2, targets.unsqueeze_dim::<3>(2)).neg();
    (nll.mean(), logp)
}

/// The learning rate at `step` (0-based): linear warm-up, then constant or cosine to lr/10.
pub fn learning_rate(t: &TrainConfig, step: usize) -> f64 {
    if step < t.warmup_steps {
        return t.lr * (step + 1) as f64 / t.warmup_steps as f64;
    }
    if !t.cosine_decay {
        return t.lr;
    }
    let span = t.steps.saturating_sub(t.warmup_steps).max(1) as f64;
    let progress = ((step - t.warmup_steps) as f64 / span).min(1.0);
    let floor = t.lr / 10.0;
    floor + (t.lr - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
}

/// What a checkpoint needs besides the model and optimizer records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    /// Steps completed.
    pub step: usize,
    /// Position of the training stream (tasks and examples).
    pub sampler_word_pos: u128,
}

/// Owns the model, the optimizer and the training stream of one run.
pub struct Trainer {
    config: RunConfig,
    device: Device,
    model: Transformer,
    optim: Adam,
    sampler: TaskSampler,
    step: usize,
    /// Parts each batch's forward and backward passes are split into (see
    /// [`Trainer::set_micro_batches`]).
    micro_batches: usize,
    /// The training dataset's rows, kept on a native GPU ([`Trainer::keeps_rows_on_device`]).
    rows: Option<DeviceRows>,
}

/// A dataset's feature rows held on the training device, so that a step gathers its examples
/// there from indices (as PyTorch indexes a dataset on the GPU) instead of uploading them.
/// The browser never keeps any ([`rows_stay_on`]).
#[cfg_attr(target_family = "wasm", allow(dead_code))]
struct DeviceRows {
    /// The dataset they hold: the address and length of its features. A run trains on one
    /// dataset; one at another address is uploaded in its place.
    source: (usize, usize),
    /// `[examples, n_features]`.
    values: Tensor<2>,
}

/// Whether a run on `device` keeps its dataset's rows there: on native GPUs. On Flex an upload
/// is a copy in the same memory, and in the browser the page keeps its data compact on the
/// host (and a WebGPU buffer of the whole dataset would outweigh the few hundred kilobytes of
/// a step's examples).
fn rows_stay_on(device: &Device) -> bool {
    !cfg!(target_family = "wasm") && !crate::kernels::on_flex(device)
}

impl Trainer {
    /// A fresh run on `device` (autodiff is enabled here). Weights come from `config.seed`.
    pub fn new(config: RunConfig, device: &Device) -> Result<Self, Error> {
        config.validate()?;
        let device = device.clone().autodiff();
        let model = config
            .model
            .init(mix_seed(config.seed, 0x006d_6f64_656c), &device)?;
        let sampler = training_sampler(&config)?;
        let optim = Adam::new(&config.train);
        Ok(Self {
            config,
            device,
            model,
            optim,
            sampler,
            step: 0,
            micro_batches: 1,
            rows: None,
        })
    }

    /// Splits each step's batch into `n` micro-batches (clamped to 1..=batch size) whose
    /// gradients are summed before Adam's update: the same step, up to float rounding (the
    /// loss is each part's mean weighted by its share of the batch), holding the activations
    /// of one part at a time instead of the whole batch's. The page's CPU fallback uses it to
    /// keep its WebAssembly memory small (a memory that never shrinks); not part of the run's
    /// configuration, since it does not change what is trained.
    pub fn set_micro_batches(&mut self, n: usize) {
        self.micro_batches = n.clamp(1, self.config.train.batch_size.max(1));
    }

    /// Continues the run saved in `checkpoint` (written by [`Trainer::checkpoint`], here or in
    /// the browser): the same weights, optimizer state and training stream, so the next step is
    /// the one the saved run would have taken.
    pub fn resume(checkpoint: &Checkpoint, device: &Device) -> Result<Self, Error> {
        let mut trainer = Self::new(checkpoint.config.clone(), device)?;
        trainer.model =
            crate::checkpoint::load_params(trainer.model, &checkpoint.params, &trainer.device)?;
        trainer
            .optim
            .set_moments(checkpoint.moments(&trainer.device));
        trainer
            .sampler
            .set_word_pos(checkpoint.state.sampler_word_pos);
        trainer.step = checkpoint.state.step;
        Ok(trainer)
    }

    /// Starts this fresh run from `params` (another learner's weights, of this model's shape,
    /// in the model's order: [`crate::checkpoint::read_values`]) instead of its seeded
    /// initialisation, with a fresh optimizer: fine-tuning. Only before the first step.
    pub fn start_from(&mut self, params: &[crate::checkpoint::ParamValues]) -> Result<(), Error> {
        if self.step > 0 {
            return Err(Error::Config(
                "a run that has taken steps cannot start from other weights".into(),
            ));
        }
        // Parameter ids differ between models built apart; the order and shapes do not.
        let own = crate::checkpoint::param_ids(&self.model);
        if own.len() != params.len() {
            return Err(Error::Checkpoint(format!(
                "{} parameters given, the model has {}",
                params.len(),
                own.len()
            )));
        }
        let renamed: Vec<_> = own
            .into_iter()
            .zip(params)
            .map(|(id, p)| crate::checkpoint::ParamValues {
                id,
                shape: p.shape.clone(),
                values: p.values.clone(),
            })
            .collect();
        self.model = crate::checkpoint::load_params(self.model.clone(), &renamed, &self.device)?;
        Ok(())
    }

    /// The run as it stands, read from the device in one asynchronous round trip (in the
    /// browser await it; natively block on it). `backend` names the device for the record.
    pub async fn checkpoint(&self, backend: &str) -> Result<Checkpoint, Error> {
        let (params, moments) = read_values(&self.model, &self.optim.moments()).await?;
        Ok(Checkpoint {
            config: self.config.clone(),
            state: self.state(),
            written_by: format!("gpicl {}, {backend}", env!("CARGO_PKG_VERSION")),
            params,
            moments,
        })
    }

    /// One meta-training step on `data`. Returns the mean loss as a device tensor; reading it is
    /// the caller's choice (and cost).
    pub fn step(&mut self, data: &Dataset) -> Result<Tensor<1>, Error> {
        let batch = self.sample(data)?;
        let (tokens, targets) = self.encode(&batch);
        if self.micro_batches <= 1 {
            let loss = self.loss(tokens, targets);
            let grads = self.gradients(&loss);
            self.apply(grads);
            return Ok(loss.detach());
        }
        // At most one part per sequence: `set_micro_batches` clamps to the batch size.
        let (size, parts) = (tokens.dims()[0], self.micro_batches);
        let mut sum = GradientsAccumulator::<Transformer>::new();
        let mut total: Option<Tensor<1>> = None;
        for i in 0..parts {
            let (from, to) = (i * size / parts, (i + 1) * size / parts);
            let loss = self.loss(
                tokens.clone().slice(from..to),
                targets.clone().slice(from..to),
            ) * ((to - from) as f32 / size as f32);
            let grads = self.gradients(&loss);
            sum.accumulate(&self.model, grads);
            let loss = loss.detach();
            total = Some(total.map_or(loss.clone(), |t| t + loss));
        }
        self.apply(sum.grads());
        Ok(total.expect("at least one part"))
    }

    /// The first phase of [`Trainer::step`] (the phases are public for profiling): the next
    /// batch of tasks and examples, drawn on the CPU.
    pub fn sample(&mut self, data: &Dataset) -> Result<Batch, Error> {
        data.check_classes(self.config.model.n_classes)?;
        self.keep_rows(data);
        self.sampler.set_examples_on_device(self.rows.is_some());
        let tasks = &self.config.tasks;
        let bursty = tasks.classes_curriculum_steps.is_none_or(|n| self.step < n);
        self.sampler.set_classes(
            match (
                tasks.classes_per_sequence.filter(|_| bursty),
                tasks.varied_classes,
            ) {
                (Some(k), _) => SequenceClasses::Some(k),
                (None, true) => SequenceClasses::Varied,
                (None, false) => SequenceClasses::All,
            },
        );
        let t = &self.config.train;
        Ok(self
            .sampler
            .next_batch(data, t.batch_size, self.config.tasks.seq_len))
    }

    /// The second phase: `batch` as input tokens and targets on the device. Where the
    /// dataset's rows are kept there ([`Trainer::keeps_rows_on_device`]) and every example of
    /// the batch is one of them (a random table's are not), the examples are gathered there
    /// from their indices (the sampler then leaves [`Batch::x`] empty: the host copies none of
    /// them); otherwise they are uploaded.
    pub fn encode(&self, batch: &Batch) -> (Tensor<3>, Tensor<2, Int>) {
        let format = self.config.tasks.format;
        let n_classes = self.config.model.n_classes;
        match self.gathered(batch) {
            Some(x) => format.encode_rows(batch, x, n_classes, &self.device),
            None => format.encode(batch, n_classes, &self.device),
        }
    }

    /// `batch`'s examples gathered from the rows kept on the device, `[batch, seq, n_in]`;
    /// `None` where none are kept or the batch has examples of its own (random tables).
    #[cfg(not(target_family = "wasm"))]
    fn gathered(&self, batch: &Batch) -> Option<Tensor<3>> {
        let rows = self.rows.as_ref()?;
        let held = rows.values.dims()[0];
        if batch.indices.iter().any(|&i| i >= held) {
            return None;
        }
        let indices: Vec<i64> = batch.indices.iter().map(|&i| i as i64).collect();
        let indices = Tensor::<1, Int>::from_data(
            TensorData::new(indices, [batch.indices.len()]),
            &self.device,
        );
        let shape = [batch.batch_size, batch.seq_len, batch.n_in];
        Some(rows.values.clone().select(0, indices).reshape(shape))
    }

    /// In the browser no rows are kept on the device ([`rows_stay_on`]), and the page's
    /// module carries no gather kernel for them.
    #[cfg(target_family = "wasm")]
    fn gathered(&self, _: &Batch) -> Option<Tensor<3>> {
        None
    }

    /// Whether this run keeps its dataset's rows on the device and gathers each step's
    /// examples there: natively on a GPU, once a step has sampled from the dataset.
    pub fn keeps_rows_on_device(&self) -> bool {
        self.rows.is_some()
    }

    /// Uploads `data`'s rows where [`rows_stay_on`] the device, unless they are there already.
    fn keep_rows(&mut self, data: &Dataset) {
        if !rows_stay_on(&self.device) || data.features.is_empty() {
            self.rows = None;
            return;
        }
        let source = (data.features.as_ptr() as usize, data.features.len());
        if self.rows.as_ref().is_some_and(|r| r.source == source) {
            return;
        }
        self.rows = None; // the old rows' memory goes before the new rows arrive
        let values = Tensor::<2>::from_data(
            TensorData::new(data.features.clone(), [data.len(), data.n_features]),
            &self.device,
        );
        self.rows = Some(DeviceRows { source, values });
    }

    /// The third phase, the forward pass: the mean cross-entropy over all positions.
    pub fn loss(&self, tokens: Tensor<3>, targets: Tensor<2, Int>) -> Tensor<1> {
        sequence_loss(&self.model, self.config.tasks.format, tokens, targets).0
    }

    /// The fourth phase, the backward pass: the loss's gradients.
    pub fn gradients(&self, loss: &Tensor<1>) -> GradientsParams {
        GradientsParams::from_grads(loss.backward(), &self.model)
    }

    /// The last phase: Adam applies `grads` with this step's learning rate, and the step is
    /// counted.
    pub fn apply(&mut self, grads: GradientsParams) {
        let lr = learning_rate(&self.config.train, self.step);
        self.model = self.optim.step(lr, self.model.clone(), grads);
        self.step += 1;
    }

    /// The run's three evaluation sets (see [`eval_sets`]).
    pub fn eval_sets(
        &self,
        train: &Dataset,
        test: &Dataset,
        unseen: &Dataset,
    ) -> Result<Vec<EvalSet>, Error> {
        eval_sets(&self.config, train, test, unseen)
    }

    /// Steps completed.
    pub fn step_count(&self) -> usize {
        self.step
    }

    /// The run's configuration.
    pub fn config(&self) -> &RunConfig {
        &self.config
    }

    /// The model being trained.
    pub fn model(&self) -> &Transformer {
        &self.model
    }

    /// The training stream (its pool defines the "seen" tasks).
    pub fn sampler(&self) -> &TaskSampler {
        &self.sampler
    }

    /// The device the run trains on (with autodiff).
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The learning rate of the next step.
    pub fn current_lr(&self) -> f64 {
        learning_rate(&self.config.train, self.step)
    }

    /// Step count and stream position, for a checkpoint.
    pub fn state(&self) -> TrainerState {
        TrainerState {
            step: self.step,
            sampler_word_pos: self.sampler.word_pos(),
        }
    }
}

/// The training stream of `config` (its task pool and examples), from the run's seed.
fn training_sampler(config: &RunConfig) -> Result<TaskSampler, Error> {
    let mut sampler = TaskSampler::new(
        config.tasks.pool,
        config.tasks.bias_fraction,
        config.model.d_in,
        config.model.n_classes,
        mix_seed(config.seed, 0x7461_736b),
    )?;
    sampler.set_low_rank(config.tasks.low_rank);
    sampler.set_projections(config.tasks.projections);
    sampler.set_tables(config.tasks.random_tables, config.tasks.table_prior);
    Ok(sampler)
}

/// The three evaluation sets of a run of `config`, fixed by `config.eval.seed`: tasks of the
/// training pool on `train`, unseen tasks on `test` (held-out examples of the same dataset),
/// and unseen tasks on `unseen` (a dataset never trained on). They depend on the config alone,
/// so a checkpoint is evaluated on its run's sets without a trainer.
pub fn eval_sets(
    config: &RunConfig,
    train: &Dataset,
    test: &Dataset,
    unseen: &Dataset,
) -> Result<Vec<EvalSet>, Error> {
    let c = config;
    let sampler = training_sampler(c)?;
    let set = |name: String, d: &Dataset, tasks| {
        EvalSet::new(
            name,
            d,
            tasks,
            &sampler,
            c.tasks.pool.size(),
            c.eval.sequences,
            c.tasks.seq_len,
            c.model.d_in,
            c.model.n_classes,
            c.eval.seed,
        )
    };
    Ok(vec![
        set(format!("{} seen tasks", train.name), train, EvalTasks::Seen)?,
        set(
            format!("{} unseen tasks", train.name),
            test,
            EvalTasks::Unseen,
        )?,
        set(
            format!("{} unseen tasks", unseen.name),
            unseen,
            EvalTasks::Unseen,
        )?,
    ])
}

/// The precision a learner's weights are stored at ([`model_bytes`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    /// 32-bit floats: the values exactly as trained.
    F32,
    /// 16-bit floats (IEEE half): half the bytes, each value rounded to 11 significant bits;
    /// loaded back as f32 ([`load_model`]). The page's shipped learner is stored so.
    F16,
}

/// A model's parameters in burn's store format, at `precision`. Reads the device synchronously.
pub fn model_bytes(model: &Transformer, precision: Precision) -> Result<Vec<u8>, Error> {
    /// Casts every float parameter to f16.
    struct Half;
    impl burn::module::ModuleMapper for Half {
        fn map_float<const D: usize>(
            &mut self,
            param: burn::module::Param<Tensor<D>>,
        ) -> burn::module::Param<Tensor<D>> {
            let (id, tensor, mapper) = param.consume();
            let tensor = tensor.cast(burn::tensor::FloatDType::F16);
            burn::module::Param::from_mapped_value(id, tensor, mapper)
        }
    }
    let model = match precision {
        Precision::F32 => model.clone(),
        Precision::F16 => model.clone().map(&mut Half),
    };
    model
        .into_record()
        .into_bytes()
        .map(|b| b.to_vec())
        .map_err(|e| Error::Checkpoint(format!("model: {e}")))
}

/// Loads parameters saved by [`model_bytes`] (at either precision) into `model`, whose shape
/// must match; the parameters keep `model`'s f32.
pub fn load_model(model: Transformer, bytes: Vec<u8>) -> Result<Transformer, Error> {
    let record = burn::store::ModuleRecord::from_bytes(Bytes::from_bytes_vec(bytes))
        .map_err(|e| Error::Checkpoint(format!("model: {e}")))?
        .cast_to_module_dtype();
    model
        .try_load_record(record)
        .map_err(|e| Error::Checkpoint(format!("model: {e}")))
}
