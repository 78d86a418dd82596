//! Adam with per-tensor gradient-norm clipping, written out here so that its state (the two
//! moments of every parameter) is ours to read: burn's `ModuleOptimizer` saves its state with a
//! synchronous device read, which the browser forbids. The arithmetic is burn's `Adam`
//! (bias-corrected, ε scaled as burn scales it), operation for operation.

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
    moments: BTreeMap<u64, Moments>,
}

impl Adam {
    /// A fresh optimizer with `t`'s β1, β2, ε and clipping threshold.
    pub fn new(t: &TrainConfig) -> Self {
        Adam {
            beta1: t.beta1,
            beta2: t.beta2,
            epsilon: t.epsilon,
            clip: t.grad_clip,
            moments: BTreeMap::new(),
        }
    }

    /// Applies one update with learning rate `lr` to every parameter that has a gradient.
    pub fn step(&mut self, lr: f64, model: Transformer, grads: GradientsParams) -> Transformer {
        let mut mapper = Update {
            adam: self,
            grads,
            lr,
        };
        model.map(&mut mapper)
    }

    /// The state of every parameter updated so far, by parameter id.
    pub fn moments(&self) -> &BTreeMap<u64, Moments> {
        &self.moments
    }

    /// Replaces the state (when resuming from a checkpoint).
    pub fn set_moments(&mut self, moments: BTreeMap<u64, Moments>) {
        self.moments = moments;
    }

    fn update(&mut self, id: u64, param: Tensor<1>, grad: Tensor<1>, lr: f64) -> Tensor<1> {
        let grad = match self.clip {
            Some(threshold) => {
                let norm = grad.clone().square().sum().sqrt();
                let coef = norm
                    .add_scalar(f32::MIN_POSITIVE)
                    .recip()
                    .mul_scalar(threshold)
                    .clamp_max(1.0);
                grad.mul(coef)
            }
            None => grad,
        };
        let (b1, b2) = (self.beta1, self.beta2);
        let state = match self.moments.remove(&id) {
            Some(s) => Moments {
                time: s.time + 1,
                m: s.m.mul_scalar(b1).add(grad.clone().mul_scalar(1.0 - b1)),
                v: s.v.mul_scalar(b2).add(grad.square().mul_scalar(1.0 - b2)),
            },
            None => Moments {
                time: 1,
                m: grad.clone().mul_scalar(1.0 - b1),
                v: grad.square().mul_scalar(1.0 - b2),
            },
        };
        let t = state.time as i32;
        let correction2 = (1.0 - b2.powi(t)).sqrt();
        let factor = correction2 / (1.0 - b1.powi(t));
        let step = state.m.clone().mul_scalar(factor).div(
            state
                .v
                .clone()
                .sqrt()
                .add_scalar(self.epsilon * correction2),
        );
        self.moments.insert(id, state);
        param - step.mul_scalar(lr)
    }
}

/// The module mapper that applies [`Adam::update`] to each float parameter.
struct Update<'a> {
    adam: &'a mut Adam,
    grads: GradientsParams,
    lr: f64,
}

impl ModuleMapper for Update<'_> {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let (id, tensor, mapper) = param.consume();
        let Some(grad) = self.grads.remove::<D>(id) else {
            return Param::from_mapped_value(id, tensor, mapper);
        };
        let dims = tensor.dims();
        let n = dims.iter().product::<usize>();
        let updated = self.adam.update(
            id.val(),
            tensor.inner().reshape([n]),
            grad.reshape([n]),
            self.lr,
        );
        let tensor = Tensor::from_inner(updated.reshape(dims)).require_grad();
        Param::from_mapped_value(id, tensor, mapper)
    }
}
