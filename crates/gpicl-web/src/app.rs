//! The page: the shipped pretrained learner's curves (shown first, from its manifest), settings,
//! the asynchronous training loop, live plots, the step-through (the pretrained learner fed one
//! example at a time through its KV cache, by buttons or keys) and the drawing pad.
//!
//! The training loop passes the [`Session`] by value into a future and gets it back in a
//! message, so the page never holds a borrow across an `await`. Between chunks of steps the
//! future yields to the browser's event loop; on WebGPU the only waits are asynchronous reads,
//! so buttons and scrolling keep answering while the GPU works.

use std::rc::Rc;

use gpicl_core::baselines::{Baseline, LogisticConfig, curve_positions};
use gpicl_core::checkpoint::MAGIC;
use gpicl_core::share::{Limits, Link, REPLAY_TOLERANCE, Replay, ReplayOutcome};
use gpicl_core::task::Batch;
use gpicl_core::{Checkpoint, Curve, Error, EvalSet, Manifest, Results, RunConfig};
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{HtmlInputElement, HtmlSelectElement, KeyboardEvent};
use yew::prelude::*;

use crate::chart::{BaselineCurve, Chart, PALETTE, Series, accuracy_points, heatmap_svg, ramp};
use crate::data::PageData;
use crate::explorer::PhaseExplorer;
use crate::fetch::fetch_bytes;
use crate::gpu::{self, Backend};
use crate::image::gray_bmp_data_url;
use crate::learner::{InContext, Learner};
use crate::now_ms;
use crate::pad::Pad;
use crate::persist::{self, Saved};
use crate::pretrained;
use crate::session::{Session, walk};
use crate::settings::{BATCH_SIZES, Field, MAX_TASKS_LOG2, MODEL_SIZES, PAGE_PRESETS, tasks_label};
use crate::widgets::{bars, curves_figure, figure};
use gpicl_core::task::project;

/// Most loss points drawn (longer histories are averaged into buckets).
const MAX_LOSS_POINTS: usize = 300;
/// Most snapshots in the curve-history plot.
const MAX_HISTORY: usize = 8;

/// Sequences of the run's unseen tasks the page's baselines are scored on.
const BASELINE_SEQUENCES: usize = 32;

/// Autosave every this many steps (and on pause)…
const AUTOSAVE_EVERY: usize = 20;
/// …but not more often than this (milliseconds).
const AUTOSAVE_MIN_MS: f64 = 10_000.0;
/// The largest file the page reads (a checkpoint of the largest model a link allows is less).
const MAX_UPLOAD_BYTES: f64 = 1024.0 * 1048576.0;

/// The link in the page's address (`#v=…`), decoded against `defaults`: the experiment and
/// what was wrong with it, or why it is no link at all.
fn read_link(defaults: &RunConfig) -> (Option<Shared>, Option<String>) {
    let hash = web_sys::window()
        .and_then(|w| w.location().hash().ok())
        .unwrap_or_default();
    if hash.len() <= 1 {
        return (None, None);
    }
    match gpicl_core::share::decode(&hash, defaults, &Limits::BROWSER) {
        Ok(d) => (
            Some(Shared {
                link: d.link,
                problems: d.problems,
                outcome: None,
            }),
            None,
        ),
        Err(e) => (
            None,
            Some(format!(
                "The address does not hold a gpicl link ({e}); the page uses its default settings."
            )),
        ),
    }
}

/// Messages of the page.
pub enum Msg {
    /// The shipped learner's manifest arrived (or failed): its curves can be drawn.
    Manifest(Result<Manifest, String>),
    /// The shipped learner's weights are loaded (or failed).
    LearnerReady(Result<Rc<Learner>, String>),
    /// The device and the data are ready (or failed).
    Ready(Backend, Result<Rc<PageData>, String>),
    /// A control changed.
    Set(Field, String),
    /// Start or resume training.
    Start,
    /// Stop after the steps in flight.
    Pause,
    /// One training step.
    StepOnce,
    /// A new run with the current settings.
    Reset,
    /// Steps finished: the session comes back with their losses (and the milliseconds they
    /// took).
    Trained(Box<Session>, Result<Vec<f32>, Error>, f64),
    /// An evaluation finished.
    Evaluated(Box<Session>, Result<Vec<Curve>, Error>),
    /// Step-through: the learner's prediction for an example and the context that includes it
    /// (for the step-through of `seed`).
    Walked(u64, Result<(Vec<f32>, InContext), Error>),
    /// A key pressed anywhere on the page (not in a form control).
    Key(String),
    /// Step-through: reveal the next example.
    Feed,
    /// Step-through: go back one example.
    Unfeed,
    /// Step-through: back to no examples.
    Restart,
    /// Step-through: a different unseen task.
    NewTask,
    /// Phase explorer: a new live run with this number-of-tasks setting.
    TryTasks(String),
    /// The baselines' curves on run `run`'s unseen tasks.
    Baselines(u64, Vec<BaselineCurve>),
    /// IndexedDB answered whether an autosave exists.
    SavedFound(Result<Option<Saved>, String>),
    /// Resume the autosave offered.
    Resume,
    /// Discard the autosave offered and start afresh.
    Discard,
    /// The session's checkpoint was read (for an autosave or a download).
    Checkpointed(Box<Session>, Purpose, Result<Checkpoint, Error>),
    /// An autosave of run `run` was written (or failed).
    Autosaved(u64, Result<Rc<Saved>, String>),
    /// Make the current run's share link.
    Share,
    /// Re-run the shared link's experiment and compare its curves.
    Replay,
    /// Download something.
    Export(Export),
    /// A download or copy finished (or failed).
    Exported(Result<(), String>),
    /// A file was chosen in the import control.
    ImportChosen(HtmlInputElement),
    /// The chosen file's name and bytes (or why it could not be read).
    Imported(Result<(String, Vec<u8>), String>),
}

/// Why the session's checkpoint is read.
#[derive(Clone, Copy, PartialEq)]
pub enum Purpose {
    /// To autosave it.
    Autosave,
    /// To offer it as a download.
    Download,
}

/// What can be downloaded.
#[derive(Clone, Copy, PartialEq)]
pub enum Export {
    /// results.json (config, seeds, versions, losses, every evaluation's curves).
    Json,
    /// The same curves as CSV.
    Csv,
    /// The accuracy chart as SVG.
    Svg,
    /// The accuracy chart as PNG.
    Png,
    /// The checkpoint file (`.gpicl`).
    Checkpoint,
}

/// The link the page was opened with.
struct Shared {
    link: Link,
    /// What was wrong with it (each bad field fell back to its default).
    problems: Vec<String>,
    /// The replay's result, once the run reached the link's step.
    outcome: Option<ReplayOutcome>,
}

/// One evaluation of the three curves.
struct EvalPoint {
    step: usize,
    /// Training time before it, seconds (evaluations excluded).
    time_s: f64,
    curves: Vec<Curve>,
}

/// The step-through's state: one unseen task fed to the pretrained learner.
struct StepThrough {
    seed: u64,
    walk: Batch,
    images: Vec<String>,
    /// `predictions[j]`: the learner's distribution for example j after examples 0..j.
    predictions: Vec<Vec<f32>>,
    /// The learner's state after the examples of `predictions`.
    context: InContext,
    /// A prediction is being computed.
    pending: bool,
    /// Examples revealed so far; the query is example `fed` (0-based).
    fed: usize,
}

/// The page component.
pub struct App {
    manifest: Option<Result<Manifest, String>>,
    learner: Option<Result<Rc<Learner>, String>>,
    /// Milliseconds from page load to the pretrained curves on screen.
    pretrained_ms: Option<f64>,
    keys: Option<Closure<dyn FnMut(KeyboardEvent)>>,
    backend: Option<Backend>,
    data: Option<Rc<PageData>>,
    /// Settings for the next run.
    config: RunConfig,
    /// Settings of the current run.
    run_config: Option<RunConfig>,
    /// The run, when not lent to a future.
    session: Option<Box<Session>>,
    busy: bool,
    running: bool,
    step_once: bool,
    reset_pending: bool,
    eval_wanted: bool,
    steps: usize,
    losses: Vec<f32>,
    evals: Vec<EvalPoint>,
    /// Counts runs, so results for an earlier run are dropped.
    run_id: u64,
    /// 1-NN and logistic regression on the run's unseen tasks, drawn with its curves.
    baselines: Vec<BaselineCurve>,
    walk: Option<StepThrough>,
    status: String,
    error: Option<String>,
    field_errors: Vec<(Field, String)>,
    first_step_ms: Option<f64>,
    rate: Option<(f64, usize)>,
    steps_per_second: Option<f64>,
    /// The link the page was opened with, and its replay.
    shared: Option<Shared>,
    /// Stop training at this step (a replay stops at the link's step).
    stop_at: Option<usize>,
    /// The next new run is the shared link's replay.
    replay_requested: bool,
    /// The current run's share link, once made.
    share_url: Option<String>,
    /// Whether IndexedDB has said if there is an autosave (training waits for it).
    save_checked: bool,
    /// An autosave found at load, offered for resuming (training waits for the answer).
    offer: Option<Saved>,
    /// Set after a lost device: restore the autosave without asking, and say so.
    device_lost: Option<String>,
    /// The current run's last autosave: also where a diverged run rolls back to.
    last_save: Option<Rc<Saved>>,
    /// Step of the last autosave (or of its request) and when it was made.
    saved_step: usize,
    saved_ms: f64,
    save_in_flight: bool,
    /// An autosave is wanted now (on pause).
    save_wanted: bool,
    /// The checkpoint download is wanted.
    download_wanted: bool,
    /// A checkpoint uploaded while the session was busy, applied when it comes back.
    import_pending: Option<(String, Checkpoint)>,
    /// Someone else's curves (an uploaded results file), drawn with this run's.
    overlay: Option<(String, Vec<Curve>)>,
    /// Training time of the run, milliseconds (evaluations and saves excluded).
    train_ms: f64,
    /// What the page did that the user should know (resumed, imported, rolled back).
    notice: Option<String>,
    /// A file that could not be imported or exported; nothing else changed.
    io_error: Option<String>,
}

impl Component for App {
    type Message = Msg;
    type Properties = ();

    fn create(ctx: &Context<Self>) -> Self {
        // The manifest is built in: the pretrained curves are in the first frame (index.html
        // showed the same figure while the WebAssembly loaded); the GPU, the data and the
        // weights start after it.
        let manifest = Manifest::from_json(pretrained::MANIFEST_JSON).map_err(|e| e.to_string());
        ctx.link().send_message(Msg::Manifest(manifest.clone()));
        ctx.link()
            .send_future(async { Msg::SavedFound(persist::load().await) });
        let mut config = RunConfig::preset("browser").expect("the browser preset exists");
        let (shared, link_error) = read_link(&config);
        if let Some(s) = &shared {
            config = s.link.config.clone();
        }
        let replay_requested = shared.as_ref().is_some_and(|s| s.link.replay.is_some());
        Self {
            manifest: Some(manifest),
            learner: None,
            pretrained_ms: None,
            keys: None,
            backend: None,
            data: None,
            config,
            run_config: None,
            session: None,
            busy: false,
            running: true,
            step_once: false,
            reset_pending: false,
            eval_wanted: false,
            steps: 0,
            losses: Vec::new(),
            evals: Vec::new(),
            run_id: 0,
            baselines: Vec::new(),
            walk: None,
            status: "Starting the GPU and loading MNIST and Fashion-MNIST…".into(),
            error: None,
            field_errors: Vec::new(),
            first_step_ms: None,
            rate: None,
            steps_per_second: None,
            shared,
            stop_at: None,
            replay_requested,
            share_url: None,
            save_checked: false,
            offer: None,
            device_lost: persist::take_device_lost(),
            last_save: None,
            saved_step: 0,
            saved_ms: f64::NEG_INFINITY,
            save_in_flight: false,
            save_wanted: false,
            download_wanted: false,
            import_pending: None,
            overlay: None,
            train_ms: 0.0,
            notice: None,
            io_error: link_error,
        }
    }

    fn rendered(&mut self, ctx: &Context<Self>, first: bool) {
        if first {
            self.listen_to_keys(ctx);
        }
        if self.pretrained_ms.is_none() && matches!(self.manifest, Some(Ok(_))) {
            self.pretrained_ms = Some(now_ms());
        }
    }

    fn update(&mut self, ctx: &Context<Self>, msg: Msg) -> bool {
        match msg {
            Msg::Manifest(result) => {
                // The rest starts a moment after the curves are painted: parsing the data is a
                // few seconds of work on this thread, and the curves should be seen first.
                const AFTER_PAINT_MS: u32 = 300;
                if let Ok(manifest) = &result {
                    let manifest = manifest.clone();
                    ctx.link().send_future(async move {
                        gloo_timers::future::TimeoutFuture::new(AFTER_PAINT_MS).await;
                        let url = format!("pretrained/{}", manifest.model.file);
                        let learner = async {
                            let bytes = fetch_bytes(&url).await?;
                            Learner::load(manifest, bytes).map_err(|e| e.to_string())
                        };
                        Msg::LearnerReady(learner.await.map(Rc::new))
                    });
                }
                if let Err(e) = &result {
                    self.learner = Some(Err(e.clone()));
                }
                self.manifest = Some(result);
                ctx.link().send_future(async {
                    gloo_timers::future::TimeoutFuture::new(AFTER_PAINT_MS).await;
                    let (backend, data) =
                        futures::join!(gpu::init(), crate::fetch::load_page_data());
                    Msg::Ready(backend, data.map(Rc::new))
                });
            }
            Msg::LearnerReady(result) => {
                self.learner = Some(result);
                self.make_walk(0, ctx);
            }
            Msg::Walked(seed, result) => {
                if let Some(w) = &mut self.walk
                    && w.seed == seed
                {
                    w.pending = false;
                    match result {
                        Ok((probs, context)) => {
                            w.predictions.push(probs);
                            w.context = context;
                        }
                        Err(e) => self.error = Some(e.to_string()),
                    }
                }
                self.advance_walk(ctx);
            }
            Msg::Key(key) => {
                let msg = match key.as_str() {
                    "ArrowRight" | "Enter" | " " | "f" => Some(Msg::Feed),
                    "ArrowLeft" => Some(Msg::Unfeed),
                    "r" | "Home" => Some(Msg::Restart),
                    "n" => Some(Msg::NewTask),
                    _ => None,
                };
                return match msg {
                    Some(m) if self.walk.is_some() => Component::update(self, ctx, m),
                    _ => false,
                };
            }
            Msg::Ready(backend, data) => {
                // On WebGPU training starts by itself; on the CPU it would share the main
                // thread with the step-through and the drawing pad, so it waits for a click.
                self.running = backend.webgpu;
                self.backend = Some(backend);
                match data {
                    Ok(data) => {
                        self.data = Some(data);
                        self.new_session(ctx);
                        self.make_walk(0, ctx);
                        self.settle_saved(ctx);
                    }
                    Err(e) => {
                        self.error = Some(format!("Could not load the data: {e}"));
                        self.running = false;
                    }
                }
            }
            Msg::Set(field, value) => {
                self.field_errors.retain(|(f, _)| *f != field);
                if let Err(e) = field.apply(&mut self.config, &value) {
                    self.field_errors.push((field, e));
                }
                if field == Field::Preset {
                    self.field_errors.clear();
                }
            }
            Msg::Start => {
                self.running = true;
                self.error = None;
            }
            Msg::Baselines(run, curves) => {
                if run == self.run_id {
                    self.baselines = curves;
                }
            }
            Msg::TryTasks(setting) => {
                Component::update(self, ctx, Msg::Set(Field::Tasks, setting));
                Component::update(self, ctx, Msg::Reset);
                Component::update(self, ctx, Msg::Start);
            }
            Msg::Pause => {
                self.running = false;
                self.eval_wanted = true;
                self.save_wanted = true;
            }
            Msg::StepOnce => {
                self.running = false;
                self.step_once = true;
                self.eval_wanted = true;
            }
            Msg::Reset => {
                self.error = None;
                if self.busy {
                    self.reset_pending = true;
                } else {
                    self.new_session(ctx);
                }
            }
            Msg::Trained(session, result, ms) => {
                self.busy = false;
                match result {
                    Ok(losses) => {
                        self.train_ms += ms;
                        self.steps = session.step_count();
                        self.losses.extend(losses);
                        self.note_rate();
                    }
                    Err(Error::Diverged(why)) => {
                        self.session = Some(session);
                        self.roll_back(&why, ctx);
                        return true;
                    }
                    Err(e) => {
                        self.error = Some(e.to_string());
                        self.running = false;
                    }
                }
                self.session = Some(session);
            }
            Msg::Evaluated(session, result) => {
                self.busy = false;
                match result {
                    Ok(curves) => {
                        let step = session.step_count();
                        if let Some(shared) = &mut self.shared
                            && let Some(replay) = &shared.link.replay
                            && replay.step == step
                            && session.config() == &shared.link.config
                        {
                            shared.outcome = Some(replay.compare(&curves));
                        }
                        self.evals.retain(|e| e.step != step);
                        let time_s = self.train_ms / 1000.0;
                        self.evals.push(EvalPoint {
                            step,
                            time_s,
                            curves,
                        });
                    }
                    Err(e) => {
                        self.error = Some(e.to_string());
                        self.running = false;
                    }
                }
                self.session = Some(session);
            }
            Msg::Feed => {
                if let Some(w) = &mut self.walk {
                    w.fed = (w.fed + 1).min(w.walk.labels.len() - 1);
                }
                self.advance_walk(ctx);
            }
            Msg::Unfeed => {
                if let Some(w) = &mut self.walk {
                    w.fed = w.fed.saturating_sub(1);
                }
            }
            Msg::Restart => {
                if let Some(w) = &mut self.walk {
                    w.fed = 0;
                }
            }
            Msg::NewTask => {
                let seed = self.walk.as_ref().map_or(0, |w| w.seed + 1);
                self.make_walk(seed, ctx);
            }
            Msg::SavedFound(result) => {
                self.save_checked = true;
                match result {
                    Ok(saved) => self.offer = saved,
                    Err(e) => {
                        self.io_error = Some(format!(
                            "Autosave is unavailable in this browser ({e}): the run is not saved."
                        ))
                    }
                }
                self.settle_saved(ctx);
            }
            Msg::Resume => {
                if let Some(saved) = self.offer.take() {
                    match self.restore(&saved, ctx) {
                        Ok(()) => {
                            self.notice = Some(format!(
                                "Resumed the run saved at step {}. Press ▶ Train to continue.",
                                saved.step
                            ));
                            self.last_save = Some(Rc::new(saved));
                        }
                        Err(e) => {
                            self.io_error = Some(format!("The autosave could not be resumed: {e}"))
                        }
                    }
                }
            }
            Msg::Discard => {
                self.offer = None;
                self.running = self.backend.as_ref().is_some_and(|b| b.webgpu);
                ctx.link().send_future(async {
                    Msg::Exported(
                        persist::discard()
                            .await
                            .map_err(|e| format!("discard: {e}")),
                    )
                });
            }
            Msg::Checkpointed(session, purpose, result) => {
                self.busy = false;
                let step = session.step_count();
                self.session = Some(session);
                match (purpose, result) {
                    (Purpose::Download, Ok(ck)) => {
                        let name = self.file_name("gpicl");
                        if let Err(e) =
                            persist::download(&name, "application/octet-stream", &ck.to_bytes())
                        {
                            self.io_error = Some(format!("Download failed: {e}"));
                        }
                    }
                    (Purpose::Autosave, Ok(ck)) => {
                        let saved = Saved {
                            checkpoint: ck.to_bytes(),
                            results: self.results_json(),
                            step,
                        };
                        self.save_in_flight = true;
                        let run = self.run_id;
                        ctx.link().send_future(async move {
                            let result = persist::save(&saved).await.map(|_| Rc::new(saved));
                            Msg::Autosaved(run, result)
                        });
                    }
                    (_, Err(e)) => self.io_error = Some(format!("Reading the model failed: {e}")),
                }
            }
            Msg::Autosaved(run, result) => {
                self.save_in_flight = false;
                match result {
                    // A save of an earlier run (reset while it was written) is no rollback
                    // point for this one.
                    Ok(saved) if run == self.run_id => self.last_save = Some(saved),
                    Ok(_) => {}
                    Err(e) => self.io_error = Some(format!("Autosave failed: {e}")),
                }
            }
            Msg::Share => {
                let url = self.share_link();
                self.share_url = Some(url.clone());
                ctx.link().send_future(async move {
                    // A refused clipboard is no error: the link is shown to copy by hand.
                    let _ = persist::copy(&url).await;
                    Msg::Exported(Ok(()))
                });
            }
            Msg::Replay => {
                if let Some(shared) = &mut self.shared {
                    self.config = shared.link.config.clone();
                    shared.outcome = None;
                    self.replay_requested = true;
                    self.running = true;
                    Component::update(self, ctx, Msg::Reset);
                }
            }
            Msg::Export(kind) => self.export(kind, ctx),
            Msg::Exported(result) => {
                if let Err(e) = result {
                    self.io_error = Some(e);
                }
            }
            Msg::ImportChosen(input) => {
                ctx.link().send_future(async move {
                    let result = persist::read_file(&input, MAX_UPLOAD_BYTES).await;
                    input.set_value("");
                    Msg::Imported(result)
                });
            }
            Msg::Imported(result) => self.import(result),
        }
        if let Some((name, ck)) = self.import_pending.take() {
            if self.busy {
                self.import_pending = Some((name, ck));
            } else {
                self.apply_import(&name, &ck, ctx);
            }
        }
        if self.reset_pending && !self.busy {
            self.reset_pending = false;
            self.new_session(ctx);
        }
        self.pump(ctx);
        true
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        html! {
            <main>
                { self.view_status(ctx) }
                { self.view_share(ctx) }
                <section class="compare" aria-label="Pretrained learner and your learner">
                    { self.view_pretrained() }
                    { self.view_accuracy() }
                </section>
                <div class="columns">
                    { self.view_controls(ctx) }
                    <div class="plots">
                        { self.view_loss() }
                        { self.view_history() }
                        { self.view_heatmap() }
                    </div>
                </div>
                { self.view_walk(ctx) }
                if let Some(Ok(learner)) = &self.learner {
                    <Pad learner={learner.clone()} />
                }
                <PhaseExplorer on_try={ctx.link().callback(Msg::TryTasks)} />
            </main>
        }
    }
}

impl App {
    /// Starts a new run with the current settings (step 0, evaluated before training).
    fn new_session(&mut self, ctx: &Context<Self>) {
        let (Some(backend), Some(data)) = (&self.backend, &self.data) else {
            return;
        };
        match Session::new(self.config.clone(), data.clone(), &backend.device) {
            Ok(s) => {
                self.begin(s, None, ctx);
                self.status = String::new();
                if std::mem::take(&mut self.replay_requested) {
                    self.stop_at = self.replay_step();
                }
            }
            Err(e) => {
                self.error = Some(format!("Cannot start a run: {e}"));
                self.running = false;
            }
        }
    }

    /// Makes `session` the current run (a new one, or one resumed from a checkpoint with its
    /// losses and curves when known): a new run id, its baselines, and everything that belonged
    /// to the previous run cleared.
    fn begin(&mut self, session: Session, results: Option<&Results>, ctx: &Context<Self>) {
        self.run_id += 1;
        self.baselines.clear();
        self.score_baselines(session.unseen_tasks(), ctx);
        self.config = session.config().clone();
        self.run_config = Some(session.config().clone());
        self.steps = session.step_count();
        self.losses =
            results.map_or_else(Vec::new, |r| r.loss_log.iter().map(|&(_, l)| l).collect());
        self.evals = results.map_or_else(Vec::new, |r| {
            r.history
                .iter()
                .map(|e| EvalPoint {
                    step: e.step,
                    time_s: e.time_s,
                    curves: e.curves.clone(),
                })
                .collect()
        });
        self.eval_wanted = self.evals.last().is_none_or(|e| e.step != self.steps);
        self.train_ms = results.map_or(0.0, |r| 1000.0 * r.train_time_s);
        self.session = Some(Box::new(session));
        self.rate = None;
        self.steps_per_second = None;
        self.stop_at = None;
        self.saved_step = self.steps;
        self.last_save = None;
        self.share_url = None;
    }

    /// The step the shared link's replay trains to.
    fn replay_step(&self) -> Option<usize> {
        self.shared
            .as_ref()
            .and_then(|s| s.link.replay.as_ref())
            .map(|r| r.step)
    }

    /// Once the data and IndexedDB have both answered: after a lost device, restore the
    /// autosave at once; otherwise an autosave waits for the user's answer (Resume/Discard).
    fn settle_saved(&mut self, ctx: &Context<Self>) {
        if !self.save_checked || self.session.is_none() {
            return;
        }
        let Some(lost) = self.device_lost.take() else {
            if self.offer.is_some() {
                self.running = false;
            }
            return;
        };
        match self.offer.take() {
            Some(saved) => match self.restore(&saved, ctx) {
                Ok(()) => {
                    self.notice = Some(format!(
                        "{lost} The page re-created the device and restored the run from its \
                         autosave at step {}; training goes on.",
                        saved.step
                    ));
                    self.running = self.backend.as_ref().is_some_and(|b| b.webgpu);
                    self.last_save = Some(Rc::new(saved));
                }
                Err(e) => {
                    self.io_error = Some(format!("{lost} Its autosave could not be restored: {e}"))
                }
            },
            None => {
                self.notice = Some(format!(
                    "{lost} The page re-created the device; there was no autosave, so a new run \
                     starts."
                ))
            }
        }
    }

    /// Makes `saved` (an autosave) the current run: its checkpoint, losses and curves.
    fn restore(&mut self, saved: &Saved, ctx: &Context<Self>) -> Result<(), String> {
        let ck = Checkpoint::from_bytes(&saved.checkpoint).map_err(|e| e.to_string())?;
        let results = Results::from_json(&saved.results).map_err(|e| e.to_string())?;
        self.start_from(&ck, Some(&results), ctx)
    }

    /// Replaces the run with `ck` (an autosave, a rollback or an uploaded checkpoint), with its
    /// losses and curves when known. On error nothing changes.
    fn start_from(
        &mut self,
        ck: &Checkpoint,
        results: Option<&Results>,
        ctx: &Context<Self>,
    ) -> Result<(), String> {
        Limits::BROWSER.check(&ck.config)?;
        let (Some(backend), Some(data)) = (&self.backend, &self.data) else {
            return Err("the page is still loading".into());
        };
        if self.busy {
            return Err("the run is busy; try again in a moment".into());
        }
        let session =
            Session::resume(ck, data.clone(), &backend.device).map_err(|e| e.to_string())?;
        self.begin(session, results, ctx);
        self.running = false;
        self.error = None;
        Ok(())
    }

    /// A diverged run goes back to its last saved state (an autosave or a loaded checkpoint;
    /// else its start) and pauses.
    fn roll_back(&mut self, why: &str, ctx: &Context<Self>) {
        let to = match self.last_save.clone() {
            Some(saved) => self.restore(&saved, ctx).map(|_| {
                self.last_save = Some(saved.clone());
                format!("its last saved state, step {}", saved.step)
            }),
            None => {
                if let Some(c) = self.run_config.clone() {
                    self.config = c;
                }
                self.new_session(ctx);
                Ok("step 0 (no autosave yet)".to_string())
            }
        };
        self.running = false;
        match to {
            Ok(to) => {
                let mut why = why.to_string();
                if let Some(first) = why.get_mut(..1) {
                    first.make_ascii_uppercase();
                }
                self.notice = Some(format!(
                    "{why} The run went back to {to} and is paused: change the settings and \
                     press Reset, or press ▶ Train to try again."
                ))
            }
            Err(e) => self.error = Some(format!("Training diverged: {why} ({e})")),
        }
    }

    /// The backend's name, as results and checkpoints record it.
    fn backend_name(&self) -> &'static str {
        if self.backend.as_ref().is_some_and(|b| b.webgpu) {
            "webgpu"
        } else {
            "flex"
        }
    }

    /// The run so far as `results.json`.
    fn results_json(&self) -> String {
        self.results()
            .and_then(|r| serde_json::to_string_pretty(&r).ok())
            .unwrap_or_default()
    }

    /// The run so far: its config, every step's loss, every evaluation's curves.
    fn results(&self) -> Option<Results> {
        let config = self.run_config.as_ref()?;
        let mut r = Results::new(config, self.backend_name());
        r.steps = self.steps;
        r.train_time_s = self.train_ms / 1000.0;
        let first = self.steps + 1 - self.losses.len().min(self.steps + 1);
        r.loss_log = self
            .losses
            .iter()
            .enumerate()
            .map(|(i, &l)| (first + i, l))
            .collect();
        let mut previous = 0;
        r.history = self
            .evals
            .iter()
            .map(|e| {
                let window: Vec<f32> = r
                    .loss_log
                    .iter()
                    .filter(|(s, _)| *s > previous && *s <= e.step)
                    .map(|p| p.1)
                    .collect();
                previous = e.step;
                gpicl_core::EvalPoint {
                    step: e.step,
                    time_s: e.time_s,
                    train_loss: window.iter().sum::<f32>() / window.len().max(1) as f32,
                    curves: e.curves.clone(),
                }
            })
            .collect();
        Some(r)
    }

    /// `gpicl-NAME-seedS-stepN.EXT` for the current run.
    fn file_name(&self, ext: &str) -> String {
        let (name, seed) = self
            .run_config
            .as_ref()
            .map_or(("run".into(), 0), |c| (c.name.clone(), c.seed));
        format!("gpicl-{name}-seed{seed}-step{}.{ext}", self.steps)
    }

    /// The data bundles' version, from the shipped learner's manifest.
    fn data_version(&self) -> String {
        match &self.manifest {
            Some(Ok(m)) => gpicl_core::share::data_version(&m.data),
            _ => "unknown".into(),
        }
    }

    /// The current run as a link: its settings and seeds, the versions, and the fingerprint of
    /// its latest curves (if the run has trained).
    fn share_link(&self) -> String {
        let config = self
            .run_config
            .clone()
            .unwrap_or_else(|| self.config.clone());
        let replay = self
            .evals
            .last()
            .filter(|e| e.step > 0)
            .map(|e| Replay::of(e.step, &e.curves));
        let link = Link {
            config,
            app_version: env!("CARGO_PKG_VERSION").into(),
            data_version: self.data_version(),
            replay,
        };
        let location = web_sys::window().map(|w| w.location());
        let base = location
            .map(|l| {
                format!(
                    "{}{}",
                    l.origin().unwrap_or_default(),
                    l.pathname().unwrap_or_default()
                )
            })
            .unwrap_or_default();
        format!("{base}#{}", gpicl_core::share::encode(&link))
    }

    fn export(&mut self, kind: Export, ctx: &Context<Self>) {
        self.io_error = None;
        let result = match kind {
            Export::Json => persist::download(
                &self.file_name("json"),
                "application/json",
                self.results_json().as_bytes(),
            ),
            Export::Csv => match self.results() {
                Some(r) => {
                    persist::download(&self.file_name("csv"), "text/csv", r.to_csv().as_bytes())
                }
                None => Err("no run yet".into()),
            },
            Export::Svg => persist::chart_svg("#acc-chart").and_then(|svg| {
                persist::download(&self.file_name("svg"), "image/svg+xml", svg.as_bytes())
            }),
            Export::Png => {
                let name = self.file_name("png");
                ctx.link().send_future(async move {
                    let png = persist::chart_png("#acc-chart").await;
                    Msg::Exported(png.and_then(|b| persist::download(&name, "image/png", &b)))
                });
                Ok(())
            }
            Export::Checkpoint => {
                self.download_wanted = true;
                Ok(())
            }
        };
        if let Err(e) = result {
            self.io_error = Some(format!("Download failed: {e}"));
        }
    }

    /// A checkpoint (continue or evaluate it here) or a results file (overlay its curves); a
    /// bad file changes nothing and says why.
    fn import(&mut self, result: Result<(String, Vec<u8>), String>) {
        self.io_error = None;
        let (name, bytes) = match result {
            Ok(file) => file,
            Err(e) => {
                self.io_error = Some(format!("Could not read the file: {e}"));
                return;
            }
        };
        if bytes.starts_with(MAGIC) {
            let checked = Checkpoint::from_bytes(&bytes)
                .map_err(|e| e.to_string())
                .and_then(|ck| Limits::BROWSER.check(&ck.config).map(|_| ck));
            match checked {
                Ok(ck) => self.import_pending = Some((name, ck)),
                Err(e) => {
                    self.io_error = Some(format!(
                        "{name} was not loaded: {e}. The running experiment is unchanged."
                    ))
                }
            }
            return;
        }
        let results = std::str::from_utf8(&bytes)
            .map_err(|_| "it is neither a gpicl checkpoint nor text".to_string())
            .and_then(|t| Results::from_json(t).map_err(|e| e.to_string()));
        match results {
            Ok(r) => match r.last() {
                Some(last) => {
                    self.notice = Some(format!(
                        "Overlaid the curves of {name} (step {}, made with gpicl {} on {}).",
                        last.step, r.gpicl_version, r.backend
                    ));
                    self.overlay =
                        Some((format!("{name}, step {}", last.step), last.curves.clone()));
                }
                None => self.io_error = Some(format!("{name} has no evaluation to overlay.")),
            },
            Err(e) => {
                self.io_error = Some(format!(
                    "{name} was not loaded: {e}. The running experiment is unchanged."
                ))
            }
        }
    }

    fn apply_import(&mut self, name: &str, ck: &Checkpoint, ctx: &Context<Self>) {
        match self.start_from(ck, None, ctx) {
            Ok(()) => {
                // The loaded state is the first place a diverging run goes back to.
                self.last_save = Some(Rc::new(Saved {
                    checkpoint: ck.to_bytes(),
                    results: self.results_json(),
                    step: ck.state.step,
                }));
                self.notice = Some(format!(
                    "Loaded {name}: step {}, written by {}. Its curves are measured here; press \
                     ▶ Train to continue meta-training it.",
                    ck.state.step, ck.written_by
                ))
            }
            Err(e) => {
                self.io_error = Some(format!(
                    "{name} was not loaded: {e}. The running experiment is unchanged."
                ))
            }
        }
    }

    /// Scores 1-NN and logistic regression on the first sequences of `set` (the run's unseen
    /// tasks), fit at each position on the examples before it, on the CPU between frames
    /// (one baseline per frame).
    fn score_baselines(&self, set: &EvalSet, ctx: &Context<Self>) {
        let set = set.clone();
        let (run, n_classes) = (self.run_id, self.n_classes());
        let positions = curve_positions(set.seq_len());
        ctx.link().send_future(async move {
            let mut curves = Vec::new();
            for b in [
                Baseline::Knn { k: 1 },
                Baseline::Logistic(LogisticConfig::default()),
            ] {
                gloo_timers::future::TimeoutFuture::new(0).await;
                let points = b.curve(&set, n_classes, &positions, BASELINE_SEQUENCES);
                curves.push((format!("{}, same contexts", b.name()), points));
            }
            Msg::Baselines(run, curves)
        });
    }

    /// A new step-through (of `seed`) once both the data and the learner are there.
    fn make_walk(&mut self, seed: u64, ctx: &Context<Self>) {
        let (Some(data), Some(Ok(learner))) = (&self.data, &self.learner) else {
            return;
        };
        let config = learner.config();
        let walk = walk(data, config, config.eval.seed ^ seed);
        let side = data.test_pixels.image_side.unwrap_or(28);
        let images = walk
            .indices
            .iter()
            .map(|&i| gray_bmp_data_url(data.test_pixels.row(i), side))
            .collect();
        self.walk = Some(StepThrough {
            seed,
            walk,
            images,
            predictions: Vec::new(),
            context: InContext::default(),
            pending: false,
            fed: 0,
        });
        self.advance_walk(ctx);
    }

    /// Computes the prediction for the example shown, if not yet known: one more example
    /// through the KV cache (the previous ones are not run again).
    fn advance_walk(&mut self, ctx: &Context<Self>) {
        let (Some(w), Some(Ok(learner))) = (&mut self.walk, &self.learner) else {
            return;
        };
        let j = w.predictions.len();
        if w.pending || j > w.fed || j >= w.walk.seq_len {
            return;
        }
        w.pending = true;
        let b = &w.walk;
        let x = project(&b.projection, &b.x[j * b.n_in..(j + 1) * b.n_in], b.d_in);
        let label = b.labels[j] as usize;
        let (learner, context, seed) = (learner.clone(), w.context.clone(), w.seed);
        ctx.link()
            .send_future(async move { Msg::Walked(seed, learner.feed(&context, &x, label).await) });
    }

    /// Keys for the step-through, on the whole page (not while typing in a form control).
    fn listen_to_keys(&mut self, ctx: &Context<Self>) {
        let link = ctx.link().clone();
        let handler = Closure::<dyn FnMut(KeyboardEvent)>::new(move |e: KeyboardEvent| {
            let in_control = e
                .target()
                .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
                .is_some_and(|el| {
                    matches!(
                        el.tag_name().as_str(),
                        "INPUT" | "SELECT" | "TEXTAREA" | "BUTTON"
                    )
                });
            if in_control || e.ctrl_key() || e.meta_key() || e.alt_key() {
                return;
            }
            let key = e.key();
            if matches!(key.as_str(), " " | "ArrowLeft" | "ArrowRight") {
                e.prevent_default();
            }
            link.send_message(Msg::Key(key));
        });
        if let Some(doc) = web_sys::window().and_then(|w| w.document()) {
            let _ =
                doc.add_event_listener_with_callback("keydown", handler.as_ref().unchecked_ref());
        }
        self.keys = Some(handler);
    }

    fn note_rate(&mut self) {
        let now = now_ms();
        if self.first_step_ms.is_none() {
            self.first_step_ms = Some(now);
        }
        match self.rate {
            Some((t0, s0)) if now - t0 > 2000.0 => {
                self.steps_per_second = Some((self.steps - s0) as f64 / ((now - t0) / 1000.0));
                self.rate = Some((now, self.steps));
            }
            None => self.rate = Some((now, self.steps)),
            _ => {}
        }
    }

    /// Classes of the current run (10 before one exists).
    fn n_classes(&self) -> usize {
        self.run_config.as_ref().map_or(10, |c| c.model.n_classes)
    }

    fn eval_every(&self) -> usize {
        self.run_config
            .as_ref()
            .map_or(20, |c| c.eval.every.clamp(1, 20))
    }

    /// Lends the session to the next piece of work, if any is due and none is in flight.
    fn pump(&mut self, ctx: &Context<Self>) {
        // Nothing runs until IndexedDB has said whether a saved run waits to be resumed (a new
        // run's autosave would overwrite it).
        if self.busy || self.error.is_some() || !self.save_checked || self.offer.is_some() {
            return;
        }
        let Some(session) = self.session.as_ref() else {
            return;
        };
        let step = session.step_count();
        if self.stop_at.is_some_and(|n| step >= n) {
            self.stop_at = None;
            self.running = false;
            self.eval_wanted = true;
        }
        let autosave_due = step > 0
            && step != self.saved_step
            && !self.save_in_flight
            && (self.save_wanted
                || (step - self.saved_step.min(step) >= AUTOSAVE_EVERY
                    && now_ms() - self.saved_ms >= AUTOSAVE_MIN_MS));
        if self.download_wanted || autosave_due {
            let purpose = if self.download_wanted {
                self.download_wanted = false;
                Purpose::Download
            } else {
                self.save_wanted = false;
                self.saved_step = step;
                self.saved_ms = now_ms();
                Purpose::Autosave
            };
            let session = self.session.take().expect("checked above");
            let backend = self.backend_name();
            self.busy = true;
            ctx.link().send_future(async move {
                let result = session.checkpoint(backend).await;
                Msg::Checkpointed(session, purpose, result)
            });
            return;
        }
        if step == self.saved_step {
            self.save_wanted = false;
        }
        let evaluated = self.evals.last().is_some_and(|e| e.step == step);
        let due = step % self.eval_every() == 0 && !evaluated;
        if due || (self.eval_wanted && !self.running && !self.step_once) {
            self.eval_wanted = false;
            let session = self.session.take().expect("checked above");
            self.busy = true;
            ctx.link().send_future(async move {
                gloo_timers::future::TimeoutFuture::new(0).await;
                let result = session.evaluate().await;
                Msg::Evaluated(session, result)
            });
        } else if self.running || self.step_once {
            let until_eval = self.eval_every() - step % self.eval_every();
            let chunk = if self.step_once {
                1
            } else if self.backend.as_ref().is_some_and(|b| b.webgpu) {
                until_eval.min(5)
            } else {
                1
            };
            let chunk = self.stop_at.map_or(chunk, |n| chunk.min(n - step));
            self.step_once = false;
            let mut session = self.session.take().expect("checked above");
            self.busy = true;
            ctx.link().send_future(async move {
                gloo_timers::future::TimeoutFuture::new(0).await;
                let started = now_ms();
                let result = session.train(chunk).await;
                Msg::Trained(session, result, now_ms() - started)
            });
        }
    }

    fn view_status(&self, ctx: &Context<Self>) -> Html {
        let backend = self.backend.as_ref();
        let link = ctx.link();
        let changed = self.run_config.as_ref().is_some_and(|c| *c != self.config);
        html! {
            <section class="status" aria-live="polite">
                <div class="toolbar">
                    if self.running {
                        <button id="run-toggle" onclick={link.callback(|_| Msg::Pause)}>{"⏸ Pause"}</button>
                    } else {
                        <button id="run-toggle" onclick={link.callback(|_| Msg::Start)}>{"▶ Train"}</button>
                    }
                    <button id="step-once" onclick={link.callback(|_| Msg::StepOnce)}>{"Step"}</button>
                    <button id="reset" class={classes!(changed.then_some("attention"))}
                        onclick={link.callback(|_| Msg::Reset)}>{"Reset"}</button>
                    <span class="stat">{"Step "}<b id="step">{self.steps}</b></span>
                    <span class="stat">{"Loss "}<b id="loss">{
                        self.losses.last().map_or("–".into(), |l| format!("{l:.3}"))
                    }</b></span>
                    if let Some(r) = self.steps_per_second {
                        <span class="stat" id="rate">{format!("{r:.1} steps/s")}</span>
                    }
                    <span class="stat" id="state">{
                        if self.session.is_none() && !self.busy { "loading" }
                        else if self.running { "training" }
                        else if self.steps == 0 && !self.busy { "not started" }
                        else if self.busy { "finishing the steps in flight…" }
                        else { "paused" }
                    }</span>
                </div>
                <div id="backend" class={classes!("backend", backend.is_some_and(|b| b.webgpu).then_some("webgpu"))}>
                    { backend.map_or_else(|| self.status.clone(), |b| format!("Device: {}", b.label)) }
                    if let Some(ms) = self.first_step_ms {
                        <span id="first-step">{format!(" · first training step {:.1} s after page load", ms / 1000.0)}</span>
                    }
                </div>
                if let Some(note) = backend.and_then(|b| b.fallback.clone()) {
                    <p id="fallback" class="warning" role="alert">{note}</p>
                }
                if changed {
                    <p id="needs-reset" class="notice">{"You changed settings of the run: press Reset to start a new run with them (the current run keeps its settings)."}</p>
                }
                if let Some(e) = &self.error {
                    <p id="error" class="error" role="alert">{e}</p>
                }
                if let Some(n) = &self.notice {
                    <p id="notice" class="notice" role="status">{n}</p>
                }
                if let Some(saved) = &self.offer {
                    <div id="resume-offer" class="notice" role="alert">
                        {format!("This browser holds a run saved at step {}. ", saved.step)}
                        <button id="resume" disabled={self.session.is_none()} onclick={link.callback(|_| Msg::Resume)}>{"Resume it"}</button>
                        <button id="discard" onclick={link.callback(|_| Msg::Discard)}>{"Discard it and start afresh"}</button>
                    </div>
                }
            </section>
        }
    }

    /// Share link and replay, downloads, uploads and the autosave's state.
    fn view_share(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let ready = self.session.is_some() || self.busy;
        let export = |kind: Export| link.callback(move |_| Msg::Export(kind));
        let on_import = link
            .callback(|e: Event| Msg::ImportChosen(e.target_unchecked_into::<HtmlInputElement>()));
        let shared = self.shared.as_ref().map(|s| {
            let mut notes = s.problems.clone();
            let data = self.data_version();
            if !s.link.data_version.is_empty() && data != "unknown" && s.link.data_version != data {
                notes.push(format!(
                    "data: the link was made with data bundles {}, this page has {data}; curves may differ",
                    s.link.data_version
                ));
            }
            let app = env!("CARGO_PKG_VERSION");
            if !s.link.app_version.is_empty() && s.link.app_version != app {
                notes.push(format!(
                    "app: the link was made with gpicl {}, this is {app}; curves may differ",
                    s.link.app_version
                ));
            }
            let replay = s.link.replay.as_ref().map(|r| {
                let (class, text) = match s.outcome {
                    None if self.stop_at.is_some() => ("pending", format!(
                        "replaying: step {} of {}…", self.steps, r.step)),
                    None => ("pending", format!(
                        "the link carries the curves after {} steps: replay to check them", r.step)),
                    Some(ReplayOutcome::Exact) => ("reproduced", format!(
                        "reproduced: after {} steps the curves are bit-identical to the link's", r.step)),
                    Some(ReplayOutcome::Within(d)) => ("reproduced", format!(
                        "reproduced within tolerance: after {} steps the mean accuracies differ by at most {:.1} points (tolerance {:.0}; another GPU or backend rounds differently)",
                        r.step, 100.0 * d, 100.0 * REPLAY_TOLERANCE)),
                    Some(ReplayOutcome::Differs(d)) => ("differs", format!(
                        "not reproduced: after {} steps a mean accuracy differs by {:.1} points (tolerance {:.0})",
                        r.step, 100.0 * d, 100.0 * REPLAY_TOLERANCE)),
                };
                html! {
                    <p>
                        <span id="replay-status" class={classes!("replay", class)} data-outcome={class}>{text}</span>
                        {" "}<button id="replay-run" onclick={link.callback(|_| Msg::Replay)}>{"Replay"}</button>
                    </p>
                }
            });
            html! {
                <div id="link-info">
                    <p>{format!("Opened a shared experiment: {} (seed {}), made with gpicl {}.",
                        s.link.config.name, s.link.config.seed,
                        if s.link.app_version.is_empty() { "?" } else { &s.link.app_version })}</p>
                    if !notes.is_empty() {
                        <ul id="link-problems" class="warning">
                            { for notes.iter().map(|n| html! { <li>{n}</li> }) }
                        </ul>
                    }
                    { for replay }
                </div>
            }
        });
        html! {
            <section id="share-section" class="share" aria-label="Share, save and load">
                { for shared }
                <div class="toolbar">
                    <button id="share" disabled={!ready} onclick={link.callback(|_| Msg::Share)}>{"Share link"}</button>
                    if let Some(url) = &self.share_url {
                        <input id="share-url" type="text" readonly=true value={url.clone()}
                            aria-label="Share link (copied to the clipboard)" />
                    }
                </div>
                <div class="toolbar">
                    <span class="stat">{"Download:"}</span>
                    <button id="export-json" disabled={!ready} onclick={export(Export::Json)}>{"results.json"}</button>
                    <button id="export-csv" disabled={!ready} onclick={export(Export::Csv)}>{"CSV"}</button>
                    <button id="export-svg" disabled={self.evals.is_empty()} onclick={export(Export::Svg)}>{"plot SVG"}</button>
                    <button id="export-png" disabled={self.evals.is_empty()} onclick={export(Export::Png)}>{"plot PNG"}</button>
                    <button id="export-checkpoint" disabled={!ready} onclick={export(Export::Checkpoint)}>{"checkpoint"}</button>
                    <label class="upload">{"Load a checkpoint or results file: "}
                        <input id="import" type="file" accept=".gpicl,.json" onchange={on_import} />
                    </label>
                    <span id="autosave" class="stat">{
                        match &self.last_save {
                            Some(s) => format!("autosaved at step {}", s.step),
                            None => "not autosaved yet".into(),
                        }
                    }</span>
                </div>
                if let Some(e) = &self.io_error {
                    <p id="io-error" class="error" role="alert">{e}</p>
                }
            </section>
        }
    }

    fn view_controls(&self, ctx: &Context<Self>) -> Html {
        let c = &self.config;
        let link = ctx.link();
        let on_select = |field: Field| {
            link.callback(move |e: Event| {
                let v = e.target_unchecked_into::<HtmlSelectElement>().value();
                Msg::Set(field, v)
            })
        };
        let on_input = |field: Field| {
            link.callback(move |e: Event| {
                let v = e.target_unchecked_into::<HtmlInputElement>().value();
                Msg::Set(field, v)
            })
        };
        let select = |field: Field, id: &str, options: Vec<(String, String)>| {
            let current = field.value(c);
            html! {
                <label>{field.label()}
                    <select id={id.to_string()} onchange={on_select(field)}>
                        { for options.into_iter().map(|(v, text)| html! {
                            <option value={v.clone()} selected={v == current}>{text}</option>
                        }) }
                    </select>
                </label>
            }
        };
        let number = |field: Field, id: &str, step: &str| {
            html! {
                <label>{field.label()}
                    <input id={id.to_string()} type="text" inputmode="decimal" step={step.to_string()}
                        value={field.value(c)} onchange={on_input(field)} />
                </label>
            }
        };
        let errors = self
            .field_errors
            .iter()
            .map(|(_, e)| html! { <p class="error field-error">{e}</p> });
        html! {
            <section class="controls" aria-label="Experiment settings">
                <h2>{"Experiment"}</h2>
                { select(Field::Preset, "preset", PAGE_PRESETS.iter().map(|p| (p.to_string(), p.to_string())).collect()) }
                <label>{Field::Tasks.label()}
                    <input id="tasks" type="range" min="0" max={(MAX_TASKS_LOG2 + 1).to_string()}
                        value={Field::Tasks.value(c)} onchange={on_input(Field::Tasks)} />
                    <span class="hint">{tasks_label(c)}</span>
                </label>
                { select(Field::BatchSize, "batch-size", BATCH_SIZES.iter().map(|b| (b.to_string(), b.to_string())).collect()) }
                { number(Field::LearningRate, "lr", "any") }
                { number(Field::Epsilon, "epsilon", "any") }
                <label>{Field::BiasFraction.label()}
                    <input id="bias" type="range" min="0" max="1" step="0.05"
                        value={Field::BiasFraction.value(c)} onchange={on_input(Field::BiasFraction)} />
                    <span class="hint">{format!("{:.0}% of each batch keeps the labels unpermuted", c.tasks.bias_fraction * 100.0)}</span>
                </label>
                { select(Field::ModelSize, "model-size", MODEL_SIZES.iter().map(|m| (m.0.to_string(),
                    format!("{} (d {}, {} layers, {} heads)", m.0, m.1, m.2, m.3))).collect()) }
                { select(Field::Format, "format", vec![
                    ("pair".into(), "pair: query, then labelled example".into()),
                    ("paper".into(), "paper: [x_j, y_(j-1)]".into()),
                ]) }
                { number(Field::Seed, "seed", "1") }
                { for errors }
                <p class="hint">{format!(
                    "{} examples per sequence, 7×7 images projected to {} inputs, {} classes.",
                    c.tasks.seq_len, c.model.d_in, c.model.n_classes)}</p>
            </section>
        }
    }

    fn view_accuracy(&self) -> Html {
        let Some(last) = self.evals.last() else {
            return html! { <figure id="acc-chart" class="empty"><figcaption>{"Your learner's in-context accuracy (meta-trained from scratch in this tab) appears after its first evaluation."}</figcaption></figure> };
        };
        let mut others = self.baselines.clone();
        if let Some((label, curves)) = &self.overlay {
            others.extend(curves.iter().map(|c| {
                let points = c.accuracy.iter().enumerate().map(|(j, &a)| (j + 1, a));
                (format!("{} ({label})", c.name), points.collect())
            }));
        }
        curves_figure(
            "acc-chart",
            &format!("Your learner, from scratch: step {}", last.step),
            &last.curves,
            &others,
            self.n_classes(),
            &format!(
                "Accuracy on the example at each position, after meta-training step {} (a fixed evaluation set per curve).",
                last.step
            ),
        )
    }

    fn view_loss(&self) -> Html {
        if self.losses.is_empty() {
            return html! { <figure id="loss-chart" class="empty"><figcaption>{"The meta-training loss appears after the first step."}</figcaption></figure> };
        }
        let bucket = self.losses.len().div_ceil(MAX_LOSS_POINTS);
        let points: Vec<(f64, f64)> = self
            .losses
            .chunks(bucket)
            .enumerate()
            .map(|(i, c)| {
                (
                    ((i * bucket) + c.len()) as f64,
                    c.iter().map(|&l| l as f64).sum::<f64>() / c.len() as f64,
                )
            })
            .collect();
        let n_classes = self.n_classes();
        let chart = Chart {
            title: "Meta-training loss".into(),
            x_label: "meta-training step".into(),
            y_label: "cross-entropy".into(),
            series: vec![Series {
                name: "training loss".into(),
                color: PALETTE[0].into(),
                points: points.clone(),
            }],
            y_range: None,
            reference: Some((
                (n_classes as f64).ln(),
                format!("ln {n_classes} (guessing)"),
            )),
            percent: false,
        };
        let rows: Vec<Vec<String>> = points
            .iter()
            .map(|(s, l)| vec![format!("{s}"), format!("{l:.4}")])
            .collect();
        let mut caption = if bucket > 1 {
            format!("Mean loss over each {bucket} steps.")
        } else {
            "Loss at every step.".into()
        };
        if let Some(c) = &self.run_config
            && let (Some(k), Some(n)) = (
                c.tasks.classes_per_sequence,
                c.tasks.classes_curriculum_steps,
            )
        {
            caption.push_str(&format!(
                " A curriculum: the first {n} steps train on sequences of {k} classes (an easier \
                 loss), then on all {}, so the loss jumps at step {n}.",
                c.model.n_classes
            ));
        }
        figure(
            "loss-chart",
            &chart,
            &caption,
            "step",
            &["loss".into()],
            &rows,
        )
    }

    /// Accuracy on unseen tasks by meta-training step (down) and position (across): the
    /// weights' clock and the context's clock in one picture.
    fn view_heatmap(&self) -> Html {
        if self.evals.len() < 2 {
            return html! {};
        }
        let unseen = 1.min(self.evals[0].curves.len() - 1);
        let rows: Vec<(String, Vec<f32>)> = self
            .evals
            .iter()
            .map(|e| {
                (
                    format!("step {}", e.step),
                    e.curves[unseen].accuracy.clone(),
                )
            })
            .collect();
        let name = &self.evals[0].curves[unseen].name;
        let svg = heatmap_svg(
            &format!("Two clocks: {name}, by meta-training step and by examples seen"),
            &rows,
            1.0 / self.n_classes() as f32,
        );
        html! {
            <figure id="heatmap-chart" class="chart-figure" data-rows={rows.len().to_string()}>
                { Html::from_html_unchecked(AttrValue::from(svg)) }
                <figcaption>{"Each row is one evaluation during meta-training (earliest at the top), each column a position in the sequence. Learning in the weights moves down the picture; learning in context moves across it."}</figcaption>
            </figure>
        }
    }

    fn view_history(&self) -> Html {
        if self.evals.len() < 2 {
            return html! {};
        }
        let n = self.evals.len();
        let picks: Vec<usize> = if n <= MAX_HISTORY {
            (0..n).collect()
        } else {
            let mut p: Vec<usize> = (0..MAX_HISTORY)
                .map(|i| i * (n - 1) / (MAX_HISTORY - 1))
                .collect();
            p.dedup();
            p
        };
        let colors = ramp(picks.len());
        let unseen = 1.min(self.evals[0].curves.len() - 1);
        let series: Vec<Series> = picks
            .iter()
            .zip(colors)
            .map(|(&i, color)| {
                let e = &self.evals[i];
                Series {
                    name: format!("step {}", e.step),
                    color,
                    points: accuracy_points(&e.curves[unseen]),
                }
            })
            .collect();
        let n_classes = self.n_classes();
        let name = self.evals[0].curves[unseen].name.clone();
        let chart = Chart {
            title: format!("How the curve rose: {name}"),
            x_label: "position in the sequence".into(),
            y_label: "accuracy".into(),
            series,
            y_range: Some((0.0, 1.0)),
            reference: Some((1.0 / n_classes as f64, "chance".into())),
            percent: true,
        };
        // The numbers behind the plot: one row per position, one column per plotted step.
        let len = self.evals[0].curves[unseen].accuracy.len();
        let header: Vec<String> = picks
            .iter()
            .map(|&i| format!("step {}", self.evals[i].step))
            .collect();
        let rows: Vec<Vec<String>> = (0..len)
            .map(|j| {
                std::iter::once((j + 1).to_string())
                    .chain(picks.iter().map(|&i| {
                        let a = &self.evals[i].curves[unseen].accuracy;
                        a.get(j)
                            .map_or("–".into(), |v| format!("{:.1}%", v * 100.0))
                    }))
                    .collect()
            })
            .collect();
        figure(
            "history-chart",
            &chart,
            &format!("The {name} curve at earlier meta-training steps (lighter = earlier)."),
            "example",
            &header,
            &rows,
        )
    }

    fn view_walk(&self, ctx: &Context<Self>) -> Html {
        let Some(w) = &self.walk else {
            let why = match &self.learner {
                Some(Err(e)) => format!("The pretrained learner did not load: {e}"),
                _ => "The step-through starts when the pretrained learner and the data are loaded…"
                    .into(),
            };
            return html! { <section class="walk"><h2>{"Step through one unseen task"}</h2><p id="walk-bars" class="hint">{why}</p></section> };
        };
        let link = ctx.link();
        let t = w.walk.labels.len();
        let q = w.fed;
        let images = w.images.iter().enumerate().map(|(j, src)| {
            let class = if j < q { "seen" } else if j == q { "query" } else { "future" };
            let label = if j < q { w.walk.labels[j].to_string() } else if j == q { "?".into() } else { String::new() };
            html! {
                <figure class={classes!("example", class)}>
                    <img src={src.clone()} width="36" height="36" alt={format!("example {}", j + 1)} />
                    <figcaption>{label}</figcaption>
                </figure>
            }
        });
        let names: Vec<String> = (0..10).map(|i| i.to_string()).collect();
        let shown = match w.predictions.get(q) {
            Some(p) => {
                let predicted = gpicl_core::baselines::argmax(p).unwrap_or(0);
                let truth = w.walk.labels[q] as usize;
                let right = predicted == truth;
                // Accuracy over the examples predicted so far (a running in-context curve).
                let hits = w.predictions[..=q]
                    .iter()
                    .zip(&w.walk.labels)
                    .filter(|(p, y)| gpicl_core::baselines::argmax(p) == Some(**y as usize))
                    .count();
                html! {
                    <>
                        { bars("walk-bars", p, &names[..p.len()], Some(truth)) }
                        <p id="walk-verdict" class={if right { "right" } else { "wrong" }}>{format!(
                            "After {q} labelled example{}: predicts label {predicted} ({:.0}%). The answer is {truth}: {}. So far {hits} of {} right.",
                            if q == 1 { "" } else { "s" }, p[predicted] * 100.0, if right { "right" } else { "wrong" }, q + 1)}</p>
                    </>
                }
            }
            None => html! { <p id="walk-bars" class="hint">{"thinking…"}</p> },
        };
        html! {
            <section class="walk" aria-label="Step-through">
                <h2>{"Step through one unseen task"}</h2>
                <p class="hint">{"The pretrained learner on a task it never trained on: MNIST test digits, a random projection of the pixels, and a random renaming of the ten labels. Feed it examples with their labels one at a time and watch its guess for the next one (outlined) sharpen: the weights stay fixed, everything it learns about this task is in its context. Each example runs only its own tokens through the network, reusing the attention keys and values of the earlier ones (the KV cache). Keys: → or Enter feeds, ← goes back, R starts over, N picks another task."}</p>
                <div class="examples">{ for images }</div>
                <div class="toolbar">
                    <button id="walk-back" onclick={link.callback(|_| Msg::Unfeed)} disabled={q == 0}>{"◀ Back"}</button>
                    <button id="walk-feed" onclick={link.callback(|_| Msg::Feed)} disabled={q + 1 >= t}>{"Feed this example ▶"}</button>
                    <button id="walk-restart" onclick={link.callback(|_| Msg::Restart)}>{"Start over"}</button>
                    <button id="walk-new" onclick={link.callback(|_| Msg::NewTask)}>{"Another task"}</button>
                    <span class="stat" id="walk-count">{format!("{q} of {} examples fed", t - 1)}</span>
                </div>
                { shown }
            </section>
        }
    }

    fn view_pretrained(&self) -> Html {
        let m = match &self.manifest {
            None => {
                return html! { <figure id="pretrained-chart" class="empty"><figcaption>{"Loading the pretrained learner's curves…"}</figcaption></figure> };
            }
            Some(Err(e)) => {
                return html! { <figure id="pretrained-chart" class="empty"><figcaption class="error">{format!("The pretrained learner's manifest did not load: {e}")}</figcaption></figure> };
            }
            Some(Ok(m)) => m,
        };
        let mut caption = pretrained::caption(m);
        if let Some(ms) = self.pretrained_ms {
            caption.push_str(&format!(
                " The page's code drew it {:.2} s after load (the HTML, before).",
                ms / 1000.0
            ));
        }
        html! {
            <div data-loaded-ms={self.pretrained_ms.map(|v| format!("{v:.0}"))} class="pretrained">
                { curves_figure(
                    pretrained::FIGURE_ID,
                    &pretrained::title(m),
                    &m.curves,
                    &[],
                    m.config.model.n_classes,
                    &caption,
                ) }
            </div>
        }
    }
}
