//! A dependency-free SVG of a run: accuracy against examples seen (latest evaluation) and the
//! training loss and accuracy at the last position against steps.

use std::fmt::Write;

use std::path::Path;

use anyhow::{Context, Result};

use crate::train_cmd::write_atomic;
use gpicl_core::Results;

/// Rewrites `run/curves.svg` from `run/results.json`.
pub fn redraw(run: &Path) -> Result<()> {
    let path = run.join("results.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let results = Results::from_json(&text).with_context(|| format!("in {}", path.display()))?;
    write_atomic(&run.join("curves.svg"), svg(&results).as_bytes())?;
    println!("wrote {}", run.join("curves.svg").display());
    Ok(())
}

const W: f64 = 420.0;
const H: f64 = 300.0;
const PAD: f64 = 45.0;
const COLORS: [&str; 3] = ["#1f77b4", "#d62728", "#2ca02c"];

struct Panel {
    x0: f64,
    xmax: f64,
    ymin: f64,
    ymax: f64,
}

impl Panel {
    fn px(&self, x: f64) -> f64 {
        self.x0 + PAD + (x / self.xmax.max(1e-9)) * (W - 2.0 * PAD)
    }
    fn py(&self, y: f64) -> f64 {
        H - PAD - (y - self.ymin) / (self.ymax - self.ymin).max(1e-9) * (H - 2.0 * PAD)
    }
    fn polyline(
        &self,
        svg: &mut String,
        points: impl Iterator<Item = (f64, f64)>,
        color: &str,
        dash: bool,
    ) {
        let pts: Vec<String> = points
            .map(|(x, y)| format!("{:.1},{:.1}", self.px(x), self.py(y)))
            .collect();
        let dash = if dash {
            " stroke-dasharray=\"4 3\""
        } else {
            ""
        };
        let _ = writeln!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="1.8"{dash} points="{}"/>"#,
            pts.join(" ")
        );
    }
    fn axes(
        &self,
        svg: &mut String,
        title: &str,
        xlabel: &str,
        yticks: &[f64],
        fmt: fn(f64) -> String,
    ) {
        let (l, r, b, t) = (
            self.px(0.0),
            self.px(self.xmax),
            self.py(self.ymin),
            self.py(self.ymax),
        );
        let _ = writeln!(
            svg,
            r##"<rect x="{l:.1}" y="{t:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="#999"/>"##,
            r - l,
            b - t
        );
        for &y in yticks {
            let _ = writeln!(
                svg,
                r##"<text x="{:.1}" y="{:.1}" text-anchor="end" font-size="10">{}</text><line x1="{l:.1}" x2="{r:.1}" y1="{2:.1}" y2="{2:.1}" stroke="#eee"/>"##,
                l - 4.0,
                self.py(y) + 3.0,
                fmt(y)
            );
        }
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">0</text><text x="{r:.1}" y="{1:.1}" text-anchor="middle" font-size="10">{}</text>"#,
            l,
            b + 13.0,
            self.xmax
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11">{xlabel}</text>"#,
            (l + r) / 2.0,
            b + 28.0
        );
        let _ = writeln!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="12" font-weight="bold">{title}</text>"#,
            (l + r) / 2.0,
            t - 10.0
        );
    }
}

fn pct(y: f64) -> String {
    format!("{:.0}%", 100.0 * y)
}

fn num(y: f64) -> String {
    format!("{y:.1}")
}

/// The SVG document for `results`.
pub fn svg(results: &Results) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" font-family="sans-serif">"#,
        2.0 * W,
        H + 20.0
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let seq = results.config.tasks.seq_len as f64;
    let chance = 1.0 / results.config.model.n_classes as f64;
    if let Some(last) = results.history.last() {
        let p = Panel {
            x0: 0.0,
            xmax: seq,
            ymin: 0.0,
            ymax: 1.0,
        };
        p.axes(
            &mut s,
            &format!("accuracy vs examples seen (step {})", last.step),
            "examples in context",
            &[0.0, 0.25, 0.5, 0.75, 1.0],
            pct,
        );
        p.polyline(
            &mut s,
            [(0.0, chance), (seq, chance)].into_iter(),
            "#777",
            true,
        );
        for (i, c) in last.curves.iter().enumerate() {
            p.polyline(
                &mut s,
                c.accuracy
                    .iter()
                    .enumerate()
                    .map(|(j, &a)| (j as f64 + 1.0, a as f64)),
                COLORS[i % 3],
                false,
            );
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" font-size="10" fill="{}">{}</text>"#,
                p.px(1.0) + 4.0,
                p.py(1.0) + 14.0 + 12.0 * i as f64,
                COLORS[i % 3],
                c.name
            );
        }
    }
    let steps = results.steps.max(1) as f64;
    let max_loss = results
        .loss_log
        .iter()
        .map(|&(_, l)| l as f64)
        .fold(2.5f64, f64::max)
        .min(5.0);
    let p = Panel {
        x0: W,
        xmax: steps,
        ymin: 0.0,
        ymax: max_loss,
    };
    p.axes(
        &mut s,
        "loss (black) and unseen accuracy at the end (red)",
        "step",
        &[0.0, 1.0, 2.0],
        num,
    );
    p.polyline(
        &mut s,
        results
            .loss_log
            .iter()
            .map(|&(x, l)| (x as f64, (l as f64).min(max_loss))),
        "#333",
        false,
    );
    let acc = Panel { ymax: 1.0, ..p };
    for y in [0.0, 0.5, 1.0] {
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" font-size="10" fill="{}">{}</text>"#,
            acc.px(steps) + 4.0,
            acc.py(y) + 3.0,
            COLORS[1],
            pct(y)
        );
    }
    for h in &results.history {
        if let Some(c) = h.curves.get(1)
            && let Some(&a) = c.accuracy.last()
        {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"/>"#,
                acc.px(h.step as f64),
                acc.py(a as f64),
                COLORS[1]
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpicl_core::EvalPoint;
    use gpicl_core::{Curve, RunConfig};

    #[test]
    fn svg_draws_every_curve_and_the_loss() {
        let curve = |name: &str| Curve {
            name: name.into(),
            accuracy: vec![0.1, 0.5, 0.9],
            loss: vec![2.3, 1.0, 0.5],
        };
        let results = Results {
            gpicl_version: "0".into(),
            burn_version: "0".into(),
            backend: "flex".into(),
            config: RunConfig::preset("tiny").unwrap(),
            train_time_s: 1.0,
            steps: 20,
            loss_log: vec![(10, 2.3), (20, 2.0)],
            history: vec![EvalPoint {
                step: 20,
                time_s: 1.0,
                train_loss: 2.0,
                curves: vec![curve("a"), curve("b"), curve("c")],
            }],
            init: None,
        };
        let s = svg(&results);
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        // Chance line, three curves and the loss line.
        assert_eq!(s.matches("<polyline").count(), 5);
        assert!(s.contains(">a<") && s.contains(">c<"));
        assert_eq!(s.matches("<circle").count(), 1);
    }
}
