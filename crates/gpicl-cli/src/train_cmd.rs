//! `gpicl train`: meta-training with periodic evaluation, checkpoints, results.json and plots.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use gpicl_core::eval::evaluate;
use gpicl_core::{Checkpoint, EvalPoint, Manifest, Results, RunConfig, Trainer};
use indicatif::{ProgressBar, ProgressStyle};

use crate::backend::Backend;
use crate::data::{RunData, load_run_data};
use crate::plot;

/// Arguments of `gpicl train`.
#[derive(clap::Args)]
pub struct TrainArgs {
    /// Preset to start from (tiny, browser, cpu, bench, paper).
    #[arg(long, default_value = "cpu")]
    preset: String,
    /// JSON config file (replaces the preset; see `gpicl preset NAME`).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Override one config value by its path, e.g. `--set train.lr=3e-4 --set tasks.format=\"paper\"`.
    #[arg(long = "set", value_name = "PATH=JSON")]
    set: Vec<String>,
    /// Run seed (model weights and training stream).
    #[arg(long)]
    seed: Option<u64>,
    /// Number of training steps.
    #[arg(long)]
    steps: Option<usize>,
    /// Compute backend.
    #[arg(long, value_enum, default_value = "flex")]
    backend: Backend,
    /// Output directory (default: runs/PRESET-seedSEED).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue a run from its checkpoint: a run directory, or a `.gpicl` file (one the page
    /// downloaded, say; the run then goes to --out, or beside the file).
    #[arg(long, conflicts_with_all = ["config", "set", "seed"])]
    resume: Option<PathBuf>,
    /// Start from this learner's weights (a `.gpicl` file, a run directory or a packaged
    /// learner such as `web/pretrained`, of the same model shape) instead of the seed's, with a
    /// fresh optimizer: fine-tuning. A learner with fewer blocks (`--set model.n_layers=N`)
    /// is deepened: its blocks, then fresh ones (`Transformer::deepened`).
    #[arg(long, conflicts_with = "resume")]
    init: Option<PathBuf>,
    /// Directory of the data bundles.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Stop (with a final evaluation) after this many minutes of training.
    #[arg(long)]
    max_minutes: Option<f64>,
}

/// Applies `path=json` overrides to a config.
pub fn apply_overrides(config: RunConfig, sets: &[String]) -> Result<RunConfig> {
    let mut value = serde_json::to_value(&config)?;
    for s in sets {
        let (path, raw) = s
            .split_once('=')
            .with_context(|| format!("--set {s}: expected PATH=VALUE"))?;
        let pointer = format!("/{}", path.trim().replace('.', "/"));
        let new: serde_json::Value = serde_json::from_str(raw)
            .unwrap_or_else(|_| serde_json::Value::String(raw.to_string()));
        // A field left out of the file (an optional one at its default) is added; a name that
        // is no field at all is then refused when the config is read back.
        let (parent, key) = pointer.rsplit_once('/').unwrap_or(("", &pointer));
        match value.pointer_mut(parent).and_then(|p| p.as_object_mut()) {
            Some(object) => {
                object.insert(key.to_string(), new);
            }
            None => bail!("--set {s}: no config field '{path}'"),
        }
    }
    let config: RunConfig = serde_json::from_value(value).context("--set")?;
    config.validate()?;
    Ok(config)
}

/// Writes `bytes` to `path` atomically (temporary file, then rename), so an interrupted write
/// never leaves a corrupt file behind.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// The checkpoint file's name in a run directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.gpicl";

/// Reads a checkpoint: `path` is a `.gpicl` file (from `gpicl train` or the page's download)
/// or a run directory holding one.
pub fn read_checkpoint(path: &Path) -> Result<Checkpoint> {
    let file = if path.is_dir() {
        path.join(CHECKPOINT_FILE)
    } else {
        path.to_path_buf()
    };
    let bytes = std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
    Checkpoint::from_bytes(&bytes).with_context(|| format!("in {}", file.display()))
}

/// A shipped learner at `path` (a directory with `manifest.json` and its weights, as
/// `gpicl package` writes them, and no run checkpoint): its manifest and model, checked against
/// each other. `None` when `path` is not one.
pub fn read_package(
    path: &Path,
    device: &burn::prelude::Device,
) -> Result<Option<(Manifest, gpicl_core::Transformer)>> {
    let manifest = path.join("manifest.json");
    if !(path.is_dir() && !path.join(CHECKPOINT_FILE).exists() && manifest.exists()) {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("cannot read {}", manifest.display()))?;
    let m = Manifest::from_json(&text).with_context(|| format!("in {}", manifest.display()))?;
    let weights = path.join(&m.model.file);
    let bytes =
        std::fs::read(&weights).with_context(|| format!("cannot read {}", weights.display()))?;
    let model = m
        .model(bytes, device)
        .with_context(|| format!("in {}", weights.display()))?;
    Ok(Some((m, model)))
}

/// Loads the model config and weights of a checkpoint (for `gpicl eval`): a `.gpicl` file, a
/// run directory, or a shipped learner (a directory with `manifest.json` and its weights, as
/// `gpicl package` writes them: `web/pretrained`).
pub fn load_checkpoint_model(
    path: &Path,
    device: &burn::prelude::Device,
) -> Result<(RunConfig, gpicl_core::Transformer)> {
    if let Some((m, model)) = read_package(path, device)? {
        return Ok((m.config, model));
    }
    let checkpoint = read_checkpoint(path)?;
    let model = checkpoint.model(device)?;
    Ok((checkpoint.config, model))
}

fn save_checkpoint(dir: &Path, trainer: &Trainer, backend: Backend) -> Result<()> {
    let checkpoint = pollster::block_on(trainer.checkpoint(backend.name()))?;
    write_atomic(&dir.join(CHECKPOINT_FILE), &checkpoint.to_bytes())
}

/// Runs `gpicl train`.
pub fn run(args: TrainArgs) -> Result<()> {
    let device = args.backend.device()?;
    let (trainer, out, results) = if let Some(dir) = &args.resume {
        let mut checkpoint = read_checkpoint(dir)?;
        if checkpoint.moments.is_empty() && checkpoint.state.step > 0 {
            bail!(
                "{}: the checkpoint holds no optimizer state, so training cannot continue",
                dir.display()
            );
        }
        if let Some(steps) = args.steps {
            checkpoint.config.train.steps = steps;
        }
        let trainer = Trainer::resume(&checkpoint, &device)?;
        // A checkpoint file alone (say, downloaded from the page) starts a run directory beside
        // it; a run directory continues its results.json.
        let (out, results) = if dir.is_dir() {
            let text = std::fs::read_to_string(dir.join("results.json"))
                .context("resume: missing results.json")?;
            (dir.clone(), Results::from_json(&text).context("resume")?)
        } else {
            let out = args.out.clone().unwrap_or_else(|| dir.with_extension(""));
            (out, Results::new(trainer.config(), args.backend.name()))
        };
        (trainer, out, results)
    } else {
        let config = match &args.config {
            Some(path) => RunConfig::from_json(
                &std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
            )
            .with_context(|| format!("in {}", path.display()))?,
            None => RunConfig::preset(&args.preset)?,
        };
        let mut config = apply_overrides(config, &args.set)?;
        if let Some(seed) = args.seed {
            config.seed = seed;
        }
        if let Some(steps) = args.steps {
            config.train.steps = steps;
        }
        let out = args
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("runs/{}-seed{}", config.name, config.seed)));
        let mut results = Results::new(&config, args.backend.name());
        let mut trainer = Trainer::new(config, &device)?;
        if let Some(init) = &args.init {
            let flex = burn::prelude::Device::flex();
            // A packaged learner's manifest says how it was made: the run records that.
            let (from, model, manifest) = match read_package(init, &flex)? {
                Some((m, model)) => (m.config.clone(), model, Some(m)),
                None => {
                    let (config, model) = load_checkpoint_model(init, &flex)?;
                    (config, model, None)
                }
            };
            let to = &trainer.config().model;
            let model = if from.model == *to {
                model
            } else {
                let seed = trainer.config().seed;
                let deeper = model.deepened(&from.model, to, seed).with_context(|| {
                    format!("--init {}: its model is not this run's", init.display())
                })?;
                println!(
                    "deepening {} from {} to {} blocks: the new blocks drawn from seed {seed}, \
                     their output maps small",
                    init.display(),
                    from.model.n_layers,
                    to.n_layers
                );
                deeper
            };
            let none = std::collections::BTreeMap::new();
            let (params, _) =
                pollster::block_on(gpicl_core::checkpoint::read_values(&model, &none))?;
            trainer.start_from(&params)?;
            println!("starting from the weights of {}", init.display());
            results.init = Some(gpicl_core::results::Init {
                from: init.display().to_string(),
                command: manifest.as_ref().map(|m| m.command.clone()),
                steps: manifest.as_ref().map(|m| m.steps),
                train_time_s: manifest.as_ref().map(|m| m.train_time_s),
                hardware: manifest.as_ref().map(|m| m.hardware.clone()),
                before: manifest.and_then(|m| m.init).map(Box::new),
            });
        }
        (trainer, out, results)
    };
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(crate::default_data_dir);
    let data = load_run_data(&data_dir, trainer.config().tasks.image_pool)?;
    train(
        trainer,
        &out,
        results,
        &data,
        args.backend,
        args.max_minutes,
    )?;
    Ok(())
}

/// Meta-trains `trainer` on `data` (prepared with the run's pooling) to its configured steps
/// (or `max_minutes`), evaluating, saving the checkpoint and writing `results.json` and
/// `curves.svg` in `out` as it goes.
pub fn train(
    mut trainer: Trainer,
    out: &Path,
    mut results: Results,
    data: &RunData,
    backend: Backend,
    max_minutes: Option<f64>,
) -> Result<Results> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let sets = trainer.eval_sets(&data.train, &data.test, &data.unseen)?;
    let total = trainer.config().train.steps;
    if trainer.step_count() >= total {
        bail!(
            "the run in {} already has {} of {total} steps (pass --steps to extend it)",
            out.display(),
            trainer.step_count()
        );
    }

    let bar = ProgressBar::new(total as u64).with_position(trainer.step_count() as u64);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {per_sec} {msg}")?
            .progress_chars("=> "),
    );
    let every = trainer.config().eval.every;
    let mut since_eval = (0.0f64, 0usize);
    let mut pending_sum: Option<burn::prelude::Tensor<1>> = None;
    let mut pending_n = 0usize;
    let mut last_unseen = String::from("-");
    let started = Instant::now();
    let time_before = results.train_time_s;
    let mut train_time = 0.0;
    loop {
        let t0 = Instant::now();
        let loss = trainer.step(&data.train)?;
        // Sum losses on the device; read them back every 10 steps (one sync, not ten).
        pending_sum = Some(match pending_sum.take() {
            Some(acc) => acc + loss,
            None => loss,
        });
        pending_n += 1;
        let step = trainer.step_count();
        let out_of_time = max_minutes.is_some_and(|m| started.elapsed().as_secs_f64() > m * 60.0);
        let done = step >= total || out_of_time;
        if (pending_n == 10 || done)
            && let Some(acc) = pending_sum.take()
        {
            let n = std::mem::take(&mut pending_n);
            let mean = acc.into_scalar::<f32>() / n as f32;
            if !mean.is_finite() {
                bail!("training diverged at step {step} (loss {mean}); try a smaller train.lr");
            }
            results.loss_log.push((step, mean));
            since_eval = (since_eval.0 + (mean * n as f32) as f64, since_eval.1 + n);
            bar.set_message(format!(
                "loss {mean:.3} | unseen@{} {last_unseen}",
                trainer.config().tasks.seq_len
            ));
        }
        train_time += t0.elapsed().as_secs_f64();
        bar.set_position(step as u64);
        if (every > 0 && step.is_multiple_of(every)) || done {
            let mut curves = Vec::new();
            for set in &sets {
                let c = trainer.config();
                curves.push(pollster::block_on(evaluate(
                    trainer.model(),
                    c.tasks.format,
                    c.model.n_classes,
                    set,
                    trainer.device(),
                ))?);
            }
            let t = trainer.config().tasks.seq_len;
            last_unseen = format!("{:.1}%", 100.0 * curves[1].accuracy_at(t).unwrap_or(0.0));
            let line = format!(
                "step {step:>6}  loss {:.3}  acc@{t}: seen {:.1}%  unseen {:.1}%  fashion {:.1}%",
                since_eval.0 / since_eval.1.max(1) as f64,
                100.0 * curves[0].accuracy_at(t).unwrap_or(0.0),
                100.0 * curves[1].accuracy_at(t).unwrap_or(0.0),
                100.0 * curves[2].accuracy_at(t).unwrap_or(0.0),
            );
            // Without a terminal the bar is hidden: print the line plainly (logs, CI).
            if bar.is_hidden() {
                println!("{line}");
            } else {
                bar.println(line);
            }
            results.history.push(EvalPoint {
                step,
                time_s: time_before + train_time,
                train_loss: (since_eval.0 / since_eval.1.max(1) as f64) as f32,
                curves,
            });
            since_eval = (0.0, 0);
            results.train_time_s = time_before + train_time;
            results.steps = step;
            save_checkpoint(out, &trainer, backend)?;
            write_atomic(
                &out.join("results.json"),
                serde_json::to_string_pretty(&results)?.as_bytes(),
            )?;
            write_atomic(&out.join("curves.svg"), plot::svg(&results).as_bytes())?;
        }
        if done {
            break;
        }
    }
    bar.finish();
    println!(
        "wrote {}/results.json, curves.svg and {CHECKPOINT_FILE} ({:.1} min of training)",
        out.display(),
        results.train_time_s / 60.0
    );
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_change_fields_and_reject_unknown_paths() {
        let c = RunConfig::preset("tiny").unwrap();
        let c2 = apply_overrides(
            c.clone(),
            &["train.lr=0.003".into(), "tasks.format=paper".into()],
        )
        .unwrap();
        assert_eq!(c2.train.lr, 0.003);
        assert_eq!(c2.tasks.format, gpicl_core::TokenFormat::Paper);
        assert!(apply_overrides(c.clone(), &["train.nope=1".into()]).is_err());
        assert!(apply_overrides(c.clone(), &["nope.lr=1".into()]).is_err());
        let lstm = apply_overrides(c.clone(), &["model.arch=lstm".into()]).unwrap();
        assert_eq!(lstm.model.arch, gpicl_core::Arch::Lstm);
        assert!(apply_overrides(c.clone(), &["train.lr".into()]).is_err());
        assert!(apply_overrides(c, &["train.lr=-2".into()]).is_err());
    }
}
