//! Loading datasets from files (the CLI does the I/O; the core parses bytes).

use std::path::Path;

use anyhow::{Context, Result};
use gpicl_core::Dataset;
use gpicl_core::manifest::FileHash;
use gpicl_core::parse::{LabelColumn, parse_csv, parse_idx_pair};

/// The datasets of a run: MNIST train (meta-training), MNIST test (unseen tasks) and
/// Fashion-MNIST test (an unseen dataset).
pub struct RunData {
    /// Meta-training data.
    pub train: Dataset,
    /// Held-out MNIST examples, for unseen tasks.
    pub test: Dataset,
    /// A dataset never trained on.
    pub unseen: Dataset,
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Loads an IDX images/labels pair, prepared as images (pooled by `pool`, z-normalised as a
/// whole: [`Dataset::prepared`]).
pub fn load_idx(name: &str, images: &Path, labels: &Path, pool: usize) -> Result<Dataset> {
    idx_dataset(name, &read(images)?, &read(labels)?, pool)
        .with_context(|| format!("in {} / {}", images.display(), labels.display()))
}

/// [`load_idx`] on bytes already read.
pub fn idx_dataset(name: &str, images: &[u8], labels: &[u8], pool: usize) -> Result<Dataset> {
    Ok(parse_idx_pair(name, images, labels)?.prepared(pool)?)
}

/// A dataset's name for curves and messages: its file's name.
pub fn file_dataset_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().to_string(),
    )
}

/// Whether `path` names a table (`.csv` or `.tsv`, maybe gzipped as `.csv.gz`, in any case),
/// the files `load_csv` reads.
pub fn is_csv(path: &Path) -> bool {
    let name = path.to_string_lossy().to_lowercase();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    name.ends_with(".csv") || name.ends_with(".tsv")
}

/// The label's column from the command line: `--label-first`, or `--label-column N` (1-based)
/// or `--label-column NAME` (the header's name for it), else the last.
pub fn label_column(first: bool, column: Option<&str>) -> Result<LabelColumn> {
    Ok(match (first, column.map(str::trim)) {
        (_, Some("")) => anyhow::bail!("--label-column needs a number or a name"),
        (_, Some(c)) => match c.parse::<usize>() {
            Ok(0) => anyhow::bail!("--label-column counts from 1"),
            Ok(n) => LabelColumn::Index(n - 1),
            Err(_) => LabelColumn::Named(c.to_string()),
        },
        (true, None) => LabelColumn::First,
        (false, None) => LabelColumn::Last,
    })
}

/// Loads a CSV file (the label in `label`), prepared as a table (each column standardised:
/// [`Dataset::prepared`]). How its cells were read, where not as written (missing values,
/// text columns: [`gpicl_core::parse::CsvTable::notes`]), goes to stderr.
pub fn load_csv(path: &Path, label: LabelColumn) -> Result<Dataset> {
    let (data, notes) = read_csv(path, label)?;
    for note in &notes {
        eprintln!("note: {}: {note}", data.name);
    }
    Ok(data)
}

/// [`load_csv`]'s dataset and notes, the notes left to the caller.
pub fn read_csv(path: &Path, label: LabelColumn) -> Result<(Dataset, Vec<String>)> {
    let name = file_dataset_name(path);
    let table =
        parse_csv(&name, &read(path)?, label).with_context(|| format!("in {}", path.display()))?;
    Ok((table.data.prepared(1)?, table.notes))
}

/// The bundles of a run, in `web/data`: MNIST train images and labels, MNIST test images and
/// labels, Fashion-MNIST test images and labels.
pub const RUN_FILES: [&str; 6] = [
    "mnist-train-images-idx3-ubyte.gz",
    "mnist-train-labels-idx1-ubyte.gz",
    "mnist-t10k-images-idx3-ubyte.gz",
    "mnist-t10k-labels-idx1-ubyte.gz",
    "fashion-mnist-t10k-images-idx3-ubyte.gz",
    "fashion-mnist-t10k-labels-idx1-ubyte.gz",
];

/// The bytes of the run's bundles in `dir` ([`RUN_FILES`], in order) and their hashes, as a
/// manifest lists them.
pub fn read_bundles(dir: &Path) -> Result<(Vec<Vec<u8>>, Vec<FileHash>)> {
    let bytes = RUN_FILES
        .iter()
        .map(|f| read(&dir.join(f)))
        .collect::<Result<Vec<_>>>()?;
    let hashes = RUN_FILES
        .iter()
        .zip(&bytes)
        .map(|(f, b)| FileHash::of(f, b))
        .collect();
    Ok((bytes, hashes))
}

/// Loads the three datasets of a run from `dir` (see `cargo xtask data`).
pub fn load_run_data(dir: &Path, pool: usize) -> Result<RunData> {
    let pair = |name: &str, i: usize| {
        load_idx(
            name,
            &dir.join(RUN_FILES[i]),
            &dir.join(RUN_FILES[i + 1]),
            pool,
        )
    };
    Ok(RunData {
        train: pair("mnist", 0)?,
        test: pair("mnist-test", 2)?,
        unseen: pair("fashion-mnist", 4)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_known_by_their_suffix() {
        for table in ["a.csv", "B.CSV", "a.csv.gz", "a.tsv", "a.TSV.GZ"] {
            assert!(is_csv(Path::new(table)), "{table}");
        }
        for other in ["a.gz", "a-images-idx3-ubyte.gz", "a.csv.zip", "csv"] {
            assert!(!is_csv(Path::new(other)), "{other}");
        }
    }
}
