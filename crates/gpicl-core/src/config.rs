//! Run configuration: everything that defines an experiment, serialisable, with named presets.

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::model::{Arch, ModelConfig};
use crate::task::{ProjectionSource, TablePrior, TaskPool};
use crate::tokens::TokenFormat;

/// The task distribution the learner meta-trains on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskConfig {
    /// Number of tasks (finite pool or unlimited).
    pub pool: TaskPool,
    /// Fraction of each batch whose labels keep one fixed permutation (paper §4.4).
    pub bias_fraction: f32,
    /// How examples become tokens.
    pub format: TokenFormat,
    /// Examples per sequence.
    pub seq_len: usize,
    /// Average-pool factor applied to the dataset's square images before projection (1 = none).
    pub image_pool: usize,
    /// Draw each training sequence from this many random classes ("bursty" sequences, a
    /// curriculum lever); `None`: all classes. Evaluation always uses all classes.
    #[serde(default)]
    pub classes_per_sequence: Option<usize>,
    /// Use `classes_per_sequence` only for the first this many steps, then all classes (a
    /// curriculum over classes); `None`: for the whole run.
    #[serde(default)]
    pub classes_curriculum_steps: Option<usize>,
    /// Where a sequence would draw from all classes, draw its number of classes `k` uniformly
    /// from 2 to all, pick `k` classes and rename them among the first `k` labels: the tasks a
    /// k-class dataset gives at evaluation (a lever for learners of any table).
    #[serde(default)]
    pub varied_classes: bool,
    /// Project each training task's inputs through a random bottleneck of rank `r` (drawn
    /// log-uniformly from 1 to the input width), so that inputs lie in `r` useful dimensions,
    /// as a table of a few features does once projected (a lever for learners of any table).
    #[serde(default)]
    pub low_rank: bool,
    /// The fraction of each training batch that is random tables instead of tasks of the
    /// dataset: features from N(0, 1) labelled by a random small network, 2…10 classes
    /// (`task::random_table`; a lever for learners of any table). 0: the dataset only.
    #[serde(default)]
    pub random_tables: f32,
    /// The functions random tables are labelled by: a random network (`net`, the default) or a
    /// mix of networks, linear maps, parities and rings (`mixed`; `task::TablePrior`).
    #[serde(default)]
    pub table_prior: TablePrior,
    /// Where the training tasks' projections are drawn: on the host (`host`, the default: the
    /// tasks of every earlier run) or on the training device (`device`: nothing uploaded but
    /// one key per sequence, for GPU speed; other draws from the same seeds;
    /// `task::ProjectionSource`). Evaluation sets are always drawn on the host.
    #[serde(default)]
    pub projections: ProjectionSource,
}

/// Optimisation settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Number of meta-training steps.
    pub steps: usize,
    /// Sequences per batch.
    pub batch_size: usize,
    /// Peak learning rate.
    pub lr: f64,
    /// Linear warm-up from 0 to `lr` over this many steps.
    pub warmup_steps: usize,
    /// Cosine decay from `lr` to `lr / 10` over the steps after warm-up (else constant).
    pub cosine_decay: bool,
    /// Adam β1.
    pub beta1: f32,
    /// Adam β2.
    pub beta2: f32,
    /// Adam ε (the paper: a smaller ε shortens the plateau).
    pub epsilon: f32,
    /// Gradient-norm clipping threshold, applied to each parameter tensor (`None`: off).
    pub grad_clip: Option<f32>,
}

/// Evaluation settings: fixed seeds so curves are comparable across runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalConfig {
    /// Evaluate every this many steps (0: only at the end).
    pub every: usize,
    /// Sequences per evaluation set.
    pub sequences: usize,
    /// Seed of the evaluation tasks and examples (independent of the run seed).
    pub seed: u64,
}

/// A whole experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunConfig {
    /// Preset or experiment name.
    pub name: String,
    /// Seed of the model's initial weights and of the training stream.
    pub seed: u64,
    /// The Transformer.
    pub model: ModelConfig,
    /// The task distribution.
    pub tasks: TaskConfig,
    /// The optimiser.
    pub train: TrainConfig,
    /// Evaluation.
    pub eval: EvalConfig,
}

/// Names of the presets, for help texts.
pub const PRESETS: &[&str] = &["tiny", "browser", "cpu", "pretrained", "bench", "paper"];

impl RunConfig {
    /// A named preset:
    /// - `tiny`: seconds on a CPU; for tests.
    /// - `browser`: small and quick, for WebGPU in a page; a curriculum over classes takes it
    ///   off the plateau in ~400 steps (~1 minute on Flex).
    /// - `cpu`: a paired-token learner on 7×7 MNIST that escapes the plateau in ~1000 steps
    ///   (~10 minutes on 2 CPU cores) and becomes a general-purpose learner within the hour.
    /// - `pretrained`: the learner shipped with the page (`web/pretrained/`): 4 layers, d 128,
    ///   99 examples in context (T=100), 7×7 inputs, batch 128; meant for a GPU (minutes), weeks
    ///   of work for the page's CPU fallback.
    /// - `bench`: the benchmark shape (B=32, T=50, d=128, 4 layers, 8 heads, paper tokens).
    /// - `paper`: the paper's Transformer (d 256, 4 layers, 8 heads, ff 1024, T=100).
    pub fn preset(name: &str) -> Result<Self, Error> {
        let base = RunConfig {
            name: name.to_string(),
            seed: 0,
            model: ModelConfig {
                arch: Arch::Transformer,
                d_in: 196,
                n_classes: 10,
                d_model: 128,
                n_layers: 4,
                n_heads: 8,
                d_ff: 512,
            },
            tasks: TaskConfig {
                pool: TaskPool::Unlimited,
                bias_fraction: 0.0,
                format: TokenFormat::Pair,
                seq_len: 50,
                image_pool: 2,
                classes_per_sequence: None,
                classes_curriculum_steps: None,
                varied_classes: false,
                low_rank: false,
                random_tables: 0.0,
                table_prior: TablePrior::Net,
                projections: ProjectionSource::Host,
            },
            train: TrainConfig {
                steps: 3000,
                batch_size: 64,
                lr: 1e-3,
                warmup_steps: 100,
                cosine_decay: false,
                beta1: 0.9,
                beta2: 0.999,
                epsilon: 1e-8,
                grad_clip: Some(1.0),
            },
            eval: EvalConfig {
                every: 250,
                sequences: 128,
                seed: 1234,
            },
        };
        let config = match name {
            "tiny" => RunConfig {
                model: ModelConfig {
                    arch: Arch::Transformer,
                    d_in: 16,
                    n_classes: 10,
                    d_model: 32,
                    n_layers: 2,
                    n_heads: 2,
                    d_ff: 64,
                },
                tasks: TaskConfig {
                    seq_len: 12,
                    image_pool: 4,
                    ..base.tasks.clone()
                },
                train: TrainConfig {
                    steps: 20,
                    batch_size: 8,
                    warmup_steps: 5,
                    ..base.train.clone()
                },
                eval: EvalConfig {
                    every: 10,
                    sequences: 16,
                    seed: 1234,
                },
                ..base
            },
            "browser" => RunConfig {
                model: ModelConfig {
                    arch: Arch::Transformer,
                    d_in: 49,
                    n_classes: 10,
                    d_model: 64,
                    n_layers: 2,
                    n_heads: 4,
                    d_ff: 256,
                },
                // Bursty 3-class sequences for 300 steps, then all classes: without this
                // curriculum this model sat on the plateau for 1000+ steps (see README).
                tasks: TaskConfig {
                    seq_len: 30,
                    image_pool: 4,
                    classes_per_sequence: Some(3),
                    classes_curriculum_steps: Some(300),
                    ..base.tasks.clone()
                },
                train: TrainConfig {
                    steps: 2000,
                    batch_size: 32,
                    ..base.train.clone()
                },
                eval: EvalConfig {
                    every: 100,
                    sequences: 64,
                    seed: 1234,
                },
                ..base
            },
            "cpu" => RunConfig {
                model: ModelConfig {
                    arch: Arch::Transformer,
                    d_in: 49,
                    n_classes: 10,
                    d_model: 128,
                    n_layers: 2,
                    n_heads: 8,
                    d_ff: 256,
                },
                tasks: TaskConfig {
                    image_pool: 4,
                    ..base.tasks.clone()
                },
                train: TrainConfig {
                    steps: 3000,
                    batch_size: 32,
                    ..base.train.clone()
                },
                eval: EvalConfig {
                    every: 250,
                    sequences: 256,
                    seed: 1234,
                },
                ..base
            },
            "pretrained" => RunConfig {
                model: ModelConfig {
                    arch: Arch::Transformer,
                    d_in: 49,
                    n_classes: 10,
                    d_model: 128,
                    n_layers: 4,
                    n_heads: 8,
                    d_ff: 512,
                },
                // The browser preset's curriculum (bursty 3-class sequences first) and a constant
                // learning rate, so a run cut short at step N equals the first N steps of a
                // longer one and `--steps N` re-creates it.
                tasks: TaskConfig {
                    seq_len: 100,
                    image_pool: 4,
                    classes_per_sequence: Some(3),
                    classes_curriculum_steps: Some(300),
                    ..base.tasks.clone()
                },
                train: TrainConfig {
                    steps: 20_000,
                    batch_size: 128,
                    ..base.train.clone()
                },
                eval: EvalConfig {
                    every: 500,
                    sequences: 256,
                    seed: 1234,
                },
                ..base
            },
            "bench" => RunConfig {
                tasks: TaskConfig {
                    format: TokenFormat::Paper,
                    ..base.tasks.clone()
                },
                train: TrainConfig {
                    batch_size: 32,
                    ..base.train.clone()
                },
                ..base
            },
            "paper" => RunConfig {
                model: ModelConfig {
                    arch: Arch::Transformer,
                    d_in: 784,
                    n_classes: 10,
                    d_model: 256,
                    n_layers: 4,
                    n_heads: 8,
                    d_ff: 1024,
                },
                tasks: TaskConfig {
                    format: TokenFormat::Paper,
                    seq_len: 100,
                    image_pool: 1,
                    ..base.tasks.clone()
                },
                train: TrainConfig {
                    steps: 50_000,
                    batch_size: 128,
                    ..base.train.clone()
                },
                eval: EvalConfig {
                    every: 1000,
                    sequences: 256,
                    seed: 1234,
                },
                ..base
            },
            other => {
                return Err(Error::Config(format!(
                    "unknown preset '{other}' (presets: {})",
                    PRESETS.join(", ")
                )));
            }
        };
        Ok(config)
    }

    /// Parses a JSON config and validates it.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        let config: RunConfig =
            serde_json::from_str(text).map_err(|e| Error::Config(format!("config: {e}")))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every field for a usable value.
    pub fn validate(&self) -> Result<(), Error> {
        self.model.validate()?;
        let t = &self.train;
        let bad = |m: &str| Err(Error::Config(m.to_string()));
        if self.tasks.seq_len == 0 || self.tasks.seq_len > 4096 {
            return bad("tasks.seq_len must be in 1..=4096");
        }
        if self.tasks.classes_per_sequence.is_some_and(|k| k < 2) {
            return bad("tasks.classes_per_sequence must be at least 2");
        }
        if self.tasks.image_pool == 0 {
            return bad("tasks.image_pool must be at least 1");
        }
        if !(0.0..=1.0).contains(&self.tasks.bias_fraction) {
            return bad("tasks.bias_fraction must be in [0, 1]");
        }
        if !(0.0..=1.0).contains(&self.tasks.random_tables) {
            return bad("tasks.random_tables must be in [0, 1]");
        }
        if self.tasks.low_rank && self.tasks.projections == ProjectionSource::Device {
            return bad(
                "tasks.low_rank needs tasks.projections = host (low-rank projections are drawn on the host)",
            );
        }
        if let TaskPool::Finite { log2 } = self.tasks.pool
            && log2 > 62
        {
            return bad("tasks.pool.finite.log2 must be at most 62");
        }
        if t.batch_size == 0 || t.batch_size > 65536 {
            return bad("train.batch_size must be in 1..=65536");
        }
        if !(t.lr.is_finite() && t.lr > 0.0 && t.lr < 1.0) {
            return bad("train.lr must be in (0, 1)");
        }
        if !(0.0..1.0).contains(&t.beta1) || !(0.0..1.0).contains(&t.beta2) {
            return bad("train.beta1 and train.beta2 must be in [0, 1)");
        }
        if !(t.epsilon.is_finite() && t.epsilon > 0.0) {
            return bad("train.epsilon must be positive");
        }
        if let Some(c) = t.grad_clip
            && !(c.is_finite() && c > 0.0)
        {
            return bad("train.grad_clip must be positive");
        }
        if self.eval.sequences == 0 {
            return bad("eval.sequences must be positive");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid_and_round_trip_through_json() {
        for name in PRESETS {
            let c = RunConfig::preset(name).unwrap();
            c.validate().unwrap();
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(RunConfig::from_json(&json).unwrap(), c);
        }
        assert!(RunConfig::preset("nope").is_err());
    }

    #[test]
    fn bad_configs_are_rejected_with_a_message() {
        let good = serde_json::to_value(RunConfig::preset("tiny").unwrap()).unwrap();
        let cases: Vec<(&str, serde_json::Value)> = vec![
            ("/train/lr", serde_json::json!(-1.0)),
            ("/train/batch_size", serde_json::json!(0)),
            ("/model/n_heads", serde_json::json!(3)),
            ("/tasks/bias_fraction", serde_json::json!(2.0)),
            ("/train/epsilon", serde_json::json!(0.0)),
            ("/tasks/seq_len", serde_json::json!("long")),
        ];
        for (path, value) in cases {
            let mut v = good.clone();
            *v.pointer_mut(path).unwrap() = value;
            let err = RunConfig::from_json(&v.to_string()).unwrap_err();
            assert!(!err.to_string().is_empty());
        }
        assert!(RunConfig::from_json("{").is_err());
        assert!(RunConfig::from_json(r#"{"name": "x"}"#).is_err());
    }
}
