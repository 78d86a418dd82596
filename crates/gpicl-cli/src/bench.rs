//! `gpicl bench`: training-step throughput of the benchmark preset on each backend.

use std::time::Instant;

use anyhow::Result;
use gpicl_core::{Dataset, RunConfig, Trainer};

use crate::backend::Backend;

/// Arguments of `gpicl bench`.
#[derive(clap::Args)]
pub struct BenchArgs {
    /// Backends to measure.
    #[arg(long, value_enum, value_delimiter = ',', default_values = ["flex", "wgpu"])]
    backends: Vec<Backend>,
    /// Preset to time.
    #[arg(long, default_value = "bench")]
    preset: String,
    /// Timed steps per backend.
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Untimed warm-up steps (compilation, autotuning).
    #[arg(long, default_value_t = 3)]
    warmup: usize,
}

/// Synthetic data of the preset's shape: the timing does not depend on the pixel values.
fn synthetic(config: &RunConfig) -> Result<Dataset> {
    let n_features = 196;
    let n = 1000;
    let features = (0..n * n_features)
        .map(|i| ((i * 7919) % 255) as f32 / 255.0)
        .collect();
    let labels = (0..n as u32)
        .map(|i| i % config.model.n_classes as u32)
        .collect();
    Ok(Dataset::new(
        "synthetic",
        features,
        n_features,
        labels,
        Some(14),
    )?)
}

/// Runs `gpicl bench`, printing a table.
pub fn run(args: BenchArgs) -> Result<()> {
    let config = RunConfig::preset(&args.preset)?;
    let data = synthetic(&config)?;
    let m = &config.model;
    println!(
        "preset {}: B={} T={} format={:?} d_model={} layers={} heads={} d_ff={}; {} warm-up + {} timed steps",
        config.name,
        config.train.batch_size,
        config.tasks.seq_len,
        config.tasks.format,
        m.d_model,
        m.n_layers,
        m.n_heads,
        m.d_ff,
        args.warmup,
        args.steps
    );
    println!("{:<8} {:>12} {:>10}", "backend", "ms/step", "steps/s");
    for backend in &args.backends {
        let device = match backend.device() {
            Ok(d) => d,
            Err(e) => {
                println!(
                    "{:<8} unavailable: {e}",
                    format!("{backend:?}").to_lowercase()
                );
                continue;
            }
        };
        let mut trainer = Trainer::new(config.clone(), &device)?;
        for _ in 0..args.warmup {
            trainer.step(&data)?.into_scalar::<f32>();
        }
        let t0 = Instant::now();
        let mut last = None;
        for _ in 0..args.steps {
            last = Some(trainer.step(&data)?);
        }
        if let Some(loss) = last {
            loss.into_scalar::<f32>(); // wait for the device to finish
        }
        let per_step = t0.elapsed().as_secs_f64() / args.steps.max(1) as f64;
        println!(
            "{:<8} {:>12.1} {:>10.2}",
            format!("{backend:?}").to_lowercase(),
            per_step * 1e3,
            1.0 / per_step
        );
    }
    Ok(())
}
