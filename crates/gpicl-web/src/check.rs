//! The GPU check (`?check`): runs the core trainer on this browser's WebGPU device and compares
//! a forward pass with Flex (CPU) on the same weights and inputs. The browser end-to-end tests
//! read its report; a user can open it to see whether their GPU computes correctly.

use burn::prelude::*;
use gpicl_core::task::{Batch, TaskSampler};
use gpicl_core::{RunConfig, TaskPool, Trainer};
use serde::Serialize;
use yew::prelude::*;

use crate::data::{TRAIN_FILES, parse_pooled};
use crate::fetch::fetch_bytes;
use crate::gpu;
use crate::now_ms;

/// Largest |WebGPU − Flex| allowed in the forward pass (float32, different kernels).
pub const FORWARD_TOLERANCE: f32 = 1e-3;
const STEPS: usize = 20;

/// What the check found.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The device description.
    pub device: String,
    /// True when it ran on WebGPU.
    pub webgpu: bool,
    /// Loss at each training step on WebGPU.
    pub losses: Vec<f32>,
    /// Every loss is finite.
    pub losses_finite: bool,
    /// Mean of the last 5 losses is below the mean of the first 5.
    pub loss_falls: bool,
    /// Largest |WebGPU − Flex| over the forward pass's logits.
    pub forward_max_abs_diff: f32,
    /// The tolerance for that difference.
    pub forward_tolerance: f32,
    /// All of the above hold.
    pub ok: bool,
    /// Milliseconds the training steps took.
    pub train_ms: f64,
}

async fn run() -> Result<Report, String> {
    let backend = gpu::init().await;
    // MNIST test images (TRAIN_FILES[2], TRAIN_FILES[3]), pooled as the page has them.
    let images = fetch_bytes(TRAIN_FILES[2]).await?;
    let labels = fetch_bytes(TRAIN_FILES[3]).await?;
    let mut data = parse_pooled("mnist", &images, &labels)
        .map(|d| d.take(2000))
        .map_err(|e| e.to_string())?;
    data.z_normalize();
    let mut config = RunConfig::preset("tiny").map_err(|e| e.to_string())?;
    // One task, a high learning rate: the loss must visibly fall within a few steps.
    config.tasks.pool = TaskPool::Finite { log2: 0 };
    config.train.lr = 1e-2;
    config.train.warmup_steps = 1;
    let e = |e: gpicl_core::Error| e.to_string();

    // Forward parity on identical weights (initialised from the same seed on the CPU).
    let flex = Device::flex();
    let gpu_model = config.model.init(7, &backend.device).map_err(e)?;
    let cpu_model = config.model.init(7, &flex).map_err(e)?;
    let n_classes = config.model.n_classes;
    let mut sampler =
        TaskSampler::new(config.tasks.pool, 0.0, config.model.d_in, n_classes, 3).map_err(e)?;
    let batch: Batch = sampler.next_batch(&data, 4, config.tasks.seq_len);
    let forward = |model: &gpicl_core::Transformer, device: &Device| {
        let (tokens, _) = config.tasks.format.encode(&batch, n_classes, device);
        model.forward(tokens)
    };
    let read = |d: TensorData| d.try_to_vec::<f32>().map_err(|e| format!("{e:?}"));
    let a = read(
        forward(&gpu_model, &backend.device)
            .into_data_async()
            .await
            .map_err(|e| format!("{e:?}"))?,
    )?;
    let b = read(
        forward(&cpu_model, &flex)
            .into_data_async()
            .await
            .map_err(|e| format!("{e:?}"))?,
    )?;
    let diff = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0f32, f32::max);

    // Training on the device.
    let start = now_ms();
    let mut trainer = Trainer::new(config, &backend.device).map_err(e)?;
    let mut losses = Vec::with_capacity(STEPS);
    for _ in 0..STEPS {
        let loss = trainer.step(&data).map_err(e)?;
        losses.push(
            loss.into_scalar_async::<f32>()
                .await
                .map_err(|e| format!("{e:?}"))?,
        );
    }
    let end = now_ms();
    let mean = |s: &[f32]| s.iter().sum::<f32>() / s.len() as f32;
    let losses_finite = losses.iter().all(|l| l.is_finite());
    let loss_falls = mean(&losses[STEPS - 5..]) < mean(&losses[..5]);
    let forward_ok = diff.is_finite() && diff <= FORWARD_TOLERANCE && a.len() == b.len();
    Ok(Report {
        device: backend.label,
        webgpu: backend.webgpu,
        ok: losses_finite && loss_falls && forward_ok,
        losses,
        losses_finite,
        loss_falls,
        forward_max_abs_diff: diff,
        forward_tolerance: FORWARD_TOLERANCE,
        train_ms: end - start,
    })
}

/// The check page.
#[function_component(CheckPage)]
pub fn check_page() -> Html {
    let report = use_state(|| None::<String>);
    {
        let report = report.clone();
        use_effect_with((), move |_| {
            wasm_bindgen_futures::spawn_local(async move {
                let text = match run().await {
                    Ok(r) => serde_json::to_string_pretty(&r).unwrap_or_else(|e| e.to_string()),
                    Err(e) => serde_json::json!({ "ok": false, "error": e }).to_string(),
                };
                report.set(Some(text));
            });
        });
    }
    let body = match &*report {
        Some(text) => html! { <pre id="gpu-check">{text}</pre> },
        None => html! { <p id="gpu-check-running">{"Running…"}</p> },
    };
    html! {
        <main>
            <h2>{"GPU check"}</h2>
            <p>{"Trains the core Transformer for a few steps on this browser's WebGPU device and compares a forward pass with the CPU."}</p>
            { body }
        </main>
    }
}
