//! Charts drawn here as inline SVG: no chart library, no script. Each chart has a `<title>` and
//! each bar or point its own, so screen readers and a hovering mouse both get the figures.

use std::fmt::Write as _;

/// Text made safe for SVG and HTML.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One day of the week chart.
#[derive(Debug)]
pub struct DayBar {
    pub label: String,
    pub succeeded: u64,
    pub partial: u64,
    pub failed: u64,
    /// Every run of the day, skipped ones included: the line.
    pub runs: u64,
    /// The bar's and point's tooltip.
    pub tip: String,
}

const W: f64 = 700.0;
const H: f64 = 200.0;
const PAD_LEFT: f64 = 40.0;
const PAD_BOTTOM: f64 = 24.0;
const PAD_TOP: f64 = 10.0;

#[allow(clippy::cast_precision_loss)]
fn f(n: u64) -> f64 {
    n as f64
}

/// Stacked bars of succeeded / partial / failed runs per day under a line of all runs per day.
pub fn week(title: &str, days: &[DayBar]) -> String {
    let top = days.iter().map(|d| d.runs).max().unwrap_or(0).max(1);
    let plot_h = H - PAD_BOTTOM - PAD_TOP;
    let slot = (W - PAD_LEFT) / f(days.len().max(1) as u64);
    let y = |v: u64| PAD_TOP + plot_h - f(v) / f(top) * plot_h;
    let mut svg = String::with_capacity(4096);
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-labelledby="week-title"><title id="week-title">{}</title>"#,
        esc(title)
    );
    // Gridlines at 0, ½ and the top, labelled.
    for v in [0, top / 2, top] {
        let yy = y(v);
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{PAD_LEFT}" x2="{W}" y1="{yy:.1}" y2="{yy:.1}"/><text class="axis" x="{}" y="{:.1}" text-anchor="end">{v}</text>"#,
            PAD_LEFT - 6.0,
            yy + 4.0
        );
    }
    let mut line = String::new();
    for (i, d) in days.iter().enumerate() {
        let x = PAD_LEFT + slot * f(i as u64) + slot * 0.2;
        let bw = slot * 0.6;
        let _ = write!(svg, "<g><title>{}</title>", esc(&d.tip));
        let mut base = 0;
        for (count, class) in [(d.succeeded, "ok"), (d.partial, "warn"), (d.failed, "bad")] {
            if count > 0 {
                let y0 = y(base + count);
                let _ = write!(
                    svg,
                    r#"<rect class="{class}" x="{x:.1}" y="{y0:.1}" width="{bw:.1}" height="{:.1}"/>"#,
                    y(base) - y0
                );
                base += count;
            }
        }
        let cx = x + bw / 2.0;
        let _ = write!(
            svg,
            r#"<text class="axis" x="{cx:.1}" y="{}" text-anchor="middle">{}</text></g>"#,
            H - 6.0,
            esc(&d.label)
        );
        let _ = write!(line, "{cx:.1},{:.1} ", y(d.runs));
    }
    let _ = write!(
        svg,
        r#"<polyline class="line" points="{}"/>"#,
        line.trim_end()
    );
    for (i, d) in days.iter().enumerate() {
        let cx = PAD_LEFT + slot * f(i as u64) + slot * 0.5;
        let _ = write!(
            svg,
            r#"<circle class="dot" cx="{cx:.1}" cy="{:.1}" r="3.5"><title>{}</title></circle>"#,
            y(d.runs),
            esc(&d.tip)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// One bar of a stage timeline.
#[derive(Debug)]
pub struct Span {
    pub label: String,
    /// From the run's start, in milliseconds.
    pub from_ms: i64,
    /// Still running: to now.
    pub to_ms: i64,
    /// `ok`, `bad`, `warn`, `run` or `skip`.
    pub class: &'static str,
    pub tip: String,
}

/// A Gantt chart of a run's stages: one row per attempt, bars placed on the run's time.
pub fn gantt(title: &str, spans: &[Span]) -> String {
    let row = 26.0;
    let label_w = 150.0;
    let h = row * f(spans.len().max(1) as u64) + 8.0;
    let end = spans.iter().map(|s| s.to_ms).max().unwrap_or(0).max(1);
    #[allow(clippy::cast_precision_loss)]
    let x = |ms: i64| label_w + (ms.max(0) as f64 / end as f64) * (W - label_w - 4.0);
    let mut svg = String::with_capacity(1024);
    let _ = write!(
        svg,
        r#"<svg class="chart gantt" viewBox="0 0 {W} {h}" role="img" aria-labelledby="gantt-title"><title id="gantt-title">{}</title>"#,
        esc(title)
    );
    for (i, s) in spans.iter().enumerate() {
        let y = 4.0 + row * f(i as u64);
        let x0 = x(s.from_ms);
        let width = (x(s.to_ms) - x0).max(2.0);
        let _ = write!(
            svg,
            r#"<g><title>{}</title><text class="axis" x="0" y="{:.1}">{}</text><rect class="{}" x="{x0:.1}" y="{y:.1}" width="{width:.1}" height="{:.1}" rx="3"/></g>"#,
            esc(&s.tip),
            y + row * 0.6,
            esc(&s.label),
            s.class,
            row - 8.0
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A small line of response times (milliseconds; gaps where there were none).
pub fn sparkline(title: &str, points: &[Option<f64>]) -> String {
    let (w, h) = (120.0, 28.0);
    let top = points
        .iter()
        .flatten()
        .copied()
        .fold(0.0_f64, f64::max)
        .max(1.0);
    let step = w / f(points.len().saturating_sub(1).max(1) as u64);
    let mut svg = String::with_capacity(512);
    let _ = write!(
        svg,
        r#"<svg class="spark" viewBox="0 0 {w} {h}" role="img"><title>{}</title><polyline points=""#,
        esc(title)
    );
    let at = |i: usize, v: f64| (step * f(i as u64), h - 2.0 - v / top * (h - 4.0));
    for (i, p) in points.iter().enumerate() {
        if let Some(v) = p {
            let (x, y) = at(i, *v);
            let _ = write!(svg, "{x:.1},{y:.1} ");
        }
    }
    svg.push_str(r#""/>"#);
    // The latest point as a dot: a lone point draws no line.
    if let Some((i, Some(v))) = points.iter().enumerate().rev().find(|(_, p)| p.is_some()) {
        let (x, y) = at(i, *v);
        let _ = write!(svg, r#"<circle cx="{x:.1}" cy="{y:.1}" r="2.5"/>"#);
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_week_chart_has_a_title_and_a_tooltip_per_day() {
        let days: Vec<DayBar> = (0..7)
            .map(|i| DayBar {
                label: format!("D{i}"),
                succeeded: i,
                partial: 1,
                failed: u64::from(i == 3),
                runs: i + 2,
                tip: format!("day {i} <b>"),
            })
            .collect();
        let svg = week("Last 7 days", &days);
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("<title id=\"week-title\">Last 7 days</title>"));
        assert_eq!(svg.matches("day 3 &lt;b&gt;").count(), 2, "bar and point");
        assert_eq!(svg.matches("<circle").count(), 7);
        assert_eq!(svg.matches("class=\"bad\"").count(), 1);
        assert!(!svg.contains("<b>"));
    }

    #[test]
    fn an_empty_week_still_draws() {
        let svg = week("none", &[]);
        assert!(svg.ends_with("</svg>"));
    }

    #[test]
    fn a_sparkline_marks_its_latest_point() {
        let svg = sparkline("one day", &[None, None, Some(40.0), None]);
        assert!(svg.contains("<circle"), "{svg}");
        assert!(sparkline("none", &[None, None]).ends_with("\"/></svg>"));
    }

    #[test]
    fn gantt_bars_sit_on_the_run_time() {
        let spans = [
            Span {
                label: "a".into(),
                from_ms: 0,
                to_ms: 500,
                class: "ok",
                tip: "a 0.5 s".into(),
            },
            Span {
                label: "b".into(),
                from_ms: 500,
                to_ms: 1000,
                class: "bad",
                tip: "b".into(),
            },
        ];
        let svg = gantt("stages", &spans);
        // The label column is 150 wide: the second bar starts half way along the 546 left.
        assert!(svg.contains(r#"x="423.0""#), "{svg}");
        assert_eq!(svg.matches("<rect").count(), 2);
    }
}
