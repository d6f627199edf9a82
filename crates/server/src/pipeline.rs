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

pub struct WriterConfig {
    pub max_batch: usize,
    pub retention: RetentionPolicy,
    pub retention_chunk: usize,
}

/// The store writer thread: analyses (with the alerts they belong to), incidents, dead
/// letters, narrated reports and the LLM cache, in large transactions nobody acknowledging
/// an alert waits for.
pub fn writer_loop(
    mut store: Box<dyn Store>,
    mut rx: mpsc::Receiver<WriteCmd>,
    journal_tx: mpsc::Sender<JournalCmd>,
    shared: Arc<Shared>,
    cfg: WriterConfig,
) {
    let mut retention_pending = false;
    // The alert search index is filled while there is nothing to store (fa-store
    // `index_pending`), so a storm is stored first and indexed after.
    let mut index_pending = true;
    let mut stopping = false;
    loop {
        let first = match rx.try_recv() {
            Ok(c) => c,
            Err(mpsc::error::TryRecvError::Disconnected) => break,
            Err(mpsc::error::TryRecvError::Empty) => {
                if retention_pending {
                    retention_pending = run_retention(store.as_mut(), &shared, &cfg);
                    continue;
                }
                if stopping {
                    break;
                }
                // Not in a storm: the alerts waiting to be stored come first.
                if index_pending && shared.queue_depth() < SEARCH_INDEX_MAX_QUEUE {
                    index_pending = index_search(store.as_mut(), &shared);
                    continue;
                }
                match rx.blocking_recv() {
                    Some(c) => c,
                    None => break,
                }
            }
        };
        let mut cmds = vec![first];
        let mut n_alerts = alerts_in(&cmds[0]);
        while n_alerts < cfg.max_batch {
            match rx.try_recv() {
                Ok(c) => {
                    n_alerts += alerts_in(&c);
                    cmds.push(c);
                }
                Err(_) => break,
            }
        }
        let mut batch = WriteBatch::default();
        let mut replies: Vec<oneshot::Sender<Result<(), String>>> = Vec::new();
        for c in cmds {
            match c {
                WriteCmd::DeadLetters { dead, reply } => {
                    batch.dead_letters.extend(dead);
                    replies.push(reply);
                }
                WriteCmd::Analyses {
                    analyses,
                    incidents,
                } => {
                    batch.analyses.extend(analyses);
                    batch.incidents.extend(incidents);
                }
                WriteCmd::ReportUpdate(r) => batch.report_updates.push(r),
                WriteCmd::LlmCache(e) => batch.llm_cache.push(e),
                WriteCmd::Retention => retention_pending = true,
                WriteCmd::Stop => stopping = true,
            }
        }
        if batch.is_empty() {
            for r in replies {
                let _ = r.send(Ok(()));
            }
            continue;
        }
        // A failed transaction is tried again (the disk may come back) rather than dropped:
        // the queue permits of its alerts come back only once they are stored, so while the
        // store fails, the queue fills and ingest answers 429 instead of piling up
        // acknowledged alerts. Dead letters are answered at once (their sender gets a 503).
        let mut backoff = Duration::from_millis(100);
        loop {
            let t = Instant::now();
            let result = store.write(&batch);
            shared
                .metrics
                .analysis_commit_seconds
                .observe(t.elapsed().as_secs_f64());
            match result {
                Ok(_) => {
                    index_pending = true;
                    break;
                }
                Err(e) => {
                    shared.metrics.store_errors.inc();
                    tracing::error!(error = %e, analyses = batch.analyses.len(), retry_in = ?backoff, "store write failed; the alerts stay in the journal");
                    for r in replies.drain(..) {
                        let _ = r.send(Err(e.to_string()));
                    }
                    batch.dead_letters.clear();
                    if shared.abort.load(Ordering::Relaxed) {
                        // Shutdown gave up waiting: analysed again at the next start.
                        shared.release(batch.analyses.len());
                        batch = WriteBatch::default();
                        break;
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        for r in replies {
            let _ = r.send(Ok(()));
        }
        let done: Vec<(i64, String)> = batch
            .analyses
            .iter()
            .filter_map(|a| a.row.as_ref().map(|r| (a.alert_id, r.uuid.clone())))
            .collect();
        // Stored: the queue has room again.
        shared.release(batch.analyses.len());
        shared.metrics.queue_depth.set(shared.queue_depth() as i64);
        // Stays in the journal if that thread has gone: dropped at the next start.
        if !done.is_empty() {
            let _ = journal_tx.blocking_send(JournalCmd::Remove(done));
        }
    }
    tracing::debug!("writer stopped");
}

fn alerts_in(c: &WriteCmd) -> usize {
    match c {
        WriteCmd::Analyses { analyses, .. } => analyses.len().max(1),
        _ => 1,
    }
}

/// Alerts indexed for search per call: a chunk takes tens of milliseconds, the longest the
/// next batch waits for it.
const SEARCH_INDEX_CHUNK: usize = 1000;
/// Search indexing waits while more alerts than this wait to be stored (a storm); a search
/// reads the alerts not indexed yet.
const SEARCH_INDEX_MAX_QUEUE: usize = 1000;

/// One chunk of search indexing; true when more may remain.
fn index_search(store: &mut dyn Store, shared: &Shared) -> bool {
    match store.index_pending(SEARCH_INDEX_CHUNK) {
        Ok(n) => n > 0,
        Err(e) => {
            shared.metrics.store_errors.inc();
            tracing::warn!(error = %e, "indexing alerts for search failed; will try after the next write");
            false
        }
    }
}

/// One chunk of retention; true when more remains.
fn run_retention(store: &mut dyn Store, shared: &Shared, cfg: &WriterConfig) -> bool {
    match store.apply_retention(
        &cfg.retention,
        to_nanos(chrono::Utc::now()),
        cfg.retention_chunk,
    ) {
        Ok(o) => {
            shared.metrics.retention_deleted.inc_by(o.alerts_deleted);
            if o.alerts_deleted + o.dead_letters_deleted + o.incidents_deleted + o.clusters_deleted
                > 0
            {
                tracing::info!(
                    alerts = o.alerts_deleted,
                    dead_letters = o.dead_letters_deleted,
                    clusters = o.clusters_deleted,
                    incidents = o.incidents_deleted,
                    "retention"
                );
            }
            o.more
        }
        Err(e) => {
            shared.metrics.store_errors.inc();
            tracing::error!(error = %e, "retention failed");
            false
        }
    }
}

pub struct AnalysisConfig {
    pub window: chrono::Duration,
    pub max_open_incidents: usize,
    pub public_url: Option<String>,
    /// How often analyses are handed to the store writer.
    pub store_interval: Duration,
}

/// The analysis thread's state: cluster counts and open incidents.
pub struct Correlator {
    analyzer: Analyzer,
    tracker: IncidentTracker,
    /// Cluster sizes: authoritative for every fingerprint seen since start; others are read
    /// from the store on first sight.
    /// Per cluster: alerts so far, and the worst verdict among its alerts (the worst one has
    /// a stored report).
    clusters: HashMap<Fingerprint, (u64, VerdictKind)>,
    reader: Box<dyn Store>,
    dirty: HashSet<String>,
    /// The verdict each incident was last notified with.
    notified: HashMap<String, VerdictKind>,
    notifier: Option<(Arc<Notifier>, mpsc::Sender<Notification>)>,
    pending: Vec<Notification>,
    narration: Option<mpsc::Sender<NarrationJob>>,
    pending_narrations: Vec<NarrationJob>,
    cfg: AnalysisConfig,
    /// Attack evidence and downloads seen earlier, as `analyze` keeps them.
    memory: StreamMemory,
    /// Each activity's history: taken up from the store on first sight (days of alerts, other
    /// replicas' and earlier runs' too), then counted here.
    prevalence: HashMap<Fingerprint, PrevalenceEntry>,
    /// The oldest stored alert's time, read at start: since when the store has been watching.
    observed_since: Option<chrono::DateTime<chrono::Utc>>,
}

const MAX_CACHED_CLUSTERS: usize = 500_000;
/// Activities whose history is kept in memory at most (re-read from the store after).
const MAX_CACHED_PREVALENCE: usize = 100_000;

impl Correlator {
    pub fn new(
        analyzer: Analyzer,
        reader: Box<dyn Store>,
        notifier: Option<(Arc<Notifier>, mpsc::Sender<Notification>)>,
        cfg: AnalysisConfig,
    ) -> Self {
        let observed_since = reader.first_alert_time().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "reading the oldest stored alert: prevalence starts now");
            None
        });
        Correlator {
            tracker: IncidentTracker::new(cfg.window, cfg.max_open_incidents, 1),
            memory: StreamMemory::new(cfg.window),
            prevalence: HashMap::new(),
            observed_since,
            analyzer,
            clusters: HashMap::new(),
            reader,
            dirty: HashSet::new(),
            notified: HashMap::new(),
            notifier,
            pending: Vec::new(),
            narration: None,
            pending_narrations: Vec::new(),
            cfg,
        }
    }

    /// Queue every kept report for an LLM narrative on `tx`.
    pub fn with_narration(mut self, tx: mpsc::Sender<NarrationJob>) -> Self {
        self.narration = Some(tx);
        self
    }

    /// Take up the incidents an earlier run was still adding to (written within the
    /// correlation window before now), so that a restart does not split an incident in two.
    /// Returns how many were taken up.
    pub fn resume_incidents(&mut self) -> usize {
        self.resume_incidents_where(&|_| true)
    }

    /// Drop what this analyser holds about the entities `gone` selects (open incidents, dirty
    /// marks) and the cluster counts, which other replicas have been adding to.
    pub fn forget(&mut self, gone: &dyn Fn(&str) -> bool) {
        let n = self.tracker.forget_open(gone);
        self.dirty.retain(|e| !gone(e));
        self.clusters.clear();
        tracing::debug!(incidents = n, "open incidents handed over");
    }

    /// Take over the entities `mine` selects: forget what may be stale about them and take
    /// up their incidents as the store has them (written by the replica that had them).
    pub fn take_over(&mut self, mine: &dyn Fn(&str) -> bool) -> usize {
        self.forget(mine);
        self.resume_incidents_where(mine)
    }

    fn resume_incidents_where(&mut self, keep: &dyn Fn(&str) -> bool) -> usize {
        let since = to_nanos(chrono::Utc::now() - self.tracker.window());
        let rows = match self
            .reader
            .recent_incidents(since, self.cfg.max_open_incidents)
        {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "reading open incidents: they start afresh");
                return 0;
            }
        };
        let mut resumed = 0;
        // Oldest first: if more are stored than may be open, the most recent stay open.
        for row in rows.into_iter().rev().filter(|r| keep(&r.entity)) {
            let mut rep: fa_model::IncidentReport = match serde_json::from_str(&row.body) {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(incident = %row.id, error = %e, "a stored incident does not parse");
                    continue;
                }
            };
            // Written by a version whose timeline entries did not name their cluster: the
            // entry's first alert does.
            for e in rep.timeline.iter_mut().filter(|e| e.cluster.is_none()) {
                e.cluster = match self.reader.get_alert(&e.report_id) {
                    Ok(a) => a.and_then(|a| a.row.fingerprint),
                    Err(_) => None,
                };
            }
            let a = &self.analyzer;
            if self.tracker.resume(&rep, &a.scoring, &a.kb) {
                // Notified (or not wanted) at this verdict before the restart.
                self.notified.insert(rep.id.clone(), rep.verdict.kind);
                resumed += 1;
            }
        }
        if resumed > 0 {
            tracing::info!(
                incidents = resumed,
                "open incidents taken up from the store"
            );
        }
        resumed
    }

    fn cluster_state(&mut self, fp: Fingerprint) -> (u64, VerdictKind) {
        if let Some(c) = self.clusters.get(&fp) {
            return *c;
        }
        if self.clusters.len() >= MAX_CACHED_CLUSTERS {
            self.clusters.clear();
        }
        let stored = match self.reader.get_cluster(&fp.to_string()) {
            Ok(c) => c.map_or((0, VerdictKind::Benign), |c| (c.count, c.verdict)),
            Err(e) => {
                tracing::warn!(error = %e, "reading a cluster count");
                (0, VerdictKind::Benign)
            }
        };
        self.clusters.insert(fp, stored);
        stored
    }

    /// The activity's record, this alert counted: from the store on first sight.
    fn prevalence_of(&mut self, fp: Fingerprint, alert: &Alert) -> Prevalence {
        if !self.prevalence.contains_key(&fp) {
            if self.prevalence.len() >= MAX_CACHED_PREVALENCE {
                self.prevalence.clear();
            }
            let seeded = match self.reader.activity_history(&fp.to_string()) {
                Ok(Some(h)) => PrevalenceEntry::from_history(
                    h.count,
                    h.first_seen,
                    h.last_seen,
                    &h.hosts,
                    h.verdict == VerdictKind::Malicious,
                ),
                Ok(None) => PrevalenceEntry::default(),
                Err(e) => {
                    tracing::warn!(error = %e, "reading an activity's history");
                    PrevalenceEntry::default()
                }
            };
            self.prevalence.insert(fp, seeded);
        }
        if let Some(t) = alert.time {
            self.observed_since = Some(self.observed_since.map_or(t, |s| s.min(t)));
        }
        let since = self.observed_since;
        let entry = self.prevalence.entry(fp).or_default();
        entry.observe(alert);
        entry.view(since)
    }

    fn link(&self, uuid: &str) -> Option<String> {
        self.cfg.public_url.as_deref().map(|u| {
            format!(
                "{}/api/v1/alerts/{uuid}?format=html",
                u.trim_end_matches('/')
            )
        })
    }

    /// Analyse one alert: verdict with cluster and incident context, report when kept.
    pub fn analyze(
        &mut self,
        mut q: QueuedAlert,
        out_incidents: &mut Vec<IncidentRow>,
    ) -> Analysis {
        let now = chrono::Utc::now();
        self.analyzer.name_rule(&mut q.alert);
        let alert = &q.alert;
        let fp = fingerprint(alert);
        let entity = entity_of(alert);
        // An incident about to be closed by this alert's arrival is written out first.
        if self.dirty.contains(&entity) {
            let expiring = self.tracker.open_incident(&entity).is_some_and(|inc| {
                match (inc.last_seen, alert.time) {
                    (Some(last), Some(t)) => t - last > self.tracker.window(),
                    _ => false,
                }
            });
            if expiring {
                self.flush_one(&entity, out_incidents);
            }
        }
        let (seen, worst_before) = self.cluster_state(fp);
        let count = seen + 1;
        let prevalence = self.prevalence_of(fp, alert);

        let a = &self.analyzer;
        let rule = a.rule_for(alert);
        let tactics = a.tactics(alert, rule);
        let observed = self.tracker.observe(&entity, alert, &tactics, &a.scoring);
        let escalation = (observed.progression >= 2).then(|| {
            format!(
                "its {entity} shows tactics progressing ({}) within the correlation window",
                observed.tactics.join(" -> ")
            )
        });
        let escalated = escalation.is_some();
        let recalled = self.memory.recall(alert, &entity);
        // The same context `analyze` judges with: the rule's own conditions (upstream and
        // --rules), prevalence, attack evidence nearby and downloads run.
        let judged = fa_analyze::verdict::judge_with(
            &a.kb,
            &a.scoring,
            alert,
            rule,
            &Context {
                cluster_count: count,
                escalating_incident: escalation,
                rule_checks: a.rules.check_cached(fp.0, alert),
                prevalence: Some(prevalence),
                entity_attack_evidence: recalled.entity_attack_evidence,
                runs_download: recalled.runs_download,
            },
            true,
        );
        if escalated || judged.attack_evidence.is_some() {
            if let Some(p) = self.prevalence.get_mut(&fp) {
                p.mark_escalated();
            }
        }
        if let Some(what) = &judged.attack_evidence {
            self.memory.remember_attack(alert, &entity, what);
        }
        let verdict = judged.verdict;
        // A report is stored for a cluster's first alert and for any alert that makes its
        // cluster's verdict worse; the other repeats' reports are rebuilt on demand from the
        // stored alert and verdict. Storing every repeat's report would multiply the bytes
        // written per alert several times over in a storm.
        let keep_report = count == 1 || verdict.kind > worst_before;
        self.clusters
            .insert(fp, (count, worst_before.max(verdict.kind)));
        let wants_notify = self
            .notifier
            .as_ref()
            .is_some_and(|(n, _)| n.wants(NotificationKind::Alert, alert.priority, verdict.kind));
        let report =
            (keep_report || wants_notify).then(|| a.report_with(alert, rule, verdict.clone()));
        let summary = match &report {
            Some(r) => r.summary.clone(),
            None => alert.message().unwrap_or(alert.rule.as_str()).to_string(),
        };
        self.tracker.record(&entity, fp, alert, &verdict, || {
            (summary.clone(), q.uuid.clone())
        });
        let incident_id = self
            .tracker
            .open_incident(&entity)
            .filter(|i| i.alert_count >= 2)
            .map(|i| i.id.clone());
        if incident_id.is_some() {
            self.dirty.insert(entity.clone());
        }
        let rule_name = rule
            .map(|r| r.entry.name.clone())
            .unwrap_or_else(|| alert.rule.to_string());

        let link = self.link(&q.uuid);
        let notification = wants_notify.then(|| {
            let mut reasons: Vec<&fa_model::Reason> =
                verdict.reasons.iter().filter(|r| r.weight != 0.0).collect();
            reasons.sort_by(|x, y| y.weight.abs().total_cmp(&x.weight.abs()));
            Notification {
                kind: NotificationKind::Alert,
                key: fp.to_string(),
                verdict: verdict.kind,
                confidence: verdict.confidence.get(),
                rule: rule_name.clone(),
                priority: alert.priority,
                location: entity.clone(),
                summary: summary.clone(),
                reasons: reasons
                    .into_iter()
                    .take(3)
                    .map(|r| r.text.clone())
                    .collect(),
                time: alert.time,
                alert_uuid: Some(q.uuid.clone()),
                incident_id: incident_id.clone(),
                link,
                folded: 0,
            }
        });
        self.pending.extend(notification);
        let report = report.filter(|_| keep_report);
        let report_json = report.as_ref().and_then(|r| serde_json::to_string(r).ok());
        if let (Some(r), Some(_), true) = (report, &report_json, self.narration.is_some()) {
            self.pending_narrations.push(NarrationJob {
                alert_id: q.id,
                uuid: q.uuid.clone(),
                fingerprint: fp.to_string(),
                report: r,
                alert: q.alert.clone(),
            });
        }
        Analysis {
            alert_id: q.id,
            row: q.row,
            verdict: verdict.kind,
            score: verdict.score,
            verdict_json: verdict_json(&verdict),
            fingerprint: fp.to_string(),
            incident_id,
            report_json,
            cluster: ClusterUpdate {
                rule: rule_name,
                time: to_nanos(alert.time.unwrap_or(now)),
                verdict: verdict.kind,
                uuid: q.uuid,
                location: entity,
                activity: activity(alert),
            },
            analyzed_at: to_nanos(now),
        }
    }

    fn incident_row(&self, inc: &Incident) -> (IncidentRow, fa_model::IncidentReport) {
        let a = &self.analyzer;
        let rep = incident_report(inc, &a.scoring, &a.kb);
        let row = IncidentRow {
            id: rep.id.clone(),
            entity: rep.entity.clone(),
            first_seen: rep.first_seen.map(to_nanos),
            last_seen: rep.last_seen.map(to_nanos),
            alert_count: rep.alert_count,
            verdict: rep.verdict.kind,
            updated_at: to_nanos(chrono::Utc::now()),
            body: serde_json::to_string(&rep).unwrap_or_else(|_| "null".into()),
        };
        (row, rep)
    }

    fn flush_one(&mut self, entity: &str, out: &mut Vec<IncidentRow>) {
        self.dirty.remove(entity);
        let Some(inc) = self.tracker.open_incident(entity) else {
            return;
        };
        if inc.alert_count < 2 {
            return;
        }
        let (row, rep) = self.incident_row(inc);
        self.maybe_notify_incident(&rep);
        out.push(row);
    }

    /// Incident rows for every incident that changed since the last flush.
    pub fn flush_incidents(&mut self, out: &mut Vec<IncidentRow>) {
        let dirty: Vec<String> = self.dirty.iter().cloned().collect();
        for e in dirty {
            self.flush_one(&e, out);
        }
    }

    /// Notify an incident when it first appears and each time its verdict worsens.
    fn maybe_notify_incident(&mut self, rep: &fa_model::IncidentReport) {
        let Some((n, _)) = &self.notifier else { return };
        let kind = rep.verdict.kind;
        if !n.wants(NotificationKind::Incident, None, kind) {
            return;
        }
        if self.notified.get(&rep.id).is_some_and(|prev| *prev >= kind) {
            return;
        }
        if self.notified.len() > MAX_CACHED_CLUSTERS {
            self.notified.clear();
        }
        self.notified.insert(rep.id.clone(), kind);
        let note = Notification {
            kind: NotificationKind::Incident,
            key: rep.id.clone(),
            verdict: kind,
            confidence: rep.verdict.confidence.get(),
            rule: rep
                .timeline
                .first()
                .map(|t| t.rule.clone())
                .unwrap_or_default(),
            priority: rep.timeline.iter().filter_map(|t| t.priority).min(),
            location: rep.entity.clone(),
            summary: rep.summary.clone(),
            reasons: rep
                .verdict
                .reasons
                .iter()
                .take(3)
                .map(|r| r.text.clone())
                .collect(),
            time: rep.last_seen,
            alert_uuid: rep.timeline.last().map(|t| t.report_id.clone()),
            incident_id: Some(rep.id.clone()),
            link: self.cfg.public_url.as_deref().map(|u| {
                format!(
                    "{}/api/v1/incidents/{}?format=html",
                    u.trim_end_matches('/'),
                    rep.id
                )
            }),
            folded: 0,
        };
        self.pending.push(note);
    }

    pub fn has_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Notifications produced since the last call, to hand to the notifier task.
    pub fn take_notifications(&mut self) -> Vec<Notification> {
        std::mem::take(&mut self.pending)
    }

    /// Hand the reports kept since the last call to the narration task; call it once their
    /// analyses are queued for writing. A full queue drops the narration (counted), never
    /// the report, which stays deterministic.
    fn dispatch_narrations(&mut self, metrics: &Metrics) {
        let jobs = std::mem::take(&mut self.pending_narrations);
        let Some(tx) = &self.narration else { return };
        let mut dropped = 0u64;
        for job in jobs {
            match tx.try_send(job) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => dropped += 1,
                // The narration task has stopped (shutdown): nothing more to narrate.
                Err(mpsc::error::TrySendError::Closed(_)) => break,
            }
        }
        if dropped > 0 {
            metrics
                .llm_requests
                .get_or_create(&OutcomeLabel {
                    outcome: "dropped".into(),
                })
                .inc_by(dropped);
            tracing::warn!(
                reports = dropped,
                "LLM narration queue full: these reports stay without a narrative"
            );
        }
    }
}

/// The analysis thread: batches of queued alerts through the correlator, analyses to the
/// writer, permits back to the queue.
pub fn analysis_loop(
    rx: std_mpsc::Receiver<AnalysisMsg>,
    writer: mpsc::Sender<WriteCmd>,
    mut c: Correlator,
    shared: Arc<Shared>,
) {
    const BATCH: usize = 512;
    // Analyses are handed to the writer every `store_interval` (1 s by default): each
    // hand-over is a commit, and the fewer and larger the commits, the fewer index pages the
    // writer rewrites per alert (100 ms wrote 2.4x the WAL bytes of 1 s at 20,000 alerts/s).
    // Nobody waits for them: the alerts are already acknowledged.
    let hand_over = c.cfg.store_interval;
    // Or sooner when a quarter of the queue waits for it: the queue's room comes back only
    // once the analyses are stored.
    let hand_over_max = (shared.queue_capacity / 4).clamp(1, 65_536);
    let flush_every = Duration::from_millis(500);
    let mut last_flush = Instant::now();
    let mut stop = false;
    let mut analyses: Vec<Analysis> = Vec::new();
    let mut incidents: Vec<IncidentRow> = Vec::new();
    let mut pending_since: Option<Instant> = None;
    c.resume_incidents();
    let held = |shared: &Shared| {
        while shared.paused.load(Ordering::Relaxed) && !shared.abort.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(10));
        }
        shared.abort.load(Ordering::Relaxed)
    };
    while !stop {
        if held(&shared) {
            break;
        }
        // Changed incidents are written soon after the stream goes quiet.
        let mut wait = if c.has_dirty() {
            Duration::from_millis(50)
        } else {
            flush_every
        };
        if let Some(t) = pending_since {
            wait = wait.min(hand_over.saturating_sub(t.elapsed()));
        }
        let first = match rx.recv_timeout(wait) {
            Ok(m) => Some(m),
            Err(std_mpsc::RecvTimeoutError::Timeout) => None,
            Err(std_mpsc::RecvTimeoutError::Disconnected) => break,
        };
        let idle = first.is_none();
        let mut msgs = Vec::new();
        if let Some(m) = first {
            msgs.push(m);
            while msgs.len() < BATCH {
                match rx.try_recv() {
                    Ok(m) => msgs.push(m),
                    Err(_) => break,
                }
            }
        }
        // Paused while waiting: hold these; on abort they stay unanalysed in the store.
        if held(&shared) {
            break;
        }
        for m in msgs {
            match m {
                AnalysisMsg::Stop => stop = true,
                AnalysisMsg::TakeOver(mine) => {
                    c.take_over(&*mine);
                }
                AnalysisMsg::Forget(gone) => c.forget(&*gone),
                AnalysisMsg::Alert(q) => {
                    let a = c.analyze(*q, &mut incidents);
                    shared
                        .metrics
                        .reports
                        .get_or_create(&VerdictLabel {
                            verdict: a.verdict.as_str(),
                        })
                        .inc();
                    analyses.push(a);
                }
            }
        }
        if pending_since.is_none() && !analyses.is_empty() {
            pending_since = Some(Instant::now());
        }
        let due = stop
            || idle
            || analyses.len() >= hand_over_max
            || pending_since.is_some_and(|t| t.elapsed() >= hand_over);
        // A hand-over carries the incidents as its analyses left them: the two are committed
        // together, so a crash never leaves stored alerts missing from their incident.
        if due || last_flush.elapsed() >= flush_every {
            c.flush_incidents(&mut incidents);
            last_flush = Instant::now();
        }
        if pending_since.is_none() && !incidents.is_empty() {
            pending_since = Some(Instant::now());
        }
        if !due {
            continue;
        }
        pending_since = None;
        let n = analyses.len();
        if (n > 0 || !incidents.is_empty())
            && writer
                .blocking_send(WriteCmd::Analyses {
                    // Sized like this batch: growing it alert by alert moved every analysis
                    // several times.
                    analyses: std::mem::replace(&mut analyses, Vec::with_capacity(n)),
                    incidents: std::mem::take(&mut incidents),
                })
                .is_err()
        {
            tracing::error!(
                "the writer has stopped; {n} analyses are lost and will be redone at the next start"
            );
            // Redone at the next start, narrations included.
            c.pending_narrations.clear();
            shared.release(n);
        }
        // The writer gives the queue permits back once the analyses are stored.
        c.dispatch_narrations(&shared.metrics);
        let notes = c.take_notifications();
        if let Some((_, tx)) = &c.notifier {
            for note in notes {
                if tx.try_send(note).is_err() {
                    shared.metrics.notifications_dropped.inc();
                    tracing::warn!("notification queue full: a notification was dropped (the alert itself is stored)");
                }
            }
        }
    }
    // Analyses not handed over yet, and whatever the tracker still holds open, are written
    // as they stand.
    c.flush_incidents(&mut incidents);
    let n = analyses.len();
    if n > 0 || !incidents.is_empty() {
        match writer.blocking_send(WriteCmd::Analyses {
            analyses,
            incidents,
        }) {
            Ok(()) => c.dispatch_narrations(&shared.metrics),
            Err(_) => shared.release(n),
        }
    }
    tracing::debug!("analysis stopped");
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

/// Queue what a previous run acknowledged and did not analyse, oldest first, taking queue
/// permits like ingest does: alerts stored unanalysed by an older version (`id <= up_to`),
/// then the journal's records (read back at start-up, those already in the store left out).
pub fn feed_backlog(
    reader: Box<dyn Store>,
    up_to: i64,
    journal: Vec<JournalRecord>,
    tx: std_mpsc::Sender<AnalysisMsg>,
    shared: Arc<Shared>,
) {
    let total = feed_backlog_inner(reader.as_ref(), up_to, journal, &tx, &shared);
    if total > 0 {
        tracing::info!(
            alerts = total,
            "queued alerts left unanalysed by the previous run"
        );
    }
    shared.backlog_queued.store(true, Ordering::Relaxed);
}

fn feed_backlog_inner(
    reader: &dyn Store,
    up_to: i64,
    journal: Vec<JournalRecord>,
    tx: &std_mpsc::Sender<AnalysisMsg>,
    shared: &Shared,
) -> u64 {
    let mut total = 0u64;
    // Stored unanalysed by a version before the journal.
    let mut after = 0i64;
    loop {
        let rows = match reader.unanalyzed(after, up_to, 512) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "reading unanalysed alerts");
                break;
            }
        };
        if rows.is_empty() {
            break;
        }
        for r in rows {
            after = r.id;
            let Some(alert) = read_back(&r.uuid, &r.body, shared) else {
                continue;
            };
            let q = QueuedAlert {
                id: r.id,
                uuid: r.uuid,
                alert,
                row: None,
            };
            if !queue_backlogged(q, tx, shared) {
                return total;
            }
            total += 1;
        }
    }
    for rec in journal {
        let label = format!("journal record {}", rec.seq);
        let Some(alert) = read_back(&label, &rec.body, shared) else {
            continue;
        };
        let uuid = alert.uuid.clone().unwrap_or_default();
        let row = new_alert_row(&alert, uuid.clone(), rec.received_at, rec.body);
        let q = QueuedAlert {
            id: rec.seq,
            uuid,
            alert,
            row: Some(row),
        };
        if !queue_backlogged(q, tx, shared) {
            return total;
        }
        total += 1;
    }
    total
}

fn read_back(what: &str, body: &str, shared: &Shared) -> Option<Alert> {
    match serde_json::from_str(body) {
        Ok(a) => Some(a),
        Err(e) => {
            shared.metrics.analysis_errors.inc();
            tracing::error!(alert = %what, error = %e, "a stored alert cannot be read back; left unanalysed");
            None
        }
    }
}

/// Queue an alert for analysis once a queue permit is free. False when the service stops.
fn queue_backlogged(q: QueuedAlert, tx: &std_mpsc::Sender<AnalysisMsg>, shared: &Shared) -> bool {
    loop {
        if shared.draining.load(Ordering::Relaxed) {
            return false;
        }
        match shared.queue.try_acquire() {
            Ok(p) => {
                p.forget();
                break;
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    if tx.send(AnalysisMsg::Alert(Box::new(q))).is_err() {
        shared.release(1);
        return false;
    }
    true
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
