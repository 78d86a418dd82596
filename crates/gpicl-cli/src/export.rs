//! `gpicl export`: a learner's weights as a safetensors file, with the names and layouts of
//! `bench/reference_torch.py`'s PyTorch model of the same shape, and a fixed batch with the
//! learner's logits on it, so that PyTorch can check that it computes the same function
//! (`python3 bench/reference_torch.py --check-export FILE`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result};
use burn::prelude::*;
use gpicl_core::{Dataset, TaskPool, TaskSampler};

use crate::train_cmd::{load_checkpoint_model, write_atomic};

/// Arguments of `gpicl export`.
#[derive(clap::Args)]
pub struct ExportArgs {
    /// The learner: a `.gpicl` checkpoint, a run directory, or a shipped learner's directory
    /// (manifest.json and its weights, such as web/pretrained).
    #[arg(long)]
    checkpoint: PathBuf,
    /// The safetensors file to write.
    #[arg(long)]
    out: PathBuf,
    /// Sequences in the check batch (their tokens and the learner's logits are written too,
    /// as `check.tokens` and `check.logits`).
    #[arg(long, default_value_t = 4)]
    batch: usize,
}

/// One tensor of the file: name, shape, values (row-major).
type Entry = (String, Vec<usize>, Vec<f32>);

/// Runs `gpicl export`.
pub fn run(args: ExportArgs) -> Result<()> {
    if !(1..=64).contains(&args.batch) {
        anyhow::bail!("--batch must be in 1..=64");
    }
    let device = Device::flex();
    let (config, model) = load_checkpoint_model(&args.checkpoint, &device)?;
    let m = &config.model;
    let mut entries: Vec<Entry> = Vec::new();
    for p in model.torch_parameters()? {
        let values = p
            .values
            .into_data()
            .try_to_vec::<f32>()
            .context("reading a parameter")?;
        entries.push((p.name, p.shape, values));
    }
    // A fixed batch of real task structure (projections, label one-hots, the format's token
    // layout) over a synthetic dataset of the model's input width, from fixed seeds.
    let data = check_data(m.d_in, m.n_classes)?;
    let mut sampler = TaskSampler::new(TaskPool::Unlimited, 0.0, m.d_in, m.n_classes, 7)?;
    let batch = sampler.next_batch(&data, args.batch, config.tasks.seq_len);
    let (tokens, _) = config.tasks.format.encode(&batch, m.n_classes, &device);
    let logits = model.forward(tokens.clone());
    for (name, t) in [("check.tokens", tokens), ("check.logits", logits)] {
        let shape = t.dims().to_vec();
        let values = t
            .into_data()
            .try_to_vec::<f32>()
            .context("reading the check batch")?;
        entries.push((name.to_string(), shape, values));
    }
    let metadata = BTreeMap::from([
        ("format".to_string(), "pt".to_string()),
        (
            "gpicl".to_string(),
            format!("gpicl {}", env!("CARGO_PKG_VERSION")),
        ),
        ("model".to_string(), serde_json::to_string(m)?),
        (
            "token_format".to_string(),
            serde_json::to_string(&config.tasks.format)?,
        ),
    ]);
    let bytes = safetensors(&entries, &metadata)?;
    write_atomic(&args.out, &bytes)?;
    let params: usize = entries
        .iter()
        .filter(|(n, ..)| !n.starts_with("check."))
        .map(|(_, _, v)| v.len())
        .sum();
    println!(
        "wrote {}: {} parameter tensors ({params} values) and a check batch of {} sequences; \
         check it with: python3 bench/reference_torch.py --check-export {}",
        args.out.display(),
        entries.len() - 2,
        args.batch,
        args.out.display()
    );
    Ok(())
}

/// 256 examples of `n_in` features with values in [0, 1) and labels cycling through the
/// classes, from a fixed formula.
fn check_data(n_in: usize, n_classes: usize) -> Result<Dataset> {
    let n = 256;
    let features = (0..n * n_in)
        .map(|i| ((i * 7919 + 13) % 251) as f32 / 251.0)
        .collect();
    let labels = (0..n as u32).map(|i| i % n_classes as u32).collect();
    Ok(Dataset::new("check", features, n_in, labels, None)?)
}

/// The safetensors layout: an 8-byte little-endian header length, the JSON header (padded with
/// spaces to a multiple of 8), then each tensor's little-endian f32 values at its offsets.
pub fn safetensors(entries: &[Entry], metadata: &BTreeMap<String, String>) -> Result<Vec<u8>> {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), serde_json::to_value(metadata)?);
    let mut offset = 0usize;
    for (name, shape, values) in entries {
        anyhow::ensure!(
            shape.iter().product::<usize>() == values.len(),
            "{name}: shape {shape:?} does not hold {} values",
            values.len()
        );
        let end = offset + 4 * values.len();
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let mut text = serde_json::to_string(&header)?;
    while !text.len().is_multiple_of(8) {
        text.push(' ');
    }
    let mut bytes = Vec::with_capacity(8 + text.len() + offset);
    bytes.extend_from_slice(&(text.len() as u64).to_le_bytes());
    bytes.extend_from_slice(text.as_bytes());
    for (_, _, values) in entries {
        for v in values {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
    }
    Ok(bytes)
}
