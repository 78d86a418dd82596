//! The experiment's settings: one control per field of the settings table (`settings.rs`).

use gpicl_core::RunConfig;
use web_sys::{HtmlInputElement, HtmlSelectElement};
use yew::prelude::*;

use crate::settings::{BATCH_SIZES, Field, MAX_TASKS_LOG2, MODEL_SIZES, PAGE_PRESETS, tasks_label};

/// The settings' inputs.
#[derive(Properties, PartialEq)]
pub struct ControlsProps {
    /// Settings for the next run.
    pub config: RunConfig,
    /// What was wrong with values typed in.
    pub errors: Vec<String>,
    /// A control changed: the field and its new text.
    pub on_set: Callback<(Field, String)>,
}

/// The settings panel.
#[function_component(Controls)]
pub fn controls(p: &ControlsProps) -> Html {
    let c = &p.config;
    let on_select = |field: Field| {
        p.on_set.reform(move |e: Event| {
            (
                field,
                e.target_unchecked_into::<HtmlSelectElement>().value(),
            )
        })
    };
    let on_input = |field: Field| {
        p.on_set
            .reform(move |e: Event| (field, e.target_unchecked_into::<HtmlInputElement>().value()))
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
    let errors = p
        .errors
        .iter()
        .map(|e| html! { <p class="error field-error">{e}</p> });
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
