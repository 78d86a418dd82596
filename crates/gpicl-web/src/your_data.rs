//! "Your data": a visitor's own table (CSV), learnt in context by the shipped learner in the
//! training worker; its curve beside 1-NN, logistic regression and an MLP on the same
//! contexts. The file never leaves the browser.

use std::rc::Rc;

use web_sys::{File, HtmlInputElement};
use yew::prelude::*;

use crate::widgets::curves_figure;
use crate::yours::{MAX_BYTES, Report};

/// The part's inputs.
#[derive(Properties, PartialEq)]
pub struct YourDataProps {
    /// What the learner made of the last table.
    pub report: Option<Rc<Report>>,
    /// The table being learnt now.
    pub busy: Option<AttrValue>,
    /// Why the last file was refused.
    pub error: Option<AttrValue>,
    /// A file was chosen or dropped, with the label's column (1-based; the last if `None`).
    pub on_file: Callback<(File, Option<usize>)>,
}

/// The "your data" part.
#[function_component(YourData)]
pub fn your_data(p: &YourDataProps) -> Html {
    let label = use_node_ref();
    let dragging = use_state(|| false);
    let column = {
        let label = label.clone();
        move || {
            label
                .cast::<HtmlInputElement>()
                .and_then(|i| i.value().trim().parse::<usize>().ok())
        }
    };
    let on_change = {
        let (column, on_file) = (column.clone(), p.on_file.clone());
        Callback::from(move |e: Event| {
            let input = e.target_unchecked_into::<HtmlInputElement>();
            if let Some(file) = input.files().and_then(|f| f.get(0)) {
                on_file.emit((file, column()));
            }
            // The same file may be chosen again.
            input.set_value("");
        })
    };
    let on_drag_over = {
        let dragging = dragging.clone();
        Callback::from(move |e: DragEvent| {
            e.prevent_default();
            dragging.set(true);
        })
    };
    let on_drag_leave = {
        let dragging = dragging.clone();
        Callback::from(move |_: DragEvent| dragging.set(false))
    };
    let on_drop = {
        let (dragging, on_file) = (dragging.clone(), p.on_file.clone());
        Callback::from(move |e: DragEvent| {
            e.prevent_default();
            dragging.set(false);
            if let Some(file) = e
                .data_transfer()
                .and_then(|d| d.files())
                .and_then(|f| f.get(0))
            {
                on_file.emit((file, column()));
            }
        })
    };
    let chart = p.report.as_ref().map(|r| {
        curves_figure(
            "data-chart",
            &format!("The shipped learner on {}", r.name),
            std::slice::from_ref(&r.curve),
            &r.baselines,
            r.classes,
            &format!(
                "{} rows, {} features, {} classes (chance {:.0}%): random tasks of your table \
                 (a random projection to the learner's {} inputs, the labels renamed), {} \
                 sequences; the baselines are fit on the examples before each position of the \
                 first sequences.",
                r.rows,
                r.features,
                r.classes,
                100.0 / r.classes as f32,
                49,
                crate::yours::SEQUENCES
            ),
        )
    });
    html! {
        <section id="your-data" class={classes!("your-data", dragging.then_some("dragging"))} aria-label="Your data"
            ondragover={on_drag_over} ondragleave={on_drag_leave} ondrop={on_drop}>
            <h2>{"Your data"}</h2>
            <p class="hint">{format!(
                "Drop or choose a table of numbers (CSV, up to {} MiB): one row per example, numeric features, \
                 one label column (numbers or names; a header row is optional). The pretrained \
                 learner learns it from examples in its context, with no training on it. The \
                 file stays in your browser.", MAX_BYTES / 1048576)}</p>
            <div class="toolbar">
                <label>{"Label column (1 = first; blank = last) "}
                    <input id="data-label" type="text" inputmode="numeric" size="3" ref={label} />
                </label>
                <label class="upload">{"CSV file: "}
                    <input id="data-file" type="file" accept=".csv,.txt,.gz" onchange={on_change} />
                </label>
                if let Some(name) = &p.busy {
                    <span id="data-busy" class="stat">{format!("learning {name}…")}</span>
                }
            </div>
            if let Some(e) = &p.error {
                <p id="data-error" class="error" role="alert">{e}</p>
            }
            { for chart }
        </section>
    }
}
