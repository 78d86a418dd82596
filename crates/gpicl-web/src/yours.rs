//! A visitor's own data, learnt in context by the shipped learner: a table (CSV) or images and
//! labels (IDX, as MNIST ships), parsed in the training worker, off the page's thread. Random
//! tasks are made of it as of MNIST (a random projection to the learner's inputs, a random
//! renaming of the labels), and the learner's accuracy-vs-examples curve is measured beside
//! 1-NN, logistic regression and an MLP fit on the same contexts, with the learner minus the
//! best of them paired by sequence (whether a gap between the curves is more than their
//! noise); a sample of its rows goes back to the page for the step-through. The file never
//! leaves the browser: a share link names it by its fingerprint ([`TableRef`]). Native code:
//! tested on Flex.
//!
//! The baselines' cost is what the visitor waits for: their curves are fit on
//! [`BASELINE_SEQUENCES`] sequences at every charted position, and only the best of them over
//! the last quarter is fit again, on all [`SEQUENCES`] at every position of the last quarter,
//! for the pairing.

use burn::prelude::Device;
use gpicl_core::baselines::{Baseline, Inputs, curve_positions};
use gpicl_core::eval::{Hits, Verdict, evaluate_with_hits, last_quarter, mean_and_se};
use gpicl_core::parse::{CsvTable, LabelColumn, maybe_gunzip, parse_csv, parse_idx_pair};
use gpicl_core::share::TableRef;
use gpicl_core::{Curve, Dataset, Error, EvalSet, RunConfig, Transformer};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::rc::Rc;

use crate::data::WalkData;

use crate::chart::BaselineCurve;

/// The largest file the page reads for this.
pub const MAX_BYTES: usize = 20 * 1024 * 1024;
/// Fewest rows a table needs (a sequence draws its examples from them).
pub const MIN_ROWS: usize = 20;
/// Examples per evaluation sequence (at most the learner's own length).
pub const SEQ_LEN: usize = 50;
/// Evaluation sequences for the learner, and the first of them for the baselines.
pub const SEQUENCES: usize = 64;
/// Sequences the baselines' curves are fit on (each fits one model per sequence and position).
pub const BASELINE_SEQUENCES: usize = 16;
/// Seed of the evaluation tasks (and of their views).
pub const SEED: u64 = 1234;
/// Views of each sequence the learner's second curve averages its prediction over
/// ([`EvalSet::with_views`]; the README's "8 views").
pub const VIEWS: usize = 8;
/// Rows sent back for the step-through (evenly spaced through the file).
pub const SAMPLE_ROWS: usize = 400;

/// How a visitor's file is read.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Format {
    /// CSV text, the label in this column (1-based; the last if `None`).
    Csv {
        /// The label's column.
        label_column: Option<usize>,
    },
    /// Two IDX files, images and labels in either order (raw or gzip), the second file's bytes
    /// from `second_at` on.
    IdxPair {
        /// Where the second file starts.
        second_at: usize,
    },
}

/// Some rows of a visitor's data for the step-through, as the learner takes them and as the
/// file has them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    /// The rows prepared as for the evaluation (pooled, normalised), row-major.
    pub inputs: Vec<f32>,
    /// Values per prepared row.
    pub n_inputs: usize,
    /// The same rows as read, row-major.
    pub raw: Vec<f32>,
    /// Values per row as read.
    pub n_raw: usize,
    /// Images' side (IDX images), else rows of numbers.
    pub image_side: Option<usize>,
    /// Each row's class.
    pub labels: Vec<u32>,
    /// The classes' names in the file (empty: their numbers).
    pub class_names: Vec<String>,
    /// The features' names (a CSV's header), or empty.
    pub feature_names: Vec<String>,
}

impl Sample {
    /// Up to `n` rows, evenly spaced, of `raw` and of `prepared` (the same rows, prepared).
    fn of(raw: &Dataset, prepared: &Dataset, n: usize) -> Self {
        let n = n.min(raw.len());
        let rows: Vec<usize> = (0..n).map(|i| i * raw.len() / n).collect();
        Self {
            inputs: rows
                .iter()
                .flat_map(|&i| prepared.row(i).into_owned())
                .collect(),
            n_inputs: prepared.n_features,
            raw: rows.iter().flat_map(|&i| raw.row(i).into_owned()).collect(),
            n_raw: raw.n_features,
            image_side: raw.image_side,
            labels: rows.iter().map(|&i| raw.labels[i]).collect(),
            class_names: raw.class_names.clone(),
            feature_names: raw.feature_names.clone(),
        }
    }

    /// The rows as two datasets, prepared and as read, named `name`.
    pub fn datasets(&self, name: &str) -> Result<(Dataset, Dataset), Error> {
        let named = |features: Vec<f32>, width: usize, side: Option<usize>| {
            Dataset::new(name, features, width, self.labels.clone(), side).map(|mut d| {
                d.class_names = self.class_names.clone();
                d.feature_names = self.feature_names.clone();
                d
            })
        };
        Ok((
            named(self.inputs.clone(), self.n_inputs, None)?,
            named(self.raw.clone(), self.n_raw, self.image_side)?,
        ))
    }
}

/// The learner with views minus the best baseline, paired by sequence: on the baselines' own
/// sequences and positions, so the noise of drawing the sequences, which both share, cancels,
/// and what is left is the comparison's own ([`Hits::minus`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Paired {
    /// The baseline with the highest mean accuracy on its charted sequences and positions in
    /// the last quarter.
    pub baseline: String,
    /// The positions compared (1-based): every one in the last quarter.
    pub positions: Vec<usize>,
    /// Sequences compared: all the learner's ([`SEQUENCES`] at most).
    pub sequences: usize,
    /// The mean difference in accuracy (a fraction; positive: the learner is ahead).
    pub difference: f32,
    /// Its standard error over sequences.
    pub standard_error: f32,
}

impl Paired {
    /// `learner` minus `baseline`'s `hits`, paired by sequence over `positions`.
    fn of(baseline: String, learner: &Hits, hits: &Hits, positions: Vec<usize>) -> Self {
        let (difference, standard_error) = learner.minus(hits, &positions);
        Self {
            baseline,
            positions,
            sequences: hits.sequences().min(learner.sequences()),
            difference,
            standard_error,
        }
    }

    /// How the learner stands to the baseline: ahead or behind by more than twice the
    /// standard error, else level within the noise.
    pub fn verdict(&self) -> Verdict {
        Verdict::of(self.difference, self.standard_error)
    }
}

/// What the learner made of a table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The file's name.
    pub name: String,
    /// Rows, features and classes read.
    pub rows: usize,
    /// Feature columns.
    pub features: usize,
    /// Distinct labels.
    pub classes: usize,
    /// The learner's accuracy and loss at each position, alone.
    pub curve: Curve,
    /// The same, its probabilities averaged over [`VIEWS`] views of each sequence.
    pub ensemble: Curve,
    /// The baselines at some positions.
    pub baselines: Vec<BaselineCurve>,
    /// The learner with views minus the best baseline, paired by sequence.
    pub paired: Option<Paired>,
    /// How the file was read.
    pub format: Format,
    /// How its cells were read where not as written: missing values filled, text columns
    /// encoded or left out ([`CsvTable::notes`]).
    pub notes: Vec<String>,
    /// A table's columns, the label's too ([`CsvTable::columns`]; empty for images), for
    /// choosing another label column.
    pub columns: Vec<String>,
    /// The label's column among them (0-based).
    pub label: usize,
    /// For each of the columns, why it cannot be the label, or `None` if it can
    /// ([`why_not_label`]).
    pub not_labels: Vec<Option<String>>,
    /// The file's fingerprint ([`TableRef::fingerprint`]; of both files for IDX, images first).
    pub hash: String,
    /// Rows for the step-through.
    pub sample: Sample,
}

impl Report {
    /// The table as a share link names it.
    pub fn table_ref(&self) -> TableRef {
        TableRef {
            name: self.name.clone(),
            rows: self.rows,
            label_column: match self.format {
                Format::Csv { label_column } => label_column,
                Format::IdxPair { .. } => None,
            },
            hash: self.hash.clone(),
        }
    }
}

/// A visitor's file as read.
#[derive(Debug, Clone)]
pub struct Read {
    /// The dataset, as the file holds it (not yet prepared).
    pub data: Dataset,
    /// How a table's cells were read where not as written ([`CsvTable::notes`]).
    pub notes: Vec<String>,
    /// A table's columns ([`CsvTable::columns`]; empty for images).
    pub columns: Vec<String>,
    /// The label's column among them (0-based).
    pub label: usize,
    /// Each column's classes were it the label ([`CsvTable::label_classes`]; empty for
    /// images).
    pub label_classes: Vec<Option<usize>>,
    /// The file's fingerprint ([`TableRef::fingerprint`]).
    pub hash: String,
}

/// Reads a visitor's file.
pub fn read(name: &str, bytes: &[u8], format: Format) -> Result<Read, Error> {
    match format {
        Format::Csv { label_column } => {
            let label = match label_column {
                None => LabelColumn::Last,
                Some(n) => LabelColumn::Index(n.saturating_sub(1)),
            };
            let CsvTable {
                data,
                notes,
                columns,
                label,
                label_classes,
            } = parse_csv(name, bytes, label)?;
            Ok(Read {
                data,
                notes,
                columns,
                label,
                label_classes,
                hash: TableRef::fingerprint(bytes),
            })
        }
        Format::IdxPair { second_at } => {
            let (a, b) = bytes.split_at(second_at.min(bytes.len()));
            let (ua, ub) = (maybe_gunzip(a)?, maybe_gunzip(b)?);
            // A labels file has one dimension (the 4th byte of its header), images more.
            let ((images, labels), (raw_images, raw_labels)) = match (ua.get(3), ub.get(3)) {
                (Some(&d), Some(1)) if d != 1 => ((&ua, &ub), (a, b)),
                (Some(1), Some(&d)) if d != 1 => ((&ub, &ua), (b, a)),
                _ => {
                    return Err(Error::Data(format!(
                        "{name}: of the two IDX files, one must hold images and the other \
                         labels (one dimension)"
                    )));
                }
            };
            Ok(Read {
                data: parse_idx_pair(name, images, labels)?,
                notes: Vec::new(),
                columns: Vec::new(),
                label: 0,
                label_classes: Vec::new(),
                hash: TableRef::fingerprint(&[raw_images, raw_labels].concat()),
            })
        }
    }
}

/// Reads `bytes` (a file named `name`, in `format`) and measures the learner (`model`,
/// meta-trained with `config`) on random tasks of it, beside the baselines.
pub async fn learn(
    name: &str,
    bytes: &[u8],
    format: Format,
    config: &RunConfig,
    model: &Transformer,
    device: &Device,
) -> Result<Report, Error> {
    if bytes.len() > MAX_BYTES {
        return Err(Error::Data(format!(
            "{name} is {:.1} MiB; at most {} MiB are read",
            bytes.len() as f64 / 1048576.0,
            MAX_BYTES / 1048576
        )));
    }
    let Read {
        data: raw,
        notes,
        columns,
        label,
        label_classes,
        hash,
    } = read(name, bytes, format)?;
    let data = raw.clone().prepared(config.tasks.image_pool)?;
    let n_classes = config.model.n_classes;
    data.check_classes(n_classes)?;
    if data.len() < MIN_ROWS {
        return Err(Error::Data(format!(
            "{name}: {} rows; at least {MIN_ROWS} are needed",
            data.len()
        )));
    }
    let seq_len = SEQ_LEN.min(config.tasks.seq_len);
    let set = EvalSet::unseen(
        format!("{name}: the shipped learner"),
        &data,
        SEQUENCES,
        seq_len,
        config.model.d_in,
        n_classes,
        SEED,
    )?
    // The baselines read the set's own sequences; the views are the learner's.
    .with_views(VIEWS, SEED);
    let reading = evaluate_with_hits(model, config.tasks.format, n_classes, &set, device).await?;
    let (mut ensemble, curve) = (reading.viewed, reading.alone);
    ensemble.name = format!("{}, {VIEWS} views", curve.name);
    let positions = curve_positions(seq_len);
    let standard = Baseline::standard();
    let fitted: Vec<(String, Hits)> = standard
        .iter()
        .map(|b| {
            let hits = b.hits_on(&set, &positions, BASELINE_SEQUENCES, Inputs::Projected);
            (b.name(), hits)
        })
        .collect();
    let baselines = fitted
        .iter()
        .map(|(name, hits)| (format!("{name}, same contexts"), hits.curve()))
        .collect();
    // The best baseline over the last quarter, fit again on all the sequences at every
    // position there.
    let paired = best_over_last_quarter(&fitted, seq_len).map(|i| {
        let quarter = last_quarter(seq_len);
        let hits = standard[i].hits_on(&set, &quarter, SEQUENCES, Inputs::Projected);
        Paired::of(fitted[i].0.clone(), &reading.viewed_hits, &hits, quarter)
    });
    Ok(Report {
        name: name.into(),
        rows: data.len(),
        features: raw.n_features,
        classes: data.n_classes,
        curve,
        ensemble,
        baselines,
        paired,
        format,
        notes,
        columns,
        label,
        not_labels: label_classes
            .iter()
            .map(|&classes| why_not_label(classes, n_classes))
            .collect(),
        hash,
        sample: Sample::of(&raw, &data, SAMPLE_ROWS),
    })
}

/// Why a column of `classes` classes were it the label ([`CsvTable::label_classes`]) cannot be
/// the label of a learner of `outputs` classes, or `None` if it can.
pub fn why_not_label(classes: Option<usize>, outputs: usize) -> Option<String> {
    match classes {
        None => Some("not classes".into()),
        Some(0) => Some("no values".into()),
        Some(1) => Some("one value".into()),
        Some(n) if n > outputs => Some(format!("{n} classes; the learner has {outputs}")),
        Some(_) => None,
    }
}

/// Which of `baselines` (each one's name and hits) has the highest mean accuracy at its
/// positions in the last quarter of `seq_len`, the first of them on a tie (`None` without
/// baselines).
fn best_over_last_quarter(baselines: &[(String, Hits)], seq_len: usize) -> Option<usize> {
    let (_, first) = baselines.first()?;
    let quarter = last_quarter(seq_len);
    let positions: Vec<usize> = first
        .positions
        .iter()
        .copied()
        .filter(|k| quarter.contains(k))
        .collect();
    let mean = |hits: &Hits| mean_and_se(&hits.means(&positions, usize::MAX)).0;
    let (best, _) = baselines
        .iter()
        .enumerate()
        .rev()
        .max_by(|a, b| mean(&a.1.1).total_cmp(&mean(&b.1.1)))?;
    Some(best)
}

/// Files the page read, by name, with their bytes: what a `Learn` command is made of.
pub type Files = Rc<Vec<(String, Vec<u8>)>>;

/// Files sent to the worker to be learnt, under the name the page shows for them.
#[derive(Debug, Clone, PartialEq)]
struct Sent {
    /// The name the page shows ("a.csv", "images + labels").
    name: String,
    /// The files, kept to learn them again with another label column.
    files: Files,
}

/// What the page knows of "your data": the last table learnt and its step-through data, the
/// files being learnt, why the last one was refused, and the table a share link asked for.
///
/// The worker answers the files sent in the order they were sent, one answer each (a report
/// or a refusal), so the files behind a report are the oldest of those not yet answered: the
/// page keeps them with the table shown ([`YourData::shown`]), and relabelling learns exactly
/// those again, whatever was dropped since.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct YourData {
    /// What the learner made of the last table.
    pub report: Option<Rc<Report>>,
    /// That table's rows for the step-through.
    pub walk: Option<Rc<WalkData>>,
    /// The files sent and not yet answered, the oldest (being learnt now) first.
    sent: VecDeque<Sent>,
    /// The files of the table shown.
    shown: Option<Files>,
    /// Why the last file was refused (the page keeps what it had).
    pub error: Option<String>,
    /// The table the page's link names (its owner kept the file).
    pub wanted: Option<TableRef>,
}

impl YourData {
    /// Nothing learnt yet; the page's link names `wanted` (or no table).
    pub fn new(wanted: Option<TableRef>) -> Self {
        Self {
            wanted,
            ..Self::default()
        }
    }

    /// `files` went to the worker as `name`.
    pub fn learning(&mut self, name: String, files: Files) {
        self.sent.push_back(Sent { name, files });
        self.error = None;
    }

    /// The file being learnt now (the oldest not yet answered).
    pub fn busy(&self) -> Option<&str> {
        self.sent.front().map(|s| s.name.as_str())
    }

    /// The files of the table shown, to learn again with another label column.
    pub fn shown(&self) -> Option<Files> {
        self.shown.clone()
    }

    /// Files could not be read or sent (nothing went to the worker); nothing else changes.
    pub fn refused(&mut self, message: String) {
        self.error = Some(message);
    }

    /// The worker refused the oldest files sent; the page keeps what it had.
    pub fn learn_refused(&mut self, message: String) {
        self.sent.pop_front();
        self.error = Some(message);
    }

    /// The worker's report on the oldest files sent.
    pub fn learnt(&mut self, report: Report) {
        let files = self.sent.pop_front().map(|s| s.files);
        match report.sample.datasets(&report.name) {
            Ok((inputs, shown)) => {
                self.walk = Some(Rc::new(WalkData {
                    about: report.name.clone(),
                    inputs,
                    shown,
                    named: true,
                }));
                self.report = Some(Rc::new(report));
                self.shown = files;
                self.error = None;
            }
            Err(e) => self.error = Some(format!("{} was not loaded: {e}", report.name)),
        }
    }

    /// The worker stopped (lost device, crash): what it was learning is lost (say so); the
    /// rest stays.
    pub fn worker_lost(&mut self) {
        if let Some(name) = self.busy() {
            self.error = Some(format!(
                "The worker restarted while learning {name}; choose the file again."
            ));
        }
        self.sent.clear();
    }

    /// Whether the last table is the one the link names: `None` without both.
    pub fn is_wanted(&self) -> Option<bool> {
        let (report, wanted) = (self.report.as_ref()?, self.wanted.as_ref()?);
        Some(report.hash == wanted.hash)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hits(positions: &[usize], values: &[f32]) -> Hits {
        Hits {
            positions: positions.to_vec(),
            values: values.to_vec(),
        }
    }

    #[test]
    fn a_table_is_read_with_its_notes_and_fingerprint() {
        let csv = b"size;colour;label\n1,5;red;x\n2;;y\nNA;blue;x\n";
        let column = |label_column| Format::Csv { label_column };
        let r = read("t.csv", csv, column(None)).unwrap();
        assert_eq!(r.data.feature_names, ["size", "colour=blue", "colour=red"]);
        assert_eq!(r.data.row(2).to_vec(), [1.75, 1.0, 0.0]);
        assert_eq!(r.notes.len(), 3, "{:?}", r.notes);
        assert!(r.notes[0].contains("semicolons"), "{:?}", r.notes);
        assert_eq!(r.hash, TableRef::fingerprint(csv));
        assert_eq!(
            (r.columns.clone(), r.label),
            (vec!["size".to_string(), "colour".into(), "label".into()], 2)
        );
        // The label in the first column (`y`, class numbers); `x`, text, two features.
        let r = read("t.csv", b"y,x\n0,a\n1,b\n", column(Some(1))).unwrap();
        assert_eq!((r.data.labels.clone(), r.data.n_features), (vec![0, 1], 2));
        assert_eq!(r.label, 0);
    }

    #[test]
    fn a_column_is_offered_as_the_label_if_the_learner_can_learn_its_classes() {
        assert_eq!(why_not_label(Some(2), 10), None);
        assert_eq!(why_not_label(Some(10), 10), None);
        assert_eq!(
            why_not_label(Some(12), 10).as_deref(),
            Some("12 classes; the learner has 10")
        );
        assert_eq!(why_not_label(Some(1), 10).as_deref(), Some("one value"));
        assert_eq!(why_not_label(Some(0), 10).as_deref(), Some("no values"));
        assert_eq!(why_not_label(None, 10).as_deref(), Some("not classes"));
        // What the reader says of each column reaches the report's list.
        let r = read(
            "t.csv",
            b"w,zone,animal\n0.5,n,ant\n1.5,s,bee\n",
            Format::Csv { label_column: None },
        )
        .unwrap();
        assert_eq!(r.label_classes, [None, Some(2), Some(2)]);
    }

    #[test]
    fn the_learner_is_paired_with_the_best_baseline_over_the_last_quarter() {
        // Sequences of 8: the last quarter is 7–8; the baselines were scored at 1, 5 and 8.
        let learner = hits(
            &[1, 2, 3, 4, 5, 6, 7, 8],
            &[
                0., 0., 0., 0., 0., 0., 1., 1., //
                0., 0., 0., 0., 0., 0., 1., 0., //
                0., 0., 0., 0., 0., 0., 0., 1., // a third sequence the baselines lack
            ],
        );
        let baselines = [
            // Best at 1 and 5, worst at 8: not the best over the last quarter.
            ("a".to_string(), hits(&[1, 5, 8], &[1., 1., 0., 1., 1., 0.])),
            ("b".to_string(), hits(&[1, 5, 8], &[0., 0., 1., 0., 0., 0.])),
        ];
        assert_eq!(best_over_last_quarter(&baselines, 8), Some(1));
        // On a tie the first is taken; without baselines there is nothing to pair.
        let tie = [baselines[1].clone(), ("c".into(), baselines[1].1.clone())];
        assert_eq!(best_over_last_quarter(&tie, 8), Some(0));
        assert!(best_over_last_quarter(&[], 8).is_none());
        // b fit again on the three sequences at every position of the last quarter (7 and 8).
        // Per sequence, the mean over 7–8: learner 1, 0.5, 0.5; b 1, 0.5, 0.5: no difference.
        let quarter = last_quarter(8);
        let refit = hits(&quarter, &[1., 1., 1., 0., 0., 1.]);
        let p = Paired::of("b".into(), &learner, &refit, quarter.clone());
        assert_eq!(p.positions, [7, 8]);
        assert_eq!((p.baseline.as_str(), p.sequences), ("b", 3));
        assert_eq!((p.difference, p.standard_error), (0.0, 0.0));
        assert_eq!(p.verdict(), Verdict::Level);
        // Wrong at 8 where the learner is right on the third: the learner is ahead by 1/6, its
        // standard error that of (0, 0, 0.5) over 3 sequences.
        let p = Paired::of(
            "b".into(),
            &learner,
            &hits(&quarter, &[1., 1., 1., 0., 0., 0.]),
            quarter,
        );
        let se = (1.0f32 / 12.0 / 3.0).sqrt();
        assert!((p.difference - 1.0 / 6.0).abs() < 1e-6, "{}", p.difference);
        assert!(
            (p.standard_error - se).abs() < 1e-6,
            "{} vs {se}",
            p.standard_error
        );
    }
}
