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
use gpicl_core::task::Batch;
use gpicl_core::{Curve, Error, EvalSet, Manifest, RunConfig};
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{HtmlInputElement, HtmlSelectElement, KeyboardEvent};
use yew::prelude::*;

use crate::chart::{Chart, PALETTE, Series, heatmap_svg, ramp};
use crate::data::PageData;
use crate::explorer::PhaseExplorer;
use crate::fetch::fetch_bytes;
use crate::gpu::{self, Backend};
use crate::image::gray_bmp_data_url;
use crate::learner::{InContext, Learner};
use crate::now_ms;
use crate::pad::Pad;
use crate::session::{Session, walk};
use crate::settings::{BATCH_SIZES, Field, MAX_TASKS_LOG2, MODEL_SIZES, PAGE_PRESETS, tasks_label};
use crate::widgets::{BaselineCurve, accuracy_points, bars, curves_figure, figure};
use gpicl_core::task::project;

/// Most loss points drawn (longer histories are averaged into buckets).
const MAX_LOSS_POINTS: usize = 300;
/// Most snapshots in the curve-history plot.
const MAX_HISTORY: usize = 8;

/// Where the shipped learner lives, relative to the page (trunk copies `web/pretrained`).
const MANIFEST_URL: &str = "pretrained/manifest.json";

/// Sequences of the run's unseen tasks the page's baselines are scored on.
const BASELINE_SEQUENCES: usize = 32;

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
    /// Steps finished: the session comes back with their losses.
    Trained(Box<Session>, Result<Vec<f32>, Error>),
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
}

/// One evaluation of the three curves.
struct EvalPoint {
    step: usize,
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
}

impl Component for App {
    type Message = Msg;
    type Properties = ();

    fn create(ctx: &Context<Self>) -> Self {
        // The manifest first (a few kB): the pretrained curves go on screen before the GPU,
        // the data and the weights start loading.
        ctx.link().send_future(async {
            let manifest = async {
                let bytes = fetch_bytes(MANIFEST_URL).await?;
                let text = String::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
                Manifest::from_json(&text).map_err(|e| e.to_string())
            };
            Msg::Manifest(manifest.await)
        });
        Self {
            manifest: None,
            learner: None,
            pretrained_ms: None,
            keys: None,
            backend: None,
            data: None,
            config: RunConfig::preset("browser").expect("the browser preset exists"),
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
            Msg::Trained(session, result) => {
                self.busy = false;
                match result {
                    Ok(losses) => {
                        self.steps = session.step_count();
                        self.losses.extend(losses);
                        self.note_rate();
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
                        self.evals.retain(|e| e.step != step);
                        self.evals.push(EvalPoint { step, curves });
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
                self.run_id += 1;
                self.baselines.clear();
                self.score_baselines(s.unseen_tasks(), ctx);
                self.run_config = Some(self.config.clone());
                self.session = Some(Box::new(s));
                self.steps = 0;
                self.losses.clear();
                self.evals.clear();
                self.rate = None;
                self.steps_per_second = None;
                self.eval_wanted = true;
                self.status = String::new();
            }
            Err(e) => {
                self.error = Some(format!("Cannot start a run: {e}"));
                self.running = false;
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
        if self.busy || self.error.is_some() {
            return;
        }
        let Some(session) = self.session.as_ref() else {
            return;
        };
        let step = session.step_count();
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
            self.step_once = false;
            let mut session = self.session.take().expect("checked above");
            self.busy = true;
            ctx.link().send_future(async move {
                gloo_timers::future::TimeoutFuture::new(0).await;
                let result = session.train(chunk).await;
                Msg::Trained(session, result)
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
        curves_figure(
            "acc-chart",
            &format!("Your learner, from scratch: step {}", last.step),
            &last.curves,
            &self.baselines,
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
        let at = |name: &str, k: usize| {
            m.curve(name)
                .and_then(|c| c.accuracy_at(k))
                .map_or("–".into(), |a| format!("{:.1}%", a * 100.0))
        };
        let md = &m.config.model;
        let mut caption = format!(
            "Shipped with the page, measured when it was made ({} sequences a curve): a Transformer \
             of d {}, {} layers, {} heads, meta-trained for {} steps ({:.1} min) on {}. At the 50th \
             example: unseen MNIST tasks {}, Fashion-MNIST {}.",
            m.config.eval.sequences,
            md.d_model,
            md.n_layers,
            md.n_heads,
            m.steps,
            m.train_time_s / 60.0,
            m.hardware,
            at("mnist unseen tasks", 50),
            at("fashion-mnist unseen tasks", 50)
        );
        if let Some(ms) = self.pretrained_ms {
            caption.push_str(&format!(" On screen {:.2} s after page load.", ms / 1000.0));
        }
        html! {
            <div data-loaded-ms={self.pretrained_ms.map(|v| format!("{v:.0}"))} class="pretrained">
                { curves_figure(
                    "pretrained-chart",
                    &format!("Pretrained learner ({} meta-training steps)", m.steps),
                    &m.curves,
                    &[],
                    m.config.model.n_classes,
                    &caption,
                ) }
            </div>
        }
    }
}
