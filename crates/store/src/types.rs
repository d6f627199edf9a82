//! The records the store reads and writes.

use chrono::{DateTime, Utc};
use fa_model::{Priority, VerdictKind};
use serde::Serialize;

/// Nanoseconds since the Unix epoch, UTC: how every time is stored.
pub type Nanos = i64;

pub fn to_nanos(t: DateTime<Utc>) -> Nanos {
    // Out of range (after 2262) only for absurd input; clamp rather than fail.
    t.timestamp_nanos_opt().unwrap_or(i64::MAX)
}

pub fn from_nanos(n: Nanos) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(n)
}

/// An alert to store. `uuid` is its identity: the same uuid twice is one alert.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlert {
    pub uuid: String,
    pub received_at: Nanos,
    pub time: Option<Nanos>,
    pub rule: String,
    pub priority: Option<Priority>,
    pub source: Option<String>,
    pub hostname: Option<String>,
    pub namespace: Option<String>,
    /// The alert in canonical JSON.
    pub body: String,
}

/// A rejected record, kept byte for byte.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDeadLetter {
    pub received_at: Nanos,
    /// Where it came from: the route and peer address.
    pub origin: String,
    /// A short machine-readable kind (`json_syntax`, `missing_field`...).
    pub reason_kind: String,
    /// The full human-readable problem.
    pub reason: String,
    pub raw: Vec<u8>,
}

/// The analysis of one stored alert.
#[derive(Debug, Clone, PartialEq)]
pub struct Analysis {
    pub alert_id: i64,
    /// The alert itself, written now under `alert_id` (it came from the ingest journal); `None` when it
    /// is already in the store, unanalysed.
    pub row: Option<NewAlert>,
    pub verdict: VerdictKind,
    pub score: f32,
    /// The `fa_model::Verdict` as JSON, so the report can be rebuilt exactly.
    pub verdict_json: String,
    pub fingerprint: String,
    pub incident_id: Option<String>,
    /// The full report JSON, when it is kept (see `reports` in the schema).
    pub report_json: Option<String>,
    pub cluster: ClusterUpdate,
    pub analyzed_at: Nanos,
}

/// What one analysed alert adds to its cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterUpdate {
    pub rule: String,
    pub time: Nanos,
    pub verdict: VerdictKind,
    pub uuid: String,
    pub location: String,
    pub activity: String,
}

/// An incident's current state, replacing what was stored under its id.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IncidentRow {
    pub id: String,
    pub entity: String,
    pub first_seen: Option<Nanos>,
    pub last_seen: Option<Nanos>,
    pub alert_count: u64,
    pub verdict: VerdictKind,
    pub updated_at: Nanos,
    /// The `fa_model::IncidentReport` JSON.
    pub body: String,
}

/// A kept report rewritten after its analysis was stored (the LLM narrative added to it).
#[derive(Debug, Clone, PartialEq)]
pub struct ReportUpdate {
    pub alert_id: i64,
    /// The full report JSON that replaces the stored one.
    pub body: String,
}

/// One entry of the LLM narrative cache.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmCacheEntry {
    pub key: String,
    pub value: String,
    pub created_at: Nanos,
}

/// One transaction's worth of writes.
#[derive(Debug, Clone, Default)]
pub struct WriteBatch {
    pub alerts: Vec<NewAlert>,
    pub dead_letters: Vec<NewDeadLetter>,
    pub analyses: Vec<Analysis>,
    pub incidents: Vec<IncidentRow>,
    /// Applied after `analyses`; a report that is not stored (its alert deleted by retention
    /// meanwhile) is not created again.
    pub report_updates: Vec<ReportUpdate>,
    pub llm_cache: Vec<LlmCacheEntry>,
}

impl WriteBatch {
    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
            && self.dead_letters.is_empty()
            && self.analyses.is_empty()
            && self.incidents.is_empty()
            && self.report_updates.is_empty()
            && self.llm_cache.is_empty()
    }
}

/// What happened to one alert of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// Stored now under this row id.
    New(i64),
    /// Its uuid was already stored (redelivery): nothing written.
    Duplicate,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetentionPolicy {
    /// Analysed alerts (and dead letters, clusters, incidents) older than this go.
    pub max_age: Option<chrono::Duration>,
    /// At most this many alerts are kept; the oldest analysed ones go first.
    pub max_alerts: Option<u64>,
    /// At most this many dead letters are kept.
    pub max_dead_letters: Option<u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionOutcome {
    pub alerts_deleted: u64,
    pub dead_letters_deleted: u64,
    pub clusters_deleted: u64,
    pub incidents_deleted: u64,
    /// More remains to delete: call again.
    pub more: bool,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StoreStats {
    pub alerts: u64,
    pub unanalyzed: u64,
    pub clusters: u64,
    pub incidents: u64,
    pub dead_letters: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct UnanalyzedAlert {
    pub id: i64,
    pub uuid: String,
    pub body: String,
}

/// Filters for listing alerts; every set field must match.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertFilter {
    pub priority: Option<Priority>,
    /// This priority or more severe.
    pub min_priority: Option<Priority>,
    pub rule: Option<String>,
    pub verdict: Option<VerdictKind>,
    pub source: Option<String>,
    pub hostname: Option<String>,
    pub namespace: Option<String>,
    pub fingerprint: Option<String>,
    pub incident_id: Option<String>,
    pub analyzed: Option<bool>,
    /// Event time (receive time when the alert had none) at or after.
    pub since: Option<Nanos>,
    /// Event time strictly before.
    pub until: Option<Nanos>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ClusterFilter {
    pub rule: Option<String>,
    pub verdict: Option<VerdictKind>,
}

/// A page request: at most `limit` items after the opaque `cursor` of the previous page.
#[derive(Debug, Clone, PartialEq)]
pub struct PageRequest {
    pub limit: usize,
    pub cursor: Option<String>,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest {
            limit: 100,
            cursor: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass back as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// One alert in a list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertRow {
    #[serde(skip)]
    pub id: i64,
    pub uuid: String,
    pub received_at: DateTime<Utc>,
    pub time: DateTime<Utc>,
    pub rule: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub analyzed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<VerdictKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<String>,
}

/// One alert with everything stored about it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRecord {
    pub row: AlertRow,
    pub body: String,
    pub verdict_json: Option<String>,
    pub report_json: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterRow {
    pub fingerprint: String,
    pub rule: String,
    pub count: u64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub verdict: VerdictKind,
    /// The first alert of the cluster, whose report stands for it.
    pub representative_uuid: String,
    pub location: String,
    pub activity: String,
}

/// What the store knows of one activity's (fingerprint's) past: what prevalence over days,
/// across restarts and replicas, is read from.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityHistory {
    pub count: u64,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// The worst verdict any of its alerts got.
    pub verdict: VerdictKind,
    /// Distinct hosts among its most recent alerts (at most [`HISTORY_HOSTS`]).
    pub hosts: Vec<String>,
}

/// Distinct hosts an [`ActivityHistory`] lists at most: the verdict only asks "at least N".
pub const HISTORY_HOSTS: usize = 16;

/// Alerts of one fingerprint scanned for its hosts, newest first: a storm's millions of rows
/// are not read to learn that it spans a few hosts.
pub const HISTORY_SCAN: usize = 2_000;

#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetterRow {
    pub id: i64,
    pub received_at: DateTime<Utc>,
    pub origin: String,
    pub reason_kind: String,
    pub reason: String,
    pub raw: Vec<u8>,
}

/// 0 benign, 1 suspicious, 2 malicious: stored beside the name so "the worst so far" is MAX().
pub fn verdict_rank(v: VerdictKind) -> i64 {
    match v {
        VerdictKind::Benign => 0,
        VerdictKind::Suspicious => 1,
        VerdictKind::Malicious => 2,
    }
}
