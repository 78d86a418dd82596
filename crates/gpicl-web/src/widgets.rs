//! Small pieces of markup shared by the page's parts.

use yew::prelude::*;

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
