//! Backend parity: the same model, forward pass and training step on Flex (CPU) and on wgpu
//! (llvmpipe Vulkan on machines without a GPU) agree within a stated tolerance.
//!
//! Tolerance: f32 kernels differ in summation order, so logits may differ by ~1e-5 relative;
//! we allow 1e-3 absolute on logits of magnitude ~1 and on the loss.

mod common;

use burn::prelude::*;
use common::{max_abs_diff, prototypes, read};
use gpicl_core::task::{ProjectionSource, TablePrior, TaskSampler};
use gpicl_core::{RunConfig, TaskPool, Trainer};

const TOL: f32 = 1e-3;

fn wgpu() -> Device {
    Device::wgpu(DeviceKind::DefaultDevice)
}

/// Projections drawn on wgpu (WGSL's 32-bit integers and its own `ln`, `cos`, `sin`) are the
/// host's within the generator's stated tolerance.
#[test]
fn projections_drawn_on_wgpu_are_the_hosts() {
    let keys = [0u64, 7, 1 << 40, u64::MAX];
    let len = 49 * 49 + 1;
    let drawn = read(gpicl_core::normals::normals_on(&keys, len, &wgpu()));
    for (row, &k) in drawn.chunks(len).zip(&keys) {
        let host = gpicl_core::normals::normals(k, len);
        let diff = max_abs_diff(row, &host);
        assert!(
            diff <= gpicl_core::normals::DEVICE_TOLERANCE,
            "key {k}: {diff}"
        );
    }
}

/// A batch's keyed projections reach wgpu as the host computes them: drawn by the device,
/// each row scaled (a random table's rows past its features zero), in the batch's layout.
#[test]
fn a_batchs_drawn_projections_on_wgpu_are_the_hosts() {
    let data = prototypes(60, 5, 10, 0.1, 3);
    let mut sampler = TaskSampler::new(TaskPool::Unlimited, 0.0, 4, 10, 8).unwrap();
    sampler.set_tables(0.5, TablePrior::Net);
    sampler.set_projections(ProjectionSource::Device);
    let batch = sampler.next_batch(&data, 4, 3);
    let drawn = read(batch.projection.to_device(4, 5, 4, &wgpu()));
    let host: Vec<f32> = (0..4).flat_map(|b| batch.projection.of(b, 5, 4)).collect();
    let diff = max_abs_diff(&drawn, &host);
    assert!(diff <= gpicl_core::normals::DEVICE_TOLERANCE, "{diff}");
}

/// On a GPU the trainer keeps its dataset's rows on the device and gathers each step's
/// examples there: the tokens are the ones uploading the batch gives, value for value. A batch
/// with random tables (rows that are not the dataset's) is uploaded, and its tokens are right too.
#[test]
fn examples_gathered_on_wgpu_are_the_uploaded_ones() {
    let data = prototypes(128, 9, 10, 0.2, 0);
    for tables in [0.0, 0.5] {
        let mut config = RunConfig::preset("tiny").unwrap();
        config.tasks.random_tables = tables;
        let format = config.tasks.format;
        let mut trainer = Trainer::new(config, &wgpu()).unwrap();
        let batch = trainer.sample(&data).unwrap();
        assert!(trainer.keeps_rows_on_device());
        assert_eq!(batch.indices.contains(&usize::MAX), tables > 0.0);
        // The host copied no example where all are gathered on the device; the same run on
        // Flex (which keeps no rows there) copies every one, from the same draws.
        assert_eq!(batch.x.is_empty(), tables == 0.0, "random tables {tables}");
        let mut host = Trainer::new(trainer.config().clone(), &Device::flex()).unwrap();
        let copied = host.sample(&data).unwrap();
        assert!(!host.keeps_rows_on_device());
        assert_eq!(
            (&batch.indices, &batch.labels),
            (&copied.indices, &copied.labels)
        );
        let (tokens, targets) = trainer.encode(&batch);
        let (uploaded, uploaded_targets) = format.encode(&copied, 10, trainer.device());
        assert_eq!(read(tokens), read(uploaded), "random tables {tables}");
        assert_eq!(
            read(targets.float()),
            read(uploaded_targets.float()),
            "random tables {tables}"
        );
    }
}

#[test]
fn forward_and_one_training_step_agree_on_flex_and_wgpu() {
    let mut config = RunConfig::preset("tiny").unwrap();
    config.train.warmup_steps = 0;
    let data = prototypes(128, 9, 10, 0.2, 0);
    let mut sampler =
        TaskSampler::new(TaskPool::Unlimited, 0.0, config.model.d_in, 10, 11).unwrap();
    let probe = sampler.next_batch(&data, 4, config.tasks.seq_len);

    let logits = |trainer: &Trainer, device: &Device| {
        let (tokens, _) =
            config
                .tasks
                .format
                .encode(&probe, 10, &device.clone().without_autodiff());
        read(trainer.model().valid().forward(tokens))
    };
    let (flex, gpu) = (Device::flex(), wgpu());
    let mut a = Trainer::new(config.clone(), &flex).unwrap();
    let mut b = Trainer::new(config.clone(), &gpu).unwrap();

    let (la, lb) = (logits(&a, &flex), logits(&b, &gpu));
    let d = max_abs_diff(&la, &lb);
    eprintln!("forward: max |flex - wgpu| = {d:e}");
    assert!(d < TOL, "forward differs by {d}");

    let loss_a = a.step(&data).unwrap().into_scalar::<f32>();
    let loss_b = b.step(&data).unwrap().into_scalar::<f32>();
    eprintln!("loss: flex {loss_a}, wgpu {loss_b}");
    assert!((loss_a - loss_b).abs() < TOL, "loss {loss_a} vs {loss_b}");

    let (la, lb) = (logits(&a, &flex), logits(&b, &gpu));
    let d = max_abs_diff(&la, &lb);
    eprintln!("after one step: max |flex - wgpu| = {d:e}");
    assert!(d < TOL, "after one step the forward differs by {d}");
    // The step changed the model (so the comparison above is not vacuous).
    let before = logits(&Trainer::new(config.clone(), &flex).unwrap(), &flex);
    assert!(max_abs_diff(&before, &la) > 10.0 * TOL);
}

/// Gradient clipping agrees on Flex and wgpu, where the two take their norms differently (a
/// sum per tensor on Flex; on a GPU the flat gradient's rows summed per parameter by a matrix
/// product, `Adam::clipped`). A clipped tensor's gradient has norm `threshold`, so its first
/// moment after one step has norm `(1 - β1) · threshold`, and the moments must agree tensor by
/// tensor: a wrong coefficient for any tensor shows. (One step's parameters cannot show it:
/// Adam's first update does not depend on the gradient's scale.)
#[test]
fn clipped_gradients_agree_on_flex_and_wgpu() {
    let mut config = RunConfig::preset("tiny").unwrap();
    config.train.warmup_steps = 0;
    let threshold = 1e-6;
    config.train.grad_clip = Some(threshold);
    let data = prototypes(128, 9, 10, 0.2, 0);
    let moments = |device: &Device| {
        let mut trainer = Trainer::new(config.clone(), device).unwrap();
        trainer.step(&data).unwrap();
        pollster::block_on(trainer.checkpoint("test"))
            .unwrap()
            .moments
    };
    let (flex, gpu) = (moments(&Device::flex()), moments(&wgpu()));
    assert_eq!(flex.len(), gpu.len());
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let clipped = (1.0 - config.train.beta1) * threshold;
    let mut at_threshold = 0;
    for (a, b) in flex.iter().zip(&gpu) {
        assert_eq!(a.id, b.id);
        let (na, nb) = (norm(&a.m), norm(&b.m));
        assert!(
            na <= clipped * 1.001 && (na - nb).abs() <= 1e-3 * clipped,
            "parameter {}: first moment's norm {na:e} (flex), {nb:e} (wgpu), at most {clipped:e}",
            a.id
        );
        let d = max_abs_diff(&a.m, &b.m);
        assert!(
            d <= 1e-3 * clipped,
            "parameter {}: moments differ by {d:e}",
            a.id
        );
        at_threshold += usize::from((na - clipped).abs() < 1e-3 * clipped);
    }
    // Clipping acted on most tensors (some gradients are smaller than any threshold: zero).
    assert!(
        at_threshold * 4 >= flex.len() * 3,
        "{at_threshold} of {} tensors clipped",
        flex.len()
    );
}
