//! `gpicl bench`: training-step throughput of the benchmark preset on each backend.

use std::time::Instant;

use anyhow::Result;
use gpicl_core::task::ProjectionSource;
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
    /// Also time the step's phases (task sampling, upload, forward, backward, Adam) over as
    /// many more steps, waiting for the device after each phase.
    #[arg(long)]
    phases: bool,
    /// Where the tasks' projections are drawn (`tasks.projections`; default: the preset's,
    /// `host`): `device` draws them on the backend, as `bench/reference_torch.py` does.
    #[arg(long, value_enum)]
    projections: Option<Projections>,
}

/// `tasks.projections` on the command line.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum Projections {
    /// On the host, uploaded ([`ProjectionSource::Host`]).
    Host,
    /// On the device ([`ProjectionSource::Device`]).
    Device,
}

/// Synthetic data of the preset's shape: MNIST-sized images (28×28) pooled as training pools
/// them ([`Dataset::avg_pool`] by `image_pool`), so the task projections are `n_in × d_in` as
/// in training and in `bench/reference_torch.py`. The timing does not depend on the pixel
/// values.
fn synthetic(config: &RunConfig) -> Result<Dataset> {
    let (side, n) = (28, 1000);
    let n_features = side * side;
    let features = (0..n * n_features)
        .map(|i| ((i * 7919) % 255) as f32 / 255.0)
        .collect();
    let labels = (0..n as u32)
        .map(|i| i % config.model.n_classes as u32)
        .collect();
    let images = Dataset::new("synthetic", features, n_features, labels, Some(side))?;
    Ok(images.avg_pool(config.tasks.image_pool)?)
}

/// Runs `gpicl bench`, printing a table.
pub fn run(args: BenchArgs) -> Result<()> {
    let mut config = RunConfig::preset(&args.preset)?;
    match args.projections {
        Some(Projections::Host) => config.tasks.projections = ProjectionSource::Host,
        Some(Projections::Device) => config.tasks.projections = ProjectionSource::Device,
        None => {}
    }
    config.validate()?;
    let data = synthetic(&config)?;
    let m = &config.model;
    println!(
        "preset {}: B={} T={} format={:?} inputs {}→{} (projections drawn on the {}) d_model={} layers={} heads={} d_ff={}; {} warm-up + {} timed steps",
        config.name,
        config.train.batch_size,
        config.tasks.seq_len,
        config.tasks.format,
        data.n_features,
        m.d_in,
        match config.tasks.projections {
            ProjectionSource::Host => "host",
            ProjectionSource::Device => "device",
        },
        m.d_model,
        m.n_layers,
        m.n_heads,
        m.d_ff,
        args.warmup,
        args.steps
    );
    println!(
        "{:<8} {:>12} {:>10}  examples",
        "backend", "ms/step", "steps/s"
    );
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
            "{:<8} {:>12.1} {:>10.2}  {}",
            format!("{backend:?}").to_lowercase(),
            per_step * 1e3,
            1.0 / per_step,
            if trainer.keeps_rows_on_device() {
                "gathered on the device"
            } else {
                "uploaded"
            }
        );
        if args.phases {
            print_phases(&mut trainer, &data, args.steps)?;
        }
    }
    Ok(())
}

/// Times each phase of `steps` training steps, waiting for the device after each phase (so
/// the phases add up to a little more than the step), and prints them as a table.
fn print_phases(trainer: &mut Trainer, data: &Dataset, steps: usize) -> Result<()> {
    const NAMES: [&str; 5] = [
        "task sampling (CPU)",
        "tokens on the device",
        "forward",
        "backward",
        "Adam",
    ];
    let mut seconds = [0f64; 5];
    let sync = |t: &Trainer| t.device().sync().map_err(|e| anyhow::anyhow!("{e:?}"));
    for _ in 0..steps {
        let t0 = Instant::now();
        let batch = trainer.sample(data)?;
        let t1 = Instant::now();
        let (tokens, targets) = trainer.encode(&batch);
        sync(trainer)?;
        let t2 = Instant::now();
        let loss = trainer.loss(tokens, targets);
        sync(trainer)?;
        let t3 = Instant::now();
        let grads = trainer.gradients(&loss);
        sync(trainer)?;
        let t4 = Instant::now();
        trainer.apply(grads);
        sync(trainer)?;
        let t5 = Instant::now();
        for (s, (a, b)) in
            seconds
                .iter_mut()
                .zip([(t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5)])
        {
            *s += (b - a).as_secs_f64();
        }
    }
    let total: f64 = seconds.iter().sum();
    for (name, s) in NAMES.iter().zip(seconds) {
        println!(
            "  {name:<22} {:>10.1} ms {:>5.1} %",
            s * 1e3 / steps.max(1) as f64,
            100.0 * s / total
        );
    }
    Ok(())
}

/// Arguments of `gpicl bench-step`.
#[derive(clap::Args)]
pub struct BenchStepArgs {
    /// Backend to measure.
    #[arg(long, value_enum, default_value = "flex")]
    backend: Backend,
    /// Preset whose model shape to time.
    #[arg(long, default_value = "pretrained")]
    preset: String,
    /// Context lengths (examples already seen) to time.
    #[arg(long, value_delimiter = ',', default_values_t = [10usize, 25, 50, 100, 200, 400])]
    lengths: Vec<usize>,
    /// Timed repetitions per length (after one untimed).
    #[arg(long, default_value_t = 20)]
    repeats: usize,
}

/// Mean seconds of `f` over `repeats` calls, after one untimed call.
fn time_it(repeats: usize, mut f: impl FnMut()) -> f64 {
    f();
    let t0 = Instant::now();
    for _ in 0..repeats {
        f();
    }
    t0.elapsed().as_secs_f64() / repeats.max(1) as f64
}

/// Runs `gpicl bench-step`: the cost of feeding one more example to a learner (the
/// step-through's update), with the KV cache (only the new tokens) and without (the whole
/// sequence again), printing a table.
pub fn run_step(args: BenchStepArgs) -> Result<()> {
    use burn::prelude::*;
    use gpicl_core::KvCache;
    if args.lengths.iter().any(|&n| n == 0 || n > 4096) {
        anyhow::bail!("--lengths must be in 1..=4096");
    }
    if args.repeats == 0 {
        anyhow::bail!("--repeats must be positive");
    }
    let config = RunConfig::preset(&args.preset)?;
    let device = args.backend.device()?;
    let model = config.model.init(0, &device)?;
    let m = &config.model;
    let k = config.tasks.format.tokens_per_example();
    let width = gpicl_core::TokenFormat::token_width(m.d_in, m.n_classes);
    println!(
        "preset {}: d_model={} layers={} heads={}, {:?} format ({k} token(s) an example), {:?}; \
         mean of {} updates",
        config.name,
        m.d_model,
        m.n_layers,
        m.n_heads,
        config.tasks.format,
        args.backend,
        args.repeats
    );
    println!(
        "{:>9} {:>8} {:>12} {:>12} {:>9} {:>16}",
        "examples", "tokens", "full ms", "cached ms", "speed-up", "cached µs/token"
    );
    for &n in &args.lengths {
        let tokens = Tensor::<3>::random(
            [1, n * k, width],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let full = time_it(args.repeats, || {
            let logits = model.forward(tokens.clone());
            let [_, l, c] = logits.dims();
            logits.slice([0..1, l - k..l, 0..c]).into_data();
        });
        let prefix = tokens.clone().slice([0..1, 0..(n - 1) * k, 0..width]);
        let last = tokens.clone().slice([0..1, (n - 1) * k..n * k, 0..width]);
        let (_, cache) = model.forward_cached(prefix, &KvCache::new());
        let cached = time_it(args.repeats, || {
            model.forward_cached(last.clone(), &cache).0.into_data();
        });
        println!(
            "{n:>9} {:>8} {:>12.2} {:>12.2} {:>8.1}x {:>16.1}",
            n * k,
            full * 1e3,
            cached * 1e3,
            full / cached,
            cached * 1e6 / (n * k) as f64
        );
    }
    Ok(())
}
