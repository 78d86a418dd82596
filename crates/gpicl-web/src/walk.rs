//! The step-through: the pretrained learner fed one unseen task's examples one at a time (by
//! buttons or keys), each through its KV cache, on this page's thread (Flex: one example is
//! tiny work; training runs in the worker). Its tasks come from MNIST test digits or from a
//! visitor's own data (images, or rows of numbers with the file's class names).

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
use crate::session::{sequence_task, walk};
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
    /// task made `generation`-th).
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

/// How an example is shown: an image (a data URL) or a row of numbers (short, and in full).
#[derive(Clone)]
enum Shown {
    Image(String),
    Row(String, String),
}

impl Shown {
    fn view(&self, size: u32, alt: String) -> Html {
        match self {
            Shown::Image(src) => html! {
                <img src={src.clone()} width={size.to_string()} height={size.to_string()} alt={alt} />
            },
            Shown::Row(short, full) => html! {
                <span class="row-values" title={full.clone()} aria-label={alt}>{short}</span>
            },
        }
    }
}

/// Values shown of a row (the rest are in its tooltip).
const ROW_VALUES: usize = 3;

/// Example `i` of `data` as the step-through shows it.
fn shown(data: &WalkData, i: usize) -> Shown {
    let d = &data.shown;
    match d.image_side {
        Some(side) => Shown::Image(gray_bmp_data_url(&d.row(i), side)),
        None => {
            let values: Vec<String> = d.row(i).iter().map(|v| format!("{v}")).collect();
            let full = values
                .iter()
                .enumerate()
                .map(|(f, v)| match d.feature_names.get(f) {
                    Some(name) => format!("{name} {v}"),
                    None => v.clone(),
                })
                .collect::<Vec<_>>()
                .join(", ");
            let mut short = values[..values.len().min(ROW_VALUES)].join(" ");
            if values.len() > ROW_VALUES {
                short.push_str(" …");
            }
            Shown::Row(short, full)
        }
    }
}

/// One unseen task fed to the pretrained learner.
pub struct StepThrough {
    seed: u64,
    /// Counts the tasks made (a prediction for an earlier one is dropped).
    generation: u64,
    walk: Batch,
    /// `permutation[c]`: the label the task renamed class `c` of the data to.
    permutation: Vec<u32>,
    images: Vec<Shown>,
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

/// Task `seed`'s sequence, its label permutation, its examples as shown and as the learner
/// sees them.
fn task(props: &StepThroughProps, seed: u64) -> (Batch, Vec<u32>, Vec<Shown>, Vec<Vec<f32>>) {
    let StepThroughProps { learner, data } = props;
    let seed = learner.config().eval.seed ^ seed;
    let sequence = walk(data, learner.config(), seed);
    let permutation = sequence_task(&data.inputs, learner.config(), seed).permutation;
    let images = sequence.indices.iter().map(|&i| shown(data, i)).collect();
    let inputs = sequence
        .projected(0)
        .chunks_exact(sequence.d_in)
        .map(<[f32]>::to_vec)
        .collect();
    (sequence, permutation, images, inputs)
}

impl StepThrough {
    /// Makes the step-through of task `seed`.
    fn make(&mut self, seed: u64, ctx: &Context<Self>) {
        self.seed = seed;
        self.generation += 1;
        (self.walk, self.permutation, self.images, self.inputs) = task(ctx.props(), seed);
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
        let (learner, context, generation) = (
            ctx.props().learner.clone(),
            self.context.clone(),
            self.generation,
        );
        ctx.link().send_future(async move {
            WalkMsg::Walked(generation, learner.feed_looking(&context, &x, label).await)
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
        if let Some(doc) = crate::document() {
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
        let (walk, permutation, images, inputs) = task(ctx.props(), 0);
        let mut me = Self {
            seed: 0,
            generation: 0,
            walk,
            permutation,
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

    fn changed(&mut self, ctx: &Context<Self>, _old: &StepThroughProps) -> bool {
        // Other data (the visitor's table, or back to MNIST): a fresh task of it.
        self.make(0, ctx);
        true
    }

    fn destroy(&mut self, _ctx: &Context<Self>) {
        if let (Some(doc), Some(h)) = (crate::document(), &self.keys) {
            let _ = doc.remove_event_listener_with_callback("keydown", h.as_ref().unchecked_ref());
        }
    }

    fn update(&mut self, ctx: &Context<Self>, msg: WalkMsg) -> bool {
        match msg {
            WalkMsg::Walked(generation, result) => {
                if generation != self.generation {
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
        let data = &ctx.props().data;
        let t = self.walk.labels.len();
        let q = self.fed;
        let images = self.images.iter().enumerate().map(|(j, look)| {
            let class = if j < q {
                "seen"
            } else if j == q {
                "query"
            } else {
                "future"
            };
            let label = if j < q {
                self.class_name(data, self.class_of(data, j))
            } else if j == q {
                "?".into()
            } else {
                String::new()
            };
            html! {
                <figure class={classes!("example", class)}>
                    { look.view(36, format!("example {}", j + 1)) }
                    <figcaption>{label}</figcaption>
                </figure>
            }
        });
        let shown = match (self.predictions.get(q), &self.error) {
            (_, Some(e)) => html! { <p id="walk-bars" class="error">{e}</p> },
            (Some(p), None) => {
                let p = self.over_classes(data, p);
                let names: Vec<String> = (0..p.len()).map(|c| self.class_name(data, c)).collect();
                let predicted = gpicl_core::baselines::argmax(&p).unwrap_or(0);
                let truth = self.class_of(data, q);
                let right = predicted == truth;
                // Accuracy over the examples predicted so far (a running in-context curve).
                let hits = (0..=q)
                    .filter(|&j| {
                        gpicl_core::baselines::argmax(
                            &self.over_classes(data, &self.predictions[j]),
                        ) == Some(self.class_of(data, j))
                    })
                    .count();
                let what = if data.named { "" } else { "label " };
                html! {
                    <>
                        { bars("walk-bars", &p, &names, Some(truth)) }
                        <p id="walk-verdict" class={if right { "right" } else { "wrong" }}>{format!(
                            "After {q} labelled example{}: predicts {what}{} ({:.0}%). The answer is {}: {}. So far {hits} of {} right.",
                            if q == 1 { "" } else { "s" }, names[predicted], p[predicted] * 100.0, names[truth], if right { "right" } else { "wrong" }, q + 1)}</p>
                        { self.view_looks(data, q) }
                    </>
                }
            }
            (None, None) => html! { <p id="walk-bars" class="hint">{"thinking…"}</p> },
        };
        let (title, about) = if data.named {
            (
                format!("Step through your data: {}", data.about),
                format!(
                    "The pretrained learner on your data, which it never trained on: a random projection of its {} features to the learner's inputs, and a random renaming of its {} classes to the learner's labels. Each example is shown with its class as your file names it; the bars are the learner's belief in each class (its output for the label the class was renamed to; the rest goes to labels no class has). Feed it examples one at a time and watch its guess for the next one (outlined) sharpen: the weights stay fixed, everything it learns about your data is in its context. Keys: → or Enter feeds, ← goes back, R starts over, N picks another task.",
                    data.shown.n_features, data.inputs.n_classes
                ),
            )
        } else {
            (
                "Step through one unseen task".into(),
                "The pretrained learner on a task it never trained on: MNIST test digits, a random projection of the pixels, and a random renaming of the ten labels. Feed it examples with their labels one at a time and watch its guess for the next one (outlined) sharpen: the weights stay fixed, everything it learns about this task is in its context. Each example runs only its own tokens through the network, reusing the attention keys and values of the earlier ones (the KV cache). Keys: → or Enter feeds, ← goes back, R starts over, N picks another task.".into(),
            )
        };
        html! {
            <section class="walk" aria-label="Step-through" data-source={if data.named { "yours" } else { "mnist" }}>
                <h2>{title}</h2>
                <p class="hint">{about}</p>
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
    /// The class of example `j` as shown: its class in the file (a visitor's data), else the
    /// label the task renamed it to.
    fn class_of(&self, data: &WalkData, j: usize) -> usize {
        if data.named {
            data.inputs.labels[self.walk.indices[j]] as usize
        } else {
            self.walk.labels[j] as usize
        }
    }

    /// How class `c` (as [`Self::class_of`] numbers it) is shown.
    fn class_name(&self, data: &WalkData, c: usize) -> String {
        if data.named {
            data.inputs.class_name(c)
        } else {
            c.to_string()
        }
    }

    /// A prediction over the classes shown: for a visitor's data, the learner's output for the
    /// label each of its classes was renamed to.
    fn over_classes(&self, data: &WalkData, p: &[f32]) -> Vec<f32> {
        if data.named {
            (0..data.inputs.n_classes)
                .map(|c| {
                    let label = self.permutation.get(c).map(|&l| l as usize);
                    label.and_then(|l| p.get(l)).copied().unwrap_or(0.0)
                })
                .collect()
        } else {
            p.to_vec()
        }
    }

    /// The 1-nearest neighbour of example `q` among the examples before it, in the projected
    /// inputs the learner sees.
    fn nearest(&self, q: usize) -> Option<usize> {
        nearest(self.inputs[..q].iter().map(Vec::as_slice), &self.inputs[q])
    }

    /// Where the prediction for example `q` looked: per block (heads averaged), the earlier
    /// examples its attention weighs most, beside the 1-NN baseline's nearest neighbour.
    fn view_looks(&self, data: &WalkData, q: usize) -> Html {
        let (Some(looks), Some(nearest)) = (self.looks.get(q), self.nearest(q)) else {
            return html! {};
        };
        let name = |i: usize| self.class_name(data, self.class_of(data, i));
        let thumb = |i: usize, note: String| {
            html! {
                <figure class={classes!("example", "seen", (i == nearest).then_some("nearest"))}>
                    { self.images[i].view(28, format!("example {}", i + 1)) }
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
                    { for order.iter().take(TOP).map(|&i| thumb(i, format!("{} · {:.0}%", name(i), 100.0 * look[i]))) }
                </div>
            }
        });
        html! {
            <div id="walk-attention" class="attention" data-blocks={looks.len().to_string()} data-nearest={nearest.to_string()}>
                <h3>{"Where it looked"}</h3>
                <p class="hint">{format!(
                    "For this prediction, the earlier examples each block's attention weighs most (heads averaged; class · weight). Outlined: the query's nearest neighbour in the inputs the learner sees, example {} ({}), which 1-NN would copy. Measured over many sequences on MNIST, the first blocks' top example is that neighbour about half the time (README).",
                    nearest + 1, name(nearest))}</p>
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
