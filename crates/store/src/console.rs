//! What the web console reads and writes beyond the API's lists: triage (status, assignee,
//! notes and their audit trail) and the queries behind its pages (overview aggregates,
//! filtered keyset pages, alert search).

use chrono::{DateTime, Utc};
use fa_model::{Priority, VerdictKind};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use crate::types::{ClusterRow, Nanos};

/// What a triage decision is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriageKind {
    Incident,
    Cluster,
}

impl TriageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TriageKind::Incident => "incident",
            TriageKind::Cluster => "cluster",
        }
    }
}

/// Where an incident or a cluster stands for the people looking at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TriageStatus {
    /// Nobody has looked at it yet (also what an item without a triage row is).
    #[default]
    New,
    /// Someone is on it: a cluster stops notifying.
    Acknowledged,
    Resolved,
    /// Not a threat: a cluster stops notifying and its exception is offered.
    FalsePositive,
}

impl TriageStatus {
    pub const ALL: [TriageStatus; 4] = [
        TriageStatus::New,
        TriageStatus::Acknowledged,
        TriageStatus::Resolved,
        TriageStatus::FalsePositive,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TriageStatus::New => "new",
            TriageStatus::Acknowledged => "acknowledged",
            TriageStatus::Resolved => "resolved",
            TriageStatus::FalsePositive => "false_positive",
        }
    }

    /// Whether a cluster in this status stops notifying.
    pub fn mutes_notifications(self) -> bool {
        matches!(
            self,
            TriageStatus::Acknowledged | TriageStatus::FalsePositive
        )
    }

    /// Still to be handled: counted as open.
    pub fn is_open(self) -> bool {
        matches!(self, TriageStatus::New | TriageStatus::Acknowledged)
    }
}

impl fmt::Display for TriageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown triage status `{0}` (expected new, acknowledged, resolved or false_positive)")]
pub struct UnknownStatus(pub String);

impl FromStr for TriageStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        TriageStatus::ALL
            .into_iter()
            .find(|x| x.as_str() == t)
            .ok_or_else(|| UnknownStatus(s.to_string()))
    }
}

/// The triage state of one item. An item nobody triaged is `New` with nothing else set.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Triage {
    pub status: TriageStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<String>,
}

/// A change asked for; what is `None` stays as it is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TriageChange {
    pub status: Option<TriageStatus>,
    /// `Some(None)` clears the assignee.
    pub assignee: Option<Option<String>>,
    /// A note added to the audit trail.
    pub note: Option<String>,
}

impl TriageChange {
    pub fn is_empty(&self) -> bool {
        self.status.is_none() && self.assignee.is_none() && self.note.is_none()
    }
}

/// One entry of the audit trail: who changed which field from what to what, and when.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    #[serde(skip)]
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    /// `status`, `assignee` or `note`.
    pub field: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_value: Option<String>,
}

/// Filters of the console's incident list; every set field must match.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IncidentQuery {
    pub verdict: Option<VerdictKind>,
    pub status: Option<TriageStatus>,
    /// Last seen at or after.
    pub since: Option<Nanos>,
    /// First seen before.
    pub until: Option<Nanos>,
    /// Some alert of the incident is in this namespace.
    pub namespace: Option<String>,
    /// The incident involves this host.
    pub hostname: Option<String>,
    /// Some activity of its timeline is this rule.
    pub rule: Option<String>,
    /// This MITRE tactic is in its chain: its name or slug, in any case (`Execution`,
    /// `credential_access`).
    pub tactic: Option<String>,
}

/// Filters of the console's cluster list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterQuery {
    pub verdict: Option<VerdictKind>,
    pub status: Option<TriageStatus>,
    pub rule: Option<String>,
    /// Last seen at or after.
    pub since: Option<Nanos>,
    /// Case-insensitive text in the rule, location or activity (the command line).
    pub text: Option<String>,
}

/// Alerts of one minute (or bucket) with one priority and verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistogramBucket {
    /// The bucket's start.
    pub start: Nanos,
    pub priority: Option<Priority>,
    pub verdict: Option<VerdictKind>,
    pub count: u64,
}

/// The console's overview figures over a window.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Overview {
    pub buckets: Vec<HistogramBucket>,
    /// Rules with the most alerts in the window, most first.
    pub top_rules: Vec<(String, u64)>,
    /// Open incidents (new or acknowledged) by verdict.
    pub open_incidents: Vec<(VerdictKind, u64)>,
    /// Benign clusters with the most alerts (seen in the window), most first.
    pub noisy_benign: Vec<ClusterRow>,
}

/// A page of alert search results: scanning stops at a bound, so a page may hold fewer
/// matches than asked and still have a next cursor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchPage<T> {
    pub items: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// Alerts looked at for this page.
    pub scanned: u64,
}
