//! Stacked bar charts as SVG, drawn on the server: no script, no style attribute (colours
//! come from classes in console.css), only numbers and series names we choose.

use std::fmt::Write as _;

/// One series of a chart: its name and its count per bucket.
#[derive(Debug, Clone)]
pub struct Series {
    pub name: &'static str,
    /// CSS class suffix (`c-<class>`).
    pub class: &'static str,
    pub counts: Vec<u64>,
}

const W: f64 = 720.0;
const H: f64 = 160.0;
const LEFT: f64 = 40.0;
const BOTTOM: f64 = 20.0;

fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '&' => o.push_str("&amp;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// A stacked bar chart; `labels` are the first and last bucket's times.
pub fn stacked_bars(title: &str, series: &[Series], labels: (&str, &str)) -> String {
    let n = series.iter().map(|s| s.counts.len()).max().unwrap_or(0);
    let totals: Vec<u64> = (0..n)
        .map(|i| {
            series
                .iter()
                .map(|s| s.counts.get(i).copied().unwrap_or(0))
                .sum()
        })
        .collect();
    let max = totals.iter().copied().max().unwrap_or(0).max(1);
    let plot_w = W - LEFT;
    let plot_h = H - BOTTOM;
    let bw = if n == 0 { plot_w } else { plot_w / n as f64 };
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg"><title>{}</title>"#,
        esc(title),
        esc(title)
    );
    let _ = write!(
        out,
        r#"<line class="axis" x1="{LEFT}" y1="{plot_h}" x2="{W}" y2="{plot_h}"/><text class="tick" x="{}" y="10" text-anchor="end">{max}</text><text class="tick" x="{}" y="{plot_h}" text-anchor="end">0</text>"#,
        LEFT - 4.0,
        LEFT - 4.0
    );
    for i in 0..n {
        let mut y = plot_h;
        let x = LEFT + i as f64 * bw;
        for s in series {
            let c = s.counts.get(i).copied().unwrap_or(0);
            if c == 0 {
                continue;
            }
            let h = c as f64 / max as f64 * (plot_h - 12.0);
            y -= h;
            let _ = write!(
                out,
                r#"<rect class="c-{}" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}"><title>{}: {c}</title></rect>"#,
                s.class,
                x + 0.5,
                y,
                (bw - 1.0).max(0.5),
                h,
                esc(s.name)
            );
        }
    }
    let _ = write!(
        out,
        r#"<text class="tick" x="{LEFT}" y="{H}" text-anchor="start">{}</text><text class="tick" x="{W}" y="{H}" text-anchor="end">{}</text></svg>"#,
        esc(labels.0),
        esc(labels.1)
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_stack_and_scale_to_the_tallest() {
        let s = stacked_bars(
            "alerts <per> minute",
            &[
                Series {
                    name: "Critical",
                    class: "critical",
                    counts: vec![1, 0, 3],
                },
                Series {
                    name: "Notice",
                    class: "notice",
                    counts: vec![1, 2, 1],
                },
            ],
            ("10:00", "10:03"),
        );
        assert_eq!(s.matches("<rect").count(), 5, "zero counts draw nothing");
        assert!(s.contains("alerts &lt;per&gt; minute"));
        assert!(s.contains(">4</text>"), "the axis shows the tallest total");
        assert!(!s.contains("style="));
    }
}
