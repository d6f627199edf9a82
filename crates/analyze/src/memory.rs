//! What earlier alerts of a stream say about a later one, kept the same way by `analyze`
//! ([`crate::engine::Engine`]) and by `serve`'s correlator: attack evidence seen on the same
//! container, pod, namespace or node within the correlation window, and files downloaded on a
//! workload that a later alert runs ([`crate::staging`]).

use crate::fingerprint::FingerprintHasher;
use crate::staging::Downloads;
use chrono::{DateTime, Duration, Utc};
use fa_model::Alert;
use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;
use xxhash_rust::xxh3::xxh3_64;

/// Entities whose attack evidence is remembered at most.
const ATTACK_SEEN_CAP: usize = 10_000;

/// Where attack evidence carries over to later alerts, most specific first, as (key prefix,
/// name, the index of the word the reason uses in [`SCOPE_WORDS`]): the alert's own workload,
/// its Kubernetes namespace and its node. An attacker in one container who starts a pod
/// (`kubectl run r00t ...`) acts through another workload of the same namespace or node within
/// minutes; the reason names which. A scope's key is prefix + name; no key is built here, so
/// looking scopes up costs no allocation.
fn attack_scopes<'a>(
    alert: &'a Alert,
    entity: &'a str,
) -> [Option<(&'static str, Cow<'a, str>, usize)>; 3] {
    let ns = alert
        .field("k8s.ns.name")
        .or_else(|| alert.field("ka.target.namespace"))
        .filter(|n| !n.is_empty());
    let host = alert
        .hostname
        .as_deref()
        .filter(|h| !h.is_empty())
        // The node is no other scope than the workload when the alert is about the host.
        .filter(|h| entity.strip_prefix("host:") != Some(*h));
    [
        Some(("", Cow::Borrowed(entity), 0)),
        ns.map(|n| ("namespace:", n, 1)),
        host.map(|h| ("host:", Cow::Borrowed(h), 2)),
    ]
}

/// A scope's key: the 64-bit hash of prefix + name (so the entity `host:n1` and the node scope
/// `host:` + `n1` are one key), joined in `buf`, which keeps its allocation between calls.
fn scope_key(buf: &mut String, prefix: &str, name: &str) -> u64 {
    buf.clear();
    buf.push_str(prefix);
    buf.push_str(name);
    xxh3_64(buf.as_bytes())
}

/// The words `attack_scopes` uses, in its order.
const SCOPE_WORDS: [&str; 3] = ["workload", "namespace", "node"];

/// What is remembered of attack evidence seen on one scope.
#[derive(Debug)]
struct AttackSeen {
    time: Option<DateTime<Utc>>,
    /// What the evidence was (`Judgement::attack_evidence`).
    what: String,
    /// The reason later alerts get, per word for the scope ([`SCOPE_WORDS`]: one key can be
    /// one alert's workload and another's node), built once per scope and evidence.
    described: [Option<Arc<str>>; 3],
}

/// What earlier alerts say about this one (see [`StreamMemory::recall`]).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Recalled {
    /// Attack evidence seen nearby within the window: a description of it.
    pub entity_attack_evidence: Option<Arc<str>>,
    /// The alert runs a file downloaded earlier on its workload: a description of it.
    pub runs_download: Option<String>,
}

/// A stream's memory of attack evidence and downloads, bounded.
#[derive(Debug)]
pub struct StreamMemory {
    window: Duration,
    /// Per container/pod/host, namespace and node (by [`scope_key`]): when an alert last
    /// carried attack evidence, and what it was.
    attack_seen: HashMap<u64, AttackSeen, BuildHasherDefault<FingerprintHasher>>,
    /// The scope key being built (kept to reuse its allocation).
    key_buf: String,
    downloads: Downloads,
}

impl StreamMemory {
    pub fn new(window: Duration) -> Self {
        StreamMemory {
            window,
            attack_seen: HashMap::default(),
            key_buf: String::new(),
            downloads: Downloads::default(),
        }
    }

    /// Before the alert is judged: what earlier alerts say about it. Remembers the file the
    /// alert downloads, if any. Without times (plain-text alerts) the stream order stands for
    /// the window.
    pub fn recall(&mut self, alert: &Alert, entity: &str) -> Recalled {
        let window = self.window;
        // Most runs never see attack evidence: only then are the scope keys worth building.
        let entity_attack_evidence = if self.attack_seen.is_empty() {
            None
        } else {
            let seen_map = &mut self.attack_seen;
            let buf = &mut self.key_buf;
            attack_scopes(alert, entity)
                .into_iter()
                .flatten()
                .find_map(|(prefix, name, word)| {
                    let seen = seen_map
                        .get_mut(&scope_key(buf, prefix, &name))
                        .filter(|seen| match (seen.time, alert.time) {
                            (Some(t), Some(now)) => now >= t && now - t <= window,
                            _ => true,
                        })?;
                    let what = &seen.what;
                    let described = seen.described[word].get_or_insert_with(|| {
                        format!("on the same {}: {what}", SCOPE_WORDS[word]).into()
                    });
                    Some(Arc::clone(described))
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
        if self.attack_seen.len() + scopes.iter().flatten().count() > ATTACK_SEEN_CAP {
            self.attack_seen.clear();
        }
        for (prefix, name, _) in scopes.into_iter().flatten() {
            let key = scope_key(&mut self.key_buf, prefix, &name);
            // A storm repeats the same evidence on the same scopes: only the time changes.
            match self.attack_seen.get_mut(&key) {
                Some(seen) if seen.what == what => seen.time = alert.time,
                _ => {
                    self.attack_seen.insert(
                        key,
                        AttackSeen {
                            time: alert.time,
                            what: what.to_string(),
                            described: Default::default(),
                        },
                    );
                }
            }
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
