//! Token layouts: how a [`Batch`] becomes the Transformer's input sequence.
//!
//! Every token is `[A·x (d_in), label one-hot (n_classes), query flag (1)]`.
//!
//! - [`TokenFormat::Paper`]: the paper's layout, one token per example: token j carries x_j and
//!   the *previous* label y_{j-1} (zeros at j = 1); the model predicts y_j at token j.
//!   The flag is always 0. Learning needs an induction-like circuit across two tokens.
//! - [`TokenFormat::Pair`]: two tokens per example: a query `[A·x_j, 0, 1]` followed by a
//!   context token `[A·x_j, onehot(y_j), 0]`; predictions are read at the queries, so query j
//!   sees the labelled examples 1..j-1. One attention layer can match x and read y from the same
//!   token, which escapes the loss plateau far sooner at small scale.
//!
//! In both, prediction j has seen exactly j-1 labelled examples, so curves are comparable.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::task::Batch;

/// How examples and labels are laid out as tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TokenFormat {
    /// One token per example, `[x_j, y_{j-1}]` (the paper).
    Paper,
    /// A query token and a labelled context token per example.
    #[default]
    Pair,
}

impl TokenFormat {
    /// Tokens per example.
    pub fn tokens_per_example(self) -> usize {
        match self {
            TokenFormat::Paper => 1,
            TokenFormat::Pair => 2,
        }
    }

    /// Width of one token for a model input width `d_in` and `n_classes` labels.
    pub fn token_width(d_in: usize, n_classes: usize) -> usize {
        d_in + n_classes + 1
    }

    /// Builds the input tokens `[batch, seq · tokens_per_example, width]` and the targets
    /// `[batch, seq]` on `device`. The projection runs on the device as one batched matmul.
    ///
    /// # Panics
    /// If `batch` carries no examples ([`Batch::x`] left empty by a sampler whose trainer
    /// gathers them on the device): only that trainer can encode it ([`crate::train::Trainer::encode`]).
    pub fn encode(
        self,
        batch: &Batch,
        n_classes: usize,
        device: &Device,
    ) -> (Tensor<3>, Tensor<2, Int>) {
        let shape = [batch.batch_size, batch.seq_len, batch.n_in];
        assert_eq!(
            batch.x.len(),
            shape.iter().product::<usize>(),
            "the batch's x does not hold batch × seq × n_in values; a batch whose examples are \
             gathered on the device (x left empty) is encoded by the trainer that sampled it"
        );
        let x = Tensor::<3>::from_data(TensorData::new(batch.x.clone(), shape), device);
        self.encode_rows(batch, x, n_classes, device)
    }

    /// [`TokenFormat::encode`] with the batch's raw rows already on `device` as `x`
    /// (`[batch, seq, n_in]`, the values of [`Batch::x`]): the trainer gathers them there from
    /// the dataset's rows kept on a GPU instead of uploading them.
    pub fn encode_rows(
        self,
        batch: &Batch,
        x: Tensor<3>,
        n_classes: usize,
        device: &Device,
    ) -> (Tensor<3>, Tensor<2, Int>) {
        let (b, t) = (batch.batch_size, batch.seq_len);
        let a = batch
            .projection
            .to_device(b, batch.n_in, batch.d_in, device);
        let projected = x.matmul(a); // [b, t, d_in]
        let k = self.tokens_per_example();
        let projected = match self {
            TokenFormat::Paper => projected,
            TokenFormat::Pair => {
                projected
                    .unsqueeze_dim::<4>(2)
                    .repeat_dim(2, 2)
                    .reshape([b, 2 * t, batch.d_in])
            }
        };
        let side = n_classes + 1;
        let mut labels = Vec::with_capacity(b * t * k * side);
        for seq in batch.labels.chunks(t) {
            for j in 0..t {
                let previous = j.checked_sub(1).map(|i| seq[i] as usize);
                labels.extend(self.label_parts(seq[j] as usize, previous, n_classes));
            }
        }
        let labels = Tensor::<3>::from_data(TensorData::new(labels, [b, t * k, side]), device);
        let tokens = Tensor::cat(vec![projected, labels], 2);
        let targets: Vec<i64> = batch.labels.iter().map(|&y| y as i64).collect();
        let targets = Tensor::<2, Int>::from_data(TensorData::new(targets, [b, t]), device);
        (tokens, targets)
    }

    /// The label-and-flag part (`n_classes + 1` values) of each of one example's tokens, in
    /// order (`tokens_per_example` parts): [`TokenFormat::Paper`]: `[onehot(previous), 0]`;
    /// [`TokenFormat::Pair`]: `[0…, 1]` (the query), then `[onehot(label), 0]`. The first part,
    /// the one whose output predicts the example, never carries the example's own `label`.
    pub fn label_parts(self, label: usize, previous: Option<usize>, n_classes: usize) -> Vec<f32> {
        let side = n_classes + 1;
        let mut parts = vec![0f32; self.tokens_per_example() * side];
        match self {
            TokenFormat::Paper => {
                if let Some(y) = previous {
                    parts[y] = 1.0;
                }
            }
            TokenFormat::Pair => {
                parts[n_classes] = 1.0;
                parts[side + label] = 1.0;
            }
        }
        parts
    }

    /// Selects the logits that predict each example: `[batch, seq·k, classes]` →
    /// `[batch, seq, classes]`.
    pub fn prediction_logits(self, logits: Tensor<3>) -> Tensor<3> {
        match self {
            TokenFormat::Paper => logits,
            TokenFormat::Pair => {
                let [b, l, c] = logits.dims();
                logits
                    .reshape([b, l / 2, 2, c])
                    .narrow(2, 0, 1)
                    .reshape([b, l / 2, c])
            }
        }
    }
}
