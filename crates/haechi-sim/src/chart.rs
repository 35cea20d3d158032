//! The report's charts as SVG, drawn from numbers only: equity against the benchmark, the
//! drawdown from the peak, and several runs' equity rebased to 100. The standalone HTML report
//! and the portal's report and comparison pages embed this same markup.
//!
//! Styling is by class only (`chart`, `grid`, `axis`, `equity`, `bench`, `drawdown`, `hover`,
//! `series sN`), never a `style` attribute: the portal's CSP forbids inline styles and colours
//! the classes from its stylesheet; the standalone report carries its own rules for them.
//!
//! The equity chart has a hover target per drawn point: a `<title>` (the browser's tooltip, no
//! script needed) and `data-date`/`data-equity` attributes, which the portal's script reads for
//! its live readout.

use crate::report::{EquityPoint, Report};
use chrono::{Datelike as _, NaiveDate};
use haechi_core::money::group_thousands;
use std::borrow::Cow;
use std::fmt::Write as _;

const W: f64 = 960.0;
const PAD_L: f64 = 72.0;
const PAD_R: f64 = 12.0;
const PAD_T: f64 = 12.0;
const PAD_B: f64 = 28.0;
/// Points per line: more than the pixels would show only costs bytes.
pub const MAX_POINTS: usize = 480;

fn step_of(n: usize) -> usize {
    n.div_ceil(MAX_POINTS).max(1)
}

/// Indices to draw: every `step`-th point and the last.
fn sampled(n: usize) -> impl Iterator<Item = usize> {
    let step = step_of(n);
    let last = n.checked_sub(1).filter(|l| !l.is_multiple_of(step));
    (0..n).step_by(step).chain(last)
}

/// Text for SVG content and attributes. Labels come from catalogues today, but the charts do
/// not rely on that.
fn escape(s: &str) -> Cow<'_, str> {
    if !s.contains(['&', '<', '>', '"']) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Maps a series onto the drawing area.
struct Frame {
    h: f64,
    lo: f64,
    hi: f64,
    n: usize,
}

impl Frame {
    fn x(&self, i: usize) -> f64 {
        PAD_L + (W - PAD_L - PAD_R) * i as f64 / (self.n.max(2) - 1) as f64
    }

    fn y(&self, v: f64) -> f64 {
        let span = (self.hi - self.lo).max(f64::EPSILON);
        PAD_T + (self.h - PAD_T - PAD_B) * (self.hi - v) / span
    }

    /// Horizontal grid lines with labels, and the first session of each year on the x axis
    /// (every few years on long runs, so the labels do not collide).
    fn axes(&self, svg: &mut String, dates: &[NaiveDate], label: impl Fn(f64) -> String) {
        for k in 0..=4 {
            let v = self.lo + (self.hi - self.lo) * f64::from(k) / 4.0;
            let y = self.y(v);
            let _ = write!(
                svg,
                r#"<line class="grid" x1="{PAD_L}" x2="{}" y1="{y:.1}" y2="{y:.1}"/><text class="axis" x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
                W - PAD_R,
                PAD_L - 6.0,
                y + 4.0,
                label(v)
            );
        }
        let mut last_year = None;
        let every = (dates.len() / 252 / 8).max(1) as i32;
        for (i, d) in dates.iter().enumerate() {
            if last_year != Some(d.year()) {
                last_year = Some(d.year());
                if d.year() % every == 0 {
                    let _ = write!(
                        svg,
                        r#"<text class="axis" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                        self.x(i),
                        self.h - 8.0,
                        d.year()
                    );
                }
            }
        }
    }
}

/// The opening tag with an accessible name; `id` names the `<title>` and must be unique in the
/// page.
fn open(h: f64, id: &str, title: &str) -> String {
    format!(
        r#"<svg class="chart" viewBox="0 0 {W} {h}" role="img" aria-labelledby="{id}"><title id="{id}">{}</title>"#,
        escape(title)
    )
}

/// 억 = 100 million won, 만 = 10 thousand: how Korean investors read amounts.
fn won_axis(v: f64) -> String {
    if v.abs() >= 1e8 { format!("{:.1}억", v / 1e8) } else { format!("{:.0}만", v / 1e4) }
}

/// Equity against the benchmark (scaled to the initial capital), with hover targets. `title`
/// names the chart and `benchmark` the benchmark in the tooltips.
#[must_use]
pub fn equity(report: &Report, title: &str, benchmark: &str) -> String {
    let pts: &[EquityPoint] = &report.equity_curve;
    let h = 300.0;
    let mut svg = open(h, "equity-title", title);
    if pts.len() < 2 {
        svg.push_str("</svg>");
        return svg;
    }
    let values = pts.iter().flat_map(|p| std::iter::once(p.equity.get() as f64).chain(p.benchmark));
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let f = Frame { h, lo: lo * 0.98, hi: hi * 1.02, n: pts.len() };
    let dates: Vec<NaiveDate> = pts.iter().map(|p| p.date).collect();
    f.axes(&mut svg, &dates, won_axis);
    let mut bench = String::new();
    let mut line = String::new();
    for i in sampled(pts.len()) {
        let p = &pts[i];
        if let Some(b) = p.benchmark {
            let _ = write!(bench, "{:.1},{:.1} ", f.x(i), f.y(b));
        }
        let _ = write!(line, "{:.1},{:.1} ", f.x(i), f.y(p.equity.get() as f64));
    }
    if !bench.is_empty() {
        let _ = write!(svg, r#"<polyline class="bench" points="{}"/>"#, bench.trim_end());
    }
    let _ = write!(svg, r#"<polyline class="equity" points="{}"/>"#, line.trim_end());
    // Hover targets: a thin column per sampled point.
    let benchmark = escape(benchmark);
    let col = (W - PAD_L - PAD_R) / pts.len() as f64 * step_of(pts.len()) as f64;
    for i in sampled(pts.len()) {
        let p = &pts[i];
        let bench_text =
            p.benchmark.map_or(String::new(), |b| format!(" · {benchmark} ₩{}", group_thousands(b.round() as i64)));
        let _ = write!(
            svg,
            r#"<rect class="hover" x="{:.1}" y="{PAD_T}" width="{:.1}" height="{:.1}" data-date="{}" data-equity="{}"><title>{} ₩{}{}</title></rect>"#,
            f.x(i) - col / 2.0,
            col.max(1.0),
            h - PAD_T - PAD_B,
            p.date,
            p.equity.get(),
            p.date,
            group_thousands(p.equity.get()),
            bench_text
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The drawdown from the running peak, as a filled area.
#[must_use]
pub fn drawdown(report: &Report, title: &str) -> String {
    let pts = &report.equity_curve;
    let h = 160.0;
    let mut svg = open(h, "dd-title", title);
    if pts.len() < 2 {
        svg.push_str("</svg>");
        return svg;
    }
    let lo = pts.iter().map(|p| p.drawdown).fold(0.0f64, f64::min).min(-0.01);
    let f = Frame { h, lo, hi: 0.0, n: pts.len() };
    let dates: Vec<NaiveDate> = pts.iter().map(|p| p.date).collect();
    f.axes(&mut svg, &dates, |v| format!("{:.0}%", v * 100.0));
    let mut area = format!("{:.1},{:.1} ", f.x(0), f.y(0.0));
    for i in sampled(pts.len()) {
        let _ = write!(area, "{:.1},{:.1} ", f.x(i), f.y(pts[i].drawdown));
    }
    let _ = write!(area, "{:.1},{:.1}", f.x(pts.len() - 1), f.y(0.0));
    let _ = write!(svg, r#"<polygon class="drawdown" points="{area}"/>"#);
    svg.push_str("</svg>");
    svg
}

/// Several runs' equity, each rebased to 100 at its start, on one date axis; line `k` has the
/// classes `series sK`.
#[must_use]
pub fn compare(reports: &[&Report], title: &str) -> String {
    let h = 300.0;
    let mut svg = open(h, "cmp-title", title);
    let series: Vec<Vec<(NaiveDate, f64)>> = reports
        .iter()
        .map(|r| {
            let base = r.equity_curve.first().map_or(1.0, |p| p.equity.get().max(1) as f64);
            r.equity_curve.iter().map(|p| (p.date, p.equity.get() as f64 / base * 100.0)).collect()
        })
        .collect();
    let (Some(d0), Some(d1)) = (
        series.iter().filter_map(|s| s.first().map(|p| p.0)).min(),
        series.iter().filter_map(|s| s.last().map(|p| p.0)).max(),
    ) else {
        svg.push_str("</svg>");
        return svg;
    };
    let (lo, hi) = series.iter().flatten().fold((f64::MAX, f64::MIN), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
    let span = (d1 - d0).num_days().max(1) as f64;
    // The frame's x is by index: map dates onto 0..=1000.
    let f = Frame { h, lo: lo * 0.98, hi: hi * 1.02, n: 1001 };
    let dates: Vec<NaiveDate> =
        (0..=1000).map(|i| d0 + chrono::Days::new((span * f64::from(i) / 1000.0) as u64)).collect();
    f.axes(&mut svg, &dates, |v| format!("{v:.0}"));
    for (k, s) in series.iter().enumerate() {
        let mut line = String::new();
        for i in sampled(s.len()) {
            let (d, v) = s[i];
            let x = ((d - d0).num_days() as f64 / span * 1000.0).round() as usize;
            let _ = write!(line, "{:.1},{:.1} ", f.x(x), f.y(v));
        }
        let _ = write!(svg, r#"<polyline class="series s{k}" points="{}"/>"#, line.trim_end());
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn sampling_keeps_the_last_point_and_bounds_the_count() {
        let v: Vec<usize> = sampled(2_500).collect();
        assert!(v.len() <= MAX_POINTS + 1);
        assert_eq!(*v.last().unwrap(), 2_499);
        assert_eq!(v[0], 0);
        assert_eq!(sampled(10).count(), 10);
        assert_eq!(sampled(0).count(), 0);
        assert_eq!(sampled(1).collect::<Vec<_>>(), [0]);
    }

    #[test]
    fn titles_are_escaped() {
        assert_eq!(escape("a < b & \"c\""), "a &lt; b &amp; &quot;c&quot;");
        assert!(matches!(escape("자산 추이"), Cow::Borrowed(_)));
        assert!(open(10.0, "x", "<script>").contains("<title id=\"x\">&lt;script&gt;</title>"));
    }
}
