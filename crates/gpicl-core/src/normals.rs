//! Normal draws from a counter-based generator: value `e` of stream `key` is a pure function
//! of `(key, e)`, so a device can draw a whole batch of projections in parallel, with no state
//! and nothing uploaded, and the host can draw the same values (for baselines and tests).
//!
//! The generator, for a stream of `len` values:
//! - two 32-bit words `s1, s2` from the key (splitmix64, on the host);
//! - for each pair index `i < ceil(len / 2)`: `a = h(i ^ s1)`, `b = h(i ^ s2)`, where `h` is
//!   Chris Wellons' `lowbias32` integer hash (xor-shifts and two multiplications, a bijection
//!   of 32-bit words with low bias);
//! - uniforms from their top 24 bits: `u1 = (a>>8 + 1) / 2^24` in (0, 1],
//!   `u2 = (b>>8) / 2^24 − 1/2` in [−1/2, 1/2);
//! - Box–Muller: `r = sqrt(−2 ln u1)`, values `r·cos(2π u2)` (the first half of the stream) and
//!   `r·sin(2π u2)` (the second half), each N(0, 1); angles stay in [−π, π), where WGSL and
//!   SPIR-V bound `cos`' and `sin`'s error.
//!
//! The integer steps are exact on every backend (32-bit arithmetic, held as `i32` on devices,
//! whose multiplications wrap and whose right shifts are masked to act as logical shifts); the
//! float steps (`ln`, `sqrt`, `cos`, `sin`) are each backend's own, so values agree across
//! backends to within their accuracy ([`DEVICE_TOLERANCE`]), not bit for bit.

use burn::prelude::*;
use burn::tensor::DType;

/// How far a device's draw may be from the host's ([`normals`]): WGSL allows `cos` and `sin`
/// an absolute error of 2⁻¹¹ on [−π, π], scaled by `r` (at most 5.8, as `u1 ≥ 2⁻²⁴`).
pub const DEVICE_TOLERANCE: f32 = 4e-3;

const M1: u32 = 0x7feb_352d;
const M2: u32 = 0x846c_a68b;
const TWO_PI: f32 = std::f32::consts::TAU;
const INV_2_24: f32 = 1.0 / 16_777_216.0;

/// The two 32-bit words of stream `key`.
fn words(key: u64) -> (u32, u32) {
    let z = crate::task::mix_seed(key, 0x6e6f_726d);
    (z as u32, (z >> 32) as u32)
}

/// `lowbias32`: a 32-bit integer hash.
fn hash(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(M1);
    x ^= x >> 15;
    x = x.wrapping_mul(M2);
    x ^ (x >> 16)
}

/// The pair of uniforms of pair index `i`: `(u1 in (0, 1], u2 in [−1/2, 1/2))`.
fn uniforms(i: u32, (s1, s2): (u32, u32)) -> (f32, f32) {
    let (a, b) = (hash(i ^ s1), hash(i ^ s2));
    (
        ((a >> 8) + 1) as f32 * INV_2_24,
        (b >> 8) as f32 * INV_2_24 - 0.5,
    )
}

/// The first `len` values of stream `key`, drawn on the host.
pub fn normals(key: u64, len: usize) -> Vec<f32> {
    let w = words(key);
    let half = len.div_ceil(2);
    let mut out = vec![0.0; len];
    let (cosines, sines) = out.split_at_mut(half);
    for (i, c) in cosines.iter_mut().enumerate() {
        let (u1, u2) = uniforms(i as u32, w);
        let (r, t) = ((-2.0 * u1.ln()).sqrt(), TWO_PI * u2);
        *c = r * t.cos();
        if let Some(s) = sines.get_mut(i) {
            *s = r * t.sin();
        }
    }
    out
}

/// The first `len` values of each stream of `keys`, `[keys.len(), len]`, drawn on `device`
/// (about 30 element-wise kernels over `keys.len() · len / 2` values; nothing but the keys is
/// uploaded). Equal to [`normals`] of each key within [`DEVICE_TOLERANCE`].
pub fn normals_on(keys: &[u64], len: usize, device: &Device) -> Tensor<2> {
    let b = keys.len();
    let half = len.div_ceil(2);
    let (s1, s2): (Vec<i32>, Vec<i32>) = keys
        .iter()
        .map(|&k| {
            let (s1, s2) = words(k);
            (s1 as i32, s2 as i32)
        })
        .unzip();
    let column =
        |s: Vec<i32>| Tensor::<2, Int>::from_data(TensorData::new(s, [b, 1]), (device, DType::I32));
    let i = Tensor::<1, Int>::arange(0..half as i64, (device, DType::I32)).reshape([1, half]);
    let uniform = |s: Tensor<2, Int>| -> Tensor<2> {
        let h = hash_on(i.clone().bitwise_xor(s));
        h.bitwise_right_shift_scalar(8)
            .bitwise_and_scalar(0x00ff_ffff)
            .float()
    };
    let u1 = (uniform(column(s1)) + 1.0) * INV_2_24;
    let u2 = uniform(column(s2)) * INV_2_24 - 0.5;
    let r = (u1.log() * -2.0).sqrt();
    let t = u2 * TWO_PI;
    let both = Tensor::cat(vec![r.clone() * t.clone().cos(), r * t.sin()], 1);
    if 2 * half == len {
        both
    } else {
        both.narrow(1, 0, len)
    }
}

/// [`hash`] on a device's `i32` words: multiplications wrap as `u32`'s do; right shifts are
/// arithmetic on `i32`, so each is masked to the bits a logical shift keeps.
fn hash_on(x: Tensor<2, Int>) -> Tensor<2, Int> {
    let shift_xor = |x: Tensor<2, Int>, by: u32| {
        let kept = (1i32 << (32 - by)) - 1;
        x.clone().bitwise_xor(
            x.bitwise_right_shift_scalar(by as i32)
                .bitwise_and_scalar(kept),
        )
    };
    let x = shift_xor(x, 16).mul_scalar(M1 as i32);
    let x = shift_xor(x, 15).mul_scalar(M2 as i32);
    shift_xor(x, 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_hashes_exactly_as_the_host() {
        let words: Vec<u32> = [
            0,
            1,
            2,
            0xffff,
            0x1_0000,
            0x7fff_ffff,
            0x8000_0000,
            u32::MAX,
        ]
        .into_iter()
        .chain((0..1000u32).map(|i| i.wrapping_mul(0x9e37_79b9)))
        .collect();
        let x = Tensor::<2, Int>::from_data(
            TensorData::new(words.iter().map(|&w| w as i32).collect(), [1, words.len()]),
            (&Device::flex(), DType::I32),
        );
        let hashed: Vec<i32> = hash_on(x)
            .into_data()
            .convert::<i32>()
            .try_to_vec()
            .unwrap();
        for (w, h) in words.iter().zip(hashed) {
            assert_eq!(h as u32, hash(*w), "word {w:#x}");
        }
        // A bijection: no two distinct words collide.
        let mut distinct = words.clone();
        distinct.sort_unstable();
        distinct.dedup();
        let mut hashed: Vec<u32> = distinct.iter().map(|&w| hash(w)).collect();
        hashed.sort_unstable();
        hashed.dedup();
        assert_eq!(hashed.len(), distinct.len());
    }

    #[test]
    fn the_host_draws_standard_normals() {
        let v = normals(7, 200_001);
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
        let kurt = v.iter().map(|&x| (x as f64 - mean).powi(4)).sum::<f64>() / n / var / var;
        assert!(mean.abs() < 0.01, "mean {mean}");
        assert!((var - 1.0).abs() < 0.02, "variance {var}");
        assert!((kurt - 3.0).abs() < 0.1, "kurtosis {kurt}");
        // A normal's quantiles: P(|z| < 1) = 0.6827, P(|z| < 2) = 0.9545.
        let within = |c: f32| v.iter().filter(|x| x.abs() < c).count() as f64 / n;
        assert!((within(1.0) - 0.6827).abs() < 0.005);
        assert!((within(2.0) - 0.9545).abs() < 0.003);
    }

    #[test]
    fn streams_are_fixed_by_their_key_and_uncorrelated() {
        assert_eq!(normals(3, 1000), normals(3, 1000));
        let (a, b) = (normals(3, 4000), normals(4, 4000));
        assert_ne!(a, b);
        let corr = |x: &[f32], y: &[f32]| {
            x.iter().zip(y).map(|(a, b)| (a * b) as f64).sum::<f64>() / x.len() as f64
        };
        // Two keys, and one stream against itself shifted by one and by half (cos/sin pairs).
        assert!(corr(&a, &b).abs() < 0.06, "{}", corr(&a, &b));
        assert!(corr(&a[..3999], &a[1..]).abs() < 0.06);
        assert!(corr(&a[..2000], &a[2000..]).abs() < 0.06);
        // Keys that differ in one bit give unrelated streams.
        let c = normals(3 ^ (1 << 40), 4000);
        assert!(corr(&a, &c).abs() < 0.06);
    }

    #[test]
    fn a_device_draws_what_the_host_draws() {
        let device = Device::flex();
        let keys = [0u64, 1, 12_345, u64::MAX];
        for len in [1, 2, 7, 784 * 3] {
            let drawn: Vec<f32> = normals_on(&keys, len, &device)
                .into_data()
                .try_to_vec()
                .unwrap();
            for (row, &k) in drawn.chunks(len).zip(&keys) {
                let host = normals(k, len);
                for (d, h) in row.iter().zip(&host) {
                    assert!((d - h).abs() <= DEVICE_TOLERANCE, "{d} vs {h} (key {k})");
                }
            }
        }
    }
}
