//! The training worker's logic: the current run ([`Session`]), what to do next (a chunk of
//! steps, an evaluation, an autosave or a download's checkpoint, the baselines) and the
//! [`Event`]s that say what happened. [`Runner::handle`] takes the page's [`Command`]s;
//! [`Runner::work`] does the next piece of work and returns its events, or `None` when
//! nothing is due (the worker then waits for a command). No DOM and no `postMessage` here:
//! `worker.rs` carries the messages, and native tests drive a `Runner` on Flex.

use std::rc::Rc;

use burn::prelude::Device;
use gpicl_core::baselines::{Baseline, LogisticConfig, curve_positions};
use gpicl_core::share::Limits;
use gpicl_core::{Checkpoint, Error, RunConfig};

use crate::data::PageData;
use crate::protocol::{Command, Event, Purpose};
use crate::session::Session;

/// Autosave every this many steps (and on pause)…
pub const AUTOSAVE_EVERY: usize = 20;
/// …but not more often than this (milliseconds).
pub const AUTOSAVE_MIN_MS: f64 = 10_000.0;
/// Sequences of the run's unseen tasks the baselines are scored on.
pub const BASELINE_SEQUENCES: usize = 32;
/// Most steps in one chunk on WebGPU (the losses of a chunk are read in one round trip). On
/// the CPU a chunk is one step, so a command waits at most one step.
pub const GPU_CHUNK: usize = 5;
/// Micro-batches of a step on the CPU ([`gpicl_core::Trainer::set_micro_batches`]): the
/// worker's WebAssembly memory holds one part's activations at a time, and it never gives
/// memory back. The same step up to float rounding.
pub const CPU_MICRO_BATCHES: usize = 16;
/// Steps that finish within this many milliseconds of the last report are told together, in
/// one `Trained` event: the page redraws its charts a few times a second, not at every CPU
/// step (each redraw makes garbage in the renderer's DOM heap, which then keeps the memory).
/// Any other event, and the end of training, sends what is held first.
pub const REPORT_MS: f64 = 1000.0;

/// The current run and what is due for it.
struct Run {
    id: u64,
    session: Session,
    running: bool,
    step_once: bool,
    stop_at: Option<usize>,
    /// Step of the last evaluation.
    evaluated: Option<usize>,
    /// An evaluation is wanted when training stops.
    eval_wanted: bool,
    baselines_due: bool,
    save_wanted: bool,
    download_wanted: bool,
    /// Step of the last autosave (or of the run's start) and when it was read.
    saved_step: usize,
    saved_ms: f64,
    /// `Idle` was sent since the last command.
    idle_said: bool,
    /// Losses of steps not yet reported, their milliseconds, and when the last report went.
    unsent: Vec<f32>,
    unsent_ms: f64,
    reported_ms: f64,
}

impl Run {
    /// The steps held so far as one `Trained` event at `step`; the report interval restarts
    /// at `now`.
    fn report(&mut self, step: usize, now: f64) -> Event {
        self.reported_ms = now;
        Event::Trained {
            run: self.id,
            step,
            losses: std::mem::take(&mut self.unsent),
            ms: std::mem::take(&mut self.unsent_ms),
        }
    }
}

/// The worker's state: the device, the data and the current run.
pub struct Runner {
    device: Device,
    webgpu: bool,
    data: Rc<PageData>,
    run: Option<Run>,
    /// Commands handled so far.
    seen: u64,
    clock: Box<dyn Fn() -> f64>,
}

impl Runner {
    /// A runner on `device` (`webgpu`: chunks of several steps) over `data`; `clock` gives
    /// milliseconds (for the autosave's pace and the chunks' timing).
    pub fn new(
        device: Device,
        webgpu: bool,
        data: Rc<PageData>,
        clock: Box<dyn Fn() -> f64>,
    ) -> Self {
        Self {
            device,
            webgpu,
            data,
            run: None,
            seen: 0,
            clock,
        }
    }

    fn backend_name(&self) -> &'static str {
        if self.webgpu { "webgpu" } else { "flex" }
    }

    /// Takes one command; returns the events it causes at once.
    pub fn handle(&mut self, command: Command) -> Vec<Event> {
        self.seen += 1;
        if let Some(run) = &mut self.run {
            run.idle_said = false;
        }
        match command {
            // The worker's own business (start-up, a visitor's table); nothing for the runner.
            Command::Init { .. } | Command::Learn { .. } => Vec::new(),
            Command::New { run, config } => {
                let made = Limits::BROWSER
                    .check(&config)
                    .map_err(Error::Config)
                    .and_then(|_| Session::new(*config, self.data.clone(), &self.device));
                self.begin(run, made, true)
            }
            Command::Resume {
                run,
                checkpoint,
                evaluate,
            } => {
                let made = Checkpoint::from_bytes(&checkpoint.into_vec()).and_then(|ck| {
                    Limits::BROWSER.check(&ck.config).map_err(Error::Config)?;
                    Session::resume(&ck, self.data.clone(), &self.device)
                });
                self.begin(run, made, evaluate)
            }
            Command::Train { stop_at } => {
                if let Some(r) = &mut self.run {
                    r.running = true;
                    r.stop_at = stop_at;
                }
                Vec::new()
            }
            Command::Pause => {
                if let Some(r) = &mut self.run {
                    r.running = false;
                    r.eval_wanted = true;
                    r.save_wanted = true;
                }
                Vec::new()
            }
            Command::Step => {
                if let Some(r) = &mut self.run {
                    r.running = false;
                    r.step_once = true;
                    r.eval_wanted = true;
                }
                Vec::new()
            }
            Command::Download => {
                if let Some(r) = &mut self.run {
                    r.download_wanted = true;
                }
                Vec::new()
            }
        }
    }

    /// Makes `made` the current run `id`, or says why not (the current run stays).
    fn begin(&mut self, id: u64, made: Result<Session, Error>, evaluate: bool) -> Vec<Event> {
        match made {
            Ok(mut session) => {
                if !self.webgpu {
                    session.set_micro_batches(CPU_MICRO_BATCHES);
                }
                let step = session.step_count();
                let config = session.config().clone();
                self.run = Some(Run {
                    id,
                    session,
                    running: false,
                    step_once: false,
                    stop_at: None,
                    evaluated: (!evaluate).then_some(step),
                    eval_wanted: evaluate,
                    baselines_due: true,
                    save_wanted: false,
                    download_wanted: false,
                    saved_step: step,
                    saved_ms: (self.clock)(),
                    idle_said: false,
                    unsent: Vec::new(),
                    unsent_ms: 0.0,
                    reported_ms: (self.clock)(),
                });
                vec![Event::Began {
                    run: id,
                    step,
                    config,
                }]
            }
            Err(e) => vec![Event::Refused {
                run: id,
                message: e.to_string(),
            }],
        }
    }

    /// The current run's settings.
    pub fn config(&self) -> Option<&RunConfig> {
        self.run.as_ref().map(|r| r.session.config())
    }

    /// Does the next piece of work for the current run and returns what happened (possibly
    /// nothing yet: steps are reported together every [`REPORT_MS`]); `None` when nothing is
    /// due (wait for a command).
    pub async fn work(&mut self) -> Option<Vec<Event>> {
        // `None`: nothing is due, and what was held went out before the `Idle` that said so.
        let events = self.next().await?;
        let now = (self.clock)();
        let Some(r) = self.run.as_mut() else {
            return Some(events);
        };
        let mut out = Vec::new();
        for event in events {
            match event {
                Event::Trained {
                    step, losses, ms, ..
                } => {
                    r.unsent.extend(losses);
                    r.unsent_ms += ms;
                    if !r.running || now - r.reported_ms >= REPORT_MS {
                        out.push(r.report(step, now));
                    }
                }
                other => {
                    // What was held goes first: the page's record stays in step order.
                    if !r.unsent.is_empty() {
                        out.push(r.report(r.session.step_count(), now));
                    }
                    out.push(other);
                }
            }
        }
        Some(out)
    }

    /// The next piece of work, each step's `Trained` on its own.
    async fn next(&mut self) -> Option<Vec<Event>> {
        let webgpu = self.webgpu;
        let backend = self.backend_name();
        let now = (self.clock)();
        let seen = self.seen;
        let r = self.run.as_mut()?;
        let (id, step) = (r.id, r.session.step_count());
        if r.stop_at.is_some_and(|n| step >= n) {
            r.stop_at = None;
            r.running = false;
            r.eval_wanted = true;
        }
        let every = r.session.config().eval.every.clamp(1, 20);
        // The step-0 evaluation comes first: the page draws the curves it starts from.
        let eval_due = r.evaluated != Some(step)
            && (step % every == 0 || (r.eval_wanted && !r.running && !r.step_once));
        if eval_due {
            r.eval_wanted = false;
            r.evaluated = Some(step);
            return Some(vec![match r.session.evaluate().await {
                Ok(curves) => Event::Evaluated {
                    run: id,
                    step,
                    curves,
                },
                Err(e) => stop(r, e),
            }]);
        }
        if r.baselines_due {
            r.baselines_due = false;
            let set = r.session.unseen_tasks();
            let positions = curve_positions(set.seq_len());
            let curves = [
                Baseline::Knn { k: 1 },
                Baseline::Logistic(LogisticConfig::default()),
            ]
            .iter()
            .map(|b| {
                let points = b.curve(set, &positions, BASELINE_SEQUENCES);
                (format!("{}, same contexts", b.name()), points)
            })
            .collect();
            return Some(vec![Event::Baselines { run: id, curves }]);
        }
        let autosave_due = step > 0
            && step != r.saved_step
            && (r.save_wanted
                || (step - r.saved_step.min(step) >= AUTOSAVE_EVERY
                    && now - r.saved_ms >= AUTOSAVE_MIN_MS));
        if step == r.saved_step {
            r.save_wanted = false;
        }
        if r.download_wanted || autosave_due {
            let purpose = if r.download_wanted {
                r.download_wanted = false;
                Purpose::Download
            } else {
                r.save_wanted = false;
                r.saved_step = step;
                r.saved_ms = now;
                Purpose::Autosave
            };
            return Some(vec![match r.session.checkpoint(backend).await {
                Ok(ck) => Event::Checkpoint {
                    run: id,
                    purpose,
                    step,
                    bytes: ck.to_bytes().into(),
                },
                Err(e) => Event::Error {
                    run: id,
                    message: format!("Reading the model failed: {e}"),
                },
            }]);
        }
        if r.running || r.step_once {
            let until_eval = every - step % every;
            let chunk = match (r.step_once, webgpu) {
                (true, _) | (false, false) => 1,
                (false, true) => until_eval.min(GPU_CHUNK),
            };
            let chunk = r.stop_at.map_or(chunk, |n| chunk.min(n - step));
            r.step_once = false;
            let started = (self.clock)();
            let result = r.session.train(chunk).await;
            let ms = (self.clock)() - started;
            return Some(vec![match result {
                Ok(losses) => Event::Trained {
                    run: id,
                    step: r.session.step_count(),
                    losses,
                    ms,
                },
                Err(e) => stop(r, e),
            }]);
        }
        if r.idle_said {
            return None;
        }
        r.idle_said = true;
        Some(vec![Event::Idle {
            run: id,
            step,
            seen,
        }])
    }
}

/// Stops training `r` after `e`: divergence and other errors are told apart.
fn stop(r: &mut Run, e: Error) -> Event {
    r.running = false;
    r.step_once = false;
    r.stop_at = None;
    match e {
        Error::Diverged(why) => Event::Diverged { run: r.id, why },
        e => Event::Error {
            run: r.id,
            message: e.to_string(),
        },
    }
}
