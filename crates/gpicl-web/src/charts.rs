//! The training charts: the learner's accuracy curves (with the baselines and an overlaid
//! results file), the loss, the curve's history and the two-clocks heatmap; and the shipped
//! learner's figure. All drawn from the run's record (a [`Results`]).

use std::rc::Rc;

use gpicl_core::{Curve, Manifest, Results};
use yew::prelude::*;

use crate::chart::{
    BaselineCurve, Chart, PALETTE, Series, accuracy_points, heatmap_rows, heatmap_svg, ramp,
};
use crate::pretrained;
use crate::record::losses;
use crate::widgets::{curves_figure, figure, svg_html};

/// Most loss points drawn (longer histories are averaged into buckets).
const MAX_LOSS_POINTS: usize = 300;
/// Most snapshots in the curve-history plot.
const MAX_HISTORY: usize = 8;

/// The charts' inputs: shared, compared by identity (the page makes a new one on change).
#[derive(Properties, Clone)]
pub struct ChartsProps {
    /// The run's record, once a run exists.
    pub record: Option<Rc<Results>>,
    /// 1-NN and logistic regression on the run's unseen tasks.
    pub baselines: Rc<Vec<BaselineCurve>>,
    /// Someone else's curves (an uploaded results file): a label and the curves.
    pub overlay: Option<Rc<(String, Vec<Curve>)>>,
}

fn same<T>(a: &Option<Rc<T>>, b: &Option<Rc<T>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => Rc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    }
}

impl PartialEq for ChartsProps {
    fn eq(&self, other: &Self) -> bool {
        same(&self.record, &other.record)
            && Rc::ptr_eq(&self.baselines, &other.baselines)
            && same(&self.overlay, &other.overlay)
    }
}

fn n_classes(r: &Results) -> usize {
    r.config.model.n_classes
}

/// What the charts drawn from the evaluations depend on: they are drawn again only when it
/// changes (an evaluation, another run, new baselines or overlay), not at every report of
/// training steps, which would rebuild hundreds of table cells and heatmap cells each time.
/// The run's config stands for the run: the same config gives the same curves.
type EvalKey = Option<(gpicl_core::RunConfig, usize, Option<usize>, usize, usize)>;

fn eval_key(p: &ChartsProps) -> EvalKey {
    p.record.as_ref().map(|r| {
        (
            r.config.clone(),
            r.history.len(),
            r.history.last().map(|e| e.step),
            Rc::as_ptr(&p.baselines) as usize,
            p.overlay.as_ref().map_or(0, |o| Rc::as_ptr(o) as usize),
        )
    })
}

/// The learner's accuracy-vs-position curves at its latest evaluation.
#[function_component(AccuracyChart)]
pub fn accuracy_chart(p: &ChartsProps) -> Html {
    let props = p.clone();
    (*use_memo(eval_key(p), move |_| accuracy_figure(&props))).clone()
}

fn accuracy_figure(p: &ChartsProps) -> Html {
    let Some((r, last)) = p.record.as_ref().and_then(|r| Some((r, r.history.last()?))) else {
        return html! { <figure id="acc-chart" class="empty"><figcaption>{"Your learner's in-context accuracy (meta-trained from scratch in this tab) appears after its first evaluation."}</figcaption></figure> };
    };
    let mut others = (*p.baselines).clone();
    if let Some(o) = &p.overlay {
        let (label, curves) = &**o;
        others.extend(curves.iter().map(|c| {
            let points = c.accuracy.iter().enumerate().map(|(j, &a)| (j + 1, a));
            (format!("{} ({label})", c.name), points.collect())
        }));
    }
    curves_figure(
        "acc-chart",
        &format!("Your learner, from scratch: step {}", last.step),
        &last.curves,
        &others,
        n_classes(r),
        &format!(
            "Accuracy on the example at each position, after meta-training step {} (a fixed evaluation set per curve).",
            last.step
        ),
    )
}

/// The loss, the curve's history and the heatmap.
#[function_component(TrainingCharts)]
pub fn training_charts(p: &ChartsProps) -> Html {
    let record = p.record.clone();
    let evals = use_memo(eval_key(p), move |_| {
        record.map_or_else(
            Html::default,
            |r| html! { <>{ history_chart(&r) }{ heatmap(&r) }</> },
        )
    });
    let Some(r) = &p.record else {
        return html! { <div class="plots">{ loss_chart(None) }</div> };
    };
    html! {
        <div class="plots">
            { loss_chart(Some(r)) }
            { (*evals).clone() }
        </div>
    }
}

fn loss_chart(r: Option<&Results>) -> Html {
    let Some(r) = r.filter(|r| !r.loss_log.is_empty()) else {
        return html! { <figure id="loss-chart" class="empty"><figcaption>{"The meta-training loss appears after the first step."}</figcaption></figure> };
    };
    let losses = losses(r);
    let bucket = losses.len().div_ceil(MAX_LOSS_POINTS);
    let points: Vec<(f64, f64)> = losses
        .chunks(bucket)
        .enumerate()
        .map(|(i, c)| {
            (
                ((i * bucket) + c.len()) as f64,
                c.iter().map(|&l| l as f64).sum::<f64>() / c.len() as f64,
            )
        })
        .collect();
    let n_classes = n_classes(r);
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
    let c = &r.config;
    if let (Some(k), Some(n)) = (
        c.tasks.classes_per_sequence,
        c.tasks.classes_curriculum_steps,
    ) {
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
        vec!["loss".into()],
        rows,
    )
}

/// Accuracy on unseen tasks by meta-training step (down) and position (across): the
/// weights' clock and the context's clock in one picture.
fn heatmap(r: &Results) -> Html {
    let evals = &r.history;
    if evals.len() < 2 {
        return html! {};
    }
    let unseen = 1.min(evals[0].curves.len() - 1);
    let rows: Vec<(String, Vec<f32>)> = heatmap_rows(evals.len())
        .into_iter()
        .map(|i| &evals[i])
        .map(|e| {
            (
                format!("step {}", e.step),
                e.curves[unseen].accuracy.clone(),
            )
        })
        .collect();
    let name = &evals[0].curves[unseen].name;
    let svg = heatmap_svg(
        &format!("Two clocks: {name}, by meta-training step and by examples seen"),
        &rows,
        1.0 / n_classes(r) as f32,
    );
    html! {
        <figure id="heatmap-chart" class="chart-figure" data-rows={rows.len().to_string()}>
            { svg_html(svg) }
            <figcaption>{"Each row is one evaluation during meta-training (earliest at the top; a long run shows every 2nd, 4th, … and the latest), each column a position in the sequence. Learning in the weights moves down the picture; learning in context moves across it."}</figcaption>
        </figure>
    }
}

fn history_chart(r: &Results) -> Html {
    let evals = &r.history;
    if evals.len() < 2 {
        return html! {};
    }
    let n = evals.len();
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
    let unseen = 1.min(evals[0].curves.len() - 1);
    let series: Vec<Series> = picks
        .iter()
        .zip(colors)
        .map(|(&i, color)| {
            let e = &evals[i];
            Series {
                name: format!("step {}", e.step),
                color,
                points: accuracy_points(&e.curves[unseen]),
            }
        })
        .collect();
    let n_classes = n_classes(r);
    let name = evals[0].curves[unseen].name.clone();
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
    let len = evals[0].curves[unseen].accuracy.len();
    let header: Vec<String> = picks
        .iter()
        .map(|&i| format!("step {}", evals[i].step))
        .collect();
    let rows: Vec<Vec<String>> = (0..len)
        .map(|j| {
            std::iter::once((j + 1).to_string())
                .chain(picks.iter().map(|&i| {
                    let a = &evals[i].curves[unseen].accuracy;
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
        header,
        rows,
    )
}

/// The shipped learner's figure's inputs.
#[derive(Properties, PartialEq)]
pub struct PretrainedProps {
    /// Its manifest (or why it did not load).
    pub manifest: Rc<Result<Manifest, String>>,
    /// Milliseconds from page load to the figure on screen.
    pub loaded_ms: Option<f64>,
}

/// The shipped learner's curves, from its manifest.
#[function_component(PretrainedFigure)]
pub fn pretrained_figure(p: &PretrainedProps) -> Html {
    let m = match &*p.manifest {
        Err(e) => {
            return html! { <figure id="pretrained-chart" class="empty"><figcaption class="error">{format!("The pretrained learner's manifest did not load: {e}")}</figcaption></figure> };
        }
        Ok(m) => m,
    };
    let mut caption = pretrained::caption(m);
    if let Some(ms) = p.loaded_ms {
        caption.push_str(&format!(
            " The page's code drew it {:.2} s after load (the HTML, before).",
            ms / 1000.0
        ));
    }
    html! {
        <div data-loaded-ms={p.loaded_ms.map(|v| format!("{v:.0}"))} class="pretrained">
            { curves_figure(
                pretrained::FIGURE_ID,
                &pretrained::title(m),
                &m.curves,
                &[],
                m.config.model.n_classes,
                &caption,
            ) }
            { Html::from_html_unchecked(AttrValue::from(pretrained::suite_html(m))) }
        </div>
    }
}
