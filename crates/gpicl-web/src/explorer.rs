//! The phase explorer: a phase diagram made by `gpicl sweep merge` (shipped as
//! `web/sweeps/*.json`), each cell a run whose curves open on click, and a button that starts
//! a live run of the page with that cell's number of tasks.
//!
//! The reader takes only the fields it shows from the merged file and checks its shape, so a
//! damaged file gets a message instead of a broken page.

use gpicl_core::Curve;
use serde::Deserialize;

/// One run of a merged sweep, as the page shows it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Cell {
    /// Run index (the last axis varies fastest).
    pub index: usize,
    /// Its value on each axis, as labels (`2^6`, `unlimited`, `128`).
    pub values: Vec<String>,
    /// Steps trained.
    pub steps: usize,
    /// Seen-task accuracy over the last quarter of positions.
    pub seen_last: f32,
    /// Unseen-task accuracy over the last quarter of positions.
    pub unseen_last: f32,
    /// In-context gain on unseen tasks.
    pub gain: f32,
    /// The phase, in `snake_case` (`general_learning`, ...).
    pub phase: String,
    /// Seen tasks, unseen tasks, unseen dataset.
    pub curves: Vec<Curve>,
}

#[derive(Deserialize)]
struct Axis {
    path: String,
    values: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct Spec {
    name: String,
    axes: Vec<Axis>,
}

#[derive(Deserialize)]
struct Merged {
    spec: Spec,
    rows: Vec<Cell>,
}

/// A merged sweep laid out as a grid: the first axis across, the second (if any) down.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseGrid {
    /// The sweep's name.
    pub name: String,
    /// Config path of the columns' axis and of the rows' axis (if any).
    pub axes: Vec<String>,
    /// Labels of the columns.
    pub columns: Vec<String>,
    /// Labels of the rows (one empty label for a one-axis sweep).
    pub rows: Vec<String>,
    /// `cells[row][column]`.
    pub cells: Vec<Vec<Cell>>,
}

impl PhaseGrid {
    /// Reads a `merged.json` written by `gpicl sweep merge`: one or two axes, every run present
    /// once, three curves each.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let m: Merged =
            serde_json::from_str(text).map_err(|e| format!("not a merged sweep: {e}"))?;
        let axes = &m.spec.axes;
        if axes.is_empty() || axes.len() > 2 || axes.iter().any(|a| a.values.is_empty()) {
            return Err("the explorer shows sweeps of one or two axes".into());
        }
        let (n_cols, n_rows) = (
            axes[0].values.len(),
            axes.get(1).map_or(1, |a| a.values.len()),
        );
        if m.rows.len() != n_cols * n_rows {
            return Err(format!(
                "{} runs for a {n_cols}×{n_rows} grid",
                m.rows.len()
            ));
        }
        let mut cells: Vec<Vec<Option<Cell>>> = vec![vec![None; n_cols]; n_rows];
        for cell in m.rows {
            let (c, r) = (cell.index / n_rows, cell.index % n_rows);
            if c >= n_cols || cell.values.len() != axes.len() || cell.curves.len() != 3 {
                return Err(format!("run {}: does not fit the sweep", cell.index));
            }
            if cells[r][c].replace(cell).is_some() {
                return Err("a run appears twice".into());
            }
        }
        let cells: Vec<Vec<Cell>> = cells
            .into_iter()
            .map(|row| row.into_iter().collect::<Option<Vec<Cell>>>())
            .collect::<Option<_>>()
            .ok_or("a run is missing")?;
        Ok(PhaseGrid {
            name: m.spec.name,
            axes: axes.iter().map(|a| a.path.clone()).collect(),
            columns: cells[0].iter().map(|c| c.values[0].clone()).collect(),
            rows: cells
                .iter()
                .map(|r| r[0].values.get(1).cloned().unwrap_or_default())
                .collect(),
            cells,
        })
    }

    /// The run at `index`, if any.
    pub fn cell(&self, index: usize) -> Option<&Cell> {
        self.cells.iter().flatten().find(|c| c.index == index)
    }
}

/// The page's number-of-tasks setting for a task-pool label: `2^k` → `k`, `unlimited` →
/// `max_log2 + 1` (see `settings::Field::Tasks`); `None` for anything else.
pub fn tasks_setting(label: &str, max_log2: u32) -> Option<String> {
    match label {
        "unlimited" => Some((max_log2 + 1).to_string()),
        _ => label
            .strip_prefix("2^")?
            .parse::<u32>()
            .ok()
            .filter(|k| *k <= max_log2)
            .map(|k| k.to_string()),
    }
}

/// A phase's name for people.
pub fn phase_name(phase: &str) -> &'static str {
    match phase {
        "general_learning" => "general learning",
        "instance_memorization" => "instance memorization",
        "task_memorization" => "task memorization",
        _ => "no learning",
    }
}

#[cfg(target_arch = "wasm32")]
pub use view::PhaseExplorer;

#[cfg(target_arch = "wasm32")]
mod view {
    use yew::prelude::*;

    use super::{PhaseGrid, phase_name, tasks_setting};
    use crate::fetch::fetch_bytes;
    use crate::settings::MAX_TASKS_LOG2;
    use crate::widgets::curves_figure;

    /// Where the shipped sweep is, relative to the page.
    const SWEEP_URL: &str = "sweeps/phase-browser.json";

    /// Properties of [`PhaseExplorer`].
    #[derive(Properties, PartialEq)]
    pub struct Props {
        /// Start a live run with this number-of-tasks setting.
        pub on_try: Callback<String>,
    }

    /// Messages of [`PhaseExplorer`].
    pub enum Msg {
        Loaded(Result<PhaseGrid, String>),
        Select(usize),
    }

    /// The phase explorer component.
    pub struct PhaseExplorer {
        grid: Option<Result<PhaseGrid, String>>,
        selected: Option<usize>,
    }

    impl Component for PhaseExplorer {
        type Message = Msg;
        type Properties = Props;

        fn create(ctx: &Context<Self>) -> Self {
            ctx.link().send_future(async {
                let grid = async {
                    let bytes = fetch_bytes(SWEEP_URL).await?;
                    let text = String::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
                    PhaseGrid::from_json(&text)
                };
                Msg::Loaded(grid.await)
            });
            Self {
                grid: None,
                selected: None,
            }
        }

        fn update(&mut self, _ctx: &Context<Self>, msg: Msg) -> bool {
            match msg {
                Msg::Loaded(grid) => self.grid = Some(grid),
                Msg::Select(i) => self.selected = Some(i),
            }
            true
        }

        fn view(&self, ctx: &Context<Self>) -> Html {
            let grid = match &self.grid {
                None => {
                    return html! { <section id="explorer" class="explorer"><h2>{"Phase explorer"}</h2><p class="hint">{"Loading the sweep…"}</p></section> };
                }
                Some(Err(e)) => {
                    return html! { <section id="explorer" class="explorer"><h2>{"Phase explorer"}</h2><p class="error">{format!("The shipped sweep did not load: {e}")}</p></section> };
                }
                Some(Ok(g)) => g,
            };
            let link = ctx.link();
            let selected = self.selected.and_then(|i| grid.cell(i));
            html! {
                <section id="explorer" class="explorer" aria-label="Phase explorer">
                    <h2>{"Phase explorer: from memorization to general learning"}</h2>
                    <p class="hint">{format!(
                        "Sweep \"{}\" made by the CLI (`gpicl sweep run docs/sweeps/{}.json`, merged by `gpicl sweep merge`; {} steps a run on an H100). Columns: {}; rows: {}. Each cell: accuracy over the last quarter of positions on the run's seen and unseen tasks. Click a cell for its curves.",
                        grid.name, grid.name, grid.cells[0][0].steps, grid.axes[0], grid.axes.get(1).map_or("–", String::as_str)
                    )}</p>
                    <table class="phase-grid">
                        <thead><tr><th scope="col">{grid.axes.get(1).cloned().unwrap_or_default()}{" \\ "}{&grid.axes[0]}</th>
                            { for grid.columns.iter().map(|c| html! { <th scope="col">{c}</th> }) }</tr></thead>
                        <tbody>
                        { for grid.cells.iter().zip(&grid.rows).map(|(row, label)| html! {
                            <tr><th scope="row">{label}</th>
                            { for row.iter().map(|cell| {
                                let i = cell.index;
                                html! {
                                    <td><button id={format!("cell-{i}")} class={classes!("cell", cell.phase.replace('_', "-"))}
                                        aria-pressed={(Some(i) == self.selected).to_string()}
                                        title={phase_name(&cell.phase)}
                                        onclick={link.callback(move |_| Msg::Select(i))}>
                                        <span>{format!("seen {:.0}%", 100.0 * cell.seen_last)}</span>
                                        <span>{format!("unseen {:.0}%", 100.0 * cell.unseen_last)}</span>
                                    </button></td>
                                }
                            }) }
                            </tr>
                        }) }
                        </tbody>
                    </table>
                    <p class="legend">
                        <span class="cell instance-memorization">{"instance memorization"}</span>
                        <span class="cell task-memorization">{"task memorization"}</span>
                        <span class="cell general-learning">{"general learning"}</span>
                        <span class="cell no-learning">{"no learning"}</span>
                    </p>
                    if let Some(cell) = selected {
                        <div id="explorer-run" data-phase={cell.phase.clone()}>
                            { curves_figure(
                                "explorer-chart",
                                &format!("Run {}: {} — {}", cell.index, cell.values.join(", "), phase_name(&cell.phase)),
                                &cell.curves,
                                &[],
                                10,
                                &format!("After {} meta-training steps; in-context gain on unseen tasks {} points.", cell.steps, crate::chart::signed(100.0 * cell.gain, 0)),
                            ) }
                            if let Some(setting) = tasks_setting(&cell.values[0], MAX_TASKS_LOG2) {
                                <button id="explorer-try" onclick={
                                    let on_try = ctx.props().on_try.clone();
                                    move |_| on_try.emit(setting.clone())
                                }>{format!("Meta-train live here with {} tasks", cell.values[0])}</button>
                            }
                        </div>
                    }
                </section>
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sweep the page ships is the CLI's merged output, and the explorer reads it.
    #[test]
    fn the_shipped_sweep_is_the_cli_output_and_reads_as_a_grid() {
        let root = crate::repo_root();
        let shipped = std::fs::read_to_string(root.join("web/sweeps/phase-browser.json")).unwrap();
        let made =
            std::fs::read_to_string(root.join("docs/results/phase-browser-h100/merged.json"))
                .unwrap();
        assert_eq!(shipped, made, "web/sweeps/ is a copy of docs/results/");
        let grid = PhaseGrid::from_json(&shipped).unwrap();
        assert_eq!(grid.columns.len(), 8);
        assert_eq!(grid.rows, vec!["64", "128"]);
        assert_eq!(grid.cells[0][0].phase, "instance_memorization");
        assert_eq!(grid.cells[1][7].phase, "general_learning");
    }

    #[test]
    fn task_labels_map_to_the_setting() {
        assert_eq!(tasks_setting("2^6", 16).as_deref(), Some("6"));
        assert_eq!(tasks_setting("unlimited", 16).as_deref(), Some("17"));
        assert_eq!(tasks_setting("2^30", 16), None);
        assert_eq!(tasks_setting("64", 16), None);
    }

    #[test]
    fn damaged_files_are_refused_with_a_message() {
        assert!(PhaseGrid::from_json("{").is_err());
        assert!(PhaseGrid::from_json(r#"{"spec":{"name":"x","axes":[]},"rows":[]}"#).is_err());
        let one = |index: usize| {
            serde_json::json!({"index": index, "values": [format!("2^{index}")], "steps": 1,
                "seen_last": 0.5, "unseen_last": 0.1, "gain": 0.0, "phase": "no_learning",
                "curves": [{"name": "a", "accuracy": [0.1], "loss": [2.3]},
                           {"name": "b", "accuracy": [0.1], "loss": [2.3]},
                           {"name": "c", "accuracy": [0.1], "loss": [2.3]}]})
        };
        let file = |rows: Vec<serde_json::Value>| {
            serde_json::json!({"spec": {"name": "x", "axes": [{"path": "tasks.pool", "values": [1, 2]}]}, "rows": rows}).to_string()
        };
        let grid = PhaseGrid::from_json(&file(vec![one(0), one(1)])).unwrap();
        assert_eq!(grid.columns, vec!["2^0", "2^1"]);
        assert_eq!(grid.rows, vec![""]);
        assert_eq!(grid.cell(1).unwrap().values[0], "2^1");
        assert!(
            PhaseGrid::from_json(&file(vec![one(0)])).is_err(),
            "missing run"
        );
        assert!(
            PhaseGrid::from_json(&file(vec![one(0), one(0)])).is_err(),
            "twice"
        );
        assert!(
            PhaseGrid::from_json(&file(vec![one(0), one(5)])).is_err(),
            "outside"
        );
    }
}
