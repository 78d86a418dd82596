//! The held-out suite: small classification datasets no learner meta-trains on, made
//! reproducibly from seeds (Gaussian mixtures, XOR-like, linearly separable, rings; several
//! dimensions and class counts), to measure how general an in-context learner is against
//! learners fit on the same context (`gpicl suite`, README "A held-out suite"). Shipped
//! tables join them where the CLI finds them: UCI digits, and four UCI tables of categories
//! (car evaluation, tic-tac-toe endgames, congressional votes, mushrooms).

use rand::RngExt;
use rand_distr::{Distribution, StandardNormal};

use crate::task::{mix_seed, rng};
use crate::{Dataset, Error};

/// Rows of each synthetic dataset.
pub const ROWS: usize = 600;

/// The kinds of synthetic dataset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// Isotropic Gaussian clusters (unit deviation) around random centres, N(0, 2.5²/d) per
    /// coordinate: two centres lie ~3.5 deviations apart in any dimension, so the clusters
    /// overlap a little.
    Blobs,
    /// The class is the parity of the signs of the first two coordinates (uniform in
    /// [-1, 1]); any further coordinates are noise.
    Xor,
    /// The class is the largest of a random linear map of N(0, 1) inputs (two classes: the
    /// sign of one).
    Linear,
    /// Two classes on concentric rings (radius 1 and 2, noise 0.25) in the first two
    /// coordinates; any further coordinates are noise.
    Rings,
}

/// One synthetic dataset of the suite.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spec {
    /// What kind.
    pub kind: Kind,
    /// Classes.
    pub classes: usize,
    /// Features.
    pub features: usize,
}

impl Spec {
    /// Its name, e.g. `blobs-3c-4d`.
    pub fn name(&self) -> String {
        let kind = match self.kind {
            Kind::Blobs => "blobs",
            Kind::Xor => "xor",
            Kind::Linear => "linear",
            Kind::Rings => "rings",
        };
        format!("{kind}-{}c-{}d", self.classes, self.features)
    }

    /// The dataset, from `seed` ([`ROWS`] rows, as read: not yet standardised).
    pub fn make(&self, seed: u64) -> Result<Dataset, Error> {
        let (k, d) = (self.classes, self.features);
        let mut r = rng(mix_seed(seed, self.name().bytes().map(u64::from).sum()));
        let normal = |r: &mut rand_chacha::ChaCha8Rng| -> f32 { StandardNormal.sample(r) };
        let mut features = Vec::with_capacity(ROWS * d);
        let mut labels = Vec::with_capacity(ROWS);
        match self.kind {
            Kind::Blobs => {
                let spread = 2.5 / (d as f32).sqrt();
                let centres: Vec<f32> = (0..k * d).map(|_| spread * normal(&mut r)).collect();
                for i in 0..ROWS {
                    let c = i % k;
                    features.extend((0..d).map(|f| centres[c * d + f] + normal(&mut r)));
                    labels.push(c as u32);
                }
            }
            Kind::Xor => {
                for _ in 0..ROWS {
                    let x: Vec<f32> = (0..d).map(|_| r.random_range(-1.0f32..1.0)).collect();
                    labels.push(u32::from((x[0] > 0.0) != (x[1] > 0.0)));
                    features.extend(x);
                }
            }
            Kind::Linear => {
                let w: Vec<f32> = (0..k.max(2) * d).map(|_| normal(&mut r)).collect();
                for _ in 0..ROWS {
                    let x: Vec<f32> = (0..d).map(|_| normal(&mut r)).collect();
                    let score = |c: usize| -> f32 { (0..d).map(|f| w[c * d + f] * x[f]).sum() };
                    let label = if k == 2 {
                        usize::from(score(0) > 0.0)
                    } else {
                        (0..k)
                            .max_by(|&a, &b| score(a).total_cmp(&score(b)))
                            .unwrap_or(0)
                    };
                    labels.push(label as u32);
                    features.extend(x);
                }
            }
            Kind::Rings => {
                for i in 0..ROWS {
                    let c = i % 2;
                    let angle = r.random_range(0.0f32..std::f32::consts::TAU);
                    let radius = 1.0 + c as f32 + 0.25 * normal(&mut r);
                    let mut x = vec![radius * angle.cos(), radius * angle.sin()];
                    x.extend((2..d).map(|_| normal(&mut r)));
                    labels.push(c as u32);
                    features.extend(x);
                }
            }
        }
        Dataset::new(self.name(), features, d, labels, None)
    }
}

/// The suite's synthetic datasets.
pub const SYNTHETIC: &[Spec] = &[
    Spec {
        kind: Kind::Blobs,
        classes: 3,
        features: 4,
    },
    Spec {
        kind: Kind::Blobs,
        classes: 5,
        features: 13,
    },
    Spec {
        kind: Kind::Blobs,
        classes: 10,
        features: 30,
    },
    Spec {
        kind: Kind::Xor,
        classes: 2,
        features: 2,
    },
    Spec {
        kind: Kind::Xor,
        classes: 2,
        features: 6,
    },
    Spec {
        kind: Kind::Linear,
        classes: 2,
        features: 10,
    },
    Spec {
        kind: Kind::Linear,
        classes: 4,
        features: 6,
    },
    Spec {
        kind: Kind::Rings,
        classes: 2,
        features: 3,
    },
];

/// The seed the suite's datasets are made from (`gpicl suite --seed` may change it).
pub const SEED: u64 = 2026;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datasets_are_reproducible_shaped_and_use_every_class() {
        for spec in SYNTHETIC {
            let a = spec.make(SEED).unwrap();
            assert_eq!(a, spec.make(SEED).unwrap(), "{}", spec.name());
            assert_ne!(a.features, spec.make(SEED + 1).unwrap().features);
            assert_eq!(
                (a.len(), a.n_features, a.n_classes),
                (ROWS, spec.features, spec.classes)
            );
            for c in 0..spec.classes as u32 {
                let n = a.labels.iter().filter(|&&y| y == c).count();
                assert!(
                    n >= ROWS / (8 * spec.classes),
                    "{}: class {c} has {n} rows",
                    spec.name()
                );
            }
        }
    }
}
