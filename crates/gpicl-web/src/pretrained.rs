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
    let before = m.init.as_ref().and_then(|i| i.steps).unwrap_or(0);
    format!(
        "Pretrained learner ({} meta-training steps)",
        before + m.steps
    )
}

/// How the learner was trained: its steps, time and machine, and for a fine-tuned learner those
/// of the learner it started from first.
fn training(m: &Manifest) -> String {
    let stage = |steps: usize, seconds: f64, hardware: &str| {
        format!("{steps} steps ({:.1} min) on {hardware}", seconds / 60.0)
    };
    let last = stage(m.steps, m.train_time_s, &m.hardware);
    let tables = m.config.tasks.random_tables;
    match &m.init {
        Some(init) => format!(
            "meta-trained for {}, then fine-tuned for {last}{}",
            stage(
                init.steps.unwrap_or(0),
                init.train_time_s.unwrap_or(0.0),
                init.hardware.as_deref().unwrap_or("another machine")
            ),
            if tables > 0.0 {
                format!(" with {:.0} % of each batch random tables", 100.0 * tables)
            } else {
                String::new()
            }
        ),
        None => format!("meta-trained for {last}"),
    }
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
         of d {}, {} layers, {} heads, {}. At the 50th example: unseen MNIST tasks {}, \
         Fashion-MNIST {}.",
        m.config.eval.sequences,
        md.d_model,
        md.n_layers,
        md.n_heads,
        training(m),
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

    /// A fine-tuned learner's title counts both stages' steps; its caption names both.
    #[test]
    fn a_fine_tuned_learner_says_both_stages() {
        let mut m = Manifest::from_json(MANIFEST_JSON).unwrap();
        m.init = None;
        m.config.tasks.random_tables = 0.5;
        m.steps = 1000;
        m.train_time_s = 1800.0;
        m.hardware = "a laptop".into();
        assert!(caption(&m).contains("meta-trained for 1000 steps (30.0 min) on a laptop."));
        m.init = Some(gpicl_core::results::Init {
            from: "web/pretrained".into(),
            command: None,
            steps: Some(1261),
            train_time_s: Some(240.0),
            hardware: Some("a GPU".into()),
        });
        assert_eq!(title(&m), "Pretrained learner (2261 meta-training steps)");
        assert!(
            caption(&m).contains(
                "meta-trained for 1261 steps (4.0 min) on a GPU, then fine-tuned for 1000 steps \
                 (30.0 min) on a laptop with 50 % of each batch random tables."
            ),
            "{}",
            caption(&m)
        );
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
