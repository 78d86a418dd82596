//! A learning test that can fail: a small learner meta-trained for a bounded number of steps
//! on Flex must classify examples of *unseen* tasks, at the last position of the sequence,
//! clearly above chance (10 %). Its training data and its evaluation data are different
//! prototype datasets, so neither the tasks nor the classes were seen in training.

mod common;

use burn::prelude::*;
use common::prototypes;
use gpicl_core::eval::evaluate;
use gpicl_core::{EvalSet, EvalTasks, RunConfig, Trainer};

#[test]
fn meta_training_yields_an_in_context_learner_on_unseen_tasks() {
    let mut config = RunConfig::preset("tiny").unwrap();
    config.tasks.seq_len = 20;
    config.train.steps = 400;
    config.train.batch_size = 16;
    config.train.lr = 3e-3;
    let train = prototypes(2000, 12, 10, 0.25, 1);
    let held_out = prototypes(2000, 12, 10, 0.25, 2);

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
    let before = pollster::block_on(evaluate(
        trainer.model(),
        config.tasks.format,
        10,
        &set,
        &device,
    ))
    .unwrap();
    for _ in 0..config.train.steps {
        trainer.step(&train).unwrap();
    }
    let after = pollster::block_on(evaluate(
        trainer.model(),
        config.tasks.format,
        10,
        &set,
        &device,
    ))
    .unwrap();
    let first = after.accuracy[0];
    let last = *after.accuracy.last().unwrap();
    eprintln!("before: {:?}\nafter: {:?}", before.accuracy, after.accuracy);
    // 128 sequences: chance accuracy has a standard error of ~2.7 %, so 35 % is far outside it.
    assert!(
        last > 0.35,
        "unseen-task accuracy at the last position is only {:.1}%",
        100.0 * last
    );
    // In-context learning: accuracy rises with the number of examples seen.
    assert!(
        last > first + 0.2,
        "accuracy does not rise along the sequence: {first} → {last}"
    );
    assert!(before.accuracy.last().unwrap() < &0.25);
}
