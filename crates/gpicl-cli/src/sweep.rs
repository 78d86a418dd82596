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
use crate::train_cmd::{apply_overrides, train, write_atomic};
use gpicl_core::Results;

/// A sweep: runs of a preset, with `set` applied to all and one value of every axis each.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    /// Name (run names are NAME-INDEX).
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
                let at = self.position(index);
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

    /// Run `index`'s value index on each axis (the last axis varies fastest).
    pub fn position(&self, index: usize) -> Vec<usize> {
        let mut rest = index;
        let mut at = vec![0; self.axes.len()];
        for (i, axis) in self.axes.iter().enumerate().rev() {
            at[i] = rest % axis.values.len();
            rest /= axis.values.len();
        }
        at
    }

    /// A value's label for tables and plots: `2^k` for a finite task pool, `none` for null,
    /// else its JSON.
    pub fn label(value: &serde_json::Value) -> String {
        match value
            .pointer("/finite/log2")
            .and_then(serde_json::Value::as_u64)
        {
            Some(k) => format!("2^{k}"),
            None => match value {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Null => "none".into(),
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
    /// Stop each run after this many minutes of training (with a final evaluation); the run is
    /// then unfinished, and only `sweep merge --partial` takes it.
    #[arg(long)]
    max_minutes: Option<f64>,
}

/// Arguments of `gpicl sweep merge`.
#[derive(clap::Args)]
pub struct MergeArgs {
    /// Sweep directories (shards) to join.
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// Where to write merged.json, phase.svg and plateau.svg.
    #[arg(long)]
    out: PathBuf,
    /// Also take runs stopped before their configured steps (e.g. by `--max-minutes` or a
    /// job's time limit), as far as they went; each row says how many steps it trained.
    #[arg(long)]
    partial: bool,
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
        let results = Results::new(&r.config, args.backend.name());
        let trainer = Trainer::new(r.config, &device)?;
        train(
            trainer,
            &dir,
            results,
            run_data,
            args.backend,
            args.max_minutes,
        )?;
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
    /// The model's trained parameters.
    pub params: usize,
    /// Floats of state per sequence at the end of a full context (keys and values for a
    /// Transformer, hidden and cell vectors for an LSTM).
    pub state: usize,
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
    /// Plateau length by the loss: the first logged step whose training loss is at least
    /// [`LOSS_MARGIN`] below ln(classes) (`None`: not within the run).
    pub plateau_loss: Option<usize>,
    /// Plateau length by in-context learning: the first evaluation at which unseen-task
    /// accuracy (mean over the last quarter of positions) is [`MARGIN`] above chance (`None`:
    /// not within the run).
    pub plateau_icl: Option<usize>,
    /// The last evaluation's curves (seen tasks, unseen tasks, unseen dataset), for plots and
    /// the page's phase explorer.
    pub curves: Vec<Curve>,
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

/// How far (in nats) the training loss must fall below ln(classes), the loss of a constant
/// uniform prediction, to count as leaving the plateau.
pub const LOSS_MARGIN: f32 = 0.1;

/// The two plateau lengths of a run: (by the loss, by unseen-task accuracy); see [`Row`].
///
/// The loss is the mean over logged windows of 10 steps. With a bias fraction the loss leaves
/// the plateau sooner than in-context learning appears (the biased sequences' fixed labels are
/// learned by heart), which is why both are reported.
pub fn plateau(results: &Results, classes: usize) -> (Option<usize>, Option<usize>) {
    let uniform = (classes as f32).ln();
    let by_loss = results
        .loss_log
        .iter()
        .find(|(_, loss)| *loss <= uniform - LOSS_MARGIN)
        .map(|(step, _)| *step);
    let chance = 1.0 / classes as f32;
    let by_icl = results
        .history
        .iter()
        .find(|e| {
            e.curves
                .get(1)
                .is_some_and(|c| tail_mean(c) >= chance + MARGIN)
        })
        .map(|e| e.step);
    (by_loss, by_icl)
}

/// Mean accuracy over the last ⌈len/4⌉ positions (at least one). For a length that 4 does not
/// divide this is one position more than `eval::last_quarter` (38–50 of 50, where the suite
/// reads 39–50); it stays so that the merged sweeps recorded with it (`web/sweeps/`,
/// `docs/results/`) and new merges read alike.
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

/// Joins sweep directories: every run of the spec must be found in one of them, finished
/// (or, with `partial`, evaluated at least once).
pub fn merge_dirs(dirs: &[PathBuf], partial: bool) -> Result<Merged> {
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
            found.get(&r.index).is_none_or(|x| {
                x.history.is_empty() || (!partial && x.steps < r.config.train.steps)
            })
        })
        .map(|r| r.index)
        .collect();
    if !missing.is_empty() {
        let hint = if partial {
            ""
        } else {
            " (--partial takes unfinished runs as far as they went)"
        };
        bail!("runs not finished or not found: {missing:?}{hint}");
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
            let (plateau_loss, plateau_icl) = plateau(results, r.config.model.n_classes);
            Ok(Row {
                index: r.index,
                values: spec
                    .axes
                    .iter()
                    .zip(&r.at)
                    .map(|(a, &v)| SweepSpec::label(&a.values[v]))
                    .collect(),
                steps: results.steps,
                params: r.config.model.param_count(),
                state: r.config.model.state_size(
                    r.config.tasks.seq_len * r.config.tasks.format.tokens_per_example(),
                ),
                seen_first,
                seen_last,
                unseen_first,
                unseen_last,
                unseen_dataset_last: tail_mean(other),
                gain: unseen_last - unseen_first,
                phase: classify(seen_first, seen_last, unseen_last, chance),
                plateau_loss,
                plateau_icl,
                curves: last.curves.clone(),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Merged { spec, rows })
}

fn merge(args: MergeArgs) -> Result<()> {
    let merged = merge_dirs(&args.dirs, args.partial)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    write_atomic(
        &args.out.join("merged.json"),
        serde_json::to_string_pretty(&merged)?.as_bytes(),
    )?;
    write_atomic(&args.out.join("phase.svg"), phase_svg(&merged).as_bytes())?;
    write_atomic(
        &args.out.join("plateau.svg"),
        plateau_svg(&merged).as_bytes(),
    )?;
    let axes: Vec<&str> = merged.spec.axes.iter().map(|a| a.path.as_str()).collect();
    println!(
        "{:>5}  {:<30} {:>8} {:>8} {:>8} {:>8} {:>9} {:>9}  phase",
        "run",
        axes.join(" × "),
        "seen@1",
        "seen",
        "unseen",
        "gain",
        "plat.loss",
        "plat.icl"
    );
    let steps = |s: Option<usize>| s.map_or_else(|| "-".to_string(), |s| s.to_string());
    for r in &merged.rows {
        println!(
            "{:>5}  {:<30} {:>7.1}% {:>7.1}% {:>7.1}% {:>+7.1}% {:>9} {:>9}  {:?}",
            r.index,
            r.values.join(" × "),
            100.0 * r.seen_first,
            100.0 * r.seen_last,
            100.0 * r.unseen_last,
            100.0 * r.gain,
            steps(r.plateau_loss),
            steps(r.plateau_icl),
            r.phase
        );
    }
    println!(
        "wrote {}/merged.json, phase.svg and plateau.svg",
        args.out.display()
    );
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
        let at = m.spec.position(row.index);
        let (c, r) = (at[0], at.get(1).copied().unwrap_or(0));
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

/// Plateau length against the first axis: for each run, the step at which the loss left
/// ln(classes) (filled circles) and the step at which unseen-task accuracy left chance
/// (diamonds); a run still on the plateau at its end is drawn hollow at its last step ("≥").
/// Runs that differ on later axes are joined by separate lines.
pub fn plateau_svg(m: &Merged) -> String {
    let axis = &m.spec.axes[0];
    let n = axis.values.len();
    let (w, h, left, right, top, bottom) = (560.0, 340.0, 70.0, 20.0, 40.0, 70.0);
    let longest = m.rows.iter().map(|r| r.steps).max().unwrap_or(1).max(1) as f64;
    // Four gridlines at a round step (1, 2 or 5 × 10^k).
    let tick = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * 10f64.powi((longest / 4.0).log10().floor() as i32))
        .find(|t| 4.0 * t >= longest)
        .unwrap_or(longest / 4.0);
    let ymax = 4.0 * tick;
    let px = |i: usize| left + (w - left - right) * (i as f64 + 0.5) / n as f64;
    let py = |s: f64| top + (h - top - bottom) * (1.0 - s / ymax);
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">"#
    );
    let _ = write!(
        s,
        r#"<text x="{left}" y="20" font-size="14">{}: plateau length by {}</text>"#,
        xml(&m.spec.name),
        xml(&axis.path)
    );
    for k in 0..=4 {
        let v = ymax * k as f64 / 4.0;
        let y = py(v);
        let _ = write!(
            s,
            r##"<line x1="{left}" x2="{}" y1="{y}" y2="{y}" stroke="#e5e5e5"/><text x="{}" y="{}" text-anchor="end">{v:.0}</text>"##,
            w - right,
            left - 6.0,
            y + 4.0
        );
    }
    for (i, v) in axis.values.iter().enumerate() {
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
            px(i),
            h - bottom + 16.0,
            xml(&SweepSpec::label(v))
        );
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text><text x="16" y="{}" transform="rotate(-90 16 {})" text-anchor="middle">steps on the plateau</text>"#,
        (left + w - right) / 2.0,
        h - bottom + 34.0,
        xml(&axis.path),
        (top + h - bottom) / 2.0,
        (top + h - bottom) / 2.0
    );
    // Rows that share their values on the later axes form one line.
    let mut lines: BTreeMap<Vec<String>, Vec<&Row>> = BTreeMap::new();
    for r in &m.rows {
        lines.entry(r.values[1..].to_vec()).or_default().push(r);
    }
    let colors = [
        "#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9",
    ];
    for (li, (key, rows)) in lines.iter().enumerate() {
        let color = colors[li % colors.len()];
        for (metric, diamond) in [(0, false), (1, true)] {
            let points: Vec<(f64, f64, bool)> = rows
                .iter()
                .map(|r| {
                    let i = m.spec.position(r.index)[0];
                    let found = if metric == 0 {
                        r.plateau_loss
                    } else {
                        r.plateau_icl
                    };
                    (px(i), py(found.unwrap_or(r.steps) as f64), found.is_some())
                })
                .collect();
            let path: Vec<String> = points
                .iter()
                .map(|(x, y, _)| format!("{x:.1},{y:.1}"))
                .collect();
            let dash = if diamond {
                r#" stroke-dasharray="4 3""#
            } else {
                ""
            };
            let _ = write!(
                s,
                r#"<polyline fill="none" stroke="{color}" stroke-width="1.5"{dash} points="{}"/>"#,
                path.join(" ")
            );
            for (x, y, found) in points {
                let fill = if found { color } else { "#fff" };
                let shape = if diamond {
                    format!(
                        r#"<path d="M{x:.1},{:.1} l5,5 l-5,5 l-5,-5 z" fill="{fill}" stroke="{color}"/>"#,
                        y - 5.0
                    )
                } else {
                    format!(
                        r#"<circle cx="{x:.1}" cy="{y:.1}" r="4" fill="{fill}" stroke="{color}"/>"#
                    )
                };
                s.push_str(&shape);
            }
        }
        if !key.is_empty() {
            let _ = write!(
                s,
                r#"<text x="{}" y="{}" fill="{color}">{}</text>"#,
                w - right - 120.0,
                top + 14.0 * li as f64 + 10.0,
                xml(&key.join(", "))
            );
        }
    }
    let _ = write!(
        s,
        r##"<circle cx="{left}" cy="{y}" r="4" fill="#444"/><text x="{}" y="{}">loss below ln(classes) − {LOSS_MARGIN}</text><path d="M{},{} l5,5 l-5,5 l-5,-5 z" fill="#444"/><text x="{}" y="{}">unseen accuracy {:.0} points above chance</text><text x="{left}" y="{}">hollow: still on the plateau when the run ended</text>"##,
        left + 10.0,
        h - 22.0 + 4.0,
        left + 250.0,
        h - 22.0 - 5.0,
        left + 260.0,
        h - 22.0 + 4.0,
        100.0 * MARGIN,
        h - 6.0,
        y = h - 22.0,
    );
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
    fn the_plateau_ends_where_the_loss_or_unseen_accuracy_first_leaves_chance() {
        let config = RunConfig::preset("tiny").unwrap();
        let mut results = Results::new(&config, Backend::Flex.name());
        let ln10 = 10f32.ln();
        results.loss_log = vec![(10, ln10), (20, ln10 - 0.05), (30, ln10 - 0.12), (40, 1.0)];
        let curve = |acc: f32| Curve {
            name: "unseen".into(),
            accuracy: vec![0.1, acc, acc, acc],
            loss: vec![0.0; 4],
        };
        results.history = [(25, 0.15), (50, 0.21), (75, 0.5)]
            .into_iter()
            .map(|(step, acc)| gpicl_core::EvalPoint {
                step,
                time_s: 0.0,
                train_loss: 0.0,
                curves: vec![curve(0.9), curve(acc), curve(0.1)],
            })
            .collect();
        assert_eq!(plateau(&results, 10), (Some(30), Some(50)));
        results.loss_log.truncate(2);
        results.history.truncate(1);
        assert_eq!(plateau(&results, 10), (None, None));
    }

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
