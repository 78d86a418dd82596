//! Learners fit only on the examples of one context, to compare in-context learning against:
//! k-nearest neighbours and multinomial logistic regression (the paper's Table 1 compares the
//! meta-learned Transformer with learners trained by gradient descent on the same examples).
//! Plain Rust on the CPU; deterministic (no random initialisation).

/// Examples of one context: `x` holds `n` rows of `n_features` values, `y` their classes.
#[derive(Debug, Clone, Copy)]
pub struct Examples<'a> {
    /// Feature rows, row-major.
    pub x: &'a [f32],
    /// Class of each row.
    pub y: &'a [u32],
    /// Features per row.
    pub n_features: usize,
}

impl Examples<'_> {
    fn rows(&self) -> impl Iterator<Item = (&[f32], usize)> {
        self.x
            .chunks_exact(self.n_features)
            .zip(self.y.iter().map(|&c| c as usize))
    }
}

/// The class distribution of `k`-nearest-neighbour votes (Euclidean distance; ties in distance
/// go to the earlier example). Classes outside `0..n_classes` are ignored; with no examples the
/// distribution is uniform.
pub fn knn(examples: Examples<'_>, n_classes: usize, k: usize, x: &[f32]) -> Vec<f32> {
    let mut near: Vec<(f32, usize)> = examples
        .rows()
        .filter(|&(_, c)| c < n_classes)
        .map(|(row, c)| {
            let d = row
                .iter()
                .zip(x)
                .map(|(a, b)| (a - b) * (a - b))
                .sum::<f32>();
            (d, c)
        })
        .collect();
    if near.is_empty() || k == 0 {
        return vec![1.0 / n_classes as f32; n_classes];
    }
    near.sort_by(|a, b| a.0.total_cmp(&b.0));
    let k = k.min(near.len());
    let mut votes = vec![0.0; n_classes];
    for &(_, c) in &near[..k] {
        votes[c] += 1.0 / k as f32;
    }
    votes
}

/// Training settings of [`LogisticRegression`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogisticConfig {
    /// Full-batch gradient-descent steps.
    pub steps: usize,
    /// Step size.
    pub lr: f32,
    /// L2 penalty on the weights (not the biases).
    pub l2: f32,
}

impl Default for LogisticConfig {
    fn default() -> Self {
        Self {
            steps: 100,
            lr: 0.5,
            l2: 1e-3,
        }
    }
}

/// Multinomial logistic regression (softmax of a linear map), fit by full-batch gradient
/// descent from zero weights on the mean cross-entropy.
#[derive(Debug, Clone, PartialEq)]
pub struct LogisticRegression {
    /// `[n_classes, n_features + 1]`, the bias last.
    weights: Vec<f32>,
    n_features: usize,
    n_classes: usize,
}

impl LogisticRegression {
    /// Fits the model to `examples` (classes outside `0..n_classes` are ignored). With no
    /// examples it predicts the uniform distribution.
    pub fn fit(examples: Examples<'_>, n_classes: usize, config: LogisticConfig) -> Self {
        let f = examples.n_features;
        let mut model = Self {
            weights: vec![0.0; n_classes * (f + 1)],
            n_features: f,
            n_classes,
        };
        let rows: Vec<(&[f32], usize)> = examples.rows().filter(|&(_, c)| c < n_classes).collect();
        if rows.is_empty() {
            return model;
        }
        let n = rows.len() as f32;
        let mut grad = vec![0.0f32; model.weights.len()];
        for _ in 0..config.steps {
            grad.iter_mut().for_each(|g| *g = 0.0);
            for &(row, c) in &rows {
                let p = model.predict(row);
                for (k, pk) in p.iter().enumerate() {
                    let err = (pk - if k == c { 1.0 } else { 0.0 }) / n;
                    let g = &mut grad[k * (f + 1)..(k + 1) * (f + 1)];
                    for (gi, xi) in g.iter_mut().zip(row) {
                        *gi += err * xi;
                    }
                    g[f] += err;
                }
            }
            for k in 0..n_classes {
                let w = &mut model.weights[k * (f + 1)..(k + 1) * (f + 1)];
                let g = &grad[k * (f + 1)..(k + 1) * (f + 1)];
                for i in 0..=f {
                    let decay = if i < f { config.l2 * w[i] } else { 0.0 };
                    w[i] -= config.lr * (g[i] + decay);
                }
            }
        }
        model
    }

    /// The class distribution for one feature row.
    pub fn predict(&self, x: &[f32]) -> Vec<f32> {
        let f = self.n_features;
        let logits: Vec<f32> = self
            .weights
            .chunks_exact(f + 1)
            .map(|w| w[..f].iter().zip(x).map(|(a, b)| a * b).sum::<f32>() + w[f])
            .collect();
        softmax(&logits)
    }
}

/// A numerically stable softmax.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = logits.iter().map(|&l| (l - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.iter().map(|e| e / sum).collect()
}

/// Index of the largest value (the first, on ties); `None` for an empty slice.
pub fn argmax(values: &[f32]) -> Option<usize> {
    values
        .iter()
        .enumerate()
        .fold(None, |best: Option<(usize, f32)>, (i, &v)| match best {
            Some((_, b)) if b >= v => best,
            _ => Some((i, v)),
        })
        .map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::rng;
    use rand::RngExt;

    /// Three noisy clusters in 5 dimensions; returns (train x, train y, test x, test y).
    fn clusters(per_class: usize, seed: u64) -> (Vec<f32>, Vec<u32>, Vec<f32>, Vec<u32>) {
        let mut r = rng(seed);
        let centres: Vec<Vec<f32>> = (0..3)
            .map(|_| (0..5).map(|_| r.random_range(-2.0..2.0)).collect())
            .collect();
        let mut draw = |n: usize| {
            let (mut x, mut y) = (Vec::new(), Vec::new());
            for i in 0..n * 3 {
                let c = i % 3;
                x.extend(centres[c].iter().map(|v| v + r.random_range(-0.5..0.5)));
                y.push(c as u32);
            }
            (x, y)
        };
        let (tx, ty) = draw(per_class);
        let (vx, vy) = draw(20);
        (tx, ty, vx, vy)
    }

    fn accuracy(predict: impl Fn(&[f32]) -> Vec<f32>, x: &[f32], y: &[u32]) -> f32 {
        let right = x
            .chunks_exact(5)
            .zip(y)
            .filter(|(row, c)| argmax(&predict(row)) == Some(**c as usize))
            .count();
        right as f32 / y.len() as f32
    }

    #[test]
    fn both_learn_separable_clusters_from_few_examples() {
        let (tx, ty, vx, vy) = clusters(3, 5);
        let ex = Examples {
            x: &tx,
            y: &ty,
            n_features: 5,
        };
        let knn_acc = accuracy(|x| knn(ex, 3, 1, x), &vx, &vy);
        let lr = LogisticRegression::fit(ex, 3, LogisticConfig::default());
        let lr_acc = accuracy(|x| lr.predict(x), &vx, &vy);
        assert!(knn_acc > 0.9, "kNN accuracy {knn_acc}");
        assert!(lr_acc > 0.9, "logistic regression accuracy {lr_acc}");
    }

    #[test]
    fn no_examples_give_the_uniform_distribution() {
        let ex = Examples {
            x: &[],
            y: &[],
            n_features: 5,
        };
        assert_eq!(knn(ex, 4, 3, &[0.0; 5]), vec![0.25; 4]);
        let lr = LogisticRegression::fit(ex, 4, LogisticConfig::default());
        assert_eq!(lr.predict(&[1.0; 5]), vec![0.25; 4]);
    }

    #[test]
    fn knn_votes_and_argmax() {
        let x = [0.0, 1.0, 10.0];
        let ex = Examples {
            x: &x,
            y: &[0, 0, 1],
            n_features: 1,
        };
        assert_eq!(knn(ex, 2, 3, &[9.0]), vec![2.0 / 3.0, 1.0 / 3.0]);
        assert_eq!(knn(ex, 2, 1, &[9.0]), vec![0.0, 1.0]);
        assert_eq!(argmax(&[0.1, 0.7, 0.7]), Some(1));
        assert_eq!(argmax(&[]), None);
    }
}
