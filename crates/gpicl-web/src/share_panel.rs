//! Share, save and load: the link the page was opened with (and its replay), the current
//! run's share link, downloads, uploads and the autosave's state.

use std::rc::Rc;

use gpicl_core::share::{Link, REPLAY_TOLERANCE, ReplayOutcome};
use web_sys::HtmlInputElement;
use yew::prelude::*;

/// The link the page was opened with.
#[derive(Debug, Clone, PartialEq)]
pub struct Shared {
    /// The experiment it holds.
    pub link: Link,
    /// What was wrong with it (each bad field fell back to its default).
    pub problems: Vec<String>,
    /// The replay's result, once the run reached the link's step.
    pub outcome: Option<ReplayOutcome>,
}

/// What can be downloaded.
#[derive(Debug, Clone, Copy, PartialEq)]
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

/// What the panel's controls ask for.
pub enum ShareAction {
    /// Make the current run's share link.
    Share,
    /// Re-run the shared link's experiment and compare its curves.
    Replay,
    /// Download something.
    Export(Export),
    /// A file was chosen in the import control.
    Import(HtmlInputElement),
}

/// The panel's inputs.
#[derive(Properties, PartialEq)]
pub struct SharePanelProps {
    /// The link the page was opened with.
    pub shared: Option<Rc<Shared>>,
    /// The run's step, and whether it is replaying the link.
    pub step: usize,
    /// A replay is under way.
    pub replaying: bool,
    /// The data bundles' version here.
    pub data_version: AttrValue,
    /// The current run's share link, once made.
    pub share_url: Option<AttrValue>,
    /// A run exists.
    pub has_run: bool,
    /// The run has been evaluated (its chart exists).
    pub has_chart: bool,
    /// Step of the run's last autosave.
    pub autosaved: Option<usize>,
    /// A file that could not be imported or exported; nothing else changed.
    pub io_error: Option<AttrValue>,
    /// The controls.
    pub on: Callback<ShareAction>,
}

fn link_info(p: &SharePanelProps, s: &Shared) -> Html {
    let mut notes = s.problems.clone();
    let data = p.data_version.as_str();
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
            None if p.replaying => ("pending", format!(
                "replaying: step {} of {}…", p.step, r.step)),
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
                {" "}<button id="replay-run" onclick={p.on.reform(|_| ShareAction::Replay)}>{"Replay"}</button>
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
}

/// The share, save and load panel.
#[function_component(SharePanel)]
pub fn share_panel(p: &SharePanelProps) -> Html {
    let export = |kind: Export| p.on.reform(move |_: MouseEvent| ShareAction::Export(kind));
    let on_import =
        p.on.reform(|e: Event| ShareAction::Import(e.target_unchecked_into::<HtmlInputElement>()));
    let ready = p.has_run;
    html! {
        <section id="share-section" class="share" aria-label="Share, save and load">
            if let Some(s) = &p.shared { { link_info(p, s) } }
            <div class="toolbar">
                <button id="share" disabled={!ready} onclick={p.on.reform(|_| ShareAction::Share)}>{"Share link"}</button>
                if let Some(url) = &p.share_url {
                    <input id="share-url" type="text" readonly=true value={url.clone()}
                        aria-label="Share link (copied to the clipboard)" />
                }
            </div>
            <div class="toolbar">
                <span class="stat">{"Download:"}</span>
                <button id="export-json" disabled={!ready} onclick={export(Export::Json)}>{"results.json"}</button>
                <button id="export-csv" disabled={!ready} onclick={export(Export::Csv)}>{"CSV"}</button>
                <button id="export-svg" disabled={!p.has_chart} onclick={export(Export::Svg)}>{"plot SVG"}</button>
                <button id="export-png" disabled={!p.has_chart} onclick={export(Export::Png)}>{"plot PNG"}</button>
                <button id="export-checkpoint" disabled={!ready} onclick={export(Export::Checkpoint)}>{"checkpoint"}</button>
                <label class="upload">{"Load a checkpoint or results file: "}
                    <input id="import" type="file" accept=".gpicl,.json" onchange={on_import} />
                </label>
                <span id="autosave" class="stat">{
                    match p.autosaved {
                        Some(step) => format!("autosaved at step {step}"),
                        None => "not autosaved yet".into(),
                    }
                }</span>
            </div>
            if let Some(e) = &p.io_error {
                <p id="io-error" class="error" role="alert">{e}</p>
            }
        </section>
    }
}
