//! The correlator: the analysis thread's state (cluster counts, open incidents, prevalence, stream memory) and what it does to one alert.

use super::*;

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
    pub(super) notifier: Option<(Arc<Notifier>, mpsc::Sender<Notification>)>,
    pending: Vec<Notification>,
    narration: Option<mpsc::Sender<NarrationJob>>,
    pub(super) pending_narrations: Vec<NarrationJob>,
    pub(super) cfg: AnalysisConfig,
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
    pub(super) fn dispatch_narrations(&mut self, metrics: &Metrics) {
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
