//! Durable storage for `falco-analyst serve`: alerts, their analyses, clusters, incidents,
//! reports, dead letters and the LLM cache.
//!
//! [`Store`] is the interface the service uses; [`SqliteStore`] implements it on SQLite (WAL
//! mode, versioned migrations applied at open) and [`PgStore`] on PostgreSQL, for several
//! replicas sharing one database ([`DbLocation`] tells them apart from `--db`). The trait is synchronous: the service drives
//! one writing instance from a dedicated thread (group commit: many requests, one transaction
//! through [`Store::write`]) and reads through other instances, so a PostgreSQL
//! implementation can follow without touching the service.

pub mod console;
pub mod journal;
mod location;
mod packed;
mod postgres;
mod rollup;
mod sqlite;
mod types;

pub use console::*;
pub use journal::{journal_dir, Journal, JournalRecord, JournalSyncer};
pub use location::{redact, DbLocation, LocationError, PgUrl};
pub use postgres::{PgOptions, PgStore, ID_BLOCK_BITS, PG_MIGRATIONS};
pub use sqlite::{text_key, SqliteOptions, SqliteStore, Synchronous, MIGRATIONS};
pub use types::*;

use chrono::{DateTime, Utc};

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
    #[error("the database schema is version {found}, newer than this program knows ({known}); upgrade falco-analyst")]
    SchemaTooNew { found: i64, known: i64 },
    #[error("migration {version} failed: {source}")]
    Migration {
        version: i64,
        #[source]
        source: rusqlite::Error,
    },
    #[error("journal I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("PostgreSQL: {}", crate::postgres::describe(.0))]
    Postgres(#[from] ::postgres::Error),
    #[error("PostgreSQL migration {version} failed: {message}")]
    PgMigration { version: i64, message: String },
    #[error("the PostgreSQL URL {url} is not valid: {message}")]
    PgConfig {
        /// Shown with its password hidden.
        url: String,
        message: String,
    },
    #[error("the connection to the database is gone")]
    ConnectionLost,
    /// The implementation does not provide this (yet).
    #[error("this store does not support {0}")]
    Unsupported(&'static str),
}

/// The storage interface of the service.
///
/// Writes go through [`Store::write`] only, one [`WriteBatch`] per transaction, so an
/// implementation can commit many requests at once. Reads never block the writer (SQLite WAL
/// readers see the last committed state).
pub trait Store: Send {
    /// Apply a batch atomically: insert alerts (a uuid already stored is a duplicate, not an
    /// error), dead letters, analyses and incident upserts. Returns one outcome per alert, in
    /// the batch's order.
    fn write(&mut self, batch: &WriteBatch) -> Result<Vec<Inserted>, StoreError>;

    /// Delete what the policy says is too old or too much, at most `chunk` alerts per call
    /// (so the caller can interleave it with ingest). Alerts not yet analysed are never
    /// deleted.
    fn apply_retention(
        &mut self,
        policy: &RetentionPolicy,
        now: Nanos,
        chunk: usize,
    ) -> Result<RetentionOutcome, StoreError>;

    /// Alerts stored but not yet analysed with `after < id <= up_to`, oldest first.
    fn unanalyzed(
        &self,
        after: i64,
        up_to: i64,
        limit: usize,
    ) -> Result<Vec<UnanalyzedAlert>, StoreError>;

    /// Whether an alert with this uuid is stored.
    fn alert_exists(&self, uuid: &str) -> Result<bool, StoreError>;

    /// Call `f` with the uuid of every stored alert (in no particular order), from one
    /// snapshot of the store.
    fn for_each_uuid(&self, f: &mut dyn FnMut(&str)) -> Result<(), StoreError>;

    /// Whether an alert with this id is stored.
    fn alert_id_exists(&self, id: i64) -> Result<bool, StoreError>;

    /// The largest alert id stored (0 when empty).
    fn max_alert_id(&self) -> Result<i64, StoreError>;

    /// The id after which the writer's ingest journal numbers new alerts, taken once at
    /// start-up. A store with one writer answers the largest id stored; a store shared by
    /// several writers (PostgreSQL) hands each one a range of its own.
    fn claim_id_floor(&mut self) -> Result<i64, StoreError> {
        self.max_alert_id()
    }

    /// Store-wide counts for `/readyz` and metrics.
    fn stats(&self) -> Result<StoreStats, StoreError>;

    fn list_alerts(
        &self,
        filter: &AlertFilter,
        page: &PageRequest,
    ) -> Result<Page<AlertRow>, StoreError>;
    fn get_alert(&self, uuid: &str) -> Result<Option<AlertRecord>, StoreError>;

    fn list_clusters(
        &self,
        filter: &ClusterFilter,
        page: &PageRequest,
    ) -> Result<Page<ClusterRow>, StoreError>;
    fn get_cluster(&self, fingerprint: &str) -> Result<Option<ClusterRow>, StoreError>;

    /// An activity's past as the store holds it: its cluster's count, time span and worst
    /// verdict, and the hosts it was seen on. `None` when it was never stored.
    /// The default knows the cluster only, not its hosts.
    fn activity_history(&self, fingerprint: &str) -> Result<Option<ActivityHistory>, StoreError> {
        Ok(self.get_cluster(fingerprint)?.map(|c| ActivityHistory {
            count: c.count,
            first_seen: c.first_seen,
            last_seen: c.last_seen,
            verdict: c.verdict,
            hosts: Vec::new(),
        }))
    }

    /// The time of the oldest stored alert: since when the store has been watching.
    fn first_alert_time(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(None)
    }

    fn list_incidents(&self, page: &PageRequest) -> Result<Page<IncidentRow>, StoreError>;
    fn get_incident(&self, id: &str) -> Result<Option<IncidentRow>, StoreError>;
    /// Incidents written at or after `since`, most recently written first, at most `limit`:
    /// those a restarted service may still be adding to.
    fn recent_incidents(&self, since: Nanos, limit: usize) -> Result<Vec<IncidentRow>, StoreError>;

    fn list_dead_letters(&self, page: &PageRequest) -> Result<Page<DeadLetterRow>, StoreError>;

    fn llm_cache_get(&self, key: &str) -> Result<Option<String>, StoreError>;
    fn llm_cache_put(&mut self, key: &str, value: &str, now: Nanos) -> Result<(), StoreError>;
    /// Background work for the alert search: index up to `max` stored alerts not indexed yet,
    /// oldest first, in one transaction; returns how many (0: nothing left). The service calls
    /// it while its store writer has nothing else to do, so indexing never slows storing; a
    /// store that indexes as it writes has nothing to do here.
    fn index_pending(&mut self, max: usize) -> Result<usize, StoreError> {
        let _ = max;
        Ok(0)
    }

    // The web console: triage and the queries behind its pages. The defaults say the store
    // does not support them, so an implementation can add them later.

    /// The triage of one item; `None` when nobody has triaged it.
    fn triage_get(&self, kind: TriageKind, item: &str) -> Result<Option<Triage>, StoreError> {
        let _ = (kind, item);
        Err(StoreError::Unsupported("triage"))
    }

    /// Apply a change (one transaction, one audit entry per changed field and per note) and
    /// return the new state; `None` when the incident or cluster does not exist.
    fn triage_update(
        &mut self,
        kind: TriageKind,
        item: &str,
        change: &TriageChange,
        actor: &str,
        now: Nanos,
    ) -> Result<Option<Triage>, StoreError> {
        let _ = (kind, item, change, actor, now);
        Err(StoreError::Unsupported("triage"))
    }

    /// The audit trail of one item, newest first, keyset-paged.
    fn triage_audit(
        &self,
        kind: TriageKind,
        item: &str,
        page: &PageRequest,
    ) -> Result<Page<AuditEntry>, StoreError> {
        let _ = (kind, item, page);
        Err(StoreError::Unsupported("triage"))
    }

    /// The triage of those of `items` that have one.
    fn triage_map(
        &self,
        kind: TriageKind,
        items: &[String],
    ) -> Result<std::collections::HashMap<String, Triage>, StoreError> {
        let _ = (kind, items);
        Err(StoreError::Unsupported("triage"))
    }

    /// Fingerprints of the clusters that must not notify (acknowledged or false positive).
    fn muted_clusters(&self) -> Result<Vec<String>, StoreError> {
        Err(StoreError::Unsupported("triage"))
    }

    /// Alerts per `bucket` nanoseconds by priority and verdict in `[since, until)`, the `top`
    /// rules, open incidents by verdict and the `top` noisiest benign clusters.
    fn console_overview(
        &self,
        since: Nanos,
        until: Nanos,
        bucket: i64,
        top: usize,
    ) -> Result<Overview, StoreError> {
        let _ = (since, until, bucket, top);
        Err(StoreError::Unsupported("the console overview"))
    }

    /// Incidents matching the query, most recently updated first, keyset-paged.
    fn console_incidents(
        &self,
        query: &IncidentQuery,
        page: &PageRequest,
    ) -> Result<Page<IncidentRow>, StoreError> {
        let _ = (query, page);
        Err(StoreError::Unsupported("incident queries"))
    }

    /// Clusters matching the query, most recently seen first, keyset-paged.
    fn console_clusters(
        &self,
        query: &ClusterQuery,
        page: &PageRequest,
    ) -> Result<Page<ClusterRow>, StoreError> {
        let _ = (query, page);
        Err(StoreError::Unsupported("cluster queries"))
    }

    /// Alerts matching `filter` whose message or command line contains `text`
    /// (case-insensitive), newest first, looking at no more than `max_scan` alerts per page.
    fn search_alerts(
        &self,
        filter: &AlertFilter,
        text: &str,
        page: &PageRequest,
        max_scan: usize,
    ) -> Result<SearchPage<AlertRow>, StoreError> {
        let _ = (filter, text, page, max_scan);
        Err(StoreError::Unsupported("alert search"))
    }
}
