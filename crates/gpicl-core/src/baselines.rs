//! Learners fit only on the examples of one context, to compare in-context learning against:
//! k-nearest neighbours, multinomial logistic regression and a small MLP trained by Adam (the
//! paper's Table 1 compares the meta-learned Transformer with learners trained by gradient
//! descent on the same examples). Plain Rust on the CPU; deterministic (the MLP's initial
//! weights come from an explicit seed).

use rand_distr::{Distribution, StandardNormal};

use crate::eval::{EvalSet, Hits};
use crate::task::rng;

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

/// Squared Euclidean distance between two rows.
fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(u, v)| (u - v) * (u - v)).sum()
}

/// The row of `rows` nearest to `x` (Euclidean; the earlier on ties, as [`knn`] breaks them):
/// the example 1-NN copies. `None` without rows.
pub fn nearest<'a>(rows: impl IntoIterator<Item = &'a [f32]>, x: &[f32]) -> Option<usize> {
    rows.into_iter()
        .map(|row| squared_distance(row, x))
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(i, _)| i)
}

/// The class distribution of `k`-nearest-neighbour votes (Euclidean distance; ties in distance
/// go to the earlier example). Classes outside `0..n_classes` are ignored; with no examples the
/// distribution is uniform.
pub fn knn(examples: Examples<'_>, n_classes: usize, k: usize, x: &[f32]) -> Vec<f32> {
    let mut near: Vec<(f32, usize)> = examples
        .rows()
        .filter(|&(_, c)| c < n_classes)
        .map(|(row, c)| (squared_distance(row, x), c))
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
                    add_scaled(&mut grad[k * (f + 1)..(k + 1) * (f + 1)], row, err);
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
        softmax(&affine(&self.weights, self.n_features, x))
    }
}

/// Adds `scale · [x, 1]` to one output's gradient row (the weights, then the bias): the
/// gradient of an [`affine`] output with respect to its row.
fn add_scaled(grad_row: &mut [f32], x: &[f32], scale: f32) {
    let (w, b) = grad_row.split_at_mut(x.len());
    for (g, xi) in w.iter_mut().zip(x) {
        *g += scale * xi;
    }
    b[0] += scale;
}

/// `W·x + b` for weights stored one output per row of `width + 1` values, the bias last (the
/// layout of [`LogisticRegression`] and [`Mlp`]).
fn affine(weights: &[f32], width: usize, x: &[f32]) -> Vec<f32> {
    weights
        .chunks_exact(width + 1)
        .map(|w| w[..width].iter().zip(x).map(|(a, b)| a * b).sum::<f32>() + w[width])
        .collect()
}

/// Training settings of [`Mlp`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MlpConfig {
    /// Hidden units (one ReLU layer).
    pub hidden: usize,
    /// Full-batch Adam steps.
    pub steps: usize,
    /// Adam step size.
    pub lr: f32,
    /// Seed of the initial weights.
    pub seed: u64,
}

impl Default for MlpConfig {
    fn default() -> Self {
        Self {
            hidden: 64,
            steps: 100,
            lr: 0.01,
            seed: 0,
        }
    }
}

/// A one-hidden-layer ReLU network, fit by full-batch Adam on the mean cross-entropy of the
/// context's examples (He-initialised from [`MlpConfig::seed`]; biases start at zero).
#[derive(Debug, Clone, PartialEq)]
pub struct Mlp {
    /// `[hidden, n_features + 1]`, the bias last.
    w1: Vec<f32>,
    /// `[n_classes, hidden + 1]`, the bias last.
    w2: Vec<f32>,
    n_features: usize,
    hidden: usize,
}

impl Mlp {
    /// Fits the network to `examples` (classes outside `0..n_classes` are ignored). With no
    /// examples it predicts the uniform distribution.
    pub fn fit(examples: Examples<'_>, n_classes: usize, config: MlpConfig) -> Self {
        let (f, h) = (examples.n_features, config.hidden.max(1));
        let mut r = rng(config.seed);
        let mut normal = |n: usize, fan_in: usize, width: usize| -> Vec<f32> {
            let std = (2.0 / fan_in as f32).sqrt();
            (0..n)
                .map(|i| {
                    let z: f32 = StandardNormal.sample(&mut r);
                    if i % width == width - 1 { 0.0 } else { z * std }
                })
                .collect()
        };
        let mut model = Self {
            w1: normal(h * (f + 1), f.max(1), f + 1),
            w2: vec![0.0; n_classes * (h + 1)],
            n_features: f,
            hidden: h,
        };
        let rows: Vec<(&[f32], usize)> = examples.rows().filter(|&(_, c)| c < n_classes).collect();
        if rows.is_empty() {
            return model;
        }
        let n = rows.len() as f32;
        let (mut m1, mut v1) = (vec![0.0; model.w1.len()], vec![0.0; model.w1.len()]);
        let (mut m2, mut v2) = (vec![0.0; model.w2.len()], vec![0.0; model.w2.len()]);
        let mut g1 = vec![0.0f32; model.w1.len()];
        let mut g2 = vec![0.0f32; model.w2.len()];
        for t in 1..=config.steps {
            g1.iter_mut().for_each(|g| *g = 0.0);
            g2.iter_mut().for_each(|g| *g = 0.0);
            for &(row, c) in &rows {
                let a = model.hidden_activations(row);
                let p = softmax(&model.logits(&a));
                let mut da = vec![0.0f32; h];
                for (k, pk) in p.iter().enumerate() {
                    let err = (pk - if k == c { 1.0 } else { 0.0 }) / n;
                    let w = &model.w2[k * (h + 1)..(k + 1) * (h + 1)];
                    let g = &mut g2[k * (h + 1)..(k + 1) * (h + 1)];
                    for j in 0..h {
                        g[j] += err * a[j];
                        da[j] += err * w[j];
                    }
                    g[h] += err;
                }
                for j in 0..h {
                    if a[j] <= 0.0 {
                        continue;
                    }
                    add_scaled(&mut g1[j * (f + 1)..(j + 1) * (f + 1)], row, da[j]);
                }
            }
            adam_update(&mut model.w1, &g1, &mut m1, &mut v1, config.lr, t);
            adam_update(&mut model.w2, &g2, &mut m2, &mut v2, config.lr, t);
        }
        model
    }

    fn hidden_activations(&self, x: &[f32]) -> Vec<f32> {
        let mut a = affine(&self.w1, self.n_features, x);
        a.iter_mut().for_each(|v| *v = v.max(0.0));
        a
    }

    fn logits(&self, a: &[f32]) -> Vec<f32> {
        affine(&self.w2, self.hidden, a)
    }

    /// The class distribution for one feature row.
    pub fn predict(&self, x: &[f32]) -> Vec<f32> {
        softmax(&self.logits(&self.hidden_activations(x)))
    }
}

/// One Adam step (β 0.9 / 0.999, ε 1e-8) of `w` along `g`; `t` counts from 1.
fn adam_update(w: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], lr: f32, t: usize) {
    let (b1, b2) = (0.9f32, 0.999f32);
    let (c1, c2) = (1.0 - b1.powi(t as i32), 1.0 - b2.powi(t as i32));
    for i in 0..w.len() {
        m[i] = b1 * m[i] + (1.0 - b1) * g[i];
        v[i] = b2 * v[i] + (1.0 - b2) * g[i] * g[i];
        w[i] -= lr * (m[i] / c1) / ((v[i] / c2).sqrt() + 1e-8);
    }
}

/// The positions a baseline curve is usually scored at (fitting one model per sequence and
/// position costs): 1 to 5, every 5th, and the last.
pub fn curve_positions(seq_len: usize) -> Vec<usize> {
    (1..=seq_len)
        .filter(|&k| k <= 5 || k % 5 == 0 || k == seq_len)
        .collect()
}

/// A learner fit on one context only.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Baseline {
    /// k-nearest neighbours ([`knn`]).
    Knn {
        /// Neighbours that vote.
        k: usize,
    },
    /// Logistic regression ([`LogisticRegression`]).
    Logistic(LogisticConfig),
    /// A small MLP ([`Mlp`]).
    Mlp(MlpConfig),
}

/// What a baseline is fit on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Inputs {
    /// Each task's projected inputs, the learner's (the paper's protocol: the same view of the
    /// data for every learner).
    #[default]
    Projected,
    /// The dataset's own features as loaded (a table standardised column by column), before
    /// any projection: the baseline on the table itself. A random projection is not a
    /// rotation, so it can cost a baseline accuracy that it does not cost on the table.
    Raw,
}

impl Baseline {
    /// The three baselines with their default settings: 1-NN, logistic regression, MLP.
    pub fn standard() -> [Baseline; 3] {
        [
            Baseline::Knn { k: 1 },
            Baseline::Logistic(LogisticConfig::default()),
            Baseline::Mlp(MlpConfig::default()),
        ]
    }

    /// A short name for tables and legends.
    pub fn name(&self) -> String {
        match self {
            Baseline::Knn { k } => format!("{k}-NN"),
            Baseline::Logistic(_) => "logistic regression".into(),
            Baseline::Mlp(c) => format!("MLP ({} hidden, Adam)", c.hidden),
        }
    }

    /// The class distribution for `x` after fitting on `examples`.
    pub fn predict(&self, examples: Examples<'_>, n_classes: usize, x: &[f32]) -> Vec<f32> {
        match *self {
            Baseline::Knn { k } => knn(examples, n_classes, k, x),
            Baseline::Logistic(c) => LogisticRegression::fit(examples, n_classes, c).predict(x),
            Baseline::Mlp(c) => Mlp::fit(examples, n_classes, c).predict(x),
        }
    }

    /// Accuracy at each of `positions` (1-based: at position k the baseline is fit on the k−1
    /// examples before it and predicts the k-th), averaged over the first `max_sequences`
    /// sequences of `set`. The baseline sees what the in-context learner sees: each task's
    /// projected inputs and permuted labels, and the set's number of classes. Positions past the
    /// sequence length are skipped.
    pub fn curve(
        &self,
        set: &EvalSet,
        positions: &[usize],
        max_sequences: usize,
    ) -> Vec<(usize, f32)> {
        self.curve_on(set, positions, max_sequences, Inputs::Projected)
    }

    /// [`Baseline::curve`], fit on `inputs`: the projected inputs the learner sees, or the
    /// dataset's own features (the same examples, labels and positions).
    pub fn curve_on(
        &self,
        set: &EvalSet,
        positions: &[usize],
        max_sequences: usize,
        inputs: Inputs,
    ) -> Vec<(usize, f32)> {
        self.hits_on(set, positions, max_sequences, inputs).curve()
    }

    /// The outcomes behind [`Baseline::curve_on`], for statistics over sequences: for each of
    /// the first `max_sequences` sequences, whether the baseline was right at each of
    /// `positions` within the sequence.
    pub fn hits_on(
        &self,
        set: &EvalSet,
        positions: &[usize],
        max_sequences: usize,
        inputs: Inputs,
    ) -> Hits {
        let n_classes = set.classes;
        let positions: Vec<usize> = positions
            .iter()
            .copied()
            .filter(|&k| k >= 1 && k <= set.seq_len())
            .collect();
        let mut values = Vec::new();
        let mut seen = 0;
        'sets: for batch in &set.batches {
            for b in 0..batch.batch_size {
                if seen == max_sequences {
                    break 'sets;
                }
                seen += 1;
                let (z, d) = match inputs {
                    Inputs::Projected => (batch.projected(b), batch.d_in),
                    Inputs::Raw => {
                        let n = batch.seq_len * batch.n_in;
                        (batch.x[b * n..(b + 1) * n].to_vec(), batch.n_in)
                    }
                };
                let y = &batch.labels[b * batch.seq_len..(b + 1) * batch.seq_len];
                values.extend(positions.iter().map(|&k| {
                    let examples = Examples {
                        x: &z[..(k - 1) * d],
                        y: &y[..k - 1],
                        n_features: d,
                    };
                    let p = self.predict(examples, n_classes, &z[(k - 1) * d..k * d]);
                    f32::from(u8::from(argmax(&p) == Some(y[k - 1] as usize)))
                }));
            }
        }
        Hits { positions, values }
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
        let mlp = Mlp::fit(ex, 3, MlpConfig::default());
        let mlp_acc = accuracy(|x| mlp.predict(x), &vx, &vy);
        assert!(knn_acc > 0.9, "kNN accuracy {knn_acc}");
        assert!(lr_acc > 0.9, "logistic regression accuracy {lr_acc}");
        assert!(mlp_acc > 0.9, "MLP accuracy {mlp_acc}");
        let untrained = Mlp::fit(
            ex,
            3,
            MlpConfig {
                steps: 0,
                ..MlpConfig::default()
            },
        );
        assert!(accuracy(|x| untrained.predict(x), &vx, &vy) < 0.5);
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
        let mlp = Mlp::fit(ex, 4, MlpConfig::default());
        assert_eq!(mlp.predict(&[1.0; 5]), vec![0.25; 4]);
    }

    #[test]
    fn baselines_on_raw_inputs_see_what_a_projection_hides() {
        // Two classes told apart by feature 0 alone; two features of loud noise beside it.
        // Projected to one input, the noise drowns the class; logistic regression on the three
        // features finds it.
        let mut r = rng(3);
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for i in 0..400 {
            let c = (i % 2) as u32;
            x.push(if c == 0 { -1.0 } else { 1.0 } + r.random_range(-0.3..0.3));
            x.push(r.random_range(-10.0..10.0));
            x.push(r.random_range(-10.0..10.0));
            y.push(c);
        }
        let data = crate::dataset::Dataset::new("sign", x, 3, y, None).unwrap();
        let set = EvalSet::unseen("sign", &data, 32, 40, 1, 2, 9).unwrap();
        let lr = Baseline::Logistic(LogisticConfig::default());
        let last: Vec<usize> = (31..=40).collect();
        let mean = |c: Vec<(usize, f32)>| c.iter().map(|p| p.1).sum::<f32>() / c.len() as f32;
        let raw = mean(lr.curve_on(&set, &last, 32, Inputs::Raw));
        let projected = mean(lr.curve(&set, &last, 32));
        assert!(raw > 0.9, "on the raw features: {raw}");
        assert!(projected < 0.8, "projected to one input: {projected}");
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
