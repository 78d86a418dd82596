//! The page's experiment settings: one table of fields, each read from and written to the
//! [`RunConfig`] the page will train with. Bad values are refused with a message and change
//! nothing.

use gpicl_core::model::ModelConfig;
use gpicl_core::{RunConfig, TaskPool, TokenFormat};

/// The presets the page offers (names of [`RunConfig::preset`]).
pub const PAGE_PRESETS: [&str; 2] = ["browser", "tiny"];

/// Largest finite pool exponent on the slider; one more step means "unlimited".
pub const MAX_TASKS_LOG2: u32 = 20;

/// Batch sizes offered.
pub const BATCH_SIZES: [usize; 6] = [8, 16, 32, 64, 128, 256];

/// Model sizes offered: name, d_model, layers, heads, feed-forward width.
pub const MODEL_SIZES: [(&str, usize, usize, usize, usize); 4] = [
    ("xs", 32, 2, 2, 64),
    ("small", 64, 2, 4, 256),
    ("medium", 128, 2, 8, 256),
    ("large", 128, 4, 8, 512),
];

/// A setting shown in the page's controls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// A named preset (replaces every other setting).
    Preset,
    /// Number of tasks: the pool's log2, or [`MAX_TASKS_LOG2`] + 1 for unlimited.
    Tasks,
    /// Sequences per batch.
    BatchSize,
    /// Adam's peak learning rate.
    LearningRate,
    /// Adam's ε.
    Epsilon,
    /// Fraction of each batch with the fixed label permutation.
    BiasFraction,
    /// One of [`MODEL_SIZES`].
    ModelSize,
    /// Token format: "pair" or "paper".
    Format,
    /// The run's seed.
    Seed,
}

impl Field {
    /// Every field, in the order the controls show them.
    pub const ALL: [Field; 9] = [
        Field::Preset,
        Field::Tasks,
        Field::BatchSize,
        Field::LearningRate,
        Field::Epsilon,
        Field::BiasFraction,
        Field::ModelSize,
        Field::Format,
        Field::Seed,
    ];

    /// The field's label in the page.
    pub fn label(self) -> &'static str {
        match self {
            Field::Preset => "Preset",
            Field::Tasks => "Number of tasks",
            Field::BatchSize => "Batch size",
            Field::LearningRate => "Learning rate",
            Field::Epsilon => "Adam ε",
            Field::BiasFraction => "Bias fraction",
            Field::ModelSize => "Model size",
            Field::Format => "Token format",
            Field::Seed => "Seed",
        }
    }

    /// The field's current value in `config`, as the control shows it.
    pub fn value(self, config: &RunConfig) -> String {
        match self {
            Field::Preset => config.name.clone(),
            Field::Tasks => match config.tasks.pool {
                TaskPool::Finite { log2 } => log2.to_string(),
                TaskPool::Unlimited => (MAX_TASKS_LOG2 + 1).to_string(),
            },
            Field::BatchSize => config.train.batch_size.to_string(),
            Field::LearningRate => config.train.lr.to_string(),
            Field::Epsilon => format!("{:e}", config.train.epsilon),
            Field::BiasFraction => config.tasks.bias_fraction.to_string(),
            Field::ModelSize => model_size_name(&config.model)
                .unwrap_or("custom")
                .to_string(),
            Field::Format => match config.tasks.format {
                TokenFormat::Pair => "pair".into(),
                TokenFormat::Paper => "paper".into(),
            },
            Field::Seed => config.seed.to_string(),
        }
    }

    /// Sets the field in `config` from `text`. On error `config` is unchanged and the message
    /// names the field and what it accepts.
    pub fn apply(self, config: &mut RunConfig, text: &str) -> Result<(), String> {
        let text = text.trim();
        let bad = |what: &str| Err(format!("{}: {what} (got \"{text}\")", self.label()));
        let mut next = config.clone();
        match self {
            Field::Preset => {
                if !PAGE_PRESETS.contains(&text) {
                    return bad(&format!("one of {}", PAGE_PRESETS.join(", ")));
                }
                next = RunConfig::preset(text).map_err(|e| e.to_string())?;
            }
            Field::Tasks => match text.parse::<u32>() {
                Ok(k) if k <= MAX_TASKS_LOG2 => next.tasks.pool = TaskPool::Finite { log2: k },
                Ok(k) if k == MAX_TASKS_LOG2 + 1 => next.tasks.pool = TaskPool::Unlimited,
                _ => return bad(&format!("an exponent from 0 to {}", MAX_TASKS_LOG2 + 1)),
            },
            Field::BatchSize => match text.parse::<usize>() {
                Ok(b) if BATCH_SIZES.contains(&b) => next.train.batch_size = b,
                _ => return bad(&format!("one of {BATCH_SIZES:?}")),
            },
            Field::LearningRate => match text.parse::<f64>() {
                Ok(lr) if lr > 0.0 && lr <= 0.1 => next.train.lr = lr,
                _ => return bad("a number in (0, 0.1]"),
            },
            Field::Epsilon => match text.parse::<f32>() {
                Ok(e) if e > 0.0 && e <= 1.0 => next.train.epsilon = e,
                _ => return bad("a number in (0, 1]"),
            },
            Field::BiasFraction => match text.parse::<f32>() {
                Ok(f) if (0.0..=1.0).contains(&f) => next.tasks.bias_fraction = f,
                _ => return bad("a number in [0, 1]"),
            },
            Field::ModelSize => match MODEL_SIZES.iter().find(|m| m.0 == text) {
                Some(&(_, d_model, n_layers, n_heads, d_ff)) => {
                    next.model = ModelConfig {
                        d_model,
                        n_layers,
                        n_heads,
                        d_ff,
                        ..next.model
                    }
                }
                None => {
                    let names: Vec<&str> = MODEL_SIZES.iter().map(|m| m.0).collect();
                    return bad(&format!("one of {}", names.join(", ")));
                }
            },
            Field::Format => match text {
                "pair" => next.tasks.format = TokenFormat::Pair,
                "paper" => next.tasks.format = TokenFormat::Paper,
                _ => return bad("\"pair\" or \"paper\""),
            },
            Field::Seed => match text.parse::<u64>() {
                Ok(s) => next.seed = s,
                _ => return bad("a whole number from 0 to 18446744073709551615"),
            },
        }
        next.validate().map_err(|e| e.to_string())?;
        *config = next;
        Ok(())
    }
}

/// The name of `model`'s entry in [`MODEL_SIZES`], if it is one of them.
pub fn model_size_name(model: &ModelConfig) -> Option<&'static str> {
    MODEL_SIZES
        .iter()
        .find(|m| {
            (m.1, m.2, m.3, m.4) == (model.d_model, model.n_layers, model.n_heads, model.d_ff)
        })
        .map(|m| m.0)
}

/// "2^k = N tasks" or "unlimited" for the tasks slider's position `k`.
pub fn tasks_label(config: &RunConfig) -> String {
    match config.tasks.pool {
        TaskPool::Finite { log2 } => format!("2^{log2} = {} tasks", 1u64 << log2),
        TaskPool::Unlimited => "unlimited (a new task for every sequence)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_round_trips_its_own_value() {
        for preset in PAGE_PRESETS {
            let config = RunConfig::preset(preset).unwrap();
            for field in Field::ALL {
                let mut c = config.clone();
                field.apply(&mut c, &field.value(&config)).unwrap();
                assert_eq!(c, config, "{field:?} on {preset}");
            }
        }
    }

    #[test]
    fn bad_values_are_refused_with_the_field_named_and_change_nothing() {
        let config = RunConfig::preset("browser").unwrap();
        let cases = [
            (Field::Preset, "paper"),
            (Field::Tasks, "22"),
            (Field::Tasks, "-1"),
            (Field::BatchSize, "100000"),
            (Field::LearningRate, "NaN"),
            (Field::LearningRate, "0"),
            (Field::Epsilon, "abc"),
            (Field::BiasFraction, "1.5"),
            (Field::ModelSize, "huge"),
            (Field::Format, "pairs"),
            (Field::Seed, "-3"),
        ];
        for (field, text) in cases {
            let mut c = config.clone();
            let err = field.apply(&mut c, text).unwrap_err();
            assert!(err.starts_with(field.label()), "{err}");
            assert_eq!(c, config);
        }
    }

    #[test]
    fn settings_change_the_config() {
        let mut c = RunConfig::preset("browser").unwrap();
        Field::Tasks.apply(&mut c, "4").unwrap();
        assert_eq!(c.tasks.pool, TaskPool::Finite { log2: 4 });
        assert_eq!(tasks_label(&c), "2^4 = 16 tasks");
        Field::Tasks.apply(&mut c, "21").unwrap();
        assert_eq!(c.tasks.pool, TaskPool::Unlimited);
        Field::ModelSize.apply(&mut c, "large").unwrap();
        assert_eq!((c.model.d_model, c.model.n_layers), (128, 4));
        Field::Epsilon.apply(&mut c, "1e-5").unwrap();
        assert_eq!(c.train.epsilon, 1e-5);
        Field::Preset.apply(&mut c, "tiny").unwrap();
        assert_eq!(c, RunConfig::preset("tiny").unwrap());
    }
}
