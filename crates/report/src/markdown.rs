//! Markdown: the section order users know from earlier reports, but only sections the report
//! has data for. All alert content is escaped (`sanitize`) and code sits in fences longer than
//! any backtick run inside it; the output is meant to be readable raw in a terminal too.

use crate::sanitize::{md_block, md_code_span, md_fence, md_inline, md_inline_code, Lines};
use crate::view::{ExampleView, IncidentView, MitigationView, ReportView, Row, VerdictView};
use fa_model::{IncidentReport, Report};

fn text(out: &mut String, s: &str) {
    md_inline_code(out, s, Lines::Space);
}

fn cell(out: &mut String, s: &str) {
    out.push(' ');
    md_inline(out, s, Lines::Mark);
    out.push_str(" |");
}

fn h2(out: &mut String, title: &str) {
    out.push_str("\n## ");
    out.push_str(title);
    out.push_str("\n\n");
}

fn table_header(out: &mut String, cols: &[&str]) {
    out.push('|');
    for c in cols {
        out.push(' ');
        out.push_str(c);
        out.push_str(" |");
    }
    out.push_str("\n|");
    for _ in cols {
        out.push_str(" --- |");
    }
    out.push('\n');
}

fn rows(out: &mut String, rows: &[Row<'_>], with_label: bool) {
    for r in rows {
        out.push('|');
        if with_label {
            cell(out, &r.label);
            cell(out, &r.value);
            cell(out, &r.field);
        } else {
            cell(out, &r.field);
            cell(out, &r.value);
        }
        out.push('\n');
    }
}

/// A link whose text is escaped and whose target was built from a validated id.
fn link_or_text(out: &mut String, label: &str, url: Option<&str>) {
    match url {
        Some(u) => {
            out.push('[');
            md_inline(out, label, Lines::Mark);
            out.push_str("](");
            out.push_str(u);
            out.push(')');
        }
        None => md_inline(out, label, Lines::Mark),
    }
}

fn verdict_line(out: &mut String, v: &VerdictView<'_>) {
    out.push_str("**");
    out.push_str(v.kind);
    out.push_str("** (confidence ");
    out.push_str(v.confidence_label);
    out.push_str(", ");
    out.push_str(&v.confidence);
    out.push_str("; score ");
    out.push_str(&v.score);
    out.push_str(")\n");
}

fn reasons(out: &mut String, v: &VerdictView<'_>) {
    if v.reasons.is_empty() {
        return;
    }
    out.push('\n');
    for r in &v.reasons {
        out.push_str("- ");
        out.push_str(&r.weight);
        out.push(' ');
        text(out, &r.text);
        if let Some(f) = &r.field {
            out.push_str(" (");
            md_code_span(out, f);
            out.push(')');
        }
        out.push('\n');
    }
}

fn mitigation_items(out: &mut String, items: &[MitigationView<'_>], with_kind: bool) {
    for m in items {
        out.push_str("- **");
        text(out, &m.title);
        out.push_str("**");
        if with_kind {
            out.push_str(" (");
            out.push_str(m.kind);
            out.push(')');
        }
        if !m.text.trim().is_empty() {
            out.push_str(": ");
            text(out, &m.text);
        }
        out.push('\n');
    }
}

fn example_blocks(out: &mut String, examples: &[ExampleView<'_>]) {
    for (i, e) in examples.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str("**");
        text(out, &e.title);
        out.push_str("** (");
        md_code_span(out, &e.lang);
        out.push_str("):\n\n");
        md_fence(out, e.fence, &e.code);
    }
}

fn list(out: &mut String, items: &[std::borrow::Cow<'_, str>]) {
    for s in items {
        out.push_str("- ");
        text(out, s);
        out.push('\n');
    }
}

/// The report as Markdown.
pub fn report(r: &Report) -> String {
    let v = ReportView::new(r);
    let mut out = String::with_capacity(4096);

    out.push_str("# Alert Analysis Report: ");
    text(&mut out, &v.title);
    out.push('\n');

    h2(&mut out, "Summary");
    md_block(&mut out, &v.summary);

    h2(&mut out, "Event details");
    table_header(&mut out, &["Detail", "Value", "Falco field"]);
    rows(&mut out, &v.details, true);
    if !v.other_fields.is_empty() {
        out.push_str("\n### Other fields\n\n");
        table_header(&mut out, &["Falco field", "Value"]);
        rows(&mut out, &v.other_fields, false);
    }

    if let Some(vd) = &v.verdict {
        h2(&mut out, "Verdict");
        verdict_line(&mut out, vd);
        reasons(&mut out, vd);
    }

    if let Some(k) = &v.knowledge {
        h2(&mut out, "About this rule");
        if !k.curated {
            out.push_str("_No curated knowledge-base entry for this rule; the guidance below is generic._\n\n");
        }
        md_block(&mut out, &k.description);
        if let Some(fp) = &k.false_positives {
            out.push_str("\n**Known false positives:** ");
            text(&mut out, fp);
            out.push('\n');
        }
    }

    if !v.mitre.is_empty() {
        h2(&mut out, "MITRE ATT&CK");
        table_header(&mut out, &["Tactic", "Technique"]);
        for m in &v.mitre {
            out.push_str("| ");
            let mut tactic = String::from(m.tactic.as_ref());
            if let Some(id) = &m.tactic_id {
                tactic.push_str(" (");
                tactic.push_str(id);
                tactic.push(')');
            }
            link_or_text(&mut out, &tactic, m.tactic_url.as_deref());
            out.push_str(" | ");
            let technique = match (&m.technique_id, &m.technique) {
                (Some(id), Some(name)) => format!("{id} {name}"),
                (Some(id), None) => id.to_string(),
                (None, Some(name)) => name.to_string(),
                (None, None) => String::new(),
            };
            link_or_text(&mut out, &technique, m.technique_url.as_deref());
            out.push_str(" |\n");
        }
    }

    if !v.steps.is_empty() {
        h2(&mut out, "Investigation");
        for (i, s) in v.steps.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str("### ");
            out.push_str(&(i + 1).to_string());
            out.push_str(". ");
            text(&mut out, &s.title);
            out.push_str("\n\n");
            if let Some(cmd) = &s.command {
                md_fence(&mut out, "sh", cmd);
            }
            if !s.missing_fields.is_empty() {
                if s.command.is_some() {
                    out.push('\n');
                }
                out.push_str("The alert has no value for ");
                for (j, f) in s.missing_fields.iter().enumerate() {
                    if j > 0 {
                        out.push_str(", ");
                    }
                    md_code_span(&mut out, &format!("{{{f}}}"));
                }
                out.push_str(": fill in before running.\n");
            }
        }
    }

    if !v.mitigation_groups.is_empty() {
        h2(&mut out, "Mitigations");
        for (i, g) in v.mitigation_groups.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str("### ");
            out.push_str(g.heading);
            out.push_str("\n\n");
            mitigation_items(&mut out, &g.items, false);
        }
    }

    if !v.examples.is_empty() {
        h2(&mut out, "Example configurations");
        example_blocks(&mut out, &v.examples);
    }

    if let Some(tu) = &v.tuning {
        h2(&mut out, "Falco tuning");
        if !tu.explanation.trim().is_empty() {
            md_block(&mut out, &tu.explanation);
            out.push('\n');
        }
        md_fence(&mut out, "yaml", &tu.yaml);
        if let Some(p) = &tu.proof {
            out.push('\n');
            md_block(&mut out, p);
        }
    }

    if !v.next_steps.is_empty() {
        h2(&mut out, "Next steps");
        list(&mut out, &v.next_steps);
    }

    if let Some(c) = &v.cluster {
        h2(&mut out, "Cluster");
        if c.count == 1 {
            out.push_str("Seen once");
        } else {
            out.push_str("Seen ");
            out.push_str(&c.count.to_string());
            out.push_str(" times");
        }
        out.push_str(" with fingerprint ");
        md_code_span(&mut out, &c.fingerprint);
        if let Some(f) = &c.first_seen {
            out.push_str("; first seen ");
            text(&mut out, f);
        }
        if let Some(l) = &c.last_seen {
            out.push_str("; last seen ");
            text(&mut out, l);
        }
        out.push_str(".\n");
    }

    if let Some(n) = &v.narrative {
        h2(&mut out, "Narrative (written by a language model)");
        out.push_str("> Written by the model ");
        md_code_span(&mut out, &n.model);
        out.push_str(" (");
        text(&mut out, &n.provider);
        out.push_str("). Model-written text is not checked by the deterministic analysis above and does not change the verdict.\n\n");
        if !n.summary.trim().is_empty() {
            out.push_str("### Model summary\n\n");
            md_block(&mut out, &n.summary);
        }
        if !n.analysis.trim().is_empty() {
            out.push_str("\n### Model analysis\n\n");
            md_block(&mut out, &n.analysis);
        }
        if !n.mitigations.is_empty() {
            out.push_str("\n### Model-suggested mitigations\n\n");
            mitigation_items(&mut out, &n.mitigations, true);
            if !n.examples.is_empty() {
                out.push('\n');
                example_blocks(&mut out, &n.examples);
            }
        }
        if !n.next_steps.is_empty() {
            out.push_str("\n### Model-suggested next steps\n\n");
            list(&mut out, &n.next_steps);
        }
    }

    if !v.notes.is_empty() {
        h2(&mut out, "Notes");
        list(&mut out, &v.notes);
    }

    out.push_str("\n---\n\nReport ");
    md_code_span(&mut out, &v.id);
    out.push_str(", schema version ");
    out.push_str(&v.schema_version.to_string());
    out.push_str(".\n");
    out
}

/// An incident (a group of related alerts) as Markdown.
pub fn incident(i: &IncidentReport) -> String {
    let v = IncidentView::new(i);
    let mut out = String::with_capacity(4096);
    out.push_str("# Incident Report: ");
    text(&mut out, &v.entity);
    out.push('\n');

    h2(&mut out, "Summary");
    md_block(&mut out, &v.summary);

    h2(&mut out, "Overview");
    table_header(&mut out, &["Detail", "Value"]);
    let mut row = |label: &str, value: &str| {
        out.push_str("| ");
        out.push_str(label);
        out.push_str(" |");
        cell(&mut out, value);
        out.push('\n');
    };
    row("Entity", &v.entity);
    row("Alerts", &v.alert_count.to_string());
    if let Some(f) = &v.first_seen {
        row("First seen", f);
    }
    if let Some(l) = &v.last_seen {
        row("Last seen", l);
    }

    h2(&mut out, "Verdict");
    verdict_line(&mut out, &v.verdict);
    reasons(&mut out, &v.verdict);

    if !v.tactics.is_empty() {
        h2(&mut out, "MITRE ATT&CK tactics (in order first seen)");
        list(&mut out, &v.tactics);
    }
    if !v.entities.is_empty() {
        h2(&mut out, "Entities");
        list(&mut out, &v.entities);
    }
    if !v.timeline.is_empty() {
        h2(&mut out, "Timeline");
        table_header(
            &mut out,
            &[
                "Time", "Alerts", "Priority", "Rule", "Verdict", "Summary", "Report",
            ],
        );
        for e in &v.timeline {
            out.push('|');
            let when = match (&e.time, &e.last_time) {
                (Some(a), Some(b)) => format!("{a} to {b}"),
                (Some(a), None) => a.clone(),
                (None, _) => String::new(),
            };
            cell(&mut out, &when);
            out.push_str(&format!(" {} |", e.count));
            cell(&mut out, e.priority.unwrap_or(""));
            cell(&mut out, &e.rule);
            cell(&mut out, e.verdict.unwrap_or(""));
            cell(&mut out, &e.summary);
            cell(&mut out, &e.report_id);
            out.push('\n');
        }
        if v.timeline_omitted > 0 {
            out.push_str(&format!(
                "\n{} more alert(s) of other activities are not listed.\n",
                v.timeline_omitted
            ));
        }
    }
    out.push_str("\n---\n\nIncident ");
    md_code_span(&mut out, &v.id);
    out.push_str(", schema version ");
    out.push_str(&v.schema_version.to_string());
    out.push_str(".\n");
    out
}
