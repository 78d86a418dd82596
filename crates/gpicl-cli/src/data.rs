//! Loading datasets from files (the CLI does the I/O; the core parses bytes).

use std::path::Path;

use anyhow::{Context, Result};
use gpicl_core::Dataset;
use gpicl_core::parse::{LabelColumn, parse_csv, parse_idx_pair};

/// The datasets of a run: MNIST train (meta-training), MNIST test (unseen tasks) and
/// Fashion-MNIST test (an unseen dataset).
pub struct RunData {
    /// Meta-training data.
    pub train: Dataset,
    /// Held-out MNIST examples, for unseen tasks.
    pub test: Dataset,
    /// A dataset never trained on.
    pub unseen: Dataset,
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Loads an IDX images/labels pair, pools it by `pool` and z-normalises it.
pub fn load_idx(name: &str, images: &Path, labels: &Path, pool: usize) -> Result<Dataset> {
    let d = parse_idx_pair(name, &read(images)?, &read(labels)?)
        .with_context(|| format!("in {} / {}", images.display(), labels.display()))?;
    Ok(d.prepared(pool)?)
}

/// A dataset's name for curves and messages: its file's name.
pub fn file_dataset_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().to_string(),
    )
}

/// Loads a CSV file (label in the last or first column) and z-normalises it.
pub fn load_csv(path: &Path, label: LabelColumn) -> Result<Dataset> {
    let d = parse_csv(&file_dataset_name(path), &read(path)?, label)
        .with_context(|| format!("in {}", path.display()))?;
    Ok(d.prepared(1)?)
}

/// Loads the three bundles from `dir` (see `cargo xtask data`).
pub fn load_run_data(dir: &Path, pool: usize) -> Result<RunData> {
    let f = |name: &str| dir.join(name);
    Ok(RunData {
        train: load_idx(
            "mnist",
            &f("mnist-train-images-idx3-ubyte.gz"),
            &f("mnist-train-labels-idx1-ubyte.gz"),
            pool,
        )?,
        test: load_idx(
            "mnist-test",
            &f("mnist-t10k-images-idx3-ubyte.gz"),
            &f("mnist-t10k-labels-idx1-ubyte.gz"),
            pool,
        )?,
        unseen: load_idx(
            "fashion-mnist",
            &f("fashion-mnist-t10k-images-idx3-ubyte.gz"),
            &f("fashion-mnist-t10k-labels-idx1-ubyte.gz"),
            pool,
        )?,
    })
}
