//! The page: it owns the run's state ([`RunState`]) and its record, talks to the training
//! worker (`client.rs`) and lays out the parts, each a component of its own file: the status
//! bar (`status.rs`), share / save / load (`share_panel.rs`), the pretrained figure and the
//! training charts (`charts.rs`), the settings (`controls.rs`), the step-through (`walk.rs`),
//! the drawing pad (`pad.rs`) and the phase explorer (`explorer.rs`).
//!
//! The run lives in the worker: the page sends it commands and draws what its events say.
//! Replacing the run (new, resumed, uploaded, rolled back) is a request: the page keeps
//! drawing the current run until the worker confirms the new one (`Began`), so a refused
//! file changes nothing.

use std::rc::Rc;

use gpicl_core::checkpoint::MAGIC;
use gpicl_core::share::{Limits, Link, Replay};
use gpicl_core::{Checkpoint, Curve, Manifest, Results, RunConfig};
use js_sys::Uint8Array;
use yew::prelude::*;

use crate::chart::BaselineCurve;
use crate::charts::{AccuracyChart, PretrainedFigure, TrainingCharts};
use crate::client::{FromWorker, TrainingWorker};
use crate::controls::Controls;
use crate::data::WalkData;
use crate::explorer::PhaseExplorer;
use crate::fetch::{fetch_bytes, load_walk_data};
use crate::learner::Learner;
use crate::now_ms;
use crate::pad::Pad;
use crate::persist::{self, Saved};
use crate::pretrained;
use crate::protocol::{BackendInfo, Command, Event as WorkerEvent, File, Purpose};
use crate::record::{add_eval, add_losses};
use crate::run_state::{Happening, RunState};
use crate::settings::Field;
use crate::share_panel::{Export, ShareAction, SharePanel, Shared};
use crate::status::{RunAction, StatusBar};
use crate::walk::{self, StepThrough};
use crate::your_data::YourData;
use crate::yours::{self, Format, MAX_BYTES as MAX_DATA_BYTES};

/// Restarts after a crashed worker before the page gives up and says so.
const MAX_RESTARTS: u32 = 3;
/// The largest file the page reads (a checkpoint of the largest model a link allows is less).
const MAX_UPLOAD_BYTES: f64 = 1024.0 * 1048576.0;
/// The learner's weights and the step-through's data are fetched this long after the first
/// frame, so the pretrained curves are painted first.
const AFTER_PAINT_MS: u32 = 300;

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

/// The page's directory (`…/`), which the data's paths are relative to.
fn page_base() -> String {
    let href = web_sys::window()
        .and_then(|w| w.location().href().ok())
        .unwrap_or_default();
    let path = href.split(['#', '?']).next().unwrap_or_default();
    match path.rfind('/') {
        Some(i) => path[..=i].to_string(),
        None => String::new(),
    }
}

/// Messages of the page.
pub enum Msg {
    /// The shipped learner's weights are loaded (or failed).
    LearnerReady(Result<Rc<Learner>, String>),
    /// The step-through's data are loaded (or failed).
    WalkReady(Result<Rc<WalkData>, String>),
    /// This tab's autosave slot and the save in it, or why autosave is unavailable.
    Claimed(Result<(String, Result<Option<Saved>, String>), String>),
    /// Worker number `generation` said something.
    Worker(u64, FromWorker),
    /// A button of the status bar.
    Act(RunAction),
    /// A control changed.
    Set((Field, String)),
    /// Phase explorer: a new live run with this number-of-tasks setting.
    TryTasks(String),
    /// A control of the share panel.
    Share(ShareAction),
    /// An autosave of run `run` was written (or failed).
    Autosaved(u64, Result<Rc<Saved>, String>),
    /// A download, copy or discard finished (or failed).
    Done(Result<(), String>),
    /// The chosen file's name and bytes (or why it could not be read).
    Imported(Result<(String, Vec<u8>), String>),
    /// "Your data": files were chosen or dropped (the files, the label's column).
    DataChosen((Vec<web_sys::File>, Option<usize>)),
    /// "Your data": their names and bytes (or why they could not be read), and the label's
    /// column.
    DataRead(Result<Vec<(String, Vec<u8>)>, String>, Option<usize>),
    /// "Your data": the table shown learnt again with its label in this column (1-based).
    Relabel(usize),
    /// The step-through's tasks: from the visitor's data (else MNIST).
    WalkYours(bool),
}

/// Where a run being started came from (for the message if the worker refuses it).
enum Origin {
    New,
    Offer,
    Import(String),
    Rollback(String),
    Recovery(String),
}

/// A run the worker was asked to start and has not confirmed yet.
struct Pending {
    run: u64,
    origin: Origin,
    /// The record it starts with (an autosave's), else a fresh one.
    results: Option<Results>,
    /// Train as soon as it begins.
    train: bool,
    /// Stop training at this step (a replay's).
    stop_at: Option<usize>,
    /// Said when it begins.
    notice: Option<String>,
    /// Its saved state (where it rolls back to).
    save: Option<Rc<Saved>>,
    /// The page's state before the request (restored if the worker refuses).
    before: RunState,
}

/// The training rate as the page measures it.
#[derive(Default)]
struct Rate {
    /// Page time of the first training step.
    first_step_ms: Option<f64>,
    mark: Option<(f64, usize)>,
    per_second: Option<f64>,
}

impl Rate {
    fn note(&mut self, step: usize) {
        let now = now_ms();
        self.first_step_ms.get_or_insert(now);
        match self.mark {
            Some((t0, s0)) if now - t0 > 2000.0 => {
                self.per_second = Some(step.saturating_sub(s0) as f64 / ((now - t0) / 1000.0));
                self.mark = Some((now, step));
            }
            None => self.mark = Some((now, step)),
            _ => {}
        }
    }
}

/// The page component.
pub struct App {
    manifest: Rc<Result<Manifest, String>>,
    /// Milliseconds from page load to the pretrained curves on screen.
    pretrained_ms: Option<f64>,
    learner: Option<Result<Rc<Learner>, String>>,
    walk_data: Option<Result<Rc<WalkData>, String>>,
    state: RunState,
    /// The page's own title (index.html's), which the tab's title ends with.
    base_title: String,
    /// The tab's title as last set (it is written only when it changes).
    tab_title: String,
    worker: Option<TrainingWorker>,
    /// Counts workers (a new one after a lost device); messages of older ones are dropped.
    generation: u64,
    /// Commands sent to the current worker since it started (its `Idle` says how many it saw).
    sent: u64,
    backend: Option<BackendInfo>,
    /// Settings for the next run.
    config: RunConfig,
    field_errors: Vec<(Field, String)>,
    /// The current run's name (the worker's events carry it), and the next name to give.
    run_id: u64,
    next_run: u64,
    pending: Option<Pending>,
    /// The current run's record: settings, losses, evaluations.
    record: Option<Rc<Results>>,
    baselines: Rc<Vec<BaselineCurve>>,
    /// The step the current run stops at (a replay's).
    stop_at: Option<usize>,
    rate: Rate,
    /// The link the page was opened with, and its replay.
    shared: Option<Rc<Shared>>,
    /// The first run is the link's replay.
    replay_first: bool,
    share_url: Option<String>,
    /// This tab's autosave slot (once IndexedDB answered; `None` if it cannot save).
    slot: Option<String>,
    claimed: bool,
    /// This tab's saved run, offered for resuming, and how the offer reads.
    offer: Option<(Saved, String)>,
    /// Set when the worker's device was lost (or it crashed), until the new worker has the run
    /// back.
    device_lost: Option<String>,
    /// Workers restarted after a crash.
    restarts: u32,
    /// The current run's last autosave: also where a diverged run rolls back to.
    last_save: Option<Rc<Saved>>,
    /// Someone else's curves (an uploaded results file), drawn with this run's.
    overlay: Option<Rc<(String, Vec<Curve>)>>,
    /// An error that stopped the run.
    error: Option<String>,
    /// What the page did that the user should know (resumed, imported, rolled back).
    notice: Option<String>,
    /// A file that could not be imported or exported; nothing else changed.
    io_error: Option<String>,
    /// "Your data": the last table learnt, the one being learnt, why one was refused, the
    /// link's table.
    yours: yours::YourData,
    /// The step-through takes its tasks from the visitor's data.
    walk_yours: bool,
}

impl Component for App {
    type Message = Msg;
    type Properties = ();

    fn create(ctx: &Context<Self>) -> Self {
        // The manifest is built in: the pretrained curves are in the first frame (index.html
        // showed the same figure while the WebAssembly loaded).
        let manifest = Manifest::from_json(pretrained::MANIFEST_JSON).map_err(|e| e.to_string());
        let link = ctx.link();
        link.send_future(async { Msg::Claimed(persist::claim().await) });
        match &manifest {
            Ok(m) => {
                let stats = m.input_stats;
                link.send_future(async move {
                    gloo_timers::future::TimeoutFuture::new(AFTER_PAINT_MS).await;
                    Msg::WalkReady(load_walk_data(stats).await.map(Rc::new))
                });
                let url = format!("pretrained/{}", m.model.file);
                let m = m.clone();
                link.send_future(async move {
                    gloo_timers::future::TimeoutFuture::new(AFTER_PAINT_MS).await;
                    let learner = async {
                        let bytes = fetch_bytes(&url).await?;
                        Learner::load(m, bytes).map_err(|e| e.to_string())
                    };
                    Msg::LearnerReady(learner.await.map(Rc::new))
                });
            }
            Err(e) => link.send_message(Msg::LearnerReady(Err(e.clone()))),
        }
        let mut config = RunConfig::preset("browser").expect("the browser preset exists");
        let (shared, link_error) = read_link(&config);
        if let Some(s) = &shared {
            config = s.link.config.clone();
        }
        let base_title = crate::document().map_or_else(|| "gpicl".into(), |d| d.title());
        let mut app = Self {
            manifest: Rc::new(manifest),
            pretrained_ms: None,
            learner: None,
            walk_data: None,
            state: RunState::Loading,
            worker: None,
            generation: 0,
            sent: 0,
            backend: None,
            config,
            field_errors: Vec::new(),
            run_id: 0,
            next_run: 1,
            pending: None,
            record: None,
            baselines: Rc::new(Vec::new()),
            stop_at: None,
            rate: Rate::default(),
            replay_first: shared.as_ref().is_some_and(|s| s.link.replay.is_some()),
            shared: shared.clone().map(Rc::new),
            share_url: None,
            slot: None,
            claimed: false,
            offer: None,
            device_lost: None,
            restarts: 0,
            last_save: None,
            overlay: None,
            error: None,
            notice: None,
            io_error: link_error,
            yours: yours::YourData::new(shared.as_ref().and_then(|s| s.link.table.clone())),
            walk_yours: false,
            base_title: base_title.clone(),
            tab_title: base_title,
        };
        app.spawn_worker(ctx);
        app
    }

    fn rendered(&mut self, _ctx: &Context<Self>, _first: bool) {
        if self.pretrained_ms.is_none() && self.manifest.is_ok() {
            self.pretrained_ms = Some(now_ms());
        }
        let step = self.record.as_ref().map_or(0, |r| r.steps);
        let title = self.state.tab_title(step, &self.base_title);
        if title != self.tab_title {
            if let Some(d) = crate::document() {
                d.set_title(&title);
            }
            self.tab_title = title;
        }
    }

    fn update(&mut self, ctx: &Context<Self>, msg: Msg) -> bool {
        match msg {
            Msg::LearnerReady(result) => self.learner = Some(result),
            Msg::WalkReady(result) => self.walk_data = Some(result),
            Msg::Claimed(result) => {
                self.claimed = true;
                match result {
                    Ok((slot, saved)) => {
                        self.slot = Some(slot);
                        match saved {
                            Ok(saved) => self.offer = saved.map(describe),
                            Err(e) => {
                                self.io_error = Some(format!("The autosave could not be read: {e}"))
                            }
                        }
                    }
                    Err(e) => {
                        self.io_error = Some(format!(
                            "Autosave is unavailable in this browser ({e}): the run is not saved."
                        ))
                    }
                }
                self.settle();
            }
            Msg::Worker(generation, said) => {
                if generation != self.generation {
                    return false;
                }
                self.heard(ctx, said);
            }
            Msg::Act(action) => self.act(ctx, action),
            Msg::Set((field, value)) => {
                self.field_errors.retain(|(f, _)| *f != field);
                if let Err(e) = field.apply(&mut self.config, &value) {
                    self.field_errors.push((field, e));
                }
                if field == Field::Preset {
                    self.field_errors.clear();
                }
            }
            Msg::TryTasks(setting) => {
                Component::update(self, ctx, Msg::Set((Field::Tasks, setting)));
                if self.may_replace() {
                    self.error = None;
                    self.new_run(true, None, None);
                }
            }
            Msg::Share(action) => self.share(ctx, action),
            Msg::Autosaved(run, result) => match result {
                // A save of an earlier run (replaced while it was written) is no rollback
                // point for this one.
                Ok(saved) if run == self.run_id => {
                    if let Some(old) = self.last_save.replace(saved) {
                        persist::release(old);
                    }
                }
                Ok(saved) => persist::release(saved),
                Err(e) => self.io_error = Some(format!("Autosave failed: {e}")),
            },
            Msg::Done(result) => {
                if let Err(e) = result {
                    self.io_error = Some(e);
                }
            }
            Msg::Imported(result) => self.import(result),
            Msg::DataChosen((files, column)) => {
                ctx.link().send_future(async move {
                    let mut read = Vec::new();
                    for file in &files {
                        match persist::read(file, MAX_DATA_BYTES as f64).await {
                            Ok(f) => read.push(f),
                            Err(e) => return Msg::DataRead(Err(e), column),
                        }
                    }
                    Msg::DataRead(Ok(read), column)
                });
            }
            Msg::DataRead(Err(e), _) => self.yours.refused(format!("Could not read the file: {e}")),
            Msg::DataRead(Ok(files), label_column) => self.learn(Rc::new(files), label_column),
            Msg::Relabel(label_column) => match self.yours.shown() {
                Some(files) => self.learn(files, Some(label_column)),
                None => return false,
            },
            Msg::WalkYours(on) => self.walk_yours = on,
        }
        true
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let step = self.record.as_ref().map_or(0, |r| r.steps);
        let changed = self
            .record
            .as_ref()
            .is_some_and(|r| r.config != self.config);
        let walk = match (&self.learner, &self.walk_data) {
            (Some(Ok(learner)), Some(Ok(mnist))) => {
                let data = match (&self.yours.walk, self.walk_yours) {
                    (Some(yours), true) => yours.clone(),
                    _ => mnist.clone(),
                };
                let source = self.yours.walk.as_ref().map(|y| html! {
                    <div id="walk-source" class="toolbar" role="group" aria-label="The step-through's tasks">
                        <span class="stat">{"Tasks from: "}</span>
                        <button id="walk-mnist" aria-pressed={(!self.walk_yours).to_string()}
                            onclick={link.callback(|_| Msg::WalkYours(false))}>{"MNIST digits"}</button>
                        <button id="walk-yours" aria-pressed={self.walk_yours.to_string()}
                            onclick={link.callback(|_| Msg::WalkYours(true))}>{format!("your data: {}", y.about)}</button>
                    </div>
                });
                html! {
                    <>
                        { for source }
                        <StepThrough learner={learner.clone()} {data} />
                    </>
                }
            }
            (Some(Err(e)), _) | (_, Some(Err(e))) => walk::placeholder(Some(e)),
            _ => walk::placeholder(None),
        };
        let charts = (
            self.record.clone(),
            self.baselines.clone(),
            self.overlay.clone(),
        );
        html! {
            <main>
                <StatusBar
                    state={self.state}
                    {step}
                    loss={self.record.as_ref().and_then(|r| r.loss_log.last()).map(|l| l.1)}
                    rate={self.rate.per_second}
                    backend={self.backend.clone()}
                    first_step_s={self.rate.first_step_ms.map(|ms| ms / 1000.0)}
                    {changed}
                    error={self.error.clone().map(AttrValue::from)}
                    notice={self.notice.clone().map(AttrValue::from)}
                    offer={self.offer.as_ref().map(|(_, text)| AttrValue::from(text.clone()))}
                    on={link.callback(Msg::Act)} />
                <SharePanel
                    shared={self.shared.clone()}
                    {step}
                    replaying={self.stop_at.is_some()}
                    data_version={AttrValue::from(self.data_version())}
                    share_url={self.share_url.clone().map(AttrValue::from)}
                    has_run={self.record.is_some()}
                    has_chart={self.record.as_ref().is_some_and(|r| !r.history.is_empty())}
                    autosaved={self.last_save.as_ref().map(|s| s.step)}
                    io_error={self.io_error.clone().map(AttrValue::from)}
                    on={link.callback(Msg::Share)} />
                <section class="compare" aria-label="Pretrained learner and your learner">
                    <PretrainedFigure manifest={self.manifest.clone()} loaded_ms={self.pretrained_ms} />
                    <AccuracyChart record={charts.0.clone()} baselines={charts.1.clone()} overlay={charts.2.clone()} />
                </section>
                <div class="columns">
                    <Controls config={self.config.clone()}
                        errors={self.field_errors.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>()}
                        on_set={link.callback(Msg::Set)} />
                    <TrainingCharts record={charts.0} baselines={charts.1} overlay={charts.2} />
                </div>
                { walk }
                <YourData state={self.yours.clone()} on_file={link.callback(Msg::DataChosen)}
                    on_relabel={link.callback(Msg::Relabel)} />
                if let Some(Ok(learner)) = &self.learner {
                    <Pad learner={learner.clone()} />
                }
                <PhaseExplorer on_try={link.callback(Msg::TryTasks)} />
            </main>
        }
    }
}

/// The worker's command for "your data"'s files (their names and bytes): one CSV file (the
/// label in `label_column`), or two IDX files (images and labels); its name for the page.
fn learn_command(
    mut files: Vec<(String, Vec<u8>)>,
    label_column: Option<usize>,
) -> Result<(String, Command), String> {
    // A raw IDX file starts with two zero bytes (no CSV text does); a gzipped one is told by
    // its name, unless that says CSV.
    let idx = |(name, bytes): &(String, Vec<u8>)| {
        let name = name.to_lowercase();
        bytes.starts_with(&[0, 0])
            || (!name.contains(".csv") && (name.contains("idx") || name.contains("ubyte")))
    };
    let (name, format, bytes) = match files.len() {
        1 if idx(&files[0]) => {
            return Err(format!(
                "{} looks like an IDX file: choose the images and the labels together (two files).",
                files[0].0
            ));
        }
        1 => {
            let (name, bytes) = files.remove(0);
            (name, Format::Csv { label_column }, bytes)
        }
        2 => {
            let (second_name, second) = files.pop().expect("two files");
            let (first_name, mut bytes) = files.pop().expect("two files");
            let format = Format::IdxPair {
                second_at: bytes.len(),
            };
            bytes.extend(second);
            (format!("{first_name} + {second_name}"), format, bytes)
        }
        n => {
            return Err(format!(
                "{n} files chosen: choose one CSV file, or two IDX files (images and labels)."
            ));
        }
    };
    Ok((
        name.clone(),
        Command::Learn {
            name,
            format,
            bytes: bytes.into(),
        },
    ))
}

/// A saved run and how the offer to resume it reads.
fn describe(saved: Saved) -> (Saved, String) {
    let what = Results::from_json(&saved.results)
        .map(|r| format!(" It is {}, seed {}.", r.config.name, r.config.seed))
        .unwrap_or_default();
    let text = format!(
        "This browser holds a run saved at step {}.{what}",
        saved.step
    );
    (saved, text)
}

impl App {
    /// Sends "your data"'s `files` to the worker to be learnt, the label in `label_column`
    /// (1-based; the last if `None`), or says why not.
    fn learn(&mut self, files: yours::Files, label_column: Option<usize>) {
        match (&self.worker, learn_command(files.to_vec(), label_column)) {
            (_, Err(e)) => self.yours.refused(e),
            // Not one of the run's commands (`sent` counts those).
            (Some(w), Ok((name, command))) => {
                w.send(command);
                self.yours.learning(name, files);
            }
            (None, Ok(_)) => self
                .yours
                .refused("The worker is starting; try again in a moment.".into()),
        }
    }

    /// Starts a training worker (the first, or a fresh one after a lost device).
    fn spawn_worker(&mut self, ctx: &Context<Self>) {
        self.generation += 1;
        self.sent = 0;
        self.backend = None;
        let generation = self.generation;
        let on_message = ctx
            .link()
            .callback(move |said: FromWorker| Msg::Worker(generation, said));
        match TrainingWorker::spawn(on_message) {
            Ok(worker) => {
                worker.send(Command::Init { base: page_base() });
                self.worker = Some(worker);
            }
            Err(e) => {
                self.error = Some(format!("Training cannot start: {e}"));
                self.state = self.state.on(Happening::Failed);
            }
        }
    }

    /// Whether a new run may replace the current one now: the worker is ready and no saved
    /// run waits for the user's answer (a new run's autosave would overwrite it); says so.
    fn may_replace(&mut self) -> bool {
        if self.state == RunState::Offered {
            self.notice = Some(
                "First resume or discard the saved run above: a new run would overwrite its \
                 autosave."
                    .into(),
            );
            return false;
        }
        self.backend.is_some()
    }

    /// Sends `command` to the worker.
    fn send(&mut self, command: Command) {
        if let Some(w) = &self.worker {
            w.send(command);
            self.sent += 1;
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

    /// Once the worker is ready and IndexedDB has answered: after a lost device, the run
    /// comes back from its autosave; a saved run waits for the user's answer; else a new run
    /// starts (the link's replay, if the page was opened with one).
    fn settle(&mut self) {
        if self.backend.is_none() || !self.claimed || self.pending.is_some() {
            return;
        }
        if let Some(lost) = self.device_lost.take() {
            match self.last_save.clone() {
                Some(saved) => {
                    let notice = format!(
                        "{lost} The page started a fresh worker (a new WebAssembly instance and \
                         device) and restored the run from its autosave at step {}; training \
                         goes on.",
                        saved.step
                    );
                    self.resume(&saved, true, Some(notice), Origin::Recovery(lost));
                }
                None => {
                    if let Some(r) = &self.record {
                        self.config = r.config.clone();
                    }
                    let notice = format!(
                        "{lost} The page started a fresh worker (a new WebAssembly instance and \
                         device); there was no autosave, so a new run starts."
                    );
                    self.new_run(true, None, Some(notice));
                }
            }
            return;
        }
        if self.state != RunState::Loading {
            return;
        }
        if self.offer.is_some() {
            self.state = self.state.on(Happening::Offer);
            return;
        }
        let stop_at = std::mem::take(&mut self.replay_first)
            .then(|| self.replay_step())
            .flatten();
        self.new_run(true, stop_at, None);
    }

    /// The step the shared link's replay trains to.
    fn replay_step(&self) -> Option<usize> {
        self.shared
            .as_ref()
            .and_then(|s| s.link.replay.as_ref())
            .map(|r| r.step)
    }

    /// Asks the worker to replace the run; `send` gets the new run's name.
    fn request(&mut self, pending: Pending, command: Command) {
        self.send(command);
        self.pending = Some(pending);
        self.state = self.state.on(Happening::Replace);
    }

    fn take_run_id(&mut self) -> u64 {
        self.next_run += 1;
        self.next_run - 1
    }

    /// A new run of the current settings (training at once if `train`, up to `stop_at`).
    fn new_run(&mut self, train: bool, stop_at: Option<usize>, notice: Option<String>) {
        let run = self.take_run_id();
        let pending = Pending {
            run,
            origin: Origin::New,
            results: None,
            train,
            stop_at,
            notice,
            save: None,
            before: self.state,
        };
        let config = Box::new(self.config.clone());
        self.request(pending, Command::New { run, config });
    }

    /// The run in `saved` (an autosave, an upload, a rollback point), with its record.
    fn resume(&mut self, saved: &Rc<Saved>, train: bool, notice: Option<String>, origin: Origin) {
        let results = Results::from_json(&saved.results).ok();
        let evaluate = results
            .as_ref()
            .and_then(|r| r.history.last())
            .is_none_or(|e| e.step != saved.step);
        let run = self.take_run_id();
        let pending = Pending {
            run,
            origin,
            results,
            train,
            stop_at: None,
            notice,
            save: Some(saved.clone()),
            before: self.state,
        };
        let command = Command::Resume {
            run,
            checkpoint: File::Js(saved.checkpoint.clone()),
            evaluate,
        };
        self.request(pending, command);
    }

    fn act(&mut self, ctx: &Context<Self>, action: RunAction) {
        match action {
            RunAction::Train if self.state.has_run() => {
                self.error = None;
                let stop_at = self.stop_at;
                self.send(Command::Train { stop_at });
                self.state = self.state.on(Happening::Train);
            }
            RunAction::Pause | RunAction::Step if self.state.has_run() => {
                self.send(if action == RunAction::Pause {
                    Command::Pause
                } else {
                    Command::Step
                });
                self.stop_at = None;
                self.state = self.state.on(Happening::Stop);
            }
            RunAction::Reset if self.may_replace() => {
                self.error = None;
                self.new_run(self.state == RunState::Training, None, None);
            }
            RunAction::Resume if self.backend.is_some() => {
                if let Some((saved, _)) = self.offer.take() {
                    let notice = format!(
                        "Resumed the run saved at step {}. Press ▶ Train to continue.",
                        saved.step
                    );
                    self.resume(&Rc::new(saved), false, Some(notice), Origin::Offer);
                }
            }
            RunAction::Discard => {
                self.offer = None;
                if let Some(slot) = self.slot.clone() {
                    ctx.link().send_future(async move {
                        let result = persist::discard(&slot).await;
                        Msg::Done(result.map_err(|e| format!("discard: {e}")))
                    });
                }
                if self.state == RunState::Offered {
                    self.new_run(true, None, None);
                }
            }
            _ => {}
        }
    }

    fn heard(&mut self, ctx: &Context<Self>, said: FromWorker) {
        let event = match said {
            FromWorker::Event(event) => event,
            FromWorker::DeviceLost(note) => return self.restart(ctx, note),
            // A crashed worker is restarted like one whose device was lost, a few times.
            FromWorker::Broken(why) if self.record.is_some() && self.restarts < MAX_RESTARTS => {
                self.restarts += 1;
                return self.restart(ctx, format!("The training worker stopped ({why})."));
            }
            FromWorker::Broken(why) => {
                self.yours.worker_lost();
                self.error = Some(why);
                self.state = self.state.on(Happening::Failed);
                return;
            }
        };
        match event {
            WorkerEvent::Ready(info) => {
                self.backend = Some(info);
                self.settle();
            }
            WorkerEvent::Failed(why) => {
                self.error = Some(why);
                self.state = self.state.on(Happening::Failed);
            }
            WorkerEvent::Began { run, step, config } => self.began(run, step, config),
            WorkerEvent::Learnt(report) => {
                self.yours.learnt(*report);
                // The step-through shows the new data.
                self.walk_yours = self.yours.walk.is_some();
            }
            WorkerEvent::LearnRefused { name, message } => self.yours.learn_refused(format!(
                "{name} was not loaded: {message}. The page keeps what it had."
            )),
            WorkerEvent::Refused { run, message } => self.refused(run, message),
            WorkerEvent::Trained {
                run,
                step,
                losses,
                ms,
            } if run == self.run_id => {
                if let Some(r) = &mut self.record {
                    add_losses(Rc::make_mut(r), step, &losses, ms);
                }
                self.rate.note(step);
            }
            WorkerEvent::Evaluated { run, step, curves } if run == self.run_id => {
                if let (Some(shared), Some(r)) = (&mut self.shared, &self.record)
                    && let Some(replay) = &shared.link.replay
                    && replay.step == step
                    && r.config == shared.link.config
                {
                    Rc::make_mut(shared).outcome = Some(replay.compare(&curves));
                }
                if let Some(r) = &mut self.record {
                    add_eval(Rc::make_mut(r), step, curves);
                }
            }
            WorkerEvent::Baselines { run, curves } if run == self.run_id => {
                self.baselines = Rc::new(curves);
            }
            WorkerEvent::Checkpoint {
                run,
                purpose,
                step,
                bytes,
            } if run == self.run_id => self.checkpointed(ctx, purpose, step, bytes),
            WorkerEvent::Diverged { run, why } if run == self.run_id => self.roll_back(why),
            WorkerEvent::Error { run, message } if run == self.run_id => {
                self.error = Some(message);
                self.state = self.state.on(Happening::Error);
            }
            WorkerEvent::Idle { run, step, seen } if run == self.run_id && seen == self.sent => {
                if self.stop_at.is_some_and(|n| step >= n) {
                    self.stop_at = None;
                }
                self.state = self.state.on(Happening::Idle { step });
            }
            // Events of a run already replaced, and an `Idle` older than the last command.
            _ => {}
        }
    }

    /// Ends the worker and starts a fresh one (a fresh WebAssembly instance, so a fresh
    /// device registry) after `note` (a lost device, a crash); the page (its step-through, pad
    /// and settings) stays as it is. Without a run (still loading, or a saved run waiting for
    /// its answer) the new worker just starts; with one, the run comes back from its autosave.
    fn restart(&mut self, ctx: &Context<Self>, note: String) {
        self.worker = None;
        self.pending = None;
        self.yours.worker_lost();
        if self.record.is_some() {
            self.device_lost = Some(note);
        } else {
            self.notice = Some(format!("{note} The page started a fresh worker."));
        }
        self.state = self.state.on(Happening::DeviceLost);
        self.spawn_worker(ctx);
    }

    /// The worker made run `run` current: the page's record starts over from the pending
    /// request's.
    fn began(&mut self, run: u64, step: usize, config: RunConfig) {
        let Some(p) = self.pending.take_if(|p| p.run == run) else {
            return;
        };
        let mut results = p
            .results
            .unwrap_or_else(|| Results::new(&config, self.backend_name()));
        results.steps = step;
        self.record = Some(Rc::new(results));
        self.run_id = run;
        self.config = config;
        self.baselines = Rc::new(Vec::new());
        self.rate.mark = None;
        self.rate.per_second = None;
        self.stop_at = p.stop_at;
        self.last_save = p.save;
        self.share_url = None;
        if p.notice.is_some() {
            self.notice = p.notice;
        }
        self.state = self.state.on(Happening::Began {
            step,
            train: p.train,
        });
        if p.train {
            self.send(Command::Train { stop_at: p.stop_at });
        }
    }

    /// The worker refused run `run`; the current run goes on as it was.
    fn refused(&mut self, run: u64, message: String) {
        let Some(p) = self.pending.take_if(|p| p.run == run) else {
            return;
        };
        match &p.origin {
            Origin::New => self.error = Some(format!("Cannot start a run: {message}")),
            Origin::Offer => {
                self.io_error = Some(format!("The autosave could not be resumed: {message}"))
            }
            Origin::Import(name) => {
                self.io_error = Some(format!(
                    "{name} was not loaded: {message}. The running experiment is unchanged."
                ))
            }
            Origin::Rollback(why) => {
                self.error = Some(format!("Training diverged: {why} ({message})"))
            }
            Origin::Recovery(lost) => {
                self.io_error = Some(format!(
                    "{lost} Its autosave could not be restored: {message}"
                ))
            }
        }
        // The worker has no run to go on with (a refused first run from a save, or a new
        // worker after a lost device): a fresh one of the settings.
        let no_run = self.record.is_none() || matches!(p.origin, Origin::Recovery(_));
        if no_run && !matches!(p.origin, Origin::New) {
            self.new_run(true, None, None);
        } else {
            self.state = self.state.on(Happening::Refused { before: p.before });
        }
    }

    /// The worker read the run's checkpoint: store it as the autosave, or download it.
    fn checkpointed(&mut self, ctx: &Context<Self>, purpose: Purpose, step: usize, bytes: File) {
        // Left in JavaScript: the page's WebAssembly memory never holds a checkpoint.
        let bytes = bytes.to_js();
        match purpose {
            Purpose::Download => {
                let name = self.file_name("gpicl");
                if let Err(e) = persist::download(&name, "application/octet-stream", &bytes) {
                    self.io_error = Some(format!("Download failed: {e}"));
                }
                // The download took a copy.
                persist::free(&bytes);
            }
            Purpose::Autosave => {
                let Some(slot) = self.slot.clone() else {
                    persist::free(&bytes);
                    return;
                };
                let saved = Saved {
                    checkpoint: bytes,
                    results: self.results_json(),
                    step,
                };
                let run = self.run_id;
                ctx.link().send_future(async move {
                    let result = persist::save(&slot, &saved).await.map(|_| Rc::new(saved));
                    Msg::Autosaved(run, result)
                });
            }
        }
    }

    /// A diverged run goes back to its last saved state (an autosave or a loaded checkpoint;
    /// else its start) and pauses.
    fn roll_back(&mut self, why: String) {
        self.state = self.state.on(Happening::Diverged);
        let mut sentence = why.clone();
        if let Some(first) = sentence.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        let notice = |to: String| {
            format!(
                "{sentence} The run went back to {to} and is paused: change the settings and \
                 press Reset, or press ▶ Train to try again."
            )
        };
        match self.last_save.clone() {
            Some(saved) => {
                let n = notice(format!("its last saved state, step {}", saved.step));
                self.resume(&saved, false, Some(n), Origin::Rollback(why));
            }
            None => {
                if let Some(r) = &self.record {
                    self.config = r.config.clone();
                }
                self.new_run(false, None, Some(notice("step 0 (no autosave yet)".into())));
            }
        }
    }

    /// The run so far as `results.json`.
    fn results_json(&self) -> String {
        self.record
            .as_ref()
            .and_then(|r| serde_json::to_string_pretty(&**r).ok())
            .unwrap_or_default()
    }

    /// `gpicl-NAME-seedS-stepN.EXT` for the current run.
    fn file_name(&self, ext: &str) -> String {
        let (name, seed, step) = self.record.as_ref().map_or(("run".into(), 0, 0), |r| {
            (r.config.name.clone(), r.config.seed, r.steps)
        });
        format!("gpicl-{name}-seed{seed}-step{step}.{ext}")
    }

    /// The data bundles' version, from the shipped learner's manifest.
    fn data_version(&self) -> String {
        match &*self.manifest {
            Ok(m) => gpicl_core::share::data_version(&m.data),
            Err(_) => "unknown".into(),
        }
    }

    /// The current run as a link: its settings and seeds, the versions, and the fingerprint of
    /// its latest curves (if the run has trained).
    fn share_link(&self) -> String {
        let config = self
            .record
            .as_ref()
            .map_or_else(|| self.config.clone(), |r| r.config.clone());
        let replay = self
            .record
            .as_ref()
            .and_then(|r| r.history.last())
            .filter(|e| e.step > 0)
            .map(|e| Replay::of(e.step, &e.curves));
        let link = Link {
            config,
            app_version: env!("CARGO_PKG_VERSION").into(),
            data_version: self.data_version(),
            replay,
            table: self.yours.report.as_ref().map(|r| r.table_ref()),
        };
        format!(
            "{}#{}",
            page_base_with_file(),
            gpicl_core::share::encode(&link)
        )
    }

    fn share(&mut self, ctx: &Context<Self>, action: ShareAction) {
        match action {
            ShareAction::Share => {
                let url = self.share_link();
                self.share_url = Some(url.clone());
                ctx.link().send_future(async move {
                    // A refused clipboard is no error: the link is shown to copy by hand.
                    let _ = persist::copy(&url).await;
                    Msg::Done(Ok(()))
                });
            }
            ShareAction::Replay => {
                let Some(shared) = &mut self.shared else {
                    return;
                };
                self.config = shared.link.config.clone();
                Rc::make_mut(shared).outcome = None;
                let stop_at = self.replay_step();
                if self.may_replace() {
                    self.error = None;
                    self.new_run(true, stop_at, None);
                }
            }
            ShareAction::Export(kind) => self.export(ctx, kind),
            ShareAction::Import(input) => {
                ctx.link().send_future(async move {
                    let result = persist::read_file(&input, MAX_UPLOAD_BYTES).await;
                    input.set_value("");
                    Msg::Imported(result)
                });
            }
        }
    }

    fn export(&mut self, ctx: &Context<Self>, kind: Export) {
        self.io_error = None;
        let result = match kind {
            Export::Json => persist::download(
                &self.file_name("json"),
                "application/json",
                &Uint8Array::from(self.results_json().as_bytes()),
            ),
            Export::Csv => match &self.record {
                Some(r) => {
                    let csv = Uint8Array::from(r.to_csv().as_bytes());
                    persist::download(&self.file_name("csv"), "text/csv", &csv)
                }
                None => Err("no run yet".into()),
            },
            Export::Svg => persist::chart_svg("#acc-chart").and_then(|svg| {
                let svg = Uint8Array::from(svg.as_bytes());
                persist::download(&self.file_name("svg"), "image/svg+xml", &svg)
            }),
            Export::Png => {
                let name = self.file_name("png");
                ctx.link().send_future(async move {
                    let png = persist::chart_png("#acc-chart").await;
                    Msg::Done(png.and_then(|b| persist::download(&name, "image/png", &b)))
                });
                Ok(())
            }
            Export::Checkpoint => {
                self.send(Command::Download);
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
        let refuse =
            |e: String| format!("{name} was not loaded: {e}. The running experiment is unchanged.");
        if bytes.starts_with(MAGIC) {
            let checked = Checkpoint::from_bytes(&bytes)
                .map_err(|e| e.to_string())
                .and_then(|ck| Limits::BROWSER.check(&ck.config).map(|_| ck));
            match checked {
                Ok(ck) if self.backend.is_some() => {
                    let mut fresh = Results::new(&ck.config, self.backend_name());
                    fresh.steps = ck.state.step;
                    let saved = Rc::new(Saved {
                        checkpoint: Uint8Array::from(bytes.as_slice()),
                        results: serde_json::to_string(&fresh).unwrap_or_default(),
                        step: ck.state.step,
                    });
                    let notice = format!(
                        "Loaded {name}: step {}, written by {}. Its curves are measured here; \
                         press ▶ Train to continue meta-training it.",
                        ck.state.step, ck.written_by
                    );
                    self.resume(&saved, false, Some(notice), Origin::Import(name));
                }
                Ok(_) => self.io_error = Some(refuse("the page is still loading".into())),
                Err(e) => self.io_error = Some(refuse(e)),
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
                    self.overlay = Some(Rc::new((
                        format!("{name}, step {}", last.step),
                        last.curves.clone(),
                    )));
                }
                None => self.io_error = Some(format!("{name} has no evaluation to overlay.")),
            },
            Err(e) => self.io_error = Some(refuse(e)),
        }
    }
}

/// The page's address without its query or fragment.
fn page_base_with_file() -> String {
    web_sys::window()
        .map(|w| w.location())
        .map(|l| {
            format!(
                "{}{}",
                l.origin().unwrap_or_default(),
                l.pathname().unwrap_or_default()
            )
        })
        .unwrap_or_default()
}
