//! Falco tuning: exceptions for benign clusters only, as narrow as the evidence allows.

use crate::cluster::Cluster;
use crate::engine::{activity, Analyzer};
use crate::fingerprint::Fingerprint;
use crate::kb::{scope_values, tuning, yaml_flow_item, yaml_quote};
use crate::rules::{narrowing_fields, AlertFields};
use fa_condition::{Compiled, Condition, Op, Tri};
use fa_model::{Alert, Tuning, VerdictKind};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

/// The fields an exception for this cluster's rule is scoped by.
fn scope_fields(a: &Analyzer, c: &Cluster) -> Vec<String> {
    alert_scope_fields(a, &c.alert)
}

/// The tuning fields for an alert's rule: its knowledge-base entry's, else its source's fallback.
pub fn alert_scope_fields(a: &Analyzer, alert: &Alert) -> Vec<String> {
    match a.kb.rule_for(alert) {
        Some(r) => r.entry.tuning_fields.clone(),
        None => {
            let src = alert
                .source
                .as_ref()
                .map(|s| s.as_str())
                .unwrap_or("syscall");
            a.kb.fallback_for(src)
                .map(|f| f.tuning_fields.clone())
                .unwrap_or_default()
        }
    }
}

fn rule_name(a: &Analyzer, c: &Cluster) -> String {
    alert_rule_name(a, &c.alert)
}

fn alert_rule_name(a: &Analyzer, alert: &Alert) -> String {
    a.kb.rule_for(alert)
        .map(|r| r.entry.name.clone())
        .unwrap_or_else(|| alert.rule.to_string())
}

/// The exception for one cluster, or None when it is not benign or nothing scopes it.
pub fn exception_for(a: &Analyzer, c: &Cluster) -> Option<Tuning> {
    if c.verdict != VerdictKind::Benign
        || c.alert.rule.is_unknown() && a.kb.rule_for(&c.alert).is_none()
    {
        return None;
    }
    tuning(&rule_name(a, c), &scope_fields(a, c), &c.alert)
}

/// Why the cluster is benign: the reasons of its (final) verdict that pushed it there.
fn benign_reason(a: &Analyzer, c: &Cluster) -> String {
    let v = a.cluster_verdict(c, a.kb.rule_for(&c.alert));
    let texts: Vec<String> = v
        .reasons
        .iter()
        .filter(|r| r.weight < 0.0)
        .map(|r| r.text.clone())
        .collect();
    if texts.is_empty() {
        "judged benign".into()
    } else {
        texts.join("; ")
    }
}

/// A Falco rules file appending exceptions to upstream rules for every benign cluster with at
/// least `min_count` alerts. Suspicious and malicious clusters never get one.
pub fn rules_file(a: &Analyzer, clusters: &[Cluster], min_count: u64) -> (String, usize) {
    // rule -> exception name -> (fields, [(values, comment)])
    type Values = Vec<(Vec<String>, String)>;
    let mut by_rule: BTreeMap<String, BTreeMap<String, (Vec<String>, Values)>> = BTreeMap::new();
    let mut run = RunIndex::from_clusters(a, clusters, 0);
    let mut withheld: Vec<String> = Vec::new();
    for c in clusters
        .iter()
        .filter(|c| c.count >= min_count && c.verdict == VerdictKind::Benign)
    {
        let Some(proposal) = exception_for(a, c) else {
            continue;
        };
        // Every exception is checked against all clusters of the run before it is written.
        let (proven, present) = run.prove_scoped(a, &c.alert, c.fingerprint, proposal);
        let proof = match proven {
            Proven::Kept(t) | Proven::Narrowed(t) => t.proof.unwrap_or_default(),
            Proven::Withheld(why) => {
                withheld.push(why);
                continue;
            }
        };
        let fields: Vec<String> = present.iter().map(|(f, _)| f.clone()).collect();
        let values: Vec<String> = present.into_iter().map(|(_, v)| v).collect();
        let name = format!(
            "fa_{}",
            fields
                .iter()
                .map(|f| f.replace(['.', '[', ']'], "_"))
                .collect::<Vec<_>>()
                .join("_")
        );
        let comment = format!("{} alerts; {}\n{}", c.count, benign_reason(a, c), proof);
        let entry = by_rule
            .entry(rule_name(a, c))
            .or_default()
            .entry(name)
            .or_insert_with(|| (fields, Vec::new()));
        if let Some(existing) = entry.1.iter_mut().find(|(v, _)| *v == values) {
            existing
                .1
                .push_str(&format!(" (+{} alerts in a similar cluster)", c.count));
        } else {
            entry.1.push((values, comment));
        }
    }
    let mut out = String::from(
        "# Falco exceptions proposed by falco-analyst for benign alert clusters only.\n\
         # Each is appended to the upstream rule (which stays enabled) and scoped to the exact values seen.\n\
         # Review before loading: add this file after the upstream rules files in falco.yaml `rules_files`.\n",
    );
    for why in &withheld {
        let _ = writeln!(out, "# {}", why.replace(['\n', '\r'], " "));
    }
    let mut n = 0;
    for (rule, excs) in &by_rule {
        let _ = writeln!(out, "\n- rule: {}", yaml_quote(rule));
        out.push_str("  exceptions:\n");
        for (name, (fields, values)) in excs {
            let _ = writeln!(out, "    - name: {name}");
            let names: Vec<String> = fields.iter().map(|f| yaml_flow_item(f)).collect();
            let _ = writeln!(out, "      fields: [{}]", names.join(", "));
            let _ = writeln!(out, "      comps: [{}]", vec!["="; fields.len()].join(", "));
            out.push_str("      values:\n");
            for (vals, comment) in values {
                for line in comment.lines() {
                    let _ = writeln!(out, "        # {}", line.replace('\r', " "));
                }
                let quoted: Vec<String> = vals.iter().map(|v| yaml_quote(v)).collect();
                let _ = writeln!(out, "        - [{}]", quoted.join(", "));
                n += 1;
            }
        }
        out.push_str("  override:\n    exceptions: append\n");
    }
    (out, n)
}

/// One cluster of the run, as a proof of an exception needs it.
#[derive(Debug, Clone)]
pub struct RunCluster<'a> {
    pub alert: &'a Alert,
    pub fingerprint: Fingerprint,
    pub count: u64,
    /// The cluster's final verdict (the most severe any member or the cluster got).
    pub verdict: VerdictKind,
}

/// Candidate clusters for an exception scoped by `field` on one rule: by the field's value,
/// and those without it (unknown for a condition, so they may be silenced).
#[derive(Default)]
struct FieldIndex {
    by_value: HashMap<String, Vec<usize>>,
    missing: Vec<usize>,
}

/// All clusters of a run, grouped by rule, against which proposed exceptions are checked.
pub struct RunIndex<'a> {
    clusters: Vec<RunCluster<'a>>,
    by_rule: HashMap<String, Vec<usize>>,
    fields: HashMap<(String, String), FieldIndex>,
    total_alerts: u64,
    /// Clusters evicted earlier, which the run no longer holds.
    evicted: u64,
}

/// What checking a proposed exception against the run's alerts decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Proven {
    /// Silences no suspicious or malicious cluster: kept, with its proof.
    Kept(Tuning),
    /// Narrowed with more fields until it silences no suspicious or malicious cluster.
    Narrowed(Tuning),
    /// No narrowing helps: withheld, with the reason for the report's notes.
    Withheld(String),
}

impl Proven {
    /// Apply to a report's (or cluster summary's) tuning and notes.
    pub fn apply(self, tuning: &mut Option<Tuning>, notes: Option<&mut Vec<String>>) {
        match self {
            Proven::Kept(t) | Proven::Narrowed(t) => *tuning = Some(t),
            Proven::Withheld(why) => {
                *tuning = None;
                if let Some(n) = notes {
                    n.push(why);
                }
            }
        }
    }
}

/// Alerts shown as examples of what an exception would wrongly silence.
const EXAMPLE_CHARS: usize = 120;

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl<'a> RunIndex<'a> {
    pub fn new(a: &Analyzer, clusters: Vec<RunCluster<'a>>, evicted: u64) -> Self {
        let mut by_rule: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, c) in clusters.iter().enumerate() {
            by_rule
                .entry(alert_rule_name(a, c.alert))
                .or_default()
                .push(i);
        }
        RunIndex {
            total_alerts: clusters.iter().map(|c| c.count).sum(),
            clusters,
            by_rule,
            fields: HashMap::new(),
            evicted,
        }
    }

    /// The run as a cluster table leaves it (each cluster's verdict as its members had it).
    pub fn from_clusters(a: &Analyzer, clusters: &'a [Cluster], evicted: u64) -> Self {
        let run = clusters
            .iter()
            .map(|c| RunCluster {
                alert: &c.alert,
                fingerprint: c.fingerprint,
                count: c.count,
                verdict: c.verdict,
            })
            .collect();
        Self::new(a, run, evicted)
    }

    /// Clusters of `rule` an exception whose first scoped field is `field` = `value` can
    /// match: those with that value and those without the field.
    fn candidates(&mut self, rule: &str, field: &str, value: &str) -> Vec<usize> {
        let Some(members) = self.by_rule.get(rule) else {
            return Vec::new();
        };
        let clusters = &self.clusters;
        let idx = self
            .fields
            .entry((rule.to_string(), field.to_string()))
            .or_insert_with(|| {
                let mut ix = FieldIndex::default();
                for &i in members {
                    match clusters[i].alert.field(field) {
                        Some(v) => ix.by_value.entry(v.into_owned()).or_default().push(i),
                        None => ix.missing.push(i),
                    }
                }
                ix
            });
        let mut out: Vec<usize> = idx.by_value.get(value).cloned().unwrap_or_default();
        out.extend(idx.missing.iter().copied());
        out.sort_unstable();
        out
    }

    /// Check a proposed exception (scoped by the alert's own values of `fields`) against every
    /// cluster of the run with the same rule. An exception that would silence a suspicious or
    /// malicious cluster (or one that lacks a scoped field, so it may) is narrowed with the
    /// next field of `narrowing_fields` that tells them apart, or withheld.
    pub fn prove(
        &mut self,
        a: &Analyzer,
        own_alert: &Alert,
        own: Fingerprint,
        proposal: Tuning,
    ) -> Proven {
        self.prove_scoped(a, own_alert, own, proposal).0
    }

    /// [`RunIndex::prove`], with the (field, value) pairs the kept exception is scoped by.
    fn prove_scoped(
        &mut self,
        a: &Analyzer,
        own_alert: &Alert,
        own: Fingerprint,
        proposal: Tuning,
    ) -> (Proven, Vec<(String, String)>) {
        let rule = alert_rule_name(a, own_alert);
        let scope = alert_scope_fields(a, own_alert);
        let mut present = scope_values(&scope, own_alert);
        let Some((f0, v0)) = present.first().cloned() else {
            return (Proven::Kept(proposal), present);
        };
        let candidates: Vec<usize> = self
            .candidates(&rule, &f0, &v0)
            .into_iter()
            .filter(|&i| self.clusters[i].fingerprint != own)
            .collect();
        let Some(cond) = exception_condition(&present) else {
            return (Proven::Kept(proposal), present);
        };
        let results = |cond: &Condition, set: &[usize]| -> Vec<(usize, Tri)> {
            set.iter()
                .map(|&i| {
                    let v = cond.evaluate(&AlertFields(self.clusters[i].alert)).value;
                    (i, v)
                })
                .collect()
        };
        let bad_of = |res: &[(usize, Tri)]| -> Vec<usize> {
            res.iter()
                .filter(|(i, v)| {
                    *v != Tri::False && self.clusters[*i].verdict > VerdictKind::Benign
                })
                .map(|(i, _)| *i)
                .collect()
        };
        let first = results(&cond, &candidates);
        let broad_bad = bad_of(&first);
        let original_fields: Vec<String> = present.iter().map(|(f, _)| f.clone()).collect();
        let mut final_res = first;
        let mut bad = broad_bad.clone();
        let mut added: Vec<String> = Vec::new();
        if !bad.is_empty() {
            for f in narrowing_fields() {
                if bad.is_empty() {
                    break;
                }
                if present.iter().any(|(p, _)| p == f) {
                    continue;
                }
                let Some(fv) = scope_values(std::slice::from_ref(f), own_alert).pop() else {
                    continue;
                };
                let mut next = present.clone();
                next.push(fv);
                let Some(c2) = exception_condition(&next) else {
                    continue;
                };
                let res = results(&c2, &candidates);
                let still = bad_of(&res);
                if still.len() < bad.len() {
                    present = next;
                    added.push(f.clone());
                    bad = still;
                    final_res = res;
                }
            }
        }
        let own_cluster = self.clusters.iter().find(|c| c.fingerprint == own);
        let own_count = own_cluster.map_or(1, |c| c.count);
        let own_verdict = own_cluster.map_or(VerdictKind::Benign, |c| c.verdict);
        if !bad.is_empty() {
            let (alerts, clusters, example) = self.describe(&broad_bad);
            let why = format!(
                "Falco tuning withheld: an exception for `{rule}` scoped by {} would also silence {} in {} \
                 judged suspicious or malicious in this run ({example}), and no further field of this \
                 alert tells them apart.",
                original_fields.join(" + "),
                plural(alerts, "alert", "alerts"),
                plural(clusters, "cluster", "clusters"),
            );
            return (Proven::Withheld(why), present);
        }
        let mut silenced_alerts = own_count;
        let mut silenced_clusters = 1u64;
        let (mut maybe_alerts, mut maybe_clusters) = (0u64, 0u64);
        for (i, v) in &final_res {
            let c = &self.clusters[*i];
            match v {
                Tri::True => {
                    silenced_alerts += c.count;
                    silenced_clusters += 1;
                }
                Tri::Unknown => {
                    maybe_alerts += c.count;
                    maybe_clusters += 1;
                }
                Tri::False => {}
            }
        }
        let mut proof = String::new();
        if !added.is_empty() {
            let (alerts, clusters, example) = self.describe(&broad_bad);
            let _ =
                write!(
                proof,
                "Narrowed with {}: scoped by {} alone it would also have silenced {} in {} judged \
                 suspicious or malicious ({example}). ",
                added.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", "),
                original_fields.join(" + "),
                plural(alerts, "alert", "alerts"),
                plural(clusters, "cluster", "clusters"),
            );
        }
        let _ = write!(
            proof,
            "Checked against the {} in {} of this run{}: it silences {} in {} of `{rule}`",
            plural(self.total_alerts, "alert", "alerts"),
            plural(self.clusters.len() as u64, "cluster", "clusters"),
            if self.evicted > 0 {
                format!(
                    " (not the {} evicted earlier)",
                    plural(self.evicted, "cluster", "clusters")
                )
            } else {
                String::new()
            },
            plural(silenced_alerts, "alert", "alerts"),
            plural(silenced_clusters, "cluster", "clusters"),
        );
        if own_verdict == VerdictKind::Benign {
            proof.push_str(", none of them judged suspicious or malicious");
        } else {
            let _ = write!(
                proof,
                ": this cluster's own alerts (judged {own_verdict}: silence them only once you have \
                 confirmed they are expected) and no other alert judged suspicious or malicious"
            );
        }
        if maybe_clusters > 0 {
            let _ = write!(
                proof,
                "; {} more ({}) lack a scoped field and may be silenced too, all judged benign",
                plural(maybe_clusters, "cluster", "clusters"),
                plural(maybe_alerts, "alert", "alerts"),
            );
        }
        proof.push('.');
        let proven = if added.is_empty() {
            Proven::Kept(Tuning {
                proof: Some(proof),
                ..proposal
            })
        } else {
            let fields: Vec<String> = present.iter().map(|(f, _)| f.clone()).collect();
            match tuning(&rule, &fields, own_alert) {
                Some(t) => Proven::Narrowed(Tuning {
                    proof: Some(proof),
                    ..t
                }),
                None => Proven::Withheld(format!(
                    "Falco tuning withheld: the narrowed exception for `{rule}` could not be written."
                )),
            }
        };
        (proven, present)
    }

    /// Alerts, clusters and one example (activity and verdict, the most severe first).
    fn describe(&self, set: &[usize]) -> (u64, u64, String) {
        let alerts = set.iter().map(|&i| self.clusters[i].count).sum();
        let worst = set
            .iter()
            .map(|&i| &self.clusters[i])
            .max_by_key(|c| (c.verdict, c.count));
        let example = worst.map_or_else(String::new, |c| {
            let act: String = activity(c.alert).chars().take(EXAMPLE_CHARS).collect();
            format!("e.g. `{}`, judged {}", act.replace('`', "'"), c.verdict)
        });
        (alerts, set.len() as u64, example)
    }
}

/// The condition an exception scoped by these (field, value) pairs adds: every field equal.
fn exception_condition(present: &[(String, String)]) -> Option<Condition> {
    static EMPTY: std::sync::OnceLock<Compiled> = std::sync::OnceLock::new();
    let fields: Vec<String> = present.iter().map(|(f, _)| f.clone()).collect();
    let values: Vec<String> = present.iter().map(|(_, v)| v.clone()).collect();
    EMPTY
        .get_or_init(Compiled::default)
        .exception(
            "fa_proposed",
            &fields,
            &vec![Op::Eq; fields.len()],
            &[values],
        )
        .ok()
}
