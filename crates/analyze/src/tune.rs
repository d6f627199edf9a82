//! Falco tuning: exceptions for benign clusters only, as narrow as the evidence allows.

use crate::cluster::Cluster;
use crate::engine::Analyzer;
use crate::kb::{scope_values, tuning, yaml_flow_item, yaml_quote};
use fa_model::{Tuning, VerdictKind};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// The fields an exception for this cluster's rule is scoped by.
fn scope_fields(a: &Analyzer, c: &Cluster) -> Vec<String> {
    match a.kb.rule_for(&c.alert) {
        Some(r) => r.entry.tuning_fields.clone(),
        None => {
            let src = c
                .alert
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
    a.kb.rule_for(&c.alert)
        .map(|r| r.entry.name.clone())
        .unwrap_or_else(|| c.alert.rule.to_string())
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
    for c in clusters
        .iter()
        .filter(|c| c.count >= min_count && c.verdict == VerdictKind::Benign)
    {
        if exception_for(a, c).is_none() {
            continue;
        }
        let present = scope_values(&scope_fields(a, c), &c.alert);
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
        let comment = format!("{} alerts; {}", c.count, benign_reason(a, c));
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
                let _ = writeln!(out, "        # {}", comment.replace(['\n', '\r'], " "));
                let quoted: Vec<String> = vals.iter().map(|v| yaml_quote(v)).collect();
                let _ = writeln!(out, "        - [{}]", quoted.join(", "));
                n += 1;
            }
        }
        out.push_str("  override:\n    exceptions: append\n");
    }
    (out, n)
}
