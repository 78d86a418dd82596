//! "Teach it your own symbols": a drawing pad (mouse, pen and touch through pointer events).
//! The user invents 2–10 classes, draws examples of each into the frozen pretrained learner's
//! context, and sees its class distribution for a new drawing live, next to k-nearest
//! neighbours and logistic regression fit on the same examples; drawings held back as tests
//! give each learner's accuracy.

use std::rc::Rc;

use gpicl_core::baselines::{Examples, LogisticConfig, LogisticRegression, argmax, knn};
use gpicl_core::task::Task;
use wasm_bindgen::JsCast;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, HtmlSelectElement, PointerEvent};
use yew::prelude::*;

use crate::drawing::{SIDE, ink_from_rgba, normalized, pooled, to_mnist};
use crate::image::gray_bmp_data_url;
use crate::learner::{InContext, Learner};
use crate::now_ms;
use crate::widgets::bars;
use gpicl_core::task::project;

/// Canvas size in pixels (10× an MNIST image).
const CANVAS: u32 = 280;
/// Stroke width on the canvas.
const PEN: f64 = 20.0;
/// Seed of the pad's task: the random projection the learner sees the drawings through.
const PAD_TASK_SEED: u64 = 0x7061_6421;
/// Least time between live predictions while a stroke is drawn.
const LIVE_EVERY_MS: f64 = 120.0;

/// The pad's inputs.
#[derive(Properties, Clone)]
pub struct PadProps {
    /// The frozen learner.
    pub learner: Rc<Learner>,
}

impl PartialEq for PadProps {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.learner, &other.learner)
    }
}

/// Messages of the pad.
pub enum PadMsg {
    /// Pointer pressed at canvas coordinates.
    Down(f64, f64, i32),
    /// Pointer moved.
    Move(f64, f64),
    /// Pointer released or lost.
    Up,
    /// Erase the drawing.
    Clear,
    /// Number of classes.
    Classes(usize),
    /// The class the next example belongs to.
    Select(usize),
    /// Put the drawing into the context as an example of the selected class.
    Add,
    /// Keep the drawing as a test of the selected class.
    HoldBack,
    /// Start over: no examples, no tests.
    Forget,
    /// The learner's distribution for the drawing (generation, result).
    Live(u64, Result<Vec<f32>, String>),
    /// An example went into the context.
    Fed(Result<InContext, String>),
    /// The learner's distributions for the held-back drawings.
    Scored(u64, Result<Vec<Vec<f32>>, String>),
}

/// A processed drawing.
#[derive(Clone)]
struct Drawing {
    /// The learner's input (pooled, normalised; not yet projected).
    input: Vec<f32>,
    /// The 28×28 MNIST-style image, as a data URL.
    thumb: String,
    /// What the learner sees before projection (pooled), as a data URL.
    pooled: String,
}

/// The baselines fit on the context's examples (refit when the context changes).
struct Baselines {
    x: Vec<f32>,
    y: Vec<u32>,
    logistic: LogisticRegression,
}

struct Test {
    class: usize,
    drawing: Drawing,
    learner: Option<Vec<f32>>,
}

/// The drawing pad component.
pub struct Pad {
    canvas: NodeRef,
    classes: usize,
    selected: usize,
    task: Task,
    pen: Option<(f64, f64)>,
    last_live: f64,
    drawing: Option<Drawing>,
    /// The learner's distribution for `drawing`, and the drawing's generation (a newer
    /// drawing makes older answers stale).
    live: Option<Vec<f32>>,
    generation: u64,
    /// Generation of the context the held-back drawings are being scored against.
    scoring: u64,
    examples: Vec<(usize, Drawing)>,
    context: InContext,
    feeding: bool,
    baselines: Baselines,
    tests: Vec<Test>,
    error: Option<String>,
}

impl Component for Pad {
    type Message = PadMsg;
    type Properties = PadProps;

    fn create(ctx: &Context<Self>) -> Self {
        let c = ctx.props().learner.config();
        Self {
            canvas: NodeRef::default(),
            classes: 3,
            selected: 0,
            task: Task::from_seed(
                PAD_TASK_SEED,
                c.model.d_in,
                c.model.d_in,
                c.model.n_classes,
                true,
            ),
            pen: None,
            last_live: 0.0,
            drawing: None,
            live: None,
            generation: 0,
            scoring: 0,
            examples: Vec::new(),
            context: InContext::default(),
            feeding: false,
            baselines: Baselines::fit(&[], 3, c.model.d_in),
            tests: Vec::new(),
            error: None,
        }
    }

    fn rendered(&mut self, _ctx: &Context<Self>, first: bool) {
        if first {
            self.clear_canvas();
        }
    }

    fn update(&mut self, ctx: &Context<Self>, msg: PadMsg) -> bool {
        match msg {
            PadMsg::Down(x, y, pointer) => {
                if let Some(canvas) = self.canvas.cast::<HtmlCanvasElement>() {
                    let _ = canvas.set_pointer_capture(pointer);
                }
                self.pen = Some((x, y));
                self.stroke(x, y, x, y);
                return false;
            }
            PadMsg::Move(x, y) => {
                let Some((px, py)) = self.pen else {
                    return false;
                };
                self.stroke(px, py, x, y);
                self.pen = Some((x, y));
                if now_ms() - self.last_live > LIVE_EVERY_MS {
                    self.read_drawing(ctx);
                    return true;
                }
                return false;
            }
            PadMsg::Up => {
                if self.pen.take().is_some() {
                    self.read_drawing(ctx);
                }
            }
            PadMsg::Clear => self.clear_drawing(),
            PadMsg::Classes(k) => {
                self.classes = k.clamp(2, Self::max_classes(ctx));
                self.selected = self.selected.min(self.classes - 1);
                self.forget(ctx);
            }
            PadMsg::Select(c) => self.selected = c.min(self.classes - 1),
            PadMsg::Add => {
                if let Some(d) = self.drawing.clone()
                    && !self.feeding
                {
                    self.feeding = true;
                    let learner = ctx.props().learner.clone();
                    let context = self.context.clone();
                    let x = self.projected(&d.input);
                    let class = self.selected;
                    self.examples.push((class, d));
                    self.refit(ctx);
                    self.clear_drawing();
                    ctx.link().send_future(async move {
                        let r = learner.feed(&context, &x, class).await;
                        PadMsg::Fed(r.map(|(_, next)| next).map_err(|e| e.to_string()))
                    });
                }
            }
            PadMsg::HoldBack => {
                if let Some(d) = self.drawing.clone() {
                    self.tests.push(Test {
                        class: self.selected,
                        drawing: d,
                        learner: None,
                    });
                    self.clear_drawing();
                    self.score(ctx);
                }
            }
            PadMsg::Forget => self.forget(ctx),
            PadMsg::Live(generation, result) => {
                if generation == self.generation {
                    match result {
                        Ok(p) => self.live = Some(p),
                        Err(e) => self.error = Some(e),
                    }
                }
            }
            PadMsg::Fed(result) => {
                self.feeding = false;
                match result {
                    Ok(context) if context.len() == self.examples.len() => {
                        self.context = context;
                        self.score(ctx);
                        if self.drawing.is_some() {
                            self.read_drawing(ctx);
                        }
                    }
                    Ok(_) => {} // forgotten meanwhile
                    Err(e) => self.error = Some(e),
                }
            }
            PadMsg::Scored(generation, result) => {
                if generation == self.scoring {
                    match result {
                        Ok(all) => {
                            for (t, p) in self.tests.iter_mut().zip(all) {
                                t.learner = Some(p);
                            }
                        }
                        Err(e) => self.error = Some(e),
                    }
                }
            }
        }
        true
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let canvas_xy = |e: &PointerEvent| {
            let el: HtmlCanvasElement = e.target_unchecked_into();
            let r = el.get_bounding_client_rect();
            let s = CANVAS as f64 / r.width().max(1.0);
            (
                (e.client_x() as f64 - r.left()) * s,
                (e.client_y() as f64 - r.top()) * s,
            )
        };
        let down = link.callback(move |e: PointerEvent| {
            e.prevent_default();
            let (x, y) = canvas_xy(&e);
            PadMsg::Down(x, y, e.pointer_id())
        });
        let moved = link.batch_callback(move |e: PointerEvent| {
            let (x, y) = canvas_xy(&e);
            Some(PadMsg::Move(x, y))
        });
        let up = link.callback(|_: PointerEvent| PadMsg::Up);
        let names = self.class_names();
        let k = self.classes;
        let on_classes = link.callback(|e: Event| {
            let v = e.target_unchecked_into::<HtmlSelectElement>().value();
            PadMsg::Classes(v.parse().unwrap_or(3))
        });
        let counts: Vec<usize> = (0..k)
            .map(|c| self.examples.iter().filter(|(e, _)| *e == c).count())
            .collect();
        html! {
            <section class="pad" aria-label="Teach it your own symbols">
                <h2>{"Teach it your own symbols"}</h2>
                <p class="hint">{"Invent a few classes (letters, shapes, anything), draw some examples of each and add them to the learner's context. Its weights stay frozen: it classifies a new drawing from those examples alone. Beside it, two learners fit only on the same examples: k-nearest neighbours (k = 1) and logistic regression. Drawings are made like MNIST's digits (scaled into 20×20 px, centred by mass in 28×28), then pooled to 7×7 as the learner was trained."}</p>
                <div class="pad-grid">
                    <div>
                        <canvas id="pad" ref={self.canvas.clone()} width={CANVAS.to_string()} height={CANVAS.to_string()}
                            onpointerdown={down} onpointermove={moved} onpointerup={up.clone()} onpointercancel={up}
                            aria-label="Drawing pad" />
                        <div class="toolbar">
                            <button id="pad-clear" onclick={link.callback(|_| PadMsg::Clear)}>{"Clear"}</button>
                            <button id="pad-add" disabled={self.drawing.is_none() || self.feeding}
                                onclick={link.callback(|_| PadMsg::Add)}>{format!("Add as an example of {}", names[self.selected])}</button>
                            <button id="pad-test" disabled={self.drawing.is_none()}
                                onclick={link.callback(|_| PadMsg::HoldBack)}>{format!("Hold back as a test of {}", names[self.selected])}</button>
                        </div>
                    </div>
                    <div>
                        <label>{"Classes "}
                            <select id="pad-classes" onchange={on_classes}>
                                { for (2..=Self::max_classes(ctx)).map(|n| html! { <option value={n.to_string()} selected={n == k}>{n}</option> }) }
                            </select>
                        </label>
                        <div class="toolbar" role="group" aria-label="Class of the drawing">
                            { for (0..k).map(|c| html! {
                                <button id={format!("pad-class-{c}")} class={classes!((c == self.selected).then_some("attention"))}
                                    aria-pressed={(c == self.selected).to_string()}
                                    onclick={link.callback(move |_| PadMsg::Select(c))}>
                                    {format!("{} ({})", names[c], counts[c])}
                                </button>
                            }) }
                            <button id="pad-forget" onclick={link.callback(|_| PadMsg::Forget)}>{"Forget all"}</button>
                        </div>
                        { self.view_current(&names) }
                    </div>
                </div>
                { self.view_context(&names) }
                { self.view_tests(&names) }
                if let Some(e) = &self.error {
                    <p class="error" role="alert">{e}</p>
                }
            </section>
        }
    }
}

impl Baselines {
    fn fit(examples: &[(usize, Drawing)], classes: usize, n_features: usize) -> Self {
        let x: Vec<f32> = examples.iter().flat_map(|(_, d)| d.input.clone()).collect();
        let y: Vec<u32> = examples.iter().map(|(c, _)| *c as u32).collect();
        let ex = Examples {
            x: &x,
            y: &y,
            n_features,
        };
        let logistic = LogisticRegression::fit(ex, classes, LogisticConfig::default());
        Self { x, y, logistic }
    }
}

impl Pad {
    /// The most classes the pad offers: as many as the learner has outputs.
    fn max_classes(ctx: &Context<Self>) -> usize {
        ctx.props().learner.config().model.n_classes
    }

    fn class_names(&self) -> Vec<String> {
        (0..self.classes)
            .map(|c| char::from(b'A' + c as u8).to_string())
            .collect()
    }

    fn context2d(&self) -> Option<CanvasRenderingContext2d> {
        self.canvas
            .cast::<HtmlCanvasElement>()?
            .get_context("2d")
            .ok()??
            .dyn_into()
            .ok()
    }

    fn clear_canvas(&self) {
        if let Some(g) = self.context2d() {
            g.set_fill_style_str("#000");
            g.fill_rect(0.0, 0.0, CANVAS as f64, CANVAS as f64);
        }
    }

    fn stroke(&self, x0: f64, y0: f64, x1: f64, y1: f64) {
        if let Some(g) = self.context2d() {
            g.set_stroke_style_str("#fff");
            g.set_line_width(PEN);
            g.set_line_cap("round");
            g.begin_path();
            g.move_to(x0, y0);
            g.line_to(x1, y1);
            g.stroke();
        }
    }

    fn clear_drawing(&mut self) {
        self.clear_canvas();
        self.drawing = None;
        self.live = None;
        self.generation += 1;
    }

    fn refit(&mut self, ctx: &Context<Self>) {
        let d_in = ctx.props().learner.config().model.d_in;
        self.baselines = Baselines::fit(&self.examples, self.classes, d_in);
    }

    fn forget(&mut self, ctx: &Context<Self>) {
        self.scoring += 1;
        self.examples.clear();
        self.refit(ctx);
        self.tests.clear();
        self.context = InContext::default();
        self.feeding = false;
        self.clear_drawing();
    }

    fn projected(&self, input: &[f32]) -> Vec<f32> {
        project(&self.task.projection, input, input.len())
    }

    /// Reads the canvas, preprocesses the drawing and asks the learner about it.
    fn read_drawing(&mut self, ctx: &Context<Self>) {
        self.last_live = now_ms();
        let Some(g) = self.context2d() else { return };
        let Ok(data) = g.get_image_data(0.0, 0.0, CANVAS as f64, CANVAS as f64) else {
            return;
        };
        let ink = ink_from_rgba(&data.data().0);
        let Some(mnist) = to_mnist(&ink, CANVAS as usize, CANVAS as usize) else {
            return;
        };
        let learner = ctx.props().learner.clone();
        let stats = learner.input_stats();
        let pool = learner.config().tasks.image_pool;
        let small = match pooled(&mnist, pool) {
            Ok(p) => p,
            Err(e) => {
                self.error = Some(e);
                return;
            }
        };
        let input = normalized(&small, stats);
        self.drawing = Some(Drawing {
            input: input.clone(),
            thumb: gray_bmp_data_url(&mnist, SIDE),
            pooled: gray_bmp_data_url(&small, SIDE / pool.max(1)),
        });
        self.generation += 1;
        let generation = self.generation;
        let context = self.context.clone();
        let x = self.projected(&input);
        ctx.link().send_future(async move {
            let r = learner
                .predict(&context, &x)
                .await
                .map_err(|e| e.to_string());
            PadMsg::Live(generation, r)
        });
    }

    /// Re-scores the held-back drawings against the current context.
    fn score(&mut self, ctx: &Context<Self>) {
        self.scoring += 1;
        let generation = self.scoring;
        let learner = ctx.props().learner.clone();
        let context = self.context.clone();
        let xs: Vec<Vec<f32>> = self
            .tests
            .iter()
            .map(|t| self.projected(&t.drawing.input))
            .collect();
        ctx.link().send_future(async move {
            let mut all = Vec::with_capacity(xs.len());
            for x in &xs {
                match learner.predict(&context, x).await {
                    Ok(p) => all.push(p),
                    Err(e) => return PadMsg::Scored(generation, Err(e.to_string())),
                }
            }
            PadMsg::Scored(generation, Ok(all))
        });
    }

    /// The learner's distribution over the user's classes only (renormalised).
    fn over_classes(&self, p: &[f32]) -> Vec<f32> {
        let p = &p[..self.classes.min(p.len())];
        let sum: f32 = p.iter().sum::<f32>().max(1e-12);
        p.iter().map(|v| v / sum).collect()
    }

    /// The baselines' distributions for an input.
    fn baselines(&self, input: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let b = &self.baselines;
        let ex = Examples {
            x: &b.x,
            y: &b.y,
            n_features: input.len(),
        };
        (knn(ex, self.classes, 1, input), b.logistic.predict(input))
    }

    fn view_current(&self, names: &[String]) -> Html {
        let Some(d) = &self.drawing else {
            return html! { <p id="pad-bars" class="hint">{"Draw something: its class distribution appears here as you draw."}</p> };
        };
        let (near, logistic) = self.baselines(&d.input);
        html! {
            <div class="pad-current">
                <div class="thumbs">
                    <figure><img id="pad-thumb" src={d.thumb.clone()} width="56" height="56" alt="the drawing, processed" /><figcaption>{"28×28"}</figcaption></figure>
                    <figure><img src={d.pooled.clone()} width="56" height="56" alt="the drawing as the learner sees it" /><figcaption>{"7×7: what it sees"}</figcaption></figure>
                </div>
                <h3>{format!("In-context learner ({} examples in context)", self.context.len())}</h3>
                { match &self.live {
                    Some(p) => bars("pad-bars", &self.over_classes(p), names, None),
                    None => html! { <p id="pad-bars" class="hint">{"thinking…"}</p> },
                } }
                <div class="baselines">
                    <div><h3>{"1-nearest neighbour"}</h3>{ bars("pad-knn", &near, names, None) }</div>
                    <div><h3>{"Logistic regression"}</h3>{ bars("pad-logistic", &logistic, names, None) }</div>
                </div>
            </div>
        }
    }

    fn view_context(&self, names: &[String]) -> Html {
        if self.examples.is_empty() {
            return html! {};
        }
        html! {
            <div id="pad-context" class="examples" aria-label="Examples in the context">
                { for self.examples.iter().map(|(c, d)| html! {
                    <figure class="example seen"><img src={d.thumb.clone()} width="36" height="36" alt={format!("example of {}", names[*c])} /><figcaption>{&names[*c]}</figcaption></figure>
                }) }
            </div>
        }
    }

    fn view_tests(&self, names: &[String]) -> Html {
        if self.tests.is_empty() {
            return html! {};
        }
        let mut right = [0usize; 3];
        let mut scored = 0;
        let rows: Vec<Html> = self.tests.iter().map(|t| {
            let (near, logistic) = self.baselines(&t.drawing.input);
            let learner = t.learner.as_ref().map(|p| self.over_classes(p));
            let guesses = [learner.as_deref().and_then(argmax), argmax(&near), argmax(&logistic)];
            if learner.is_some() {
                scored += 1;
                for (r, g) in right.iter_mut().zip(guesses) {
                    *r += usize::from(g == Some(t.class));
                }
            }
            let cell = |g: Option<usize>| match g {
                Some(g) => html! { <td class={if g == t.class { "right" } else { "wrong" }}>{&names[g]}</td> },
                None => html! { <td>{"…"}</td> },
            };
            html! {
                <tr>
                    <td><img src={t.drawing.thumb.clone()} width="28" height="28" alt="held-back drawing" /></td>
                    <td>{&names[t.class]}</td>
                    { cell(guesses[0]) }{ cell(guesses[1]) }{ cell(guesses[2]) }
                </tr>
            }
        }).collect();
        let pct = |r: usize| {
            if scored == 0 {
                "…".to_string()
            } else {
                format!("{:.0}% ({r}/{scored})", 100.0 * r as f32 / scored as f32)
            }
        };
        html! {
            <div class="pad-tests">
                <h3>{"Held-back drawings"}</h3>
                <p id="pad-accuracy" data-scored={scored.to_string()}>{format!(
                    "Accuracy with {} examples in context — in-context learner: {}; 1-nearest neighbour: {}; logistic regression: {}.",
                    self.context.len(), pct(right[0]), pct(right[1]), pct(right[2]))}</p>
                <table>
                    <thead><tr><th>{"drawing"}</th><th>{"class"}</th><th>{"in-context"}</th><th>{"1-NN"}</th><th>{"logistic"}</th></tr></thead>
                    <tbody>{ for rows }</tbody>
                </table>
            </div>
        }
    }
}
