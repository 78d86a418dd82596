//! In-memory classification datasets: f32 feature rows, integer labels.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::Error;

/// A classification dataset held in memory.
///
/// Features are stored row-major (`len() × n_features`), as f32 values or, once
/// [`Dataset::compact`], as 16-bit codes into a table of the distinct values (images: the same
/// values in half the memory). Read rows with [`Dataset::row`] or [`Dataset::extend_row`].
/// Labels are in `0..n_classes`.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// A short human-readable name ("mnist", "fashion-mnist", a file name, ...).
    pub name: String,
    /// Row-major features, `len() * n_features` values; empty when the dataset is compact.
    pub features: Vec<f32>,
    /// A compact dataset's rows: row-major codes into `table`; else empty.
    codes: Vec<u16>,
    /// A compact dataset's distinct values, indexed by code.
    table: Vec<f32>,
    /// Number of features per example.
    pub n_features: usize,
    /// One label per example, each `< n_classes`.
    pub labels: Vec<u32>,
    /// Number of classes.
    pub n_classes: usize,
    /// Image side length when the features are a square image (used by pooling).
    pub image_side: Option<usize>,
    /// Each class's name as its file wrote it (`class_names[k]` for label `k`; a CSV's labels),
    /// or empty: classes are their numbers.
    pub class_names: Vec<String>,
    /// Each feature's name (a CSV's header, the label column left out), or empty.
    pub feature_names: Vec<String>,
}

/// Checks that `n_values` feature values make rows of `n_features` for every label, that an
/// image side fits them and that every one of `values` (the features, or a compact dataset's
/// table) is finite: what [`Dataset::new`] and [`Dataset::from_codes`] share.
fn check_rows(
    name: &str,
    (n_values, values): (usize, &[f32]),
    n_features: usize,
    labels: &[u32],
    image_side: Option<usize>,
) -> Result<(), Error> {
    if n_features == 0 {
        return Err(Error::Data(format!("{name}: examples have no features")));
    }
    if labels.is_empty() {
        return Err(Error::Data(format!("{name}: no examples")));
    }
    if n_values != labels.len() * n_features {
        return Err(Error::Data(format!(
            "{name}: {n_values} feature values do not make {} rows of {n_features}",
            labels.len()
        )));
    }
    if let Some(side) = image_side
        && side * side != n_features
    {
        return Err(Error::Data(format!(
            "{name}: image side {side} does not match {n_features} features"
        )));
    }
    if values.iter().any(|v| !v.is_finite()) {
        return Err(Error::Data(format!(
            "{name}: features contain NaN or infinity"
        )));
    }
    Ok(())
}

impl Dataset {
    /// Builds a dataset, checking that the shapes and labels are consistent.
    pub fn new(
        name: impl Into<String>,
        features: Vec<f32>,
        n_features: usize,
        labels: Vec<u32>,
        image_side: Option<usize>,
    ) -> Result<Self, Error> {
        let name = name.into();
        let values = (features.len(), features.as_slice());
        check_rows(&name, values, n_features, &labels, image_side)?;
        Ok(Self::assemble(
            name,
            (features, Vec::new(), Vec::new()),
            n_features,
            labels,
            image_side,
        ))
    }

    /// Builds a compact dataset ([`Dataset::compact`]'s form) from its codes, row-major, and
    /// the table of values they index, checking the shapes, labels and codes as
    /// [`Dataset::new`] does. For parsers of integer data, which then never hold the rows as f32.
    pub fn from_codes(
        name: impl Into<String>,
        codes: Vec<u16>,
        table: Vec<f32>,
        n_features: usize,
        labels: Vec<u32>,
        image_side: Option<usize>,
    ) -> Result<Self, Error> {
        let name = name.into();
        check_rows(
            &name,
            (codes.len(), &table),
            n_features,
            &labels,
            image_side,
        )?;
        if codes.iter().any(|&c| c as usize >= table.len()) {
            return Err(Error::Data(format!(
                "{name}: a code past the table of {} values",
                table.len()
            )));
        }
        Ok(Self::assemble(
            name,
            (Vec::new(), codes, table),
            n_features,
            labels,
            image_side,
        ))
    }

    /// A checked dataset from its rows as (`features`, `codes`, `table`): one of the first two
    /// is empty.
    fn assemble(
        name: String,
        (features, codes, table): (Vec<f32>, Vec<u16>, Vec<f32>),
        n_features: usize,
        labels: Vec<u32>,
        image_side: Option<usize>,
    ) -> Self {
        let n_classes = labels.iter().copied().max().map_or(0, |m| m as usize + 1);
        Self {
            name,
            features,
            codes,
            table,
            n_features,
            labels,
            n_classes,
            image_side,
            class_names: Vec::new(),
            feature_names: Vec::new(),
        }
    }

    /// The same dataset held as 16-bit codes into a table of its distinct values, when it has
    /// at most 65 536 of them (pixels, block sums; a table's real numbers rarely): half the
    /// memory, the same values bit for bit. Else unchanged.
    pub fn compact(mut self) -> Self {
        if self.is_compact() {
            return self;
        }
        let mut index: HashMap<u32, u16> = HashMap::new();
        let mut table = Vec::new();
        let mut codes = Vec::with_capacity(self.features.len());
        for &v in &self.features {
            let code = match index.get(&v.to_bits()) {
                Some(&c) => c,
                None if table.len() <= u16::MAX as usize => {
                    let c = table.len() as u16;
                    index.insert(v.to_bits(), c);
                    table.push(v);
                    c
                }
                None => return self,
            };
            codes.push(code);
        }
        self.features = Vec::new();
        self.codes = codes;
        self.table = table;
        self
    }

    /// Whether the rows are held as codes ([`Dataset::compact`]).
    pub fn is_compact(&self) -> bool {
        !self.codes.is_empty()
    }

    /// Every feature value, row-major, however the dataset holds them.
    pub fn values(&self) -> Box<dyn Iterator<Item = f32> + '_> {
        if self.is_compact() {
            Box::new(self.codes.iter().map(|&c| self.table[c as usize]))
        } else {
            Box::new(self.features.iter().copied())
        }
    }

    /// Holds the rows as f32 values again (what code that edits `features` needs).
    fn expand(&mut self) {
        if self.is_compact() {
            self.features = self.values().collect();
            self.codes = Vec::new();
            self.table = Vec::new();
        }
    }

    /// The name of class `k`: its name in the file, else its number.
    pub fn class_name(&self, k: usize) -> String {
        self.class_names
            .get(k)
            .cloned()
            .unwrap_or_else(|| k.to_string())
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the dataset has no examples (never true for a dataset built by [`Dataset::new`]).
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Checks that a model with `model_classes` outputs can classify this dataset in context.
    pub fn check_classes(&self, model_classes: usize) -> Result<(), Error> {
        if self.n_classes < 2 {
            let found = if self.n_classes == 0 {
                "no class"
            } else {
                "one class only"
            };
            return Err(Error::Data(format!(
                "{} has {found}; in-context classification needs at least 2",
                self.name
            )));
        }
        if self.n_classes > model_classes {
            return Err(Error::Data(format!(
                "{} has {} classes but the model has {model_classes} outputs",
                self.name, self.n_classes
            )));
        }
        Ok(())
    }

    /// The feature row of example `i` (borrowed, or decoded from a compact dataset's codes).
    pub fn row(&self, i: usize) -> Cow<'_, [f32]> {
        if self.is_compact() {
            let mut row = Vec::with_capacity(self.n_features);
            self.extend_row(i, &mut row);
            Cow::Owned(row)
        } else {
            Cow::Borrowed(&self.features[i * self.n_features..(i + 1) * self.n_features])
        }
    }

    /// Appends the feature row of example `i` to `out` (no allocation of its own).
    pub fn extend_row(&self, i: usize, out: &mut Vec<f32>) {
        let range = i * self.n_features..(i + 1) * self.n_features;
        if self.is_compact() {
            out.extend(self.codes[range].iter().map(|&c| self.table[c as usize]));
        } else {
            out.extend_from_slice(&self.features[range]);
        }
    }

    /// Mean and standard deviation over all examples and features together (a constant
    /// dataset's standard deviation counts as 1).
    pub fn stats(&self) -> (f64, f64) {
        let n = (self.len() * self.n_features) as f64;
        let mean = self.values().map(|v| v as f64).sum::<f64>() / n;
        let var = self
            .values()
            .map(|v| (v as f64 - mean).powi(2))
            .sum::<f64>()
            / n;
        (mean, if var > 0.0 { var.sqrt() } else { 1.0 })
    }

    /// Z-normalises in place over all examples and features together (one mean, one standard
    /// deviation, [`Dataset::stats`]), as in the paper. A constant dataset is only centred.
    pub fn z_normalize(&mut self) {
        let (mean, std) = self.stats();
        self.map_values(|v| ((v as f64 - mean) / std) as f32);
    }

    /// Replaces every feature value `v` by `f(v)` (a compact dataset's table of values).
    pub fn map_values(&mut self, f: impl Fn(f32) -> f32) {
        let values = if self.is_compact() {
            &mut self.table
        } else {
            &mut self.features
        };
        for v in values {
            *v = f(*v);
        }
    }

    /// Average-pools square images by `factor` (e.g. 28×28 → 14×14 with factor 2).
    pub fn avg_pool(&self, factor: usize) -> Result<Self, Error> {
        let side = self
            .image_side
            .ok_or_else(|| Error::Data(format!("{}: pooling needs square images", self.name)))?;
        if factor == 0 || side % factor != 0 {
            return Err(Error::Data(format!(
                "{}: image side {side} is not divisible by pool factor {factor}",
                self.name
            )));
        }
        let out = side / factor;
        let norm = (factor * factor) as f32;
        let mut features = Vec::with_capacity(self.len() * out * out);
        for i in 0..self.len() {
            let row = self.row(i);
            for oy in 0..out {
                for ox in 0..out {
                    let mut sum = 0.0;
                    for dy in 0..factor {
                        for dx in 0..factor {
                            sum += row[(oy * factor + dy) * side + ox * factor + dx];
                        }
                    }
                    features.push(sum / norm);
                }
            }
        }
        Ok(Self {
            name: self.name.clone(),
            features,
            codes: Vec::new(),
            table: Vec::new(),
            n_features: out * out,
            labels: self.labels.clone(),
            n_classes: self.n_classes,
            image_side: Some(out),
            class_names: self.class_names.clone(),
            feature_names: Vec::new(),
        })
    }

    /// Standardises each feature (column) in place to mean 0 and standard deviation 1 over
    /// the examples; a constant column is only centred.
    pub fn standardize_columns(&mut self) {
        self.expand();
        let (n, w) = (self.len() as f64, self.n_features);
        let mut mean = vec![0.0f64; w];
        for row in self.features.chunks_exact(w) {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += v as f64 / n;
            }
        }
        let mut var = vec![0.0f64; w];
        for row in self.features.chunks_exact(w) {
            for ((s, &v), m) in var.iter_mut().zip(row).zip(&mean) {
                *s += (v as f64 - m).powi(2) / n;
            }
        }
        let std: Vec<f64> = var
            .iter()
            .map(|&v| if v > 0.0 { v.sqrt() } else { 1.0 })
            .collect();
        for row in self.features.chunks_exact_mut(w) {
            for ((v, m), s) in row.iter_mut().zip(&mean).zip(&std) {
                *v = ((*v as f64 - m) / s) as f32;
            }
        }
    }

    /// The form the learner sees. Images (`image_side` set: IDX files) are average-pooled by
    /// `pool` (when the side divides) and z-normalised with one mean and deviation over all
    /// pixels, as in the paper (pixels share a unit). Tables (CSV files) are standardised per
    /// column ([`Dataset::standardize_columns`]): their columns may be in different units
    /// (grams beside millimetres), and one scale would let the largest dominate.
    pub fn prepared(self, pool: usize) -> Result<Self, Error> {
        let mut d = match self.image_side {
            Some(side) if pool > 1 && side % pool == 0 => self.avg_pool(pool)?,
            _ => self,
        };
        match d.image_side {
            Some(_) => d.z_normalize(),
            None => d.standardize_columns(),
        }
        Ok(d)
    }

    /// The first `n` examples (or all, if fewer).
    pub fn take(&self, n: usize) -> Self {
        let n = n.min(self.len());
        let (features, codes) = if self.is_compact() {
            (Vec::new(), self.codes[..n * self.n_features].to_vec())
        } else {
            (self.features[..n * self.n_features].to_vec(), Vec::new())
        };
        Self {
            name: self.name.clone(),
            features,
            codes,
            table: self.table.clone(),
            n_features: self.n_features,
            labels: self.labels[..n].to_vec(),
            n_classes: self.n_classes,
            image_side: self.image_side,
            class_names: self.class_names.clone(),
            feature_names: self.feature_names.clone(),
        }
    }
}

/// Equal datasets hold the same examples, values, labels and names, compact or not.
impl PartialEq for Dataset {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.n_features == other.n_features
            && self.labels == other.labels
            && self.n_classes == other.n_classes
            && self.image_side == other.image_side
            && self.class_names == other.class_names
            && self.feature_names == other.feature_names
            && self.values().eq(other.values())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compact_dataset_holds_the_same_values_in_codes() {
        // Block averages (multiples of 1/16), as the page's pooled images.
        let values: Vec<f32> = (0..600).map(|i| ((i * 37) % 97) as f32 / 16.0).collect();
        let labels: Vec<u32> = (0..100).map(|i| i % 3).collect();
        let plain = Dataset::new("img", values, 6, labels, None).unwrap();
        let compact = plain.clone().compact();
        assert!(compact.is_compact() && !plain.is_compact());
        assert!(compact.features.is_empty());
        assert_eq!(compact, plain);
        assert_eq!(compact.row(7), plain.row(7));
        let mut row = vec![1.0];
        compact.extend_row(7, &mut row);
        assert_eq!(row[1..], *plain.row(7));
        assert_eq!(compact.stats(), plain.stats());
        assert_eq!(compact.take(10), plain.take(10));
        assert!(compact.take(10).is_compact());
        // Normalised in either form: the same f32 values, bit for bit.
        let (mut a, mut b) = (plain.clone(), compact.clone());
        a.z_normalize();
        b.z_normalize();
        assert!(
            a.values()
                .map(f32::to_bits)
                .eq(b.values().map(f32::to_bits))
        );
        assert!(b.is_compact());
        // Per-column standardisation edits the values: it holds them as f32 again.
        let (mut a, mut b) = (plain.clone(), compact);
        a.standardize_columns();
        b.standardize_columns();
        assert!(!b.is_compact());
        assert_eq!(a, b);
        // More distinct values than 16 bits can name: left as f32.
        let many: Vec<f32> = (0..70_000).map(|i| i as f32).collect();
        let wide = Dataset::new("wide", many, 1, vec![0; 70_000], None).unwrap();
        assert!(!wide.compact().is_compact());
    }

    #[test]
    fn a_dataset_from_codes_is_checked_like_one_from_values() {
        let table = vec![0.0, 0.5, 1.0];
        let d = Dataset::from_codes("c", vec![0, 2, 1, 1], table.clone(), 2, vec![0, 1], None);
        let d = d.unwrap();
        assert!(d.is_compact());
        assert_eq!(
            d,
            Dataset::new("c", vec![0.0, 1.0, 0.5, 0.5], 2, vec![0, 1], None).unwrap()
        );
        let made = |codes: Vec<u16>, table: Vec<f32>, side| {
            Dataset::from_codes("c", codes, table, 2, vec![0, 1], side)
        };
        assert!(made(vec![0, 1, 3, 1], table.clone(), None).is_err()); // past the table
        assert!(made(vec![0, 1, 2], table.clone(), None).is_err()); // a short row
        assert!(made(vec![0, 1, 2, 1], vec![0.0, f32::NAN, 1.0], None).is_err());
        assert!(made(vec![0, 1, 2, 1], table, Some(3)).is_err()); // not 3×3 images
    }

    #[test]
    fn rejects_inconsistent_shapes() {
        assert!(Dataset::new("x", vec![1.0; 5], 2, vec![0, 1], None).is_err());
        assert!(Dataset::new("x", vec![], 2, vec![], None).is_err());
        assert!(Dataset::new("x", vec![1.0; 4], 2, vec![0, 1], Some(3)).is_err());
        assert!(Dataset::new("x", vec![f32::NAN, 1.0], 2, vec![0], None).is_err());
        let d = Dataset::new("x", vec![1.0; 4], 2, vec![0, 3], None).unwrap();
        assert_eq!(d.n_classes, 4);
    }

    #[test]
    fn z_normalize_gives_zero_mean_unit_std() {
        let mut d = Dataset::new("x", vec![1.0, 2.0, 3.0, 10.0], 2, vec![0, 1], None).unwrap();
        d.z_normalize();
        let mean: f32 = d.features.iter().sum::<f32>() / 4.0;
        let var: f32 = d.features.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 4.0;
        assert!(mean.abs() < 1e-6);
        assert!((var - 1.0).abs() < 1e-5);
    }

    #[test]
    fn tables_are_standardised_per_column_and_images_as_a_whole() {
        // Millimetres beside kilograms: each column gets mean 0 and deviation 1.
        let table = Dataset::new(
            "t",
            vec![1000.0, 1.0, 3000.0, 2.0, 2000.0, 2.0],
            2,
            vec![0, 1, 0],
            None,
        )
        .unwrap()
        .prepared(4)
        .unwrap();
        for c in 0..2 {
            let col: Vec<f32> = (0..3).map(|i| table.row(i)[c]).collect();
            let mean = col.iter().sum::<f32>() / 3.0;
            let var = col.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 3.0;
            assert!(
                mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-5,
                "column {c}: {col:?}"
            );
        }
        // A constant column is only centred.
        let mut flat = Dataset::new("t", vec![5.0, 1.0, 5.0, 2.0], 2, vec![0, 1], None).unwrap();
        flat.standardize_columns();
        assert_eq!((flat.row(0)[0], flat.row(1)[0]), (0.0, 0.0));
        // Images keep one scale: the brighter pixel stays brighter after normalising.
        let img = Dataset::new("i", vec![0.0, 10.0, 0.0, 200.0], 4, vec![0], Some(2)).unwrap();
        let p = img.prepared(1).unwrap();
        assert!(p.features[3] > p.features[1] && p.features[1] > p.features[0]);
    }

    #[test]
    fn avg_pool_averages_blocks() {
        let img: Vec<f32> = (0..16).map(|v| v as f32).collect();
        let d = Dataset::new("x", img, 16, vec![0], Some(4)).unwrap();
        let p = d.avg_pool(2).unwrap();
        assert_eq!(p.n_features, 4);
        assert_eq!(p.features, vec![2.5, 4.5, 10.5, 12.5]);
        assert!(d.avg_pool(3).is_err());
    }
}
