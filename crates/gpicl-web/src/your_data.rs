//! "Your data": a visitor's own table (CSV) or images (two IDX files), learnt in context by the
//! shipped learner in the training worker; its curve beside 1-NN, logistic regression and an
//! MLP on the same contexts. The file never leaves the browser: a share link names it, and a
//! page opened from such a link asks for it.

use web_sys::{File, FileList, HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::chart::signed;
use crate::widgets::curves_figure;
use crate::yours::{self, MAX_BYTES, Paired};
use gpicl_core::eval::Verdict;

/// The part's inputs.
#[derive(Properties, PartialEq)]
pub struct YourDataProps {
    /// The last table, the one being learnt, the last refusal, the link's table.
    pub state: yours::YourData,
    /// Files were chosen or dropped, with the label's column (1-based; the last if `None`).
    pub on_file: Callback<(Vec<File>, Option<usize>)>,
    /// The table shown is to be learnt again with its label in this column (1-based).
    pub on_relabel: Callback<usize>,
}

fn files(list: Option<FileList>) -> Vec<File> {
    list.map(|l| (0..l.length()).filter_map(|i| l.get(i)).collect())
        .unwrap_or_default()
}

/// The sentence under the chart that says whether the gap between the learner and the best
/// baseline is more than the noise of the sequences drawn.
fn paired_sentence(p: &Paired) -> String {
    let span = match (p.positions.first(), p.positions.last()) {
        (Some(a), Some(b)) if a != b => format!("positions {a}–{b}"),
        (Some(a), _) => format!("position {a}"),
        _ => "no position".into(),
    };
    let verdict = match p.verdict() {
        Verdict::Level if p.standard_error == 0.0 && p.difference == 0.0 => {
            "as many right as it on every one of those sequences"
        }
        Verdict::Above => "ahead of it by more than twice that noise",
        Verdict::Level => {
            "level with it within twice that noise (more rows or sequences would be needed to tell them apart)"
        }
        Verdict::Below => "behind it by more than twice that noise",
    };
    format!(
        "Paired by sequence, on {} sequences at {span} (the best baseline here, {}, fit again on \
         each of them): the learner with {} views minus it is {} ± {:.1} points (± one \
         standard error over sequences): {verdict}.",
        p.sequences,
        p.baseline,
        yours::VIEWS,
        signed(100.0 * p.difference, 1),
        100.0 * p.standard_error,
    )
}

/// The "your data" part.
#[function_component(YourData)]
pub fn your_data(p: &YourDataProps) -> Html {
    let label = use_node_ref();
    let dragging = use_state(|| false);
    let state = &p.state;
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
            let chosen = files(input.files());
            if !chosen.is_empty() {
                on_file.emit((chosen, column()));
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
            let dropped = files(e.data_transfer().and_then(|d| d.files()));
            if !dropped.is_empty() {
                on_file.emit((dropped, column()));
            }
        })
    };
    // Another label column for the table shown: the page learns its files again. The list
    // keeps showing the column the shown table was read with until another table is learnt
    // (it offers only columns that can be labels; one the worker still refuses leaves the
    // page as it was). The box above stays as the visitor left it: it is for the next file,
    // which may be of another shape.
    let shown_label = state.report.as_ref().map_or(0, |r| r.label + 1);
    let on_relabel = {
        let on_relabel = p.on_relabel.clone();
        Callback::from(move |e: Event| {
            let select = e.target_unchecked_into::<HtmlSelectElement>();
            let Ok(column) = select.value().parse::<usize>() else {
                return;
            };
            select.set_value(&shown_label.to_string());
            on_relabel.emit(column);
        })
    };
    let relabel = state
        .report
        .as_ref()
        .filter(|r| r.columns.len() > 1)
        .map(|r| {
            let busy = state.busy().is_some();
            html! {
                <p id="data-columns" class="toolbar">
                    <label>{format!(
                        "Its label was read from column {} ({}). Read it again with the label in ",
                        r.label + 1, r.columns[r.label])}
                        <select id="data-relabel" key={format!("{}:{}", r.hash, r.label)}
                            onchange={on_relabel} disabled={busy}>
                            { for r.columns.iter().enumerate().map(|(i, name)| {
                                // A column that cannot be the label is listed, not offered.
                                let why = r.not_labels.get(i).cloned().flatten();
                                let text = match &why {
                                    Some(why) => format!("column {}: {name} ({why})", i + 1),
                                    None => format!("column {}: {name}", i + 1),
                                };
                                html! {
                                    <option value={(i + 1).to_string()} selected={i == r.label}
                                        disabled={why.is_some()}>{text}</option>
                                }
                            }) }
                        </select>
                    </label>
                </p>
            }
        });
    let chart = state.report.as_ref().map(|r| {
        curves_figure(
            "data-chart",
            &format!("The shipped learner on {}", r.name),
            &[r.curve.clone(), r.ensemble.clone()],
            &r.baselines,
            r.classes,
            &format!(
                "{} rows, {} features, {} classes (chance {:.0}%): random tasks of your table \
                 (a random projection to the learner's {} inputs, the labels renamed), {} \
                 sequences; the learner alone, and its probabilities averaged over {} views of \
                 each sequence (other projections and renamings of the same examples); the \
                 baselines are fit on the examples before each position of the first sequences.",
                r.rows,
                r.features,
                r.classes,
                100.0 / r.classes as f32,
                49,
                crate::yours::SEQUENCES,
                crate::yours::VIEWS
            ),
        )
    });
    html! {
        <section id="your-data" class={classes!("your-data", dragging.then_some("dragging"))} aria-label="Your data"
            ondragover={on_drag_over} ondragleave={on_drag_leave} ondrop={on_drop}>
            <h2>{"Your data"}</h2>
            <p class="hint">{format!(
                "Drop or choose a table (CSV, up to {} MiB): one row per example, one label column \
                 (numbers or names), features of numbers or of text categories; a header, \
                 missing values and semicolons or tabs between cells are fine (the page says how \
                 it read them). Or images with \
                 their labels as MNIST ships them (two IDX files, raw or gzipped, chosen \
                 together). The pretrained learner learns it from examples in its context, with \
                 no training on it, and the step-through above takes its tasks from it. The \
                 file stays in your browser: a share link names it, without its contents.",
                MAX_BYTES / 1048576)}</p>
            if let Some(w) = &state.wanted {
                if state.is_wanted() != Some(true) {
                    <p id="data-wanted" class="notice">{format!(
                        "This link's experiment learnt {} ({} rows, label column {}; fingerprint {}). \
                         Links never carry files: choose the same file to see its curve.",
                        w.name, w.rows, w.label_column.map_or("last".into(), |c| c.to_string()), w.hash)}</p>
                }
            }
            <div class="toolbar">
                <label>{"Label column (1 = first; blank = last) "}
                    <input id="data-label" type="text" inputmode="numeric" size="3" ref={label}
                        value={state.wanted.as_ref().and_then(|w| w.label_column).map(|c| c.to_string())} />
                </label>
                <label class="upload">{"File(s): "}
                    <input id="data-file" type="file" multiple=true onchange={on_change} />
                </label>
                if let Some(name) = state.busy() {
                    <span id="data-busy" class="stat">{format!("learning {name}…")}</span>
                }
            </div>
            if let Some(e) = &state.error {
                <p id="data-error" class="error" role="alert">{e}</p>
            }
            if let (Some(same), Some(r), Some(w)) = (state.is_wanted(), &state.report, &state.wanted) {
                <p id="data-match" class={if same { "notice" } else { "error" }} data-same={same.to_string()}>{
                    if same {
                        format!("{} is the link's file (fingerprint {}).", r.name, r.hash)
                    } else {
                        format!("{} is not the link's file: its fingerprint is {}, the link's {} ({}).", r.name, r.hash, w.hash, w.name)
                    }
                }</p>
            }
            { for relabel }
            if let Some(r) = state.report.as_ref().filter(|r| !r.notes.is_empty()) {
                <div id="data-notes" class="notice">
                    {format!("How {} was read:", r.name)}
                    <ul>{ for r.notes.iter().map(|n| html! { <li>{n}</li> }) }</ul>
                </div>
            }
            { for chart }
            if let Some(p) = state.report.as_ref().and_then(|r| r.paired.as_ref()) {
                <p id="data-paired" class="stat" data-verdict={format!("{:?}", p.verdict()).to_lowercase()}
                    data-difference={format!("{:.4}", p.difference)} data-se={format!("{:.4}", p.standard_error)}>
                    {paired_sentence(p)}</p>
            }
        </section>
    }
}
