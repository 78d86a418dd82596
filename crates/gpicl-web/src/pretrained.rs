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
    let steps: usize = stages(m).iter().map(|s| s.0).sum();
    format!("Pretrained learner ({steps} meta-training steps)")
}

/// The stages that made the learner, first to last: steps, seconds, machine.
fn stages(m: &Manifest) -> Vec<(usize, f64, &str)> {
    let mut stages = vec![(m.steps, m.train_time_s, m.hardware.as_str())];
    let mut init = m.init.as_ref();
    while let Some(i) = init {
        stages.push((
            i.steps.unwrap_or(0),
            i.train_time_s.unwrap_or(0.0),
            i.hardware.as_deref().unwrap_or("another machine"),
        ));
        init = i.before.as_deref();
    }
    stages.reverse();
    stages
}

/// How the learner was trained: each stage's steps, time and machine (meta-training, then each
/// fine-tuning), and the last stage's share of random tables.
fn training(m: &Manifest) -> String {
    let mut text = String::new();
    for (k, &(steps, seconds, hardware)) in stages(m).iter().enumerate() {
        text.push_str(match k {
            0 => "meta-trained for ",
            1 => ", then fine-tuned for ",
            _ => ", then for ",
        });
        text.push_str(&format!(
            "{steps} steps ({:.1} min) on {hardware}",
            seconds / 60.0
        ));
    }
    let tables = m.config.tasks.random_tables;
    if m.init.is_some() && tables > 0.0 {
        text.push_str(&format!(
            " with {:.0} % of each batch random tables",
            100.0 * tables
        ));
        if m.config.tasks.table_prior == gpicl_core::task::TablePrior::Mixed {
            text.push_str(" (networks, linear maps, parities, rings)");
        }
    }
    text
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

    /// A fine-tuned learner's title counts every stage's steps; its caption names each.
    #[test]
    fn a_fine_tuned_learner_says_both_stages() {
        let mut m = Manifest::from_json(MANIFEST_JSON).unwrap();
        m.init = None;
        m.config.tasks.random_tables = 0.5;
        m.config.tasks.table_prior = gpicl_core::task::TablePrior::Net;
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
            before: None,
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
        // A learner fine-tuned twice: three stages, first to last, and the last one's prior.
        let first = m.init.take().map(Box::new);
        m.init = Some(gpicl_core::results::Init {
            from: "web/pretrained".into(),
            command: None,
            steps: Some(500),
            train_time_s: Some(600.0),
            hardware: Some("a CPU".into()),
            before: first,
        });
        m.config.tasks.table_prior = gpicl_core::task::TablePrior::Mixed;
        assert_eq!(title(&m), "Pretrained learner (2761 meta-training steps)");
        assert!(
            caption(&m).contains(
                "meta-trained for 1261 steps (4.0 min) on a GPU, then fine-tuned for 500 steps \
                 (10.0 min) on a CPU, then for 1000 steps (30.0 min) on a laptop with 50 % of \
                 each batch random tables (networks, linear maps, parities, rings)."
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
