//! `gpicl sweep`: many runs from one spec (the product of a few config axes), spread over
//! machines by `--shard i/n` (any array-job engine runs shard i of n), and `gpicl sweep merge`,
//! which joins the shards' run directories into one table, a phase classification and a phase
//! diagram.
//!
//! Layout of a sweep directory: `spec.json` (the spec, as given), `runs/<index>/` (one
//! `gpicl train` run directory each). Merging reads any number of such directories.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use gpicl_core::{Curve, RunConfig, Trainer};
use serde::{Deserialize, Serialize};

use crate::backend::Backend;
use crate::data::{RunData, load_run_data};
use crate::train_cmd::{Results, apply_overrides, train, write_atomic};

/// A sweep: runs of a preset, with `set` applied to all and one value of every axis each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    /// Name (run names are `<name>-<index>`).
    pub name: String,
    /// Preset every run starts from.
    pub preset: String,
    /// Overrides for every run, `PATH=JSON` as in `gpicl train --set`.
    #[serde(default)]
    pub set: Vec<String>,
    /// The axes; the runs are their product, the last axis varying fastest.
    pub axes: Vec<Axis>,
}

/// One axis of a sweep: a config path and its values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Axis {
    /// Config path, e.g. `tasks.pool` or `model.d_model`.
    pub path: String,
    /// JSON values for that path.
    pub values: Vec<serde_json::Value>,
}

/// One run of a sweep.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// Position in the product.
    pub index: usize,
    /// Value index on each axis.
    pub at: Vec<usize>,
    /// The run's configuration.
    pub config: RunConfig,
}

impl SweepSpec {
    /// Reads and checks a spec file.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let spec: SweepSpec = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a sweep spec", path.display()))?;
        spec.runs()
            .with_context(|| format!("in {}", path.display()))?;
        Ok(spec)
    }

    /// Every run, in order (all configs are built and validated).
    pub fn runs(&self) -> Result<Vec<RunSpec>> {
        if self.axes.is_empty() || self.axes.iter().any(|a| a.values.is_empty()) {
            bail!("a sweep needs at least one axis, each with at least one value");
        }
        let total: usize = self.axes.iter().map(|a| a.values.len()).product();
        if total > 100_000 {
            bail!("{total} runs: more than this program supports");
        }
        let base = RunConfig::preset(&self.preset)?;
        (0..total)
            .map(|index| {
                let mut rest = index;
                let mut at = vec![0; self.axes.len()];
                for (i, axis) in self.axes.iter().enumerate().rev() {
                    at[i] = rest % axis.values.len();
                    rest /= axis.values.len();
                }
                let mut sets = self.set.clone();
                sets.extend(
                    self.axes
                        .iter()
                        .zip(&at)
                        .map(|(a, &v)| format!("{}={}", a.path, a.values[v])),
                );
                let mut config =
                    apply_overrides(base.clone(), &sets).with_context(|| format!("run {index}"))?;
                config.name = format!("{}-{index}", self.name);
                Ok(RunSpec { index, at, config })
            })
            .collect()
    }

    /// A value's label for tables and plots: `2^k` for a finite task pool, else its JSON.
    pub fn label(value: &serde_json::Value) -> String {
        match value
            .pointer("/finite/log2")
            .and_then(serde_json::Value::as_u64)
        {
            Some(k) => format!("2^{k}"),
            None => match value {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            },
        }
    }
}

/// `--shard i/n`: run the runs whose index is i modulo n (i from 0, as array-job indices).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// This shard.
    pub index: usize,
    /// Shards in all.
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("--shard {s}: expected i/n with 0 <= i < n (e.g. 0/4)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

/// Arguments of `gpicl sweep run`.
#[derive(clap::Args)]
pub struct RunArgs {
    /// The sweep spec (JSON).
    spec: PathBuf,
    /// Sweep directory (spec.json and runs/ go here).
    #[arg(long)]
    out: PathBuf,
    /// Run only the i-th of n shares (runs whose index is i mod n), e.g. `--shard $SLURM_ARRAY_TASK_ID/8`.
    #[arg(long, default_value = "0/1")]
    shard: Shard,
    /// Compute backend.
    #[arg(long, value_enum, default_value = "flex")]
    backend: Backend,
    /// Directory of the data bundles.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// Arguments of `gpicl sweep merge`.
#[derive(clap::Args)]
pub struct MergeArgs {
    /// Sweep directories (shards) to join.
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// Where to write merged.json and phase.svg.
    #[arg(long)]
    out: PathBuf,
}

/// `gpicl sweep`.
#[derive(clap::Subcommand)]
pub enum SweepCommand {
    /// Run a sweep (or one shard of it); finished runs are skipped, so it can be re-run.
    Run(RunArgs),
    /// Join sweep directories (shards) into merged.json and phase.svg.
    Merge(MergeArgs),
}

/// Runs `gpicl sweep ...`.
pub fn run(command: SweepCommand) -> Result<()> {
    match command {
        SweepCommand::Run(args) => run_shard(args),
        SweepCommand::Merge(args) => merge(args),
    }
}

fn run_shard(args: RunArgs) -> Result<()> {
    let spec = SweepSpec::read(&args.spec)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let spec_path = args.out.join("spec.json");
    if let Ok(text) = std::fs::read_to_string(&spec_path) {
        let existing: SweepSpec = serde_json::from_str(&text)
            .with_context(|| format!("{}: corrupt", spec_path.display()))?;
        if existing != spec {
            bail!(
                "{} holds another sweep's spec: use another --out",
                args.out.display()
            );
        }
    } else {
        write_atomic(&spec_path, serde_json::to_string_pretty(&spec)?.as_bytes())?;
    }
    let data_dir = args.data_dir.unwrap_or_else(crate::default_data_dir);
    let device = args.backend.device()?;
    let mut data: BTreeMap<usize, RunData> = BTreeMap::new();
    let mine: Vec<RunSpec> = spec
        .runs()?
        .into_iter()
        .filter(|r| r.index % args.shard.count == args.shard.index)
        .collect();
    println!(
        "sweep {}: shard {}/{}: {} runs",
        spec.name,
        args.shard.index,
        args.shard.count,
        mine.len()
    );
    for r in mine {
        let dir = args.out.join("runs").join(format!("{:04}", r.index));
        if let Some(done) = read_results(&dir)?
            && done.steps >= r.config.train.steps
        {
            println!("run {}: done already", r.index);
            continue;
        }
        println!("run {}: {}", r.index, describe(&spec, &r));
        // Runs share their data unless their pooling differs: parse each pooling once.
        let run_data = match data.entry(r.config.tasks.image_pool) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let pool = *e.key();
                e.insert(load_run_data(&data_dir, pool)?)
            }
        };
        let results = Results::new(&r.config, args.backend);
        let trainer = Trainer::new(r.config, &device)?;
        train(trainer, &dir, results, run_data, args.backend, None)?;
    }
    Ok(())
}

fn describe(spec: &SweepSpec, r: &RunSpec) -> String {
    spec.axes
        .iter()
        .zip(&r.at)
        .map(|(a, &v)| format!("{} = {}", a.path, SweepSpec::label(&a.values[v])))
        .collect::<Vec<_>>()
        .join(", ")
}

fn read_results(dir: &Path) -> Result<Option<Results>> {
    let path = dir.join("results.json");
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(
            serde_json::from_str(&text).with_context(|| format!("{}: corrupt", path.display()))?,
        )),
        Err(_) => Ok(None),
    }
}

/// What one run reached, read off its final curves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Run index.
    pub index: usize,
    /// Label of its value on each axis.
    pub values: Vec<String>,
    /// Steps trained.
    pub steps: usize,
    /// Seen tasks: accuracy at the first position, and the mean over the last quarter.
    pub seen_first: f32,
    /// See `seen_first`.
    pub seen_last: f32,
    /// Unseen tasks, likewise.
    pub unseen_first: f32,
    /// See `unseen_first`.
    pub unseen_last: f32,
    /// The unseen dataset (Fashion-MNIST): mean over the last quarter.
    pub unseen_dataset_last: f32,
    /// In-context gain on unseen tasks: `unseen_last - unseen_first`.
    pub gain: f32,
    /// The phase ([`classify`]).
    pub phase: Phase,
}

/// What a learner does, from its curves (see [`classify`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Nothing learned: every curve near chance.
    NoLearning,
    /// Knows its training tasks without needing the context (seen tasks right from example 1).
    InstanceMemorization,
    /// Identifies which training task it faces from the context: the seen-task curve rises,
    /// the unseen-task curve stays near chance.
    TaskMemorization,
    /// Learns unseen tasks from the context.
    GeneralLearning,
}

/// The margin over chance that counts as learning (10 points of accuracy).
pub const MARGIN: f32 = 0.10;

/// The phase of a run, from the accuracy at the first position and the mean over the last
/// quarter of positions, on seen and unseen tasks (`chance` = 1 / classes):
/// 1. unseen_last ≥ chance + MARGIN → general learning;
/// 2. else seen_first ≥ chance + MARGIN → instance memorization;
/// 3. else seen_last − seen_first ≥ MARGIN → task memorization;
/// 4. else no learning.
pub fn classify(seen_first: f32, seen_last: f32, unseen_last: f32, chance: f32) -> Phase {
    if unseen_last >= chance + MARGIN {
        Phase::GeneralLearning
    } else if seen_first >= chance + MARGIN {
        Phase::InstanceMemorization
    } else if seen_last - seen_first >= MARGIN {
        Phase::TaskMemorization
    } else {
        Phase::NoLearning
    }
}

/// Mean accuracy over the last quarter of positions (at least one).
fn tail_mean(c: &Curve) -> f32 {
    let n = c.accuracy.len().div_ceil(4).max(1);
    let tail = &c.accuracy[c.accuracy.len().saturating_sub(n)..];
    tail.iter().sum::<f32>() / tail.len().max(1) as f32
}

/// The merged sweep, as written to `merged.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Merged {
    /// The spec.
    pub spec: SweepSpec,
    /// One row per run, by index.
    pub rows: Vec<Row>,
}

/// Joins sweep directories: every run of the spec must be found in one of them.
pub fn merge_dirs(dirs: &[PathBuf]) -> Result<Merged> {
    let mut spec: Option<SweepSpec> = None;
    let mut found: BTreeMap<usize, Results> = BTreeMap::new();
    for dir in dirs {
        let path = dir.join("spec.json");
        let s: SweepSpec =
            serde_json::from_str(&std::fs::read_to_string(&path).with_context(|| {
                format!("{}: no spec.json (not a sweep directory)", dir.display())
            })?)
            .with_context(|| format!("{}: corrupt", path.display()))?;
        match &spec {
            Some(first) if *first != s => {
                bail!(
                    "{} belongs to another sweep than {}",
                    dir.display(),
                    dirs[0].display()
                )
            }
            _ => spec = Some(s),
        }
        let runs = dir.join("runs");
        let Ok(entries) = std::fs::read_dir(&runs) else {
            continue;
        };
        for entry in entries {
            let entry = entry?;
            let Some(index) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<usize>().ok())
            else {
                continue;
            };
            if let Some(r) = read_results(&entry.path())? {
                found.entry(index).or_insert(r);
            }
        }
    }
    let spec = spec.context("no sweep directories")?;
    let runs = spec.runs()?;
    let missing: Vec<usize> = runs
        .iter()
        .filter(|r| {
            found
                .get(&r.index)
                .is_none_or(|x| x.steps < r.config.train.steps)
        })
        .map(|r| r.index)
        .collect();
    if !missing.is_empty() {
        bail!("runs not finished or not found: {missing:?}");
    }
    let rows = runs
        .iter()
        .map(|r| {
            let results = &found[&r.index];
            let last = results
                .history
                .last()
                .context("a run without evaluations")?;
            let [seen, unseen, other] = &last.curves[..] else {
                bail!("run {}: expected three curves", r.index);
            };
            let chance = 1.0 / r.config.model.n_classes as f32;
            let (seen_first, seen_last) = (seen.accuracy[0], tail_mean(seen));
            let (unseen_first, unseen_last) = (unseen.accuracy[0], tail_mean(unseen));
            Ok(Row {
                index: r.index,
                values: spec
                    .axes
                    .iter()
                    .zip(&r.at)
                    .map(|(a, &v)| SweepSpec::label(&a.values[v]))
                    .collect(),
                steps: results.steps,
                seen_first,
                seen_last,
                unseen_first,
                unseen_last,
                unseen_dataset_last: tail_mean(other),
                gain: unseen_last - unseen_first,
                phase: classify(seen_first, seen_last, unseen_last, chance),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Merged { spec, rows })
}

fn merge(args: MergeArgs) -> Result<()> {
    let merged = merge_dirs(&args.dirs)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    write_atomic(
        &args.out.join("merged.json"),
        serde_json::to_string_pretty(&merged)?.as_bytes(),
    )?;
    write_atomic(&args.out.join("phase.svg"), phase_svg(&merged).as_bytes())?;
    let axes: Vec<&str> = merged.spec.axes.iter().map(|a| a.path.as_str()).collect();
    println!(
        "{:>5}  {:<30} {:>8} {:>8} {:>8} {:>8}  phase",
        "run",
        axes.join(" × "),
        "seen@1",
        "seen",
        "unseen",
        "gain"
    );
    for r in &merged.rows {
        println!(
            "{:>5}  {:<30} {:>7.1}% {:>7.1}% {:>7.1}% {:>+7.1}%  {:?}",
            r.index,
            r.values.join(" × "),
            100.0 * r.seen_first,
            100.0 * r.seen_last,
            100.0 * r.unseen_last,
            100.0 * r.gain,
            r.phase
        );
    }
    println!("wrote {}/merged.json and phase.svg", args.out.display());
    Ok(())
}

/// The phase diagram: the first axis across, the second (if any) down; each cell coloured by
/// phase, with its seen- and unseen-task accuracy.
pub fn phase_svg(m: &Merged) -> String {
    let axes = &m.spec.axes;
    let cols = axes[0].values.len();
    let rows = axes.get(1).map_or(1, |a| a.values.len());
    let (cw, ch, left, top) = (86.0, 46.0, 130.0, 60.0);
    let (w, h) = (
        left + cw * cols as f64 + 20.0,
        top + ch * rows as f64 + 110.0,
    );
    let color = |p: Phase| match p {
        Phase::NoLearning => "#dddddd",
        Phase::InstanceMemorization => "#E69F00",
        Phase::TaskMemorization => "#56B4E9",
        Phase::GeneralLearning => "#009E73",
    };
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">"#
    );
    let _ = write!(
        s,
        r#"<text x="{left}" y="20" font-size="14">{}: phase by {}</text>"#,
        xml(&m.spec.name),
        xml(&axes
            .iter()
            .map(|a| a.path.as_str())
            .collect::<Vec<_>>()
            .join(" × "))
    );
    for (c, v) in axes[0].values.iter().enumerate() {
        let x = left + cw * (c as f64 + 0.5);
        let _ = write!(
            s,
            r#"<text x="{x}" y="{}" text-anchor="middle">{}</text>"#,
            top - 6.0,
            xml(&SweepSpec::label(v))
        );
    }
    if let Some(a) = axes.get(1) {
        for (r, v) in a.values.iter().enumerate() {
            let y = top + ch * (r as f64 + 0.5) + 4.0;
            let _ = write!(
                s,
                r#"<text x="{}" y="{y}" text-anchor="end">{}</text>"#,
                left - 6.0,
                xml(&SweepSpec::label(v))
            );
        }
    }
    for row in &m.rows {
        let (c, r) = if axes.len() > 1 {
            let per = axes[1..].iter().map(|a| a.values.len()).product::<usize>();
            let inner = axes[2..].iter().map(|a| a.values.len()).product::<usize>();
            (row.index / per, (row.index % per) / inner)
        } else {
            (row.index, 0)
        };
        let (x, y) = (left + cw * c as f64, top + ch * r as f64);
        let _ = write!(
            s,
            r##"<rect x="{x}" y="{y}" width="{}" height="{}" fill="{}" stroke="#fff"><title>run {}: {:?}</title></rect>"##,
            cw - 2.0,
            ch - 2.0,
            color(row.phase),
            row.index,
            row.phase
        );
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">seen {:.0}%</text><text x="{}" y="{}" text-anchor="middle">unseen {:.0}%</text>"#,
            x + cw / 2.0,
            y + 18.0,
            100.0 * row.seen_last,
            x + cw / 2.0,
            y + 33.0,
            100.0 * row.unseen_last
        );
    }
    let legend = [
        Phase::NoLearning,
        Phase::InstanceMemorization,
        Phase::TaskMemorization,
        Phase::GeneralLearning,
    ];
    for (i, p) in legend.into_iter().enumerate() {
        let y = top + ch * rows as f64 + 20.0 + 18.0 * i as f64;
        let _ = write!(
            s,
            r#"<rect x="{left}" y="{}" width="12" height="12" fill="{}"/><text x="{}" y="{}">{:?}</text>"#,
            y - 10.0,
            color(p),
            left + 18.0,
            y,
            p
        );
    }
    s.push_str("</svg>");
    s
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_phase_rule() {
        let chance = 0.1;
        assert_eq!(classify(0.1, 0.12, 0.1, chance), Phase::NoLearning);
        assert_eq!(
            classify(0.9, 0.95, 0.1, chance),
            Phase::InstanceMemorization
        );
        assert_eq!(classify(0.1, 0.6, 0.12, chance), Phase::TaskMemorization);
        assert_eq!(classify(0.1, 0.6, 0.5, chance), Phase::GeneralLearning);
    }

    #[test]
    fn shards_split_the_runs_and_specs_expand_to_their_product() {
        assert_eq!("1/4".parse::<Shard>(), Ok(Shard { index: 1, count: 4 }));
        for bad in ["4/4", "1", "a/2", "0/0", "-1/3"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        let spec: SweepSpec = serde_json::from_value(serde_json::json!({
            "name": "t", "preset": "tiny",
            "axes": [
                {"path": "tasks.pool", "values": [{"finite": {"log2": 0}}, {"finite": {"log2": 3}}, "unlimited"]},
                {"path": "model.d_model", "values": [16, 32]}
            ]
        }))
        .unwrap();
        let runs = spec.runs().unwrap();
        assert_eq!(runs.len(), 6);
        assert_eq!(runs[3].at, vec![1, 1]);
        assert_eq!(runs[3].config.model.d_model, 32);
        assert_eq!(runs[3].config.name, "t-3");
        assert_eq!(SweepSpec::label(&spec.axes[0].values[1]), "2^3");
        assert_eq!(SweepSpec::label(&spec.axes[0].values[2]), "unlimited");
        let mut bad = spec.clone();
        bad.axes[1].values[0] = serde_json::json!(15); // not divisible by the heads
        assert!(bad.runs().is_err());
        bad.axes.clear();
        assert!(bad.runs().is_err());
    }
}
