//! Small pieces of markup shared by the page's parts.

use gpicl_core::Curve;
use yew::prelude::*;

use crate::chart::{BaselineCurve, Chart, accuracy_chart};
use crate::svg::{self, Element, Node};

/// A chart's SVG text as Yew nodes ([`crate::svg`]): a redraw updates what changed instead of
/// making every element anew. Text that is not the subset `chart.rs` writes (never expected)
/// is inserted as markup.
pub fn svg_html(text: String) -> Html {
    match svg::parse(&text) {
        Ok(root) => element_html(&root),
        Err(_) => Html::from_html_unchecked(AttrValue::from(text)),
    }
}

fn element_html(e: &Element) -> Html {
    let mut tag = yew::virtual_dom::VTag::new(e.tag.clone());
    let mut attributes = yew::virtual_dom::Attributes::new();
    let map = attributes.get_mut_index_map();
    for (k, v) in &e.attributes {
        map.insert(
            AttrValue::from(k.clone()),
            yew::virtual_dom::AttributeOrProperty::Attribute(AttrValue::from(v.clone())),
        );
    }
    tag.set_attributes(attributes);
    tag.add_children(e.children.iter().map(|c| match c {
        Node::Element(e) => element_html(e),
        Node::Text(t) => Html::from(t.clone()),
    }));
    tag.into()
}

/// A class distribution as horizontal bars: the most probable class is highlighted and, when
/// known, the true one underlined. `data-predicted` carries the predicted class for tests.
pub fn bars(id: &str, probs: &[f32], names: &[String], truth: Option<usize>) -> Html {
    let predicted = gpicl_core::baselines::argmax(probs).unwrap_or(0);
    html! {
        <div id={id.to_string()} class="bars" data-predicted={predicted.to_string()}>
            { for probs.iter().zip(names).enumerate().map(|(i, (&v, name))| html! {
                <div class={classes!("bar", (i == predicted).then_some("predicted"), (Some(i) == truth).then_some("truth"))}>
                    <span class="bar-label">{name}</span>
                    <span class="bar-fill" style={format!("width: {:.1}%", v * 100.0)}></span>
                    <span class="bar-value">{format!("{:.0}%", v * 100.0)}</span>
                </div>
            }) }
        </div>
    }
}

/// Accuracy-vs-position curves as a chart (with chance) and the table of their numbers, with
/// baseline curves (measured at some positions only) drawn after them.
pub fn curves_figure(
    id: &str,
    title: &str,
    curves: &[Curve],
    baselines: &[BaselineCurve],
    n_classes: usize,
    caption: &str,
) -> Html {
    let chart = accuracy_chart(title, curves, baselines, n_classes);
    let header: Vec<String> = curves
        .iter()
        .map(|c| c.name.clone())
        .chain(baselines.iter().map(|b| b.0.clone()))
        .collect();
    let len = curves.first().map_or(0, |c| c.accuracy.len());
    let rows: Vec<Vec<String>> = (0..len)
        .map(|j| {
            std::iter::once((j + 1).to_string())
                .chain(curves.iter().map(|c| {
                    c.accuracy
                        .get(j)
                        .map_or("–".into(), |a| format!("{:.1}%", a * 100.0))
                }))
                .chain(baselines.iter().map(|(_, points)| {
                    points
                        .iter()
                        .find(|p| p.0 == j + 1)
                        .map_or("–".into(), |p| format!("{:.1}%", p.1 * 100.0))
                }))
                .collect()
        })
        .collect();
    figure(id, &chart, caption, "example", header, rows)
}

/// A chart with its caption and, folded, the table of its numbers ([`Numbers`]).
pub fn figure(
    id: &str,
    chart: &Chart,
    caption: &str,
    first: &str,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
) -> Html {
    html! {
        <figure id={id.to_string()} class="chart-figure">
            { svg_html(chart.to_svg()) }
            <figcaption>{caption}</figcaption>
            <Numbers first={AttrValue::from(first.to_string())} {header} {rows} />
        </figure>
    }
}

/// What [`Numbers`] shows: the first column's heading, the others', and the rows.
#[derive(Properties, PartialEq)]
pub struct NumbersProps {
    /// The first column's heading.
    pub first: AttrValue,
    /// The other columns' headings.
    pub header: Vec<String>,
    /// The rows, one string per cell.
    pub rows: Vec<Vec<String>>,
}

/// A figure's numbers, folded under "Numbers": the table exists only while it is open. The
/// loss chart is redrawn every second, and hundreds of rows nobody opened, remade each time,
/// cost the page's memory and its DOM's garbage collector.
#[function_component(Numbers)]
pub fn numbers(p: &NumbersProps) -> Html {
    let open = use_state_eq(|| false);
    let ontoggle = {
        let open = open.clone();
        Callback::from(move |e: Event| {
            if let Some(details) = e.target_dyn_into::<web_sys::HtmlDetailsElement>() {
                open.set(details.open());
            }
        })
    };
    html! {
        <details {ontoggle}>
            <summary>{"Numbers"}</summary>
            if *open {
                <table>
                    <thead><tr><th scope="col">{p.first.clone()}</th>{ for p.header.iter().map(|h| html! { <th scope="col">{h}</th> }) }</tr></thead>
                    <tbody>{ for p.rows.iter().map(|r| html! { <tr>{ for r.iter().map(|v| html! { <td>{v}</td> }) }</tr> }) }</tbody>
                </table>
            }
        </details>
    }
}
