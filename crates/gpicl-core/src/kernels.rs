//! The model's three element-wise hot spots, with CPU kernels of our own for Flex.
//!
//! Under autodiff, burn builds layer norm and softmax from a dozen primitive ops each (every one
//! a pass over memory and a node with saved inputs), and Flex computes GELU with a scalar `erf`
//! per element. Together that was over half of a Flex training step (README, "The CPU step").
//! Here each is one operation with a hand-written backward, through burn's backend-extension
//! API:
//!
//! - [`gelu`]: exact GELU, `x·Φ(x)`, with `erf` from Abramowitz–Stegun 7.1.26 (absolute error
//!   ≤ 1.5·10⁻⁷, PyTorch's CPU formula) and an `exp` written to vectorise.
//! - [`causal_softmax`]: `softmax(scale·scores)` over the positions each query may see (the
//!   causal mask applied inside, the rest exactly 0), so the scores are neither scaled nor masked
//!   as separate ops.
//! - [`layer_norm`]: one pass forward, one backward, for all three inputs.
//!
//! Only Flex runs these kernels. On every other device (WebGPU, wgpu, CUDA) the functions run
//! burn's own ops, as before; the parity tests hold the two to the same numbers.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::{ActivationOps, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, DispatchDevice, Flex, backend_extension};
use burn::nn::LayerNorm;
use burn::prelude::*;
use burn::tensor::DType;
use burn::tensor::activation::softmax;

/// The operations, as a burn backend extension: implemented for Flex, and for autodiff over Flex
/// with the backward passes below.
#[backend_extension(Flex, Autodiff)]
pub trait Kernels: Backend {
    /// Exact GELU.
    fn fast_gelu(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `softmax(scale · scores)` along the last axis of `[batch, heads, new, total]` scores,
    /// where query `i` sees keys `0 ..= offset + i` (`offset = total - new`).
    fn causal_softmax(scores: FloatTensor<Self>, scale: f32) -> FloatTensor<Self>;
    /// Layer norm over the last axis.
    fn fused_layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f32,
    ) -> FloatTensor<Self>;
}

/// Whether `device` (with or without autodiff) is Flex, where the kernels run.
fn on_flex(device: &Device) -> bool {
    matches!(
        device.clone().inner().as_dispatch(),
        DispatchDevice::Flex(_)
    )
}

/// Exact GELU of `x`.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    if !on_flex(&x.device()) || x.dtype() != DType::F32 {
        return burn::tensor::activation::gelu(x);
    }
    Tensor::from_dispatch(<Dispatch as Kernels>::fast_gelu(x.into_dispatch()))
}

/// Causal attention weights: `softmax(scale · scores + mask)` along the last axis of
/// `[batch, heads, new, total]` scores, where the `new` queries follow `total - new` earlier
/// positions and query `i` may attend to positions `0 ..= total - new + i`; the weights of the
/// others are exactly 0.
pub fn causal_softmax(scores: Tensor<4>, scale: f32) -> Tensor<4> {
    if !on_flex(&scores.device()) || scores.dtype() != DType::F32 {
        let [_, _, new, total] = scores.dims();
        let mask = causal_mask(new, total, &scores.device());
        return softmax(scores.mul_scalar(scale) + mask.unsqueeze::<4>(), 3);
    }
    Tensor::from_dispatch(<Dispatch as Kernels>::causal_softmax(
        scores.into_dispatch(),
        scale,
    ))
}

/// `ln` applied to `x` (the same as `ln.forward(x)`).
pub fn layer_norm<const D: usize>(ln: &LayerNorm, x: Tensor<D>) -> Tensor<D> {
    let Some(beta) = ln.beta.as_ref() else {
        return ln.forward(x);
    };
    if !on_flex(&x.device()) || x.dtype() != DType::F32 {
        return ln.forward(x);
    }
    Tensor::from_dispatch(<Dispatch as Kernels>::fused_layer_norm(
        x.into_dispatch(),
        ln.gamma.val().into_dispatch(),
        beta.val().into_dispatch(),
        LAYER_NORM_EPSILON,
    ))
}

/// burn's `LayerNormConfig` default, which every layer norm of the model uses.
const LAYER_NORM_EPSILON: f32 = 1e-5;

/// Additive causal mask `[new, total]` for `new` positions that follow `total - new` earlier
/// ones: 0 where a position may attend, a large negative number where it may not.
fn causal_mask(new: usize, total: usize, device: &Device) -> Tensor<2> {
    let offset = total - new;
    let values = (0..new * total)
        .map(|i| {
            if i % total > offset + i / total {
                -1.0e9
            } else {
                0.0
            }
        })
        .collect::<Vec<f32>>();
    Tensor::from_data(TensorData::new(values, [new, total]), device)
}

// ---------------------------------------------------------------------------------------------
// Flex: forward kernels.

impl Kernels for Flex {
    fn fast_gelu(x: FlexTensor) -> FlexTensor {
        if x.dtype() != DType::F32 {
            return Flex::gelu(x);
        }
        map_f32(&x, |x, out| run_simd(|| gelu_slice(x, out)))
    }

    fn causal_softmax(scores: FlexTensor, scale: f32) -> FlexTensor {
        let dims = scores.layout().shape().clone();
        let (new, total) = (dims[2], dims[3]);
        map_f32(&scores, |s, out| {
            run_simd(|| softmax_rows(s, out, new, total, scale))
        })
    }

    fn fused_layer_norm(
        x: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        eps: f32,
    ) -> FlexTensor {
        if x.dtype() != DType::F32 {
            return Flex::layer_norm(x, gamma, Some(beta), eps as f64);
        }
        let (gamma, beta) = (gamma.to_contiguous(), beta.to_contiguous());
        let (g, b) = (f32s(&gamma), f32s(&beta));
        map_f32(&x, |x, out| run_simd(|| layer_norm_rows(x, g, b, eps, out)))
    }
}

/// A new tensor of `x`'s shape, filled by `f(x's values, output)`.
fn map_f32(x: &FlexTensor, f: impl FnOnce(&[f32], &mut [f32])) -> FlexTensor {
    let x = x.to_contiguous();
    let mut out = FlexTensor::empty(x.layout().shape().clone(), DType::F32);
    f(f32s(&x), out.storage_mut::<f32>());
    out
}

/// A contiguous f32 tensor's values.
fn f32s(x: &FlexTensor) -> &[f32] {
    x.as_slice::<f32>()
        .expect("a contiguous f32 tensor (checked by the caller)")
}

/// Runs `f` compiled for wider vectors: AVX2 and FMA where the CPU has them (the loops below
/// vectorise to 8 lanes there instead of SSE's 4), SIMD128 in WebAssembly; elsewhere as built.
#[inline(always)]
fn run_simd<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn wide<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        // SAFETY: the CPU supports AVX2 and FMA (checked just above).
        return unsafe { wide(f) };
    }
    #[cfg(target_arch = "wasm32")]
    {
        #[target_feature(enable = "simd128")]
        unsafe fn wide<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        // SAFETY: the page's module already needs SIMD128 (burn's `simd` kernels use it), so an
        // engine that runs it has it.
        return unsafe { wide(f) };
    }
    #[allow(unreachable_code)]
    f()
}

// ---------------------------------------------------------------------------------------------
// Autodiff over Flex: the backward passes.

impl<C: CheckpointStrategy> Kernels for Autodiff<Flex, C> {
    fn fast_gelu(x: FloatTensor<Self>) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct Gelu;

        impl Backward<Flex, 1> for Gelu {
            type State = FlexTensor;

            fn backward(
                self,
                ops: Ops<FlexTensor, 1>,
                grads: &mut Gradients,
                _: &mut Checkpointer,
            ) {
                let x = ops.state;
                unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
                    zip_f32(&x, &grad, |x, g, out| {
                        run_simd(|| gelu_grad_slice(x, g, out))
                    })
                });
            }
        }

        match Gelu.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let input = x.primitive().clone();
                prep.finish(input.clone(), Flex::fast_gelu(input))
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::fast_gelu(x.into_primitive())),
        }
    }

    fn causal_softmax(scores: FloatTensor<Self>, scale: f32) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct Softmax {
            scale: f32,
        }

        impl Backward<Flex, 1> for Softmax {
            type State = FlexTensor;

            fn backward(
                self,
                ops: Ops<FlexTensor, 1>,
                grads: &mut Gradients,
                _: &mut Checkpointer,
            ) {
                let y = ops.state;
                let total = y.layout().shape()[3];
                unary::<Flex, _>(ops.parents, ops.node, grads, |grad| {
                    zip_f32(&y, &grad, |y, g, out| {
                        run_simd(|| softmax_grad_rows(y, g, out, total, self.scale))
                    })
                });
            }
        }

        match (Softmax { scale })
            .prepare::<C>([scores.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let y = Flex::causal_softmax(scores.primitive().clone(), scale);
                prep.finish(y.clone(), y)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(Flex::causal_softmax(scores.into_primitive(), scale))
            }
        }
    }

    fn fused_layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f32,
    ) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct Norm {
            epsilon: f32,
        }

        impl Backward<Flex, 3> for Norm {
            type State = (FlexTensor, FlexTensor);

            fn backward(
                self,
                ops: Ops<Self::State, 3>,
                grads: &mut Gradients,
                _: &mut Checkpointer,
            ) {
                let [node_x, node_gamma, node_beta] = ops.parents;
                let grad = grads.consume::<Flex>(&ops.node);
                let (x, gamma) = ops.state;
                let (dx, dgamma, dbeta) = layer_norm_backward(&x, &gamma, &grad, self.epsilon);
                if let Some(node) = node_x {
                    grads.register::<Flex>(node.id, dx);
                }
                if let Some(node) = node_gamma {
                    grads.register::<Flex>(node.id, dgamma);
                }
                if let Some(node) = node_beta {
                    grads.register::<Flex>(node.id, dbeta);
                }
            }
        }

        match (Norm { epsilon })
            .prepare::<C>([x.node(), gamma.node(), beta.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (x, gamma, beta) = (
                    x.primitive().clone(),
                    gamma.primitive().clone(),
                    beta.into_primitive(),
                );
                let y = Flex::fused_layer_norm(x.clone(), gamma.clone(), beta, epsilon);
                prep.finish((x, gamma), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::fused_layer_norm(
                x.into_primitive(),
                gamma.into_primitive(),
                beta.into_primitive(),
                epsilon,
            )),
        }
    }
}

/// A new tensor of `a`'s shape, filled by `f(a's values, b's values, output)`.
fn zip_f32(
    a: &FlexTensor,
    b: &FlexTensor,
    f: impl FnOnce(&[f32], &[f32], &mut [f32]),
) -> FlexTensor {
    let b = b.to_contiguous();
    map_f32(a, |a, out| f(a, f32s(&b), out))
}

/// Layer norm's gradients with respect to `x`, `gamma` and `beta`, from the output's gradient.
fn layer_norm_backward(
    x: &FlexTensor,
    gamma: &FlexTensor,
    grad: &FlexTensor,
    eps: f32,
) -> (FlexTensor, FlexTensor, FlexTensor) {
    let d = gamma.layout().shape()[0];
    let gamma = gamma.to_contiguous();
    let (x, grad) = (x.to_contiguous(), grad.to_contiguous());
    let mut dx = FlexTensor::empty(x.layout().shape().clone(), DType::F32);
    let mut dgamma = vec![0f32; d];
    let mut dbeta = vec![0f32; d];
    run_simd(|| {
        layer_norm_grad_rows(
            f32s(&x),
            f32s(&gamma),
            f32s(&grad),
            eps,
            dx.storage_mut::<f32>(),
            &mut dgamma,
            &mut dbeta,
        )
    });
    let vector = |v: Vec<f32>| FlexTensor::from_data(TensorData::new(v, [d]));
    (dx, vector(dgamma), vector(dbeta))
}

// ---------------------------------------------------------------------------------------------
// The arithmetic, on slices; written so that the compiler vectorises the inner loops.

const LOG2_E: f32 = std::f32::consts::LOG2_E;
const LN_2_HI: f32 = 0.693_359_4;
const LN_2_LO: f32 = -2.121_944_4e-4;
/// 1.5 · 2²³: adding and subtracting it rounds an f32 of magnitude < 2²² to an integer.
const ROUND: f32 = 12_582_912.0;

/// `e^x`, within 2 ulp over the range where it is a normal f32 (and 0 below it): Cody–Waite
/// range reduction and Cephes' polynomial for `expf`, with no branches.
#[inline(always)]
fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2_E + ROUND) - ROUND;
    let r = x - n * LN_2_HI - n * LN_2_LO;
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    e * f32::from_bits(((n as i32 + 127) << 23) as u32)
}

const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// 1 / √(2π).
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

/// Φ(x) (the standard normal CDF) and `e^(-x²/2)`, which its derivative shares.
#[inline(always)]
fn normal_cdf(x: f32) -> (f32, f32) {
    // erf(z) = 1 - t·poly(t)·e^(-z²), t = 1 / (1 + p·z), for z = |x| / √2 ≥ 0.
    let z = x.abs() * FRAC_1_SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = ((((1.061_405_4 * t - 1.453_152_1) * t + 1.421_413_8) * t - 0.284_496_74) * t
        + 0.254_829_6)
        * t;
    let gauss = exp(-0.5 * x * x);
    let erf = (1.0 - poly * gauss).copysign(x);
    (0.5 * (1.0 + erf), gauss)
}

fn gelu_slice(x: &[f32], out: &mut [f32]) {
    for (o, &x) in out.iter_mut().zip(x) {
        *o = x * normal_cdf(x).0;
    }
}

fn gelu_grad_slice(x: &[f32], grad: &[f32], out: &mut [f32]) {
    for ((o, &x), &g) in out.iter_mut().zip(x).zip(grad) {
        let (cdf, gauss) = normal_cdf(x);
        *o = g * (cdf + x * FRAC_1_SQRT_2PI * gauss);
    }
}

/// Row-wise causal softmax of `[.., new, total]` scores (see [`Kernels::causal_softmax`]).
fn softmax_rows(s: &[f32], out: &mut [f32], new: usize, total: usize, scale: f32) {
    let offset = total - new;
    for (r, (row, o)) in s
        .chunks_exact(total)
        .zip(out.chunks_exact_mut(total))
        .enumerate()
    {
        let seen = offset + r % new + 1;
        let (row, (o, hidden)) = (&row[..seen], o.split_at_mut(seen));
        let max = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) * scale;
        let mut sum = 0.0;
        for (o, &v) in o.iter_mut().zip(row) {
            *o = exp(v * scale - max);
            sum += *o;
        }
        let inv = 1.0 / sum;
        o.iter_mut().for_each(|o| *o *= inv);
        hidden.fill(0.0);
    }
}

/// The softmax's input gradient: `scale · y · (g - Σ g·y)` per row.
fn softmax_grad_rows(y: &[f32], g: &[f32], out: &mut [f32], total: usize, scale: f32) {
    let rows = y.chunks_exact(total).zip(g.chunks_exact(total));
    for ((y, g), o) in rows.zip(out.chunks_exact_mut(total)) {
        let dot: f32 = y.iter().zip(g).map(|(y, g)| y * g).sum();
        for ((o, &y), &g) in o.iter_mut().zip(y).zip(g) {
            *o = scale * y * (g - dot);
        }
    }
}

/// Mean and 1/σ of one row.
#[inline(always)]
fn row_stats(row: &[f32], eps: f32) -> (f32, f32) {
    let n = row.len() as f32;
    let mean = row.iter().sum::<f32>() / n;
    let var = row.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    (mean, 1.0 / (var + eps).sqrt())
}

fn layer_norm_rows(x: &[f32], gamma: &[f32], beta: &[f32], eps: f32, out: &mut [f32]) {
    let d = gamma.len();
    for (row, o) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        let (mean, rstd) = row_stats(row, eps);
        for (((o, &v), &g), &b) in o.iter_mut().zip(row).zip(gamma).zip(beta) {
            *o = (v - mean) * rstd * g + b;
        }
    }
}

/// `dx = (1/σ)·(ĝ - mean(ĝ) - x̂·mean(ĝ·x̂))` with `ĝ = grad·γ`, `dγ = Σ grad·x̂`, `dβ = Σ grad`.
fn layer_norm_grad_rows(
    x: &[f32],
    gamma: &[f32],
    grad: &[f32],
    eps: f32,
    dx: &mut [f32],
    dgamma: &mut [f32],
    dbeta: &mut [f32],
) {
    let d = gamma.len();
    let n = d as f32;
    let rows = x.chunks_exact(d).zip(grad.chunks_exact(d));
    for ((row, g), dx) in rows.zip(dx.chunks_exact_mut(d)) {
        let (mean, rstd) = row_stats(row, eps);
        let (mut sum_g, mut sum_gx) = (0.0, 0.0);
        for ((&v, &g), &w) in row.iter().zip(g).zip(gamma) {
            let xhat = (v - mean) * rstd;
            sum_g += g * w;
            sum_gx += g * w * xhat;
        }
        let (mean_g, mean_gx) = (sum_g / n, sum_gx / n);
        for (i, ((&v, &g), &w)) in row.iter().zip(g).zip(gamma).enumerate() {
            let xhat = (v - mean) * rstd;
            dx[i] = rstd * (g * w - mean_g - xhat * mean_gx);
            dgamma[i] += g * xhat;
            dbeta[i] += g;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::Param;
    use burn::tensor::Distribution;

    /// The largest absolute difference between two tensors.
    fn diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
        (a - b).abs().max().into_scalar::<f32>()
    }

    #[test]
    fn kernels_and_their_gradients_equal_burns_ops() {
        let device = Device::flex().autodiff();
        let normal = Distribution::Normal(0.0, 2.0);
        let input = |dims: [usize; 4]| Tensor::<4>::random(dims, normal, &device).require_grad();
        // A fixed, uneven upstream gradient (the same for both), so that the backward passes
        // are really compared.
        let weigh = |t: Tensor<4>| {
            let dims = t.dims();
            let w = (0..dims.iter().product::<usize>())
                .map(|i| ((i * 7919) % 13) as f32 / 6.0 - 1.0)
                .collect();
            (t * Tensor::from_data(TensorData::new(w, dims), &device)).sum()
        };
        let grads_of = |x: &Tensor<4>, y: Tensor<4>| {
            let g = weigh(y).backward();
            Tensor::<4>::from_inner(x.grad(&g).unwrap())
        };

        // GELU, over the range where erf matters and beyond.
        let x = input([2, 3, 7, 40]);
        let ours = gelu(x.clone());
        let theirs = burn::tensor::activation::gelu(x.clone());
        assert!(diff(ours.clone(), theirs.clone()) < 2e-6);
        assert!(diff(grads_of(&x, ours), grads_of(&x, theirs)) < 2e-5);

        // Causal softmax, as at the first call (new = total) and with a cache (new < total).
        for (new, total) in [(9, 9), (3, 11)] {
            let s = input([2, 3, new, total]);
            let ours = causal_softmax(s.clone(), 0.25);
            let mask = causal_mask(new, total, &device);
            let theirs = softmax(s.clone().mul_scalar(0.25) + mask.unsqueeze::<4>(), 3);
            assert!(diff(ours.clone(), theirs.clone()) < 1e-6, "{new}/{total}");
            assert!(diff(grads_of(&s, ours), grads_of(&s, theirs)) < 1e-5);
        }

        // Layer norm, for the input and both parameters.
        let mut ln = burn::nn::LayerNormConfig::new(40).init(&device);
        ln.gamma = Param::from_tensor(Tensor::random([40], normal, &device));
        ln.beta = Some(Param::from_tensor(Tensor::random([40], normal, &device)));
        let x = input([2, 3, 7, 40]);
        let ours = layer_norm(&ln, x.clone());
        let theirs = ln.forward(x.clone());
        assert!(diff(ours.clone(), theirs.clone()) < 1e-5);
        let (g_ours, g_theirs) = (weigh(ours).backward(), weigh(theirs).backward());
        let grad = |p: &Tensor<1>, g| Tensor::<1>::from_inner(p.grad(g).unwrap());
        let dx = |g| Tensor::<4>::from_inner(x.grad(g).unwrap());
        assert!(diff(dx(&g_ours), dx(&g_theirs)) < 1e-4);
        let (gamma, beta) = (ln.gamma.val(), ln.beta.as_ref().unwrap().val());
        assert!(diff(grad(&gamma, &g_ours), grad(&gamma, &g_theirs)) < 1e-4);
        assert!(diff(grad(&beta, &g_ours), grad(&beta, &g_theirs)) < 1e-4);
    }

    #[test]
    fn exp_and_erf_match_the_standard_library() {
        for i in -2000..=2000 {
            let x = i as f32 / 100.0;
            let (want, got) = (x.exp(), exp(x));
            assert!(
                (got - want).abs() <= 3e-7 * want,
                "exp({x}): {got} vs {want}"
            );
        }
        // Φ against a numerically integrated density is circular; check symmetry and known
        // values instead (erf(1) = 0.8427007929, erf(0.5) = 0.5204998778).
        let erf = |x: f32| 2.0 * normal_cdf(x * std::f32::consts::SQRT_2).0 - 1.0;
        assert!((erf(1.0) - 0.842_700_8).abs() < 3e-7);
        assert!((erf(0.5) - 0.520_499_9).abs() < 3e-7);
        assert!((erf(-0.5) + 0.520_499_9).abs() < 3e-7);
        assert_eq!(erf(0.0), 0.0);
        assert!((erf(6.0) - 1.0).abs() < 1e-7 && (erf(-6.0) + 1.0).abs() < 1e-7);
    }
}
