//! Prometheus metrics, one registry per server (tests run several in one process).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PrioritySource {
    // Static names: counted per alert, so no allocation per count.
    pub priority: &'static str,
    pub source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerdictLabel {
    pub verdict: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SinkOutcome {
    pub sink: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LimitLabel {
    pub limit: &'static str,
}

pub struct Metrics {
    registry: Registry,
    pub limit_rejections: Family<LimitLabel, Counter>,
    pub open_connections: Gauge,
    pub max_connections: Gauge,
    pub disk_free_bytes: Gauge,
    pub disk_low: Gauge,
    pub alerts_received: Family<PrioritySource, Counter>,
    pub alerts_duplicate: Counter,
    pub uuid_store_lookups: Counter,
    pub uuid_filter_ready: Gauge,
    pub nats_partitions_held: Gauge,
    pub nats_partitions_taken: Counter,
    pub alerts_rejected: Family<ReasonLabel, Counter>,
    pub ingest_throttled: Family<ReasonLabel, Counter>,
    pub unauthorized: Counter,
    pub ingest_seconds: Histogram,
    pub reports: Family<VerdictLabel, Counter>,
    pub analysis_errors: Counter,
    pub queue_depth: Gauge,
    pub queue_capacity: Gauge,
    pub store_commit_seconds: Histogram,
    pub store_batch_alerts: Histogram,
    pub analysis_commit_seconds: Histogram,
    pub store_errors: Counter,
    pub store_read_seconds: Histogram,
    pub llm_requests: Family<OutcomeLabel, Counter>,
    pub llm_seconds: Histogram,
    pub notifications: Family<SinkOutcome, Counter>,
    pub notifications_dropped: Counter,
    pub retention_deleted: Counter,
}

fn latency() -> Histogram {
    // 50 µs to ~13 s.
    Histogram::new(exponential_buckets(0.00005, 2.0, 19))
}

impl Metrics {
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("falco_analyst");
        let m = Metrics {
            limit_rejections: Family::default(),
            open_connections: Gauge::default(),
            max_connections: Gauge::default(),
            disk_free_bytes: Gauge::default(),
            disk_low: Gauge::default(),
            alerts_received: Family::default(),
            alerts_duplicate: Counter::default(),
            uuid_store_lookups: Counter::default(),
            uuid_filter_ready: Gauge::default(),
            nats_partitions_held: Gauge::default(),
            nats_partitions_taken: Counter::default(),
            alerts_rejected: Family::default(),
            ingest_throttled: Family::default(),
            unauthorized: Counter::default(),
            ingest_seconds: latency(),
            reports: Family::default(),
            analysis_errors: Counter::default(),
            queue_depth: Gauge::default(),
            queue_capacity: Gauge::default(),
            store_commit_seconds: latency(),
            store_batch_alerts: Histogram::new(exponential_buckets(1.0, 2.0, 14)),
            analysis_commit_seconds: latency(),
            store_errors: Counter::default(),
            store_read_seconds: latency(),
            llm_requests: Family::default(),
            // LLM answers take seconds: 50 ms to ~100 s.
            llm_seconds: Histogram::new(exponential_buckets(0.05, 2.0, 12)),
            notifications: Family::default(),
            notifications_dropped: Counter::default(),
            retention_deleted: Counter::default(),
            registry: Registry::default(),
        };
        r.register(
            "limit_rejections",
            "Requests, connections or records refused or cut off by a resource limit, by limit \
             (the names of docs/service.md \"Limits\")",
            m.limit_rejections.clone(),
        );
        r.register(
            "open_connections",
            "HTTP connections open now",
            m.open_connections.clone(),
        );
        r.register(
            "max_connections",
            "HTTP connections allowed at once (server.max_connections, capped by the file limit)",
            m.max_connections.clone(),
        );
        r.register(
            "disk_free_bytes",
            "Free bytes on the database's file system (for unprivileged users)",
            m.disk_free_bytes.clone(),
        );
        r.register(
            "disk_low",
            "1 while free space is below ingest.min_free_disk (ingest answers 503)",
            m.disk_low.clone(),
        );
        r.register(
            "alerts_received",
            "Alerts accepted at ingest, by priority and source",
            m.alerts_received.clone(),
        );
        r.register(
            "alerts_duplicate",
            "Alerts whose uuid was already stored (redeliveries)",
            m.alerts_duplicate.clone(),
        );
        r.register(
            "uuid_store_lookups",
            "Received uuids looked up in the store because the uuid filter could not rule them out \
             (redeliveries, ~1 % of new alerts, and every alert until the filter is built)",
            m.uuid_store_lookups.clone(),
        );
        r.register(
            "uuid_filter_ready",
            "1 once the filter of stored uuids is built (until then every uuid is looked up)",
            m.uuid_filter_ready.clone(),
        );
        r.register(
            "nats_partitions_held",
            "With --nats: alert partitions whose lease this replica holds",
            m.nats_partitions_held.clone(),
        );
        r.register(
            "nats_partitions_taken",
            "With --nats: partition leases taken (at start, from a replica that died or handed over)",
            m.nats_partitions_taken.clone(),
        );
        r.register(
            "alerts_rejected",
            "Records rejected at ingest and dead-lettered, by reason",
            m.alerts_rejected.clone(),
        );
        r.register(
            "ingest_throttled",
            "Ingest requests refused for back-pressure (429/503), by reason",
            m.ingest_throttled.clone(),
        );
        r.register(
            "unauthorized_requests",
            "Requests refused for missing or wrong credentials",
            m.unauthorized.clone(),
        );
        r.register(
            "ingest_request_seconds",
            "Ingest request latency, body read to response",
            m.ingest_seconds.clone(),
        );
        r.register("reports", "Alerts analysed, by verdict", m.reports.clone());
        r.register(
            "analysis_errors",
            "Stored alerts that could not be analysed",
            m.analysis_errors.clone(),
        );
        r.register(
            "queue_depth",
            "Alerts stored and waiting for analysis",
            m.queue_depth.clone(),
        );
        r.register(
            "queue_capacity",
            "Analysis queue capacity",
            m.queue_capacity.clone(),
        );
        r.register(
            "store_commit_seconds",
            "Latency of the journal append an acknowledgement waits for (one group of received alerts)",
            m.store_commit_seconds.clone(),
        );
        r.register(
            "store_batch_alerts",
            "Alerts per journal append (group commit)",
            m.store_batch_alerts.clone(),
        );
        r.register(
            "store_analysis_commit_seconds",
            "Latency of a store transaction writing analysed alerts, incidents, reports and dead letters",
            m.analysis_commit_seconds.clone(),
        );
        r.register(
            "store_errors",
            "Failed store transactions",
            m.store_errors.clone(),
        );
        r.register(
            "store_read_seconds",
            "Store query latency for the API",
            m.store_read_seconds.clone(),
        );
        r.register(
            "llm_requests",
            "LLM narrations of kept reports, by outcome (ok, cache_hit, dropped, or why none)",
            m.llm_requests.clone(),
        );
        r.register(
            "llm_request_seconds",
            "Time to get a narrative from the LLM API, retries included",
            m.llm_seconds.clone(),
        );
        r.register(
            "notifications",
            "Notifications, by sink and outcome",
            m.notifications.clone(),
        );
        r.register(
            "notifications_dropped",
            "Notifications dropped because the notifier queue was full",
            m.notifications_dropped.clone(),
        );
        r.register(
            "retention_deleted_alerts",
            "Alerts deleted by retention",
            m.retention_deleted.clone(),
        );
        Metrics { registry: r, ..m }
    }

    /// The Prometheus/OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut s = String::new();
        if prometheus_client::encoding::text::encode(&mut s, &self.registry).is_err() {
            s.clear();
        }
        s
    }

    pub fn rejected_n(&self, reason: &str, n: u64) {
        self.alerts_rejected
            .get_or_create(&ReasonLabel {
                reason: reason.into(),
            })
            .inc_by(n);
    }

    pub fn rejected(&self, reason: &str) {
        self.alerts_rejected
            .get_or_create(&ReasonLabel {
                reason: reason.into(),
            })
            .inc();
    }

    /// A resource limit refused or cut something off; `limit` is its configuration name.
    pub fn limited(&self, limit: &'static str) {
        self.limited_by(limit, 1);
    }

    pub fn limited_by(&self, limit: &'static str, n: u64) {
        self.limit_rejections
            .get_or_create(&LimitLabel { limit })
            .inc_by(n);
    }

    pub fn throttled(&self, reason: &str) {
        self.ingest_throttled
            .get_or_create(&ReasonLabel {
                reason: reason.into(),
            })
            .inc();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
