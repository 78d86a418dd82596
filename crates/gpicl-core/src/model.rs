//! The learner: a causal pre-LayerNorm Transformer over token sequences, read top to bottom,
//! or (to compare state sizes, as the paper does) a stack of residual LSTM layers in its place.
//!
//! No positional encoding: causal attention already tells order, and an in-context learner
//! should treat its examples as a set. Weights are drawn from an explicit seed on the CPU, so
//! the same seed gives the same model on every backend.

use burn::module::{Param, ParamId};
use burn::nn::{LayerNorm, LayerNormConfig, Linear};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::kernels::{causal_attention, gelu, layer_norm};
use crate::task::rng;
use crate::tokens::TokenFormat;

/// The sequence model between the token embedding and the class head.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    /// Causal self-attention blocks: the state (keys and values) grows with every token.
    #[default]
    Transformer,
    /// Residual LSTM layers of width `d_model` (`n_heads` and `d_ff` unused): a fixed-size
    /// state of a hidden and a cell vector per layer.
    Lstm,
}

impl Arch {
    fn is_transformer(&self) -> bool {
        *self == Arch::Transformer
    }
}

/// The model's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Transformer (the default, left out of files) or LSTM.
    #[serde(default, skip_serializing_if = "Arch::is_transformer")]
    pub arch: Arch,
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

    /// Number of trained parameters.
    pub fn param_count(&self) -> usize {
        let (w, d, f) = (
            TokenFormat::token_width(self.d_in, self.n_classes),
            self.d_model,
            self.d_ff,
        );
        let layer = match self.arch {
            // Q, K, V, out (with biases), two norms, the feed-forward.
            Arch::Transformer => 4 * (d * d + d) + 4 * d + (d * f + f) + (f * d + d),
            // A norm, input and hidden maps to four gates (the input map with biases), the
            // output map.
            Arch::Lstm => 2 * d + (d * 4 * d + 4 * d) + d * 4 * d + (d * d + d),
        };
        (w * d + d) + self.n_layers * layer + 2 * d + (d * self.n_classes + self.n_classes)
    }

    /// Floats of state per sequence after `tokens` tokens: every layer's keys and values for
    /// the Transformer (growing with the context), a hidden and a cell vector per layer for the
    /// LSTM (fixed).
    pub fn state_size(&self, tokens: usize) -> usize {
        match self.arch {
            Arch::Transformer => self.n_layers * 2 * self.d_model * tokens,
            Arch::Lstm => self.n_layers * 2 * self.d_model,
        }
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
        let embed = init.linear(width, self.d_model, 1.0 / (width as f32).sqrt());
        let layers = match self.arch {
            Arch::Transformer => 0,
            Arch::Lstm => self.n_layers,
        };
        let lstm = (0..layers)
            .map(|_| LstmLayer {
                ln: init.layer_norm(self.d_model),
                input: init.lstm_gates(self.d_model),
                hidden: init.linear_no_bias(self.d_model, 4 * self.d_model, 0.02),
                out: init.linear(self.d_model, self.d_model, residual_std),
            })
            .collect();
        let blocks = (0..self.n_layers - layers)
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
            embed,
            blocks,
            lstm,
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

    fn linear_no_bias(&mut self, d_in: usize, d_out: usize, std: f32) -> Linear {
        Linear {
            bias: None,
            ..self.linear(d_in, d_out, std)
        }
    }

    /// An LSTM's input map to its four gates (input, forget, cell, output), with the forget
    /// gate's bias at 1 (so the cell keeps its memory at the start of training).
    fn lstm_gates(&mut self, d: usize) -> Linear {
        let mut l = self.linear(d, 4 * d, 1.0 / (d as f32).sqrt());
        let bias = (0..4 * d)
            .map(|i| if (d..2 * d).contains(&i) { 1.0 } else { 0.0 })
            .collect();
        l.bias = Some(self.param(bias, [4 * d]));
        l
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
    /// `x`: the new positions `[batch, new, d_model]`; `past`: keys and values of the earlier
    /// positions (`[batch, past, heads, d_head]` each), if any. Position i attends to every
    /// earlier position and to itself. Returns the new residual stream and the keys and values
    /// of all positions (past and new), the cache for the next call.
    /// Also returns the attention weights `[batch, heads, new, total]`.
    fn forward(
        &self,
        x: Tensor<3>,
        past: Option<&LayerCache>,
    ) -> (Tensor<3>, LayerCache, Tensor<4>) {
        let [b, l, d] = x.dims();
        let (h, dh) = (self.n_heads, d / self.n_heads);
        let heads = |t: Tensor<3>| t.reshape([b, l, h, dh]);

        let y = layer_norm(&self.ln_attn, x.clone());
        let q = heads(self.query.forward(y.clone()));
        let mut k = heads(self.key.forward(y.clone()));
        let mut v = heads(self.value.forward(y));
        if let Some(LayerCache::Attention { key, value }) = past {
            k = Tensor::cat(vec![key.clone(), k], 1);
            v = Tensor::cat(vec![value.clone(), v], 1);
        }
        let (context, weights) =
            causal_attention(q, k.clone(), v.clone(), 1.0 / (dh as f32).sqrt());
        let x = x + self.attn_out.forward(context.reshape([b, l, d]));

        let y = self
            .ff_out
            .forward(gelu(self.ff_in.forward(layer_norm(&self.ln_ff, x.clone()))));
        (x + y, LayerCache::Attention { key: k, value: v }, weights)
    }
}

/// One residual LSTM layer: `x + out(LSTM(LayerNorm(x)))`, hidden size `d_model`. Its state
/// is a hidden and a cell vector: constant in the number of tokens seen, where a Transformer
/// block's keys and values grow with every token.
#[derive(Module, Debug)]
pub struct LstmLayer {
    ln: LayerNorm,
    /// Input → the four gates (input, forget, cell, output), `[d, 4d]`.
    input: Linear,
    /// Hidden → the four gates, `[d, 4d]`, no bias.
    hidden: Linear,
    /// Hidden → residual stream.
    out: Linear,
}

impl LstmLayer {
    /// Runs the new positions `x` `[batch, new, d]` one at a time from `past` (zeros if none);
    /// returns the new residual stream and the state after the last position.
    fn forward(&self, x: Tensor<3>, past: Option<&LayerCache>) -> (Tensor<3>, LayerCache) {
        let [b, l, d] = x.dims();
        let gates_in = self.input.forward(layer_norm(&self.ln, x.clone())); // [b, l, 4d]
        let (mut h, mut c) = match past {
            Some(LayerCache::Recurrent { hidden, cell, .. }) => (hidden.clone(), cell.clone()),
            _ => (
                Tensor::zeros([b, d], &x.device()),
                Tensor::zeros([b, d], &x.device()),
            ),
        };
        let mut outputs = Vec::with_capacity(l);
        for t in 0..l {
            let g = gates_in
                .clone()
                .slice([0..b, t..t + 1, 0..4 * d])
                .reshape([b, 4 * d])
                + self.hidden.forward(h);
            let gate = |k: usize| g.clone().slice([0..b, k * d..(k + 1) * d]);
            c = sigmoid(gate(1)) * c + sigmoid(gate(0)) * gate(2).tanh();
            h = sigmoid(gate(3)) * c.clone().tanh();
            outputs.push(h.clone().unsqueeze_dim::<3>(1));
        }
        let y = self.out.forward(Tensor::cat(outputs, 1));
        (
            x + y,
            LayerCache::Recurrent {
                hidden: h,
                cell: c,
                tokens: past.map_or(0, LayerCache::tokens) + l,
            },
        )
    }
}

/// One layer's state for the positions seen so far.
#[derive(Debug, Clone)]
enum LayerCache {
    /// A Transformer block's keys and values, `[batch, seen, heads, d_head]` each.
    Attention { key: Tensor<4>, value: Tensor<4> },
    /// An LSTM layer's hidden and cell vectors, `[batch, d]` each, after `tokens` tokens.
    Recurrent {
        hidden: Tensor<2>,
        cell: Tensor<2>,
        tokens: usize,
    },
}

impl LayerCache {
    fn tokens(&self) -> usize {
        match self {
            LayerCache::Attention { key, .. } => key.dims()[1],
            LayerCache::Recurrent { tokens, .. } => *tokens,
        }
    }
}

/// The learner's state after a prefix of a sequence (the paper's "state"): every block's
/// attention keys and values (its KV cache), or every LSTM layer's hidden and cell vectors.
/// Feeding more tokens through [`Transformer::forward_cached`] costs time linear in the prefix
/// length for the Transformer (a full forward pass over the whole sequence is quadratic) and
/// constant for the LSTM.
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    layers: Vec<LayerCache>,
}

impl KvCache {
    /// An empty state: no tokens seen.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of tokens seen.
    pub fn len(&self) -> usize {
        self.layers.first().map_or(0, LayerCache::tokens)
    }

    /// Whether no token has been seen.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One parameter as `bench/reference_torch.py`'s PyTorch model holds it (see
/// [`Transformer::torch_parameters`]).
#[derive(Debug, Clone)]
pub struct TorchParameter {
    /// Its name there: `embed.weight`, `blocks.0.query.bias`, `ln_final.weight`, ...
    pub name: String,
    /// Its shape there: a linear layer's weight is `[out, in]` (burn's is `[in, out]`).
    pub shape: Vec<usize>,
    /// Its values in that layout, row-major.
    pub values: Tensor<1>,
}

/// The in-context learner: token embedding, Transformer blocks (or LSTM layers: exactly one
/// of the two lists is empty), final norm, class logits.
#[derive(Module, Debug)]
pub struct Transformer {
    embed: Linear,
    blocks: Vec<Block>,
    lstm: Vec<LstmLayer>,
    ln_final: LayerNorm,
    head: Linear,
}

impl Transformer {
    /// This learner made deeper, to `to`'s number of blocks: its blocks come first,
    /// unchanged, then `to`'s further blocks as `to.init(seed, ..)` draws them. A fresh block's
    /// output maps are small (std 0.02 / √(2 · layers)), so the deeper learner starts close to
    /// this one's function, without the plateau a fresh learner meets. (Output maps at zero,
    /// the exact function, were tried: the new blocks then get no gradient but through those
    /// maps, and 500 fine-tuning steps left the loss equal to the shallower learner's to 10⁻⁴.)
    /// `to` must differ from this learner's shape in `n_layers` alone, and have more.
    pub fn deepened(self, from: &ModelConfig, to: &ModelConfig, seed: u64) -> Result<Self, Error> {
        let same_but_depth = ModelConfig {
            n_layers: from.n_layers,
            ..to.clone()
        };
        if !from.arch.is_transformer() || same_but_depth != *from || to.n_layers <= from.n_layers {
            return Err(Error::Config(format!(
                "a learner can only be deepened, by more Transformer blocks (model.n_layers) \
                 and no other change: from {from:?} to {to:?}"
            )));
        }
        if self.blocks.len() != from.n_layers || !self.lstm.is_empty() {
            return Err(Error::Config(format!(
                "the learner has {} blocks, its config says {}",
                self.blocks.len(),
                from.n_layers
            )));
        }
        let device = self.embed.weight.val().device();
        let fresh = to.init(seed, &device)?;
        let mut blocks = self.blocks;
        blocks.extend(fresh.blocks.into_iter().skip(from.n_layers));
        Ok(Transformer { blocks, ..self })
    }

    /// Every parameter with the name, shape and layout PyTorch's `nn.Linear` and `nn.LayerNorm`
    /// give it in `bench/reference_torch.py`'s model of the same shape, in that model's order
    /// (what `gpicl export` writes). The LSTM variant has no such model there: an error.
    pub fn torch_parameters(&self) -> Result<Vec<TorchParameter>, Error> {
        if !self.lstm.is_empty() {
            return Err(Error::Config(
                "only the Transformer has a PyTorch counterpart to export to".into(),
            ));
        }
        let mut out = Vec::new();
        torch_linear(&mut out, "embed", &self.embed);
        for (i, b) in self.blocks.iter().enumerate() {
            let p = |n: &str| format!("blocks.{i}.{n}");
            torch_norm(&mut out, &p("ln_attn"), &b.ln_attn);
            torch_linear(&mut out, &p("query"), &b.query);
            torch_linear(&mut out, &p("key"), &b.key);
            torch_linear(&mut out, &p("value"), &b.value);
            torch_linear(&mut out, &p("attn_out"), &b.attn_out);
            torch_norm(&mut out, &p("ln_ff"), &b.ln_ff);
            torch_linear(&mut out, &p("ff_in"), &b.ff_in);
            torch_linear(&mut out, &p("ff_out"), &b.ff_out);
        }
        torch_norm(&mut out, "ln_final", &self.ln_final);
        torch_linear(&mut out, "head", &self.head);
        Ok(out)
    }

    /// Class logits `[batch, len, n_classes]` for tokens `[batch, len, width]`; position i
    /// attends to positions ≤ i only.
    pub fn forward(&self, tokens: Tensor<3>) -> Tensor<3> {
        self.forward_cached(tokens, &KvCache::new()).0
    }

    /// Continues a sequence: class logits `[batch, new, n_classes]` for the `new` tokens
    /// `[batch, new, width]` that follow the prefix summarised by `cache`, and the cache of the
    /// longer prefix. The cache is left as it was, so a caller can look ahead (a query) without
    /// committing to it. Equal to [`Transformer::forward`] over the whole sequence, read at the
    /// new positions.
    pub fn forward_cached(&self, tokens: Tensor<3>, cache: &KvCache) -> (Tensor<3>, KvCache) {
        let (logits, cache, _) = self.forward_attention(tokens, cache);
        (logits, cache)
    }

    /// [`Transformer::forward_cached`], also returning each block's attention weights
    /// `[batch, heads, new, total]` (where each new token looks; none for the LSTM).
    pub fn forward_attention(
        &self,
        tokens: Tensor<3>,
        cache: &KvCache,
    ) -> (Tensor<3>, KvCache, Vec<Tensor<4>>) {
        let mut x = self.embed.forward(tokens);
        let mut layers = Vec::with_capacity(self.blocks.len());
        let mut attention = Vec::with_capacity(self.blocks.len());
        for (i, block) in self.blocks.iter().enumerate() {
            let (y, layer, weights) = block.forward(x, cache.layers.get(i));
            x = y;
            layers.push(layer);
            attention.push(weights);
        }
        for (i, lstm) in self.lstm.iter().enumerate() {
            let (y, layer) = lstm.forward(x, cache.layers.get(i));
            x = y;
            layers.push(layer);
        }
        (
            self.head.forward(layer_norm(&self.ln_final, x)),
            KvCache { layers },
            attention,
        )
    }
}

/// `nn.Linear`'s `weight` (`[out, in]`: burn's transposed) and `bias`.
fn torch_linear(out: &mut Vec<TorchParameter>, name: &str, l: &Linear) {
    let [d_in, d_out] = l.weight.val().dims();
    out.push(TorchParameter {
        name: format!("{name}.weight"),
        shape: vec![d_out, d_in],
        values: l.weight.val().transpose().reshape([d_in * d_out]),
    });
    if let Some(bias) = &l.bias {
        out.push(TorchParameter {
            name: format!("{name}.bias"),
            shape: vec![d_out],
            values: bias.val(),
        });
    }
}

/// `nn.LayerNorm`'s `weight` (γ) and `bias` (β).
fn torch_norm(out: &mut Vec<TorchParameter>, name: &str, ln: &LayerNorm) {
    let [d] = ln.gamma.val().dims();
    out.push(TorchParameter {
        name: format!("{name}.weight"),
        shape: vec![d],
        values: ln.gamma.val(),
    });
    if let Some(beta) = &ln.beta {
        out.push(TorchParameter {
            name: format!("{name}.bias"),
            shape: vec![d],
            values: beta.val(),
        });
    }
}
