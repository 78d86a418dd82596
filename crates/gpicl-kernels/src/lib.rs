//! The model's three hot spots outside its linear layers, with CPU kernels of our own for Flex.
//!
//! Under autodiff, burn builds layer norm and softmax from a dozen primitive ops each (every one
//! a pass over memory and a node with saved inputs), Flex computes GELU with a scalar `erf` per
//! element, and attention is a matrix product call per head and sequence. GELU alone was 15–18 %
//! of a Flex training step and burn's element-wise ops another 12–18 % (README, "The CPU step").
//! Here each is one operation with a hand-written backward, through burn's backend-extension
//! API:
//!
//! - [`gelu`]: exact GELU, `x·Φ(x)`, with `erf` from Abramowitz–Stegun 7.1.26 (absolute error
//!   ≤ 1.5·10⁻⁷, PyTorch's CPU formula) and an `exp` written to vectorise.
//! - [`causal_attention`]: all heads' causal attention in one op, forward and backward: the
//!   scores, the masked softmax and the weighted sum, over heads of 8 to 32 values, where Flex
//!   would make a matrix product call per head and sequence (256 tiny products per layer at
//!   `bench`'s shape) and burn's autodiff a node per op. Sequences run in parallel (rayon,
//!   natively).
//! - [`layer_norm`]: one pass forward, one backward, for all three inputs.
//!
//! Only Flex runs these kernels. On every other device (WebGPU, wgpu, CUDA) the functions run
//! burn's own ops, as before; the parity tests hold the two to the same numbers.
//!
//! A crate of its own (re-exported as `gpicl_core::kernels`) so that the page's build can
//! optimise these loops for speed and the rest of the core for size (`Cargo.toml`, profile
//! `web`): at one level for the whole core, 3 made the page's module 71 KB larger (gzip), `s`
//! made the CPU fallback 40 % slower.

#![warn(missing_docs)]

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, unary};
use burn::backend::flex::{FlexTensor, Layout};
use burn::backend::ops::{ActivationOps, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{
    Autodiff, AutodiffBackend, Backend, Dispatch, DispatchDevice, Flex, backend_extension,
};
use burn::nn::LayerNorm;
use burn::prelude::*;
use burn::tensor::Bytes;
use burn::tensor::DType;
use burn::tensor::activation::softmax;

/// The operations, as a burn backend extension: implemented for Flex, and for autodiff over Flex
/// with the backward passes below.
#[backend_extension(Flex, Autodiff)]
pub trait Kernels: Backend {
    /// Exact GELU.
    fn fast_gelu(x: FloatTensor<Self>) -> FloatTensor<Self>;
    /// Causal multi-head attention of queries `[batch, new, heads, d_head]` on keys and values
    /// `[batch, total, heads, d_head]`, where query `i` sees positions `0 ..= total - new + i`:
    /// the context `[batch, new, heads, d_head]` and the attention weights
    /// `[batch, heads, new, total]` (the weights are not differentiated).
    fn causal_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        scale: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>);
    /// Layer norm over the last axis.
    fn fused_layer_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        epsilon: f32,
    ) -> FloatTensor<Self>;
}

/// Whether `device` (with or without autodiff) is Flex, where the kernels run.
pub fn on_flex(device: &Device) -> bool {
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

/// Causal multi-head attention: for queries `q` `[batch, new, heads, d_head]` that follow
/// `total - new` earlier positions, and keys and values `k`, `v` `[batch, total, heads, d_head]`
/// of all positions, query `i` attends to positions `0 ..= total - new + i` with weights
/// `softmax(scale · q·k)`. Returns the context `[batch, new, heads, d_head]` and the weights
/// `[batch, heads, new, total]` (0 where a query may not look).
pub fn causal_attention(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    scale: f32,
) -> (Tensor<4>, Tensor<4>) {
    if !on_flex(&q.device()) || q.dtype() != DType::F32 {
        return attention_by_ops(q, k, v, scale);
    }
    let (context, weights) = <Dispatch as Kernels>::causal_attention(
        q.into_dispatch(),
        k.into_dispatch(),
        v.into_dispatch(),
        scale,
    );
    (
        Tensor::from_dispatch(context),
        Tensor::from_dispatch(weights),
    )
}

/// [`causal_attention`] with burn's ops (a matrix product, the mask, softmax, a matrix product):
/// what every device but Flex runs.
fn attention_by_ops(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    scale: f32,
) -> (Tensor<4>, Tensor<4>) {
    let [_, new, _, _] = q.dims();
    let total = k.dims()[1];
    let heads = |t: Tensor<4>| t.swap_dims(1, 2); // [b, h, len, dh]
    let scores = heads(q).matmul(heads(k).swap_dims(2, 3)).mul_scalar(scale);
    let mask = causal_mask(new, total, &scores.device());
    let weights = softmax(scores + mask.unsqueeze::<4>(), 3);
    let context = weights.clone().matmul(heads(v)).swap_dims(1, 2);
    (context, weights)
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
        map_f32(&x, gelu_slice)
    }

    fn causal_attention(
        q: FlexTensor,
        k: FlexTensor,
        v: FlexTensor,
        scale: f32,
    ) -> (FlexTensor, FlexTensor) {
        let shape = AttentionShape::of(&q, &k);
        let (q, k, v) = (q.to_contiguous(), k.to_contiguous(), v.to_contiguous());
        let mut context = Output::zeros(q.layout().shape().clone());
        let dims = [shape.batch, shape.heads, shape.new, shape.total];
        let mut weights = Output::zeros(Shape::new(dims));
        shape.forward(
            (f32s(&q), f32s(&k), f32s(&v)),
            scale,
            &mut context.values,
            &mut weights.values,
        );
        (context.tensor(), weights.tensor())
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
        map_f32(&x, |x, out| layer_norm_rows(x, g, b, eps, out))
    }
}

/// A new tensor of `x`'s shape, filled by `f(x's values, output)`.
fn map_f32(x: &FlexTensor, f: impl FnOnce(&[f32], &mut [f32])) -> FlexTensor {
    let x = x.to_contiguous();
    let mut out = Output::zeros(x.layout().shape().clone());
    f(f32s(&x), &mut out.values);
    out.tensor()
}

/// A new tensor's values, and its shape.
struct Output {
    values: Vec<f32>,
    shape: Shape,
}

impl Output {
    fn zeros(shape: Shape) -> Self {
        Output {
            values: vec![0.0; shape.num_elements()],
            shape,
        }
    }

    /// The tensor, taking the values as they are (`FlexTensor::empty` would allocate bytes and
    /// then copy them once more to align them).
    fn tensor(self) -> FlexTensor {
        let layout = Layout::contiguous(self.shape);
        FlexTensor::new(Bytes::from_elems(self.values), layout, DType::F32)
    }
}

/// A contiguous f32 tensor's values.
fn f32s(x: &FlexTensor) -> &[f32] {
    x.as_slice::<f32>()
        .expect("a contiguous f32 tensor (checked by the caller)")
}

/// Defines a kernel, `fn name[lanes](args) { body }`, compiled for wider vectors where there are any:
/// AVX2 and FMA on x86-64 CPUs that have them (chosen at run time: the loops vectorise to 8
/// lanes there instead of SSE2's 4, and `lanes` is [`Avx2`]), SIMD128 in WebAssembly (which the
/// page's module needs anyway, for burn's own kernels); elsewhere as built. In the body, `lanes`
/// is the [`Lanes`] to use for explicit 8-wide arithmetic. The helpers a body calls are
/// `#[inline(always)]`, so that they are compiled with it.
macro_rules! vectorised {
    ($(#[$meta:meta])* fn $name:ident[$lanes:ident]($($arg:ident: $ty:ty),* $(,)?) $body:block) => {
        $(#[$meta])*
        #[allow(clippy::too_many_arguments)]
        fn $name($($arg: $ty),*) {
            #[inline(always)]
            #[allow(clippy::too_many_arguments, unused_variables)]
            fn body<S: Lanes>($lanes: S, $($arg: $ty),*) $body

            #[cfg(target_arch = "x86_64")]
            if let Some(avx2) = Avx2::detect() {
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn wide(avx2: Avx2, $($arg: $ty),*) {
                    body(avx2, $($arg),*)
                }
                // SAFETY: the CPU has AVX2 and FMA (`detect` checked).
                return unsafe { wide(avx2, $($arg),*) };
            }
            #[cfg(target_arch = "wasm32")]
            {
                #[target_feature(enable = "simd128")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn wide($($arg: $ty),*) {
                    body(Portable, $($arg),*)
                }
                // SAFETY: an engine that runs the page's module has SIMD128 (see above).
                return unsafe { wide($($arg),*) };
            }
            #[allow(unreachable_code)]
            body(Portable, $($arg),*)
        }
    };
}

/// 8-lane arithmetic, spelt out where the compiler would not find it on its own (it scalarises
/// short fixed-size sums kept in several accumulators).
trait Lanes: Copy {
    /// 8 values.
    type V: Copy;
    /// Zeros.
    fn zero(self) -> Self::V;
    /// `x[..8]`.
    fn load(self, x: &[f32]) -> Self::V;
    /// `acc + a · x`.
    fn madd(self, acc: Self::V, a: f32, x: Self::V) -> Self::V;
    /// The values.
    fn store(self, v: Self::V) -> [f32; 8];
}

/// Plain arrays: whatever the compiler makes of them.
#[derive(Clone, Copy)]
struct Portable;

impl Lanes for Portable {
    type V = [f32; 8];

    #[inline(always)]
    fn zero(self) -> [f32; 8] {
        [0.0; 8]
    }

    #[inline(always)]
    fn load(self, x: &[f32]) -> [f32; 8] {
        x[..8].try_into().unwrap()
    }

    #[inline(always)]
    fn madd(self, acc: [f32; 8], a: f32, x: [f32; 8]) -> [f32; 8] {
        std::array::from_fn(|l| acc[l] + a * x[l])
    }

    #[inline(always)]
    fn store(self, v: [f32; 8]) -> [f32; 8] {
        v
    }
}

/// AVX2 and FMA registers. Only [`Avx2::detect`] makes one, on a CPU that has them; its
/// operations are compiled into the kernels that `vectorised!` builds for such CPUs.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Avx2(());

#[cfg(target_arch = "x86_64")]
impl Avx2 {
    fn detect() -> Option<Self> {
        let yes = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
        yes.then_some(Avx2(()))
    }
}

// SAFETY (each block below): an `Avx2` exists only on a CPU with AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
impl Lanes for Avx2 {
    type V = std::arch::x86_64::__m256;

    #[inline(always)]
    fn zero(self) -> Self::V {
        unsafe { std::arch::x86_64::_mm256_setzero_ps() }
    }

    #[inline(always)]
    fn load(self, x: &[f32]) -> Self::V {
        let x = &x[..8];
        unsafe { std::arch::x86_64::_mm256_loadu_ps(x.as_ptr()) }
    }

    #[inline(always)]
    fn madd(self, acc: Self::V, a: f32, x: Self::V) -> Self::V {
        use std::arch::x86_64::{_mm256_fmadd_ps, _mm256_set1_ps};
        unsafe { _mm256_fmadd_ps(_mm256_set1_ps(a), x, acc) }
    }

    #[inline(always)]
    fn store(self, v: Self::V) -> [f32; 8] {
        let mut out = [0f32; 8];
        unsafe { std::arch::x86_64::_mm256_storeu_ps(out.as_mut_ptr(), v) };
        out
    }
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
                    zip_f32(&x, &grad, gelu_grad_slice)
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

    fn causal_attention(
        q: FloatTensor<Self>,
        k: FloatTensor<Self>,
        v: FloatTensor<Self>,
        scale: f32,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        #[derive(Debug)]
        struct Attention {
            scale: f32,
        }

        impl Backward<Flex, 3> for Attention {
            /// The inputs and the weights.
            type State = [FlexTensor; 4];

            fn backward(
                self,
                ops: Ops<Self::State, 3>,
                grads: &mut Gradients,
                _: &mut Checkpointer,
            ) {
                let grad = grads.consume::<Flex>(&ops.node).to_contiguous();
                let [q, k, v, weights] = ops.state;
                let shape = AttentionShape::of(&q, &k);
                let mut dq = Output::zeros(q.layout().shape().clone());
                let mut dk = Output::zeros(k.layout().shape().clone());
                let mut dv = Output::zeros(k.layout().shape().clone());
                shape.backward(
                    (f32s(&q), f32s(&k), f32s(&v)),
                    f32s(&weights),
                    f32s(&grad),
                    self.scale,
                    (&mut dq.values, &mut dk.values, &mut dv.values),
                );
                let inputs = ops.parents.map(|node| node.map(|node| node.id));
                register(grads, inputs, [dq, dk, dv].map(Output::tensor));
            }
        }

        match (Attention { scale })
            .prepare::<C>([q.node(), k.node(), v.node()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let [q, k, v] = [q, k, v].map(|t| t.primitive().to_contiguous());
                let (context, weights) =
                    Flex::causal_attention(q.clone(), k.clone(), v.clone(), scale);
                let context = prep.finish([q, k, v, weights.clone()], context);
                (context, Self::from_inner(weights))
            }
            OpsKind::UnTracked(prep) => {
                let [q, k, v] = [q, k, v].map(|t| t.into_primitive());
                let (context, weights) = Flex::causal_attention(q, k, v, scale);
                (prep.finish(context), Self::from_inner(weights))
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
                let grad = grads.consume::<Flex>(&ops.node);
                let (x, gamma) = ops.state;
                let (dx, dgamma, dbeta) = layer_norm_backward(&x, &gamma, &grad, self.epsilon);
                let inputs = ops.parents.map(|node| node.map(|node| node.id));
                register(grads, inputs, [dx, dgamma, dbeta]);
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

/// Gives each tracked input its gradient.
fn register<const N: usize>(
    grads: &mut Gradients,
    inputs: [Option<NodeId>; N],
    gradients: [FlexTensor; N],
) {
    for (id, grad) in inputs.into_iter().zip(gradients) {
        if let Some(id) = id {
            grads.register::<Flex>(id, grad);
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
    let mut dx = Output::zeros(x.layout().shape().clone());
    let mut dgamma = vec![0f32; d];
    let mut dbeta = vec![0f32; d];
    layer_norm_grad_rows(
        f32s(&x),
        f32s(&gamma),
        f32s(&grad),
        eps,
        &mut dx.values,
        &mut dgamma,
        &mut dbeta,
    );
    let vector = |values| {
        Output {
            values,
            shape: Shape::new([d]),
        }
        .tensor()
    };
    (dx.tensor(), vector(dgamma), vector(dbeta))
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

vectorised! {
fn gelu_slice[lanes](x: &[f32], out: &mut [f32]) {
    for (o, &x) in out.iter_mut().zip(x) {
        *o = x * normal_cdf(x).0;
    }
}
}

vectorised! {
fn gelu_grad_slice[lanes](x: &[f32], grad: &[f32], out: &mut [f32]) {
    for ((o, &x), &g) in out.iter_mut().zip(x).zip(grad) {
        let (cdf, gauss) = normal_cdf(x);
        *o = g * (cdf + x * FRAC_1_SQRT_2PI * gauss);
    }
}
}

/// The sizes of one attention call (see [`Kernels::causal_attention`]): queries
/// `[batch, new, heads, d_head]`, keys and values `[batch, total, heads, d_head]`.
#[derive(Debug, Clone, Copy)]
struct AttentionShape {
    batch: usize,
    new: usize,
    total: usize,
    heads: usize,
    d_head: usize,
}

impl AttentionShape {
    fn of(q: &FlexTensor, k: &FlexTensor) -> Self {
        let (q, k) = (q.layout().shape(), k.layout().shape());
        Self {
            batch: q[0],
            new: q[1],
            heads: q[2],
            d_head: q[3],
            total: k[1],
        }
    }

    /// Positions query `i` may attend to.
    fn seen(&self, i: usize) -> usize {
        self.total - self.new + i + 1
    }

    /// Values of one sequence's queries, and of its keys (or values).
    fn sizes(&self) -> (usize, usize) {
        let row = self.heads * self.d_head;
        (self.new * row, self.total * row)
    }

    /// Fills `context` and `weights` (zeroed) for the inputs `(q, k, v)`, one sequence at a time.
    fn forward(
        &self,
        (q, k, v): (&[f32], &[f32], &[f32]),
        scale: f32,
        context: &mut [f32],
        weights: &mut [f32],
    ) {
        let (nq, nk) = self.sizes();
        let nw = self.heads * self.new * self.total;
        let sequences = context.chunks_mut(nq).zip(weights.chunks_mut(nw)).collect();
        map_indexed(sequences, |b, (context, weights)| {
            let (q, k, v) = (&q[b * nq..][..nq], &k[b * nk..][..nk], &v[b * nk..][..nk]);
            attend(self, q, k, v, scale, context, weights)
        });
    }

    /// The gradients `(dq, dk, dv)` (zeroed) from the context's gradient `grad`, the inputs and
    /// the forward pass's `weights`, one sequence at a time.
    fn backward(
        &self,
        (q, k, v): (&[f32], &[f32], &[f32]),
        weights: &[f32],
        grad: &[f32],
        scale: f32,
        (dq, dk, dv): (&mut [f32], &mut [f32], &mut [f32]),
    ) {
        let (nq, nk) = self.sizes();
        let nw = self.heads * self.new * self.total;
        let sequences = (dq.chunks_mut(nq).zip(dk.chunks_mut(nk))).zip(dv.chunks_mut(nk));
        map_indexed(sequences.collect(), |b, ((dq, dk), dv)| {
            let (q, k, v) = (&q[b * nq..][..nq], &k[b * nk..][..nk], &v[b * nk..][..nk]);
            let (weights, grad) = (&weights[b * nw..][..nw], &grad[b * nq..][..nq]);
            attend_backward(self, q, k, v, weights, grad, scale, dq, dk, dv)
        });
    }
}

vectorised! {
/// One sequence's attention (see [`Kernels::causal_attention`]), into zeroed `context` and
/// `weights`.
fn attend[lanes](
    shape: &AttentionShape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    scale: f32,
    context: &mut [f32],
    weights: &mut [f32],
) {
    let (h, dh, n, t) = (shape.heads, shape.d_head, shape.new, shape.total);
    let (stride, padded) = (h * dh, t.next_multiple_of(32));
    // One head's keys, transposed to `[d_head, total]` (rows padded to 32 columns).
    let mut keys = vec![0f32; dh * padded];
    let mut scores = vec![0f32; padded];
    for head in 0..h {
        transpose_head(k, head, h, dh, padded, &mut keys);
        for i in 0..n {
            let seen = shape.seen(i);
            let at = (i * h + head) * dh;
            vector_matrix(lanes, &q[at..at + dh], &keys, padded, &mut scores[..seen]);
            let row = &mut weights[(head * n + i) * t..][..seen];
            softmax_into(&mut scores, scale, row);
            weighted_rows(lanes, row, &v[head * dh..], stride, &mut context[at..at + dh]);
        }
    }
}
}

vectorised! {
/// One sequence's attention gradients, into zeroed `dq`, `dk`, `dv`. With `P` the weights and
/// `dO` the context's gradient: `dP = dO·Vᵀ`, `dS = scale · P ⊙ (dP - Σⱼ P ⊙ dP)`,
/// `dQ = dS·K`, `dK = dSᵀ·Q`, `dV = Pᵀ·dO`.
fn attend_backward[lanes](
    shape: &AttentionShape,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    weights: &[f32],
    grad: &[f32],
    scale: f32,
    dq: &mut [f32],
    dk: &mut [f32],
    dv: &mut [f32],
) {
    let (h, dh, n, t) = (shape.heads, shape.d_head, shape.new, shape.total);
    let (stride, padded) = (h * dh, t.next_multiple_of(32));
    let mut values = vec![0f32; dh * padded];
    // One head's dS, `[new, total]`, 0 where a query may not look.
    let mut ds = vec![0f32; n * t];
    let mut column = vec![0f32; n];
    for head in 0..h {
        transpose_head(v, head, h, dh, padded, &mut values);
        for i in 0..n {
            let seen = shape.seen(i);
            let at = (i * h + head) * dh;
            let p = &weights[(head * n + i) * t..][..seen];
            let row = &mut ds[i * t..][..seen];
            vector_matrix(lanes, &grad[at..at + dh], &values, padded, row);
            let centre = dot(p, row);
            for (x, &pj) in row.iter_mut().zip(p) {
                *x = scale * pj * (*x - centre);
            }
            weighted_rows(lanes, row, &k[head * dh..], stride, &mut dq[at..at + dh]);
        }
        // dK and dV, a key at a time, over the queries that see it (`i ≥ first`).
        let offset = t - n;
        for j in 0..t {
            let first = j.saturating_sub(offset);
            let at = (j * h + head) * dh;
            let rows = first * stride + head * dh;
            for (c, i) in column[first..].iter_mut().zip(first..) {
                *c = ds[i * t + j];
            }
            weighted_rows(lanes, &column[first..], &q[rows..], stride, &mut dk[at..at + dh]);
            for (c, i) in column[first..].iter_mut().zip(first..) {
                *c = weights[(head * n + i) * t + j];
            }
            weighted_rows(lanes, &column[first..], &grad[rows..], stride, &mut dv[at..at + dh]);
        }
    }
}
}

/// Copies head `head` of `[len, heads, d_head]` rows into `out` as `[d_head, padded]`.
#[inline(always)]
fn transpose_head(x: &[f32], head: usize, heads: usize, dh: usize, padded: usize, out: &mut [f32]) {
    for (j, row) in x.chunks_exact(heads * dh).enumerate() {
        for (d, &value) in row[head * dh..(head + 1) * dh].iter().enumerate() {
            out[d * padded + j] = value;
        }
    }
}

/// `out[j] = Σ_d a[d] · m[d][j]` for the first `out.len()` columns of `m`, whose rows are
/// `stride` long (a multiple of 32): 32 columns at a time, in four independent registers.
#[inline(always)]
fn vector_matrix<S: Lanes>(lanes: S, a: &[f32], m: &[f32], stride: usize, out: &mut [f32]) {
    let mut start = 0;
    while start < out.len() {
        let mut s = [lanes.zero(); 4];
        for (d, &ad) in a.iter().enumerate() {
            let row = &m[d * stride + start..][..32];
            for (b, s) in s.iter_mut().enumerate() {
                *s = lanes.madd(*s, ad, lanes.load(&row[b * 8..]));
            }
        }
        let take = (out.len() - start).min(32);
        let sums = s.map(|s| lanes.store(s));
        for (o, &v) in out[start..start + take]
            .iter_mut()
            .zip(sums.iter().flatten())
        {
            *o = v;
        }
        start += take;
    }
}

/// `out = Σ_j w[j] · x[j·stride ..][.. out.len()]` (a weighted sum of rows): 16 values at a
/// time in two registers, two rows at a time into two more; then 8; then one by one.
#[inline(always)]
fn weighted_rows<S: Lanes>(lanes: S, w: &[f32], x: &[f32], stride: usize, out: &mut [f32]) {
    let mut start = 0;
    while start + 16 <= out.len() {
        let (mut e0, mut e1, mut o0, mut o1) =
            (lanes.zero(), lanes.zero(), lanes.zero(), lanes.zero());
        let mut pairs = w.chunks_exact(2);
        for (p, pair) in (&mut pairs).enumerate() {
            let (even, odd) = (
                &x[2 * p * stride + start..],
                &x[(2 * p + 1) * stride + start..],
            );
            e0 = lanes.madd(e0, pair[0], lanes.load(even));
            e1 = lanes.madd(e1, pair[0], lanes.load(&even[8..]));
            o0 = lanes.madd(o0, pair[1], lanes.load(odd));
            o1 = lanes.madd(o1, pair[1], lanes.load(&odd[8..]));
        }
        if let [last] = pairs.remainder() {
            let row = &x[(w.len() - 1) * stride + start..];
            e0 = lanes.madd(e0, *last, lanes.load(row));
            e1 = lanes.madd(e1, *last, lanes.load(&row[8..]));
        }
        let [e0, e1, o0, o1] = [e0, e1, o0, o1].map(|v| lanes.store(v));
        let sums = e0.iter().chain(&e1).zip(o0.iter().chain(&o1));
        for (o, (e, d)) in out[start..start + 16].iter_mut().zip(sums) {
            *o = e + d;
        }
        start += 16;
    }
    if start + 8 <= out.len() {
        let mut s = lanes.zero();
        for (j, &wj) in w.iter().enumerate() {
            s = lanes.madd(s, wj, lanes.load(&x[j * stride + start..]));
        }
        out[start..start + 8].copy_from_slice(&lanes.store(s));
        start += 8;
    }
    for (c, out) in out.iter_mut().enumerate().skip(start) {
        *out = w
            .iter()
            .enumerate()
            .map(|(j, &wj)| wj * x[j * stride + c])
            .sum();
    }
}

/// `out = softmax(scale · scores[..out.len()])` (`scale` > 0), in whole registers: `scores` is
/// a scratch row of a whole number of lanes, which this overwrites.
#[inline(always)]
fn softmax_into(scores: &mut [f32], scale: f32, out: &mut [f32]) {
    let seen = out.len();
    let scores = &mut scores[..seen.next_multiple_of(8)];
    scores[seen..].fill(f32::NEG_INFINITY);
    let max = fold8(scores, f32::NEG_INFINITY, f32::max) * scale;
    for c in scores.chunks_exact_mut(8) {
        let c: &mut [f32; 8] = c.try_into().unwrap();
        for v in c.iter_mut() {
            *v = exp(*v * scale - max);
        }
    }
    let inv = 1.0 / fold8(scores, 0.0, |a, b| a + b);
    for (o, &e) in out.iter_mut().zip(scores.iter()) {
        *o = e * inv;
    }
}

/// Folds `x` with `f` (associative and commutative) in 8 independent lanes, which the compiler
/// turns into one vector register, then folds the lanes.
#[inline(always)]
fn fold8(x: &[f32], init: f32, f: impl Fn(f32, f32) -> f32) -> f32 {
    let mut acc = [init; 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder().iter().fold(init, |a, &b| f(a, b));
    for c in chunks {
        let c: &[f32; 8] = c.try_into().unwrap();
        for l in 0..8 {
            acc[l] = f(acc[l], c[l]);
        }
    }
    acc.iter().fold(rest, |a, &b| f(a, b))
}

/// `Σ x·y`, in 8 lanes.
#[inline(always)]
fn dot(x: &[f32], y: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (cx, cy) = (x.chunks_exact(8), y.chunks_exact(8));
    let rest: f32 = cx
        .remainder()
        .iter()
        .zip(cy.remainder())
        .map(|(a, b)| a * b)
        .sum();
    for (a, b) in cx.zip(cy) {
        let (a, b): (&[f32; 8], &[f32; 8]) = (a.try_into().unwrap(), b.try_into().unwrap());
        for l in 0..8 {
            acc[l] += a[l] * b[l];
        }
    }
    acc.iter().sum::<f32>() + rest
}

/// Writes one row's normalised values `(x - mean) / σ` to `xhat`; returns 1/σ.
#[inline(always)]
fn normalise(row: &[f32], eps: f32, xhat: &mut [f32]) -> f32 {
    let n = row.len() as f32;
    let mean = fold8(row, 0.0, |a, b| a + b) / n;
    for (c, &v) in xhat.iter_mut().zip(row) {
        *c = v - mean;
    }
    let rstd = 1.0 / (dot(xhat, xhat) / n + eps).sqrt();
    xhat.iter_mut().for_each(|c| *c *= rstd);
    rstd
}

vectorised! {
fn layer_norm_rows[lanes](x: &[f32], gamma: &[f32], beta: &[f32], eps: f32, out: &mut [f32]) {
    let d = gamma.len();
    for (row, o) in x.chunks_exact(d).zip(out.chunks_exact_mut(d)) {
        normalise(row, eps, o);
        for ((o, &g), &b) in o.iter_mut().zip(gamma).zip(beta) {
            *o = *o * g + b;
        }
    }
}
}

vectorised! {
/// `dx = (1/σ)·(ĝ - mean(ĝ) - x̂·mean(ĝ·x̂))` with `ĝ = grad·γ`, `dγ = Σ grad·x̂`, `dβ = Σ grad`.
fn layer_norm_grad_rows[lanes](
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
    let (mut xhat, mut gw) = (vec![0f32; d], vec![0f32; d]);
    let rows = x.chunks_exact(d).zip(grad.chunks_exact(d));
    for ((row, g), dx) in rows.zip(dx.chunks_exact_mut(d)) {
        let rstd = normalise(row, eps, &mut xhat);
        for ((o, &g), &w) in gw.iter_mut().zip(g).zip(gamma) {
            *o = g * w;
        }
        let mean_g = fold8(&gw, 0.0, |a, b| a + b) / n;
        let mean_gx = dot(&gw, &xhat) / n;
        for ((dx, &gw), &xh) in dx.iter_mut().zip(&gw).zip(&xhat) {
            *dx = rstd * (gw - mean_g - xh * mean_gx);
        }
        for (((dg, db), &g), &xh) in dgamma.iter_mut().zip(dbeta.iter_mut()).zip(g).zip(&xhat) {
            *dg += g * xh;
            *db += g;
        }
    }
}
}

/// `f(i, item)` for each item, in parallel where the `rayon` feature is on (natively, where the
/// CLI turns it on), one after another otherwise (the page has no threads); the results in the
/// items' order either way.
pub fn map_indexed<T: Send, R: Send>(
    items: Vec<T>,
    f: impl Fn(usize, T) -> R + Sync + Send,
) -> Vec<R> {
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        items
            .into_par_iter()
            .enumerate()
            .map(|(i, t)| f(i, t))
            .collect()
    }
    #[cfg(not(feature = "rayon"))]
    {
        items
            .into_iter()
            .enumerate()
            .map(|(i, t)| f(i, t))
            .collect()
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

        // Attention, as at the first call (new = total) and with a cache (new < total), against
        // burn's ops (the path every other device takes); heads of 16 values, as in the model.
        for (new, total) in [(9, 9), (3, 11)] {
            let q = input([2, new, 3, 16]);
            let (k, v) = (input([2, total, 3, 16]), input([2, total, 3, 16]));
            let (ours, w_ours) = causal_attention(q.clone(), k.clone(), v.clone(), 0.25);
            let (theirs, w_theirs) = attention_by_ops(q.clone(), k.clone(), v.clone(), 0.25);
            assert!(diff(w_ours, w_theirs) < 1e-6, "{new}/{total}");
            assert!(diff(ours.clone(), theirs.clone()) < 1e-5, "{new}/{total}");
            let (g_ours, g_theirs) = (weigh(ours).backward(), weigh(theirs).backward());
            for x in [&q, &k, &v] {
                let grad = |g| Tensor::<4>::from_inner(x.grad(g).unwrap());
                assert!(diff(grad(&g_ours), grad(&g_theirs)) < 1e-4, "{new}/{total}");
            }
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
