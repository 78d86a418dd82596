//! The training worker's logic ([`Runner`]) on Flex, natively: the page's commands in, the
//! events it would post out, in order; the same code runs in the browser's worker.

use std::rc::Rc;

use burn::prelude::Device;
use gpicl_core::RunConfig;
use gpicl_web::data::{PageData, TRAIN_FILES};
use gpicl_web::protocol::{Command, Event, Purpose};
use gpicl_web::runner::Runner;

fn runner() -> Runner {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web");
    let data = PageData::parse(&TRAIN_FILES.map(|f| std::fs::read(root.join(f)).unwrap())).unwrap();
    let start = std::time::Instant::now();
    Runner::new(
        Device::flex(),
        false,
        Rc::new(data),
        Box::new(move || start.elapsed().as_secs_f64() * 1000.0),
    )
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
    assert_eq!(
        kinds(&events),
        ["Trained", "Trained", "Trained", "Evaluated", "Idle"]
    );
    let Event::Evaluated {
        step: 3, curves, ..
    } = &events[3]
    else {
        panic!("{events:?}")
    };
    assert_eq!(curves.len(), 3);
    let Event::Idle {
        step: 3, seen: 2, ..
    } = events[4]
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
    let saved = bytes.clone();

    // A damaged file is refused and the run goes on; the saved one resumes at its step.
    let refused = r.handle(Command::Resume {
        run: 2,
        checkpoint: saved[..saved.len() / 2].to_vec(),
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
        checkpoint: saved,
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
