//! The durable pipeline behind ingest.
//!
//! ```text
//!  HTTP handlers ──(alerts + oneshot ack)──▶ ingest thread ──append──▶ journal ─▶ ack ─▶ 2xx
//!        ▲ 429 when the analysis queue                │ new alerts (after the append)
//!        │ has no room (semaphore)                    ▼
//!        └──────────── permits released ◀── analysis thread ──(alerts + analyses)──▶ store writer
//!                                                     │                                   │ commit
//!                                                     ├──▶ notifier task (Slack, webhook) └─▶ Remove ─▶ ingest thread
//!                                                     └──▶ narration task (LLM) ──(narrated report)──▶ store writer
//! ```
//!
//! The queue in front of analysis is `crate::queue` (the journal, `queue/journal.rs`, or
//! JetStream, `crate::nats`); this module holds what follows it whichever queue runs: the
//! analysis thread (`Correlator`) and the store writer. On one node:
//!
//! * The ingest thread owns the journal and appends whatever is queued (up to `max_batch`
//!   alerts) with one write: group commit. A handler's 2xx waits for the append that holds its
//!   alerts. A uuid in flight (appended, not yet stored) or already stored is a duplicate.
//! * The analysis queue is bounded by a semaphore of `queue_capacity` permits: ingest takes one
//!   per alert before anything is written (none free: 429, nothing kept, the sender retries);
//!   the store writer gives them back once the alert is stored with its analysis (a failing
//!   store is retried, so the queue fills and ingest slows senders down).
//! * The store writer inserts each alert with its analysis and its cluster count in one
//!   transaction, under its journal sequence number as id, then tells the ingest thread, which
//!   forgets it (in-flight set, journal segment). A crash at any point leaves the alert in the
//!   journal (analysed again at start-up) or in the store, analysed and counted once.
//! * With an LLM configured, kept reports are queued for narration only after their
//!   deterministic analysis is queued for writing (so the narrated version, written later
//!   through the same writer, always replaces it and never the other way round); a full
//!   narration queue drops the narration, never the report.

use crate::metrics::{Metrics, OutcomeLabel, PrioritySource, SinkOutcome, VerdictLabel};
use fa_analyze::engine::{activity, Analyzer};
use fa_analyze::fingerprint::{fingerprint, Fingerprint};
use fa_analyze::incident::{entity_of, incident_report, Incident, IncidentTracker};
use fa_analyze::memory::StreamMemory;
use fa_analyze::verdict::{Context, Prevalence, PrevalenceEntry};
use fa_model::{Alert, Report, VerdictKind};
use fa_sinks::notify::{Notification, NotificationKind, Notifier};
use fa_store::{
    to_nanos, Analysis, ClusterUpdate, IncidentRow, Inserted, JournalRecord, LlmCacheEntry, Nanos,
    NewAlert, NewDeadLetter, ReportUpdate, RetentionPolicy, Store, WriteBatch,
};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, Semaphore};

mod analysis;
mod correlate;
mod writer;

pub use analysis::{analysis_loop, feed_backlog};
pub use correlate::{AnalysisConfig, Correlator};
pub use writer::{writer_loop, WriterConfig};

/// State shared by handlers and pipeline threads.
pub struct Shared {
    pub queue: Arc<Semaphore>,
    pub queue_capacity: usize,
    pub metrics: Metrics,
    /// False while starting and once shutdown begins.
    pub ready: AtomicBool,
    pub draining: AtomicBool,
    /// Set by the start-up scan when every alert left unanalysed has been queued.
    pub backlog_queued: AtomicBool,
    /// Shutdown timed out: stop analysing now (the rest is analysed at the next start).
    pub abort: AtomicBool,
    /// Analysis holds off while set (maintenance; tests use it to fill the queue).
    pub paused: AtomicBool,
}

impl Shared {
    pub fn new(queue_capacity: usize) -> Self {
        let metrics = Metrics::new();
        metrics.queue_capacity.set(queue_capacity as i64);
        Shared {
            queue: Arc::new(Semaphore::new(queue_capacity)),
            queue_capacity,
            metrics,
            ready: AtomicBool::new(false),
            draining: AtomicBool::new(false),
            backlog_queued: AtomicBool::new(false),
            abort: AtomicBool::new(false),
            paused: AtomicBool::new(false),
        }
    }

    /// Alerts stored (or being stored) and not yet analysed.
    pub fn queue_depth(&self) -> usize {
        self.queue_capacity
            .saturating_sub(self.queue.available_permits())
    }

    pub fn release(&self, n: usize) {
        if n > 0 {
            self.queue.add_permits(n);
        }
    }
}

pub type IngestReply = Result<Vec<Inserted>, String>;

/// Alerts of one request, for the journal.
pub struct IngestCmd {
    pub alerts: Vec<NewAlert>,
    /// The parsed alerts, in the same order, handed to analysis once committed.
    pub parsed: Vec<Alert>,
    pub reply: oneshot::Sender<IngestReply>,
}

/// What the ingest thread does.
pub enum JournalCmd {
    Append(IngestCmd),
    /// Alerts (id, uuid) the store has committed: the journal and the in-flight set no
    /// longer need them.
    Remove(Vec<(i64, String)>),
    /// Finish what is queued, then exit.
    Stop,
}

pub use crate::queue::journal::{journal_loop, Dedup, InFlight};

pub enum WriteCmd {
    /// Rejected records, committed before the sender gets its answer.
    DeadLetters {
        dead: Vec<NewDeadLetter>,
        reply: oneshot::Sender<Result<(), String>>,
    },
    Analyses {
        analyses: Vec<Analysis>,
        incidents: Vec<IncidentRow>,
    },
    /// A stored report rewritten with its LLM narrative (or the note saying why there is none).
    ReportUpdate(ReportUpdate),
    /// An answer for the persistent LLM cache.
    LlmCache(LlmCacheEntry),
    /// Run retention (in chunks, between batches) when the queue is idle.
    Retention,
    /// Finish what is queued, then exit.
    Stop,
}

pub struct QueuedAlert {
    /// Its journal sequence number, which becomes its id in the store (or its id there, for an
    /// alert stored unanalysed by an older version).
    pub id: i64,
    pub uuid: String,
    pub alert: Alert,
    /// The row to write with its analysis; `None` when it is already in the store.
    pub row: Option<NewAlert>,
}

/// A kept report waiting for its LLM narrative.
pub struct NarrationJob {
    pub alert_id: i64,
    pub uuid: String,
    /// The cluster fingerprint: one LLM request per cluster.
    pub fingerprint: String,
    /// The deterministic report, as stored.
    pub report: Report,
    pub alert: Alert,
}

/// Which correlation entities (`container:…`, `pod:…`, `actor:…`, `host:…`) a message is about.
pub type EntityFilter = Box<dyn Fn(&str) -> bool + Send>;

pub enum AnalysisMsg {
    Alert(Box<QueuedAlert>),
    /// This analyser now owns these entities (a JetStream partition taken over): state it held
    /// for them is stale, the store's is current.
    TakeOver(EntityFilter),
    /// These entities are no longer this analyser's (a partition handed over, its alerts stored).
    Forget(EntityFilter),
    Stop,
}

/// Run the calling thread under `SCHED_IDLE`: the threads nobody waits for (store writer,
/// analysis, checkpoints) then give way at once to the ones an acknowledgement waits for
/// (HTTP and the journal) whenever those wake up. A burst is acknowledged first and analysed a
/// moment later from the bounded queue; if ingest kept both cores busy for long, the queue
/// fills and ingest answers 429, which frees the cores again. These threads share no lock
/// with the acknowledgement path that they hold for more than a few microseconds.
pub fn background_priority() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: sched_setscheduler reads `param`; pid 0 is the calling thread.
        let r = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
        if r != 0 {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "could not lower a background thread's priority"
            );
        }
    }
}

/// The verdict as stored beside its alert. Written into a buffer sized for a typical verdict
/// (~700 bytes): growing the buffer reason by reason was a tenth of the analysis thread's time.
fn verdict_json(v: &fa_model::Verdict) -> String {
    let mut buf = Vec::with_capacity(1024);
    match serde_json::to_writer(&mut buf, v) {
        Ok(()) => String::from_utf8(buf).unwrap_or_else(|_| "null".into()),
        Err(_) => "null".into(),
    }
}

/// The store row of a received alert: its canonical JSON `body` and the columns filters use.
pub fn new_alert_row(a: &Alert, uuid: String, received_at: Nanos, body: String) -> NewAlert {
    NewAlert {
        uuid,
        received_at,
        time: a.time.map(to_nanos),
        rule: a.rule.as_str().to_string(),
        priority: a.priority,
        source: a.source.as_ref().map(|s| s.as_str().to_string()),
        hostname: a.field("hostname").map(|h| h.into_owned()),
        namespace: a
            .field("k8s.ns.name")
            .or_else(|| a.field("ka.target.namespace"))
            .map(|n| n.into_owned()),
        body,
    }
}

/// The metrics label of an alert's source. Plugin sources are named by the sender: they are
/// all `other`, to keep label cardinality bounded.
pub fn source_label(source: Option<&fa_model::Source>) -> &'static str {
    match source {
        Some(s) => s.known_name().unwrap_or("other"),
        None => "unknown",
    }
}

/// Count an accepted alert in the metrics.
pub fn count_received(m: &Metrics, priority: Option<fa_model::Priority>, source: &'static str) {
    let priority = priority.map_or("unknown", |p| p.as_str());
    m.alerts_received
        .get_or_create(&PrioritySource { priority, source })
        .inc();
}

/// Record a notifier outcome in the metrics.
pub fn count_notification(m: &Metrics, sink: &str, outcome: &str) {
    m.notifications
        .get_or_create(&SinkOutcome {
            sink: sink.into(),
            outcome: outcome.into(),
        })
        .inc();
}

#[cfg(test)]
mod tests {
    use super::*;
    use fa_store::*;
    use std::sync::atomic::AtomicUsize;

    /// A real store whose first `fail` writes fail (a full disk, say).
    struct Flaky {
        inner: SqliteStore,
        fail: Arc<AtomicUsize>,
        attempts: Arc<AtomicUsize>,
    }

    impl Store for Flaky {
        fn write(&mut self, b: &WriteBatch) -> Result<Vec<Inserted>, StoreError> {
            self.attempts.fetch_add(1, Ordering::SeqCst);
            if self
                .fail
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return Err(StoreError::Corrupt("disk full (test)".into()));
            }
            self.inner.write(b)
        }
        fn apply_retention(
            &mut self,
            p: &RetentionPolicy,
            now: Nanos,
            chunk: usize,
        ) -> Result<RetentionOutcome, StoreError> {
            self.inner.apply_retention(p, now, chunk)
        }
        fn unanalyzed(
            &self,
            after: i64,
            up_to: i64,
            limit: usize,
        ) -> Result<Vec<UnanalyzedAlert>, StoreError> {
            self.inner.unanalyzed(after, up_to, limit)
        }
        fn alert_exists(&self, uuid: &str) -> Result<bool, StoreError> {
            self.inner.alert_exists(uuid)
        }
        fn for_each_uuid(&self, f: &mut dyn FnMut(&str)) -> Result<(), StoreError> {
            self.inner.for_each_uuid(f)
        }
        fn alert_id_exists(&self, id: i64) -> Result<bool, StoreError> {
            self.inner.alert_id_exists(id)
        }
        fn max_alert_id(&self) -> Result<i64, StoreError> {
            self.inner.max_alert_id()
        }
        fn stats(&self) -> Result<StoreStats, StoreError> {
            self.inner.stats()
        }
        fn list_alerts(
            &self,
            f: &AlertFilter,
            p: &PageRequest,
        ) -> Result<Page<AlertRow>, StoreError> {
            self.inner.list_alerts(f, p)
        }
        fn get_alert(&self, uuid: &str) -> Result<Option<AlertRecord>, StoreError> {
            self.inner.get_alert(uuid)
        }
        fn list_clusters(
            &self,
            f: &ClusterFilter,
            p: &PageRequest,
        ) -> Result<Page<ClusterRow>, StoreError> {
            self.inner.list_clusters(f, p)
        }
        fn get_cluster(&self, fp: &str) -> Result<Option<ClusterRow>, StoreError> {
            self.inner.get_cluster(fp)
        }
        fn list_incidents(&self, p: &PageRequest) -> Result<Page<IncidentRow>, StoreError> {
            self.inner.list_incidents(p)
        }
        fn get_incident(&self, id: &str) -> Result<Option<IncidentRow>, StoreError> {
            self.inner.get_incident(id)
        }
        fn recent_incidents(
            &self,
            since: Nanos,
            limit: usize,
        ) -> Result<Vec<IncidentRow>, StoreError> {
            self.inner.recent_incidents(since, limit)
        }
        fn list_dead_letters(&self, p: &PageRequest) -> Result<Page<DeadLetterRow>, StoreError> {
            self.inner.list_dead_letters(p)
        }
        fn llm_cache_get(&self, key: &str) -> Result<Option<String>, StoreError> {
            self.inner.llm_cache_get(key)
        }
        fn llm_cache_put(&mut self, k: &str, v: &str, now: Nanos) -> Result<(), StoreError> {
            self.inner.llm_cache_put(k, v, now)
        }
    }

    fn analysed(id: i64) -> Analysis {
        let uuid = format!("a{id}");
        Analysis {
            alert_id: id,
            row: Some(NewAlert {
                uuid: uuid.clone(),
                received_at: 1,
                time: None,
                rule: "R".into(),
                priority: None,
                source: None,
                hostname: None,
                namespace: None,
                body: "{}".into(),
            }),
            verdict: VerdictKind::Benign,
            score: 0.0,
            verdict_json: "{}".into(),
            fingerprint: "fp".into(),
            incident_id: None,
            report_json: None,
            cluster: ClusterUpdate {
                rule: "R".into(),
                time: 1,
                verdict: VerdictKind::Benign,
                uuid,
                location: "host:h".into(),
                activity: "x".into(),
            },
            analyzed_at: 1,
        }
    }

    /// An alert of a container, as the ingest thread queues it.
    fn queued(id: i64) -> AnalysisMsg {
        let alert: Alert = serde_json::from_value(serde_json::json!({
            "rule": "Terminal shell in container",
            "priority": "Notice",
            "source": "syscall",
            "time": "2026-03-02T10:00:00Z",
            "output_fields": {"container.id": "abc123", "proc.name": "bash", "proc.cmdline": format!("bash -c {id}")}
        }))
        .unwrap();
        AnalysisMsg::Alert(Box::new(QueuedAlert {
            id,
            uuid: format!("q{id}"),
            alert,
            row: None,
        }))
    }

    #[test]
    fn every_hand_over_carries_the_incidents_of_its_analyses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fa.db");
        let _created = SqliteStore::open(&path, &SqliteOptions::default()).unwrap();
        let reader = SqliteStore::open_reader(&path, &SqliteOptions::default()).unwrap();
        let c = Correlator::new(
            Analyzer::load(&[]).unwrap(),
            Box::new(reader),
            None,
            AnalysisConfig {
                window: chrono::Duration::minutes(10),
                max_open_incidents: 100,
                public_url: None,
                store_interval: Duration::ZERO,
            },
        );
        let shared = Arc::new(Shared::new(1000));
        let (atx, arx) = std_mpsc::channel();
        let (wtx, mut wrx) = mpsc::channel(100);
        // Queued before the thread starts: read as one batch, handed over at once (interval
        // zero), with no pause in the stream to flush incidents on.
        for id in 1..=10 {
            atx.send(queued(id)).unwrap();
        }
        let t = std::thread::spawn({
            let shared = shared.clone();
            move || analysis_loop(arx, wtx, c, shared)
        });
        let Some(WriteCmd::Analyses {
            analyses,
            incidents,
        }) = wrx.blocking_recv()
        else {
            panic!("expected analyses");
        };
        assert_eq!(analyses.len(), 10);
        let id = analyses[9].incident_id.clone().expect("an incident formed");
        let inc = incidents.iter().find(|i| i.id == id);
        assert_eq!(inc.map(|i| i.alert_count), Some(10), "{incidents:?}");
        drop(atx);
        t.join().unwrap();
    }

    fn correlator(path: &std::path::Path) -> Correlator {
        let reader = SqliteStore::open_reader(path, &SqliteOptions::default()).unwrap();
        Correlator::new(
            Analyzer::load(&[]).unwrap(),
            Box::new(reader),
            None,
            AnalysisConfig {
                window: chrono::Duration::minutes(10),
                max_open_incidents: 100,
                public_url: None,
                store_interval: Duration::ZERO,
            },
        )
    }

    fn alert_of(msg: AnalysisMsg) -> QueuedAlert {
        match msg {
            AnalysisMsg::Alert(q) => *q,
            _ => unreachable!(),
        }
    }

    /// A partition comes back to a replica that held it before: what it remembers about the
    /// partition's entities is stale, the incident the other replica carried on is in the store.
    #[test]
    fn taking_entities_over_drops_stale_incidents_and_resumes_the_stored_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fa.db");
        let mut store = SqliteStore::open(&path, &SqliteOptions::default()).unwrap();
        let (mut a, mut b) = (correlator(&path), correlator(&path));
        let mut rows = Vec::new();
        // B saw two alerts of the container (an incident of its own), then lost the partition.
        for id in 1..=2 {
            b.analyze(alert_of(queued(id)), &mut rows);
        }
        // A held it since: three more alerts, its incident stored.
        let mut a_rows = Vec::new();
        let mut last = None;
        for id in 3..=5 {
            last = a.analyze(alert_of(queued(id)), &mut a_rows).incident_id;
        }
        a.flush_incidents(&mut a_rows);
        let a_incident = last.expect("A's incident");
        store
            .write(&WriteBatch {
                incidents: a_rows,
                ..Default::default()
            })
            .unwrap();
        // B takes the container back: A's incident goes on, B's stale one is gone.
        let mine = |e: &str| e == "container:abc123";
        assert_eq!(b.take_over(&mine), 1);
        let next = b.analyze(alert_of(queued(6)), &mut rows);
        assert_eq!(next.incident_id.as_deref(), Some(a_incident.as_str()));
        b.flush_incidents(&mut rows);
        let row = rows.iter().rev().find(|r| r.id == a_incident).unwrap();
        assert_eq!(row.alert_count, 4, "A's three alerts and this one");
        // Forgetting other entities leaves this one alone.
        b.forget(&|e: &str| e == "container:other");
        let again = b.analyze(alert_of(queued(7)), &mut rows);
        assert_eq!(again.incident_id.as_deref(), Some(a_incident.as_str()));
    }

    #[test]
    fn a_failing_store_is_retried_and_holds_the_queue_until_the_alerts_are_stored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fa.db");
        let inner = SqliteStore::open(&path, &SqliteOptions::default()).unwrap();
        let (fail, attempts) = (Arc::new(AtomicUsize::new(2)), Arc::new(AtomicUsize::new(0)));
        let store = Flaky {
            inner,
            fail: fail.clone(),
            attempts: attempts.clone(),
        };
        let shared = Arc::new(Shared::new(10));
        // Three alerts acknowledged: three permits taken.
        shared
            .queue
            .clone()
            .try_acquire_many_owned(3)
            .unwrap()
            .forget();
        let (wtx, wrx) = mpsc::channel(16);
        let (jtx, mut jrx) = mpsc::channel(16);
        let writer = {
            let shared = shared.clone();
            std::thread::spawn(move || {
                writer_loop(
                    Box::new(store),
                    wrx,
                    jtx,
                    shared,
                    WriterConfig {
                        max_batch: 100,
                        retention: RetentionPolicy::default(),
                        retention_chunk: 10,
                    },
                )
            })
        };
        wtx.blocking_send(WriteCmd::Analyses {
            analyses: vec![analysed(1), analysed(2), analysed(3)],
            incidents: Vec::new(),
        })
        .unwrap();
        // While the store fails (the writer waits 100 ms after the first failure), the
        // permits stay taken and the journal keeps the alerts.
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(shared.queue_depth(), 3);
        assert!(jrx.try_recv().is_err());
        let removed = jrx.blocking_recv().unwrap();
        assert_eq!(
            attempts.load(Ordering::SeqCst),
            3,
            "two failures, then success"
        );
        match removed {
            JournalCmd::Remove(done) => {
                let ids: Vec<i64> = done.iter().map(|(id, _)| *id).collect();
                assert_eq!(ids, vec![1, 2, 3]);
            }
            _ => panic!("expected the journal to be told"),
        }
        assert_eq!(shared.queue_depth(), 0);
        wtx.blocking_send(WriteCmd::Stop).unwrap();
        writer.join().unwrap();
        let check = SqliteStore::open_reader(&path, &SqliteOptions::default()).unwrap();
        assert_eq!(check.stats().unwrap().alerts, 3);
        assert_eq!(fail.load(Ordering::SeqCst), 0);
    }
}
