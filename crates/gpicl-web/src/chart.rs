//! Line charts as standalone SVG text: axes with round ticks, a legend, an optional dashed
//! reference line (chance), a colour-blind-safe palette. Pure, so it is tested natively and the
//! same SVG can be saved as a file.

use std::fmt::Write;

use gpicl_core::Curve;

/// The Okabe–Ito palette (distinguishable with the common colour-vision deficiencies).
pub const PALETTE: [&str; 7] = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000",
];

/// `n` shades of one hue, light to dark (for a curve's history: older = lighter).
pub fn ramp(n: usize) -> Vec<String> {
    let (light, dark) = ([198.0, 219.0, 239.0], [8.0, 48.0, 107.0]);
    (0..n)
        .map(|i| {
            let t = if n > 1 {
                i as f64 / (n - 1) as f64
            } else {
                1.0
            };
            let c: Vec<u8> = (0..3)
                .map(|k| (light[k] + (dark[k] - light[k]) * t).round() as u8)
                .collect();
            format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
        })
        .collect()
}

/// Rows of the two-clocks heatmap at most: a long run's picture keeps its height, and the page
/// its DOM (31 elements a row) and memory, whatever the run's length.
pub const MAX_HEATMAP_ROWS: usize = 40;

/// Which of `n` evaluations the heatmap shows: all of them up to [`MAX_HEATMAP_ROWS`], else
/// every 2nd, 4th, … (the smallest power of two that fits) and the latest. A new evaluation
/// then adds a row or replaces the latest, and the others stay as they were (the page's redraw
/// leaves their elements alone) until the stride doubles.
pub fn heatmap_rows(n: usize) -> Vec<usize> {
    let mut stride = 1;
    loop {
        let mut rows: Vec<usize> = (0..n).step_by(stride).collect();
        if n > 0 && rows.last() != Some(&(n - 1)) {
            rows.push(n - 1);
        }
        if rows.len() <= MAX_HEATMAP_ROWS {
            return rows;
        }
        stride *= 2;
    }
}

/// A heatmap of accuracy (0–1, one colour scale from white at chance to dark blue at 100 %):
/// one row per labelled series (top to bottom), one column per position. For the two learning
/// clocks: meta-training steps down, examples in context across.
pub fn heatmap_svg(title: &str, rows: &[(String, Vec<f32>)], chance: f32) -> String {
    let cols = rows.iter().map(|r| r.1.len()).max().unwrap_or(0).max(1);
    let (left, top, right, bottom) = (90.0, 36.0, 16.0, 58.0);
    let (cw, ch) = ((560.0 / cols as f64).clamp(4.0, 24.0), 14.0);
    let (w, h) = (
        left + cw * cols as f64 + right,
        top + ch * rows.len() as f64 + bottom,
    );
    let mut s = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" font-family="sans-serif" font-size="11" role="img"><title>{}</title><text x="{left}" y="20" font-size="13">{}</text>"#,
        escape(title),
        escape(title)
    );
    // The rows in a group of their own: a new evaluation's row is appended inside it, so the
    // page's diff adds its elements and leaves the others (after the rows, they would shift
    // onto the axis labels' places and every one of those be made anew).
    s.push_str("<g>");
    for (r, (label, values)) in rows.iter().enumerate() {
        let y = top + ch * r as f64;
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            left - 6.0,
            y + ch - 3.0,
            escape(label)
        );
        for (c, &v) in values.iter().enumerate() {
            let _ = write!(
                s,
                r#"<rect x="{:.1}" y="{y:.1}" width="{:.1}" height="{ch}" fill="{}"><title>{}, example {}: {:.1}%</title></rect>"#,
                left + cw * c as f64,
                cw,
                heat(v, chance),
                escape(label),
                c + 1,
                100.0 * v
            );
        }
    }
    s.push_str("</g>");
    let base = top + ch * rows.len() as f64;
    for c in (0..cols).filter(|c| (c + 1) % 5 == 0 || *c == 0) {
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            left + cw * (c as f64 + 0.5),
            base + 14.0,
            c + 1
        );
    }
    let _ = write!(
        s,
        r#"<text x="{:.1}" y="{}" text-anchor="middle">examples seen + 1 (position in the sequence)</text>"#,
        left + cw * cols as f64 / 2.0,
        base + 30.0
    );
    for (i, v) in [chance, 0.5, 1.0].into_iter().enumerate() {
        let x = left + 130.0 * i as f64;
        let _ = write!(
            s,
            r##"<rect x="{x}" y="{}" width="12" height="12" fill="{}" stroke="#999"/><text x="{}" y="{}">{:.0}%{}</text>"##,
            base + 38.0,
            heat(v, chance),
            x + 16.0,
            base + 48.0,
            100.0 * v,
            if i == 0 { " (chance) or less" } else { "" }
        );
    }
    s.push_str("</svg>");
    s
}

/// White at or below chance, dark blue at 100 %.
fn heat(v: f32, chance: f32) -> String {
    let t = ((v - chance) / (1.0 - chance).max(1e-6)).clamp(0.0, 1.0) as f64;
    let (light, dark) = ([255.0, 255.0, 255.0], [8.0, 48.0, 107.0]);
    let c: Vec<u8> = (0..3)
        .map(|k| (light[k] + (dark[k] - light[k]) * t).round() as u8)
        .collect();
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

/// One line of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// CSS colour.
    pub color: String,
    /// (x, y) points, in x order.
    pub points: Vec<(f64, f64)>,
}

/// A chart: labelled axes, series, and an optional horizontal reference line.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// Accessible title (also the SVG's `<title>`).
    pub title: String,
    /// X-axis label.
    pub x_label: String,
    /// Y-axis label.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
    /// Fixed y range; `None` fits the data.
    pub y_range: Option<(f64, f64)>,
    /// A dashed horizontal line and its label (e.g. chance level).
    pub reference: Option<(f64, String)>,
    /// Show y values as percentages.
    pub percent: bool,
}

const W: f64 = 440.0;
const H: f64 = 260.0;
const LEFT: f64 = 52.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 40.0;

/// Round tick values covering `[lo, hi]`, about `n` of them (steps of 1, 2 or 5 × 10^k).
pub fn nice_ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo || n == 0 {
        return vec![lo];
    }
    let raw = (hi - lo) / n as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// `s` escaped for SVG or HTML text and double-quoted attribute values.
pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `value` with its sign and `decimals` decimals, a minus sign (U+2212) rather than a hyphen
/// when negative, as the page's sentences write differences: "+1.4", "−0.2", "+0.0".
pub(crate) fn signed(value: f32, decimals: usize) -> String {
    let text = format!("{value:+.decimals$}");
    match text.strip_prefix('-') {
        Some(magnitude) => format!("\u{2212}{magnitude}"),
        None => text,
    }
}

fn fmt_tick(v: f64, percent: bool) -> String {
    if percent {
        format!("{:.0}%", v * 100.0)
    } else if v != 0.0 && (v.abs() >= 1e4 || v.abs() < 1e-2) {
        format!("{v:.0e}")
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// A legend row's height, the legend's inner margin, and an estimate of a legend character's
/// width (11-unit sans-serif text, on the wide side), in the chart's units.
const LEGEND_ROW: f64 = 14.0;
const LEGEND_PAD: f64 = 4.0;
const LEGEND_CHAR: f64 = 6.0;

/// The maps from data to the chart's units, x and y, for a chart of `domain`
/// ([`Chart::domain`]).
fn scales(domain: ((f64, f64), (f64, f64))) -> (impl Fn(f64) -> f64, impl Fn(f64) -> f64) {
    let ((x0, x1), (y0, y1)) = domain;
    let sx = move |x: f64| LEFT + (x - x0) / (x1 - x0) * (W - LEFT - RIGHT);
    let sy = move |y: f64| H - BOTTOM - (y.clamp(y0, y1) - y0) / (y1 - y0) * (H - TOP - BOTTOM);
    (sx, sy)
}

/// Where a reference line's label is drawn, `(x, text-anchor)`, for the line at `y` (chart
/// units): above its right end, or above its left end where the legend box `(x, y, w, h)`
/// would cover it there.
fn reference_label_at(
    y: f64,
    label: &str,
    legend: Option<(f64, f64, f64, f64)>,
) -> (f64, &'static str) {
    let right = W - RIGHT - 2.0;
    let (top, bottom) = (y - 4.0 - 11.0, y - 4.0 + 3.0);
    let width = LEGEND_CHAR * label.chars().count() as f64;
    let covered = legend.is_some_and(|(lx, ly, lw, lh)| {
        right - width < lx + lw && right > lx && top < ly + lh && bottom > ly
    });
    if covered {
        (LEFT + 4.0, "start")
    } else {
        (right, "end")
    }
}

impl Chart {
    /// Where the legend goes, `(x, y, width, height)` in the chart's units: the corner of the
    /// plot where its box hides the least of the data (the lines sampled every few units; the
    /// reference line counts a quarter as much), the top-left corner first among equals;
    /// `domain` is the chart's ([`Chart::domain`]).
    fn legend_box(&self, domain: ((f64, f64), (f64, f64))) -> (f64, f64, f64, f64) {
        let (sx, sy) = scales(domain);
        let chars = self
            .series
            .iter()
            .map(|s| s.name.chars().count())
            .max()
            .unwrap_or(0);
        let w = (2.0 * LEGEND_PAD + 20.0 + LEGEND_CHAR * chars as f64).min(W - LEFT - RIGHT - 8.0);
        let h = 2.0 * LEGEND_PAD + LEGEND_ROW * self.series.len() as f64;
        // The data as drawn: points every ~3 units along each line.
        let mut drawn: Vec<(f64, f64, f64)> = Vec::new();
        let mut trace = |points: &[(f64, f64)], weight: f64| {
            let xy: Vec<(f64, f64)> = points
                .iter()
                .filter(|p| p.0.is_finite() && p.1.is_finite())
                .map(|&(x, y)| (sx(x), sy(y)))
                .collect();
            drawn.extend(xy.first().map(|&(x, y)| (x, y, weight)));
            for pair in xy.windows(2) {
                let ((x0, y0), (x1, y1)) = (pair[0], pair[1]);
                let steps = ((x1 - x0).hypot(y1 - y0) / 3.0).ceil().max(1.0) as usize;
                drawn.extend((1..=steps).map(|k| {
                    let t = k as f64 / steps as f64;
                    (x0 + t * (x1 - x0), y0 + t * (y1 - y0), weight)
                }));
            }
        };
        for series in &self.series {
            trace(&series.points, 1.0);
        }
        if let Some((r, _)) = self.reference {
            let (x0, x1) = domain.0;
            trace(&[(x0, r), (x1, r)], 0.25);
        }
        let (left, right) = (LEFT + 8.0, W - RIGHT - 4.0 - w);
        let (top, bottom) = (TOP + 2.0, H - BOTTOM - 4.0 - h);
        let corners = [(left, top), (right, bottom), (right, top), (left, bottom)];
        let hidden = |&(x, y): &(f64, f64)| -> f64 {
            drawn
                .iter()
                .filter(|p| p.0 >= x && p.0 <= x + w && p.1 >= y && p.1 <= y + h)
                .map(|p| p.2)
                .sum()
        };
        let mut best = corners[0];
        let mut least = hidden(&best);
        for corner in &corners[1..] {
            let cost = hidden(corner);
            if cost < least {
                (best, least) = (*corner, cost);
            }
        }
        (best.0, best.1, w, h)
    }

    /// The x and y extents of the data (and the fixed range and reference line).
    pub fn domain(&self) -> ((f64, f64), (f64, f64)) {
        let pts = || self.series.iter().flat_map(|s| s.points.iter());
        let fold = |f: fn(&(f64, f64)) -> f64| {
            pts()
                .map(f)
                .filter(|v| v.is_finite())
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                    (a.min(v), b.max(v))
                })
        };
        let (mut x0, mut x1) = fold(|p| p.0);
        if x0 > x1 {
            (x0, x1) = (0.0, 1.0);
        }
        if x1 <= x0 {
            x1 = x0 + 1.0;
        }
        let (mut y0, mut y1) = match self.y_range {
            Some(r) => r,
            None => {
                let (mut a, mut b) = fold(|p| p.1);
                if let Some((r, _)) = self.reference {
                    (a, b) = (a.min(r), b.max(r));
                }
                if a > b { (0.0, 1.0) } else { (a, b) }
            }
        };
        if y1 <= y0 {
            (y0, y1) = (y0 - 0.5, y1 + 0.5);
        }
        ((x0, x1), (y0, y1))
    }

    /// The chart as an SVG document.
    pub fn to_svg(&self) -> String {
        let domain = self.domain();
        let ((x0, x1), (y0, y1)) = domain;
        let (sx, sy) = scales(domain);
        let mut s = String::new();
        let _ = write!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" role="img" class="chart" font-family="sans-serif" font-size="11"><title>{}</title>"#,
            escape(&self.title)
        );
        for t in nice_ticks(y0, y1, 5) {
            let y = sy(t);
            let _ = write!(
                s,
                r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
                W - RIGHT,
                LEFT - 4.0,
                y + 4.0,
                fmt_tick(t, self.percent)
            );
        }
        for t in nice_ticks(x0, x1, 6) {
            let x = sx(t);
            let _ = write!(
                s,
                r##"<line x1="{x:.1}" x2="{x:.1}" y1="{}" y2="{}" stroke="#333"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
                H - BOTTOM,
                H - BOTTOM + 4.0,
                H - BOTTOM + 16.0,
                fmt_tick(t, false)
            );
        }
        let _ = write!(
            s,
            r##"<path d="M{LEFT} {TOP}V{}H{}" fill="none" stroke="#333"/><text x="{}" y="{}" text-anchor="middle">{}</text><text transform="translate(12 {}) rotate(-90)" text-anchor="middle">{}</text>"##,
            H - BOTTOM,
            W - RIGHT,
            (LEFT + W - RIGHT) / 2.0,
            H - 6.0,
            escape(&self.x_label),
            (TOP + H - BOTTOM) / 2.0,
            escape(&self.y_label)
        );
        let legend = (!self.series.is_empty()).then(|| self.legend_box(domain));
        if let Some((r, label)) = &self.reference {
            let y = sy(*r);
            let (x, anchor) = reference_label_at(y, label, legend);
            let _ = write!(
                s,
                r##"<line class="reference" x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#666" stroke-dasharray="5 4"/><text x="{x}" y="{:.1}" text-anchor="{anchor}" fill="#444">{}</text>"##,
                W - RIGHT,
                y - 4.0,
                escape(label)
            );
        }
        for series in &self.series {
            let mut d = String::new();
            for (i, &(x, y)) in series.points.iter().filter(|p| p.1.is_finite()).enumerate() {
                let _ = write!(
                    d,
                    "{}{:.1} {:.1}",
                    if i == 0 { 'M' } else { 'L' },
                    sx(x),
                    sy(y)
                );
            }
            if series.points.len() == 1 {
                let (x, y) = series.points[0];
                let _ = write!(
                    s,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="2.5" fill="{}"/>"#,
                    sx(x),
                    sy(y),
                    series.color
                );
            }
            let _ = write!(
                s,
                r#"<path class="series" d="{d}" fill="none" stroke="{}" stroke-width="2"><title>{}</title></path>"#,
                series.color,
                escape(&series.name)
            );
        }
        if let Some((x, y, w, h)) = legend {
            let _ = write!(
                s,
                r#"<rect class="legend-box" x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="white" fill-opacity="0.85"/>"#
            );
            for (i, series) in self.series.iter().enumerate() {
                let row = y + LEGEND_PAD + LEGEND_ROW * (i as f64 + 0.5);
                let _ = write!(
                    s,
                    r#"<line x1="{:.1}" x2="{:.1}" y1="{row:.1}" y2="{row:.1}" stroke="{}" stroke-width="3"/><text x="{:.1}" y="{:.1}" class="legend">{}</text>"#,
                    x + LEGEND_PAD,
                    x + LEGEND_PAD + 16.0,
                    series.color,
                    x + LEGEND_PAD + 20.0,
                    row + 4.0,
                    escape(&series.name)
                );
            }
        }
        s.push_str("</svg>");
        s
    }
}

/// A curve's accuracies as chart points (x = position in the sequence, from 1).
pub fn accuracy_points(curve: &Curve) -> Vec<(f64, f64)> {
    curve
        .accuracy
        .iter()
        .enumerate()
        .map(|(j, &a)| ((j + 1) as f64, a as f64))
        .collect()
}

/// A baseline's accuracy at some positions (1-based): `(name, [(position, accuracy)])`.
pub type BaselineCurve = (String, Vec<(usize, f32)>);

/// The chart of accuracy against position: the curves, then the baselines (measured at some
/// positions only), chance drawn at 1 / `n_classes`.
pub fn accuracy_chart(
    title: &str,
    curves: &[Curve],
    baselines: &[BaselineCurve],
    n_classes: usize,
) -> Chart {
    let series: Vec<Series> = curves
        .iter()
        .enumerate()
        .map(|(i, curve)| Series {
            name: curve.name.clone(),
            color: PALETTE[i % PALETTE.len()].into(),
            points: accuracy_points(curve),
        })
        .chain(
            baselines
                .iter()
                .enumerate()
                .map(|(i, (name, points))| Series {
                    name: name.clone(),
                    color: PALETTE[(curves.len() + i + 1) % PALETTE.len()].into(),
                    points: points.iter().map(|&(k, a)| (k as f64, a as f64)).collect(),
                }),
        )
        .collect();
    Chart {
        title: title.into(),
        x_label: "examples seen + 1 (position in the sequence)".into(),
        y_label: "accuracy".into(),
        series,
        y_range: Some((0.0, 1.0)),
        reference: Some((1.0 / n_classes as f64, "chance".into())),
        percent: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_carry_a_sign_and_a_true_minus() {
        assert_eq!(signed(1.44, 1), "+1.4");
        assert_eq!(signed(-0.21, 1), "\u{2212}0.2");
        assert_eq!(signed(0.0, 1), "+0.0");
        assert_eq!(signed(-12.6, 0), "\u{2212}13");
    }

    #[test]
    fn ticks_are_round_and_inside_the_range() {
        assert_eq!(
            nice_ticks(0.0, 1.0, 5),
            vec![0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
        );
        assert_eq!(
            nice_ticks(1.0, 30.0, 6),
            vec![5.0, 10.0, 15.0, 20.0, 25.0, 30.0]
        );
        let t = nice_ticks(2.17, 2.41, 5);
        assert!(
            t.iter().all(|v| (2.17..=2.41).contains(v)) && t.len() >= 3,
            "{t:?}"
        );
        assert_eq!(nice_ticks(1.0, 1.0, 5), vec![1.0]);
    }

    #[test]
    fn svg_has_every_series_the_legend_and_the_reference_line() {
        let chart = Chart {
            title: "accuracy <vs> examples".into(),
            x_label: "examples".into(),
            y_label: "accuracy".into(),
            series: vec![
                Series {
                    name: "unseen".into(),
                    color: PALETTE[0].into(),
                    points: vec![(1.0, 0.1), (2.0, 0.5), (3.0, f64::NAN)],
                },
                Series {
                    name: "fashion".into(),
                    color: PALETTE[1].into(),
                    points: vec![(1.0, 0.2)],
                },
            ],
            y_range: Some((0.0, 1.0)),
            reference: Some((0.1, "chance".into())),
            percent: true,
        };
        let svg = chart.to_svg();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert_eq!(svg.matches(r#"class="series""#).count(), 2);
        assert_eq!(svg.matches(r#"class="legend""#).count(), 2);
        assert!(svg.contains(r#"class="reference""#) && svg.contains(">chance<"));
        assert!(svg.contains("accuracy &lt;vs&gt; examples"));
        assert!(svg.contains(">100%<"));
        assert!(!svg.contains("NaN"));
        // The first series' path: two finite points.
        assert!(svg.contains(r#"d="M52.0 "#));
    }

    /// The legend sits in the corner where it hides the least of the lines: away from curves
    /// that rise early to the top (the top-left, where it was always drawn), at the top-left
    /// where nothing is there.
    #[test]
    fn the_legend_hides_no_line_it_can_avoid() {
        let rising = |name: &str, at: f64| Series {
            name: name.into(),
            color: PALETTE[0].into(),
            points: (1..=50)
                .map(|j| (j as f64, (at + j as f64 / 10.0).min(1.0)))
                .collect(),
        };
        let mut chart = Chart {
            title: "accuracy".into(),
            x_label: "examples".into(),
            y_label: "accuracy".into(),
            series: [
                "the learner",
                "the learner, 8 views",
                "1-NN",
                "logistic",
                "MLP",
            ]
            .iter()
            .enumerate()
            .map(|(i, n)| rising(n, 0.3 + 0.02 * i as f64))
            .collect(),
            y_range: Some((0.0, 1.0)),
            reference: Some((1.0 / 3.0, "chance".into())),
            percent: true,
        };
        let (sx, sy) = scales(chart.domain());
        let (x, y, w, h) = chart.legend_box(chart.domain());
        assert!(x > LEFT + 8.0 || y > TOP + 2.0, "still at the top-left");
        for series in &chart.series {
            for &(px, py) in &series.points {
                let (px, py) = (sx(px), sy(py));
                assert!(
                    !(px >= x && px <= x + w && py >= y && py <= y + h),
                    "({px}, {py}) under the legend at ({x}, {y}, {w}, {h})"
                );
            }
        }
        let svg = chart.to_svg();
        assert!(svg.contains(&format!(r#"class="legend-box" x="{x:.1}" y="{y:.1}""#)));
        // Lines low and flat leave the top-left free.
        for series in &mut chart.series {
            series.points = (1..=50).map(|j| (j as f64, 0.1)).collect();
        }
        let (x, y, _, _) = chart.legend_box(chart.domain());
        assert_eq!((x, y), (LEFT + 8.0, TOP + 2.0));
    }

    /// Where the legend covers the right end of the reference line (curves high everywhere,
    /// so it takes the bottom-right corner), the line's label moves to its left end.
    #[test]
    fn the_reference_label_stays_clear_of_the_legend() {
        let chart = Chart {
            title: "accuracy".into(),
            x_label: "examples".into(),
            y_label: "accuracy".into(),
            series: (0..5)
                .map(|i| Series {
                    name: format!("learner {i}"),
                    color: PALETTE[i].into(),
                    points: (1..=50)
                        .map(|j| (j as f64, 0.9 + 0.01 * i as f64))
                        .collect(),
                })
                .collect(),
            y_range: Some((0.0, 1.0)),
            reference: Some((1.0 / 3.0, "chance".into())),
            percent: true,
        };
        let (_, sy) = scales(chart.domain());
        let chance = sy(1.0 / 3.0);
        let legend = chart.legend_box(chart.domain());
        let (x, y, w, h) = legend;
        assert!(x > LEFT + 8.0 && y < chance && chance < y + h, "{legend:?}");
        let svg = chart.to_svg();
        let at = svg.find(">chance<").unwrap();
        let tag = &svg[svg[..at].rfind("<text").unwrap()..at];
        assert!(
            tag.contains(&format!(r#"x="{}""#, LEFT + 4.0)) && tag.contains("start"),
            "{tag}"
        );
        // Without a legend over it, at the right end.
        assert_eq!(
            reference_label_at(chance, "chance", None),
            (W - RIGHT - 2.0, "end")
        );
        assert_eq!(
            reference_label_at(chance, "chance", Some((LEFT + 8.0, y, w, h))),
            (W - RIGHT - 2.0, "end")
        );
    }

    #[test]
    fn empty_and_flat_data_still_draw() {
        let chart = Chart {
            title: "loss".into(),
            x_label: "step".into(),
            y_label: "loss".into(),
            series: vec![Series {
                name: "loss".into(),
                color: PALETTE[0].into(),
                points: vec![(1.0, 2.3), (2.0, 2.3)],
            }],
            y_range: None,
            reference: None,
            percent: false,
        };
        let ((x0, x1), (y0, y1)) = chart.domain();
        assert!(x1 > x0 && y1 > y0);
        let empty = Chart {
            series: vec![],
            ..chart
        };
        assert!(empty.to_svg().contains("</svg>"));
    }

    #[test]
    fn heatmap_has_one_cell_per_value_coloured_by_accuracy() {
        let rows = vec![
            ("step 20".to_string(), vec![0.1, 0.1, 0.1]),
            ("step 40".to_string(), vec![0.1, 0.55, 1.0]),
        ];
        let svg = heatmap_svg("t <1>", &rows, 0.1);
        assert_eq!(
            svg.matches("<rect").count(),
            6 + 3,
            "six cells and three legend keys"
        );
        assert!(svg.contains("t &lt;1&gt;"));
        assert_eq!(heat(0.1, 0.1), "#ffffff");
        assert_eq!(heat(0.0, 0.1), "#ffffff");
        assert_eq!(heat(1.0, 0.1), "#08306b");
        assert!(svg.contains("step 40, example 3: 100.0%"));
    }

    #[test]
    fn ramp_goes_from_light_to_dark() {
        let r = ramp(3);
        assert_eq!(r[0], "#c6dbef");
        assert_eq!(r[2], "#08306b");
    }

    /// The heatmap shows every evaluation up to its height, then every 2nd, 4th, … and the
    /// latest; a new evaluation adds a row or replaces the latest, the earlier rows stay.
    #[test]
    fn heatmap_rows_are_bounded_and_stable() {
        assert_eq!(heatmap_rows(0), Vec::<usize>::new());
        assert_eq!(heatmap_rows(3), vec![0, 1, 2]);
        assert_eq!(
            heatmap_rows(MAX_HEATMAP_ROWS),
            (0..MAX_HEATMAP_ROWS).collect::<Vec<_>>()
        );
        for n in 1..2000 {
            let rows = heatmap_rows(n);
            assert!(rows.len() <= MAX_HEATMAP_ROWS, "{n}: {} rows", rows.len());
            assert!(rows.windows(2).all(|w| w[0] < w[1]));
            assert_eq!((rows[0], *rows.last().unwrap()), (0, n - 1));
            // Once past the cap, the picture still uses most of its height.
            assert!(n < MAX_HEATMAP_ROWS || rows.len() > MAX_HEATMAP_ROWS / 2);
            let next = heatmap_rows(n + 1);
            if next.len() >= rows.len() {
                // No doubling: all rows but the latest stay.
                assert_eq!(next[..rows.len() - 1], rows[..rows.len() - 1]);
            }
        }
    }
}
