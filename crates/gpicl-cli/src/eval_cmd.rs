//! `gpicl eval`: a checkpoint against any dataset file, printed as a curve; or, without a
//! dataset file, on its run's own three evaluation sets (the curves the page and `gpicl train`
//! show).

use std::path::PathBuf;

use std::fmt::Write as _;

use anyhow::{Result, bail};
use gpicl_core::baselines::{Baseline, Inputs, curve_positions};
use gpicl_core::eval::{Hits, Reading, evaluate, evaluate_with_hits, mean_and_se};
use gpicl_core::{Curve, EvalSet};

use crate::backend::Backend;
use crate::data::{file_dataset_name, is_csv, label_column, load_csv, load_idx};
use crate::train_cmd::load_checkpoint_model;

/// Arguments of `gpicl eval`.
#[derive(clap::Args)]
pub struct EvalArgs {
    /// A checkpoint: a `.gpicl` file (from `gpicl train` or the page) or a run directory.
    #[arg(long)]
    checkpoint: PathBuf,
    /// Dataset file: a table (`.csv` or `.tsv`, maybe `.gz`; a header, missing values and text
    /// columns are read, and how is said on stderr) or IDX images (then pass --labels). Without it:
    /// the run's own evaluation sets (seen tasks, unseen tasks, Fashion-MNIST), as in training.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Without --data: also write the curves to this JSON file.
    #[arg(long, conflicts_with = "data")]
    json: Option<PathBuf>,
    /// Directory of the data bundles (without --data).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// IDX labels file, for an IDX images file.
    #[arg(long)]
    labels: Option<PathBuf>,
    /// CSV: the label is the first column (default: last).
    #[arg(long)]
    label_first: bool,
    /// CSV: the label is column N (1-based) or the column the header names NAME (default: the
    /// last). Labels are class numbers or names.
    #[arg(long, value_name = "N|NAME", conflicts_with = "label_first")]
    label_column: Option<String>,
    /// Number of evaluation sequences (unseen tasks).
    #[arg(long, default_value_t = 256)]
    sequences: usize,
    /// Examples per sequence (default: the training length).
    #[arg(long)]
    seq_len: Option<usize>,
    /// Seed of the evaluation tasks and examples.
    #[arg(long, default_value_t = 1234)]
    seed: u64,
    /// Compute backend.
    #[arg(long, value_enum, default_value = "flex")]
    backend: Backend,
    /// Also fit 1-NN, logistic regression and an MLP on each context (the same projected
    /// inputs and labels the learner sees; see --baselines-on) and print their accuracy beside
    /// the learner's.
    #[arg(long)]
    baselines: bool,
    /// Sequences the baselines are scored on (the first of the evaluation set; they fit one
    /// model per sequence and position, on the CPU).
    #[arg(long, default_value_t = 64)]
    baseline_sequences: usize,
    /// What the baselines are fit on: each task's projected inputs, as the learner sees them
    /// (the paper's protocol), or the dataset's own features before any projection (a table
    /// as loaded, standardised column by column).
    #[arg(long, value_enum, default_value = "projected", requires = "baselines")]
    baselines_on: BaselineInputs,
    /// With --data: also read the learner as an ensemble of this many views of each sequence
    /// (other projections and renamings of the same examples, probabilities averaged; see
    /// `EvalSet::with_views`), a column beside the learner alone. 1: the learner alone only.
    #[arg(long, default_value_t = 1)]
    views: usize,
    /// With --data: another learner (a checkpoint, of the same inputs and classes) read on the
    /// same sequences and views; below the table, the first minus it, paired by sequence, with
    /// its standard error.
    #[arg(long, value_name = "CHECKPOINT", requires = "data")]
    against: Option<PathBuf>,
}

/// Runs `gpicl eval`.
pub fn run(args: EvalArgs) -> Result<()> {
    let device = args.backend.device()?;
    let (config, model) = load_checkpoint_model(&args.checkpoint, &device)?;
    let Some(data_file) = &args.data else {
        return run_sets(&args, &config, &model, &device);
    };
    let data = match &args.labels {
        Some(labels) => load_idx(
            &file_dataset_name(data_file),
            data_file,
            labels,
            config.tasks.image_pool,
        )?,
        None if is_csv(data_file) => load_csv(
            data_file,
            label_column(args.label_first, args.label_column.as_deref())?,
        )?,
        None => bail!(
            "{}: not a .csv or .tsv file; for IDX images pass --labels",
            data_file.display()
        ),
    };
    if args.sequences == 0 || args.views == 0 {
        bail!("--sequences and --views must be positive");
    }
    if args.baselines && args.baseline_sequences == 0 {
        bail!("--baseline-sequences must be positive");
    }
    let seq_len = args.seq_len.unwrap_or(config.tasks.seq_len);
    if seq_len == 0 || seq_len > 4096 {
        bail!("--seq-len must be in 1..=4096");
    }
    let set = EvalSet::unseen(
        format!("{} unseen tasks", data.name),
        &data,
        args.sequences,
        seq_len,
        config.model.d_in,
        config.model.n_classes,
        args.seed,
    )?
    // The baselines read the set's own sequences only; the views are the learner's.
    .with_views(args.views, args.seed);
    let reading = learner_reading(&model, &config, &set, &device)?;
    let curve = &reading.alone;
    let viewed = (args.views > 1).then_some(&reading.viewed);
    println!(
        "{}: {} examples, {} features, {} classes (chance {:.1}%); {} sequences of {seq_len}",
        data.name,
        data.len(),
        data.n_features,
        data.n_classes,
        100.0 / data.n_classes as f32,
        args.sequences
    );
    if args.views > 1 {
        println!(
            "\"{} views\": the learner's probabilities averaged over that many views of each \
             sequence (other random projections and renamings of the same examples); \
             \"accuracy\" and \"loss\": the learner alone",
            args.views
        );
    }
    // The printed positions and the last ten (their mean is the summary row: less noisy than
    // one position); baselines are fit once at each position of either.
    let printed = curve_positions(seq_len);
    let last: Vec<usize> = (seq_len.saturating_sub(9).max(1)..=seq_len).collect();
    let mut positions: Vec<usize> = printed.iter().chain(&last).copied().collect();
    positions.sort_unstable();
    positions.dedup();
    let baselines: Vec<(String, Hits)> = if args.baselines {
        Baseline::standard()
            .iter()
            .map(|b| {
                let hits = b.hits_on(
                    &set,
                    &positions,
                    args.baseline_sequences,
                    args.baselines_on.into(),
                );
                (b.name(), hits)
            })
            .collect()
    } else {
        vec![]
    };
    if !baselines.is_empty() {
        println!(
            "baselines on the first {} sequences, fit on the examples before each position ({})",
            args.baseline_sequences.min(args.sequences),
            match args.baselines_on {
                BaselineInputs::Projected => "their projected inputs, as the learner sees them",
                BaselineInputs::Raw => "the dataset's own features, not projected",
            }
        );
    }
    let curves: Vec<Vec<(usize, f32)>> = baselines.iter().map(|(_, h)| h.curve()).collect();
    // A baseline's accuracy at position k (scored at every position asked for).
    let at = |c: &[(usize, f32)], k: usize| c.iter().find(|p| p.0 == k).map_or(0.0, |p| p.1);
    let mean = |v: Vec<f32>| v.iter().sum::<f32>() / v.len().max(1) as f32;
    let mut header = format!("{:>9}  {:>9}  {:>7}", "example", "accuracy", "loss");
    if viewed.is_some() {
        let _ = write!(header, "  {:>9}", format!("{} views", args.views));
    }
    for (name, _) in &baselines {
        let _ = write!(header, "  {:>20}", name);
    }
    println!("{header}");
    for &k in &printed {
        let (acc, loss) = (curve.accuracy[k - 1], curve.loss[k - 1]);
        let mut line = format!("{k:>9}  {:>8.1}%  {loss:>7.3}", 100.0 * acc);
        if let Some(v) = &viewed {
            let _ = write!(line, "  {:>8.1}%", 100.0 * v.accuracy[k - 1]);
        }
        for c in &curves {
            let _ = write!(line, "  {:>19.1}%", 100.0 * at(c, k));
        }
        println!("{line}");
    }
    let label = format!("{}–{seq_len}", last[0]);
    let mut line = format!(
        "{label:>9}  {:>8.1}%  {:>7.3}",
        100.0 * mean(last.iter().map(|&k| curve.accuracy[k - 1]).collect()),
        mean(last.iter().map(|&k| curve.loss[k - 1]).collect())
    );
    if let Some(v) = &viewed {
        let _ = write!(
            line,
            "  {:>8.1}%",
            100.0 * mean(last.iter().map(|&k| v.accuracy[k - 1]).collect())
        );
    }
    for c in &curves {
        let _ = write!(
            line,
            "  {:>19.1}%",
            100.0 * mean(last.iter().map(|&k| at(c, k)).collect())
        );
    }
    println!("{line}   (mean over these positions)");
    print_noise(&reading, args.views, &baselines, &label, &last);
    if let Some(path) = &args.against {
        let (other_config, other) = load_against(path, &args.checkpoint, &config, &device)?;
        let theirs = learner_reading(&other, &other_config, &set, &device)?;
        // Its figures as the table's last row reads ours: the mean of its curve over `last`.
        let figure = |c: &Curve| 100.0 * mean(last.iter().map(|&k| c.accuracy[k - 1]).collect());
        let mut line = format!(
            "{} (the second learner: {:.1}%",
            path.display(),
            figure(&theirs.alone)
        );
        if args.views > 1 {
            let _ = write!(
                line,
                ", {} views {:.1}%",
                args.views,
                figure(&theirs.viewed)
            );
        }
        let (d, e) = reading.alone_hits.minus(&theirs.alone_hits, &last);
        let _ = write!(
            line,
            "); the first minus the second on the same {} sequences, mean over {label}, paired \
             by sequence, in points: alone {:+.2} ± {:.2}",
            args.sequences,
            100.0 * d,
            100.0 * e
        );
        if args.views > 1 {
            let (d, e) = reading.viewed_hits.minus(&theirs.viewed_hits, &last);
            let _ = write!(
                line,
                ", {} views {:+.2} ± {:.2}",
                args.views,
                100.0 * d,
                100.0 * e
            );
        }
        println!("{line}");
    }
    Ok(())
}

/// The learner at `path`, to be read beside `first` (meta-trained with `config`) on the same
/// sequences: refused unless it takes the same inputs and classes.
pub(crate) fn load_against(
    path: &std::path::Path,
    first: &std::path::Path,
    config: &gpicl_core::RunConfig,
    device: &burn::prelude::Device,
) -> Result<(gpicl_core::RunConfig, gpicl_core::Transformer)> {
    let (c, m) = load_checkpoint_model(path, device)?;
    if (c.model.d_in, c.model.n_classes) != (config.model.d_in, config.model.n_classes) {
        bail!(
            "--against {}: {} inputs and {} classes, but {} has {} and {}: the two learners \
             cannot read the same sequences",
            path.display(),
            c.model.d_in,
            c.model.n_classes,
            first.display(),
            config.model.d_in,
            config.model.n_classes
        );
    }
    Ok((c, m))
}

/// Below the table: the standard error of each mean over `last` (over sequences, the unit
/// drawn independently), and the learner (its views' reading, if any) against each baseline,
/// paired on the baseline's sequences.
fn print_noise(
    reading: &Reading,
    views: usize,
    baselines: &[(String, Hits)],
    label: &str,
    last: &[usize],
) {
    let se = |hits: &Hits| 100.0 * mean_and_se(&hits.means(last, usize::MAX)).1;
    let mut line = format!(
        "standard errors of the means over {label} (over sequences), in points: learner ±{:.1}",
        se(&reading.alone_hits)
    );
    if views > 1 {
        let _ = write!(line, ", {views} views ±{:.1}", se(&reading.viewed_hits));
    }
    for (name, hits) in baselines {
        let _ = write!(line, ", {name} ±{:.1}", se(hits));
    }
    println!("{line}");
    let Some((_, first)) = baselines.first() else {
        return;
    };
    // For a set without views, the viewed reading is the learner alone's.
    let hits = &reading.viewed_hits;
    let learner = if views > 1 {
        format!("the learner with {views} views")
    } else {
        "the learner".to_string()
    };
    let n = first.sequences();
    let mut line = format!(
        "{learner} minus each baseline on the same {n} sequences, mean over {label}, in points: "
    );
    for (i, (name, theirs)) in baselines.iter().enumerate() {
        let (d, e) = hits.minus(theirs, last);
        let sep = if i == 0 { "" } else { ", " };
        let _ = write!(line, "{sep}{name} {:+.1} ± {:.1}", 100.0 * d, 100.0 * e);
    }
    println!("{line}");
}

/// `model` (meta-trained with `config`) on `set`: the curve of its views' averaged prediction
/// and the learner alone's, read from the same forward passes, with the hits behind them
/// ([`evaluate_with_hits`]).
pub(crate) fn learner_reading(
    model: &gpicl_core::Transformer,
    config: &gpicl_core::RunConfig,
    set: &EvalSet,
    device: &burn::prelude::Device,
) -> Result<Reading> {
    let (format, n_classes) = (config.tasks.format, config.model.n_classes);
    Ok(pollster::block_on(evaluate_with_hits(
        model, format, n_classes, set, device,
    ))?)
}

/// Evaluates `model` on its run's three evaluation sets (fixed by `config.eval`), prints the
/// accuracy at a few positions and optionally writes the curves as JSON.
fn run_sets(
    args: &EvalArgs,
    config: &gpicl_core::RunConfig,
    model: &gpicl_core::Transformer,
    device: &burn::prelude::Device,
) -> Result<()> {
    let dir = args
        .data_dir
        .clone()
        .unwrap_or_else(crate::default_data_dir);
    let data = crate::data::load_run_data(&dir, config.tasks.image_pool)?;
    let sets = gpicl_core::train::eval_sets(config, &data.train, &data.test, &data.unseen)?;
    let mut curves = Vec::new();
    for set in &sets {
        curves.push(pollster::block_on(evaluate(
            model,
            config.tasks.format,
            config.model.n_classes,
            set,
            device,
        ))?);
    }
    let t = config.tasks.seq_len;
    println!("{:>28}  accuracy at examples 1, 5, …, T; mean", "curve");
    for c in &curves {
        let mut line = format!("{:>28} ", c.name);
        for k in curve_positions(t) {
            let _ = write!(line, " {:>5.1}", 100.0 * c.accuracy[k - 1]);
        }
        let mean = c.accuracy.iter().sum::<f32>() / t as f32;
        let _ = write!(line, "  mean {:.2}%", 100.0 * mean);
        println!("{line}");
    }
    if let Some(path) = &args.json {
        crate::train_cmd::write_atomic(path, serde_json::to_string_pretty(&curves)?.as_bytes())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// `--baselines-on`: what the baselines are fit on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BaselineInputs {
    /// Each task's projected inputs, the learner's.
    Projected,
    /// The dataset's own features.
    Raw,
}

impl From<BaselineInputs> for Inputs {
    fn from(b: BaselineInputs) -> Self {
        match b {
            BaselineInputs::Projected => Inputs::Projected,
            BaselineInputs::Raw => Inputs::Raw,
        }
    }
}
