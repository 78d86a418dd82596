//! `gpicl package`: turns a finished run into the page's shipped learner, `web/pretrained/`:
//! the weights in half precision and a manifest (config, seeds, hardware, the re-creating
//! command, data hashes, input statistics, and the curves measured on the shipped weights).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use gpicl_core::eval::evaluate;
use gpicl_core::manifest::{FileHash, InputStats, MANIFEST_VERSION};
use gpicl_core::parse::parse_idx_pair;
use gpicl_core::train::{Precision, eval_sets, load_model, model_bytes};
use gpicl_core::{Manifest, Results, RunConfig};

use crate::data::{load_run_data, read_bundles};
use crate::train_cmd::{load_checkpoint_model, read_checkpoint, write_atomic};

/// Arguments of `gpicl package`.
#[derive(clap::Args)]
pub struct PackageArgs {
    /// Run directory (written by `gpicl train`), or a learner packaged before (a directory
    /// with `manifest.json`, such as `web/pretrained`): re-packaged with this build's rules.
    run: PathBuf,
    /// Where to write `model.bpk` and `manifest.json`.
    #[arg(long, default_value = "web/pretrained")]
    out: PathBuf,
    /// The machine and device that trained it, in words (e.g. "NVIDIA H100 80GB, wgpu/Vulkan");
    /// needed for a run, kept from the manifest for a packaged learner.
    #[arg(long)]
    hardware: Option<String>,
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

/// What a learner is packaged from: a finished run, or a learner packaged before.
struct Source {
    config: RunConfig,
    model: gpicl_core::Transformer,
    steps: usize,
    hardware: String,
    backend: String,
    train_time_s: f64,
    command: String,
    gpicl_version: String,
}

/// Reads the run (or packaged learner) at `args.run`, on Flex.
fn source(args: &PackageArgs) -> Result<Source> {
    let device = burn::prelude::Device::flex();
    let manifest = args.run.join("manifest.json");
    if manifest.is_file() && !args.run.join(crate::train_cmd::CHECKPOINT_FILE).exists() {
        let (config, model) = load_checkpoint_model(&args.run, &device)?;
        let m = Manifest::from_json(&std::fs::read_to_string(&manifest)?)?;
        return Ok(Source {
            config,
            model,
            steps: m.steps,
            hardware: args.hardware.clone().unwrap_or(m.hardware),
            backend: m.backend,
            train_time_s: m.train_time_s,
            command: m.command,
            gpicl_version: m.gpicl_version,
        });
    }
    let Some(hardware) = args.hardware.clone() else {
        bail!("--hardware is needed to package a run: say what trained it");
    };
    let results = Results::from_json(
        &std::fs::read_to_string(args.run.join("results.json"))
            .with_context(|| format!("no results.json in {}", args.run.display()))?,
    )
    .with_context(|| format!("corrupt results.json in {}", args.run.display()))?;
    let meta = read_checkpoint(&args.run)?;
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
    let command = format!(
        "{} && gpicl package runs/{} --hardware '{}'",
        train_command(&meta.config, last.step, &results.backend)?,
        meta.config.name,
        hardware
    );
    Ok(Source {
        model: meta.model(&device)?,
        config: meta.config,
        steps: last.step,
        hardware,
        backend: results.backend,
        train_time_s: results.train_time_s,
        command,
        gpicl_version: results.gpicl_version,
    })
}

/// Runs `gpicl package`.
pub fn run(args: PackageArgs) -> Result<()> {
    let source = source(&args)?;
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(crate::default_data_dir);
    let (bundles, data) = read_bundles(&data_dir)?;
    let train = parse_idx_pair("mnist", &bundles[0], &bundles[1])?;
    let pool = source.config.tasks.image_pool;
    let (mean, std) = if pool > 1 {
        train.avg_pool(pool)?
    } else {
        train
    }
    .stats();

    // The weights as shipped (half precision), and the curves measured on them as loaded back:
    // the run's three evaluation sets, on Flex.
    let device = burn::prelude::Device::flex();
    let model_bytes = model_bytes(&source.model, Precision::F16)?;
    let shipped = load_model(source.config.model.init(0, &device)?, model_bytes.clone())?;
    let run_data = load_run_data(&data_dir, pool)?;
    let sets = eval_sets(
        &source.config,
        &run_data.train,
        &run_data.test,
        &run_data.unseen,
    )?;
    let curves = sets
        .iter()
        .map(|set| {
            pollster::block_on(evaluate(
                &shipped,
                source.config.tasks.format,
                source.config.model.n_classes,
                set,
                &device,
            ))
        })
        .collect::<Result<Vec<_>, _>>()?;

    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let model = FileHash::of("model.bpk", &model_bytes);
    write_atomic(&args.out.join(&model.file), &model_bytes)?;
    let manifest = Manifest {
        version: MANIFEST_VERSION,
        config: source.config,
        steps: source.steps,
        hardware: source.hardware,
        backend: source.backend,
        train_time_s: source.train_time_s,
        command: source.command,
        gpicl_version: source.gpicl_version,
        model,
        data,
        input_stats: InputStats {
            mean: mean as f32,
            std: std as f32,
        },
        headlines: Manifest::headlines_of(&curves),
        curves,
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
