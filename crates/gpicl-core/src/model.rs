//! The learner: a causal pre-LayerNorm Transformer over token sequences, read top to bottom.
//!
//! No positional encoding: causal attention already tells order, and an in-context learner
//! should treat its examples as a set. Weights are drawn from an explicit seed on the CPU, so
//! the same seed gives the same model on every backend.

use burn::module::{Param, ParamId};
use burn::nn::{LayerNorm, LayerNormConfig, Linear};
use burn::prelude::*;
use burn::tensor::activation::{gelu, softmax};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::task::rng;
use crate::tokens::TokenFormat;

/// The Transformer's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Width of the projected inputs (each task projects the dataset's features to this).
    pub d_in: usize,
    /// Number of output classes (datasets may use fewer).
    pub n_classes: usize,
    /// Residual stream width.
    pub d_model: usize,
    /// Transformer blocks.
    pub n_layers: usize,
    /// Attention heads (`d_model` must divide evenly).
    pub n_heads: usize,
    /// Feed-forward hidden width.
    pub d_ff: usize,
}

impl ModelConfig {
    /// Checks the shape for consistency.
    pub fn validate(&self) -> Result<(), Error> {
        let positive = [
            ("d_in", self.d_in),
            ("n_classes", self.n_classes),
            ("d_model", self.d_model),
            ("n_layers", self.n_layers),
            ("n_heads", self.n_heads),
            ("d_ff", self.d_ff),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(Error::Config(format!("model.{name} must be positive")));
            }
        }
        if self.n_classes < 2 {
            return Err(Error::Config("model.n_classes must be at least 2".into()));
        }
        if !self.d_model.is_multiple_of(self.n_heads) {
            return Err(Error::Config(format!(
                "model.d_model ({}) is not divisible by model.n_heads ({})",
                self.d_model, self.n_heads
            )));
        }
        if self.d_model > 4096 || self.d_ff > 16384 || self.n_layers > 64 || self.d_in > 4096 {
            return Err(Error::Config(
                "model is larger than this program supports".into(),
            ));
        }
        Ok(())
    }

    /// Builds the model on `device` with weights drawn from `seed`.
    pub fn init(&self, seed: u64, device: &Device) -> Result<Transformer, Error> {
        self.validate()?;
        let mut init = Init {
            rng: rng(seed),
            next_id: 1,
            device: device.clone(),
        };
        let width = TokenFormat::token_width(self.d_in, self.n_classes);
        let residual_std = 0.02 / (2.0 * self.n_layers as f32).sqrt();
        let blocks = (0..self.n_layers)
            .map(|_| Block {
                ln_attn: init.layer_norm(self.d_model),
                query: init.linear(self.d_model, self.d_model, 0.02),
                key: init.linear(self.d_model, self.d_model, 0.02),
                value: init.linear(self.d_model, self.d_model, 0.02),
                attn_out: init.linear(self.d_model, self.d_model, residual_std),
                ln_ff: init.layer_norm(self.d_model),
                ff_in: init.linear(self.d_model, self.d_ff, 0.02),
                ff_out: init.linear(self.d_ff, self.d_model, residual_std),
                n_heads: self.n_heads,
            })
            .collect();
        Ok(Transformer {
            embed: init.linear(width, self.d_model, 1.0 / (width as f32).sqrt()),
            blocks,
            ln_final: init.layer_norm(self.d_model),
            head: init.linear(self.d_model, self.n_classes, 0.02),
        })
    }
}

/// Draws parameters from one seeded stream, with stable parameter ids (so optimizer state
/// saved with a checkpoint finds its parameters again).
struct Init {
    rng: ChaCha8Rng,
    next_id: u64,
    device: Device,
}

impl Init {
    fn param<const D: usize>(&mut self, values: Vec<f32>, shape: [usize; D]) -> Param<Tensor<D>> {
        let id = ParamId::from(self.next_id);
        self.next_id += 1;
        let tensor = Tensor::<D>::from_data(TensorData::new(values, shape), &self.device);
        Param::initialized(id, tensor).set_require_grad(true)
    }

    fn linear(&mut self, d_in: usize, d_out: usize, std: f32) -> Linear {
        let w = (0..d_in * d_out)
            .map(|_| {
                let z: f32 = StandardNormal.sample(&mut self.rng);
                z * std
            })
            .collect();
        Linear {
            weight: self.param(w, [d_in, d_out]),
            bias: Some(self.param(vec![0.0; d_out], [d_out])),
        }
    }

    fn layer_norm(&mut self, d: usize) -> LayerNorm {
        let mut ln = LayerNormConfig::new(d).init(&self.device);
        ln.gamma = self.param(vec![1.0; d], [d]);
        ln.beta = Some(self.param(vec![0.0; d], [d]));
        ln
    }
}

/// One pre-LayerNorm block: causal multi-head self-attention, then a GELU feed-forward.
#[derive(Module, Debug)]
pub struct Block {
    ln_attn: LayerNorm,
    query: Linear,
    key: Linear,
    value: Linear,
    attn_out: Linear,
    ln_ff: LayerNorm,
    ff_in: Linear,
    ff_out: Linear,
    n_heads: usize,
}

impl Block {
    /// `x`: `[batch, len, d_model]`; `mask`: additive `[len, len]` (−∞ above the diagonal).
    fn forward(&self, x: Tensor<3>, mask: Tensor<2>) -> Tensor<3> {
        let [b, l, d] = x.dims();
        let (h, dh) = (self.n_heads, d / self.n_heads);
        let heads = |t: Tensor<3>| t.reshape([b, l, h, dh]).swap_dims(1, 2); // [b, h, l, dh]

        let y = self.ln_attn.forward(x.clone());
        let q = heads(self.query.forward(y.clone()));
        let k = heads(self.key.forward(y.clone()));
        let v = heads(self.value.forward(y));
        let scores = q.matmul(k.swap_dims(2, 3)).div_scalar((dh as f32).sqrt());
        let weights = softmax(scores + mask.unsqueeze::<4>(), 3);
        let context = weights.matmul(v).swap_dims(1, 2).reshape([b, l, d]);
        let x = x + self.attn_out.forward(context);

        let y = self
            .ff_out
            .forward(gelu(self.ff_in.forward(self.ln_ff.forward(x.clone()))));
        x + y
    }
}

/// The in-context learner: token embedding, blocks, final norm, class logits.
#[derive(Module, Debug)]
pub struct Transformer {
    embed: Linear,
    blocks: Vec<Block>,
    ln_final: LayerNorm,
    head: Linear,
}

impl Transformer {
    /// Class logits `[batch, len, n_classes]` for tokens `[batch, len, width]`; position i
    /// attends to positions ≤ i only.
    pub fn forward(&self, tokens: Tensor<3>) -> Tensor<3> {
        let [_, l, _] = tokens.dims();
        let device = tokens.device();
        let mask = causal_mask(l, &device);
        let mut x = self.embed.forward(tokens);
        for block in &self.blocks {
            x = block.forward(x, mask.clone());
        }
        self.head.forward(self.ln_final.forward(x))
    }
}

/// Additive causal mask: 0 on and below the diagonal, a large negative number above.
fn causal_mask(len: usize, device: &Device) -> Tensor<2> {
    let values = (0..len * len)
        .map(|i| if i % len > i / len { -1.0e9 } else { 0.0 })
        .collect::<Vec<f32>>();
    Tensor::from_data(TensorData::new(values, [len, len]), device)
}
