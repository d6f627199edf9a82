//! The Alert Analysis Report: what every renderer (Markdown, JSON, HTML) and every sink reads.
//! The JSON form of these types is the documented, versioned report schema (`SCHEMA_VERSION`).

use crate::{Alert, Priority, Source, Verdict};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Bump on any breaking change to the JSON form of `Report` or `IncidentReport`.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    /// The alert's uuid when it has a safe one, else its content hash.
    pub id: String,
    pub summary: String,
    pub event: EventDetails,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knowledge: Option<Knowledge>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mitre: Vec<MitreRef>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub investigation: Vec<Step>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mitigations: Vec<Mitigation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tuning: Option<Tuning>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub next_steps: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterInfo>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub narrative: Option<Narrative>,
    /// Plain statements about the report itself: snippets removed by validation, a narrative
    /// that was unavailable, a rule missing from the knowledge base.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Everything the alert says about the event, already pulled out of `output_fields`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct EventDetails {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<DateTime<Utc>>,
    pub rule: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    /// The rule's message (output without Falco's time and priority prefix).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Labelled facts in display order: ("Process", "proc.name", "sh") and so on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub facts: Vec<Fact>,
    /// Every other output field, verbatim, so nothing the alert carried is hidden.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub other_fields: Vec<Fact>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fact {
    pub label: String,
    pub field: String,
    pub value: String,
}

/// What the knowledge base says about the rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Knowledge {
    /// True when the rule has a curated entry; false for the fallback built from the alert.
    pub curated: bool,
    pub description: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub false_positives: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MitreRef {
    /// e.g. `TA0002`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tactic_id: Option<String>,
    /// e.g. `Execution`
    pub tactic: String,
    /// e.g. `T1059.004`
    #[serde(skip_serializing_if = "Option::is_none")]
    pub technique_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub technique: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub title: String,
    /// A runnable command with the alert's values filled in (shell-quoted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Placeholders the alert had no value for; they stay visible as `{field}` in `command`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_fields: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MitigationKind {
    Prevent,
    Detect,
    Respond,
}

impl MitigationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MitigationKind::Prevent => "prevent",
            MitigationKind::Detect => "detect",
            MitigationKind::Respond => "respond",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mitigation {
    pub kind: MitigationKind,
    pub title: String,
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example: Option<Snippet>,
}

/// A command or configuration shown to the reader. `lang` says which checker validates it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snippet {
    /// One of: shell, docker, kubectl, k8s-yaml, falco-yaml, yaml, json, seccomp-json, aws, gcloud, gh, text
    pub lang: String,
    pub code: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tuning {
    pub explanation: String,
    /// A Falco rules file fragment appending an exception to the rule.
    pub yaml: String,
    /// What the exception was checked against: how many alerts and clusters of the run it
    /// silences, that none of them is suspicious or malicious, and any narrowing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterInfo {
    pub fingerprint: String,
    pub count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_seen: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_seen: Option<DateTime<Utc>>,
}

/// Text written by an LLM on top of the deterministic report. Never changes the verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Narrative {
    pub provider: String,
    pub model: String,
    pub summary: String,
    pub analysis: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mitigations: Vec<Mitigation>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub next_steps: Vec<String>,
}

impl Report {
    /// The bare report every alert gets before analysis: summary and event details only.
    pub fn skeleton(alert: &Alert, summary: String, event: EventDetails) -> Report {
        Report {
            schema_version: SCHEMA_VERSION,
            id: alert.report_id(),
            summary,
            event,
            verdict: None,
            knowledge: None,
            mitre: Vec::new(),
            investigation: Vec::new(),
            mitigations: Vec::new(),
            tuning: None,
            next_steps: Vec::new(),
            cluster: None,
            narrative: None,
            notes: Vec::new(),
        }
    }
}

/// A group of alerts on one container, pod or host within a time window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentReport {
    pub schema_version: u32,
    pub id: String,
    pub summary: String,
    /// e.g. `container:16514a12c7ad`, `pod:default/web-1`, `host:node-3`
    pub entity: String,
    pub first_seen: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
    pub alert_count: u64,
    pub verdict: Verdict,
    /// MITRE tactics in the order they were first seen.
    pub tactics: Vec<String>,
    pub entities: Vec<String>,
    /// One entry per distinct activity (cluster), in the order first seen.
    pub timeline: Vec<TimelineEntry>,
    /// Alerts of activities beyond the timeline's cap: counted, not listed.
    #[serde(default)]
    pub timeline_omitted: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimelineEntry {
    /// When this activity was first seen in the incident.
    pub time: Option<DateTime<Utc>>,
    pub rule: String,
    pub priority: Option<Priority>,
    /// The worst verdict among its alerts.
    pub verdict: Option<crate::VerdictKind>,
    pub summary: String,
    pub report_id: String,
    /// Alerts of this activity (same fingerprint) in the incident.
    #[serde(default = "one")]
    pub count: u64,
    /// When it was last seen, if it repeated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_time: Option<DateTime<Utc>>,
    /// The activity's cluster fingerprint (as `/api/v1/clusters/{fingerprint}` takes it): lets
    /// a restarted service fold new repeats into this entry. Absent in older reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
}

fn one() -> u64 {
    1
}

/// One report for a whole input (`analyze --summary`): what a storm of alerts amounts to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryReport {
    pub schema_version: u32,
    pub alerts: u64,
    pub rejected: u64,
    /// Alerts per verdict: benign, suspicious, malicious.
    pub verdicts: VerdictCounts,
    /// Alerts per priority, most severe first.
    pub by_priority: Vec<(Priority, u64)>,
    pub clusters: u64,
    /// Clusters dropped from memory before the end (their counts are still in the totals).
    pub clusters_evicted: u64,
    pub incidents_evicted: u64,
    /// Incidents found in the whole input; `incidents` lists the most severe of them.
    #[serde(default)]
    pub incidents_total: u64,
    /// The largest clusters, largest first.
    pub top_clusters: Vec<ClusterSummary>,
    pub incidents: Vec<IncidentReport>,
    /// The noisiest benign clusters with the Falco exception that would silence them.
    pub noisy_benign: Vec<ClusterSummary>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct VerdictCounts {
    pub benign: u64,
    pub suspicious: u64,
    pub malicious: u64,
}

impl VerdictCounts {
    pub fn add(&mut self, k: crate::VerdictKind) {
        match k {
            crate::VerdictKind::Benign => self.benign += 1,
            crate::VerdictKind::Suspicious => self.suspicious += 1,
            crate::VerdictKind::Malicious => self.malicious += 1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterSummary {
    pub fingerprint: String,
    pub rule: String,
    pub count: u64,
    pub first_seen: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
    pub verdict: crate::VerdictKind,
    /// Where: image, container or host, as the first alert names it.
    pub location: String,
    /// A one-line description of the activity (process and command, or actor and action).
    pub activity: String,
    /// The representative report's id.
    pub report_id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tuning: Option<Tuning>,
}
