//! What earlier alerts of a stream say about a later one, kept the same way by `analyze`
//! ([`crate::engine::Engine`]) and by `serve`'s correlator: attack evidence seen on the same
//! container, pod, namespace or node within the correlation window, and files downloaded on a
//! workload that a later alert runs ([`crate::staging`]).

use crate::staging::Downloads;
use chrono::{DateTime, Duration, Utc};
use fa_model::Alert;
use std::collections::HashMap;

/// Entities whose attack evidence is remembered at most.
const ATTACK_SEEN_CAP: usize = 10_000;

/// Where attack evidence carries over to later alerts, most specific first, with the word the
/// reason uses: the alert's own workload, its Kubernetes namespace and its node. An attacker in
/// one container who starts a pod (`kubectl run r00t ...`) acts through another workload of the
/// same namespace or node within minutes; the reason names which.
pub fn attack_scopes(alert: &Alert, entity: &str) -> Vec<(String, &'static str)> {
    let mut v = vec![(entity.to_string(), "workload")];
    let ns = alert
        .field("k8s.ns.name")
        .or_else(|| alert.field("ka.target.namespace"));
    if let Some(ns) = ns.filter(|n| !n.is_empty()) {
        v.push((format!("namespace:{ns}"), "namespace"));
    }
    if let Some(h) = alert.hostname.as_deref().filter(|h| !h.is_empty()) {
        let host = format!("host:{h}");
        if host != entity {
            v.push((host, "node"));
        }
    }
    v
}

/// What earlier alerts say about this one (see [`StreamMemory::recall`]).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Recalled {
    /// Attack evidence seen nearby within the window: a description of it.
    pub entity_attack_evidence: Option<String>,
    /// The alert runs a file downloaded earlier on its workload: a description of it.
    pub runs_download: Option<String>,
}

/// A stream's memory of attack evidence and downloads, bounded.
#[derive(Debug)]
pub struct StreamMemory {
    window: Duration,
    /// Per container/pod/host/namespace: when an alert last carried attack evidence, and what.
    attack_seen: HashMap<String, (Option<DateTime<Utc>>, String)>,
    downloads: Downloads,
}

impl StreamMemory {
    pub fn new(window: Duration) -> Self {
        StreamMemory {
            window,
            attack_seen: HashMap::new(),
            downloads: Downloads::default(),
        }
    }

    /// Before the alert is judged: what earlier alerts say about it. Remembers the file the
    /// alert downloads, if any. Without times (plain-text alerts) the stream order stands for
    /// the window.
    pub fn recall(&mut self, alert: &Alert, entity: &str) -> Recalled {
        // Most runs never see attack evidence: only then are the scope keys worth building.
        let entity_attack_evidence = if self.attack_seen.is_empty() {
            None
        } else {
            attack_scopes(alert, entity)
                .into_iter()
                .find_map(|(scope, label)| {
                    self.attack_seen
                        .get(&scope)
                        .filter(|(t, _)| match (t, alert.time) {
                            (Some(t), Some(now)) => now >= *t && now - *t <= self.window,
                            _ => true,
                        })
                        .map(|(_, what)| format!("on the same {label}: {what}"))
                })
        };
        let cmdline = alert.field("proc.cmdline");
        let runs_download = match &cmdline {
            Some(c) if !self.downloads.is_empty() => self.downloads.executed(entity, c),
            _ => None,
        };
        if let Some(c) = &cmdline {
            self.downloads.observe(entity, c);
        }
        Recalled {
            entity_attack_evidence,
            runs_download,
        }
    }

    /// After the alert is judged: remember its attack evidence for its workload, namespace
    /// and node.
    pub fn remember_attack(&mut self, alert: &Alert, entity: &str, what: &str) {
        let scopes = attack_scopes(alert, entity);
        if self.attack_seen.len() + scopes.len() > ATTACK_SEEN_CAP {
            self.attack_seen.clear();
        }
        for (scope, _) in scopes {
            self.attack_seen
                .insert(scope, (alert.time, what.to_string()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn alert(v: serde_json::Value) -> Alert {
        serde_json::from_value(v).expect("valid alert")
    }

    #[test]
    fn attack_evidence_reaches_the_same_namespace_within_the_window_only() {
        let mut m = StreamMemory::new(Duration::minutes(10));
        let first = alert(
            json!({"rule": "r", "priority": "Critical", "time": "2026-01-01T00:00:00Z",
            "output_fields": {"container.id": "aaaaaaaaaaaa", "k8s.ns.name": "shop"}}),
        );
        m.remember_attack(&first, "container:aaaaaaaaaaaa", "a reverse shell");
        let later = |t: &str| {
            alert(json!({"rule": "r", "priority": "Notice", "time": t,
                "output_fields": {"container.id": "bbbbbbbbbbbb", "k8s.ns.name": "shop"}}))
        };
        let got = m.recall(&later("2026-01-01T00:05:00Z"), "container:bbbbbbbbbbbb");
        assert_eq!(
            got.entity_attack_evidence.as_deref(),
            Some("on the same namespace: a reverse shell")
        );
        let late = m.recall(&later("2026-01-01T01:00:00Z"), "container:bbbbbbbbbbbb");
        assert_eq!(late.entity_attack_evidence, None);
    }
}
