//! What the Markdown and HTML renderers show, prepared once: every piece of text has had its
//! control characters stripped, mitigations are grouped, MITRE links are built only from ids
//! that look like ids, numbers are formatted. Format-specific escaping happens in the renderers.

use crate::sanitize::strip_controls;
use chrono::{DateTime, SecondsFormat, Utc};
use fa_model::{
    ClusterInfo, IncidentReport, Knowledge, Mitigation, MitigationKind, MitreRef, Narrative,
    Report, Snippet, Step, Tuning, Verdict,
};
use serde::Serialize;
use std::borrow::Cow;

type Text<'a> = Cow<'a, str>;

fn t(s: &str) -> Text<'_> {
    strip_controls(s)
}

pub fn time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// One row of a table of details: label, value, and the Falco field it came from.
#[derive(Debug, Serialize)]
pub struct Row<'a> {
    pub label: Text<'a>,
    pub value: Text<'a>,
    pub field: Text<'a>,
}

#[derive(Debug, Serialize)]
pub struct ReasonView<'a> {
    pub weight: String,
    pub text: Text<'a>,
    pub field: Option<Text<'a>>,
}

#[derive(Debug, Serialize)]
pub struct VerdictView<'a> {
    /// `benign`, `suspicious`, `malicious`: also the CSS class suffix.
    pub kind: &'static str,
    pub confidence_label: &'static str,
    pub confidence: String,
    pub score: String,
    pub reasons: Vec<ReasonView<'a>>,
}

#[derive(Debug, Serialize)]
pub struct KnowledgeView<'a> {
    pub curated: bool,
    pub description: Text<'a>,
    pub false_positives: Option<Text<'a>>,
}

#[derive(Debug, Serialize)]
pub struct MitreView<'a> {
    pub tactic: Text<'a>,
    pub tactic_id: Option<Text<'a>>,
    pub tactic_url: Option<String>,
    pub technique: Option<Text<'a>>,
    pub technique_id: Option<Text<'a>>,
    pub technique_url: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct StepView<'a> {
    pub title: Text<'a>,
    pub command: Option<Text<'a>>,
    pub missing_fields: Vec<Text<'a>>,
}

#[derive(Debug, Serialize)]
pub struct MitigationView<'a> {
    pub kind: &'static str,
    pub title: Text<'a>,
    pub text: Text<'a>,
}

#[derive(Debug, Serialize)]
pub struct MitigationGroup<'a> {
    /// `prevent`, `detect`, `respond`.
    pub kind: &'static str,
    pub heading: &'static str,
    pub items: Vec<MitigationView<'a>>,
}

#[derive(Debug, Serialize)]
pub struct ExampleView<'a> {
    pub title: Text<'a>,
    /// The snippet's language as the report names it (`docker`, `k8s-yaml`, ...).
    pub lang: Text<'a>,
    /// The language a Markdown fence is tagged with for highlighting (`sh`, `yaml`, `json`, `text`).
    pub fence: &'static str,
    pub code: Text<'a>,
}

#[derive(Debug, Serialize)]
pub struct TuningView<'a> {
    pub explanation: Text<'a>,
    pub yaml: Text<'a>,
    pub proof: Option<Text<'a>>,
}

#[derive(Debug, Serialize)]
pub struct ClusterView<'a> {
    pub fingerprint: Text<'a>,
    pub count: u64,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct NarrativeView<'a> {
    pub provider: Text<'a>,
    pub model: Text<'a>,
    pub summary: Text<'a>,
    pub analysis: Text<'a>,
    /// `analysis` split at blank lines, for renderers that write paragraphs.
    pub analysis_paragraphs: Vec<Text<'a>>,
    pub mitigations: Vec<MitigationView<'a>>,
    pub examples: Vec<ExampleView<'a>>,
    pub next_steps: Vec<Text<'a>>,
}

#[derive(Debug, Serialize)]
pub struct ReportView<'a> {
    pub schema_version: u32,
    pub id: Text<'a>,
    /// The rule name, or `(rule not recorded)`.
    pub title: Text<'a>,
    pub rule_known: bool,
    pub priority: Option<&'static str>,
    /// Lower-case priority, the CSS class suffix.
    pub priority_class: Option<String>,
    pub summary: Text<'a>,
    /// Time, rule, priority, source, host, uuid, tags, message, then the facts.
    pub details: Vec<Row<'a>>,
    pub other_fields: Vec<Row<'a>>,
    pub verdict: Option<VerdictView<'a>>,
    pub knowledge: Option<KnowledgeView<'a>>,
    pub mitre: Vec<MitreView<'a>>,
    pub steps: Vec<StepView<'a>>,
    pub mitigation_groups: Vec<MitigationGroup<'a>>,
    pub examples: Vec<ExampleView<'a>>,
    pub tuning: Option<TuningView<'a>>,
    pub next_steps: Vec<Text<'a>>,
    pub cluster: Option<ClusterView<'a>>,
    pub narrative: Option<NarrativeView<'a>>,
    pub notes: Vec<Text<'a>>,
}

impl<'a> ReportView<'a> {
    pub fn new(r: &'a Report) -> ReportView<'a> {
        let e = &r.event;
        let rule_known = !e.rule.trim().is_empty();
        let mut details = Vec::with_capacity(8 + e.facts.len());
        let mut row = |label: &'static str, value: Text<'a>, field: &'static str| {
            details.push(Row {
                label: Cow::Borrowed(label),
                value,
                field: Cow::Borrowed(field),
            })
        };
        if let Some(time) = &e.time {
            row("Time", Cow::Owned(self::time(time)), "time");
        }
        row(
            "Rule",
            if rule_known {
                t(&e.rule)
            } else {
                Cow::Borrowed("(rule not recorded)")
            },
            "rule",
        );
        if let Some(p) = e.priority {
            row("Priority", Cow::Borrowed(p.as_str()), "priority");
        }
        if let Some(s) = &e.source {
            row("Source", t(s.as_str()), "source");
        }
        if let Some(h) = &e.hostname {
            row("Host", t(h), "hostname");
        }
        if let Some(u) = &e.uuid {
            row("UUID", t(u), "uuid");
        }
        if !e.tags.is_empty() {
            row(
                "Tags",
                Cow::Owned(strip_controls(&e.tags.join(", ")).into_owned()),
                "tags",
            );
        }
        if let Some(m) = &e.message {
            row("Message", t(m), "output");
        }
        details.extend(e.facts.iter().map(|f| Row {
            label: t(&f.label),
            value: t(&f.value),
            field: t(&f.field),
        }));

        ReportView {
            schema_version: r.schema_version,
            id: t(&r.id),
            title: if rule_known {
                t(&e.rule)
            } else {
                Cow::Borrowed("(rule not recorded)")
            },
            rule_known,
            priority: e.priority.map(|p| p.as_str()),
            priority_class: e.priority.map(|p| p.as_str().to_ascii_lowercase()),
            summary: t(&r.summary),
            details,
            other_fields: e
                .other_fields
                .iter()
                .map(|f| Row {
                    label: t(&f.label),
                    value: t(&f.value),
                    field: t(&f.field),
                })
                .collect(),
            verdict: r.verdict.as_ref().map(verdict),
            knowledge: r.knowledge.as_ref().map(knowledge),
            mitre: r.mitre.iter().map(mitre).collect(),
            steps: r.investigation.iter().map(step).collect(),
            mitigation_groups: groups(&r.mitigations),
            examples: examples(&r.mitigations),
            tuning: r.tuning.as_ref().map(tuning),
            next_steps: r.next_steps.iter().map(|s| t(s)).collect(),
            cluster: r.cluster.as_ref().map(cluster),
            narrative: r.narrative.as_ref().map(narrative),
            notes: r.notes.iter().map(|s| t(s)).collect(),
        }
    }
}

pub fn verdict(v: &Verdict) -> VerdictView<'_> {
    VerdictView {
        kind: v.kind.as_str(),
        confidence_label: v.confidence.label(),
        confidence: format!("{:.2}", v.confidence.get()),
        score: format!("{:+.2}", v.score),
        reasons: v
            .reasons
            .iter()
            .map(|r| ReasonView {
                weight: format!("{:+.2}", r.weight),
                text: t(&r.text),
                field: r.field.as_deref().map(t),
            })
            .collect(),
    }
}

fn knowledge(k: &Knowledge) -> KnowledgeView<'_> {
    KnowledgeView {
        curated: k.curated,
        description: t(&k.description),
        false_positives: k.false_positives.as_deref().map(t),
    }
}

/// `TA0002` -> its ATT&CK page; anything else gets no link.
fn tactic_url(id: &str) -> Option<String> {
    let digits = id.strip_prefix("TA")?;
    (digits.len() == 4 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("https://attack.mitre.org/tactics/{id}/"))
}

/// `T1059` or `T1059.004` -> its ATT&CK page; anything else gets no link.
fn technique_url(id: &str) -> Option<String> {
    let rest = id.strip_prefix('T')?;
    let (base, sub) = match rest.split_once('.') {
        Some((b, s)) => (b, Some(s)),
        None => (rest, None),
    };
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(base, 4) {
        return None;
    }
    match sub {
        None => Some(format!("https://attack.mitre.org/techniques/T{base}/")),
        Some(s) if digits(s, 3) => {
            Some(format!("https://attack.mitre.org/techniques/T{base}/{s}/"))
        }
        Some(_) => None,
    }
}

fn mitre(m: &MitreRef) -> MitreView<'_> {
    MitreView {
        tactic: t(&m.tactic),
        tactic_id: m.tactic_id.as_deref().map(t),
        tactic_url: m.tactic_id.as_deref().and_then(tactic_url),
        technique: m.technique.as_deref().map(t),
        technique_id: m.technique_id.as_deref().map(t),
        technique_url: m.technique_id.as_deref().and_then(technique_url),
    }
}

fn step(s: &Step) -> StepView<'_> {
    StepView {
        title: t(&s.title),
        command: s.command.as_deref().map(t),
        missing_fields: s.missing_fields.iter().map(|f| t(f)).collect(),
    }
}

fn heading(kind: MitigationKind) -> &'static str {
    match kind {
        MitigationKind::Prevent => "Prevent",
        MitigationKind::Detect => "Detect",
        MitigationKind::Respond => "Respond",
    }
}

fn mitigation(m: &Mitigation) -> MitigationView<'_> {
    MitigationView {
        kind: m.kind.as_str(),
        title: t(&m.title),
        text: t(&m.text),
    }
}

/// Prevent, detect, respond, each in the report's order; empty groups are left out.
fn groups(ms: &[Mitigation]) -> Vec<MitigationGroup<'_>> {
    [
        MitigationKind::Prevent,
        MitigationKind::Detect,
        MitigationKind::Respond,
    ]
    .into_iter()
    .filter_map(|kind| {
        let items: Vec<_> = ms
            .iter()
            .filter(|m| m.kind == kind)
            .map(mitigation)
            .collect();
        (!items.is_empty()).then(|| MitigationGroup {
            kind: kind.as_str(),
            heading: heading(kind),
            items,
        })
    })
    .collect()
}

/// The fence tag for a snippet language (see `Snippet::lang`).
pub fn fence_lang(lang: &str) -> &'static str {
    match lang {
        "shell" | "docker" | "kubectl" | "aws" | "gcloud" | "gh" => "sh",
        "k8s-yaml" | "falco-yaml" | "yaml" => "yaml",
        "json" | "seccomp-json" => "json",
        _ => "text",
    }
}

fn example<'a>(title: &'a str, s: &'a Snippet) -> ExampleView<'a> {
    ExampleView {
        title: t(title),
        lang: t(&s.lang),
        fence: fence_lang(&s.lang),
        code: t(&s.code),
    }
}

fn examples(ms: &[Mitigation]) -> Vec<ExampleView<'_>> {
    ms.iter()
        .filter_map(|m| m.example.as_ref().map(|s| example(&m.title, s)))
        .collect()
}

fn tuning(tu: &Tuning) -> TuningView<'_> {
    TuningView {
        explanation: t(&tu.explanation),
        yaml: t(&tu.yaml),
        proof: tu.proof.as_deref().map(t),
    }
}

fn cluster(c: &ClusterInfo) -> ClusterView<'_> {
    ClusterView {
        fingerprint: t(&c.fingerprint),
        count: c.count,
        first_seen: c.first_seen.as_ref().map(time),
        last_seen: c.last_seen.as_ref().map(time),
    }
}

fn narrative(n: &Narrative) -> NarrativeView<'_> {
    let analysis = t(&n.analysis);
    let analysis_paragraphs = paragraphs(&analysis)
        .into_iter()
        .map(|p| Cow::Owned(p.to_string()))
        .collect();
    NarrativeView {
        provider: t(&n.provider),
        model: t(&n.model),
        summary: t(&n.summary),
        analysis_paragraphs,
        analysis,
        mitigations: n.mitigations.iter().map(mitigation).collect(),
        examples: examples(&n.mitigations),
        next_steps: n.next_steps.iter().map(|s| t(s)).collect(),
    }
}

/// Text split at blank lines, each paragraph trimmed.
fn paragraphs(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut end = 0;
    let mut pos = 0;
    for line in s.split_inclusive('\n') {
        let blank = line.trim().is_empty();
        if blank {
            if let Some(st) = start.take() {
                out.push(s[st..end].trim());
            }
        } else {
            if start.is_none() {
                start = Some(pos);
            }
            end = pos + line.len();
        }
        pos += line.len();
    }
    if let Some(st) = start {
        out.push(s[st..end].trim());
    }
    out
}

#[derive(Debug, Serialize)]
pub struct TimelineView<'a> {
    pub time: Option<String>,
    pub rule: Text<'a>,
    pub priority: Option<&'static str>,
    pub verdict: Option<&'static str>,
    pub summary: Text<'a>,
    pub report_id: Text<'a>,
    pub count: u64,
    pub last_time: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct IncidentView<'a> {
    pub schema_version: u32,
    pub id: Text<'a>,
    pub entity: Text<'a>,
    pub summary: Text<'a>,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub alert_count: u64,
    pub verdict: VerdictView<'a>,
    pub tactics: Vec<Text<'a>>,
    pub entities: Vec<Text<'a>>,
    pub timeline: Vec<TimelineView<'a>>,
    pub timeline_omitted: u64,
}

impl<'a> IncidentView<'a> {
    pub fn new(i: &'a IncidentReport) -> IncidentView<'a> {
        IncidentView {
            schema_version: i.schema_version,
            id: t(&i.id),
            entity: t(&i.entity),
            summary: t(&i.summary),
            first_seen: i.first_seen.as_ref().map(time),
            last_seen: i.last_seen.as_ref().map(time),
            alert_count: i.alert_count,
            verdict: verdict(&i.verdict),
            tactics: i.tactics.iter().map(|s| t(s)).collect(),
            entities: i.entities.iter().map(|s| t(s)).collect(),
            timeline: i
                .timeline
                .iter()
                .map(|e| TimelineView {
                    time: e.time.as_ref().map(time),
                    rule: if e.rule.trim().is_empty() {
                        Cow::Borrowed("(rule not recorded)")
                    } else {
                        t(&e.rule)
                    },
                    priority: e.priority.map(|p| p.as_str()),
                    verdict: e.verdict.map(|v| v.as_str()),
                    summary: t(&e.summary),
                    report_id: t(&e.report_id),
                    count: e.count,
                    last_time: e.last_time.as_ref().map(time),
                })
                .collect(),
            timeline_omitted: i.timeline_omitted,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mitre_links_only_for_well_formed_ids() {
        assert_eq!(
            technique_url("T1059.004").as_deref(),
            Some("https://attack.mitre.org/techniques/T1059/004/")
        );
        assert_eq!(
            technique_url("T1555").as_deref(),
            Some("https://attack.mitre.org/techniques/T1555/")
        );
        assert_eq!(technique_url("T1059/../../evil"), None);
        assert_eq!(technique_url("T1059.04"), None);
        assert_eq!(
            tactic_url("TA0002").as_deref(),
            Some("https://attack.mitre.org/tactics/TA0002/")
        );
        assert_eq!(tactic_url("TA0002\"><script>"), None);
    }

    #[test]
    fn paragraphs_split_at_blank_lines() {
        assert_eq!(paragraphs("\n a\nb \n \n\nc\n"), vec!["a\nb", "c"]);
        assert!(paragraphs("  \n").is_empty());
    }

    #[test]
    fn fence_lang_maps_every_snippet_language() {
        for (lang, fence) in [
            ("docker", "sh"),
            ("k8s-yaml", "yaml"),
            ("seccomp-json", "json"),
            ("text", "text"),
            ("x`y", "text"),
        ] {
            assert_eq!(fence_lang(lang), fence);
        }
    }
}
