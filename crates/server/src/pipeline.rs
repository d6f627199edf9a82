//! The durable pipeline behind ingest.
//!
//! ```text
//!  HTTP handlers ──(alerts + oneshot ack)──▶ writer thread ──commit──▶ ack ─▶ 2xx
//!        ▲ 429 when the analysis queue                │ new alerts (after commit)
//!        │ has no room (semaphore)                    ▼
//!        └──────────── permits released ◀── analysis thread ──(analyses)──▶ writer thread
//!                                                     │
//!                                                     ├──▶ notifier task (Slack, webhook)
//!                                                     └──▶ narration task (LLM) ──(narrated report)──▶ writer thread
//! ```
//!
//! * One writer thread owns the writing store connection and commits whatever is queued (up to
//!   `max_batch` alerts) in one transaction: group commit. A handler's 2xx waits for the
//!   commit that holds its alerts.
//! * The analysis queue is bounded by a semaphore of `queue_capacity` permits: ingest takes one
//!   per alert before anything is stored (none free: 429, nothing stored, the sender retries);
//!   the analysis thread gives them back once the alert's analysis is queued for writing.
//! * Alerts are forwarded to analysis only after their commit; analyses are written by the
//!   same writer, marking the alert analysed in the same transaction as its cluster count, so
//!   a crash at any point leaves either "not analysed" (re-analysed at start-up) or "analysed
//!   and counted", never half of it.
//! * With an LLM configured, kept reports are queued for narration only after their
//!   deterministic analysis is queued for writing (so the narrated version, written later
//!   through the same writer, always replaces it and never the other way round); a full
//!   narration queue drops the narration, never the report.

use crate::metrics::{Metrics, OutcomeLabel, PrioritySource, SinkOutcome, VerdictLabel};
use fa_analyze::engine::{activity, Analyzer};
use fa_analyze::fingerprint::{fingerprint, Fingerprint};
use fa_analyze::incident::{entity_of, incident_report, Incident, IncidentTracker};
use fa_analyze::verdict::Context;
use fa_model::{Alert, Report, VerdictKind};
use fa_sinks::notify::{Notification, NotificationKind, Notifier};
use fa_store::{
    to_nanos, Analysis, ClusterUpdate, IncidentRow, Inserted, LlmCacheEntry, NewAlert,
    NewDeadLetter, ReportUpdate, RetentionPolicy, Store, WriteBatch,
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

pub struct IngestCmd {
    pub alerts: Vec<NewAlert>,
    /// The parsed alerts, in the same order, handed to analysis once committed.
    pub parsed: Vec<Alert>,
    pub dead: Vec<NewDeadLetter>,
    pub reply: oneshot::Sender<IngestReply>,
}

pub enum WriteCmd {
    Ingest(IngestCmd),
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
    pub id: i64,
    pub uuid: String,
    pub alert: Alert,
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

pub enum AnalysisMsg {
    Alert(Box<QueuedAlert>),
    Stop,
}

pub struct WriterConfig {
    pub max_batch: usize,
    pub retention: RetentionPolicy,
    pub retention_chunk: usize,
}

/// The writer thread: group commit of everything queued.
pub fn writer_loop(
    mut store: Box<dyn Store>,
    mut rx: mpsc::Receiver<WriteCmd>,
    to_analysis: std_mpsc::Sender<AnalysisMsg>,
    shared: Arc<Shared>,
    cfg: WriterConfig,
) {
    let mut retention_pending = false;
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
        let mut ingests: Vec<(usize, Vec<Alert>, oneshot::Sender<IngestReply>)> = Vec::new();
        for c in cmds {
            match c {
                WriteCmd::Ingest(ic) => {
                    let start = batch.alerts.len();
                    batch.alerts.extend(ic.alerts);
                    batch.dead_letters.extend(ic.dead);
                    ingests.push((start, ic.parsed, ic.reply));
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
            continue;
        }
        let t = Instant::now();
        let result = store.write(&batch);
        shared
            .metrics
            .store_commit_seconds
            .observe(t.elapsed().as_secs_f64());
        shared
            .metrics
            .store_batch_alerts
            .observe(batch.alerts.len() as f64);
        match result {
            Ok(outcomes) => {
                for (start, parsed, reply) in ingests {
                    let end = start + parsed.len();
                    let mine = outcomes
                        .get(start..end)
                        .map(<[Inserted]>::to_vec)
                        .unwrap_or_default();
                    for ((o, alert), new) in mine.iter().zip(parsed).zip(&batch.alerts[start..end])
                    {
                        match o {
                            Inserted::New(id) => {
                                let q = QueuedAlert {
                                    id: *id,
                                    uuid: new.uuid.clone(),
                                    alert,
                                };
                                // If analysis has stopped, the alert stays unanalysed in the
                                // store and is analysed at the next start.
                                if to_analysis.send(AnalysisMsg::Alert(Box::new(q))).is_err() {
                                    shared.release(1);
                                }
                            }
                            Inserted::Duplicate => {
                                shared.metrics.alerts_duplicate.inc();
                                shared.release(1);
                            }
                        }
                    }
                    // The handler may have gone (client disconnected): the alerts are stored
                    // anyway and a redelivery will be a duplicate.
                    let _ = reply.send(Ok(mine));
                }
            }
            Err(e) => {
                shared.metrics.store_errors.inc();
                tracing::error!(error = %e, alerts = batch.alerts.len(), analyses = batch.analyses.len(), "store write failed");
                for (_, parsed, reply) in ingests {
                    shared.release(parsed.len());
                    let _ = reply.send(Err(e.to_string()));
                }
            }
        }
    }
    tracing::debug!("writer stopped");
}

fn alerts_in(c: &WriteCmd) -> usize {
    match c {
        WriteCmd::Ingest(i) => i.alerts.len().max(1),
        WriteCmd::Analyses { analyses, .. } => analyses.len().max(1),
        _ => 1,
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
}

const MAX_CACHED_CLUSTERS: usize = 500_000;

impl Correlator {
    pub fn new(
        analyzer: Analyzer,
        reader: Box<dyn Store>,
        notifier: Option<(Arc<Notifier>, mpsc::Sender<Notification>)>,
        cfg: AnalysisConfig,
    ) -> Self {
        Correlator {
            tracker: IncidentTracker::new(cfg.window, cfg.max_open_incidents, 1),
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

    fn link(&self, uuid: &str) -> Option<String> {
        self.cfg.public_url.as_deref().map(|u| {
            format!(
                "{}/api/v1/alerts/{uuid}?format=html",
                u.trim_end_matches('/')
            )
        })
    }

    /// Analyse one alert: verdict with cluster and incident context, report when kept.
    pub fn analyze(&mut self, q: QueuedAlert, out_incidents: &mut Vec<IncidentRow>) -> Analysis {
        let now = chrono::Utc::now();
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
        let verdict = a.verdict(
            alert,
            rule,
            &Context {
                cluster_count: count,
                escalating_incident: escalation,
            },
        );
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
            verdict: verdict.kind,
            score: verdict.score,
            verdict_json: serde_json::to_string(&verdict).unwrap_or_else(|_| "null".into()),
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
    // Analyses are handed to the writer at most this often (or per BATCH): each hand-over is
    // a commit of its own unless it meets ingest in the writer's queue, and commits are what
    // the writer spends its time on.
    const HAND_OVER: Duration = Duration::from_millis(20);
    let flush_every = Duration::from_millis(500);
    let mut last_flush = Instant::now();
    let mut stop = false;
    let mut analyses: Vec<Analysis> = Vec::new();
    let mut incidents: Vec<IncidentRow> = Vec::new();
    let mut pending_since: Option<Instant> = None;
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
            wait = wait.min(HAND_OVER.saturating_sub(t.elapsed()));
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
                AnalysisMsg::Alert(q) => {
                    let a = c.analyze(*q, &mut incidents);
                    shared
                        .metrics
                        .reports
                        .get_or_create(&VerdictLabel {
                            verdict: a.verdict.as_str().into(),
                        })
                        .inc();
                    analyses.push(a);
                }
            }
        }
        if stop || idle || last_flush.elapsed() >= flush_every {
            c.flush_incidents(&mut incidents);
            last_flush = Instant::now();
        }
        if pending_since.is_none() && (!analyses.is_empty() || !incidents.is_empty()) {
            pending_since = Some(Instant::now());
        }
        let due = stop
            || idle
            || analyses.len() >= BATCH
            || pending_since.is_some_and(|t| t.elapsed() >= HAND_OVER);
        if !due {
            continue;
        }
        pending_since = None;
        let n = analyses.len();
        if (n > 0 || !incidents.is_empty())
            && writer
                .blocking_send(WriteCmd::Analyses {
                    analyses: std::mem::take(&mut analyses),
                    incidents: std::mem::take(&mut incidents),
                })
                .is_err()
        {
            tracing::error!(
                "the writer has stopped; {n} analyses are lost and will be redone at the next start"
            );
            // Redone at the next start, narrations included.
            c.pending_narrations.clear();
        }
        c.dispatch_narrations(&shared.metrics);
        // The analyses are queued for writing: the queue has room again.
        shared.release(n);
        shared.metrics.queue_depth.set(shared.queue_depth() as i64);
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
    if (n > 0 || !incidents.is_empty())
        && writer
            .blocking_send(WriteCmd::Analyses {
                analyses,
                incidents,
            })
            .is_ok()
    {
        c.dispatch_narrations(&shared.metrics);
        shared.release(n);
    }
    tracing::debug!("analysis stopped");
}

/// Queue alerts left unanalysed by a previous run (`id <= up_to`), oldest first, taking queue
/// permits like ingest does.
pub fn feed_backlog(
    reader: Box<dyn Store>,
    up_to: i64,
    tx: std_mpsc::Sender<AnalysisMsg>,
    shared: Arc<Shared>,
) {
    let mut after = 0i64;
    let mut total = 0u64;
    'outer: loop {
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
            let alert: Alert = match serde_json::from_str(&r.body) {
                Ok(a) => a,
                Err(e) => {
                    shared.metrics.analysis_errors.inc();
                    tracing::error!(uuid = %r.uuid, error = %e, "a stored alert cannot be read back; left unanalysed");
                    continue;
                }
            };
            loop {
                if shared.draining.load(Ordering::Relaxed) {
                    break 'outer;
                }
                match shared.queue.try_acquire() {
                    Ok(p) => {
                        p.forget();
                        break;
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
            if tx
                .send(AnalysisMsg::Alert(Box::new(QueuedAlert {
                    id: r.id,
                    uuid: r.uuid,
                    alert,
                })))
                .is_err()
            {
                shared.release(1);
                break 'outer;
            }
            total += 1;
        }
    }
    if total > 0 {
        tracing::info!(
            alerts = total,
            "queued alerts left unanalysed by the previous run"
        );
    }
    shared.backlog_queued.store(true, Ordering::Relaxed);
}

/// Count an accepted alert in the metrics.
pub fn count_received(
    m: &Metrics,
    priority: Option<fa_model::Priority>,
    source: Option<&fa_model::Source>,
) {
    let source = match source {
        // Plugin sources are named by the sender: keep label cardinality bounded.
        Some(fa_model::Source::Other(_)) => "other",
        Some(s) => s.as_str(),
        None => "unknown",
    };
    let priority = priority.map_or("unknown", |p| p.as_str());
    m.alerts_received
        .get_or_create(&PrioritySource {
            priority: priority.into(),
            source: source.into(),
        })
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
