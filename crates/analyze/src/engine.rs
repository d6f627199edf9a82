//! The analysis pipeline for one alert (`Analyzer`, stateless) and for a stream of alerts
//! (`Engine`: de-duplication, incidents, run statistics).

use crate::cluster::{Cluster, ClusterTable};
use crate::fingerprint::fingerprint;
use crate::incident::{incident_report, IncidentTracker};
use crate::kb::{KbError, KnowledgeBase, Rule};
use crate::rulecheck::RuleCheck;
use crate::rules::RuleBook;
use crate::scoring::Scoring;
use crate::verdict::{judge, raise, Context, JudgeCache, PrevalenceEntry};
use crate::{describe, tune};
use chrono::Duration;
use fa_model::{
    Alert, ClusterSummary, IncidentReport, Priority, Report, SummaryReport, Verdict, VerdictCounts,
    VerdictKind, SCHEMA_VERSION,
};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

/// Knowledge base + scoring: everything needed to write one alert's report.
#[derive(Debug, Clone)]
pub struct Analyzer {
    pub kb: Arc<KnowledgeBase>,
    pub scoring: Arc<Scoring>,
    /// Upstream Falco rules (built in) and the user's `--rules` files: each reported alert's
    /// rule condition is evaluated over its fields.
    pub rules: Arc<RuleBook>,
}

impl Analyzer {
    pub fn new(kb: KnowledgeBase, scoring: Scoring) -> Self {
        Analyzer {
            kb: Arc::new(kb),
            scoring: Arc::new(scoring),
            rules: Arc::new(RuleBook::builtin()),
        }
    }

    /// The same analyzer with the user's rules files on top of the upstream ones.
    pub fn with_rules(mut self, rules: RuleBook) -> Self {
        self.rules = Arc::new(rules);
        self
    }

    /// The alert's rule condition(s) evaluated over its fields (remembered per fingerprint).
    pub fn rule_check(&self, alert: &Alert) -> Arc<[RuleCheck]> {
        if alert.rule.is_unknown() {
            // A text alert: check the rule its message names.
            let mut named = alert.clone();
            if self.name_rule(&mut named) {
                return self.rules.check_cached(fingerprint(&named).0, &named);
            }
        }
        self.rules.check_cached(fingerprint(alert).0, alert)
    }

    /// The built-in knowledge base plus the given user directories, and the built-in scoring.
    pub fn load(user_kb_dirs: &[PathBuf]) -> Result<Self, KbError> {
        let a = Self::new(KnowledgeBase::load(user_kb_dirs)?, Scoring::builtin()?);
        // The upstream rules are knowledge an analysis loads too: compile them here, not while
        // the first alert waits (an error still shows where rules are checked: none are).
        let _ = crate::rules::upstream();
        Ok(a)
    }

    pub fn rule_for(&self, alert: &Alert) -> Option<&Rule> {
        self.kb.rule_for(alert)
    }

    /// Give a plain-text alert (which names no rule) the rule the knowledge base recovers from
    /// its message, so that de-duplication, incidents and statistics tell its rule from the other
    /// text alerts' instead of lumping them all under "rule not recorded". Returns whether it did.
    pub fn name_rule(&self, alert: &mut Alert) -> bool {
        if !alert.rule.is_unknown() {
            return false;
        }
        match self.kb.rule_for(alert) {
            Some(r) => {
                alert.rule = fa_model::RuleName::from(r.entry.name.as_str());
                if alert.format == fa_model::InputFormat::PlainText {
                    rename_text_fields(alert, &format!("rule:{}", r.entry.name));
                    rename_text_fields(alert, &r.entry.source);
                }
                true
            }
            None => false,
        }
    }

    /// MITRE tactic slugs for the alert: the entry's, else the alert's `mitre_*` tags.
    pub fn tactics(&self, alert: &Alert, rule: Option<&Rule>) -> Vec<String> {
        match rule {
            Some(r) if !r.entry.mitre.is_empty() => {
                let mut v: Vec<String> = Vec::new();
                for m in &r.entry.mitre {
                    if !v.contains(&m.tactic) {
                        v.push(m.tactic.clone());
                    }
                }
                v
            }
            _ => alert
                .tags
                .iter()
                .filter_map(|t| t.strip_prefix("mitre_"))
                .filter(|t| self.kb.tactic_by_slug(t).is_some())
                .map(str::to_string)
                .collect(),
        }
    }

    pub fn verdict(&self, alert: &Alert, rule: Option<&Rule>, ctx: &Context) -> Verdict {
        judge(&self.kb, &self.scoring, alert, rule, ctx)
    }

    /// A cluster's first alert judged with the cluster's final count: what its summary and
    /// its tuning advice go by.
    pub fn cluster_verdict(&self, c: &Cluster, rule: Option<&Rule>) -> Verdict {
        self.verdict(
            &c.alert,
            rule,
            &Context {
                cluster_count: c.count,
                escalating_incident: None,
                ..Context::with_rule_checks(self.rules.check_cached(c.fingerprint.0, &c.alert))
            },
        )
    }

    /// The full report for one alert on its own (no de-duplication or incident context).
    pub fn report(&self, alert: &Alert) -> Report {
        if alert.rule.is_unknown() {
            let mut named = alert.clone();
            if self.name_rule(&mut named) {
                return self.report(&named);
            }
        }
        let rule = self.rule_for(alert);
        let verdict = self.verdict(
            alert,
            rule,
            &Context {
                cluster_count: 1,
                escalating_incident: None,
                ..Context::with_rule_checks(self.rule_check(alert))
            },
        );
        self.report_with(alert, rule, verdict)
    }

    pub fn report_with(&self, alert: &Alert, rule: Option<&Rule>, verdict: Verdict) -> Report {
        let mut report = self.report_without_verdict(alert, rule);
        report.verdict = Some(verdict);
        report
    }

    /// The alert's report but its verdict (which depends on the stream): what a worker can
    /// write ahead ([`Analyzer::prepare`]). The gate reads no verdict.
    pub fn report_without_verdict(&self, alert: &Alert, rule: Option<&Rule>) -> Report {
        let event = describe::event_details(alert);
        let desc = rule.map(|r| r.entry.description.as_str());
        let mut report = Report::skeleton(alert, describe::summary(alert, desc), event);
        self.kb.enrich_with(alert, rule, &mut report);
        crate::gate::check_report(&mut report);
        report
    }
}

/// What an alert brings to the stream before it meets it: everything that depends on the
/// alert alone (its rule named, knowledge-base entry, fingerprint, tactics and entity, and with
/// a [`PrepareScratch`] its rule checks and the static part of its verdict). Made by
/// [`Analyzer::prepare`] on any thread; [`Engine::process_prepared`] takes it in input order.
pub struct Prepared<'a> {
    alert: Alert,
    rule: Option<&'a Rule>,
    fp: crate::fingerprint::Fingerprint,
    tactics: Vec<String>,
    entity: String,
    /// The rule checks computed for this very alert (when its preparer had not computed them
    /// for its fingerprint yet): the engine keeps them if it is the first of its fingerprint.
    checks: Option<Arc<[RuleCheck]>>,
    statics: Option<Arc<crate::verdict::Statics>>,
    /// The report but its verdict, written ahead when the alert will likely need one (every
    /// alert in every-alert mode, else the first of its fingerprint this preparer saw).
    report: Option<Box<Report>>,
    /// The alert's report id, worked out ahead when it likely starts an entry in its incident's
    /// timeline without a report of its own (an alert without a uuid hashes its content).
    report_id: Option<String>,
}

/// A preparing thread's own memory: the static parts of verdicts it has worked out, and the
/// fingerprints whose rule checks it has computed.
#[derive(Debug, Default)]
pub struct PrepareScratch {
    judge: JudgeCache,
    checked: crate::fingerprint::FingerprintMap<()>,
    /// (entity, fingerprint) pairs this preparer has seen: a timeline entry each.
    in_timeline: crate::fingerprint::FingerprintMap<()>,
    /// Every alert gets a report: each is written ahead.
    every_alert: bool,
    /// Reports are written (not `--summary`).
    keep_reports: bool,
}

/// Fingerprints a preparer remembers having checked; it starts afresh beyond this.
const CHECKED_LIMIT: usize = 65_536;

impl PrepareScratch {
    pub fn new(cfg: &EngineConfig) -> Self {
        PrepareScratch {
            every_alert: cfg.every_alert,
            keep_reports: cfg.keep_reports,
            ..Default::default()
        }
    }
}

impl Analyzer {
    /// The part of an alert's analysis that needs no stream state, so any thread can do it
    /// ahead of [`Engine::process_prepared`]. Without `scratch` only the cheap parts are done
    /// (the engine does the rest itself, as one thread does).
    pub fn prepare(&self, mut alert: Alert, scratch: Option<&mut PrepareScratch>) -> Prepared<'_> {
        self.name_rule(&mut alert);
        let rule = self.kb.rule_for(&alert);
        let fp = fingerprint(&alert);
        let tactics = self.tactics(&alert, rule);
        let entity = crate::incident::entity_of(&alert);
        let (mut checks, mut statics, mut report, mut report_id) = (None, None, None, None);
        if let Some(sc) = scratch {
            // Once per fingerprint per preparer: a repeat's checks are the engine's already,
            // and only a new cluster's first alert gets a report.
            if sc.checked.len() >= CHECKED_LIMIT {
                sc.checked.clear();
            }
            let first = sc.checked.insert(fp, ()).is_none();
            if first {
                checks = Some(self.rules.check(&alert).into());
            }
            if sc.every_alert || (first && sc.keep_reports) {
                report = Some(Box::new(self.report_without_verdict(&alert, rule)));
            }
            statics = sc.judge.statics(&self.kb, &self.scoring, &alert, rule);
            if sc.in_timeline.len() >= CHECKED_LIMIT {
                sc.in_timeline.clear();
            }
            let pair = crate::fingerprint::Fingerprint(
                fp.0 ^ xxhash_rust::xxh3::xxh3_64(entity.as_bytes()).rotate_left(17),
            );
            if sc.in_timeline.insert(pair, ()).is_none() && report.is_none() {
                report_id = Some(alert.report_id());
            }
        }
        Prepared {
            alert,
            rule,
            fp,
            tactics,
            entity,
            checks,
            statics,
            report,
            report_id,
        }
    }
}

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Incident sliding window.
    pub window: Duration,
    pub max_clusters: usize,
    pub max_incidents: usize,
    /// One report per alert instead of one per cluster.
    pub every_alert: bool,
    /// Keep representative reports in memory (off for `--summary`, which needs only counts).
    pub keep_reports: bool,
    /// Hand each emitted report's alert back too (an LLM narrative needs it); every-alert mode
    /// then clones each alert.
    pub emit_alerts: bool,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            window: Duration::minutes(10),
            max_clusters: 10_000,
            max_incidents: 1_000,
            every_alert: false,
            keep_reports: true,
            emit_alerts: false,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct RunStats {
    pub alerts: u64,
    pub verdicts: VerdictCounts,
    pub by_priority: BTreeMap<Priority, u64>,
    pub by_rule: HashMap<String, u64>,
}

impl RunStats {
    /// The `n` most frequent rules, most frequent first (ties by name).
    pub fn top_rules(&self, n: usize) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = self.by_rule.iter().map(|(k, v)| (k.clone(), *v)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(n);
        v
    }
}

/// Per-cluster state the engine keeps beside the cluster table.
#[derive(Debug, Clone, Default)]
struct ClusterExtra {
    escalation: Option<String>,
    /// The activity's history in this run (bounded with the cluster table).
    prevalence: PrevalenceEntry,
}

/// A stream of alerts through knowledge, verdicts, de-duplication and incidents.
pub struct Engine {
    pub analyzer: Analyzer,
    cfg: EngineConfig,
    clusters: ClusterTable,
    extra: crate::fingerprint::FingerprintMap<ClusterExtra>,
    incidents: IncidentTracker,
    pub stats: RunStats,
    /// The largest evicted clusters, so the summary still shows them.
    evicted_top: Vec<ClusterSummary>,
    /// The earliest alert time of the run: since when prevalence has been watching.
    observed_since: Option<chrono::DateTime<chrono::Utc>>,
    /// Attack evidence and downloads seen earlier in the stream.
    memory: crate::memory::StreamMemory,
    /// Signature and evidence matches of the repeats, shared by repeats with the same inputs.
    judge_cache: JudgeCache,
    /// When set, alerts done with go here instead of being freed: an alert parsed on another
    /// thread is cheaper to free there ([`Engine::collect_spent`]).
    spent: Option<Vec<Alert>>,
}

const TEXT_FIELDS: &str = include_str!("../data/text_fields.toml");

/// Per source, plain-text field -> that source's field (crates/analyze/data/text_fields.toml).
fn text_fields() -> &'static HashMap<String, Vec<(String, String)>> {
    static T: std::sync::OnceLock<HashMap<String, Vec<(String, String)>>> =
        std::sync::OnceLock::new();
    T.get_or_init(|| {
        // `text_fields_data_parses` checks the file; a bad file here would only disable renaming.
        toml::from_str::<HashMap<String, std::collections::BTreeMap<String, String>>>(TEXT_FIELDS)
            .map(|m| {
                m.into_iter()
                    .map(|(src, map)| (src, map.into_iter().collect()))
                    .collect()
            })
            .unwrap_or_default()
    })
}

/// Give a plain-text alert its rule's field names: first the rule's own table (`rule:<name>`,
/// for keys an old version of that rule printed with another meaning), then its source's
/// (`user=` of a k8s_audit rule is `ka.user.name`, not the syscall `user.name`).
fn rename_text_fields(alert: &mut Alert, table: &str) {
    let Some(map) = text_fields().get(table) else {
        return;
    };
    for (from, to) in map {
        if alert.output_fields.contains_key(to) {
            continue;
        }
        if let Some(v) = alert.output_fields.remove(from) {
            alert.output_fields.insert(to.clone(), v);
        }
    }
}

/// Evicted clusters remembered for the summary.
const EVICTED_TOP: usize = 20;

/// A report ready to be written, with its alert when `EngineConfig::emit_alerts` is set.
#[derive(Debug, Clone)]
pub struct Emitted {
    pub report: Report,
    pub alert: Option<Alert>,
}

/// What the engine hands back when the input ends.
pub struct Finished {
    /// Representative reports of the remaining clusters (dedup mode), first seen first.
    pub reports: Vec<Emitted>,
    pub incidents: Vec<IncidentReport>,
    pub summary: SummaryReport,
    pub clusters: Vec<Cluster>,
    pub stats: RunStats,
}

impl Engine {
    pub fn new(analyzer: Analyzer, cfg: EngineConfig) -> Self {
        Engine {
            clusters: ClusterTable::new(cfg.max_clusters),
            incidents: IncidentTracker::new(cfg.window, cfg.max_incidents, cfg.max_incidents),
            extra: Default::default(),
            memory: crate::memory::StreamMemory::new(cfg.window),
            analyzer,
            cfg,
            stats: RunStats::default(),
            evicted_top: Vec::new(),
            observed_since: None,
            judge_cache: JudgeCache::new(),
            spent: None,
        }
    }

    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// Keep the alerts done with (see `spent`) until [`Engine::take_spent`], or free them as
    /// they go (the default).
    pub fn collect_spent(&mut self, on: bool) {
        self.spent = on.then(Vec::new);
    }

    /// The alerts done with since the last call, to free on the thread that made them.
    pub fn take_spent(&mut self) -> Vec<Alert> {
        self.spent.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// Analyse one alert. Returns the reports ready to be written now: the alert's own in
    /// every-alert mode, or a cluster's report when it is evicted to bound memory.
    pub fn process(&mut self, alert: Alert) -> Vec<Emitted> {
        let a = self.analyzer.clone();
        let p = a.prepare(alert, None);
        self.process_prepared(p)
    }

    /// [`Engine::process`] for an alert prepared ahead ([`Analyzer::prepare`], on any thread,
    /// by a clone of this engine's analyzer: its rule points into the same knowledge base).
    /// Alerts must arrive in input order.
    pub fn process_prepared(&mut self, p: Prepared<'_>) -> Vec<Emitted> {
        let Prepared {
            alert,
            rule,
            fp,
            tactics,
            entity,
            checks,
            statics,
            report: ahead,
            report_id,
        } = p;
        let a = &self.analyzer;
        let observed = self
            .incidents
            .observe(&entity, &alert, &tactics, &a.scoring);
        let escalation = (observed.progression >= 2).then(|| {
            format!(
                "its {} shows tactics progressing ({}) within the correlation window",
                entity,
                observed.tactics.join(" -> ")
            )
        });
        let existing = self.clusters.get(&fp).map(|c| c.count);
        let first = existing.is_none();
        let need_report = self.cfg.every_alert || (first && self.cfg.keep_reports);
        if let Some(t) = alert.time {
            self.observed_since = Some(self.observed_since.map_or(t, |s| s.min(t)));
        }
        let extra = self.extra.entry(fp).or_default();
        extra.prevalence.observe(&alert);
        if escalation.is_some() {
            extra.prevalence.mark_escalated();
        }
        let recalled = self.memory.recall(&alert, &entity);
        let ctx = Context {
            cluster_count: existing.map_or(1, |c| c + 1),
            escalating_incident: escalation.clone(),
            prevalence: Some(extra.prevalence.view(self.observed_since)),
            entity_attack_evidence: recalled.entity_attack_evidence,
            runs_download: recalled.runs_download,
            // Cached per fingerprint: a storm's repeats cost a lookup, and every member of a
            // cluster is judged with the same evidence (a cluster's verdict is its worst member's).
            // The first alert of a fingerprint in input order decides, whoever computed it.
            rule_checks: a.rules.check_cached_or(fp.0, &alert, checks),
        };
        // Reasons only for an alert that gets a report; the rest need kind and score. The
        // static part (signatures and evidence that held) from the preparer, else the cache.
        let judged = match &statics {
            Some(st) => {
                crate::verdict::judge_from(&a.kb, &a.scoring, &alert, rule, &ctx, st, need_report)
            }
            None => self
                .judge_cache
                .judge(&a.kb, &a.scoring, &alert, rule, &ctx, need_report),
        };
        if let Some(what) = judged.attack_evidence {
            extra.prevalence.mark_escalated();
            self.memory.remember_attack(&alert, &entity, &what);
        }
        let verdict = judged.verdict;

        self.stats.alerts += 1;
        self.stats.verdicts.add(verdict.kind);
        if let Some(p) = alert.priority {
            *self.stats.by_priority.entry(p).or_default() += 1;
        }
        let rule_name = rule
            .map(|r| r.entry.name.clone())
            .unwrap_or_else(|| alert.rule.to_string());
        match self.stats.by_rule.get_mut(&rule_name) {
            Some(n) => *n += 1,
            None => {
                self.stats.by_rule.insert(rule_name, 1);
            }
        }

        let mut out = Vec::new();
        let mut kept_alert: Option<Alert> = None;
        let report = need_report.then(|| match ahead {
            Some(mut r) => {
                r.verdict = Some(verdict.clone());
                *r
            }
            None => a.report_with(&alert, rule, verdict.clone()),
        });
        self.incidents
            .record(&entity, fp, &alert, &verdict, || match &report {
                Some(r) => (r.summary.clone(), r.id.clone()),
                None => (
                    alert.message().unwrap_or(alert.rule.as_str()).to_string(),
                    report_id.unwrap_or_else(|| alert.report_id()),
                ),
            });

        if first {
            let stored = if self.cfg.every_alert {
                None
            } else {
                report.clone()
            };
            let own = (self.cfg.every_alert && self.cfg.emit_alerts).then(|| alert.clone());
            if let Some(ev) = self.clusters.insert(fp, alert, verdict.kind, stored) {
                self.remember_evicted(&ev);
                if let Some(r) = self.finalize(ev) {
                    out.push(r);
                }
            }
            kept_alert = own;
            if let Some(x) = self.extra.get_mut(&fp) {
                x.escalation = escalation;
            }
        } else {
            self.clusters.touch(fp, alert.time, verdict.kind);
            if self.cfg.every_alert && self.cfg.emit_alerts {
                kept_alert = Some(alert);
            } else if let Some(bin) = &mut self.spent {
                bin.push(alert);
            }
            if escalation.is_some() {
                if let Some(x) = self.extra.get_mut(&fp) {
                    x.escalation = escalation;
                }
            }
        }
        if self.cfg.every_alert {
            if let Some(mut r) = report {
                if let Some(c) = self.clusters.get(&fp) {
                    r.cluster = Some(c.info());
                }
                out.push(Emitted {
                    report: r,
                    alert: kept_alert,
                });
            }
        }
        out
    }

    /// A closed cluster's report with its final count, verdict recomputed with everything
    /// the cluster saw (and never lower than any member's).
    fn finalize(&mut self, c: Cluster) -> Option<Emitted> {
        let extra = self.extra.remove(&c.fingerprint).unwrap_or_default();
        if self.cfg.every_alert {
            return None;
        }
        let a = &self.analyzer;
        let rule = a.kb.rule_for(&c.alert);
        let ctx = Context {
            cluster_count: c.count,
            escalating_incident: extra.escalation,
            prevalence: Some(extra.prevalence.view(self.observed_since)),
            rule_checks: a.rules.check_cached(c.fingerprint.0, &c.alert),
            ..Default::default()
        };
        let v = a.verdict(&c.alert, rule, &ctx);
        let member_max = c.verdict;
        let alert = self.cfg.emit_alerts.then(|| c.alert.clone());
        let mut report = c.into_report()?;
        let final_verdict = match &report.verdict {
            Some(first) if member_max > v.kind => raise(&v, first),
            _ => v,
        };
        report.verdict = Some(final_verdict);
        Some(Emitted { report, alert })
    }

    pub fn finish(mut self, rejected: u64) -> Finished {
        let evicted = self.clusters.evicted;
        let table = std::mem::replace(&mut self.clusters, ClusterTable::new(1));
        let clusters = table.drain();
        let mut reports = Vec::new();
        // Each cluster's final verdict: the representative report's, else its members' worst.
        let mut verdicts: Vec<VerdictKind> = clusters.iter().map(|c| c.verdict).collect();
        let mut owners: Vec<usize> = Vec::new();
        if !self.cfg.every_alert && self.cfg.keep_reports {
            for (i, c) in clusters.iter().enumerate() {
                if let Some(r) = self.finalize(c.clone()) {
                    if let Some(v) = &r.report.verdict {
                        verdicts[i] = verdicts[i].max(v.kind);
                    }
                    owners.push(i);
                    reports.push(r);
                }
            }
        }
        let mut run = tune::RunIndex::new(
            &self.analyzer,
            clusters
                .iter()
                .zip(&verdicts)
                .map(|(c, v)| tune::RunCluster {
                    alert: &c.alert,
                    fingerprint: c.fingerprint,
                    count: c.count,
                    verdict: *v,
                })
                .collect(),
            evicted,
        );
        // Every proposed exception is checked against all alerts of the run.
        for (e, &i) in reports.iter_mut().zip(&owners) {
            if let Some(t) = e.report.tuning.take() {
                let c = &clusters[i];
                run.prove(&self.analyzer, &c.alert, c.fingerprint, t)
                    .apply(&mut e.report.tuning, Some(&mut e.report.notes));
            }
        }
        let incidents_evicted = self.incidents.evicted;
        let tracker = std::mem::replace(
            &mut self.incidents,
            IncidentTracker::new(Duration::minutes(1), 1, 0),
        );
        let a = &self.analyzer;
        let incidents: Vec<IncidentReport> = tracker
            .finish()
            .iter()
            .map(|i| incident_report(i, &a.scoring, &a.kb))
            .collect();
        let summary = self.summary(
            &clusters,
            &incidents,
            rejected,
            evicted,
            incidents_evicted,
            &mut run,
        );
        Finished {
            reports,
            incidents,
            summary,
            clusters,
            stats: self.stats,
        }
    }

    fn cluster_summary(&self, c: &Cluster) -> ClusterSummary {
        let a = &self.analyzer;
        let rule = a.kb.rule_for(&c.alert);
        let v = a.cluster_verdict(c, rule);
        let verdict = c.verdict.max(v.kind);
        ClusterSummary {
            fingerprint: c.fingerprint.to_string(),
            rule: rule
                .map(|r| r.entry.name.clone())
                .unwrap_or_else(|| c.alert.rule.to_string()),
            count: c.count,
            first_seen: c.first_seen,
            last_seen: c.last_seen,
            verdict,
            location: crate::incident::entity_of(&c.alert),
            activity: activity(&c.alert),
            report_id: c.alert.report_id(),
            reasons: v
                .reasons
                .iter()
                .filter(|r| r.field.as_deref() != Some("rule"))
                .map(|r| r.text.clone())
                .collect(),
            tuning: if verdict == VerdictKind::Benign {
                tune::exception_for(a, c)
            } else {
                None
            },
        }
    }

    fn remember_evicted(&mut self, c: &Cluster) {
        let smallest = self.evicted_top.iter().map(|s| s.count).min().unwrap_or(0);
        if self.evicted_top.len() < EVICTED_TOP || c.count > smallest {
            let s = self.cluster_summary(c);
            self.evicted_top.push(s);
            self.evicted_top.sort_by_key(|x| std::cmp::Reverse(x.count));
            self.evicted_top.truncate(EVICTED_TOP);
        }
    }

    fn summary(
        &self,
        clusters: &[Cluster],
        incidents: &[IncidentReport],
        rejected: u64,
        evicted: u64,
        incidents_evicted: u64,
        run: &mut tune::RunIndex<'_>,
    ) -> SummaryReport {
        let mut by_count: Vec<&Cluster> = clusters.iter().collect();
        by_count.sort_by(|x, y| y.count.cmp(&x.count).then(x.seq.cmp(&y.seq)));
        let mut all: Vec<ClusterSummary> = by_count
            .iter()
            .take(EVICTED_TOP)
            .map(|c| self.cluster_summary(c))
            .collect();
        all.extend(self.evicted_top.iter().cloned());
        all.sort_by_key(|x| std::cmp::Reverse(x.count));
        let by_fp: HashMap<String, &Cluster> = clusters
            .iter()
            .map(|c| (c.fingerprint.to_string(), c))
            .collect();
        let mut noisy_benign: Vec<ClusterSummary> = Vec::new();
        for c in all
            .iter()
            .filter(|c| c.verdict == VerdictKind::Benign && c.tuning.is_some())
        {
            if noisy_benign.len() >= 10 {
                break;
            }
            let mut c = c.clone();
            // Proven against the run when the cluster is still held (not evicted).
            if let Some(cl) = by_fp.get(&c.fingerprint) {
                if let Some(t) = c.tuning.take() {
                    run.prove(&self.analyzer, &cl.alert, cl.fingerprint, t)
                        .apply(&mut c.tuning, None);
                }
            }
            if c.tuning.is_some() {
                noisy_benign.push(c);
            }
        }
        let top_clusters: Vec<ClusterSummary> = all
            .into_iter()
            .take(20)
            .map(|mut c| {
                c.tuning = None;
                c
            })
            .collect();
        let mut by_priority: Vec<(Priority, u64)> = self
            .stats
            .by_priority
            .iter()
            .map(|(p, n)| (*p, *n))
            .collect();
        by_priority.sort_by_key(|(p, _)| *p);
        SummaryReport {
            schema_version: SCHEMA_VERSION,
            alerts: self.stats.alerts,
            rejected,
            verdicts: self.stats.verdicts,
            by_priority,
            clusters: clusters.len() as u64 + evicted,
            clusters_evicted: evicted,
            incidents_evicted,
            top_clusters,
            incidents_total: incidents.len() as u64,
            incidents: most_severe(incidents, SUMMARY_INCIDENTS),
            noisy_benign,
        }
    }
}

/// Incidents a storm summary lists; the rest are counted.
const SUMMARY_INCIDENTS: usize = 20;

/// The `n` most severe incidents, most severe first: verdict, then score, then size.
fn most_severe(incidents: &[IncidentReport], n: usize) -> Vec<IncidentReport> {
    let mut v: Vec<&IncidentReport> = incidents.iter().collect();
    v.sort_by(|a, b| {
        b.verdict
            .kind
            .cmp(&a.verdict.kind)
            .then(b.verdict.score.total_cmp(&a.verdict.score))
            .then(b.alert_count.cmp(&a.alert_count))
    });
    v.into_iter().take(n).cloned().collect()
}

/// One line saying what a cluster's alerts did: process and command, or actor and action.
pub fn activity(alert: &Alert) -> String {
    let pick = |fs: &[&str]| {
        fs.iter()
            .find_map(|f| alert.field(f).map(|v| v.into_owned()))
    };
    if let Some(cmd) = pick(&["proc.cmdline", "proc.name"]) {
        return match pick(&["proc.pname"]) {
            Some(p) => format!("{cmd} (parent {p})"),
            None => cmd,
        };
    }
    let actor = pick(&[
        "ka.user.name",
        "ct.user",
        "gcp.user",
        "github.user",
        "okta.actor.name",
        "user.name",
    ]);
    let action = pick(&[
        "ka.verb",
        "ct.name",
        "gcp.methodName",
        "github.action",
        "okta.evt.type",
    ]);
    match (actor, action) {
        (Some(a), Some(b)) => format!("{a}: {b}"),
        (Some(a), None) => a,
        (None, Some(b)) => b,
        (None, None) => alert
            .message()
            .unwrap_or(alert.rule.as_str())
            .chars()
            .take(160)
            .collect(),
    }
}

#[cfg(test)]
mod text_fields_tests {
    #[test]
    fn text_fields_data_parses() {
        let t = super::text_fields();
        let k8s = t.get("k8s_audit").expect("a k8s_audit table");
        assert!(k8s
            .iter()
            .any(|(f, to)| f == "user.name" && to == "ka.user.name"));
    }

    /// Old syscall rules printed `name=%proc.name`, except the shell-history rule, whose
    /// `name=` was the file (`%evt.arg.name`).
    #[test]
    fn old_name_keys_take_their_rules_meaning() {
        let an = super::Analyzer::load(&[]).expect("kb loads");
        let read = |line: &str| {
            let mut a = fa_ingest::parse_plain_line(line).expect("a text alert");
            assert!(an.name_rule(&mut a), "rule recovered from {line}");
            a
        };
        let a = read("Warning Sensitive file opened for reading by non-trusted program (user=root name=cmp command=cmp -s shadow.bak /etc/shadow file=/etc/shadow)");
        assert_eq!(a.field("proc.name").as_deref(), Some("cmp"));
        let a = read("Warning Shell history had been deleted or renamed (user=root type=openat command=bash fd.name=/root/.bash_history name=/root/.bash_history path=<NA> oldpath=<NA>)");
        assert_eq!(
            a.field("evt.arg.name").as_deref(),
            Some("/root/.bash_history")
        );
        assert_eq!(a.field("proc.name"), None);
        assert_eq!(a.field("evt.type").as_deref(), Some("openat"));
    }
}
