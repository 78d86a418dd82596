//! The page's datasets: which bundle files it fetches and how their bytes become datasets.
//! Fetching is the browser's job (`fetch.rs`); this part is pure and tested natively.

use gpicl_core::parse::parse_idx_pair;
use gpicl_core::{Dataset, Error};

/// The bundle files the page fetches, relative to the page (trunk copies `web/data` to
/// `data/`), in the order [`PageData::parse`] takes their bytes.
pub const FILES: [&str; 6] = [
    "data/mnist-train-images-idx3-ubyte.gz",
    "data/mnist-train-labels-idx1-ubyte.gz",
    "data/mnist-t10k-images-idx3-ubyte.gz",
    "data/mnist-t10k-labels-idx1-ubyte.gz",
    "data/fashion-mnist-t10k-images-idx3-ubyte.gz",
    "data/fashion-mnist-t10k-labels-idx1-ubyte.gz",
];

/// The page's image pooling: 28×28 → 7×7 (49 features), as the `browser` preset.
pub const POOL: usize = 4;

/// Everything the page trains and evaluates on.
#[derive(Debug)]
pub struct PageData {
    /// MNIST training images, pooled and normalised: meta-training.
    pub train: Dataset,
    /// MNIST test images, pooled and normalised: unseen tasks.
    pub test: Dataset,
    /// Fashion-MNIST test images, pooled and normalised: an unseen dataset.
    pub fashion: Dataset,
    /// MNIST test images at full resolution, raw 0..=255: what the step-through shows.
    pub test_pixels: Dataset,
}

impl PageData {
    /// Parses the bytes of [`FILES`], in that order.
    pub fn parse(files: &[Vec<u8>; 6]) -> Result<Self, Error> {
        let train = parse_idx_pair("mnist", &files[0], &files[1])?.prepared(POOL)?;
        let test_pixels = parse_idx_pair("mnist", &files[2], &files[3])?;
        let test = test_pixels.clone().prepared(POOL)?;
        let fashion = parse_idx_pair("fashion-mnist", &files[4], &files[5])?.prepared(POOL)?;
        Ok(Self {
            train,
            test,
            fashion,
            test_pixels,
        })
    }
}
