//! CSV tables as people write them: a header or none; commas, semicolons or tabs; quoted cells;
//! missing values; text columns. How each column was read, where that is not as written, is
//! said in [`CsvTable::notes`], for the page and the CLI to show.
//!
//! The text is read twice, a record at a time, so that besides it no more than the features'
//! floats are ever held (a WebAssembly memory never shrinks): first to learn each column's kind (numbers,
//! text, or empty) and whether the first row is a header, then to write the features.

use std::borrow::Cow;
use std::collections::BTreeSet;

use super::maybe_gunzip;
use crate::{Dataset, Error};

/// The most distinct values a text column may hold to be read as categories (one feature
/// each, one-hot); a text column with more (names, identifiers, free text) is left out.
pub const MAX_CATEGORIES: usize = 32;

/// The most feature values a table may make (256 MiB of f32): text columns, one feature per
/// category, can make many more values than the file has cells.
pub const MAX_VALUES: usize = 1 << 26;

/// Cells that mean "no value", compared ignoring case (besides the empty cell).
const MISSING: [&str; 5] = ["na", "n/a", "nan", "null", "?"];

/// Which CSV column holds the label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelColumn {
    /// The first column.
    First,
    /// The last column.
    Last,
    /// The column at this index (0-based).
    Index(usize),
    /// The column of this name in the header (the first row is then the header).
    Named(String),
}

impl LabelColumn {
    /// The label's column in the first row's `cells`, if there is one.
    fn index(&self, cells: &[impl AsRef<str>]) -> Option<usize> {
        let width = cells.len();
        match self {
            LabelColumn::First => (width > 0).then_some(0),
            LabelColumn::Last => width.checked_sub(1),
            LabelColumn::Index(i) => (*i < width).then_some(*i),
            LabelColumn::Named(name) => cells.iter().position(|c| c.as_ref().trim() == name),
        }
    }
}

/// A CSV table as read: the dataset, and how its file was read where that was not as written.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvTable {
    /// The examples: one row per labelled record, features as [`parse_csv`] made them.
    pub data: Dataset,
    /// One sentence for each thing done to the file's cells: the separator when not a comma,
    /// missing values filled, text columns encoded or left out, rows without a label left out.
    /// Empty for a table of numbers read as written.
    pub notes: Vec<String>,
    /// Every column's name in the file's order, the label's too: its header cell, else (no
    /// header, or an empty cell) `column N`. For choosing another label column.
    pub columns: Vec<String>,
    /// The label's column (0-based, into [`CsvTable::columns`]).
    pub label: usize,
    /// Each column's classes were it the label (read by the labels' rule, [`parse_csv`]):
    /// `None` where it cannot be one (numbers that are not whole and ≥ 0, or more than
    /// [`MAX_CATEGORIES`] distinct values). For offering only columns that can be labels.
    pub label_classes: Vec<Option<usize>>,
}

/// What one cell holds.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Cell {
    /// No value: empty, or one of [`MISSING`].
    Missing,
    /// A finite number.
    Number(f64),
    /// Anything else.
    Text,
}

impl Cell {
    /// Reads `text` (trimmed); `decimal_comma`: "1,5" is 1.5 (a semicolon-separated file).
    fn of(text: &str, decimal_comma: bool) -> Self {
        if text.is_empty() || MISSING.iter().any(|m| text.eq_ignore_ascii_case(m)) {
            return Cell::Missing;
        }
        let number = if decimal_comma && text.matches(',').count() == 1 && !text.contains('.') {
            text.replacen(',', ".", 1).parse::<f64>()
        } else {
            text.parse::<f64>()
        };
        match number {
            Ok(v) if v.is_finite() => Cell::Number(v),
            Ok(v) if v.is_nan() => Cell::Missing,
            _ => Cell::Text,
        }
    }
}

/// The cells of one record and the line (1-based) it starts on.
type Record<'a> = (usize, Vec<Cow<'a, str>>);

/// Splits CSV text into records, blank lines skipped: cells separated by `separator`, each
/// trimmed; a cell may be quoted (`"a, b"`, with `""` for a quote), and a quoted cell may hold
/// separators and line breaks.
struct Records<'a> {
    text: &'a str,
    at: usize,
    line: usize,
    separator: u8,
}

impl<'a> Records<'a> {
    fn new(text: &'a str, separator: u8) -> Self {
        Self {
            text,
            at: 0,
            line: 1,
            separator,
        }
    }

    /// Bytes from `self.at` to the next separator or line break (or the end).
    fn to_cell_end(&self) -> usize {
        let separator = char::from(self.separator);
        self.text[self.at..]
            .find([separator, '\n'])
            .unwrap_or(self.text.len() - self.at)
    }

    /// One cell from `self.at`: its text, and whether the record goes on after it.
    fn cell(&mut self, start_line: usize) -> Result<(Cow<'a, str>, bool), String> {
        let bytes = self.text.as_bytes();
        while self.at < bytes.len()
            && matches!(bytes[self.at], b' ' | b'\t')
            && bytes[self.at] != self.separator
        {
            self.at += 1;
        }
        let cell = if bytes.get(self.at) == Some(&b'"') {
            self.at += 1;
            let mut value = String::new();
            loop {
                let Some(offset) = self.text[self.at..].find('"') else {
                    return Err(format!("line {start_line}: a quote is never closed"));
                };
                let part = &self.text[self.at..self.at + offset];
                self.line += part.matches('\n').count();
                value.push_str(part);
                self.at += offset + 1;
                if bytes.get(self.at) == Some(&b'"') {
                    value.push('"');
                    self.at += 1;
                } else {
                    break;
                }
            }
            let rest = self.to_cell_end();
            if !self.text[self.at..self.at + rest].trim().is_empty() {
                return Err(format!("line {}: text after a closing quote", self.line));
            }
            self.at += rest;
            Cow::Owned(value.trim().to_string())
        } else {
            let len = self.to_cell_end();
            let cell = &self.text[self.at..self.at + len];
            self.at += len;
            Cow::Borrowed(cell.trim())
        };
        match bytes.get(self.at) {
            Some(&b) if b == self.separator => {
                self.at += 1;
                Ok((cell, true))
            }
            Some(b'\n') => {
                self.at += 1;
                self.line += 1;
                Ok((cell, false))
            }
            _ => Ok((cell, false)),
        }
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, String>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.at >= self.text.len() {
                return None;
            }
            let start_line = self.line;
            let mut cells = Vec::new();
            loop {
                match self.cell(start_line) {
                    Ok((cell, more)) => {
                        cells.push(cell);
                        if !more {
                            break;
                        }
                    }
                    Err(e) => {
                        // Stop after an error: what follows cannot be split reliably.
                        self.at = self.text.len();
                        return Some(Err(e));
                    }
                }
            }
            if !(cells.len() == 1 && cells[0].is_empty()) {
                return Some(Ok((start_line, cells)));
            }
        }
    }
}

/// The separator of a CSV text: a comma, unless its first non-blank line holds more semicolons
/// or tabs (outside quotes) than commas.
fn separator(text: &str) -> u8 {
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for b in first.bytes() {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let separators = [b',', b';', b'\t'];
    let best = (0..3).max_by_key(|&i| (counts[i], 3 - i)).expect("three");
    separators[best]
}

/// What the first reading learns of one column.
#[derive(Debug, Clone, Default)]
struct Column {
    /// Cells holding numbers, and their sum.
    numbers: usize,
    sum: f64,
    /// Missing cells.
    missing: usize,
    /// Cells holding text that is not a number.
    texts: usize,
    /// Distinct values (as written), at most [`MAX_CATEGORIES`] + 1 of them.
    values: BTreeSet<String>,
    /// The first text cell that is not a number, and its line.
    example: Option<(String, usize)>,
    /// Whether the first row's cell is written again below it.
    first_again: bool,
}

impl Column {
    /// Counts the cell `text` (read as `cell`) on `line`.
    fn add(&mut self, text: &str, cell: Cell, line: usize) {
        match cell {
            Cell::Missing => {
                self.missing += 1;
                return;
            }
            Cell::Number(v) => {
                self.numbers += 1;
                self.sum += v;
            }
            Cell::Text => {
                self.texts += 1;
                if self.example.is_none() {
                    self.example = Some((text.to_string(), line));
                }
            }
        }
        if self.values.len() <= MAX_CATEGORIES && !self.values.contains(text) {
            self.values.insert(text.to_string());
        }
    }

    /// The classes this column would make as the label (the labels' rule on its distinct
    /// values), or `None` if it cannot be one.
    fn classes_as_label(&self) -> Option<usize> {
        if self.values.len() > MAX_CATEGORIES {
            return None;
        }
        let distinct: Vec<(usize, Cow<str>)> = self
            .values
            .iter()
            .map(|t| (0, Cow::Borrowed(t.as_str())))
            .collect();
        classes(&distinct).ok().map(|(_, names)| names.len())
    }
}

/// How a feature column becomes features.
#[derive(Debug, Clone, PartialEq)]
enum Encoding {
    /// Its numbers; a missing one is the column's mean.
    Numbers { mean: f32 },
    /// One feature per category (in this order), 1 for the cell's, 0 for the others; a missing
    /// cell is 0 in all.
    Categories(Vec<String>),
    /// Not read: no values, or too many distinct texts.
    LeftOut,
}

/// Parses CSV text (raw or gzip) into a dataset: one row per record, one column (`label`)
/// holding the class, the others features.
///
/// - **Separator**: a comma, or a semicolon or tab when the first line holds more of them (then
///   with semicolons, "1,5" reads 1.5). Cells may be quoted; a quoted cell may hold separators,
///   line breaks and `""` for a quote.
/// - **Header**: the first row is a header if one of its cells is text above a column of
///   numbers, or if all its cells are text none of which is written again below it.
/// - **Missing values**: an empty cell or `NA`, `N/A`, `NaN`, `null`, `?` (any case). In a
///   column of numbers it is the column's mean; in a text column it is no category.
/// - **Text columns** (any cell not a number or missing) are categories: one feature per
///   distinct value (sorted; named `column=value`), one-hot; but in a column of numbers with
///   a few text cells (at most one in eleven: "unknown", "-"), those are missing values. A
///   text column of more than [`MAX_CATEGORIES`] distinct values (names, identifiers) is left
///   out, as is a column with no values.
/// - **Labels**: whole non-negative numbers or, if any is not, names; the classes are the
///   distinct labels, numbered `0..n_classes` in sorted order (numerically for numbers,
///   alphabetically for names), and the dataset keeps each as written
///   ([`Dataset::class_names`]). A row without a label is left out.
/// - **Size**: at most [`MAX_VALUES`] feature values, one-hot columns counted.
///
/// Each of these that changed something is one of the table's [`CsvTable::notes`]. Errors
/// name the line (1-based, counting blank lines).
pub fn parse_csv(name: &str, bytes: &[u8], label: LabelColumn) -> Result<CsvTable, Error> {
    let bytes = maybe_gunzip(bytes)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| Error::Parse(format!("CSV {name}: not UTF-8 text")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let parse = |what: String| Error::Parse(format!("CSV {name}, {what}"));
    let separator = separator(text);
    let decimal_comma = separator == b';';
    let mut notes = Vec::new();
    match separator {
        b';' => notes.push("cells are separated by semicolons (\"1,5\" reads 1.5)".to_string()),
        b'\t' => notes.push("cells are separated by tabs".to_string()),
        _ => {}
    }

    // First reading: the first row, the width, each column's kind.
    let mut records = Records::new(text, separator);
    let (first_line, first) = match records.next() {
        Some(record) => record.map_err(parse)?,
        None => return Err(Error::Parse(format!("CSV {name}: no data rows"))),
    };
    let width = first.len();
    let y = label.index(&first).ok_or_else(|| match &label {
        LabelColumn::Named(name) => parse(format!(
            "line {first_line}: no column named \"{name}\" (the first row's cells are the \
             header's names)"
        )),
        _ => parse(format!(
            "line {first_line}: {width} columns, no label column {label:?}"
        )),
    })?;
    if width < 2 {
        return Err(parse(format!(
            "line {first_line}: needs a feature and a label"
        )));
    }
    let first_cells: Vec<Cell> = first.iter().map(|t| Cell::of(t, decimal_comma)).collect();
    let mut columns = vec![Column::default(); width];
    let mut rows_below = 0usize;
    for record in records {
        let (line, cells) = record.map_err(parse)?;
        if cells.len() != width {
            return Err(parse(format!(
                "line {line}: {} columns, expected {width}",
                cells.len()
            )));
        }
        rows_below += 1;
        for (c, (text, column)) in cells.iter().zip(&mut columns).enumerate() {
            column.add(text, Cell::of(text, decimal_comma), line);
            column.first_again |= *text == first[c];
        }
    }
    let text_above_numbers = (0..width).any(|c| {
        c != y && first_cells[c] == Cell::Text && columns[c].texts == 0 && columns[c].numbers > 0
    });
    let all_new_text = first_cells.iter().all(|c| !matches!(c, Cell::Number(_)))
        && first_cells.contains(&Cell::Text)
        && first_cells
            .iter()
            .zip(&columns)
            .all(|(&cell, column)| cell != Cell::Text || !column.first_again);
    // A label named by its column's name says the first row is the header.
    let by_name = matches!(label, LabelColumn::Named(_));
    let header: Option<Vec<String>> = (text_above_numbers || all_new_text || by_name)
        .then(|| first.iter().map(|t| t.to_string()).collect());
    if header.is_none() {
        for (c, column) in columns.iter_mut().enumerate() {
            column.add(&first[c], first_cells[c], first_line);
        }
    }
    if header.is_some() && rows_below == 0 {
        return Err(Error::Parse(format!("CSV {name}: no data rows")));
    }

    // How each feature column is read.
    let column_name = |c: usize| match &header {
        Some(h) if !h[c].is_empty() => format!("column {} ({})", c + 1, h[c]),
        _ => format!("column {}", c + 1),
    };
    let count = |n: usize, one: &str, many: &str| match n {
        1 => format!("1 {one}"),
        n => format!("{n} {many}"),
    };
    let mut encodings = Vec::with_capacity(width);
    // Notes on columns, by column; columns of numbers with missing values (each one's
    // column, count and mean), said with the others when few, in one sentence when many.
    let mut said: Vec<(usize, String)> = Vec::new();
    let mut filled: Vec<(usize, usize, f32)> = Vec::new();
    for (c, column) in columns.iter().enumerate() {
        if c == y {
            encodings.push(Encoding::LeftOut);
            continue;
        }
        let mean = (column.sum / column.numbers.max(1) as f64) as f32;
        let encoding = if column.texts == 0 && column.numbers > 0 {
            if column.missing > 0 {
                filled.push((c, column.missing, mean));
            }
            Encoding::Numbers { mean }
        } else if column.texts > 0 && column.texts * 10 <= column.numbers {
            let (example, line) = column.example.clone().expect("a text cell");
            let cells = match column.texts {
                1 => "1 cell that is not".to_string(),
                n => format!("{n} cells that are not"),
            };
            said.push((
                c,
                format!(
                    "{}: numbers, and {cells} (as {example:?} on line {line}), read as missing",
                    column_name(c)
                ),
            ));
            filled.push((c, column.missing + column.texts, mean));
            Encoding::Numbers { mean }
        } else if column.texts > 0 && column.values.len() <= MAX_CATEGORIES {
            let values: Vec<String> = column.values.iter().cloned().collect();
            let missing = match column.missing {
                0 => String::new(),
                n => format!(
                    "; {} in no category",
                    count(n, "missing value", "missing values")
                ),
            };
            said.push((
                c,
                format!(
                    "{}: text, read as {} (one feature each){missing}",
                    column_name(c),
                    count(values.len(), "category", "categories")
                ),
            ));
            Encoding::Categories(values)
        } else if column.texts > 0 {
            said.push((
                c,
                format!(
                    "{}: text of more than {MAX_CATEGORIES} distinct values (names or \
                 identifiers?), left out",
                    column_name(c)
                ),
            ));
            Encoding::LeftOut
        } else {
            said.push((c, format!("{}: no values, left out", column_name(c))));
            Encoding::LeftOut
        };
        encodings.push(encoding);
    }
    // A few such columns one by one, many in one sentence.
    if filled.len() <= 3 {
        said.extend(filled.iter().map(|&(c, missing, mean)| {
            let missing = count(missing, "missing value", "missing values");
            (
                c,
                format!(
                    "{}: {missing} filled with the column's mean ({mean:.4})",
                    column_name(c)
                ),
            )
        }));
    }
    said.sort_by_key(|(c, _)| *c);
    notes.extend(said.into_iter().map(|(_, note)| note));
    if filled.len() > 3 {
        let total: usize = filled.iter().map(|f| f.1).sum();
        let number = |f: &(usize, usize, f32)| (f.0 + 1).to_string();
        let which: Vec<String> = if filled.len() > 6 {
            let last = number(&filled[filled.len() - 1]);
            filled
                .iter()
                .take(5)
                .map(number)
                .chain(["…".into(), last])
                .collect()
        } else {
            filled.iter().map(number).collect()
        };
        notes.push(format!(
            "{total} missing values in {} columns of numbers (columns {}), each filled with its \
             column's mean",
            filled.len(),
            which.join(", ")
        ));
    }
    let n_features: usize = encodings
        .iter()
        .map(|e| match e {
            Encoding::Numbers { .. } => 1,
            Encoding::Categories(values) => values.len(),
            Encoding::LeftOut => 0,
        })
        .sum();
    if n_features == 0 {
        return Err(Error::Parse(format!(
            "CSV {name}: no feature column holds numbers or a few categories"
        )));
    }
    let rows = rows_below + usize::from(header.is_none());
    check_size(rows, n_features).map_err(|e| Error::Parse(format!("CSV {name}: {e}")))?;

    // Second reading: the features and labels.
    let mut features = Vec::new();
    let mut raw_labels: Vec<(usize, Cow<str>)> = Vec::new();
    let mut unlabelled = Vec::new();
    let records = Records::new(text, separator).skip(usize::from(header.is_some()));
    for record in records {
        let (line, mut cells) = record.map_err(parse)?;
        if Cell::of(&cells[y], false) == Cell::Missing {
            unlabelled.push(line);
            continue;
        }
        for (text, encoding) in cells.iter().zip(&encodings) {
            match encoding {
                Encoding::Numbers { mean } => features.push(match Cell::of(text, decimal_comma) {
                    Cell::Number(v) => v as f32,
                    _ => *mean,
                }),
                Encoding::Categories(values) => {
                    // A missing value is in no category (never among `values`).
                    let at = values.binary_search_by(|v| v.as_str().cmp(text)).ok();
                    features.extend((0..values.len()).map(|k| f32::from(at == Some(k))));
                }
                Encoding::LeftOut => {}
            }
        }
        raw_labels.push((line, cells.swap_remove(y)));
    }
    if !unlabelled.is_empty() {
        let lines: Vec<String> = unlabelled.iter().take(5).map(usize::to_string).collect();
        let more = if unlabelled.len() > 5 { ", …" } else { "" };
        notes.push(format!(
            "{} without a label left out (line{} {}{more})",
            count(unlabelled.len(), "row", "rows"),
            if unlabelled.len() == 1 { "" } else { "s" },
            lines.join(", ")
        ));
    }
    if raw_labels.is_empty() {
        return Err(Error::Parse(format!("CSV {name}: no rows with a label")));
    }

    let label_classes: Vec<Option<usize>> = columns.iter().map(Column::classes_as_label).collect();
    let (labels, class_names) = classes(&raw_labels).map_err(|e| {
        // Name the columns that could be the label instead.
        let could: Vec<String> = (0..width)
            .filter(|&c| c != y && label_classes[c].is_some_and(|n| n >= 2))
            .map(column_name)
            .collect();
        if could.is_empty() {
            parse(e)
        } else {
            parse(format!(
                "{e}; columns that could be the label: {}",
                could.join(", ")
            ))
        }
    })?;
    let mut data = Dataset::new(name, features, n_features, labels, None)?;
    data.class_names = class_names;
    let any_categories = encodings
        .iter()
        .any(|e| matches!(e, Encoding::Categories(_)));
    let named = |c: usize| match &header {
        Some(h) if !h[c].is_empty() => h[c].clone(),
        _ => format!("column {}", c + 1),
    };
    if header.is_some() || any_categories {
        data.feature_names = encodings
            .iter()
            .enumerate()
            .flat_map(|(c, e)| match e {
                Encoding::Numbers { .. } => vec![named(c)],
                Encoding::Categories(values) => {
                    values.iter().map(|v| format!("{}={v}", named(c))).collect()
                }
                Encoding::LeftOut => Vec::new(),
            })
            .collect();
    }
    Ok(CsvTable {
        data,
        notes,
        columns: (0..width).map(named).collect(),
        label: y,
        label_classes,
    })
}

/// Refuses `rows` of `n_features` that would make more than [`MAX_VALUES`] values.
fn check_size(rows: usize, n_features: usize) -> Result<(), String> {
    match rows.checked_mul(n_features) {
        Some(values) if values <= MAX_VALUES => Ok(()),
        _ => Err(format!(
            "{rows} rows of {n_features} features (a text column makes one per category) are \
             more than {MAX_VALUES} values, the most that are read"
        )),
    }
}

/// Each label's class and the classes' names: whole non-negative numbers in numeric order or,
/// if any label is not one, names in alphabetical order.
fn classes(raw: &[(usize, Cow<str>)]) -> Result<(Vec<u32>, Vec<String>), String> {
    let numbers: Option<Vec<f64>> = raw
        .iter()
        .map(|(_, t)| t.parse::<f64>().ok().filter(|v| v.is_finite()))
        .collect();
    match numbers {
        Some(numbers) => {
            for ((line, text), v) in raw.iter().zip(&numbers) {
                if *v < 0.0 || v.fract() != 0.0 || *v > u32::MAX as f64 {
                    return Err(format!(
                        "line {line}: label {text} is not a class (a whole number ≥ 0, or a name)"
                    ));
                }
            }
            let mut classes: Vec<u64> = numbers.iter().map(|&v| v as u64).collect();
            classes.sort_unstable();
            classes.dedup();
            let labels = numbers
                .iter()
                .map(|&v| classes.binary_search(&(v as u64)).expect("a class") as u32)
                .collect();
            Ok((labels, classes.iter().map(u64::to_string).collect()))
        }
        None => {
            let mut classes: Vec<&str> = raw.iter().map(|(_, t)| t.as_ref()).collect();
            classes.sort_unstable();
            classes.dedup();
            let labels = raw
                .iter()
                .map(|(_, t)| classes.binary_search(&t.as_ref()).expect("a class") as u32)
                .collect();
            Ok((labels, classes.iter().map(|c| c.to_string()).collect()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The dataset of `text`, label last.
    fn read(text: &str) -> CsvTable {
        parse_csv("c", text.as_bytes(), LabelColumn::Last).unwrap()
    }

    /// The error `text` gives, label last.
    fn err(text: &str) -> String {
        parse_csv("c", text.as_bytes(), LabelColumn::Last)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn parses_csv_with_header_and_remaps_labels() {
        let t = read("a,b,label\n0.5,1,7\n-1,2e1,3\n\n4,5,7\n");
        let d = &t.data;
        assert_eq!(d.n_features, 2);
        assert_eq!(d.labels, vec![1, 0, 1]);
        assert_eq!(d.n_classes, 2);
        assert_eq!(*d.row(1), [-1.0, 20.0]);
        assert_eq!(d.class_names, ["3", "7"]);
        assert_eq!(d.feature_names, ["a", "b"]);
        assert!(t.notes.is_empty(), "{:?}", t.notes);
        // pandas' unnamed index column: an empty header cell.
        let d = read(",a,label\n0,1,x\n1,2,y\n").data;
        assert_eq!(d.feature_names, ["column 1", "a"]);
        let d = parse_csv("c", b"2,0.1\n0,0.2\n", LabelColumn::First).unwrap();
        assert_eq!(d.data.labels, vec![1, 0]);
        assert!(d.data.feature_names.is_empty());
    }

    #[test]
    fn csv_labels_may_be_names_and_any_column() {
        let d = read("a,b,label\n1,2,cat\n3,4,dog\n5,6,cat\n").data;
        assert_eq!((d.n_features, d.n_classes), (2, 2));
        assert_eq!(d.labels, vec![0, 1, 0]);
        assert_eq!(*d.row(1), [3.0, 4.0]);
        assert_eq!(
            (d.class_name(1), d.class_name(5)),
            ("dog".into(), "5".into())
        );
        let t = parse_csv("c", b"1,x,2\n3,y,4\n", LabelColumn::Index(1)).unwrap();
        assert_eq!(t.label, 1);
        let d = t.data;
        assert_eq!(
            (d.labels.clone(), d.row(1).to_vec()),
            (vec![0, 1], vec![3.0, 4.0])
        );
        assert_eq!(
            (d.class_names, d.feature_names.len()),
            (vec!["x".into(), "y".into()], 0)
        );
        // Mixed labels are all names.
        let d = read("1,2,x\n1,2,3\n1,2,x\n").data;
        assert_eq!(d.labels, vec![1, 0, 1]);
        // A label named by the header: its column wherever it is, and the first row the header
        // even where it would not be taken for one (text names written again below).
        let named = |text: &str, name: &str| {
            parse_csv("n", text.as_bytes(), LabelColumn::Named(name.into()))
        };
        let t = named("a,species,b\n1,cat,2\n3,dog,4\n", "species").unwrap();
        assert_eq!(
            (t.label, t.data.feature_names.clone()),
            (1, vec!["a".into(), "b".into()])
        );
        let t = named("x,y\nx,y\ny,x\n", "y").unwrap();
        assert_eq!((t.label, t.data.len()), (1, 2));
        let e = named("a,b\n1,2\n", "species").unwrap_err().to_string();
        assert!(e.contains("line 1: no column named \"species\""), "{e}");

        // Which columns could be the label, and with how many classes: names (any text),
        // whole numbers ≥ 0 (3 and 3.0 one class); not measurements, nor more than
        // MAX_CATEGORIES distinct values (an identifier).
        let rows: String = (0..40)
            .map(|i| {
                format!(
                    "{i},{}.5,{},{},x{}\n",
                    i % 3,
                    i % 2,
                    ["3", "3.0", "4"][i % 3],
                    i % 5
                )
            })
            .collect();
        let t = parse_csv("n", rows.as_bytes(), LabelColumn::Last).unwrap();
        assert_eq!(t.label_classes, [None, None, Some(2), Some(2), Some(5)]);
    }

    #[test]
    fn csv_errors_name_the_real_line_and_column() {
        let e = err("a,b,label\n1,2\n3,4,dog\n");
        assert!(e.contains("line 2: 2 columns, expected 3"), "{e}");
        let e = err("1,2,3\n1,2,0.5\n");
        assert!(e.contains("line 2: label 0.5 is not a class"), "{e}");
        assert!(!e.contains("could be the label"), "{e}");
        // With columns that could be the label, they are named.
        let e = err("size,kind,weight\n1.5,cat,0.5\n2.5,dog,1.5\n");
        assert!(
            e.ends_with("is not a class (a whole number ≥ 0, or a name); columns that could be the label: column 2 (kind)"),
            "{e}"
        );
        let e = err("a,b,label\n\n1,\"2,cat\n3,4,dog\n");
        assert!(e.contains("line 3: a quote is never closed"), "{e}");
        let e = err("a,b,label\n1,\"2\"x,cat\n");
        assert!(e.contains("line 2: text after a closing quote"), "{e}");
        assert!(err("a,b,label\n").contains("no data rows"));
        assert!(err("a,b,label\n1,2,\n3,4,NA\n").contains("no rows with a label"));
        let ids: String = (0..40).map(|i| format!("id{i},{}\n", i % 2)).collect();
        let e = err(&format!("id,label\n{ids}"));
        assert!(e.contains("no feature column"), "{e}");
    }

    #[test]
    fn rejects_malformed_csv() {
        for bad in [
            "",
            "a,b\n",
            "1,2,3\n1,2\n",
            "1,2,-1\n",
            "1,2,0.5\n",
            "5\n",
            "1,2,\"3\n",
        ] {
            assert!(
                parse_csv("c", bad.as_bytes(), LabelColumn::Last).is_err(),
                "accepted {bad:?}"
            );
        }
        assert!(parse_csv("c", &[0xff, 0xfe, 0x00], LabelColumn::Last).is_err());
    }

    #[test]
    fn missing_numbers_are_the_columns_mean_and_unlabelled_rows_are_left_out() {
        let t = read("a,b,label\n1,NA,x\n3,4,y\n,8,x\n5,?,\n2,,N/A\n");
        let d = &t.data;
        assert_eq!(d.len(), 3);
        assert_eq!(d.row(0).to_vec(), [1.0, 6.0]);
        assert_eq!(d.row(2).to_vec(), [2.75, 8.0]);
        assert_eq!(d.labels, [0, 1, 0]);
        assert_eq!(
            t.notes,
            [
                "column 1 (a): 1 missing value filled with the column's mean (2.7500)",
                "column 2 (b): 3 missing values filled with the column's mean (6.0000)",
                "2 rows without a label left out (lines 5, 6)",
            ]
        );
        // Many columns with missing values: one sentence.
        let t = read("a,b,c,d,e,f,g,label\n1,2,3,4,5,6,7,x\n,,,,,NA,?,y\n1,2,3,4,5,6,,x\n");
        assert_eq!(
            t.notes,
            [
                "8 missing values in 7 columns of numbers (columns 1, 2, 3, 4, 5, …, 7), each \
              filled with its column's mean"
            ]
        );
        assert_eq!(t.data.row(1).to_vec(), [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
        // NaN and an all-missing column.
        let t = read("1,nan,0\n2,,1\n");
        assert_eq!(t.data.n_features, 1);
        assert_eq!(t.notes, ["column 2: no values, left out"]);
    }

    #[test]
    fn text_columns_are_categories_one_hot() {
        let t = read("size,colour,label\n1,red,x\n2,blue,y\n3,,x\n4,red,y\n");
        let d = &t.data;
        assert_eq!(d.feature_names, ["size", "colour=blue", "colour=red"]);
        // Every column, the label's too, for choosing another.
        assert_eq!(
            (t.columns.clone(), t.label),
            (vec!["size".to_string(), "colour".into(), "label".into()], 2)
        );
        assert_eq!(d.row(0).to_vec(), [1.0, 0.0, 1.0]);
        assert_eq!(d.row(1).to_vec(), [2.0, 1.0, 0.0]);
        assert_eq!(d.row(2).to_vec(), [3.0, 0.0, 0.0]);
        assert_eq!(
            t.notes,
            [
                "column 2 (colour): text, read as 2 categories (one feature each); 1 missing value \
              in no category"
            ]
        );
        // Without a header: named by their column; a header of text only is recognised by
        // names not written again below.
        let t = read("1,red,x\n2,blue,y\n3,red,x\n");
        assert_eq!(t.data.len(), 3);
        assert_eq!(
            t.data.feature_names,
            ["column 1", "column 2=blue", "column 2=red"]
        );
        assert_eq!(t.columns, ["column 1", "column 2", "column 3"]);
        let t = read("colour,shape,label\nred,round,x\nblue,flat,y\nred,flat,x\n");
        assert_eq!(t.data.len(), 3);
        assert_eq!(t.data.feature_names[0], "colour=blue");
        let t = read("red,round,x\nblue,flat,y\nred,round,x\n");
        assert_eq!(t.data.len(), 3, "no header: its cells are written again");
    }

    #[test]
    fn identifiers_are_left_out_and_stray_text_among_numbers_is_missing() {
        let mut text = String::from("name,age,label\n");
        for i in 0..40 {
            let age = if i == 7 {
                "unknown".to_string()
            } else {
                (20 + i).to_string()
            };
            text += &format!("person {i},{age},{}\n", i % 2);
        }
        let t = read(&text);
        assert_eq!(t.data.n_features, 1);
        assert_eq!(t.data.feature_names, ["age"]);
        assert_eq!(
            t.notes[0],
            format!(
                "column 1 (name): text of more than {MAX_CATEGORIES} distinct values (names or \
             identifiers?), left out"
            )
        );
        assert!(
            t.notes[1].starts_with(
                "column 2 (age): numbers, and 1 cell that is not (as \"unknown\" on line 9)"
            ),
            "{:?}",
            t.notes
        );
        let mean = (0..40)
            .filter(|&i| i != 7)
            .map(|i| 20.0 + i as f64)
            .sum::<f64>()
            / 39.0;
        assert_eq!(t.data.row(7).to_vec(), [mean as f32]);
    }

    #[test]
    fn a_table_may_not_grow_past_max_values() {
        assert!(check_size(MAX_VALUES / 32, 32).is_ok());
        let e = check_size(MAX_VALUES / 32 + 1, 32).unwrap_err();
        assert!(e.contains("more than 67108864 values"), "{e}");
        assert!(check_size(usize::MAX, 2).is_err());
    }

    #[test]
    fn quotes_semicolons_tabs_and_a_byte_order_mark() {
        let t = read(
            "\u{feff}\"a\",\"b, or c\",label\n\"1\",\"2\",\"the \"\"cat\"\"\"\n3,4,\"dog,\nhound\"\n5,6,dog\n",
        );
        let d = &t.data;
        assert_eq!(d.feature_names, ["a", "b, or c"]);
        assert_eq!(d.class_names, ["dog", "dog,\nhound", "the \"cat\""]);
        assert_eq!(d.labels, [2, 1, 0]);
        assert!(t.notes.is_empty());
        // Lines are counted through a quoted line break.
        let e = err("a,b,label\n1,2,\"x\ny\"\n3,4\n");
        assert!(e.contains("line 4"), "{e}");

        let t = read("a;b;label\n1,5;2;x\n3;4,25;y\n");
        assert_eq!(t.data.row(0).to_vec(), [1.5, 2.0]);
        assert_eq!(t.data.row(1).to_vec(), [3.0, 4.25]);
        assert_eq!(
            t.notes,
            ["cells are separated by semicolons (\"1,5\" reads 1.5)"]
        );
        let t = read("a\tb\tlabel\r\n1.5\t2\tx\r\n3\t4\ty\r\n");
        assert_eq!(t.data.row(0).to_vec(), [1.5, 2.0]);
        assert_eq!(t.data.class_names, ["x", "y"]);
        assert_eq!(t.notes, ["cells are separated by tabs"]);
    }
}
