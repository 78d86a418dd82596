//! `gpicl suite`: a learner on the held-out suite (`gpicl_core::suite`: synthetic datasets
//! from seeds, and the UCI tables the data directory has) and on any tables given with
//! `--data`, beside 1-NN, logistic regression and an MLP fit on the same contexts: one table,
//! one row per dataset.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use gpicl_core::baselines::{Baseline, Inputs};
use gpicl_core::eval::{Hits, last_quarter, mean_and_se};
use gpicl_core::manifest::{SuiteRecord, SuiteRow};
use gpicl_core::parse::LabelColumn;
use gpicl_core::suite::{self, SYNTHETIC};
use gpicl_core::{Curve, Dataset, EvalSet, Manifest};

use crate::backend::Backend;
use crate::data::{is_csv, label_column, load_csv, read_csv};
use crate::train_cmd::load_checkpoint_model;

/// The shipped tables that join the synthetic datasets (in the data directory; the original
/// UCI files, gzipped, see `cargo xtask data`) and where each keeps its label: handwritten
/// digits (numbers), then four tables of categories.
const SHIPPED_TABLES: [(&str, LabelColumn); 5] = [
    ("uci-digits.csv.gz", LabelColumn::Last),
    ("uci-car.csv.gz", LabelColumn::Last),
    ("uci-tic-tac-toe.csv.gz", LabelColumn::Last),
    ("uci-votes.csv.gz", LabelColumn::First),
    ("uci-mushroom.csv.gz", LabelColumn::First),
];

/// Positions of the last quarter at which the baselines are fit (evenly spaced; the learner is
/// read at every position).
const BASELINE_POSITIONS: usize = 8;

/// Arguments of `gpicl suite`.
#[derive(clap::Args)]
pub struct SuiteArgs {
    /// A checkpoint: a `.gpicl` file, a run directory, or the page's learner (`web/pretrained`).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Evaluation sequences per dataset.
    #[arg(long, default_value_t = 256)]
    sequences: usize,
    /// Sequences the baselines are fit on (the first of each set).
    #[arg(long, default_value_t = 64)]
    baseline_sequences: usize,
    /// Examples per sequence (default: the learner's training length).
    #[arg(long)]
    seq_len: Option<usize>,
    /// Seed of the evaluation tasks and examples.
    #[arg(long, default_value_t = 1234)]
    seed: u64,
    /// Seed the synthetic datasets are made from.
    #[arg(long, default_value_t = suite::SEED)]
    data_seed: u64,
    /// Directory of the data bundles (for the UCI tables).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// A table of your own to read beside the suite's datasets (`.csv` or `.tsv`, maybe `.gz`;
    /// one row per example, the label in the last column unless `--label-column` says: class
    /// numbers or names), standardised column by column as `gpicl eval --data` reads it;
    /// repeat for more. Not with `--record`.
    #[arg(long, value_name = "FILE", conflicts_with = "record")]
    data: Vec<PathBuf>,
    /// The `--data` tables' label is their first column (default: last).
    #[arg(long, requires = "data")]
    label_first: bool,
    /// The `--data` tables' label is column N (1-based) or the column their header names NAME
    /// (default: the last).
    #[arg(
        long,
        value_name = "N|NAME",
        requires = "data",
        conflicts_with = "label_first"
    )]
    label_column: Option<String>,
    /// Only the `--data` tables: the suite's own datasets left out.
    #[arg(long, requires = "data")]
    only_data: bool,
    /// Compute backend.
    #[arg(long, value_enum, default_value = "flex")]
    backend: Backend,
    /// Also read the learner as an ensemble of this many views of each sequence (other
    /// projections and renamings of the same examples, probabilities averaged; see
    /// `EvalSet::with_views`): a second learner column. 1: the learner alone.
    #[arg(long, default_value_t = 1)]
    views: usize,
    /// Write the figures into the checkpoint's manifest (a packaged learner, such as
    /// `web/pretrained`), with this command.
    #[arg(long)]
    record: bool,
    /// Leave out the baselines (the learner's columns only): they do not depend on the
    /// learner, so comparing learners or levers needs them once. Not with `--record`.
    #[arg(long, conflicts_with = "record")]
    no_baselines: bool,
    /// Another learner (a checkpoint as for `--checkpoint`, of the same inputs and classes) to
    /// compare with on the same sequences and views: a second table, the first learner minus
    /// this one on each dataset, paired by sequence, with its standard error.
    #[arg(long, value_name = "CHECKPOINT")]
    against: Option<PathBuf>,
}

/// The first learner minus the `--against` learner on one dataset, paired by sequence over the
/// last quarter: `(its figure, the difference, the difference's standard error)`, alone and,
/// with views, read with them.
struct Against {
    alone: (f32, f32, f32),
    viewed: Option<(f32, f32, f32)>,
}

/// One dataset's row of the table: the learner's first guess and mean over the last quarter,
/// and each baseline's mean there.
struct Row {
    name: String,
    classes: usize,
    features: usize,
    first: f32,
    learner: f32,
    /// The mean with `--views` views, when asked for.
    ensemble: Option<f32>,
    /// The standard error of the learner's figure the margin is taken from (over sequences).
    se: f32,
    baselines: Vec<f32>,
    /// That learner's figure minus each baseline's on the baseline's own sequences and
    /// positions, paired by sequence: `(mean difference, its standard error)`.
    paired: Vec<(f32, f32)>,
    /// Against the `--against` learner, when asked for.
    against: Option<Against>,
}

impl Row {
    /// The learner's figure the margin is taken from: the ensemble's when there is one.
    fn best_learner(&self) -> f32 {
        self.ensemble.unwrap_or(self.learner)
    }
}

/// Runs `gpicl suite`.
pub fn run(args: SuiteArgs) -> Result<()> {
    if args.sequences == 0 || args.baseline_sequences == 0 || args.views == 0 {
        bail!("--sequences, --baseline-sequences and --views must be positive");
    }
    let device = args.backend.device()?;
    let (config, model) = load_checkpoint_model(&args.checkpoint, &device)?;
    let other = match &args.against {
        Some(path) => Some(crate::eval_cmd::load_against(
            path,
            &args.checkpoint,
            &config,
            &device,
        )?),
        None => None,
    };
    let seq_len = args.seq_len.unwrap_or(config.tasks.seq_len);
    if !(4..=4096).contains(&seq_len) {
        bail!("--seq-len must be in 4..=4096");
    }
    let mut datasets = if args.only_data {
        Vec::new()
    } else {
        suite_datasets(&args)?
    };
    for path in &args.data {
        if !is_csv(path) {
            bail!(
                "{}: --data reads tables (.csv or .tsv, maybe gzipped); `gpicl eval --data` also reads IDX images",
                path.display()
            );
        }
        datasets.push(load_csv(
            path,
            label_column(args.label_first, args.label_column.as_deref())?,
        )?);
    }
    let quarter = last_quarter(seq_len);
    // Evenly spaced, each position once (a short sequence's quarter has fewer than
    // BASELINE_POSITIONS).
    let mut positions: Vec<usize> = (0..BASELINE_POSITIONS)
        .map(|i| quarter[i * (quarter.len() - 1) / (BASELINE_POSITIONS - 1)])
        .collect();
    positions.dedup();
    let baselines = if args.no_baselines {
        Vec::new()
    } else {
        Baseline::standard().to_vec()
    };
    let mut rows = Vec::new();
    for data in &datasets {
        // The baselines read the set's own sequences; the views are the learner's, and the
        // learner alone is read from the same forward passes.
        let set = EvalSet::unseen(
            data.name.clone(),
            data,
            args.sequences,
            seq_len,
            config.model.d_in,
            config.model.n_classes,
            args.seed,
        )?
        .with_views(args.views, args.seed);
        let reading = crate::eval_cmd::learner_reading(&model, &config, &set, &device)?;
        let (viewed, curve) = (&reading.viewed, &reading.alone);
        let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len().max(1) as f32;
        // The learner's figure the margin is taken from, by sequence (for a set without
        // views, the viewed reading is the learner alone's).
        let best_hits = &reading.viewed_hits;
        let (mut fitted, mut paired) = (Vec::new(), Vec::new());
        for b in &baselines {
            let hits = b.hits_on(&set, &positions, args.baseline_sequences, Inputs::Projected);
            fitted.push(mean(&hits.curve().iter().map(|p| p.1).collect::<Vec<_>>()));
            paired.push(best_hits.minus(&hits, &positions));
        }
        let ensemble = (args.views > 1).then(|| mean(&viewed.accuracy[quarter[0] - 1..]));
        let against = match &other {
            Some((c, m)) => {
                let theirs = crate::eval_cmd::learner_reading(m, c, &set, &device)?;
                // Theirs (from its curve, as ours), and ours minus theirs, by sequence over the
                // last quarter.
                let paired = |ours: &Hits, theirs: &Hits, curve: &Curve| {
                    let (d, e) = ours.minus(theirs, &quarter);
                    (mean(&curve.accuracy[quarter[0] - 1..]), d, e)
                };
                Some(Against {
                    alone: paired(&reading.alone_hits, &theirs.alone_hits, &theirs.alone),
                    viewed: (args.views > 1)
                        .then(|| paired(&reading.viewed_hits, &theirs.viewed_hits, &theirs.viewed)),
                })
            }
            None => None,
        };
        let row = Row {
            name: data.name.clone(),
            classes: data.n_classes,
            features: data.n_features,
            first: curve.accuracy[0],
            learner: mean(&curve.accuracy[quarter[0] - 1..]),
            ensemble,
            se: mean_and_se(&best_hits.means(&quarter, usize::MAX)).1,
            baselines: fitted,
            paired,
            against,
        };
        eprintln!("{}: done", row.name);
        rows.push(row);
    }
    print_table(&args, seq_len, &quarter, &positions, &baselines, &rows);
    if let Some(path) = &args.against {
        print_against(&args, path, &quarter, &rows);
    }
    if args.record {
        record(&args, &baselines, &rows)?;
    }
    Ok(())
}

/// The suite's own datasets: the synthetic ones from `--data-seed`, and the shipped UCI tables
/// the data directory has (read as `--data` reads a table; how their cells were read is not
/// repeated on every run: `gpicl eval --data FILE` prints it).
fn suite_datasets(args: &SuiteArgs) -> Result<Vec<Dataset>> {
    let mut datasets: Vec<Dataset> = SYNTHETIC
        .iter()
        .map(|s| Ok(s.make(args.data_seed)?.prepared(1)?))
        .collect::<Result<_>>()?;
    let dir = args
        .data_dir
        .clone()
        .unwrap_or_else(crate::default_data_dir);
    for (file, label) in SHIPPED_TABLES {
        let path = dir.join(file);
        if path.is_file() {
            datasets.push(read_csv(&path, label)?.0);
        } else {
            println!("({} not found: the suite runs without it)", path.display());
        }
    }
    Ok(datasets)
}

/// Writes the suite's figures into the packaged learner's manifest.
fn record(args: &SuiteArgs, baselines: &[Baseline], rows: &[Row]) -> Result<()> {
    let path = args.checkpoint.join("manifest.json");
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "--record writes into a packaged learner's manifest: cannot read {}",
            path.display()
        )
    })?;
    let mut manifest =
        Manifest::from_json(&text).with_context(|| format!("in {}", path.display()))?;
    let mut command = format!(
        "gpicl suite --checkpoint {} --sequences {} --baseline-sequences {} --seed {} --data-seed {}",
        args.checkpoint.display(),
        args.sequences,
        args.baseline_sequences,
        args.seed,
        args.data_seed
    );
    if let Some(t) = args.seq_len {
        command.push_str(&format!(" --seq-len {t}"));
    }
    if args.views > 1 {
        command.push_str(&format!(" --views {}", args.views));
    }
    manifest.suite = Some(SuiteRecord {
        command,
        views: args.views,
        rows: rows
            .iter()
            .map(|r| SuiteRow {
                dataset: r.name.clone(),
                learner: r.learner,
                views: r.ensemble,
                baselines: baselines
                    .iter()
                    .zip(&r.baselines)
                    .map(|(b, &v)| (b.name(), v))
                    .collect(),
            })
            .collect(),
        paired: baselines
            .iter()
            .enumerate()
            .map(|(i, b)| {
                let (d, e) = pooled_paired(rows, i);
                (b.name(), d, e)
            })
            .collect(),
    });
    let json = serde_json::to_string_pretty(&manifest)?;
    Manifest::from_json(&json).context("the manifest written does not read back")?;
    crate::train_cmd::write_atomic(&path, json.as_bytes())?;
    println!("recorded in {}", path.display());
    Ok(())
}

/// The table as Markdown (the README pastes it), with the mean row and the learner's margin
/// over the best baseline.
fn print_table(
    args: &SuiteArgs,
    seq_len: usize,
    quarter: &[usize],
    positions: &[usize],
    baselines: &[Baseline],
    rows: &[Row],
) {
    let what = match (args.only_data, args.data.is_empty()) {
        (true, _) => "the tables given",
        (false, true) => "the held-out suite",
        (false, false) => "the held-out suite and the tables given",
    };
    println!(
        "{} on {what}: {} sequences of {seq_len} examples per dataset (unseen tasks: a random \
         projection to the learner's inputs, the k classes renamed among k labels); mean \
         accuracy over positions {}–{seq_len}; baselines fit on the first {} sequences' contexts \
         at {} of those positions. First guess: accuracy at position 1.",
        args.checkpoint.display(),
        args.sequences,
        quarter[0],
        args.baseline_sequences.min(args.sequences),
        positions.len(),
    );
    if args.views > 1 {
        println!(
            "Ensemble: the learner's probabilities averaged over {} views of each sequence (the \
             same examples through other random projections and renamings); the margin is the \
             ensemble's.",
            args.views
        );
    }
    let ensemble = args.views > 1;
    let mut header = String::from("| dataset | classes | features | first guess (1/k) | learner |");
    let mut rule = String::from("|---|---:|---:|---:|---:|");
    if ensemble {
        let _ = write!(header, " learner, {} views |", args.views);
        rule.push_str("---:|");
    }
    for b in baselines {
        let _ = write!(header, " {} |", b.name());
        rule.push_str("---:|");
    }
    let margin = !baselines.is_empty();
    if margin {
        header.push_str(" learner − best baseline |");
        rule.push_str("---:|");
    }
    println!("{header}\n{rule}");
    let pct = |v: f32| format!("{:.1} %", 100.0 * v);
    for r in rows {
        let best = r.baselines.iter().copied().fold(0.0, f32::max);
        let mut line = format!(
            "| {} | {} | {} | {} ({}) | **{}** |",
            r.name,
            r.classes,
            r.features,
            pct(r.first),
            pct(1.0 / r.classes as f32),
            pct(r.learner)
        );
        if let Some(e) = r.ensemble {
            let _ = write!(line, " **{}** |", pct(e));
        }
        for b in &r.baselines {
            let _ = write!(line, " {} |", pct(*b));
        }
        if margin {
            let _ = write!(line, " {:+.1} |", 100.0 * (r.best_learner() - best));
        }
        println!("{line}");
    }
    let n = rows.len().max(1) as f32;
    let mean_of = |f: &dyn Fn(&Row) -> f32| rows.iter().map(f).sum::<f32>() / n;
    let learner = mean_of(&|r| r.learner);
    let best_learner = mean_of(&|r| r.best_learner());
    let means: Vec<f32> = (0..baselines.len())
        .map(|i| mean_of(&|r| r.baselines[i]))
        .collect();
    let best = means.iter().copied().fold(0.0, f32::max);
    let mut line = format!("| **mean** | | | | **{}** |", pct(learner));
    if ensemble {
        let _ = write!(line, " **{}** |", pct(best_learner));
    }
    for m in &means {
        let _ = write!(line, " {} |", pct(*m));
    }
    if margin {
        let _ = write!(line, " {:+.1} |", 100.0 * (best_learner - best));
    }
    println!("{line}");
    print_noise(args, baselines, positions.len(), &means, rows);
}

/// The second table of `--against`: each dataset's figures of the two learners and their
/// paired difference, alone and (with views) read with them; the mean's error pools the
/// datasets' (drawn apart, so their variances add).
fn print_against(args: &SuiteArgs, other: &std::path::Path, quarter: &[usize], rows: &[Row]) {
    println!(
        "\n{} against {} on the same sequences and views: each one's mean accuracy over \
         positions {}–{}, and the first minus the second, paired by sequence (± its standard \
         error), in points.",
        args.checkpoint.display(),
        other.display(),
        quarter[0],
        quarter[quarter.len() - 1]
    );
    let views = args.views > 1;
    let mut header = String::from("| dataset | first | second | first − second |");
    let mut rule = String::from("|---|---:|---:|---:|");
    if views {
        let v = args.views;
        let _ = write!(
            header,
            " first, {v} views | second, {v} views | first − second, {v} views |"
        );
        rule.push_str("---:|---:|---:|");
    }
    println!("{header}\n{rule}");
    let pct = |v: f32| format!("{:.1} %", 100.0 * v);
    let diff = |d: f32, e: f32| format!("{:+.2} ± {:.2}", 100.0 * d, 100.0 * e);
    let n = rows.len().max(1) as f32;
    // Sums over the datasets (first, second, difference) and the differences' standard
    // errors; alone and with views.
    let mut sums = [[0.0f32; 3]; 2];
    let mut errors: [Vec<f32>; 2] = Default::default();
    for r in rows {
        let Some(a) = &r.against else { continue };
        let ensemble = r.ensemble.unwrap_or(r.learner);
        let mut line = format!("| {} |", r.name);
        for (k, (ours, (theirs, d, e))) in [(r.learner, a.alone)]
            .into_iter()
            .chain(a.viewed.map(|v| (ensemble, v)))
            .enumerate()
        {
            let _ = write!(line, " {} | {} | {} |", pct(ours), pct(theirs), diff(d, e));
            for (s, v) in sums[k].iter_mut().zip([ours, theirs, d]) {
                *s += v;
            }
            errors[k].push(e);
        }
        println!("{line}");
    }
    let mut line = String::from("| **mean** |");
    for (s, e) in sums.iter().zip(&errors).take(if views { 2 } else { 1 }) {
        let _ = write!(
            line,
            " {} | {} | **{}** |",
            pct(s[0] / n),
            pct(s[1] / n),
            diff(s[2] / n, pooled(e.iter().copied(), rows.len()))
        );
    }
    println!("{line}");
}

/// The learner minus baseline `i` on the mean over the datasets, paired by sequence: the mean
/// of the datasets' differences and its standard error (datasets drawn apart, so their
/// variances add).
fn pooled_paired(rows: &[Row], i: usize) -> (f32, f32) {
    let n = rows.len().max(1) as f32;
    let d = rows.iter().map(|r| r.paired[i].0).sum::<f32>() / n;
    (d, pooled(rows.iter().map(|r| r.paired[i].1), rows.len()))
}

/// The standard error of the mean of `n` figures drawn apart, from theirs: √(Σ e²) / n.
fn pooled(errors: impl Iterator<Item = f32>, n: usize) -> f32 {
    errors.map(|e| e * e).sum::<f32>().sqrt() / n.max(1) as f32
}

/// Below the table: the learner's standard errors, and its paired differences from each
/// baseline on the mean over the datasets (datasets drawn apart, so their variances add).
fn print_noise(
    args: &SuiteArgs,
    baselines: &[Baseline],
    positions: usize,
    means: &[f32],
    rows: &[Row],
) {
    let learner = if args.views > 1 {
        format!("the learner with {} views", args.views)
    } else {
        "the learner".to_string()
    };
    let largest = rows.iter().map(|r| r.se).fold(0.0, f32::max);
    println!(
        "\nNoise: the standard error over sequences of {learner}: at most {:.1} points on a \
         dataset, {:.1} on the mean.",
        100.0 * largest,
        100.0 * pooled(rows.iter().map(|r| r.se), rows.len())
    );
    if baselines.is_empty() {
        return;
    }
    let best = means
        .iter()
        .enumerate()
        .fold(0, |b, (i, m)| if *m > means[b] { i } else { b });
    let mut line = format!(
        "Paired by sequence (the baselines' {} sequences and {positions} positions, the learner \
         read there too), {learner} minus each baseline on the mean over the datasets, in \
         points: ",
        args.baseline_sequences.min(args.sequences)
    );
    for (i, b) in baselines.iter().enumerate() {
        let (d, e) = pooled_paired(rows, i);
        let sep = if i == 0 { "" } else { ", " };
        let mark = if i == best {
            " (the best baseline)"
        } else {
            ""
        };
        let _ = write!(
            line,
            "{sep}{}{mark} {:+.1} ± {:.1}",
            b.name(),
            100.0 * d,
            100.0 * e
        );
    }
    println!("{line}.");
}
