//! The checkpoint file and the optimizer whose state it carries (Flex backend).

mod common;

use burn::optim::{AdamConfig, GradientsParams};
use burn::prelude::*;
use common::{max_abs_diff, prototypes, read};
use gpicl_core::checkpoint::{FORMAT, MAGIC};
use gpicl_core::optim::Adam;
use gpicl_core::task::TaskSampler;
use gpicl_core::train::sequence_loss;
use gpicl_core::{Checkpoint, RunConfig, TaskPool, TokenFormat, Trainer};

fn tiny() -> RunConfig {
    RunConfig::preset("tiny").unwrap()
}

fn trained(steps: usize) -> (Trainer, gpicl_core::Dataset) {
    let data = prototypes(128, 9, 10, 0.2, 0);
    let mut t = Trainer::new(tiny(), &Device::flex()).unwrap();
    for _ in 0..steps {
        t.step(&data).unwrap();
    }
    (t, data)
}

#[test]
fn a_checkpoint_round_trips_and_the_resumed_run_continues_exactly() {
    let (mut a, data) = trained(3);
    let saved = pollster::block_on(a.checkpoint("flex")).unwrap();
    assert_eq!(saved.state.step, 3);
    assert!(!saved.moments.is_empty(), "the optimizer state is saved");
    let bytes = saved.to_bytes();
    let read_back = Checkpoint::from_bytes(&bytes).unwrap();
    assert_eq!(read_back, saved);

    let mut b = Trainer::resume(&read_back, &Device::flex()).unwrap();
    assert_eq!(b.step_count(), 3);
    for _ in 0..2 {
        let la = a.step(&data).unwrap().into_scalar::<f32>();
        let lb = b.step(&data).unwrap().into_scalar::<f32>();
        assert_eq!(
            la.to_bits(),
            lb.to_bits(),
            "a resumed run continues exactly"
        );
    }
    let (ca, cb) = (
        pollster::block_on(a.checkpoint("flex")).unwrap(),
        pollster::block_on(b.checkpoint("flex")).unwrap(),
    );
    assert_eq!(ca.to_bytes(), cb.to_bytes(), "and stays bit-identical");

    // The model alone (what `gpicl eval` and the page's evaluation use) is the trained one.
    let model = read_back.model(&Device::flex()).unwrap();
    let mut s = TaskSampler::new(TaskPool::Unlimited, 0.0, 16, 10, 9).unwrap();
    let batch = s.next_batch(&data, 2, 12);
    let (tokens, _) = TokenFormat::Pair.encode(&batch, 10, &Device::flex());
    let fresh = Trainer::resume(&read_back, &Device::flex()).unwrap();
    let diff = max_abs_diff(
        &read(model.forward(tokens.clone())),
        &read(fresh.model().valid().forward(tokens)),
    );
    assert_eq!(diff, 0.0);
}

#[test]
fn our_adam_matches_burns_adam() {
    // The optimizer is written out so the browser can read its state; it must still be Adam
    // as burn computes it (with the same per-tensor norm clipping), bit for bit: it updates
    // all parameters as one flat vector, each value through burn's operations.
    let device = Device::flex().autodiff();
    let c = tiny();
    let data = prototypes(64, 9, 10, 0.1, 0);
    let mut s = TaskSampler::new(TaskPool::Unlimited, 0.0, c.model.d_in, 10, 1).unwrap();
    let mut ours = c.model.init(3, &device).unwrap();
    let mut theirs = ours.clone();
    let mut adam = Adam::new(&c.train);
    let mut burn_adam = AdamConfig::new()
        .with_beta_1(c.train.beta1)
        .with_beta_2(c.train.beta2)
        .with_epsilon(c.train.epsilon)
        .with_grad_clipping(Some(burn::grad_clipping::GradientClippingConfig::Norm(
            c.train.grad_clip.unwrap(),
        )))
        .init();
    for _ in 0..5 {
        let batch = s.next_batch(&data, 4, 8);
        let grads = |model: &gpicl_core::Transformer| {
            let (tokens, targets) = TokenFormat::Pair.encode(&batch, 10, &device);
            let (loss, _) = sequence_loss(model, TokenFormat::Pair, tokens, targets);
            GradientsParams::from_grads(loss.backward(), model)
        };
        let (g1, g2) = (grads(&ours), grads(&theirs));
        ours = adam.step(1e-3, ours, g1);
        theirs = burn_adam.step(1e-3, theirs, g2);
    }
    let (a, b) = (
        pollster::block_on(gpicl_core::checkpoint::read_values(&ours, &adam.moments())).unwrap(),
        pollster::block_on(gpicl_core::checkpoint::read_values(
            &theirs,
            &Default::default(),
        ))
        .unwrap(),
    );
    for (p, q) in a.0.iter().zip(&b.0) {
        assert!(
            max_abs_diff(&p.values, &q.values) == 0.0,
            "parameter {}",
            p.id
        );
    }
}

fn header_edit(bytes: &[u8], edit: impl Fn(&mut serde_json::Value)) -> Vec<u8> {
    let len = u64::from_le_bytes(bytes[12..20].try_into().unwrap()) as usize;
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[20..20 + len]).unwrap();
    edit(&mut header);
    let header = serde_json::to_vec(&header).unwrap();
    let mut out = bytes[..12].to_vec();
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    out.extend_from_slice(&bytes[20 + len..]);
    out
}

#[test]
fn bad_checkpoint_files_are_refused_with_a_message() {
    let (t, _) = trained(1);
    let good = pollster::block_on(t.checkpoint("flex")).unwrap().to_bytes();
    let mut newer = good.clone();
    newer[8..12].copy_from_slice(&(FORMAT + 1).to_le_bytes());
    let mut padded = good.clone();
    padded.extend_from_slice(&[0; 4]);
    let mut nan = good.clone();
    let at = nan.len() - 8;
    nan[at..at + 4].copy_from_slice(&f32::NAN.to_le_bytes());
    let mut huge_header = good.clone();
    huge_header[12..20].copy_from_slice(&u64::MAX.to_le_bytes());
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "not a gpicl checkpoint"),
        (
            "another file",
            b"\x89PNG\r\n\x1a\n............".to_vec(),
            "not a gpicl",
        ),
        ("newer format", newer, "format 2"),
        ("truncated", good[..good.len() - 3].to_vec(), "truncated"),
        ("padded", padded, "truncated or padded"),
        ("not finite", nan, "not a finite number"),
        ("header length", huge_header, "header claims"),
        (
            "another model",
            header_edit(&good, |h| h["config"]["model"]["d_model"] = 64.into()),
            "parameter values",
        ),
        (
            "bad config",
            header_edit(&good, |h| h["config"]["train"]["lr"] = (-1.0).into()),
            "train.lr",
        ),
        (
            "moment of no parameter",
            header_edit(&good, |h| h["moments"][0]["id"] = 100_000.into()),
            "lacks or lists twice",
        ),
        (
            "huge shape",
            header_edit(&good, |h| {
                h["params"][0]["shape"] = serde_json::json!([u64::MAX, u64::MAX])
            }),
            "too large",
        ),
    ];
    for (what, bytes, needle) in cases {
        let err = Checkpoint::from_bytes(&bytes).unwrap_err().to_string();
        assert!(err.contains(needle), "{what}: {err}");
    }
    // Swapped shapes with the same count pass the header check and are caught on load.
    let swapped = header_edit(&good, |h| {
        let s = h["params"][0]["shape"].clone();
        let r: Vec<serde_json::Value> = s.as_array().unwrap().iter().rev().cloned().collect();
        h["params"][0]["shape"] = r.into();
    });
    let ck = Checkpoint::from_bytes(&swapped).unwrap();
    let err = ck.model(&Device::flex()).unwrap_err().to_string();
    assert!(err.contains("no parameter 1 of shape"), "{err}");
    assert!(Trainer::resume(&ck, &Device::flex()).is_err());
    assert_eq!(&good[..8], MAGIC);
}

/// Fine-tuning: a fresh run started from a trained learner's weights (a model built apart, its
/// parameter ids other) holds exactly those weights and a fresh optimizer; a model of another
/// shape, or a run that has stepped, is refused.
#[test]
fn a_fresh_run_starts_from_another_learners_weights() {
    let (a, data) = trained(3);
    let none = std::collections::BTreeMap::new();
    let (params, _) =
        pollster::block_on(gpicl_core::checkpoint::read_values(a.model(), &none)).unwrap();
    let mut config = tiny();
    config.seed = 99;
    let mut b = Trainer::new(config.clone(), &Device::flex()).unwrap();
    b.start_from(&params).unwrap();
    let (loaded, _) =
        pollster::block_on(gpicl_core::checkpoint::read_values(b.model(), &none)).unwrap();
    assert_eq!(loaded.len(), params.len());
    for (p, q) in params.iter().zip(&loaded) {
        assert_eq!((&p.shape, &p.values), (&q.shape, &q.values));
    }
    let saved = pollster::block_on(b.checkpoint("flex")).unwrap();
    assert!(saved.moments.is_empty(), "a fresh optimizer");
    assert_eq!(b.step_count(), 0);
    b.step(&data).unwrap();
    assert!(b.start_from(&params).is_err(), "not after a step");
    let mut wide = config;
    wide.model.d_model *= 2;
    let mut c = Trainer::new(wide, &Device::flex()).unwrap();
    assert!(c.start_from(&params).is_err(), "not into another shape");
    assert!(
        c.start_from(&params[1..]).is_err(),
        "not from fewer parameters"
    );
}

#[test]
fn micro_batches_take_the_same_step_up_to_rounding() {
    let data = prototypes(128, 9, 10, 0.2, 0);
    let whole = |parts: usize| {
        let mut t = Trainer::new(tiny(), &Device::flex()).unwrap();
        t.set_micro_batches(parts);
        let losses: Vec<f32> = (0..4)
            .map(|_| t.step(&data).unwrap().into_scalar::<f32>())
            .collect();
        let ck = pollster::block_on(t.checkpoint("flex")).unwrap();
        let params: Vec<f32> = ck.params.iter().flat_map(|p| p.values.clone()).collect();
        (losses, params)
    };
    let (losses, params) = whole(1);
    // 2 equal parts, 3 unequal ones, and more parts than sequences (one per sequence).
    for parts in [2, 3, 1000] {
        let (l, p) = whole(parts);
        let dl = max_abs_diff(&losses, &l);
        let dp = max_abs_diff(&params, &p);
        assert!(
            dl < 1e-5 && dp < 1e-5,
            "{parts} parts: loss {dl:e}, parameters {dp:e} apart"
        );
    }
    // And the steps were real ones: the parameters moved.
    let fresh = pollster::block_on(
        Trainer::new(tiny(), &Device::flex())
            .unwrap()
            .checkpoint("flex"),
    )
    .unwrap();
    let start: Vec<f32> = fresh.params.iter().flat_map(|p| p.values.clone()).collect();
    assert!(max_abs_diff(&start, &params) > 1e-3);
}
