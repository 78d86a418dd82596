//! The training worker's logic ([`Runner`]) on Flex, natively: the page's commands in, the
//! events it would post out, in order; the same code runs in the browser's worker.

use std::rc::Rc;

use burn::prelude::Device;
use gpicl_core::RunConfig;
use gpicl_web::data::{PageData, TRAIN_FILES};
use gpicl_web::protocol::{Command, Event, Purpose};
use gpicl_web::runner::{REPORT_MS, Runner};

mod common;

fn runner() -> Runner {
    let start = std::time::Instant::now();
    runner_with_clock(Box::new(move || start.elapsed().as_secs_f64() * 1000.0))
}

fn runner_with_clock(clock: Box<dyn Fn() -> f64>) -> Runner {
    let root = common::web();
    let data = PageData::parse(&TRAIN_FILES.map(|f| std::fs::read(root.join(f)).unwrap())).unwrap();
    Runner::new(Device::flex(), false, Rc::new(data), clock)
}

/// Each `Trained` event's (step, number of losses).
fn reports(events: &[Event]) -> Vec<(usize, usize)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Trained { step, losses, .. } => Some((*step, losses.len())),
            _ => None,
        })
        .collect()
}

#[test]
fn steps_are_reported_together_within_report_ms_and_always_before_other_events() {
    // A stopped clock: every step falls within the same report interval, so the steps before
    // each evaluation (every 2 steps here) come as one event, just before it.
    let mut r = runner_with_clock(Box::new(|| 0.0));
    let mut config = RunConfig::preset("tiny").unwrap();
    config.eval.every = 2;
    let events = train_new_run(&mut r, &config, 5);
    assert_eq!(
        reports(&events),
        [(2, 2), (4, 2), (5, 1)],
        "{:?}",
        kinds(&events)
    );
    assert_eq!(
        kinds(&events),
        [
            "Trained",
            "Evaluated",
            "Trained",
            "Evaluated",
            "Trained",
            "Evaluated",
            "Idle"
        ]
    );
    // A clock that moves on by more than REPORT_MS at every reading: each step on its own.
    let t = std::cell::Cell::new(0.0);
    let mut r = runner_with_clock(Box::new(move || {
        t.set(t.get() + 2.0 * REPORT_MS);
        t.get()
    }));
    let events = train_new_run(&mut r, &config, 3);
    assert_eq!(
        reports(&events),
        [(1, 1), (2, 1), (3, 1)],
        "{:?}",
        kinds(&events)
    );
}

/// Starts run 1 of `config`, lets it settle, trains it to step `stop_at`; returns the events
/// of the training.
fn train_new_run(r: &mut Runner, config: &RunConfig, stop_at: usize) -> Vec<Event> {
    r.handle(Command::New {
        run: 1,
        config: Box::new(config.clone()),
    });
    until_idle(r);
    r.handle(Command::Train {
        stop_at: Some(stop_at),
    });
    until_idle(r)
}

/// Works until the runner says it is idle; returns every event on the way.
fn until_idle(r: &mut Runner) -> Vec<Event> {
    let mut events = Vec::new();
    while let Some(batch) = pollster::block_on(r.work()) {
        let idle = batch.iter().any(|e| matches!(e, Event::Idle { .. }));
        events.extend(batch);
        if idle {
            break;
        }
        assert!(events.len() < 200, "the runner never became idle");
    }
    events
}

fn kinds(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            format!("{e:?}")
                .split([' ', '(', '{'])
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn a_run_begins_trains_to_its_stop_pauses_saves_and_resumes() {
    let mut r = runner();
    let config = RunConfig::preset("tiny").unwrap();
    assert!(matches!(
        r.handle(Command::New {
            run: 1,
            config: Box::new(config.clone())
        })[..],
        [Event::Began {
            run: 1,
            step: 0,
            ..
        }]
    ));
    // Step 0's curves and the baselines, then nothing: a new run waits for ▶ Train.
    let events = until_idle(&mut r);
    assert_eq!(kinds(&events), ["Evaluated", "Baselines", "Idle"]);
    assert!(pollster::block_on(r.work()).is_none(), "idle is said once");

    r.handle(Command::Train { stop_at: Some(3) });
    let events = until_idle(&mut r);
    // Steps are reported together (every `REPORT_MS`): one or more `Trained`, all three
    // losses in order, the last at step 3, before the evaluation.
    let n = events.len();
    assert!(n >= 3, "{events:?}");
    assert!(
        kinds(&events[..n - 2]).iter().all(|k| k == "Trained"),
        "{events:?}"
    );
    let losses: usize = reports(&events).iter().map(|&(_, n)| n).sum();
    assert_eq!(losses, 3);
    assert!(matches!(events[n - 3], Event::Trained { step: 3, .. }));
    let Event::Evaluated {
        step: 3, curves, ..
    } = &events[n - 2]
    else {
        panic!("{events:?}")
    };
    assert_eq!(curves.len(), 3);
    let Event::Idle {
        step: 3, seen: 2, ..
    } = events[n - 1]
    else {
        panic!("{events:?}")
    };

    // Pause: the run is autosaved at its step (evaluated already).
    r.handle(Command::Pause);
    let events = until_idle(&mut r);
    let [
        Event::Checkpoint {
            run: 1,
            purpose: Purpose::Autosave,
            step: 3,
            bytes,
        },
        Event::Idle { .. },
    ] = &events[..]
    else {
        panic!("{:?}", kinds(&events))
    };
    let saved = bytes.clone().into_vec();

    // A damaged file is refused and the run goes on; the saved one resumes at its step.
    let refused = r.handle(Command::Resume {
        run: 2,
        checkpoint: saved[..saved.len() / 2].to_vec().into(),
        evaluate: true,
    });
    assert!(
        matches!(&refused[..], [Event::Refused { run: 2, message }] if message.contains("truncated")),
        "{refused:?}"
    );
    r.handle(Command::Step);
    let events = until_idle(&mut r);
    assert!(
        matches!(
            &events[0],
            Event::Trained {
                run: 1,
                step: 4,
                ..
            }
        ),
        "{events:?}"
    );

    let began = r.handle(Command::Resume {
        run: 3,
        checkpoint: saved.into(),
        evaluate: true,
    });
    assert!(matches!(&began[..], [Event::Began { run: 3, step: 3, config: c }] if *c == config));
    let events = until_idle(&mut r);
    assert_eq!(kinds(&events), ["Evaluated", "Baselines", "Idle"]);

    // A config past the browser's limits is refused, with the field named.
    let mut huge = config.clone();
    huge.train.batch_size = 100_000;
    let refused = r.handle(Command::New {
        run: 4,
        config: Box::new(huge),
    });
    assert!(
        matches!(&refused[..], [Event::Refused { run: 4, message }] if message.contains("batch")),
        "{refused:?}"
    );
    r.handle(Command::Download);
    let events = until_idle(&mut r);
    assert!(matches!(
        &events[0],
        Event::Checkpoint {
            run: 3,
            purpose: Purpose::Download,
            step: 3,
            ..
        }
    ));
}
