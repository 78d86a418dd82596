//! # gpicl-core
//!
//! General-purpose in-context learning by meta-learning Transformers (Kirsch et al., 2022),
//! as a library with no UI, no file or network I/O and no globals. Every random choice flows
//! from an explicit seed.
//!
//! Data flow: bytes → [`parse`] → [`Dataset`] → [`task::TaskSampler`] (tasks = projection +
//! permutation) → [`task::Batch`] → [`tokens::TokenFormat::encode`] → [`model::Transformer`] →
//! [`train::Trainer`] (loss, Adam) and [`eval::evaluate`] (accuracy per position: the curve).

#![warn(missing_docs)]

pub mod baselines;
pub use gpicl_kernels as kernels;
pub mod checkpoint;
pub mod config;
pub mod dataset;
pub mod eval;
pub mod manifest;
pub mod model;
pub mod normals;
pub mod optim;
pub mod parse;
pub mod results;
pub mod share;
pub mod suite;
pub mod task;
pub mod tokens;
pub mod train;

pub use checkpoint::Checkpoint;
pub use config::RunConfig;
pub use dataset::Dataset;
pub use eval::{Curve, EvalSet, EvalTasks};
pub use manifest::Manifest;
pub use model::{Arch, KvCache, ModelConfig, TorchParameter, Transformer};
pub use results::{EvalPoint, Results};
pub use task::{TaskPool, TaskSampler};
pub use tokens::TokenFormat;
pub use train::Trainer;

pub(crate) use gpicl_kernels::map_indexed;

/// Everything that can go wrong, each with a message fit for a user.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A malformed file.
    #[error("parse error: {0}")]
    Parse(String),
    /// A dataset unusable for the requested purpose.
    #[error("data error: {0}")]
    Data(String),
    /// An invalid configuration value.
    #[error("config error: {0}")]
    Config(String),
    /// A checkpoint that cannot be written or read.
    #[error("checkpoint error: {0}")]
    Checkpoint(String),
    /// The compute device failed.
    #[error("device error: {0}")]
    Device(String),
    /// Training diverged: the loss is no longer finite.
    #[error("{0}")]
    Diverged(String),
}
