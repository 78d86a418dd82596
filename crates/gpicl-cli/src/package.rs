//! `gpicl package`: turns a finished run into the page's shipped learner, `web/pretrained/`:
//! the weights and a manifest (config, seeds, hardware, the re-creating command, data hashes,
//! input statistics, the final curves).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use gpicl_core::manifest::{FileHash, InputStats, MANIFEST_VERSION};
use gpicl_core::parse::parse_idx_pair;
use gpicl_core::{Manifest, Results, RunConfig};

use crate::data::read_bundles;
use crate::train_cmd::{read_checkpoint, write_atomic};

/// Arguments of `gpicl package`.
#[derive(clap::Args)]
pub struct PackageArgs {
    /// Run directory (written by `gpicl train`).
    run: PathBuf,
    /// Where to write `model.bpk` and `manifest.json`.
    #[arg(long, default_value = "web/pretrained")]
    out: PathBuf,
    /// The machine and device that trained it, in words (e.g. "NVIDIA H100 80GB, wgpu/Vulkan").
    #[arg(long)]
    hardware: String,
    /// Directory of the data bundles.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// The `gpicl train` command that re-creates a run of a preset (its seed and steps may differ
/// from the preset's; anything else may not).
fn train_command(config: &RunConfig, steps: usize, backend: &str) -> Result<String> {
    let mut preset = RunConfig::preset(&config.name)
        .with_context(|| format!("the run's config is not a preset ('{}')", config.name))?;
    preset.seed = config.seed;
    preset.train.steps = config.train.steps;
    if &preset != config {
        bail!(
            "the run's config differs from preset '{}': package runs of a preset",
            config.name
        );
    }
    Ok(format!(
        "gpicl train --preset {} --seed {} --steps {steps} --backend {backend} --out runs/{}",
        config.name, config.seed, config.name
    ))
}

/// Runs `gpicl package`.
pub fn run(args: PackageArgs) -> Result<()> {
    let results = Results::from_json(
        &std::fs::read_to_string(args.run.join("results.json"))
            .with_context(|| format!("no results.json in {}", args.run.display()))?,
    )
    .with_context(|| format!("corrupt results.json in {}", args.run.display()))?;
    let meta = read_checkpoint(&args.run)?;
    // The page's learner reads burn's store format (burnpack), written from a Flex copy.
    let model_bytes = gpicl_core::train::model_bytes(&meta.model(&burn::prelude::Device::flex())?)?;
    let Some(last) = results.history.last() else {
        bail!("the run has no evaluation yet");
    };
    if last.step != meta.state.step {
        bail!(
            "the checkpoint (step {}) and the last evaluation (step {}) differ",
            meta.state.step,
            last.step
        );
    }
    let data_dir = args.data_dir.unwrap_or_else(crate::default_data_dir);
    let (bundles, data) = read_bundles(&data_dir)?;
    let train = parse_idx_pair("mnist", &bundles[0], &bundles[1])?;
    let pool = meta.config.tasks.image_pool;
    let (mean, std) = if pool > 1 {
        train.avg_pool(pool)?
    } else {
        train
    }
    .stats();

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let model = FileHash::of("model.bpk", &model_bytes);
    write_atomic(&args.out.join(&model.file), &model_bytes)?;
    let command = format!(
        "{} && gpicl package runs/{} --hardware '{}'",
        train_command(&meta.config, last.step, &results.backend)?,
        meta.config.name,
        args.hardware
    );
    let manifest = Manifest {
        version: MANIFEST_VERSION,
        config: meta.config,
        steps: last.step,
        hardware: args.hardware,
        backend: results.backend,
        train_time_s: results.train_time_s,
        command,
        gpicl_version: results.gpicl_version,
        model,
        data,
        input_stats: InputStats {
            mean: mean as f32,
            std: std as f32,
        },
        headlines: Manifest::headlines_of(&last.curves),
        curves: last.curves.clone(),
    };
    let json = serde_json::to_string_pretty(&manifest)?;
    Manifest::from_json(&json).context("the manifest written does not read back")?;
    write_atomic(&args.out.join("manifest.json"), json.as_bytes())?;
    let t = manifest.config.tasks.seq_len;
    println!(
        "wrote {}/model.bpk ({} bytes) and manifest.json (step {}):",
        args.out.display(),
        manifest.model.bytes,
        manifest.steps
    );
    for c in &manifest.curves {
        println!(
            "  {:<28} @1 {:>5.1}%  @50 {:>5.1}%  @{t} {:>5.1}%",
            c.name,
            100.0 * c.accuracy_at(1).unwrap_or(0.0),
            100.0 * c.accuracy_at(50).unwrap_or(0.0),
            100.0 * c.accuracy_at(t).unwrap_or(0.0)
        );
    }
    Ok(())
}
