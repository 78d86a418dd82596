//! Parsers for dataset files. They take bytes, never paths: the caller does the I/O.
//!
//! - IDX (the MNIST format), raw or gzip-compressed: an images file and a labels file.
//! - CSV: a table, one label column and feature columns of numbers or categories
//!   ([`parse_csv`]).

use std::io::Read;

mod csv;

pub use csv::{CsvTable, LabelColumn, MAX_CATEGORIES, MAX_VALUES, parse_csv};

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
}
