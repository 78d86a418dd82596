//! The step-through: the pretrained learner fed one unseen task's examples one at a time (by
//! buttons or keys), each through its KV cache, on this page's thread (Flex: one example is
//! tiny work; training runs in the worker).

use std::rc::Rc;

use gpicl_core::Error;
use gpicl_core::baselines::nearest;
use gpicl_core::task::Batch;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::KeyboardEvent;
use yew::prelude::*;

use crate::data::WalkData;
use crate::image::gray_bmp_data_url;
use crate::learner::{Fed, InContext, Learner};
use crate::session::walk;
use crate::widgets::bars;

/// The step-through's inputs.
#[derive(Properties, Clone)]
pub struct StepThroughProps {
    /// The frozen learner.
    pub learner: Rc<Learner>,
    /// The images and the inputs the tasks are drawn from.
    pub data: Rc<WalkData>,
}

impl PartialEq for StepThroughProps {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.learner, &other.learner) && Rc::ptr_eq(&self.data, &other.data)
    }
}

/// Messages of the step-through.
pub enum WalkMsg {
    /// The learner's prediction for an example and the context that includes it (for the
    /// step-through of `seed`).
    Walked(u64, Result<Fed, Error>),
    /// A key pressed anywhere on the page (not in a form control).
    Key(String),
    /// Reveal the next example.
    Feed,
    /// Go back one example.
    Unfeed,
    /// Back to no examples.
    Restart,
    /// A different unseen task.
    NewTask,
}

/// One unseen task fed to the pretrained learner.
pub struct StepThrough {
    seed: u64,
    walk: Batch,
    images: Vec<String>,
    /// Each example as the learner sees it (projected), computed once per task.
    inputs: Vec<Vec<f32>>,
    /// `predictions[j]`: the learner's distribution for example j after examples 0..j.
    predictions: Vec<Vec<f32>>,
    /// `looks[j][block][i]`: that prediction's attention on earlier example i (heads
    /// averaged).
    looks: Vec<Vec<Vec<f32>>>,
    /// The learner's state after the examples of `predictions`.
    context: InContext,
    /// A prediction is being computed.
    pending: bool,
    /// Examples revealed so far; the query is example `fed` (0-based).
    fed: usize,
    error: Option<String>,
    keys: Option<Closure<dyn FnMut(KeyboardEvent)>>,
}

/// Task `seed`'s sequence, its images and its examples as the learner sees them.
fn task(props: &StepThroughProps, seed: u64) -> (Batch, Vec<String>, Vec<Vec<f32>>) {
    let StepThroughProps { learner, data } = props;
    let sequence = walk(data, learner.config(), learner.config().eval.seed ^ seed);
    let side = data.test_pixels.image_side.unwrap_or(28);
    let images = sequence
        .indices
        .iter()
        .map(|&i| gray_bmp_data_url(data.test_pixels.row(i), side))
        .collect();
    let inputs = sequence
        .projected(0)
        .chunks_exact(sequence.d_in)
        .map(<[f32]>::to_vec)
        .collect();
    (sequence, images, inputs)
}

impl StepThrough {
    /// Makes the step-through of task `seed`.
    fn make(&mut self, seed: u64, ctx: &Context<Self>) {
        self.seed = seed;
        (self.walk, self.images, self.inputs) = task(ctx.props(), seed);
        self.predictions.clear();
        self.looks.clear();
        self.context = InContext::default();
        self.pending = false;
        self.fed = 0;
        self.advance(ctx);
    }

    /// Computes the prediction for the example shown, if not yet known: one more example
    /// through the KV cache (the previous ones are not run again).
    fn advance(&mut self, ctx: &Context<Self>) {
        let j = self.predictions.len();
        if self.pending || j > self.fed || j >= self.walk.seq_len {
            return;
        }
        self.pending = true;
        let x = self.inputs[j].clone();
        let label = self.walk.labels[j] as usize;
        let (learner, context, seed) =
            (ctx.props().learner.clone(), self.context.clone(), self.seed);
        ctx.link().send_future(async move {
            WalkMsg::Walked(seed, learner.feed_looking(&context, &x, label).await)
        });
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
            link.send_message(WalkMsg::Key(key));
        });
        if let Some(doc) = web_sys::window().and_then(|w| w.document()) {
            let _ =
                doc.add_event_listener_with_callback("keydown", handler.as_ref().unchecked_ref());
        }
        self.keys = Some(handler);
    }
}

impl Component for StepThrough {
    type Message = WalkMsg;
    type Properties = StepThroughProps;

    fn create(ctx: &Context<Self>) -> Self {
        let (walk, images, inputs) = task(ctx.props(), 0);
        let mut me = Self {
            seed: 0,
            walk,
            images,
            inputs,
            predictions: Vec::new(),
            looks: Vec::new(),
            context: InContext::default(),
            pending: false,
            fed: 0,
            error: None,
            keys: None,
        };
        me.advance(ctx);
        me.listen_to_keys(ctx);
        me
    }

    fn destroy(&mut self, _ctx: &Context<Self>) {
        if let (Some(doc), Some(h)) = (web_sys::window().and_then(|w| w.document()), &self.keys) {
            let _ = doc.remove_event_listener_with_callback("keydown", h.as_ref().unchecked_ref());
        }
    }

    fn update(&mut self, ctx: &Context<Self>, msg: WalkMsg) -> bool {
        match msg {
            WalkMsg::Walked(seed, result) => {
                if seed != self.seed {
                    return false;
                }
                self.pending = false;
                match result {
                    Ok(fed) => {
                        self.predictions.push(fed.probs);
                        self.looks.push(fed.attention);
                        self.context = fed.context;
                    }
                    Err(e) => self.error = Some(e.to_string()),
                }
            }
            WalkMsg::Key(key) => {
                let msg = match key.as_str() {
                    "ArrowRight" | "Enter" | " " | "f" => WalkMsg::Feed,
                    "ArrowLeft" => WalkMsg::Unfeed,
                    "r" | "Home" => WalkMsg::Restart,
                    "n" => WalkMsg::NewTask,
                    _ => return false,
                };
                return Component::update(self, ctx, msg);
            }
            WalkMsg::Feed => self.fed = (self.fed + 1).min(self.walk.labels.len() - 1),
            WalkMsg::Unfeed => self.fed = self.fed.saturating_sub(1),
            WalkMsg::Restart => self.fed = 0,
            WalkMsg::NewTask => self.make(self.seed + 1, ctx),
        }
        self.advance(ctx);
        true
    }

    fn view(&self, ctx: &Context<Self>) -> Html {
        let link = ctx.link();
        let t = self.walk.labels.len();
        let q = self.fed;
        let images = self.images.iter().enumerate().map(|(j, src)| {
            let class = if j < q { "seen" } else if j == q { "query" } else { "future" };
            let label = if j < q { self.walk.labels[j].to_string() } else if j == q { "?".into() } else { String::new() };
            html! {
                <figure class={classes!("example", class)}>
                    <img src={src.clone()} width="36" height="36" alt={format!("example {}", j + 1)} />
                    <figcaption>{label}</figcaption>
                </figure>
            }
        });
        let names: Vec<String> = (0..10).map(|i| i.to_string()).collect();
        let shown = match (self.predictions.get(q), &self.error) {
            (_, Some(e)) => html! { <p id="walk-bars" class="error">{e}</p> },
            (Some(p), None) => {
                let predicted = gpicl_core::baselines::argmax(p).unwrap_or(0);
                let truth = self.walk.labels[q] as usize;
                let right = predicted == truth;
                // Accuracy over the examples predicted so far (a running in-context curve).
                let hits = self.predictions[..=q]
                    .iter()
                    .zip(&self.walk.labels)
                    .filter(|(p, y)| gpicl_core::baselines::argmax(p) == Some(**y as usize))
                    .count();
                html! {
                    <>
                        { bars("walk-bars", p, &names[..p.len()], Some(truth)) }
                        <p id="walk-verdict" class={if right { "right" } else { "wrong" }}>{format!(
                            "After {q} labelled example{}: predicts label {predicted} ({:.0}%). The answer is {truth}: {}. So far {hits} of {} right.",
                            if q == 1 { "" } else { "s" }, p[predicted] * 100.0, if right { "right" } else { "wrong" }, q + 1)}</p>
                        { self.view_looks(q) }
                    </>
                }
            }
            (None, None) => html! { <p id="walk-bars" class="hint">{"thinking…"}</p> },
        };
        html! {
            <section class="walk" aria-label="Step-through">
                <h2>{"Step through one unseen task"}</h2>
                <p class="hint">{"The pretrained learner on a task it never trained on: MNIST test digits, a random projection of the pixels, and a random renaming of the ten labels. Feed it examples with their labels one at a time and watch its guess for the next one (outlined) sharpen: the weights stay fixed, everything it learns about this task is in its context. Each example runs only its own tokens through the network, reusing the attention keys and values of the earlier ones (the KV cache). Keys: → or Enter feeds, ← goes back, R starts over, N picks another task."}</p>
                <div class="examples">{ for images }</div>
                <div class="toolbar">
                    <button id="walk-back" onclick={link.callback(|_| WalkMsg::Unfeed)} disabled={q == 0}>{"◀ Back"}</button>
                    <button id="walk-feed" onclick={link.callback(|_| WalkMsg::Feed)} disabled={q + 1 >= t}>{"Feed this example ▶"}</button>
                    <button id="walk-restart" onclick={link.callback(|_| WalkMsg::Restart)}>{"Start over"}</button>
                    <button id="walk-new" onclick={link.callback(|_| WalkMsg::NewTask)}>{"Another task"}</button>
                    <span class="stat" id="walk-count">{format!("{q} of {} examples fed", t.saturating_sub(1))}</span>
                </div>
                { shown }
            </section>
        }
    }
}

/// Examples shown per block in the attention view.
const TOP: usize = 3;

impl StepThrough {
    /// The 1-nearest neighbour of example `q` among the examples before it, in the projected
    /// inputs the learner sees.
    fn nearest(&self, q: usize) -> Option<usize> {
        nearest(self.inputs[..q].iter().map(Vec::as_slice), &self.inputs[q])
    }

    /// Where the prediction for example `q` looked: per block (heads averaged), the earlier
    /// examples its attention weighs most, beside the 1-NN baseline's nearest neighbour.
    fn view_looks(&self, q: usize) -> Html {
        let (Some(looks), Some(nearest)) = (self.looks.get(q), self.nearest(q)) else {
            return html! {};
        };
        let thumb = |i: usize, note: String| {
            html! {
                <figure class={classes!("example", "seen", (i == nearest).then_some("nearest"))}>
                    <img src={self.images[i].clone()} width="28" height="28" alt={format!("example {}", i + 1)} />
                    <figcaption>{note}</figcaption>
                </figure>
            }
        };
        let blocks = looks.iter().enumerate().map(|(k, look)| {
            let mut order: Vec<usize> = (0..look.len()).collect();
            order.sort_by(|&a, &b| look[b].total_cmp(&look[a]));
            html! {
                <div class="attn-block" data-top={order.first().map(|i| i.to_string())}>
                    <span class="stat">{format!("block {}", k + 1)}</span>
                    { for order.iter().take(TOP).map(|&i| thumb(i, format!("{} · {:.0}%", self.walk.labels[i], 100.0 * look[i]))) }
                </div>
            }
        });
        html! {
            <div id="walk-attention" class="attention" data-blocks={looks.len().to_string()} data-nearest={nearest.to_string()}>
                <h3>{"Where it looked"}</h3>
                <p class="hint">{format!(
                    "For this prediction, the earlier examples each block's attention weighs most (heads averaged; label · weight). Outlined: the query's nearest neighbour in the inputs the learner sees, example {} (label {}), which 1-NN would copy. Measured over many sequences, the first blocks' top example is that neighbour about half the time (README).",
                    nearest + 1, self.walk.labels[nearest])}</p>
                { for blocks }
            </div>
        }
    }
}

/// The step-through's place while the learner or its data load (or why they did not).
pub fn placeholder(why: Option<&str>) -> Html {
    let text = why.map_or_else(
        || "The step-through starts when the pretrained learner and the data are loaded…".into(),
        |e| format!("The pretrained learner did not load: {e}"),
    );
    html! { <section class="walk"><h2>{"Step through one unseen task"}</h2><p id="walk-bars" class="hint">{text}</p></section> }
}
