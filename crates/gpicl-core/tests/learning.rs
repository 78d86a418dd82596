//! A learning test that can fail: a small learner meta-trained for a bounded number of steps
//! on Flex must classify examples of *unseen* tasks, at the last position of the sequence,
//! clearly above chance (10 %). Its training data and its evaluation data are different
//! prototype datasets, so neither the tasks nor the classes were seen in training.
//!
//! Training sequences are "bursty" (3 random classes each), which takes this small model off
//! the loss plateau within ~250 steps; evaluation uses all 10 classes.

mod common;

use burn::prelude::*;
use common::prototypes;
use gpicl_core::eval::evaluate;
use gpicl_core::task::ProjectionSource;
use gpicl_core::{EvalSet, EvalTasks, RunConfig, Trainer};

#[test]
fn meta_training_yields_an_in_context_learner_on_unseen_tasks() {
    learns(ProjectionSource::Host);
}

/// The same with the training tasks' projections drawn on the device: other tasks of the same
/// kind, so a learner of them learns the host's unseen tasks as well.
#[test]
fn meta_training_on_projections_drawn_on_the_device_learns_the_same() {
    learns(ProjectionSource::Device);
}

fn learns(projections: ProjectionSource) {
    let mut config = RunConfig::preset("tiny").unwrap();
    config.tasks.projections = projections;
    config.tasks.seq_len = 20;
    config.tasks.classes_per_sequence = Some(3);
    config.train.steps = 400;
    config.train.batch_size = 32;
    config.train.lr = 3e-3;
    let train = prototypes(2000, 12, 10, 0.1, 1);
    let held_out = prototypes(2000, 12, 10, 0.1, 2);

    let device = Device::flex();
    let mut trainer = Trainer::new(config.clone(), &device).unwrap();
    let set = EvalSet::new(
        "unseen",
        &held_out,
        EvalTasks::Unseen,
        trainer.sampler(),
        None,
        128,
        20,
        config.model.d_in,
        10,
        99,
    )
    .unwrap();
    let curve = |t: &Trainer| {
        pollster::block_on(evaluate(t.model(), config.tasks.format, 10, &set, &device)).unwrap()
    };
    let before = curve(&trainer);
    for _ in 0..config.train.steps {
        trainer.step(&train).unwrap();
    }
    let after = curve(&trainer);
    eprintln!("before: {:?}\nafter: {:?}", before.accuracy, after.accuracy);
    let (first, last) = (after.accuracy[0], *after.accuracy.last().unwrap());
    // 128 sequences: chance accuracy (10 %) has a standard error of ~2.7 %.
    assert!(
        *before.accuracy.last().unwrap() < 0.25,
        "an untrained model is near chance"
    );
    assert!(
        last > 0.5,
        "unseen-task accuracy at the last position is only {:.1}%",
        100.0 * last
    );
    // In-context learning: accuracy rises with the number of examples seen.
    assert!(
        last > first + 0.3,
        "accuracy does not rise along the sequence: {first} → {last}"
    );
}
