//! Shared helpers for the integration tests.
#![allow(dead_code)]

use gpicl_core::Dataset;
use gpicl_core::task::rng;
use rand::RngExt;

/// A synthetic classification dataset: `n_classes` random prototypes in `width` dimensions,
/// examples = prototype + Gaussian-ish noise of scale `noise`. Z-normalised.
pub fn prototypes(n: usize, width: usize, n_classes: usize, noise: f32, seed: u64) -> Dataset {
    let mut r = rng(seed);
    let protos: Vec<f32> = (0..n_classes * width)
        .map(|_| r.random_range(-1.0f32..1.0))
        .collect();
    let mut features = Vec::with_capacity(n * width);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let c = i % n_classes;
        labels.push(c as u32);
        for k in 0..width {
            let e: f32 = r.random_range(-1.0f32..1.0) + r.random_range(-1.0f32..1.0);
            features.push(protos[c * width + k] + noise * e);
        }
    }
    let mut d = Dataset::new("prototypes", features, width, labels, None).unwrap();
    d.z_normalize();
    d
}

/// Reads a tensor into a vector (native, synchronous).
pub fn read<const D: usize>(t: burn::prelude::Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

/// Largest absolute difference between two vectors.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}
