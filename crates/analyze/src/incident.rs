//! Incident correlation: alerts on the same container, pod or host (or cloud actor) within a
//! sliding window form an incident with a timeline, its entities, the MITRE tactics in order,
//! and a combined verdict that rises when tactics progress.

use crate::fingerprint::Fingerprint;
use crate::kb::KnowledgeBase;
use crate::scoring::Scoring;
use chrono::{DateTime, Duration, Utc};
use fa_model::{
    Alert, Confidence, IncidentReport, Reason, TimelineEntry, Verdict, VerdictKind, SCHEMA_VERSION,
};
use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};

/// Distinct activities listed per incident; the rest are counted. Repeats of one activity
/// fold into its entry, so a storm on one container does not grow its incident.
const TIMELINE_CAP: usize = 100;

/// The `field` of the incident verdict's reason that carries its worst alert's score (as its
/// weight): a resumed incident reads its `max_score` back from it.
const WORST_ALERT_FIELD: &str = "timeline";

/// What `entities` is deduplicated by: a hash of the value, seeded by its label.
fn entity_hash(label: &str, value: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(value.as_bytes(), label.len() as u64)
}

/// Extend the longest increasing chain of tactic stages with one tactic seen now.
fn advance_chain(chain: &mut [u8], scoring: &Scoring, slug: &str) {
    if let Some(s) = scoring.stage_of(slug) {
        let best_before = chain[..s].iter().copied().max().unwrap_or(0);
        chain[s] = chain[s].max(best_before + 1);
    }
}

/// `chain_by` value of a stage reached by alerts of more than one rule (or taken up from a
/// stored report, which does not say).
const MIXED_RULES: u64 = 0;

/// Extend the chain with one alert's tactics. An alert's tactics all happen at once: a rule
/// mapped to several stages (execution and persistence, say) is one step, so each of its stages
/// extends only the chain as it stood before the alert; and a stage reached only by this same
/// rule is no earlier step either (the same activity repeating is not a progression).
/// `chain_by[s]` is the hash of the rule that reached stage `s`'s length, or [`MIXED_RULES`].
fn advance_chain_with_alert(
    before: &[u8],
    before_by: &[u64],
    chain: &mut [u8],
    chain_by: &mut [u64],
    scoring: &Scoring,
    slugs: &[String],
    rule: u64,
) {
    for slug in slugs {
        if let Some(s) = scoring.stage_of(slug) {
            let best_before = (0..s)
                .filter(|&t| before_by[t] != rule || before[t] == 0)
                .map(|t| before[t])
                .max()
                .unwrap_or(0);
            let len = best_before + 1;
            if len > chain[s] {
                chain[s] = len;
                chain_by[s] = rule;
            } else if len == chain[s] && chain_by[s] != rule {
                chain_by[s] = MIXED_RULES;
            }
        }
    }
}

/// The entity an alert is about, most specific first.
pub fn entity_of(alert: &Alert) -> String {
    if let Some(id) = alert.field("container.id").filter(|c| c != "host") {
        return format!("container:{id}");
    }
    if let (Some(ns), Some(pod)) = (alert.field("k8s.ns.name"), alert.field("k8s.pod.name")) {
        return format!("pod:{ns}/{pod}");
    }
    for f in [
        "ka.user.name",
        "ct.user",
        "gcp.user",
        "github.user",
        "okta.actor.name",
    ] {
        if let Some(u) = alert.field(f) {
            return format!("actor:{u}");
        }
    }
    format!("host:{}", alert.hostname.as_deref().unwrap_or("unknown"))
}

/// An observed alert's contribution to its incident, kept until its verdict is known. Its
/// buffers are reused from alert to alert; a storm's repeats add no tactic and no rule, so
/// they allocate nothing.
#[derive(Debug, Clone, Default)]
struct Pending {
    /// Set by `observe`, cleared by `record`.
    active: bool,
    chain: Vec<u8>,
    chain_by: Vec<u64>,
    /// The alert's tactics the incident does not have yet.
    tactics: Vec<String>,
    /// The incident does not count the alert's rule yet.
    new_rule: bool,
}

#[derive(Debug, Clone)]
pub struct Incident {
    pub id: String,
    pub entity: String,
    pub first_seen: Option<DateTime<Utc>>,
    pub last_seen: Option<DateTime<Utc>>,
    pub alert_count: u64,
    pub rules: BTreeSet<String>,
    /// The rules of its alerts that were not benign: what the distinct-rule bonus counts.
    pub counted_rules: BTreeSet<String>,
    /// Tactic slugs in first-seen order.
    pub tactics: Vec<String>,
    pub entities: BTreeSet<String>,
    /// Hashes of the (label, value) pairs already in `entities` (at most 64: a scan is cheap).
    entity_hashes: Vec<u64>,
    pub timeline: Vec<TimelineEntry>,
    /// Where each activity's entry is in `timeline`.
    timeline_index: crate::fingerprint::FingerprintMap<u32>,
    pub timeline_dropped: u64,
    /// Longest chain of increasing tactic stages seen in time order, per ending stage.
    chain: Vec<u8>,
    /// Which rule reached each stage's chain length (see [`advance_chain_with_alert`]).
    chain_by: Vec<u64>,
    pub max_score: f32,
    pub all_benign: bool,
    /// Tactics and rule of the alert observed last, applied by `record` only when its verdict is
    /// not benign: a known-benign alert (a test tool, an agent doing its job) is no step of an
    /// intrusion, so it never advances the chain nor counts as another rule.
    pending: Pending,
    seq: u64,
}

impl Incident {
    /// Number of stages in the longest progression (0 if no staged tactic yet).
    pub fn progression(&self) -> u8 {
        self.chain.iter().copied().max().unwrap_or(0)
    }
}

/// The open incidents' map hashes each entity with one seeded xxh3 call instead of SipHash
/// (it is looked up twice per alert). Entities come from alert fields, so the seed is random
/// per process, as SipHash's keys are: colliding names cannot be prepared in advance.
#[derive(Debug, Clone)]
struct EntityHashing(u64);

impl Default for EntityHashing {
    fn default() -> Self {
        use std::hash::BuildHasher;
        EntityHashing(std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64))
    }
}

impl std::hash::BuildHasher for EntityHashing {
    type Hasher = EntityHasher;
    fn build_hasher(&self) -> EntityHasher {
        EntityHasher(self.0)
    }
}

#[derive(Debug)]
struct EntityHasher(u64);

impl std::hash::Hasher for EntityHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0 = xxhash_rust::xxh3::xxh3_64_with_seed(bytes, self.0);
    }
}

#[derive(Debug)]
pub struct IncidentTracker {
    window: Duration,
    open: HashMap<String, Incident, EntityHashing>,
    /// The open incidents by (last seen, seq), oldest first, to find the stalest without a
    /// scan of all of them (a fleet of containers keeps the table full). Entries are added as
    /// `last_seen` moves and left behind: one whose incident closed or moved on is skipped.
    stalest: BinaryHeap<Reverse<(Option<DateTime<Utc>>, u64)>>,
    /// The entity of each open incident by its `seq` (for `stalest`).
    by_seq: HashMap<u64, String>,
    closed: Vec<Incident>,
    max_open: usize,
    max_closed: usize,
    next_seq: u64,
    pub evicted: u64,
    /// The latest event time seen, to close incidents whose window has passed.
    clock: Option<DateTime<Utc>>,
}

/// What an alert's arrival did to its incident, for the alert's own verdict.
#[derive(Debug, Clone)]
pub struct Observed {
    pub progression: u8,
    /// The incident's tactics in first-seen order, when `progression` is 2 or more (else empty).
    pub tactics: Vec<String>,
}

impl IncidentTracker {
    pub fn new(window: Duration, max_open: usize, max_closed: usize) -> Self {
        IncidentTracker {
            window,
            open: HashMap::default(),
            stalest: BinaryHeap::new(),
            by_seq: HashMap::new(),
            closed: Vec::new(),
            max_open: max_open.max(1),
            max_closed,
            next_seq: 0,
            evicted: 0,
            clock: None,
        }
    }

    /// Record an alert's tactics in the incident of `entity` (the alert's [`entity_of`]),
    /// before its verdict is known.
    pub fn observe(
        &mut self,
        entity: &str,
        alert: &Alert,
        tactic_slugs: &[String],
        scoring: &Scoring,
    ) -> Observed {
        let time = alert.time.or(self.clock);
        if let Some(t) = time {
            self.clock = Some(self.clock.map_or(t, |c| c.max(t)));
        }
        // One lookup decides: absent, present, or present but its window has passed.
        let (present, expired) = match self.open.get(entity) {
            None => (false, false),
            Some(inc) => {
                let expired = match (inc.last_seen, time) {
                    (Some(last), Some(now)) => now - last > self.window,
                    _ => false,
                };
                (!expired, expired)
            }
        };
        if expired {
            if let Some(done) = self.open.remove(entity) {
                self.by_seq.remove(&done.seq);
                self.close(done);
            }
        }
        if !present && self.open.len() >= self.max_open {
            self.evict_stalest();
        }
        let seq = self.next_seq;
        let stages = scoring.incident.stages.len();
        let new_incident = || {
            let id = format!(
                "inc-{:016x}",
                xxhash_rust::xxh3::xxh3_64(format!("{entity}|{seq}|{time:?}").as_bytes())
            );
            Incident {
                id,
                entity: entity.to_string(),
                first_seen: time,
                last_seen: time,
                alert_count: 0,
                rules: BTreeSet::new(),
                counted_rules: BTreeSet::new(),
                tactics: Vec::new(),
                entities: BTreeSet::new(),
                entity_hashes: Vec::new(),
                timeline: Vec::new(),
                timeline_index: Default::default(),
                timeline_dropped: 0,
                chain: vec![0; stages],
                chain_by: vec![MIXED_RULES; stages],
                max_score: f32::MIN,
                all_benign: true,
                pending: Pending::default(),
                seq,
            }
        };
        // Only a new incident pays for the entity's key.
        if !present {
            self.open.insert(entity.to_string(), new_incident());
            self.by_seq.insert(seq, entity.to_string());
            self.stale_push(time, seq);
        }
        let Some(inc) = self.open.get_mut(entity) else {
            // Just inserted: not reached.
            return Observed {
                progression: 0,
                tactics: Vec::new(),
            };
        };
        if inc.alert_count == 0 {
            self.next_seq += 1;
        }
        inc.alert_count += 1;
        let mut moved = None;
        if let Some(t) = time {
            inc.first_seen = Some(inc.first_seen.map_or(t, |f| f.min(t)));
            let last = Some(inc.last_seen.map_or(t, |l| l.max(t)));
            if last != inc.last_seen {
                inc.last_seen = last;
                moved = Some((last, inc.seq));
            }
        }
        if !inc.rules.contains(alert.rule.as_str()) {
            inc.rules.insert(alert.rule.to_string());
        }
        if inc.entities.len() < 64 {
            for (label, f) in [
                ("container", "container.name"),
                ("image", "container.image.repository"),
                ("host", "hostname"),
                ("pod", "k8s.pod.name"),
                ("user", "user.name"),
            ] {
                if let Some(v) = alert.field(f) {
                    // Hash first: repeats (the common case) then cost no allocation.
                    let h = entity_hash(label, &v);
                    if !inc.entity_hashes.contains(&h) {
                        inc.entity_hashes.push(h);
                        inc.entities.insert(format!("{label}:{v}"));
                    }
                }
            }
        }
        // What the chain would be with this alert: its own verdict may take the escalation
        // into account; `record` keeps it only if the alert is not benign.
        let rule_hash = xxhash_rust::xxh3::xxh3_64(alert.rule.as_str().as_bytes()) | 1;
        let p = &mut inc.pending;
        p.active = true;
        p.chain.clear();
        p.chain.extend_from_slice(&inc.chain);
        p.chain_by.clear();
        p.chain_by.extend_from_slice(&inc.chain_by);
        advance_chain_with_alert(
            &inc.chain,
            &inc.chain_by,
            &mut p.chain,
            &mut p.chain_by,
            scoring,
            tactic_slugs,
            rule_hash,
        );
        let progression = p.chain.iter().copied().max().unwrap_or(0);
        p.tactics.clear();
        for slug in tactic_slugs {
            if !inc.tactics.contains(slug) && !p.tactics.contains(slug) {
                p.tactics.push(slug.clone());
            }
        }
        p.new_rule = !inc.counted_rules.contains(alert.rule.as_str());
        let tactics = if progression >= 2 {
            // Only an escalation message needs them.
            let mut t = inc.tactics.clone();
            t.extend(p.tactics.iter().cloned());
            t
        } else {
            Vec::new()
        };
        if let Some((last, seq)) = moved {
            self.stale_push(last, seq);
        }
        Observed {
            progression,
            tactics,
        }
    }

    /// Take up an incident that an earlier run of a service stored (its report), so that alerts
    /// arriving after a restart join it instead of starting a second incident for the same
    /// entity. Its id, counts, times, entities and timeline are kept as stored; the tactic
    /// progression is rebuilt from the tactics in first-seen order (the report keeps no more),
    /// and timeline entries without a `cluster` (reports of older versions) take no repeats.
    /// An entity that already has an open incident keeps it. Returns whether it was taken up.
    pub fn resume(&mut self, rep: &IncidentReport, scoring: &Scoring, kb: &KnowledgeBase) -> bool {
        if self.open.contains_key(&rep.entity) {
            return false;
        }
        if self.open.len() >= self.max_open {
            self.evict_stalest();
        }
        let tactics: Vec<String> = rep
            .tactics
            .iter()
            .map(|name| {
                kb.tactics()
                    .iter()
                    .find(|t| &t.name == name)
                    .map(|t| t.slug.clone())
                    .unwrap_or_else(|| name.clone())
            })
            .collect();
        let mut chain = vec![0u8; scoring.incident.stages.len()];
        for slug in &tactics {
            advance_chain(&mut chain, scoring, slug);
        }
        let mut timeline_index = crate::fingerprint::FingerprintMap::default();
        for (i, e) in rep.timeline.iter().enumerate() {
            if let Some(fp) = e
                .cluster
                .as_deref()
                .and_then(|c| c.parse::<Fingerprint>().ok())
            {
                timeline_index.insert(fp, i as u32);
            }
        }
        let entity_hashes = rep
            .entities
            .iter()
            .filter_map(|e| e.split_once(':'))
            .map(|(label, v)| entity_hash(label, v))
            .collect();
        let max_score = rep
            .verdict
            .reasons
            .iter()
            .find(|r| r.field.as_deref() == Some(WORST_ALERT_FIELD))
            .map_or(rep.verdict.score, |r| r.weight);
        if let Some(t) = rep.last_seen {
            self.clock = Some(self.clock.map_or(t, |c| c.max(t)));
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.by_seq.insert(seq, rep.entity.clone());
        self.open.insert(
            rep.entity.clone(),
            Incident {
                id: rep.id.clone(),
                entity: rep.entity.clone(),
                first_seen: rep.first_seen,
                last_seen: rep.last_seen,
                alert_count: rep.alert_count,
                rules: rep.timeline.iter().map(|e| e.rule.clone()).collect(),
                counted_rules: rep
                    .timeline
                    .iter()
                    .filter(|e| e.verdict != Some(VerdictKind::Benign))
                    .map(|e| e.rule.clone())
                    .collect(),
                tactics,
                entities: rep.entities.iter().cloned().collect(),
                entity_hashes,
                timeline: rep.timeline.clone(),
                timeline_index,
                timeline_dropped: rep.timeline_omitted,
                chain_by: vec![MIXED_RULES; chain.len()],
                chain,
                max_score,
                all_benign: rep
                    .timeline
                    .iter()
                    .all(|e| e.verdict.is_none_or(|v| v == VerdictKind::Benign)),
                pending: Pending::default(),
                seq,
            },
        );
        self.stale_push(rep.last_seen, seq);
        true
    }

    /// The open incident of an entity (as [`entity_of`] names it), if any: lets a long-running
    /// service persist incidents as they grow instead of only at `finish`.
    /// Drop, without closing them, the open incidents of the entities `gone` selects: another
    /// analyser has taken them over (`serve` with JetStream moves partitions of entities between
    /// replicas) and the store has their latest state. Returns how many were dropped.
    pub fn forget_open(&mut self, mut gone: impl FnMut(&str) -> bool) -> usize {
        let before = self.open.len();
        let by_seq = &mut self.by_seq;
        self.open.retain(|entity, inc| {
            let keep = !gone(entity);
            if !keep {
                by_seq.remove(&inc.seq);
            }
            keep
        });
        before - self.open.len()
    }

    pub fn open_incident(&self, entity: &str) -> Option<&Incident> {
        self.open.get(entity)
    }

    /// The correlation window.
    pub fn window(&self) -> Duration {
        self.window
    }

    /// Record the alert's verdict in the open incident of `entity`, and its activity (`fp`) in
    /// the timeline. `describe` gives a new entry's summary and report id; it is called only
    /// for an activity the incident has not seen yet.
    pub fn record(
        &mut self,
        entity: &str,
        fp: Fingerprint,
        alert: &Alert,
        verdict: &Verdict,
        describe: impl FnOnce() -> (String, String),
    ) {
        let Some(inc) = self.open.get_mut(entity) else {
            return;
        };
        inc.max_score = inc.max_score.max(verdict.score);
        inc.all_benign &= verdict.kind == VerdictKind::Benign;
        let p = &mut inc.pending;
        if std::mem::take(&mut p.active) && verdict.kind != VerdictKind::Benign {
            inc.tactics.append(&mut p.tactics);
            std::mem::swap(&mut inc.chain, &mut p.chain);
            std::mem::swap(&mut inc.chain_by, &mut p.chain_by);
            if std::mem::take(&mut p.new_rule) {
                inc.counted_rules.insert(alert.rule.to_string());
            }
        }
        if let Some(&i) = inc.timeline_index.get(&fp) {
            if let Some(e) = inc.timeline.get_mut(i as usize) {
                e.count += 1;
                if e.verdict.is_none_or(|v| verdict.kind > v) {
                    e.verdict = Some(verdict.kind);
                }
                if let Some(t) = alert.time {
                    if e.time.is_some_and(|first| t < first) {
                        e.last_time = e.last_time.or(e.time);
                        e.time = Some(t);
                    } else if e.last_time.is_none_or(|l| t > l) {
                        e.last_time = Some(t);
                    }
                }
            }
        } else if inc.timeline.len() < TIMELINE_CAP {
            let (summary, report_id) = describe();
            inc.timeline_index.insert(fp, inc.timeline.len() as u32);
            inc.timeline.push(TimelineEntry {
                time: alert.time,
                rule: alert.rule.to_string(),
                priority: alert.priority,
                verdict: Some(verdict.kind),
                summary,
                report_id,
                count: 1,
                last_time: None,
                cluster: Some(fp.to_string()),
            });
        } else {
            inc.timeline_dropped += 1;
        }
    }

    fn close(&mut self, inc: Incident) {
        // Single alerts are not incidents; they are already reported on their own.
        if inc.alert_count < 2 {
            return;
        }
        if self.closed.len() >= self.max_closed {
            self.evicted += 1;
            // Keep the most telling incidents: drop the least severe one.
            if let Some((i, _)) = self
                .closed
                .iter()
                .enumerate()
                .min_by(|a, b| a.1.max_score.total_cmp(&b.1.max_score))
            {
                if self.closed[i].max_score <= inc.max_score {
                    self.closed.swap_remove(i);
                } else {
                    return;
                }
            }
        }
        self.closed.push(inc);
    }

    /// Note an open incident's (new) last-seen time; the heap is rebuilt from the open
    /// incidents when left-behind entries outnumber them.
    fn stale_push(&mut self, last_seen: Option<DateTime<Utc>>, seq: u64) {
        self.stalest.push(Reverse((last_seen, seq)));
        if self.stalest.len() > 2 * self.open.len() + 64 {
            self.stalest = self
                .open
                .values()
                .map(|i| Reverse((i.last_seen, i.seq)))
                .collect();
        }
    }

    /// Close the open incident seen last the longest ago (the first opened among equals).
    fn evict_stalest(&mut self) {
        while let Some(Reverse((last_seen, seq))) = self.stalest.pop() {
            let Some(entity) = self.by_seq.get(&seq) else {
                continue; // closed since
            };
            if self
                .open
                .get(entity)
                .is_none_or(|i| i.seq != seq || i.last_seen != last_seen)
            {
                continue; // seen again since: a later entry stands for it
            }
            let Some(entity) = self.by_seq.remove(&seq) else {
                continue;
            };
            if let Some(inc) = self.open.remove(&entity) {
                self.evicted += 1;
                self.close(inc);
            }
            return;
        }
    }

    /// Close everything and return the incidents (two or more alerts), oldest first.
    pub fn finish(mut self) -> Vec<Incident> {
        self.by_seq.clear();
        self.stalest.clear();
        let mut open: Vec<Incident> = self.open.drain().map(|(_, v)| v).collect();
        // In the order they opened, not the map's (random per process): which incidents the
        // cap keeps when severities tie must not change from one run to the next.
        open.sort_by_key(|i| i.seq);
        for inc in open {
            self.close(inc);
        }
        let mut v = self.closed;
        v.sort_by_key(|i| i.seq);
        v
    }
}

/// The combined verdict of an incident: its worst alert, raised when tactics progress and when
/// several distinct rules fire together.
pub fn incident_verdict(inc: &Incident, scoring: &Scoring, kb: &KnowledgeBase) -> Verdict {
    let cfg = &scoring.incident;
    let mut reasons = vec![Reason {
        field: Some(WORST_ALERT_FIELD.into()),
        text: format!("its most severe alert scored {:.1}", inc.max_score),
        weight: inc.max_score,
    }];
    let names: Vec<String> = inc
        .tactics
        .iter()
        .map(|t| {
            kb.tactic_by_slug(t)
                .map(|x| x.name.clone())
                .unwrap_or_else(|| t.clone())
        })
        .collect();
    match inc.progression() {
        p if p >= 3 => reasons.push(Reason {
            field: Some("tactics".into()),
            text: format!(
                "tactics progressed through three stages: {}",
                names.join(" -> ")
            ),
            weight: cfg.three_stage_bonus,
        }),
        2 => reasons.push(Reason {
            field: Some("tactics".into()),
            text: format!("tactics progressed: {}", names.join(" -> ")),
            weight: cfg.two_stage_bonus,
        }),
        _ => {}
    }
    let extra_rules = inc.counted_rules.len().saturating_sub(1) as f32;
    if extra_rules > 0.0 {
        reasons.push(Reason {
            field: Some("rule".into()),
            text: format!(
                "{} distinct rules fired on {} (known-benign alerts not counted)",
                inc.counted_rules.len(),
                inc.entity
            ),
            weight: (extra_rules * cfg.distinct_rule_bonus).min(cfg.distinct_rule_cap),
        });
    }
    let score: f32 = reasons.iter().map(|r| r.weight).sum();
    let (kind, conf) =
        if score >= scoring.thresholds.malicious && !(inc.all_benign && inc.progression() < 2) {
            (
                VerdictKind::Malicious,
                0.6 + 0.05 * (score - scoring.thresholds.malicious),
            )
        } else if inc.all_benign {
            (VerdictKind::Benign, 0.8)
        } else {
            (VerdictKind::Suspicious, 0.5)
        };
    Verdict {
        kind,
        confidence: Confidence::new(conf.min(0.95)),
        score: (score * 100.0).round() / 100.0,
        reasons,
    }
}

pub fn incident_report(inc: &Incident, scoring: &Scoring, kb: &KnowledgeBase) -> IncidentReport {
    let verdict = incident_verdict(inc, scoring, kb);
    let tactics: Vec<String> = inc
        .tactics
        .iter()
        .map(|t| {
            kb.tactic_by_slug(t)
                .map(|x| x.name.clone())
                .unwrap_or_else(|| t.clone())
        })
        .collect();
    let summary = format!(
        "{} alerts from {} rule(s) on {} between {} and {}{}. Combined verdict: {}.",
        inc.alert_count,
        inc.rules.len(),
        inc.entity,
        inc.first_seen
            .map(|t| t.to_rfc3339())
            .unwrap_or_else(|| "an unknown time".into()),
        inc.last_seen
            .map(|t| t.to_rfc3339())
            .unwrap_or_else(|| "an unknown time".into()),
        if tactics.is_empty() {
            String::new()
        } else {
            format!("; tactics in order: {}", tactics.join(" -> "))
        },
        verdict.kind,
    );
    IncidentReport {
        schema_version: SCHEMA_VERSION,
        id: inc.id.clone(),
        summary,
        entity: inc.entity.clone(),
        first_seen: inc.first_seen,
        last_seen: inc.last_seen,
        alert_count: inc.alert_count,
        verdict,
        tactics,
        entities: inc.entities.iter().cloned().collect(),
        timeline: inc.timeline.clone(),
        timeline_omitted: inc.timeline_dropped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(container: &str, secs: Option<i64>) -> Alert {
        let mut v = serde_json::json!({
            "rule": "Terminal shell in container", "priority": "Notice", "output": "x",
            "output_fields": {"container.id": container},
        });
        if let Some(s) = secs {
            v["time"] = serde_json::json!(chrono::DateTime::from_timestamp(1_767_225_600 + s, 0)
                .expect("valid time")
                .to_rfc3339());
        }
        serde_json::from_value(v).expect("valid alert")
    }

    /// The heap finds the incident a scan of all open ones finds: the least recently seen,
    /// the first opened among equals, with times out of order and missing.
    #[test]
    fn the_stalest_incident_is_the_one_a_full_scan_finds() {
        let scoring = Scoring::builtin().expect("scoring loads");
        let mut t = IncidentTracker::new(Duration::days(365), 8, 10_000);
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut evictions = 0;
        for _ in 0..5_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let entity = format!("c{:02}", x % 29);
            let secs = !(x >> 8).is_multiple_of(5);
            let a = alert(&entity, secs.then_some(((x >> 16) % 600) as i64));
            let key = entity_of(&a);
            let victim = (!t.open.contains_key(&key) && t.open.len() >= t.max_open).then(|| {
                t.open
                    .values()
                    .min_by_key(|i| (i.last_seen, i.seq))
                    .map(|i| i.entity.clone())
                    .expect("a full table")
            });
            let before: Vec<String> = t.open.keys().cloned().collect();
            t.observe(&key, &a, &[], &scoring);
            if let Some(v) = victim {
                evictions += 1;
                assert!(!t.open.contains_key(&v), "{v} should have been evicted");
                for e in before.iter().filter(|e| **e != v) {
                    assert!(t.open.contains_key(e), "{e} was evicted instead of {v}");
                }
            }
            assert!(t.stalest.len() <= 2 * t.open.len() + 64);
        }
        assert!(evictions > 1000, "only {evictions} evictions");
    }
}
