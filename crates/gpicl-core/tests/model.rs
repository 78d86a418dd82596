//! The model, the token layouts and the trainer on tiny shapes (Flex backend).

mod common;

use burn::prelude::*;
use common::{max_abs_diff, prototypes, read};
use gpicl_core::task::TaskSampler;
use gpicl_core::train::{Precision, load_model, model_bytes, sequence_loss};
use gpicl_core::{Arch, KvCache, RunConfig, TaskPool, TokenFormat, Trainer};

fn tiny() -> RunConfig {
    RunConfig::preset("tiny").unwrap()
}

#[test]
fn forward_has_the_right_shape_and_is_causal() {
    for arch in [Arch::Transformer, Arch::Lstm] {
        shape_and_causality(arch);
    }
}

fn shape_and_causality(arch: Arch) {
    let device = Device::flex();
    let mut c = tiny();
    c.model.arch = arch;
    let model = c.model.init(1, &device).unwrap();
    let data = prototypes(64, 9, 10, 0.1, 0);
    let mut s = TaskSampler::new(TaskPool::Unlimited, 0.0, c.model.d_in, 10, 3).unwrap();
    let batch = s.next_batch(&data, 2, 8);
    for format in [TokenFormat::Paper, TokenFormat::Pair] {
        let (tokens, _) = format.encode(&batch, 10, &device);
        let k = format.tokens_per_example();
        assert_eq!(tokens.dims(), [2, 8 * k, c.model.d_in + 11]);
        let logits = model.forward(tokens.clone());
        assert_eq!(logits.dims(), [2, 8 * k, 10]);
        // Changing the tokens from position 5 on must not change the logits before it.
        let [b, l, w] = tokens.dims();
        let noise = Tensor::<3>::ones([b, l - 5, w], &device);
        let perturbed = tokens.clone().slice_assign(
            [0..b, 5..l, 0..w],
            tokens.clone().slice([0..b, 5..l, 0..w]) + noise,
        );
        let a = read(logits.clone().slice([0..b, 0..5, 0..10]));
        let p = model.forward(perturbed);
        assert!(max_abs_diff(&a, &read(p.clone().slice([0..b, 0..5, 0..10]))) < 1e-5);
        assert!(
            max_abs_diff(
                &read(logits.slice([0..b, 5..l, 0..10])),
                &read(p.slice([0..b, 5..l, 0..10]))
            ) > 1e-4
        );
    }
}

/// Feeding a sequence through the KV cache (or the LSTM's state) in chunks of 1, 2 and 3
/// tokens gives the full forward pass's logits (tolerance 1e-4; measured differences are
/// ~1e-6), and a look-ahead leaves the cache as it was.
#[test]
fn cached_forward_equals_full_forward() {
    for arch in [Arch::Transformer, Arch::Lstm] {
        cached_equals_full(arch);
    }
}

fn cached_equals_full(arch: Arch) {
    let device = Device::flex();
    let mut c = tiny();
    c.model.n_layers = 3;
    c.model.arch = arch;
    let model = c.model.init(7, &device).unwrap();
    let data = prototypes(64, 9, 10, 0.1, 0);
    let mut s = TaskSampler::new(TaskPool::Unlimited, 0.0, c.model.d_in, 10, 3).unwrap();
    let batch = s.next_batch(&data, 2, 9);
    let (tokens, _) = TokenFormat::Pair.encode(&batch, 10, &device);
    let [b, l, w] = tokens.dims();
    let full = read(model.forward(tokens.clone()));
    for chunk in [1, 2, 3] {
        let mut cache = KvCache::new();
        let mut pieces = Vec::new();
        let mut start = 0;
        while start < l {
            let end = (start + chunk).min(l);
            let new = tokens.clone().slice([0..b, start..end, 0..w]);
            // A look-ahead must not change the cache.
            let _ = model.forward_cached(new.clone(), &cache);
            let (logits, next) = model.forward_cached(new, &cache);
            assert_eq!(next.len(), end);
            pieces.push(logits);
            cache = next;
            start = end;
        }
        let cached = read(Tensor::cat(pieces, 1));
        let diff = max_abs_diff(&full, &cached);
        assert!(
            diff < 1e-4,
            "{arch:?}, chunk {chunk}: cached and full differ by {diff}"
        );
    }
    assert!(KvCache::new().is_empty());
}

/// `param_count` (used to compare learners at matched sizes) counts what the model holds, and
/// the state of the Transformer grows with the context where the LSTM's does not.
#[test]
fn parameter_counts_and_state_sizes() {
    let device = Device::flex();
    for preset in ["tiny", "cpu", "pretrained"] {
        for arch in [Arch::Transformer, Arch::Lstm] {
            let mut c = RunConfig::preset(preset).unwrap();
            c.model.arch = arch;
            let model = c.model.init(0, &device).unwrap();
            assert_eq!(
                c.model.param_count(),
                model.num_params(),
                "{preset} {arch:?}"
            );
        }
    }
    let mut c = tiny().model;
    assert_eq!(c.state_size(10), 2 * c.n_layers * c.d_model * 10);
    c.arch = Arch::Lstm;
    assert_eq!(c.state_size(10), c.state_size(1000));
}

/// The baselines' view of a sequence (`Batch::projected`, on the CPU) is the learner's: the
/// projected inputs in the device-built tokens.
#[test]
fn projected_inputs_match_the_tokens() {
    let device = Device::flex();
    let data = prototypes(40, 9, 10, 0.1, 0);
    let mut s = TaskSampler::new(TaskPool::Unlimited, 0.0, 6, 10, 5).unwrap();
    let batch = s.next_batch(&data, 2, 5);
    let tokens = read(TokenFormat::Paper.encode(&batch, 10, &device).0);
    let w = 6 + 10 + 1;
    for b in 0..2 {
        let z = batch.projected(b);
        for j in 0..5 {
            let t = &tokens[(b * 5 + j) * w..(b * 5 + j) * w + 6];
            assert!(max_abs_diff(t, &z[j * 6..(j + 1) * 6]) < 1e-5);
        }
    }
}

#[test]
fn token_layouts_carry_labels_where_the_formats_say() {
    let device = Device::flex();
    let data = prototypes(40, 3, 10, 0.1, 0);
    let mut s = TaskSampler::new(TaskPool::Unlimited, 0.0, 4, 10, 5).unwrap();
    let batch = s.next_batch(&data, 1, 4);
    let (paper, targets) = TokenFormat::Paper.encode(&batch, 10, &device);
    let targets: Vec<i64> = targets.into_data().convert::<i64>().try_to_vec().unwrap();
    let paper = read(paper);
    let w = 4 + 10 + 1;
    for j in 0..4 {
        let onehot = &paper[j * w + 4..j * w + 14];
        if j == 0 {
            assert!(
                onehot.iter().all(|&v| v == 0.0),
                "first token has no previous label"
            );
        } else {
            assert_eq!(onehot[targets[j - 1] as usize], 1.0);
            assert_eq!(onehot.iter().sum::<f32>(), 1.0);
        }
        assert_eq!(paper[j * w + 14], 0.0);
    }
    let pair = read(TokenFormat::Pair.encode(&batch, 10, &device).0);
    for j in 0..4 {
        let (q, c) = (
            &pair[2 * j * w..(2 * j + 1) * w],
            &pair[(2 * j + 1) * w..(2 * j + 2) * w],
        );
        assert_eq!(
            &q[..4],
            &c[..4],
            "query and context carry the same projected input"
        );
        assert!(q[4..14].iter().all(|&v| v == 0.0));
        assert_eq!(q[14], 1.0);
        assert_eq!(c[4 + targets[j] as usize], 1.0);
        assert_eq!(c[14], 0.0);
    }
}

#[test]
fn same_seed_same_model_and_training() {
    let device = Device::flex();
    let data = prototypes(128, 9, 10, 0.2, 0);
    let run = |seed: u64| {
        let mut c = tiny();
        c.seed = seed;
        let mut t = Trainer::new(c, &device).unwrap();
        (0..3)
            .map(|_| t.step(&data).unwrap().into_scalar::<f32>())
            .collect::<Vec<_>>()
    };
    assert_eq!(run(7), run(7));
    assert_ne!(run(7), run(8));
}

#[test]
fn training_reduces_loss_on_a_fixed_batch() {
    // Overfitting one fixed batch shows the gradients and the optimizer step are wired up.
    let device = Device::flex().autodiff();
    let c = tiny();
    let data = prototypes(64, 9, 10, 0.1, 0);
    let mut s = TaskSampler::new(TaskPool::Finite { log2: 0 }, 0.0, c.model.d_in, 10, 1).unwrap();
    let batch = s.next_batch(&data, 4, 8);
    let mut model = c.model.init(3, &device).unwrap();
    let mut optim = burn::optim::AdamConfig::new().init();
    let mut losses = vec![];
    for _ in 0..30 {
        let (tokens, targets) = TokenFormat::Pair.encode(&batch, 10, &device);
        let (loss, _) = sequence_loss(&model, TokenFormat::Pair, tokens, targets);
        losses.push(loss.clone().into_scalar::<f32>());
        let grads = burn::optim::GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(3e-3, model, grads);
    }
    assert!(
        losses[29] < 0.5 * losses[0],
        "loss {} → {}",
        losses[0],
        losses[29]
    );
}

#[test]
fn shipped_weights_load_only_into_their_shape() {
    let device = Device::flex();
    let m = gpicl_core::train::model_bytes(&tiny().model.init(5, &device).unwrap(), Precision::F32)
        .unwrap();
    assert!(load_model(tiny().model.init(99, &device).unwrap(), m.clone()).is_ok());
    let other_shape = RunConfig::preset("browser")
        .unwrap()
        .model
        .init(0, &device)
        .unwrap();
    assert!(
        load_model(other_shape, m.clone()).is_err(),
        "weights of another shape are refused"
    );
    let corrupt: Vec<u8> = m.iter().take(m.len() / 2).copied().collect();
    assert!(load_model(tiny().model.init(0, &device).unwrap(), corrupt).is_err());
    assert!(
        load_model(
            tiny().model.init(0, &device).unwrap(),
            b"not a checkpoint".to_vec()
        )
        .is_err()
    );
}

#[test]
fn half_precision_weights_are_half_the_bytes_and_load_as_f32_within_rounding() {
    let device = Device::flex();
    let model = tiny().model.init(5, &device).unwrap();
    let full = model_bytes(&model, Precision::F32).unwrap();
    let half = model_bytes(&model, Precision::F16).unwrap();
    let params = tiny().model.param_count();
    assert!(
        full.len() >= 4 * params && half.len() < full.len() - params,
        "f32 {} bytes, f16 {} bytes, {params} parameters",
        full.len(),
        half.len()
    );
    let loaded = load_model(tiny().model.init(99, &device).unwrap(), half.clone()).unwrap();
    // Every parameter f32 again and within f16's rounding (2^-11 relative) of the original.
    let values = |m: &gpicl_core::Transformer| {
        let none = std::collections::BTreeMap::new();
        pollster::block_on(gpicl_core::checkpoint::read_values(m, &none))
            .unwrap()
            .0
    };
    let (a, b) = (values(&model), values(&loaded));
    assert_eq!(a.len(), b.len());
    let mut rounded = 0;
    for (p, q) in a.iter().zip(&b) {
        assert_eq!(p.shape, q.shape);
        for (&x, &y) in p.values.iter().zip(&q.values) {
            assert!(
                (x - y).abs() <= x.abs() * 4.9e-4 + 1e-7,
                "{x} loaded as {y}"
            );
            rounded += usize::from(x != y);
        }
    }
    assert!(
        rounded > params / 2,
        "the values were rounded: {rounded} of {params} changed"
    );
    // Saved again at f16, the rounded model gives the same bytes: rounding is idempotent.
    assert_eq!(model_bytes(&loaded, Precision::F16).unwrap(), half);
}

/// A deepened learner computes nearly what it was deepened from (its new blocks' output maps
/// are small; measured: logits 0.005 apart), has the larger shape's parameters, and only more
/// blocks are accepted.
#[test]
fn a_deepened_learner_computes_nearly_the_same_function() {
    let device = Device::flex();
    let from = tiny();
    let mut to = tiny();
    to.model.n_layers = from.model.n_layers + 2;
    let model = from.model.init(3, &device).unwrap();
    let data = prototypes(64, 9, 10, 0.1, 0);
    let mut s = TaskSampler::new(TaskPool::Unlimited, 0.0, from.model.d_in, 10, 3).unwrap();
    let (tokens, _) = TokenFormat::Pair.encode(&s.next_batch(&data, 2, 8), 10, &device);
    let before = read(model.forward(tokens.clone()));

    let deeper = model.clone().deepened(&from.model, &to.model, 7).unwrap();
    assert_eq!(deeper.num_params(), to.model.param_count());
    let moved = max_abs_diff(&before, &read(deeper.forward(tokens)));
    eprintln!("logits moved by {moved}");
    assert!(moved > 0.0 && moved < 0.05, "{moved}");
    // The trainer of the deeper shape takes its weights.
    let (params, _) = pollster::block_on(gpicl_core::checkpoint::read_values(
        &deeper,
        &Default::default(),
    ))
    .unwrap();
    let mut trainer = Trainer::new(to.clone(), &device).unwrap();
    trainer.start_from(&params).unwrap();

    let mut wider = to.model.clone();
    wider.d_ff *= 2;
    let mut shallower = from.model.clone();
    shallower.n_layers -= 1;
    let mut lstm = to.model.clone();
    lstm.arch = Arch::Lstm;
    for bad in [&wider, &shallower, &from.model, &lstm] {
        let err = model.clone().deepened(&from.model, bad, 7).unwrap_err();
        assert!(err.to_string().contains("model.n_layers"), "{err}");
    }
}
