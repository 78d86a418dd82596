//! A frozen in-context learner fed one example at a time: the shipped pretrained learner that
//! the step-through and the drawing pad use. Its state is the attention key/value cache
//! ([`KvCache`], the paper's "state"): feeding one more example runs only that example's tokens
//! through the model, so an update costs time linear in the context, not quadratic.
//!
//! It runs on Flex (the CPU, in WASM in the page): one example is a handful of tiny matrix
//! products, where a GPU round trip would cost more than the arithmetic, and it leaves the GPU
//! to the meta-training run beside it.

use burn::prelude::*;
use burn::tensor::activation::softmax;
use gpicl_core::manifest::InputStats;
use gpicl_core::{Error, KvCache, Manifest, RunConfig, TokenFormat, Transformer};

/// A learner with frozen weights.
pub struct Learner {
    model: Transformer,
    manifest: Manifest,
    device: Device,
}

/// What a learner has seen of one task: its KV cache and the last label (the paper's token
/// format carries the previous label in the next token). Cheap to clone; feeding returns a new
/// context and leaves the old one valid, so going back costs nothing.
#[derive(Debug, Clone, Default)]
pub struct InContext {
    cache: KvCache,
    last_label: Option<usize>,
    examples: usize,
}

impl InContext {
    /// Labelled examples seen.
    pub fn len(&self) -> usize {
        self.examples
    }

    /// Whether no example has been seen.
    pub fn is_empty(&self) -> bool {
        self.examples == 0
    }
}

/// One example fed: the prediction made for it before its label, the longer context, and
/// where the prediction looked (per block, heads averaged, the weight on each earlier example).
#[derive(Debug, Clone)]
pub struct Fed {
    /// The class distribution predicted for the example.
    pub probs: Vec<f32>,
    /// The context that includes the example.
    pub context: InContext,
    /// `attention[block][i]`: the prediction's attention on earlier example i.
    pub attention: Vec<Vec<f32>>,
}

impl Learner {
    /// The learner described by `manifest`, with the weights `bytes` (checked against the
    /// manifest's size and SHA-256 before use).
    pub fn load(manifest: Manifest, bytes: Vec<u8>) -> Result<Self, Error> {
        let device = Device::flex();
        let model = manifest.model(bytes, &device)?;
        Ok(Self {
            model,
            manifest,
            device,
        })
    }

    /// The model (for evaluating it on whole sequences).
    pub fn model(&self) -> &Transformer {
        &self.model
    }

    /// The record it came with.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Its configuration.
    pub fn config(&self) -> &RunConfig {
        &self.manifest.config
    }

    /// How raw inputs are normalised before projection.
    pub fn input_stats(&self) -> InputStats {
        self.manifest.input_stats
    }

    fn format(&self) -> TokenFormat {
        self.config().tasks.format
    }

    fn n_classes(&self) -> usize {
        self.config().model.n_classes
    }

    /// The tokens of the next example `x` (already projected) with its `label`, as the token
    /// format lays them out after `context` (see [`TokenFormat::label_parts`]); the first token
    /// is the one whose output predicts `x`'s label.
    fn example_tokens(&self, context: &InContext, x: &[f32], label: usize) -> Vec<f32> {
        let side = self.n_classes() + 1;
        self.format()
            .label_parts(label, context.last_label, self.n_classes())
            .chunks(side)
            .flat_map(|part| x.iter().chain(part).copied())
            .collect()
    }

    /// Runs `tokens` after `context`: the class distribution at the first of them, the
    /// longer cache, and, if `look`, where the first of them looked: per block, heads averaged,
    /// the attention on each earlier example (its tokens' weights summed); else nothing is read
    /// of the attention.
    async fn run(
        &self,
        context: &InContext,
        tokens: Vec<f32>,
        look: bool,
    ) -> Result<(Vec<f32>, KvCache, Vec<Vec<f32>>), Error> {
        let width = TokenFormat::token_width(self.config().model.d_in, self.n_classes());
        if tokens.is_empty() || !tokens.len().is_multiple_of(width) {
            return Err(Error::Data(format!(
                "tokens of width {width} expected, got {} values",
                tokens.len()
            )));
        }
        let n = tokens.len() / width;
        let input = Tensor::<3>::from_data(TensorData::new(tokens, [1, n, width]), &self.device);
        let (logits, cache, attention) = self.model.forward_attention(input, &context.cache);
        let probs = softmax(logits.slice([0..1, 0..1, 0..self.n_classes()]), 2);
        let read = |t: Tensor<3>| async move {
            t.into_data_async()
                .await
                .map_err(|e| Error::Device(format!("reading predictions: {e:?}")))?
                .try_to_vec::<f32>()
                .map_err(|e| Error::Device(format!("prediction data: {e:?}")))
        };
        let probs = read(probs).await?;
        let (earlier, per) = (context.cache.len(), self.format().tokens_per_example());
        let mut looks = Vec::with_capacity(attention.len());
        for w in attention.into_iter().filter(|_| look) {
            let [_, h, _, total] = w.dims();
            let first = w
                .slice([0..1, 0..h, 0..1, 0..total])
                .mean_dim(1)
                .reshape([1, 1, total]);
            let weights = read(first).await?;
            let mut by_example = vec![0f32; earlier / per];
            for (t, v) in weights[..earlier].iter().enumerate() {
                by_example[t / per] += v;
            }
            looks.push(by_example);
        }
        Ok((probs, cache, looks))
    }

    /// Its class distribution for `x` (projected) as the next example after `context`;
    /// `context` does not change (a look-ahead).
    pub async fn predict(&self, context: &InContext, x: &[f32]) -> Result<Vec<f32>, Error> {
        // Only the first token: it does not carry the label, so any label will do.
        let mut tokens = self.example_tokens(context, x, 0);
        tokens.truncate(TokenFormat::token_width(
            self.config().model.d_in,
            self.n_classes(),
        ));
        Ok(self.run(context, tokens, false).await?.0)
    }

    /// [`Learner::feed`], also saying where its prediction looked: per block, heads
    /// averaged, the attention on each example of `context`.
    pub async fn feed_looking(
        &self,
        context: &InContext,
        x: &[f32],
        label: usize,
    ) -> Result<Fed, Error> {
        self.feed_with(context, x, label, true).await
    }

    /// Feeds `(x, label)` after `context`; `look`: read where the prediction looked.
    async fn feed_with(
        &self,
        context: &InContext,
        x: &[f32],
        label: usize,
        look: bool,
    ) -> Result<Fed, Error> {
        if label >= self.n_classes() {
            return Err(Error::Data(format!(
                "label {label} is out of range (the learner knows {} classes)",
                self.n_classes()
            )));
        }
        let (probs, cache, attention) = self
            .run(context, self.example_tokens(context, x, label), look)
            .await?;
        let context = InContext {
            cache,
            last_label: Some(label),
            examples: context.examples + 1,
        };
        Ok(Fed {
            probs,
            context,
            attention,
        })
    }

    /// Feeds the labelled example `(x, label)`: returns its prediction for `x` made before
    /// seeing the label, and the context that includes the example.
    pub async fn feed(
        &self,
        context: &InContext,
        x: &[f32],
        label: usize,
    ) -> Result<(Vec<f32>, InContext), Error> {
        let fed = self.feed_with(context, x, label, false).await?;
        Ok((fed.probs, fed.context))
    }
}
