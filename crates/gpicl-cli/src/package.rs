//! `gpicl package`: turns a finished run into the page's shipped learner, `web/pretrained/`:
//! the weights in half precision and a manifest (config, seeds, hardware, the re-creating
//! command, data hashes, input statistics, and the curves measured on the shipped weights).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use gpicl_core::eval::evaluate;
use gpicl_core::manifest::{FileHash, InputStats, MANIFEST_VERSION, SuiteRecord};
use gpicl_core::parse::parse_idx_pair;
use gpicl_core::results::Init;
use gpicl_core::train::{Precision, eval_sets, load_model, model_bytes};
use gpicl_core::{Manifest, Results, RunConfig};

use crate::data::{RunData, idx_dataset, read_bundles};
use crate::train_cmd::{read_checkpoint, read_package, write_atomic};

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

/// The `--set` overrides that turn `preset` into `config`: one per differing value, by its path
/// (objects compared field by field, anything else whole).
fn overrides(preset: &RunConfig, config: &RunConfig) -> Result<Vec<String>> {
    fn walk(path: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
        match (a, b) {
            (serde_json::Value::Object(a), serde_json::Value::Object(b))
                if a.keys().eq(b.keys()) =>
            {
                for (key, value) in b {
                    let path = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    walk(&path, &a[key], value, out);
                }
            }
            _ if a != b => out.push(format!("{path}={b}")),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(
        "",
        &serde_json::to_value(preset)?,
        &serde_json::to_value(config)?,
        &mut out,
    );
    Ok(out)
}

/// The commands that re-create a run: `gpicl train` from the preset its config is named after
/// (with a `--set` for each value that differs from it), and for a fine-tuning run
/// (`gpicl train --init`) the commands that made the learner it started from, first.
fn train_command(
    config: &RunConfig,
    steps: usize,
    backend: &str,
    init: Option<&Init>,
) -> Result<String> {
    let mut preset = RunConfig::preset(&config.name).with_context(|| {
        format!(
            "the run's config is not named after a preset ('{}')",
            config.name
        )
    })?;
    preset.seed = config.seed;
    preset.train.steps = config.train.steps;
    let mut command = format!(
        "gpicl train --preset {} --seed {} --steps {steps} --backend {backend}",
        config.name, config.seed
    );
    for set in overrides(&preset, config)? {
        command.push_str(&format!(" --set '{set}'"));
    }
    if let Some(init) = init {
        command.push_str(&format!(" --init {}", init.from));
    }
    command.push_str(&format!(" --out runs/{}", run_name(config, init)));
    Ok(match init.and_then(|i| i.command.as_ref()) {
        Some(before) => format!("{before} && {command}"),
        None => command,
    })
}

/// The run directory the re-creating commands use.
fn run_name(config: &RunConfig, init: Option<&Init>) -> String {
    match init {
        Some(_) => format!("{}-tuned", config.name),
        None => config.name.clone(),
    }
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
    /// A packaged learner's suite figures and the weights' hash they were measured on.
    suite: Option<(SuiteRecord, String)>,
    /// The learner a fine-tuning run started from.
    init: Option<Init>,
}

/// Reads the run (or packaged learner) at `args.run`, on Flex.
fn source(args: &PackageArgs) -> Result<Source> {
    let device = burn::prelude::Device::flex();
    if let Some((m, model)) = read_package(&args.run, &device)? {
        return Ok(Source {
            config: m.config,
            model,
            steps: m.steps,
            hardware: args.hardware.clone().unwrap_or(m.hardware),
            backend: m.backend,
            train_time_s: m.train_time_s,
            command: m.command,
            gpicl_version: m.gpicl_version,
            suite: m.suite.map(|s| (s, m.model.sha256)),
            init: m.init,
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
    let init = results.init.as_ref();
    let command = format!(
        "{} && gpicl package runs/{} --hardware '{}'",
        train_command(&meta.config, last.step, &results.backend, init)?,
        run_name(&meta.config, init),
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
        suite: None,
        init: results.init,
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
    // Each bundle parsed once: the training images' statistics (pooled, before they are
    // normalised) for the manifest, then the run's three datasets as `load_run_data` makes them.
    let pool = source.config.tasks.image_pool;
    let train = parse_idx_pair("mnist", &bundles[0], &bundles[1])?;
    let train = if pool > 1 {
        train.avg_pool(pool)?
    } else {
        train
    };
    let (mean, std) = train.stats();
    let run_data = RunData {
        train: train.prepared(1)?,
        test: idx_dataset("mnist-test", &bundles[2], &bundles[3], pool)?,
        unseen: idx_dataset("fashion-mnist", &bundles[4], &bundles[5], pool)?,
    };

    // The weights as shipped (half precision), and the curves measured on them as loaded back:
    // the run's three evaluation sets, on Flex.
    let device = burn::prelude::Device::flex();
    let model_bytes = model_bytes(&source.model, Precision::F16)?;
    let shipped = load_model(source.config.model.init(0, &device)?, model_bytes.clone())?;
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
    // A packaged learner's suite figures are kept only while they describe these weights.
    let suite = source
        .suite
        .filter(|(_, sha)| *sha == model.sha256)
        .map(|(record, _)| record);
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
        suite,
        init: source.init,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train_cmd::apply_overrides;

    /// The overrides name each changed value, and applied to the preset they give the config.
    #[test]
    fn overrides_turn_the_preset_into_the_config() {
        let preset = RunConfig::preset("pretrained").unwrap();
        assert_eq!(overrides(&preset, &preset).unwrap(), Vec::<String>::new());
        let mut config = preset.clone();
        config.tasks.random_tables = 0.5;
        config.tasks.classes_curriculum_steps = Some(0);
        config.train.batch_size = 32;
        let sets = overrides(&preset, &config).unwrap();
        assert_eq!(
            sets,
            [
                "tasks.classes_curriculum_steps=0",
                "tasks.random_tables=0.5",
                "train.batch_size=32"
            ]
        );
        assert_eq!(apply_overrides(preset, &sets).unwrap(), config);
        let init = Init {
            from: "web/pretrained".into(),
            command: Some(
                "gpicl train --preset pretrained && gpicl package runs/pretrained".into(),
            ),
            steps: Some(1261),
            train_time_s: Some(240.0),
            hardware: Some("a GPU".into()),
            before: None,
        };
        let command = train_command(&config, 7, "flex", Some(&init)).unwrap();
        assert!(command.starts_with("gpicl train --preset pretrained && gpicl package runs/pretrained && gpicl train --preset pretrained --seed 0 --steps 7 --backend flex --set 'tasks.classes_curriculum_steps=0'"), "{command}");
        assert!(
            command.ends_with("--init web/pretrained --out runs/pretrained-tuned"),
            "{command}"
        );
    }
}
