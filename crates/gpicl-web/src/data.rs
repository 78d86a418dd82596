//! The page's datasets: which bundle files it fetches and how their bytes become datasets.
//! Fetching is the browser's job (`fetch.rs`); this part is pure and tested natively.
//!
//! The page fetches its inputs already pooled (`cargo xtask data` derives these bundles from
//! the full 28×28 ones the CLI reads): each image as the sums of its 4×4 pixel blocks, 16-bit
//! IDX. A sum divided by 16 is exactly the average [`Dataset::avg_pool`] computes from the
//! full image, so the page's datasets equal the CLI's bit for bit (tested) at a quarter of
//! the download and a sixteenth of the memory. Only the step-through's images are full size
//! (the page pools them for the pretrained learner, as it pools the pad's drawings).

use gpicl_core::manifest::InputStats;
use gpicl_core::parse::parse_idx_pair_compact;
use gpicl_core::{Dataset, Error};

use crate::drawing::normalized;

/// The bundle files the training worker fetches, relative to the page (trunk copies them to
/// `data/`), in the order [`PageData::parse`] takes their bytes.
pub const TRAIN_FILES: [&str; 6] = [
    "data/mnist-train-images-pool4-idx3-short.gz",
    "data/mnist-train-labels-idx1-ubyte.gz",
    "data/mnist-t10k-images-pool4-idx3-short.gz",
    "data/mnist-t10k-labels-idx1-ubyte.gz",
    "data/fashion-mnist-t10k-images-pool4-idx3-short.gz",
    "data/fashion-mnist-t10k-labels-idx1-ubyte.gz",
];

/// The bundle files the page's thread fetches for the step-through, in the order
/// [`WalkData::parse`] takes their bytes: the first 1 000 MNIST test images at full size.
pub const WALK_FILES: [&str; 2] = [
    "data/mnist-t10k-images-first1000-idx3-ubyte.gz",
    "data/mnist-t10k-labels-first1000-idx1-ubyte.gz",
];

/// The page's image pooling: 28×28 → 7×7 (49 features), as the `browser` preset.
pub const POOL: usize = 4;

/// Everything a run trains and evaluates on (the worker's).
#[derive(Debug)]
pub struct PageData {
    /// MNIST training images, pooled and normalised: meta-training.
    pub train: Dataset,
    /// MNIST test images, pooled and normalised: unseen tasks.
    pub test: Dataset,
    /// Fashion-MNIST test images, pooled and normalised: an unseen dataset.
    pub fashion: Dataset,
}

/// What the step-through needs (the page's thread): the examples it shows and the pretrained
/// learner's view of them. Its tasks are drawn from MNIST test digits or from a visitor's own
/// table ([`crate::yours::Sample`]).
#[derive(Debug, PartialEq)]
pub struct WalkData {
    /// What the examples are, in a few words ("MNIST test digits", a file's name).
    pub about: String,
    /// The examples as the learner takes them before its task's projection: MNIST's pooled as
    /// the training data was and normalised with the learner's own statistics (as the pad's
    /// drawings are), a table's as `gpicl eval` prepares it.
    pub inputs: Dataset,
    /// The same examples as the step-through shows them: images (when `image_side` is set;
    /// MNIST's at full resolution, raw 0..=255) or rows of numbers as the file has them.
    pub shown: Dataset,
    /// Show each example's class by its name in the file, and the learner's guesses as those
    /// names (a visitor's table); else by the label the task renamed it to (MNIST).
    pub named: bool,
}

/// Parses a pooled bundle (block sums, 16-bit IDX) and its labels into the block averages:
/// the dataset `parse_idx_pair(full images).avg_pool(POOL)` gives, bit for bit, before
/// normalisation. It is held compact ([`Dataset::compact`]: each block sum is its own code)
/// and never as f32 values: a WebAssembly memory never shrinks, and 60 000 rows as f32 would
/// raise the worker's for good by 11 MiB.
pub fn parse_pooled(name: &str, images: &[u8], labels: &[u8]) -> Result<Dataset, Error> {
    let mut d = parse_idx_pair_compact(name, images, labels)?;
    if d.n_features != 49 || d.image_side != Some(7) {
        return Err(Error::Data(format!(
            "{name}: a pooled bundle holds 7×7 images, found {} features",
            d.n_features
        )));
    }
    let block = (POOL * POOL) as f32;
    d.map_values(|v| v / block);
    Ok(d)
}

fn normalised(mut d: Dataset) -> Dataset {
    d.z_normalize();
    d
}

impl PageData {
    /// Parses the bytes of [`TRAIN_FILES`], in that order, one dataset after the other, each
    /// held compact ([`parse_pooled`]: 16-bit codes, 2 bytes a value instead of 4; the
    /// worker's WebAssembly memory never shrinks, so its data is most of what it keeps).
    pub fn parse(files: &[Vec<u8>; 6]) -> Result<Self, Error> {
        Ok(Self {
            train: normalised(parse_pooled("mnist", &files[0], &files[1])?),
            test: normalised(parse_pooled("mnist", &files[2], &files[3])?),
            fashion: normalised(parse_pooled("fashion-mnist", &files[4], &files[5])?),
        })
    }
}

impl WalkData {
    /// Parses the bytes of [`WALK_FILES`], in that order; `stats` are the learner's.
    pub fn parse(files: &[Vec<u8>; 2], stats: InputStats) -> Result<Self, Error> {
        let shown = parse_idx_pair_compact("mnist", &files[0], &files[1])?;
        let mut inputs = shown.avg_pool(POOL)?;
        inputs.features = normalized(&inputs.features, stats);
        Ok(Self {
            about: "MNIST test digits".into(),
            inputs,
            // 256 pixel values: 2 bytes each instead of 4 (3 MiB → 1.5 in the page's memory).
            shown,
            named: false,
        })
    }
}
