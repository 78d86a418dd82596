//! The run's status bar: ▶ / ⏸ / Step / Reset, the step, loss, rate and state, the device,
//! and what the page has to say (fallback, error, notice, a saved run to resume).

use yew::prelude::*;

use crate::protocol::BackendInfo;
use crate::run_state::RunState;

/// What the status bar's buttons ask for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RunAction {
    /// Start or resume training.
    Train,
    /// Stop after the steps in flight.
    Pause,
    /// One training step.
    Step,
    /// A new run with the current settings.
    Reset,
    /// Resume the saved run offered.
    Resume,
    /// Discard the saved run offered and start afresh.
    Discard,
}

/// The status bar's inputs.
#[derive(Properties, PartialEq)]
pub struct StatusProps {
    /// Where the run stands.
    pub state: RunState,
    /// Steps completed.
    pub step: usize,
    /// The latest loss.
    pub loss: Option<f32>,
    /// Steps per second lately.
    pub rate: Option<f64>,
    /// The worker's device, once it is ready.
    pub backend: Option<BackendInfo>,
    /// Seconds from page load to the first training step.
    pub first_step_s: Option<f64>,
    /// The settings differ from the run's.
    pub changed: bool,
    /// An error that stopped the run.
    pub error: Option<AttrValue>,
    /// What the page did that the user should know.
    pub notice: Option<AttrValue>,
    /// The saved run offered for resuming, described.
    pub offer: Option<AttrValue>,
    /// The buttons.
    pub on: Callback<RunAction>,
}

/// The status bar.
#[function_component(StatusBar)]
pub fn status_bar(p: &StatusProps) -> Html {
    let act = |a: RunAction| p.on.reform(move |_: MouseEvent| a);
    let training = matches!(p.state, RunState::Training);
    let can_run = p.state.has_run();
    html! {
        <section class="status" aria-live="polite">
            <div class="toolbar">
                if training {
                    <button id="run-toggle" onclick={act(RunAction::Pause)}>{"⏸ Pause"}</button>
                } else {
                    <button id="run-toggle" disabled={!can_run} onclick={act(RunAction::Train)}>{"▶ Train"}</button>
                }
                <button id="step-once" disabled={!can_run} onclick={act(RunAction::Step)}>{"Step"}</button>
                <button id="reset" disabled={p.backend.is_none()} class={classes!(p.changed.then_some("attention"))}
                    onclick={act(RunAction::Reset)}>{"Reset"}</button>
                <span class="stat">{"Step "}<b id="step">{p.step}</b></span>
                <span class="stat">{"Loss "}<b id="loss">{
                    p.loss.map_or("–".into(), |l| format!("{l:.3}"))
                }</b></span>
                if let Some(r) = p.rate {
                    <span class="stat" id="rate">{format!("{r:.1} steps/s")}</span>
                }
                <span class="stat" id="state" data-state={format!("{:?}", p.state)}>{p.state.label()}</span>
            </div>
            <div id="backend" class={classes!("backend", p.backend.as_ref().is_some_and(|b| b.webgpu).then_some("webgpu"))}>
                { p.backend.as_ref().map_or_else(
                    || "Starting the GPU and loading MNIST and Fashion-MNIST in a worker…".to_string(),
                    |b| format!("Device: {} (in a worker)", b.label)) }
                if let Some(s) = p.first_step_s {
                    <span id="first-step">{format!(" · first training step {s:.1} s after page load")}</span>
                }
            </div>
            if let Some(note) = p.backend.as_ref().and_then(|b| b.fallback.clone()) {
                <p id="fallback" class="warning" role="alert">{note}</p>
            }
            if p.changed {
                <p id="needs-reset" class="notice">{"You changed settings of the run: press Reset to start a new run with them (the current run keeps its settings)."}</p>
            }
            if let Some(e) = &p.error {
                <p id="error" class="error" role="alert">{e}</p>
            }
            if let Some(n) = &p.notice {
                <p id="notice" class="notice" role="status">{n}</p>
            }
            if let Some(offer) = &p.offer {
                <div id="resume-offer" class="notice" role="alert">
                    {offer}{" "}
                    <button id="resume" disabled={p.backend.is_none()} onclick={act(RunAction::Resume)}>{"Resume it"}</button>
                    <button id="discard" onclick={act(RunAction::Discard)}>{"Discard it and start afresh"}</button>
                </div>
            }
        </section>
    }
}
