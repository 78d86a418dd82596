//! Parsers for dataset files. They take bytes, never paths: the caller does the I/O.
//!
//! - IDX (the MNIST format), raw or gzip-compressed: an images file and a labels file.
//! - CSV: numeric feature columns and one integer label column.

use std::io::Read;

use crate::{Dataset, Error};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Upper bound on decompressed size, so a malicious gzip cannot exhaust memory.
const MAX_DECOMPRESSED: u64 = 1 << 30;

/// Decompresses `bytes` if they are gzip, otherwise returns them unchanged.
pub fn maybe_gunzip(bytes: &[u8]) -> Result<Vec<u8>, Error> {
    if bytes.starts_with(&GZIP_MAGIC) {
        // The trailer's last 4 bytes give the size (mod 2^32): reading into a buffer that
        // size needs no doublings (which hold the old and the new buffer at once, and leave
        // up to half of the last one unused). Trusted no further than deflate can expand.
        let stated = bytes.len().checked_sub(4).map_or(0, |at| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize
        });
        let mut out = Vec::with_capacity(stated.min(bytes.len().saturating_mul(1032)));
        flate2::read::GzDecoder::new(bytes)
            .take(MAX_DECOMPRESSED)
            .read_to_end(&mut out)
            .map_err(|e| Error::Parse(format!("gzip: {e}")))?;
        Ok(out)
    } else {
        Ok(bytes.to_vec())
    }
}

/// An IDX array: dimensions and values (unsigned bytes or signed 16-bit integers, as floats).
struct Idx {
    dims: Vec<usize>,
    data: Vec<f32>,
}

/// Reads an (already decompressed) IDX file's header: its dimensions, the width of one value in
/// bytes (1: unsigned byte, 2: signed 16-bit integer, big-endian) and the values' bytes.
fn idx_body<'a>(bytes: &'a [u8], what: &str) -> Result<(Vec<usize>, usize, &'a [u8]), Error> {
    let err = |m: String| Error::Parse(format!("IDX {what}: {m}"));
    if bytes.len() < 4 {
        return Err(err(format!(
            "{} bytes is too short for a header",
            bytes.len()
        )));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(err("bad magic number (not an IDX file)".into()));
    }
    // 0x08: unsigned byte; 0x0B: signed 16-bit integer, big-endian (the page's pooled
    // bundles hold 4×4 block sums of pixels, up to 4080).
    let width = match bytes[2] {
        0x08 => 1,
        0x0B => 2,
        other => {
            return Err(err(format!(
                "element type 0x{other:02x} unsupported (only unsigned bytes and 16-bit integers)"
            )));
        }
    };
    let ndim = bytes[3] as usize;
    if ndim == 0 || ndim > 4 {
        return Err(err(format!("{ndim} dimensions unsupported")));
    }
    let header = 4 + 4 * ndim;
    if bytes.len() < header {
        return Err(err("truncated header".into()));
    }
    let dims: Vec<usize> = (0..ndim)
        .map(|i| {
            let b = &bytes[4 + 4 * i..8 + 4 * i];
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
        })
        .collect();
    let count = dims
        .iter()
        .try_fold(1usize, |a, &d| a.checked_mul(d))
        .ok_or_else(|| err("dimensions overflow".into()))?;
    let body = &bytes[header..];
    if Some(body.len()) != count.checked_mul(width) {
        return Err(err(format!(
            "expected {count} values of {width} byte(s), found {} bytes",
            body.len()
        )));
    }
    Ok((dims, width, body))
}

fn parse_idx(bytes: &[u8], what: &str) -> Result<Idx, Error> {
    let bytes = maybe_gunzip(bytes)?;
    let (dims, width, body) = idx_body(&bytes, what)?;
    let data = if width == 1 {
        body.iter().map(|&b| f32::from(b)).collect()
    } else {
        body.chunks_exact(2)
            .map(|c| f32::from(i16::from_be_bytes([c[0], c[1]])))
            .collect()
    };
    Ok(Idx { dims, data })
}

/// Parses an IDX images file (`n × rows × cols` or `n × features`) and an IDX labels file
/// (`n`), each raw or gzip. Values are kept as floats (pixels 0..=255); normalise afterwards.
/// Labels must be unsigned bytes.
pub fn parse_idx_pair(name: &str, images: &[u8], labels: &[u8]) -> Result<Dataset, Error> {
    let img = parse_idx(images, "images")?;
    let (n_features, side) = image_shape(&img.dims)?;
    let labels = idx_labels(labels, img.dims[0])?;
    Dataset::new(name, img.data, n_features, labels, side)
}

/// [`parse_idx_pair`] with the images held compact from the start ([`Dataset::compact`]'s
/// form: each stored integer is its own code into the table `0, 1, …, max` as floats), so that
/// their f32 values are never all held at once (a WebAssembly memory never shrinks). The values
/// are those of [`parse_idx_pair`], bit for bit. Images with negative values are refused.
pub fn parse_idx_pair_compact(name: &str, images: &[u8], labels: &[u8]) -> Result<Dataset, Error> {
    let (dims, codes) = {
        let bytes = maybe_gunzip(images)?;
        let (dims, width, body) = idx_body(&bytes, "images")?;
        let codes: Vec<u16> = if width == 1 {
            body.iter().map(|&b| u16::from(b)).collect()
        } else {
            let mut codes = Vec::with_capacity(body.len() / 2);
            for c in body.chunks_exact(2) {
                let v = i16::from_be_bytes([c[0], c[1]]);
                let code = u16::try_from(v)
                    .map_err(|_| Error::Parse(format!("IDX images: a negative value ({v})")))?;
                codes.push(code);
            }
            codes
        };
        (dims, codes)
    };
    let (n_features, side) = image_shape(&dims)?;
    let labels = idx_labels(labels, dims[0])?;
    let max = codes.iter().copied().max().unwrap_or(0);
    let table = (0..=max).map(f32::from).collect();
    Dataset::from_codes(name, codes, table, n_features, labels, side)
}

/// The number of features of an IDX images array's rows, and their side when they are square
/// images (`n × side × side`).
fn image_shape(dims: &[usize]) -> Result<(usize, Option<usize>), Error> {
    if dims.len() < 2 {
        return Err(Error::Parse(
            "IDX images: expected at least 2 dimensions".into(),
        ));
    }
    let n_features: usize = dims[1..].iter().product();
    let side = (dims.len() == 3 && dims[1] == dims[2]).then_some(dims[1]);
    Ok((n_features, side))
}

/// Parses an IDX labels file holding one class number for each of `n_images` images.
fn idx_labels(labels: &[u8], n_images: usize) -> Result<Vec<u32>, Error> {
    let lab = parse_idx(labels, "labels")?;
    if lab.dims.len() != 1 {
        return Err(Error::Parse(format!(
            "IDX labels: expected 1 dimension, found {}",
            lab.dims.len()
        )));
    }
    if n_images != lab.dims[0] {
        return Err(Error::Parse(format!(
            "IDX: {n_images} images but {} labels",
            lab.dims[0]
        )));
    }
    lab.data
        .iter()
        .map(|&v| {
            (v >= 0.0 && v.fract() == 0.0)
                .then_some(v as u32)
                .ok_or_else(|| Error::Parse(format!("IDX labels: label {v} is not a class")))
        })
        .collect()
}

/// Which CSV column holds the label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelColumn {
    /// The first column.
    First,
    /// The last column.
    Last,
    /// The column at this index (0-based).
    Index(usize),
}

impl LabelColumn {
    /// The label's column in a row of `width` columns, if there is one.
    fn index(self, width: usize) -> Option<usize> {
        match self {
            LabelColumn::First => (width > 0).then_some(0),
            LabelColumn::Last => width.checked_sub(1),
            LabelColumn::Index(i) => (i < width).then_some(i),
        }
    }
}

/// A label as written: a class number, or a class name.
fn label_number(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// Parses CSV text: every row has the same number of columns; one (`label`) holds the class,
/// the others are numbers. The label is a non-negative whole number or, if any row's is not a
/// number, a name: classes are the distinct labels, numbered `0..n_classes` in sorted order
/// (numerically for numbers, alphabetically for names), and the dataset keeps each class's
/// label as written ([`Dataset::class_names`]) and the header's names of the features. A
/// first row whose feature cells are
/// not all numbers is a header (it sets the number of columns and names them in messages).
/// Errors name the line (1-based, counting blank lines) and the column.
pub fn parse_csv(name: &str, bytes: &[u8], label: LabelColumn) -> Result<Dataset, Error> {
    let bytes = maybe_gunzip(bytes)?;
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| Error::Parse(format!("CSV {name}: not UTF-8 text")))?;
    let bad = |line: usize, what: String| Error::Parse(format!("CSV {name}, line {line}: {what}"));
    let mut header: Option<Vec<String>> = None;
    let mut width: Option<usize> = None;
    let mut features = Vec::new();
    let mut raw_labels: Vec<(usize, &str)> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let (line_no, line) = (i + 1, line.trim());
        if line.is_empty() {
            continue;
        }
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        let y = label.index(cells.len()).ok_or_else(|| {
            bad(
                line_no,
                format!("{} columns, no label column {label:?}", cells.len()),
            )
        })?;
        if cells.len() < 2 {
            return Err(bad(line_no, "needs a feature and a label".into()));
        }
        let numeric = cells
            .iter()
            .enumerate()
            .all(|(c, v)| c == y || label_number(v).is_some());
        if width.is_none() && !numeric {
            header = Some(cells.iter().map(|c| c.to_string()).collect());
            width = Some(cells.len());
            continue;
        }
        let w = *width.get_or_insert(cells.len());
        if cells.len() != w {
            return Err(bad(
                line_no,
                format!("{} columns, expected {w}", cells.len()),
            ));
        }
        for (c, v) in cells.iter().enumerate() {
            if c == y {
                continue;
            }
            match label_number(v) {
                Some(x) => features.push(x as f32),
                None => {
                    let column = match &header {
                        Some(h) => format!("column {} ({})", c + 1, h[c]),
                        None => format!("column {}", c + 1),
                    };
                    return Err(bad(line_no, format!("{column}: {v:?} is not a number")));
                }
            }
        }
        if cells[y].is_empty() {
            return Err(bad(line_no, "the label is empty".into()));
        }
        raw_labels.push((line_no, cells[y]));
    }
    let width = match (width, raw_labels.is_empty()) {
        (Some(w), false) => w,
        _ => return Err(Error::Parse(format!("CSV {name}: no data rows"))),
    };
    let numbers: Option<Vec<f64>> = raw_labels.iter().map(|(_, t)| label_number(t)).collect();
    let (labels, class_names): (Vec<u32>, Vec<String>) = match numbers {
        // Class numbers: whole and non-negative, in numeric order.
        Some(numbers) => {
            for (&(line_no, text), v) in raw_labels.iter().zip(&numbers) {
                if *v < 0.0 || v.fract() != 0.0 || *v > u32::MAX as f64 {
                    return Err(bad(
                        line_no,
                        format!("label {text} is not a class (a whole number ≥ 0, or a name)"),
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
            (labels, classes.iter().map(u64::to_string).collect())
        }
        // Class names, in alphabetical order.
        None => {
            let mut classes: Vec<&str> = raw_labels.iter().map(|(_, t)| *t).collect();
            classes.sort_unstable();
            classes.dedup();
            let labels = raw_labels
                .iter()
                .map(|(_, t)| classes.binary_search(t).expect("a class") as u32)
                .collect();
            (labels, classes.iter().map(|c| c.to_string()).collect())
        }
    };
    let mut data = Dataset::new(name, features, width - 1, labels, None)?;
    data.class_names = class_names;
    if let (Some(h), Some(y)) = (header, label.index(width)) {
        data.feature_names = h
            .into_iter()
            .enumerate()
            .filter_map(|(c, n)| (c != y).then_some(n))
            .collect();
    }
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            v.extend(d.to_be_bytes());
        }
        v.extend(data);
        v
    }

    #[test]
    fn parses_raw_and_gzip_idx() {
        let images = idx(&[2, 2, 2], &[0, 1, 2, 3, 4, 5, 6, 255]);
        let labels = idx(&[2], &[3, 1]);
        let d = parse_idx_pair("t", &images, &labels).unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d.n_features, 4);
        assert_eq!(d.image_side, Some(2));
        assert_eq!(*d.row(1), [4.0, 5.0, 6.0, 255.0]);
        assert_eq!(d.labels, vec![3, 1]);

        let mut gz = Vec::new();
        {
            use std::io::Write;
            let mut enc = flate2::write::GzEncoder::new(&mut gz, flate2::Compression::default());
            enc.write_all(&images).unwrap();
            enc.finish().unwrap();
        }
        assert_eq!(parse_idx_pair("t", &gz, &labels).unwrap(), d);
    }

    #[test]
    fn parses_16_bit_idx_and_refuses_negative_labels() {
        let mut images = vec![0, 0, 0x0b, 2, 0, 0, 0, 2, 0, 0, 0, 2];
        for v in [0i16, 4080, -3, 7] {
            images.extend(v.to_be_bytes());
        }
        let d = parse_idx_pair("t", &images, &idx(&[2], &[1, 0])).unwrap();
        assert_eq!(d.n_features, 2);
        assert_eq!(d.image_side, None);
        assert_eq!(*d.row(0), [0.0, 4080.0]);
        assert_eq!(*d.row(1), [-3.0, 7.0]);
        // Odd-length 16-bit bodies and negative labels are refused.
        assert!(parse_idx_pair("t", &images[..images.len() - 1], &idx(&[2], &[1, 0])).is_err());
        let mut labels = vec![0, 0, 0x0b, 1, 0, 0, 0, 2];
        labels.extend((-1i16).to_be_bytes());
        labels.extend(1i16.to_be_bytes());
        let e = parse_idx_pair("t", &images, &labels)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a class"), "{e}");
    }

    #[test]
    fn compact_idx_holds_the_same_values_as_codes() {
        let images = idx(&[2, 2, 2], &[0, 1, 2, 3, 4, 5, 6, 255]);
        let labels = idx(&[2], &[3, 1]);
        let full = parse_idx_pair("t", &images, &labels).unwrap();
        let compact = parse_idx_pair_compact("t", &images, &labels).unwrap();
        assert!(compact.is_compact() && !full.is_compact());
        assert_eq!(compact, full);
        assert_eq!((compact.image_side, compact.n_classes), (Some(2), 4));
        // 16-bit values: their own codes; negative ones are refused, not wrapped.
        let mut wide = vec![0, 0, 0x0b, 2, 0, 0, 0, 2, 0, 0, 0, 2];
        for v in [0i16, 4080, 3, 7] {
            wide.extend(v.to_be_bytes());
        }
        let labels = idx(&[2], &[1, 0]);
        let d = parse_idx_pair_compact("t", &wide, &labels).unwrap();
        assert_eq!(d, parse_idx_pair("t", &wide, &labels).unwrap());
        assert_eq!(*d.row(0), [0.0, 4080.0]);
        wide[14..16].copy_from_slice(&(-3i16).to_be_bytes());
        let e = parse_idx_pair_compact("t", &wide, &labels).unwrap_err();
        assert!(e.to_string().contains("negative"), "{e}");
        // Malformed files are refused as by the float parser.
        assert!(parse_idx_pair_compact("t", &images[..images.len() - 1], &labels).is_err());
        assert!(parse_idx_pair_compact("t", &idx(&[3, 2, 2], &[0; 12]), &labels).is_err());
    }

    #[test]
    fn rejects_malformed_idx() {
        let labels = idx(&[2], &[0, 1]);
        let cases: Vec<Vec<u8>> = vec![
            vec![],
            vec![1, 2, 3],
            vec![1, 0, 8, 1, 0, 0, 0, 2, 0, 1],        // bad magic
            vec![0, 0, 0x0d, 1, 0, 0, 0, 2, 0, 0],     // float type
            idx(&[2, 2, 2], &[0, 1, 2]),               // truncated body
            idx(&[3, 2, 2], &[0; 12]),                 // count mismatch with labels
            vec![0x1f, 0x8b, 0, 0, 1, 2, 3],           // broken gzip
            idx(&[u32::MAX, u32::MAX, u32::MAX], &[]), // overflow
        ];
        for c in cases {
            assert!(parse_idx_pair("t", &c, &labels).is_err(), "accepted {c:?}");
        }
        assert!(parse_idx_pair("t", &idx(&[2, 1], &[0, 1]), &idx(&[2, 1], &[0, 1])).is_err());
    }

    #[test]
    fn parses_csv_with_header_and_remaps_labels() {
        let text = b"a,b,label\n0.5,1,7\n-1,2e1,3\n\n4,5,7\n";
        let d = parse_csv("c", text, LabelColumn::Last).unwrap();
        assert_eq!(d.n_features, 2);
        assert_eq!(d.labels, vec![1, 0, 1]);
        assert_eq!(d.n_classes, 2);
        assert_eq!(*d.row(1), [-1.0, 20.0]);
        assert_eq!(d.class_names, ["3", "7"]);
        assert_eq!(d.feature_names, ["a", "b"]);
        let d = parse_csv("c", b"2,0.1\n0,0.2\n", LabelColumn::First).unwrap();
        assert_eq!(d.labels, vec![1, 0]);
    }

    #[test]
    fn csv_labels_may_be_names_and_any_column() {
        let text = b"a,b,label\n1,2,cat\n3,4,dog\n5,6,cat\n";
        let d = parse_csv("c", text, LabelColumn::Last).unwrap();
        assert_eq!((d.n_features, d.n_classes), (2, 2));
        assert_eq!(d.labels, vec![0, 1, 0]);
        assert_eq!(*d.row(1), [3.0, 4.0]);
        assert_eq!(
            (d.class_name(1), d.class_name(5)),
            ("dog".into(), "5".into())
        );
        let d = parse_csv("c", b"1,x,2\n3,y,4\n", LabelColumn::Index(1)).unwrap();
        assert_eq!(
            (d.labels.clone(), d.row(1).to_vec()),
            (vec![0, 1], vec![3.0, 4.0])
        );
        assert_eq!(
            (d.class_names, d.feature_names.len()),
            (vec!["x".into(), "y".into()], 0)
        );
        // Mixed labels are all names.
        let d = parse_csv("c", b"1,2,x\n1,2,3\n1,2,x\n", LabelColumn::Last).unwrap();
        assert_eq!(d.labels, vec![1, 0, 1]);
    }

    #[test]
    fn csv_errors_name_the_real_line_and_column() {
        let err = |text: &[u8]| {
            parse_csv("c", text, LabelColumn::Last)
                .unwrap_err()
                .to_string()
        };
        let e = err(b"a,b,label\n1,2\n3,4,dog\n");
        assert!(e.contains("line 2: 2 columns, expected 3"), "{e}");
        let e = err(b"a,b,label\n\n1,2,cat\n3,x,dog\n");
        assert!(
            e.contains("line 4: column 2 (b): \"x\" is not a number"),
            "{e}"
        );
        let e = err(b"1,2,cat\n1,2,\n");
        assert!(e.contains("line 2: the label is empty"), "{e}");
        let e = err(b"1,2,3\n1,2,0.5\n");
        assert!(e.contains("line 2: label 0.5 is not a class"), "{e}");
        assert!(err(b"a,b,label\n").contains("no data rows"));
    }

    #[test]
    fn rejects_malformed_csv() {
        for bad in [
            &b""[..],
            b"a,b\n",
            b"1,2,3\n1,2\n",
            b"1,2,-1\n",
            b"1,2,0.5\n",
            b"1,nan,1\n",
            b"5\n",
            &[0xff, 0xfe, 0x00],
        ] {
            assert!(
                parse_csv("c", bad, LabelColumn::Last).is_err(),
                "accepted {bad:?}"
            );
        }
    }
}
