//! Adam with per-tensor gradient-norm clipping, written out here so that its state (the two
//! moments of every parameter) is ours to read: burn's `ModuleOptimizer` saves its state with a
//! synchronous device read, which the browser forbids. The arithmetic is burn's `Adam`
//! (bias-corrected, ε scaled as burn scales it), operation for operation.
//!
//! All parameters are updated together, as one flat vector (a "multi-tensor" update, as
//! PyTorch's `foreach` Adam): the gradients concatenated once, the moments kept flat, and each
//! element-wise step of Adam one operation over every parameter instead of one per tensor.
//! Each tensor's part of the flat vectors is padded to an aligned offset, so that taking it out
//! is a view. On Flex and in the browser each value goes through the same operations as in a
//! per-tensor update, so the result is burn's bit for bit. Natively the clipping coefficients
//! reach their gradients in one gather, and on a GPU the norms are summed from the flat vector
//! too (`Adam::clipped`): the `browser` preset's 38 tensors took ~22 kernel launches each,
//! now 8 in the page and 2 on a native GPU (its place in the concatenation, its subtraction).
//! One step count serves all parameters: every parameter of our models has a gradient at every
//! step (one without is left as it is, and its moments start again).

use std::collections::BTreeMap;

use burn::module::{ModuleMapper, Param};
use burn::optim::GradientsParams;
use burn::prelude::*;

use crate::config::TrainConfig;
use crate::model::Transformer;

/// One parameter's Adam state: the step count and the two moments, flattened, on the inner
/// (non-autodiff) device.
#[derive(Debug, Clone)]
pub struct Moments {
    /// Updates applied so far (for the bias correction).
    pub time: u32,
    /// First moment (mean of gradients).
    pub m: Tensor<1>,
    /// Second moment (mean of squared gradients).
    pub v: Tensor<1>,
}

/// Adam over a [`Transformer`]'s parameters, keyed by parameter id.
#[derive(Debug, Clone)]
pub struct Adam {
    beta1: f32,
    beta2: f32,
    epsilon: f32,
    clip: Option<f32>,
    /// Moments by parameter id (before the first step: none, or a resumed run's).
    by_id: BTreeMap<u64, Moments>,
    /// After a step: the moments of the parameters it updated, as one vector each.
    flat: Option<Flat>,
    /// Natively, for clipping: who owns each block of the last layout's flat vectors.
    #[cfg(not(target_family = "wasm"))]
    owners: Option<Owners>,
}

/// Each tensor's squared norm (a sum of squares each), as one vector.
fn squared_norms(grads: &[Tensor<1>]) -> Tensor<1> {
    Tensor::cat(grads.iter().map(|g| g.clone().square().sum()).collect(), 0)
}

/// Each tensor's clipping coefficient from its squared norm: `threshold` over the norm, at
/// most 1 (burn's norm clipping).
fn coefficients(squares: Tensor<1>, threshold: f32) -> Tensor<1> {
    squares
        .sqrt()
        .add_scalar(f32::MIN_POSITIVE)
        .recip()
        .mul_scalar(threshold)
        .clamp_max(1.0)
}

/// The owner of each 64-value block ([`ALIGN`]) of a layout's flat vectors: its parameter's
/// place in the layout ([`Adam::clipped`]).
#[cfg(not(target_family = "wasm"))]
#[derive(Debug, Clone)]
struct Owners {
    layout: Vec<(u64, usize)>,
    /// `[blocks]`: each block's owner.
    blocks: Tensor<1, Int>,
    /// On a GPU, `[parameters, blocks]`: 1 where the block is the parameter's, else 0.
    one_hot: Option<Tensor<2>>,
}

#[cfg(not(target_family = "wasm"))]
impl Owners {
    fn new(layout: &[(u64, usize)], device: &Device) -> Self {
        let owners: Vec<i64> = layout
            .iter()
            .enumerate()
            .flat_map(|(i, &(_, n))| std::iter::repeat_n(i as i64, padded(n) / ALIGN))
            .collect();
        let blocks = owners.len();
        let one_hot = (!crate::kernels::on_flex(device)).then(|| {
            let mut one_hot = vec![0.0f32; layout.len() * blocks];
            for (b, &owner) in owners.iter().enumerate() {
                one_hot[owner as usize * blocks + b] = 1.0;
            }
            Tensor::from_data(TensorData::new(one_hot, [layout.len(), blocks]), device)
        });
        Self {
            layout: layout.to_vec(),
            blocks: Tensor::from_data(TensorData::new(owners, [blocks]), device),
            one_hot,
        }
    }
}

/// Values a parameter's part of a flat vector is padded to a multiple of: 256 bytes, the
/// offset alignment GPUs (and WebGPU by default) ask of a buffer binding. Every part then
/// starts and ends at an aligned offset, so taking it out is a view, not a copy (burn's
/// `slice` copies otherwise): one kernel launch a parameter fewer per step. The padding is
/// zeros, and stays zeros.
const ALIGN: usize = 64;

/// `n` values with their padding ([`ALIGN`]).
fn padded(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

/// `parts` one after another, each padded with zeros to [`padded`] values.
fn concat(parts: Vec<Tensor<1>>, device: &Device) -> Tensor<1> {
    let mut all = Vec::with_capacity(2 * parts.len());
    for part in parts {
        let n = part.dims()[0];
        all.push(part);
        if padded(n) > n {
            all.push(Tensor::zeros([padded(n) - n], device));
        }
    }
    Tensor::cat(all, 0)
}

/// Moments kept as one vector each, parameter after parameter (each padded: [`concat`]).
#[derive(Debug, Clone)]
struct Flat {
    time: u32,
    /// Per parameter, in the order the model visits them: id and number of values.
    layout: Vec<(u64, usize)>,
    m: Tensor<1>,
    v: Tensor<1>,
}

impl Adam {
    /// A fresh optimizer with `t`'s β1, β2, ε and clipping threshold.
    pub fn new(t: &TrainConfig) -> Self {
        Adam {
            beta1: t.beta1,
            beta2: t.beta2,
            epsilon: t.epsilon,
            clip: t.grad_clip,
            by_id: BTreeMap::new(),
            flat: None,
            #[cfg(not(target_family = "wasm"))]
            owners: None,
        }
    }

    /// Applies one update with learning rate `lr` to every parameter that has a gradient.
    pub fn step(&mut self, lr: f64, model: Transformer, mut grads: GradientsParams) -> Transformer {
        // Two passes of one mapper (one instantiation over the model's modules, which the
        // page's module pays for in size): take the gradients, then apply the update.
        let mut pass = Pass {
            grads: &mut grads,
            found: Vec::new(),
            update: None,
        };
        let model = model.map(&mut pass);
        let (layout, grads): (Vec<(u64, usize)>, Vec<Tensor<1>>) =
            std::mem::take(&mut pass.found).into_iter().unzip();
        if grads.is_empty() {
            return model;
        }
        let device = grads[0].device();
        let (time, m, v) = self.moments_for(&layout, &device);
        let g = match self.clip {
            Some(threshold) => self.clipped(grads, threshold, &layout, &device),
            None => concat(grads, &device),
        };
        let (b1, b2) = (self.beta1, self.beta2);
        let m = m.mul_scalar(b1).add(g.clone().mul_scalar(1.0 - b1));
        let v = v.mul_scalar(b2).add(g.square().mul_scalar(1.0 - b2));
        let time = time + 1;
        let correction2 = (1.0 - b2.powi(time as i32)).sqrt();
        let factor = correction2 / (1.0 - b1.powi(time as i32));
        let delta = m
            .clone()
            .mul_scalar(factor)
            .div(v.clone().sqrt().add_scalar(self.epsilon * correction2))
            .mul_scalar(lr);
        pass.update = Some(Update {
            delta,
            layout: layout.clone(),
            next: 0,
            offset: 0,
        });
        self.flat = Some(Flat { time, layout, m, v });
        model.map(&mut pass)
    }

    /// The gradients `grads` (of the parameters `layout`), each scaled by its clipping
    /// coefficient ([`coefficients`]), as one flat vector ([`concat`]).
    ///
    /// Natively the flat gradient is read as rows of 64 values, each row one parameter's (by
    /// [`ALIGN`]), and each row is multiplied by its owner's coefficient, taken out in one
    /// gather: two kernel launches, where a multiplication per tensor takes two each (its
    /// coefficient's one-value slice is a copy); the products are the same, bit for bit. On a
    /// GPU the squared norms come from the rows too, each row's sum of squares added up per
    /// parameter by one matrix product with the rows' one-hot owners: four launches, where a
    /// norm per tensor takes four (a square, a zeroed output, an atomic sum, its place in the
    /// vector of all). Atomic sums add in no fixed order, so a GPU's norms were not
    /// reproducible bit for bit anyway; Flex keeps burn's per-tensor sums, bit for bit.
    #[cfg(not(target_family = "wasm"))]
    fn clipped(
        &mut self,
        grads: Vec<Tensor<1>>,
        threshold: f32,
        layout: &[(u64, usize)],
        device: &Device,
    ) -> Tensor<1> {
        if self.owners.as_ref().is_some_and(|o| o.layout != layout) {
            self.owners = None;
        }
        let owners = self
            .owners
            .get_or_insert_with(|| Owners::new(layout, device));
        let g = concat(grads.clone(), device);
        let (n, blocks) = (g.dims()[0], owners.blocks.dims()[0]);
        let rows = g.reshape([blocks, ALIGN]);
        let squares = match &owners.one_hot {
            Some(one_hot) => {
                let per_row = rows.clone().square().sum_dim(1);
                one_hot.clone().matmul(per_row).reshape([layout.len()])
            }
            None => squared_norms(&grads),
        };
        drop(grads);
        let coef = coefficients(squares, threshold);
        let per_row = coef.select(0, owners.blocks.clone()).reshape([blocks, 1]);
        (rows * per_row).reshape([n])
    }

    /// In the browser each tensor's norm is its own sum, and each gradient is scaled by its
    /// coefficient before they are concatenated: the page's module carries no gather kernel
    /// for this (a gather would add 184 KB).
    #[cfg(target_family = "wasm")]
    fn clipped(
        &mut self,
        mut grads: Vec<Tensor<1>>,
        threshold: f32,
        _: &[(u64, usize)],
        device: &Device,
    ) -> Tensor<1> {
        let coef = coefficients(squared_norms(&grads), threshold);
        for (i, g) in grads.iter_mut().enumerate() {
            *g = g.clone().mul(coef.clone().narrow(0, i, 1));
        }
        concat(grads, device)
    }

    /// The step count and moments of the parameters `layout` (id, number of values), in that
    /// order, as flat vectors: the last step's when they are the same parameters, else
    /// gathered from those by id (zeros for a parameter never updated).
    fn moments_for(
        &mut self,
        layout: &[(u64, usize)],
        device: &Device,
    ) -> (u32, Tensor<1>, Tensor<1>) {
        if let Some(flat) = self.flat.take() {
            if flat.layout == layout {
                return (flat.time, flat.m, flat.v);
            }
            self.by_id = Self::split(&flat);
        }
        let mut time = 0;
        let (mut ms, mut vs) = (Vec::new(), Vec::new());
        for &(id, n) in layout {
            match self.by_id.remove(&id) {
                Some(moments) => {
                    time = time.max(moments.time);
                    ms.push(moments.m);
                    vs.push(moments.v);
                }
                None => {
                    ms.push(Tensor::zeros([n], device));
                    vs.push(Tensor::zeros([n], device));
                }
            }
        }
        self.by_id.clear();
        (time, concat(ms, device), concat(vs, device))
    }

    /// Each parameter's moments as views of the flat vectors.
    fn split(flat: &Flat) -> BTreeMap<u64, Moments> {
        let mut offset = 0;
        let mut all = BTreeMap::new();
        for &(id, n) in &flat.layout {
            let part = |t: &Tensor<1>| t.clone().narrow(0, offset, n);
            let (m, v) = (part(&flat.m), part(&flat.v));
            all.insert(
                id,
                Moments {
                    time: flat.time,
                    m,
                    v,
                },
            );
            offset += padded(n);
        }
        all
    }

    /// The state of every parameter updated so far, by parameter id.
    pub fn moments(&self) -> BTreeMap<u64, Moments> {
        match &self.flat {
            Some(flat) => Self::split(flat),
            None => self.by_id.clone(),
        }
    }

    /// Replaces the state (when resuming from a checkpoint, whose moments share one step
    /// count: `Checkpoint::from_bytes` refuses others).
    pub fn set_moments(&mut self, moments: BTreeMap<u64, Moments>) {
        self.by_id = moments;
        self.flat = None;
    }
}

/// The optimizer's pass over the model's float parameters: without an update, takes each
/// parameter's gradient (flattened, in the order the model visits them) and leaves the
/// parameter as it is; with one, subtracts each parameter's part of it.
struct Pass<'a> {
    grads: &'a mut GradientsParams,
    found: Vec<((u64, usize), Tensor<1>)>,
    update: Option<Update>,
}

/// The flat update, its layout (id, number of values), and where the pass is in both.
struct Update {
    delta: Tensor<1>,
    layout: Vec<(u64, usize)>,
    next: usize,
    offset: usize,
}

impl ModuleMapper for Pass<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let tensor = match &mut self.update {
            None => {
                if let Some(grad) = self.grads.remove::<D>(id) {
                    let n = grad.dims().iter().product::<usize>();
                    self.found.push(((id.val(), n), grad.reshape([n])));
                }
                tensor
            }
            // The parameters come in the order they were taken.
            Some(u) => match u.layout.get(u.next) {
                Some(&(entry, n)) if entry == id.val() => {
                    let part = u
                        .delta
                        .clone()
                        .narrow(0, u.offset, n)
                        .reshape(tensor.dims());
                    (u.next, u.offset) = (u.next + 1, u.offset + padded(n));
                    Tensor::from_inner(tensor.inner() - part).require_grad()
                }
                _ => tensor,
            },
        };
        Param::from_mapped_value(id, tensor, mapper)
    }
}
