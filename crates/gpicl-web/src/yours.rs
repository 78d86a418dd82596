//! A visitor's own table, learnt in context by the shipped learner: the file is parsed (in the
//! training worker, off the page's thread), random tasks are made of it as of MNIST (a random
//! projection to the learner's inputs, a random renaming of the labels), and the learner's
//! accuracy-vs-examples curve is measured beside 1-NN, logistic regression and an MLP fit on
//! the same contexts. The file never leaves the browser. Native code: tested on Flex.

use burn::prelude::Device;
use gpicl_core::baselines::{Baseline, curve_positions};
use gpicl_core::eval::evaluate;
use gpicl_core::parse::{LabelColumn, parse_csv};
use gpicl_core::{Curve, Error, EvalSet, EvalTasks, RunConfig, TaskPool, TaskSampler, Transformer};
use serde::{Deserialize, Serialize};

use crate::chart::BaselineCurve;

/// The largest file the page reads for this.
pub const MAX_BYTES: usize = 20 * 1024 * 1024;
/// Fewest rows a table needs (a sequence draws its examples from them).
pub const MIN_ROWS: usize = 20;
/// Examples per evaluation sequence (at most the learner's own length).
pub const SEQ_LEN: usize = 50;
/// Evaluation sequences for the learner, and the first of them for the baselines.
pub const SEQUENCES: usize = 64;
/// Sequences the baselines are fit on.
pub const BASELINE_SEQUENCES: usize = 16;
/// Seed of the evaluation tasks.
pub const SEED: u64 = 1234;

/// What the learner made of a table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The file's name.
    pub name: String,
    /// Rows, features and classes read.
    pub rows: usize,
    /// Feature columns.
    pub features: usize,
    /// Distinct labels.
    pub classes: usize,
    /// The learner's accuracy and loss at each position.
    pub curve: Curve,
    /// The baselines at some positions.
    pub baselines: Vec<BaselineCurve>,
}

/// Reads `bytes` (a CSV file named `name`, the label in `label`) and measures the learner
/// (`model`, meta-trained with `config`) on random tasks of it, beside the baselines.
pub async fn learn(
    name: &str,
    bytes: &[u8],
    label: LabelColumn,
    config: &RunConfig,
    model: &Transformer,
    device: &Device,
) -> Result<Report, Error> {
    if bytes.len() > MAX_BYTES {
        return Err(Error::Data(format!(
            "{name} is {:.1} MiB; at most {} MiB are read",
            bytes.len() as f64 / 1048576.0,
            MAX_BYTES / 1048576
        )));
    }
    let data = parse_csv(name, bytes, label)?.prepared(1)?;
    let n_classes = config.model.n_classes;
    data.check_classes(n_classes)?;
    if data.len() < MIN_ROWS {
        return Err(Error::Data(format!(
            "{name}: {} rows; at least {MIN_ROWS} are needed",
            data.len()
        )));
    }
    let seq_len = SEQ_LEN.min(config.tasks.seq_len);
    let sampler = TaskSampler::new(TaskPool::Unlimited, 0.0, config.model.d_in, n_classes, 0)?;
    let set = EvalSet::new(
        format!("{name}: the shipped learner"),
        &data,
        EvalTasks::Unseen,
        &sampler,
        None,
        SEQUENCES,
        seq_len,
        config.model.d_in,
        n_classes,
        SEED,
    )?;
    let curve = evaluate(model, config.tasks.format, n_classes, &set, device).await?;
    let positions = curve_positions(seq_len);
    let baselines = Baseline::standard()
        .iter()
        .map(|b| {
            let points = b.curve(&set, n_classes, &positions, BASELINE_SEQUENCES);
            (format!("{}, same contexts", b.name()), points)
        })
        .collect();
    Ok(Report {
        name: name.into(),
        rows: data.len(),
        features: data.n_features,
        classes: data.n_classes,
        curve,
        baselines,
    })
}
