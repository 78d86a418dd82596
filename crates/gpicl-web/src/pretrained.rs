//! The shipped pretrained learner's figure: its title, caption and chart, the same for the
//! page's component and for the static copy that `index.html` carries
//! (`web/pretrained/curves.html`, kept equal to what this module makes by a test), so its
//! curves are on screen while the WebAssembly is still loading.

use gpicl_core::Manifest;
use gpicl_core::eval::Verdict;
use gpicl_core::task::TablePrior;

use crate::chart::{accuracy_chart, escape, signed};

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
        match m.config.tasks.table_prior {
            TablePrior::Net => {}
            TablePrior::Mixed => text.push_str(" (networks, linear maps, parities, rings)"),
            TablePrior::Categorical => {
                text.push_str(" (networks, linear maps, parities, rings; some columns categories)")
            }
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

/// The figure as static HTML (chart, caption and the held-out suite's table; the page's
/// component adds the table of numbers once the WebAssembly runs).
pub fn static_figure(m: &Manifest) -> String {
    let chart = accuracy_chart(&title(m), &m.curves, &[], m.config.model.n_classes);
    format!(
        "<div class=\"pretrained\"><figure id=\"{FIGURE_ID}\" class=\"chart-figure\">{}<figcaption>{}</figcaption></figure>{}</div>\n",
        chart.to_svg(),
        escape(&caption(m)),
        suite_html(m)
    )
}

/// The held-out suite table's element id.
pub const SUITE_ID: &str = "pretrained-suite";

/// The held-out suite's figures the manifest records (`gpicl suite --record`), folded under
/// the figure: one row per dataset and their mean, the learner (alone and with its views)
/// beside the baselines fit on the same contexts, then (when recorded) the learner minus each
/// baseline on the mean, paired by sequence, with its standard error: no figure is marked
/// best, the paired differences say which gaps are more than noise. Empty when the manifest
/// records none, or rows that do not have the same columns.
pub fn suite_html(m: &Manifest) -> String {
    let Some(s) = &m.suite else {
        return String::new();
    };
    let Some(first) = s.rows.first() else {
        return String::new();
    };
    let names: Vec<&str> = first.baselines.iter().map(|b| b.0.as_str()).collect();
    let with_views = s.views > 1;
    // Each row's figures: the learner, with views, then the baselines.
    let mut rows: Vec<(String, Vec<f32>)> = Vec::new();
    for r in &s.rows {
        let same = r
            .baselines
            .iter()
            .map(|b| b.0.as_str())
            .eq(names.iter().copied());
        if !same || r.views.is_some() != with_views {
            return String::new();
        }
        let figures = std::iter::once(r.learner)
            .chain(r.views)
            .chain(r.baselines.iter().map(|b| b.1))
            .collect();
        // A file's name without its suffix, so that the column stays narrow on a phone.
        let name = r.dataset.trim_end_matches(".gz").trim_end_matches(".csv");
        rows.push((escape(name), figures));
    }
    let columns = rows[0].1.len();
    let mean = (0..columns)
        .map(|i| rows.iter().map(|r| r.1[i]).sum::<f32>() / rows.len() as f32)
        .collect();
    rows.push(("mean".into(), mean));
    let mut header = vec!["dataset".to_string(), "learner".into()];
    if with_views {
        header.push(format!("{} views", s.views));
    }
    header.extend(names.iter().map(|n| escape(n)));
    let body: String = rows
        .iter()
        .map(|(name, figures)| {
            let cells: String = figures
                .iter()
                .map(|v| format!("<td>{:.1}</td>", 100.0 * v))
                .collect();
            format!("<tr><th scope=\"row\">{name}</th>{cells}</tr>")
        })
        .collect();
    let views = if with_views {
        format!(
            " \u{201c}{} views\u{201d}: the learner's prediction averaged over {} projections \
             and renamings of each sequence.",
            s.views, s.views
        )
    } else {
        String::new()
    };
    format!(
        "<details id=\"{SUITE_ID}\" class=\"suite\"><summary>On {} datasets it never saw, beside \
         learners fit on the same examples</summary><table><caption>accuracy (%)</caption><thead><tr>{}</tr></thead><tbody>{body}\
         </tbody></table>{}<p class=\"hint\">Mean accuracy over the last quarter of each sequence of \
         unseen tasks (a random projection to the learner's inputs, the classes renamed): \
         synthetic datasets made from seeds and UCI tables (handwritten digits; cars, \
         tic-tac-toe endgames, votes and mushrooms, of categories), none of them trained on; 1-NN, \
         logistic regression and the MLP are fit on the examples before each position, the \
         ones the learner has in its context.{views} Measured when it was made: <code>{}</code>\
         </p></details>",
        rows.len() - 1,
        header
            .iter()
            .map(|h| format!("<th scope=\"col\">{h}</th>"))
            .collect::<String>(),
        paired_html(s),
        escape(&s.command)
    )
}

/// The record's paired differences as a sentence: the learner minus each baseline on the mean,
/// and how it stands to the best of them (the smallest difference). Empty in records made
/// before they were kept.
fn paired_html(s: &gpicl_core::manifest::SuiteRecord) -> String {
    let Some((name, d, e)) = s.paired.iter().min_by(|a, b| a.1.total_cmp(&b.1)) else {
        return String::new();
    };
    let learner = if s.views > 1 {
        format!("the learner with {} views", s.views)
    } else {
        "the learner".into()
    };
    let each: Vec<String> = s
        .paired
        .iter()
        .map(|(n, d, e)| format!("{} {} ± {:.1}", escape(n), signed(100.0 * d, 1), 100.0 * e))
        .collect();
    let stands = match Verdict::of(*d, *e) {
        Verdict::Above => "ahead of",
        Verdict::Level => "level, within twice its standard error, with",
        Verdict::Below => "behind",
    };
    format!(
        "<p id=\"{SUITE_ID}-paired\">On the mean, paired by sequence (the baselines' sequences and \
         positions, the learner read there too), {learner} minus each baseline: {} points (± one \
         standard error). So it is {stands} the best of them, {}.</p>",
        each.join(", "),
        escape(name)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The suite's table: a row per recorded dataset and the mean, the learner's columns and
    /// the baselines', the paired differences on the mean when recorded; nothing for rows that
    /// disagree on columns.
    #[test]
    fn the_held_out_suite_is_a_table_of_the_recorded_figures() {
        let mut m = Manifest::from_json(MANIFEST_JSON).unwrap();
        let record = m
            .suite
            .clone()
            .expect("the shipped manifest records the suite");
        let html = suite_html(&m);
        assert!(static_figure(&m).contains(&html));
        assert_eq!(html.matches("<tr>").count(), 1 + record.rows.len() + 1);
        assert_eq!(html.matches("<th scope=\"col\">").count(), 2 + 1 + 3);
        assert!(html.contains(&format!("On {} datasets it never saw", record.rows.len())));
        // Two made-up rows: the mean is theirs, and no figure is marked best. Figures are in
        // percent (the caption says so) and a file's name loses its suffix, so that the table
        // fits a phone's width.
        let row =
            |dataset: &str, learner: f32, views: f32, knn: f32| gpicl_core::manifest::SuiteRow {
                dataset: dataset.into(),
                learner,
                views: Some(views),
                baselines: vec![("1-NN".into(), knn)],
            };
        m.suite = Some(gpicl_core::manifest::SuiteRecord {
            command: "gpicl suite --views 8".into(),
            views: 8,
            rows: vec![row("a<b", 0.5, 0.6, 0.7), row("c.csv.gz", 0.9, 0.8, 0.6)],
            paired: vec![("1-NN".into(), 0.05, 0.02)],
        });
        let html = suite_html(&m);
        assert!(
            html.contains(
                "<tr><th scope=\"row\">a&lt;b</th><td>50.0</td><td>60.0</td><td>70.0</td></tr>"
            ),
            "{html}"
        );
        assert!(html.contains("<caption>accuracy (%)</caption>"), "{html}");
        assert!(html.contains("<th scope=\"row\">c</th>"), "{html}");
        assert!(
            html.contains(
                "<tr><th scope=\"row\">mean</th><td>70.0</td><td>70.0</td><td>65.0</td></tr>"
            ),
            "{html}"
        );
        // The paired differences, and the verdict on the best baseline: ahead only beyond
        // twice the standard error.
        assert!(
            html.contains("the learner with 8 views minus each baseline: 1-NN +5.0 ± 2.0 points"),
            "{html}"
        );
        assert!(
            html.contains("So it is ahead of the best of them, 1-NN."),
            "{html}"
        );
        m.suite.as_mut().unwrap().paired[0].1 = 0.03;
        assert!(suite_html(&m).contains(
            "So it is level, within twice its standard error, with the best of them, 1-NN."
        ));
        // Behind: the difference with a true minus sign.
        m.suite.as_mut().unwrap().paired[0].1 = -0.05;
        let html = suite_html(&m);
        assert!(html.contains("1-NN \u{2212}5.0 ± 2.0 points"), "{html}");
        assert!(
            html.contains("So it is behind the best of them, 1-NN."),
            "{html}"
        );
        m.suite.as_mut().unwrap().paired.clear();
        assert!(!suite_html(&m).contains("paired by sequence"));
        // A row without the views' figure, or with other baselines: no table rather than a wrong one.
        let suite = m.suite.clone();
        m.suite.as_mut().unwrap().rows[1].views = None;
        assert_eq!(suite_html(&m), "");
        m.suite = suite;
        m.suite.as_mut().unwrap().rows[1].baselines[0].0 = "2-NN".into();
        assert_eq!(suite_html(&m), "");
        m.suite = None;
        assert_eq!(suite_html(&m), "");
    }

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
        m.config.tasks.table_prior = TablePrior::Net;
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
        m.config.tasks.table_prior = TablePrior::Mixed;
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
        m.config.tasks.table_prior = TablePrior::Categorical;
        assert!(caption(&m).contains("parities, rings; some columns categories)."));
    }

    /// `index.html` inlines `web/pretrained/curves.html`: it must be what this module makes of
    /// the shipped manifest. After `gpicl package` (a new learner), rewrite it with
    /// `GPICL_BLESS=1 cargo test --release --workspace --lib pretrained`.
    #[test]
    fn index_html_carries_the_current_figure() {
        let m = Manifest::from_json(MANIFEST_JSON).unwrap();
        let expected = static_figure(&m);
        let path = crate::repo_root().join("web/pretrained/curves.html");
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
