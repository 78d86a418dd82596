//! The shipped pretrained learner's figure: its title, caption and chart, the same for the
//! page's component and for the static copy that `index.html` carries
//! (`web/pretrained/curves.html`, kept equal to what this module makes by a test), so its
//! curves are on screen while the WebAssembly is still loading.

use gpicl_core::Manifest;

use crate::chart::accuracy_chart;

/// The shipped learner's manifest, built into the page: its curves are drawn without a fetch.
/// The weights it names are fetched (and checked against it) at run time.
pub const MANIFEST_JSON: &str = include_str!("../../../web/pretrained/manifest.json");

/// The figure's element id.
pub const FIGURE_ID: &str = "pretrained-chart";

/// The chart's title.
pub fn title(m: &Manifest) -> String {
    format!("Pretrained learner ({} meta-training steps)", m.steps)
}

/// The figure's caption: what the learner is and how well it does at the 50th example.
pub fn caption(m: &Manifest) -> String {
    let at = |name: &str, k: usize| {
        m.curve(name)
            .and_then(|c| c.accuracy_at(k))
            .map_or("–".into(), |a| format!("{:.1}%", a * 100.0))
    };
    let md = &m.config.model;
    format!(
        "Shipped with the page, measured when it was made ({} sequences a curve): a Transformer \
         of d {}, {} layers, {} heads, meta-trained for {} steps ({:.1} min) on {}. At the 50th \
         example: unseen MNIST tasks {}, Fashion-MNIST {}.",
        m.config.eval.sequences,
        md.d_model,
        md.n_layers,
        md.n_heads,
        m.steps,
        m.train_time_s / 60.0,
        m.hardware,
        at("mnist unseen tasks", 50),
        at("fashion-mnist unseen tasks", 50)
    )
}

/// `text` with HTML's special characters escaped.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The figure as static HTML (chart and caption; the page's component adds the table of
/// numbers once the WebAssembly runs).
pub fn static_figure(m: &Manifest) -> String {
    let chart = accuracy_chart(&title(m), &m.curves, &[], m.config.model.n_classes);
    format!(
        "<div class=\"pretrained\"><figure id=\"{FIGURE_ID}\" class=\"chart-figure\">{}<figcaption>{}</figcaption></figure></div>\n",
        chart.to_svg(),
        escape(&caption(m))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_manifest_parses_and_its_figure_has_its_curves() {
        let m = Manifest::from_json(MANIFEST_JSON).unwrap();
        let html = static_figure(&m);
        assert_eq!(html.matches("class=\"series\"").count(), m.curves.len());
        assert!(html.contains(&escape(&caption(&m))));
        assert_eq!(escape("a<b & \"c\">"), "a&lt;b &amp; &quot;c&quot;&gt;");
    }

    /// `index.html` inlines `web/pretrained/curves.html`: it must be what this module makes of
    /// the shipped manifest. After `gpicl package` (a new learner), rewrite it with
    /// `GPICL_BLESS=1 cargo test --release --workspace --lib pretrained`.
    #[test]
    fn index_html_carries_the_current_figure() {
        let m = Manifest::from_json(MANIFEST_JSON).unwrap();
        let expected = static_figure(&m);
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../web/pretrained/curves.html");
        if std::env::var_os("GPICL_BLESS").is_some() {
            std::fs::write(&path, &expected).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == expected,
            "web/pretrained/curves.html is out of date: GPICL_BLESS=1 cargo test --release --workspace --lib pretrained"
        );
    }
}
