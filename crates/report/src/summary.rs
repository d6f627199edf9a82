//! The storm summary (`analyze --summary`) and the multi-report HTML page.

use crate::sanitize::{md_code_span, md_fence, md_inline, Lines};
use crate::Format;
use fa_model::{IncidentReport, Report, SummaryReport};

fn cell(out: &mut String, s: &str) {
    out.push(' ');
    md_inline(out, s, Lines::Mark);
    out.push_str(" |");
}

fn time(t: &Option<chrono::DateTime<chrono::Utc>>) -> String {
    t.map(|t| t.to_rfc3339()).unwrap_or_default()
}

pub fn markdown(s: &SummaryReport) -> String {
    let mut out = String::with_capacity(4096);
    out.push_str("# Alert Storm Summary\n\n");
    out.push_str(&format!(
        "{} alerts read, {} rejected; {} clusters ({} evicted from memory before the end), {} incidents.\n",
        s.alerts,
        s.rejected,
        s.clusters,
        s.clusters_evicted,
        s.incidents_total.max(s.incidents.len() as u64)
    ));
    out.push_str("\n## Verdicts\n\n| Verdict | Alerts |\n| --- | --- |\n");
    out.push_str(&format!(
        "| malicious | {} |\n| suspicious | {} |\n| benign | {} |\n",
        s.verdicts.malicious, s.verdicts.suspicious, s.verdicts.benign
    ));
    if !s.by_priority.is_empty() {
        out.push_str("\n| Priority | Alerts |\n| --- | --- |\n");
        for (p, n) in &s.by_priority {
            out.push_str(&format!("| {p} | {n} |\n"));
        }
    }
    if !s.top_clusters.is_empty() {
        out.push_str("\n## Top clusters\n\n| Alerts | Verdict | Rule | Where | Activity | First seen | Last seen |\n| --- | --- | --- | --- | --- | --- | --- |\n");
        for c in &s.top_clusters {
            out.push_str(&format!("| {} | {} |", c.count, c.verdict));
            cell(&mut out, &c.rule);
            cell(&mut out, &c.location);
            out.push(' ');
            md_code_span(&mut out, &c.activity.replace(['\n', '\r'], " "));
            out.push_str(" |");
            cell(&mut out, &time(&c.first_seen));
            cell(&mut out, &time(&c.last_seen));
            out.push('\n');
        }
    }
    if !s.incidents.is_empty() {
        out.push_str("\n## Incidents\n");
        if s.incidents_total > s.incidents.len() as u64 {
            out.push_str(&format!(
                "\nThe {} most severe of {} incidents.\n",
                s.incidents.len(),
                s.incidents_total
            ));
        }
        for i in &s.incidents {
            out.push_str(&format!("\n### {} — ", i.verdict.kind));
            md_inline(&mut out, &i.entity, Lines::Space);
            out.push_str("\n\n");
            md_inline(&mut out, &i.summary, Lines::Space);
            out.push_str(
                "\n\n| Time | Alerts | Rule | Verdict | Summary |\n| --- | --- | --- | --- | --- |\n",
            );
            for t in &i.timeline {
                out.push('|');
                cell(&mut out, &time(&t.time));
                out.push_str(&format!(" {} |", t.count));
                cell(&mut out, &t.rule);
                cell(&mut out, t.verdict.map(|v| v.as_str()).unwrap_or(""));
                cell(&mut out, &t.summary);
                out.push('\n');
            }
            if i.timeline_omitted > 0 {
                out.push_str(&format!(
                    "\n{} more alert(s) of other activities are not listed.\n",
                    i.timeline_omitted
                ));
            }
        }
    }
    if !s.noisy_benign.is_empty() {
        out.push_str("\n## Noisiest benign clusters and how to tune them\n");
        for c in &s.noisy_benign {
            out.push_str(&format!("\n### {} × ", c.count));
            md_inline(&mut out, &c.rule, Lines::Space);
            out.push_str("\n\n");
            md_inline(&mut out, &c.location, Lines::Space);
            out.push_str(": ");
            md_code_span(&mut out, &c.activity.replace(['\n', '\r'], " "));
            out.push_str("\n\n");
            for r in &c.reasons {
                out.push_str("- ");
                md_inline(&mut out, r, Lines::Space);
                out.push('\n');
            }
            if let Some(t) = &c.tuning {
                out.push('\n');
                md_inline(&mut out, &t.explanation, Lines::Space);
                out.push_str("\n\n");
                md_fence(&mut out, "yaml", &t.yaml);
                if let Some(p) = &t.proof {
                    out.push('\n');
                    md_inline(&mut out, p, Lines::Space);
                    out.push('\n');
                }
            }
        }
    }
    out
}

pub fn render(s: &SummaryReport, format: Format) -> String {
    match format {
        Format::Markdown => markdown(s),
        Format::Json => serde_json::to_string_pretty(s).unwrap_or_else(|e| {
            serde_json::json!({"error": format!("summary serialization failed: {e}")}).to_string()
        }),
        Format::Html => crate::html::summary(s).unwrap_or_else(|e| crate::html::error_page(&e)),
    }
}

/// The inside of `<main>` of one of our own pages (alert content in it is already escaped).
fn main_of(page: &str) -> &str {
    let start = page.find("<main>").map(|i| i + "<main>".len()).unwrap_or(0);
    let end = page.rfind("</main>").unwrap_or(page.len());
    page.get(start..end).unwrap_or("")
}

/// One standalone page holding a summary (if any), every report and every incident, each in
/// its own `<article>`: what `--format html` writes to stdout.
pub fn html_bundle(
    summary: Option<&SummaryReport>,
    reports: &[Report],
    incidents: &[IncidentReport],
) -> String {
    let mut pages: Vec<String> = Vec::new();
    if let Some(s) = summary {
        pages.push(render(s, Format::Html));
    }
    for r in reports {
        pages.push(crate::html::report(r).unwrap_or_else(|e| crate::html::error_page(&e)));
    }
    for i in incidents {
        pages.push(crate::html::incident(i).unwrap_or_else(|e| crate::html::error_page(&e)));
    }
    let Some(first) = pages.first() else {
        return String::new();
    };
    if pages.len() == 1 {
        return first.clone();
    }
    let head_end = first
        .find("<main>")
        .map(|i| i + "<main>".len())
        .unwrap_or(0);
    let tail_start = first.rfind("</main>").unwrap_or(first.len());
    let mut out = String::with_capacity(pages.iter().map(String::len).sum());
    out.push_str(first.get(..head_end).unwrap_or(""));
    for p in &pages {
        out.push_str("\n<article>");
        out.push_str(main_of(p));
        out.push_str("</article>\n<hr>\n");
    }
    out.push_str(first.get(tail_start..).unwrap_or(""));
    out
}
