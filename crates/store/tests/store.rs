use fa_model::{Priority, VerdictKind};
use fa_store::*;
use std::path::Path;

mod backends;
use backends::TestDb;

on_both_backends!(
    migrations_are_versioned_and_applied_once,
    the_same_uuid_is_stored_once,
    analyses_count_each_alert_once_in_its_cluster_and_keep_the_worst_verdict,
    unanalyzed_scan_respects_its_bounds,
    filters_and_pages_alerts,
    retention_removes_old_and_excess_analysed_alerts_only,
    clusters_expire_by_when_they_were_last_counted_not_by_event_time,
    analysed_alerts_from_the_journal_are_stored_with_their_id_and_counted_once_per_cluster,
    dead_letters_keep_raw_bytes_and_page,
    incidents_upsert_and_llm_cache,
    report_updates_and_cache_entries_are_written_in_a_batch,
    an_analysed_alert_whose_uuid_is_stored_under_another_id_is_not_stored_twice,
);

fn alert(uuid: &str, rule: &str, prio: Priority, host: &str, t: Nanos) -> NewAlert {
    NewAlert {
        uuid: uuid.into(),
        received_at: t,
        time: Some(t),
        rule: rule.into(),
        priority: Some(prio),
        source: Some("syscall".into()),
        hostname: Some(host.into()),
        namespace: Some("default".into()),
        body: format!(r#"{{"rule":"{rule}","priority":"{prio}","uuid":"{uuid}"}}"#),
    }
}

fn analysis(id: i64, uuid: &str, fp: &str, v: VerdictKind, t: Nanos) -> Analysis {
    Analysis {
        alert_id: id,
        row: None,
        verdict: v,
        score: 3.5,
        verdict_json: "{}".into(),
        fingerprint: fp.into(),
        incident_id: None,
        report_json: Some(format!(r#"{{"id":"{uuid}"}}"#)),
        cluster: ClusterUpdate {
            rule: "R".into(),
            time: t,
            verdict: v,
            uuid: uuid.into(),
            location: "host:h".into(),
            activity: "sh".into(),
        },
        analyzed_at: t,
    }
}

fn open(dir: &Path) -> SqliteStore {
    SqliteStore::open(&dir.join("db.sqlite"), &SqliteOptions::default()).unwrap()
}

fn ids(out: &[Inserted]) -> Vec<i64> {
    out.iter()
        .filter_map(|i| match i {
            Inserted::New(id) => Some(*id),
            Inserted::Duplicate => None,
        })
        .collect()
}

fn migrations_are_versioned_and_applied_once(db: &TestDb) {
    let s = db.open();
    let (found, known) = db.schema_versions();
    assert_eq!(found, known);
    drop(s);
    // Re-opening applies nothing again (a second CREATE TABLE would fail).
    let s = db.open();
    assert_eq!(db.schema_versions(), (known, known));
    drop(s);
}

#[test]
fn refuses_a_database_from_a_newer_version() {
    let d = tempfile::tempdir().unwrap();
    let s = open(d.path());
    drop(s);
    let c = rusqlite::Connection::open(d.path().join("db.sqlite")).unwrap();
    c.execute("INSERT INTO schema_version VALUES (99, 0)", [])
        .unwrap();
    drop(c);
    let e = SqliteStore::open(&d.path().join("db.sqlite"), &SqliteOptions::default()).unwrap_err();
    assert!(
        matches!(e, StoreError::SchemaTooNew { found: 99, .. }),
        "{e}"
    );
}

fn the_same_uuid_is_stored_once(db: &TestDb) {
    let mut s = db.open();
    let b = WriteBatch {
        alerts: vec![
            alert("u1", "R", Priority::Warning, "h", 1),
            alert("u1", "R", Priority::Warning, "h", 1),
        ],
        ..Default::default()
    };
    let out = s.write(&b).unwrap();
    assert!(matches!(out[0], Inserted::New(_)));
    assert_eq!(out[1], Inserted::Duplicate);
    let again = s
        .write(&WriteBatch {
            alerts: vec![alert("u1", "R", Priority::Warning, "h", 1)],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(again, vec![Inserted::Duplicate]);
    assert_eq!(s.stats().unwrap().alerts, 1);
}

fn analyses_count_each_alert_once_in_its_cluster_and_keep_the_worst_verdict(db: &TestDb) {
    let mut s = db.open();
    let out = s
        .write(&WriteBatch {
            alerts: vec![
                alert("a", "R", Priority::Notice, "h", 10),
                alert("b", "R", Priority::Notice, "h", 20),
                alert("c", "R", Priority::Notice, "h", 5),
            ],
            ..Default::default()
        })
        .unwrap();
    let ids = ids(&out);
    assert_eq!(s.unanalyzed(0, i64::MAX, 10).unwrap().len(), 3);
    s.write(&WriteBatch {
        analyses: vec![
            analysis(ids[0], "a", "fp1", VerdictKind::Benign, 10),
            analysis(ids[1], "b", "fp1", VerdictKind::Malicious, 20),
            // The same alert analysed twice must not count twice.
            analysis(ids[1], "b", "fp1", VerdictKind::Malicious, 20),
        ],
        ..Default::default()
    })
    .unwrap();
    s.write(&WriteBatch {
        analyses: vec![analysis(ids[2], "c", "fp1", VerdictKind::Suspicious, 5)],
        ..Default::default()
    })
    .unwrap();
    let c = s.get_cluster("fp1").unwrap().unwrap();
    assert_eq!(c.count, 3);
    assert_eq!(c.verdict, VerdictKind::Malicious);
    assert_eq!(c.representative_uuid, "a");
    assert_eq!(c.first_seen, from_nanos(5));
    assert_eq!(c.last_seen, from_nanos(20));
    assert!(s.unanalyzed(0, i64::MAX, 10).unwrap().is_empty());
    let rec = s.get_alert("b").unwrap().unwrap();
    assert!(rec.row.analyzed);
    assert_eq!(rec.row.verdict, Some(VerdictKind::Malicious));
    assert_eq!(rec.report_json.as_deref(), Some(r#"{"id":"b"}"#));
}

fn unanalyzed_scan_respects_its_bounds(db: &TestDb) {
    let mut s = db.open();
    let alerts = (0..10)
        .map(|i| alert(&format!("u{i}"), "R", Priority::Notice, "h", i))
        .collect();
    s.write(&WriteBatch {
        alerts,
        ..Default::default()
    })
    .unwrap();
    let max = s.max_alert_id().unwrap();
    assert_eq!(max, 10);
    let first = s.unanalyzed(0, 6, 4).unwrap();
    assert_eq!(
        first.iter().map(|a| a.id).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    let rest = s.unanalyzed(4, 6, 4).unwrap();
    assert_eq!(rest.iter().map(|a| a.id).collect::<Vec<_>>(), vec![5, 6]);
}

fn filters_and_pages_alerts(db: &TestDb) {
    let mut s = db.open();
    let mut alerts = Vec::new();
    for i in 0..25 {
        let prio = if i % 5 == 0 {
            Priority::Critical
        } else {
            Priority::Notice
        };
        let host = if i % 2 == 0 { "even" } else { "odd" };
        alerts.push(alert(
            &format!("u{i}"),
            if i < 20 { "R" } else { "S" },
            prio,
            host,
            i * 1000,
        ));
    }
    s.write(&WriteBatch {
        alerts,
        ..Default::default()
    })
    .unwrap();
    let r = ReaderCheck(db.open_reader());

    let crit =
        r.0.list_alerts(
            &AlertFilter {
                min_priority: Some(Priority::Error),
                ..Default::default()
            },
            &PageRequest::default(),
        )
        .unwrap();
    assert_eq!(crit.items.len(), 5);
    assert!(crit
        .items
        .iter()
        .all(|a| a.priority == Some(Priority::Critical)));

    let f = AlertFilter {
        rule: Some("R".into()),
        hostname: Some("even".into()),
        ..Default::default()
    };
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let p =
            r.0.list_alerts(
                &f,
                &PageRequest {
                    limit: 3,
                    cursor: cursor.clone(),
                },
            )
            .unwrap();
        seen.extend(p.items.iter().map(|a| a.uuid.clone()));
        match p.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    // 10 even of the first 20, newest first, no repeats across pages.
    assert_eq!(seen.len(), 10);
    assert_eq!(seen[0], "u18");
    assert_eq!(seen[9], "u0");

    let window = AlertFilter {
        since: Some(5000),
        until: Some(8000),
        ..Default::default()
    };
    let w = r.0.list_alerts(&window, &PageRequest::default()).unwrap();
    assert_eq!(
        w.items.iter().map(|a| a.uuid.as_str()).collect::<Vec<_>>(),
        vec!["u7", "u6", "u5"]
    );

    let none =
        r.0.list_alerts(
            &AlertFilter {
                verdict: Some(VerdictKind::Malicious),
                ..Default::default()
            },
            &PageRequest::default(),
        )
        .unwrap();
    assert!(none.items.is_empty());
    // A reader never writes.
    let mut ro = r.0;
    assert!(ro
        .write(&WriteBatch {
            alerts: vec![alert("x", "R", Priority::Notice, "h", 0)],
            ..Default::default()
        })
        .is_err());
}

struct ReaderCheck(Box<dyn Store>);

fn retention_removes_old_and_excess_analysed_alerts_only(db: &TestDb) {
    let mut s = db.open();
    let alerts = (0..10)
        .map(|i| alert(&format!("u{i}"), "R", Priority::Notice, "h", i * 100))
        .collect();
    let out = s
        .write(&WriteBatch {
            alerts,
            ..Default::default()
        })
        .unwrap();
    let ids = ids(&out);
    // Analyse all but u0 and u1.
    let analyses = ids[2..]
        .iter()
        .enumerate()
        .map(|(k, id)| analysis(*id, &format!("u{}", k + 2), "fp", VerdictKind::Benign, 0))
        .collect();
    s.write(&WriteBatch {
        analyses,
        ..Default::default()
    })
    .unwrap();

    let policy = RetentionPolicy {
        max_age: Some(chrono::Duration::nanoseconds(550)),
        ..Default::default()
    };
    // now = 1000: cutoff 450, so u0..u4 are old; u0 and u1 are not analysed and stay.
    let mut total = 0;
    loop {
        let o = s.apply_retention(&policy, 1000, 2).unwrap();
        total += o.alerts_deleted;
        if !o.more {
            break;
        }
    }
    assert_eq!(total, 3);
    assert!(s.get_alert("u0").unwrap().is_some());
    assert!(s.get_alert("u2").unwrap().is_none());
    assert!(s.get_alert("u5").unwrap().is_some());

    let policy = RetentionPolicy {
        max_alerts: Some(3),
        ..Default::default()
    };
    let o = s.apply_retention(&policy, 1000, 100).unwrap();
    assert_eq!(o.alerts_deleted, 2, "{o:?}");
    let left: Vec<String> = s
        .list_alerts(&AlertFilter::default(), &PageRequest::default())
        .unwrap()
        .items
        .into_iter()
        .map(|a| a.uuid)
        .collect();
    assert_eq!(left, vec!["u9", "u8", "u7", "u1", "u0"]);
}

fn clusters_expire_by_when_they_were_last_counted_not_by_event_time(db: &TestDb) {
    let mut s = db.open();
    // Both clusters' alerts carry an event time of 0 (replayed, or an old log); "live" was
    // counted at 900, "stale" at 100.
    let mut live = analysis(1, "a1", "live", VerdictKind::Benign, 0);
    live.row = Some(alert("a1", "R", Priority::Notice, "h", 0));
    live.analyzed_at = 900;
    let mut stale = analysis(2, "a2", "stale", VerdictKind::Benign, 0);
    stale.row = Some(alert("a2", "R", Priority::Notice, "h", 0));
    stale.analyzed_at = 100;
    s.write(&WriteBatch {
        analyses: vec![live, stale],
        ..Default::default()
    })
    .unwrap();
    let policy = RetentionPolicy {
        max_age: Some(chrono::Duration::nanoseconds(500)),
        ..Default::default()
    };
    let o = s.apply_retention(&policy, 1000, 100).unwrap();
    assert_eq!(o.clusters_deleted, 1, "{o:?}");
    assert!(s.get_cluster("live").unwrap().is_some());
    assert!(s.get_cluster("stale").unwrap().is_none());
}

fn analysed_alerts_from_the_journal_are_stored_with_their_id_and_counted_once_per_cluster(
    db: &TestDb,
) {
    let mut s = db.open();
    let batch: Vec<Analysis> = (0..5)
        .map(|i| {
            let uuid = format!("j{i}");
            let mut a = analysis(
                100 + i,
                &uuid,
                "fp",
                if i == 3 {
                    VerdictKind::Malicious
                } else {
                    VerdictKind::Benign
                },
                i * 10,
            );
            a.row = Some(alert(&uuid, "R", Priority::Warning, "h", i * 10));
            a
        })
        .collect();
    s.write(&WriteBatch {
        analyses: batch.clone(),
        ..Default::default()
    })
    .unwrap();
    let rec = s.get_alert("j2").unwrap().unwrap();
    assert_eq!(rec.row.id, 102);
    assert!(rec.row.analyzed);
    let c = s.get_cluster("fp").unwrap().unwrap();
    assert_eq!((c.count, c.verdict), (5, VerdictKind::Malicious));
    assert_eq!(c.representative_uuid, "j0");
    assert_eq!((to_nanos(c.first_seen), to_nanos(c.last_seen)), (0, 40));
    // Written again (a replay after a crash): nothing is stored or counted twice.
    s.write(&WriteBatch {
        analyses: batch,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(s.get_cluster("fp").unwrap().unwrap().count, 5);
    assert_eq!(s.stats().unwrap().alerts, 5);
}

fn dead_letters_keep_raw_bytes_and_page(db: &TestDb) {
    let mut s = db.open();
    let dl = |i: u8| NewDeadLetter {
        received_at: i64::from(i),
        origin: "POST /".into(),
        reason_kind: "json_syntax".into(),
        reason: "bad".into(),
        raw: vec![0xff, i, b'{'],
    };
    s.write(&WriteBatch {
        dead_letters: (0..5).map(dl).collect(),
        ..Default::default()
    })
    .unwrap();
    let p = s
        .list_dead_letters(&PageRequest {
            limit: 2,
            cursor: None,
        })
        .unwrap();
    assert_eq!(p.items.len(), 2);
    assert_eq!(p.items[0].raw, vec![0xff, 4, b'{']);
    let p2 = s
        .list_dead_letters(&PageRequest {
            limit: 10,
            cursor: p.next_cursor,
        })
        .unwrap();
    assert_eq!(p2.items.len(), 3);
    assert!(p2.next_cursor.is_none());
    let o = s
        .apply_retention(
            &RetentionPolicy {
                max_dead_letters: Some(2),
                ..Default::default()
            },
            0,
            100,
        )
        .unwrap();
    assert_eq!(o.dead_letters_deleted, 3);
}

fn incidents_upsert_and_llm_cache(db: &TestDb) {
    let mut s = db.open();
    let inc = |n: u64, v: VerdictKind| IncidentRow {
        id: "inc-1".into(),
        entity: "container:abc".into(),
        first_seen: Some(1),
        last_seen: Some(n as i64),
        alert_count: n,
        verdict: v,
        updated_at: n as i64,
        body: format!("{{\"alert_count\":{n}}}"),
    };
    s.write(&WriteBatch {
        incidents: vec![inc(2, VerdictKind::Suspicious)],
        ..Default::default()
    })
    .unwrap();
    s.write(&WriteBatch {
        incidents: vec![inc(3, VerdictKind::Malicious)],
        ..Default::default()
    })
    .unwrap();
    let all = s.list_incidents(&PageRequest::default()).unwrap();
    assert_eq!(all.items.len(), 1);
    assert_eq!(all.items[0].alert_count, 3);
    assert_eq!(
        s.get_incident("inc-1").unwrap().unwrap().verdict,
        VerdictKind::Malicious
    );

    assert_eq!(s.llm_cache_get("k").unwrap(), None);
    s.llm_cache_put("k", "v", 1).unwrap();
    assert_eq!(s.llm_cache_get("k").unwrap().as_deref(), Some("v"));
}

fn report_updates_and_cache_entries_are_written_in_a_batch(db: &TestDb) {
    let mut s = db.open();
    let out = s
        .write(&WriteBatch {
            alerts: vec![
                alert("a", "R", Priority::Warning, "h", 10),
                alert("b", "R", Priority::Warning, "h", 20),
            ],
            ..Default::default()
        })
        .unwrap();
    let ids = ids(&out);
    let mut no_report = analysis(ids[1], "b", "fp1", VerdictKind::Benign, 20);
    no_report.report_json = None;
    s.write(&WriteBatch {
        analyses: vec![
            analysis(ids[0], "a", "fp1", VerdictKind::Suspicious, 10),
            no_report,
        ],
        ..Default::default()
    })
    .unwrap();
    s.write(&WriteBatch {
        report_updates: vec![
            ReportUpdate {
                alert_id: ids[0],
                body: r#"{"id":"a","narrative":{}}"#.into(),
            },
            // No stored report: nothing is created.
            ReportUpdate {
                alert_id: ids[1],
                body: r#"{"id":"b"}"#.into(),
            },
        ],
        llm_cache: vec![LlmCacheEntry {
            key: "k".into(),
            value: "v".into(),
            created_at: 10,
        }],
        ..Default::default()
    })
    .unwrap();
    let a = s.get_alert("a").unwrap().unwrap();
    assert_eq!(
        a.report_json.as_deref(),
        Some(r#"{"id":"a","narrative":{}}"#)
    );
    assert_eq!(s.get_alert("b").unwrap().unwrap().report_json, None);
    assert_eq!(s.llm_cache_get("k").unwrap().as_deref(), Some("v"));

    // Retention forgets cached narratives older than max_age.
    let policy = RetentionPolicy {
        max_age: Some(chrono::Duration::nanoseconds(100)),
        ..Default::default()
    };
    s.apply_retention(&policy, 1_000, 100).unwrap();
    assert_eq!(s.llm_cache_get("k").unwrap(), None);
}

#[test]
fn large_text_is_stored_compressed_and_rows_from_earlier_versions_still_read() {
    let d = tempfile::tempdir().unwrap();
    let mut s = open(d.path());
    let mut a = analysis(7, "z1", "fp", VerdictKind::Suspicious, 10);
    let mut row = alert("z1", "R", Priority::Warning, "h", 10);
    // Falco alerts repeat their field names; a realistic body compresses.
    let body = format!(
        r#"{{"uuid":"z1","output":"{}","output_fields":{{"proc.name":"sh","proc.cmdline":"sh -c id","proc.pname":"bash"}}}}"#,
        "Shell spawned in a container ".repeat(8)
    );
    row.body = body.clone();
    a.row = Some(row.clone());
    a.verdict_json = format!(
        r#"{{"kind":"suspicious","reasons":[{}]}}"#,
        r#"{"text":"runs as root"},"#.repeat(6)
    );
    let report = a.report_json.clone().unwrap();
    s.write(&WriteBatch {
        analyses: vec![a.clone()],
        ..Default::default()
    })
    .unwrap();
    let rec = s.get_alert("z1").unwrap().unwrap();
    assert_eq!(rec.body, body);
    assert_eq!(rec.verdict_json.as_deref(), Some(a.verdict_json.as_str()));
    assert_eq!(rec.report_json.as_deref(), Some(report.as_str()));

    let raw = rusqlite::Connection::open(d.path().join("db.sqlite")).unwrap();
    let (kind, len, vkind): (String, i64, String) = raw
        .query_row(
            "SELECT typeof(body), length(body), typeof(verdict_json) FROM alerts WHERE uuid = 'z1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap();
    assert_eq!((kind.as_str(), vkind.as_str()), ("blob", "blob"));
    assert!((len as usize) < body.len() / 2, "{len} of {}", body.len());

    // A row as version 2 wrote it: TEXT columns (with the uuid key migration 5 gives it).
    raw.execute(
        r#"INSERT INTO alerts (id, uuid, received_at, ts, rule, body, analyzed, verdict, score,
                               fingerprint, verdict_json, uuid_key)
           VALUES (1, 'old', 1, 1, 'R', '{"rule":"R"}', 1, 'benign', 0.0, 'fp0', '{"kind":"benign"}', ?1)"#,
        [text_key("old")],
    )
    .unwrap();
    raw.execute_batch(
        r#"INSERT INTO reports (alert_id, created_at, body) VALUES (1, 1, '{"id":"old"}');"#,
    )
    .unwrap();
    let old = s.get_alert("old").unwrap().unwrap();
    assert_eq!(old.body, r#"{"rule":"R"}"#);
    assert_eq!(old.verdict_json.as_deref(), Some(r#"{"kind":"benign"}"#));
    assert_eq!(old.report_json.as_deref(), Some(r#"{"id":"old"}"#));
}

#[test]
fn a_compression_dictionary_is_trained_from_the_stores_own_alerts_and_used_by_every_connection() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("db.sqlite");
    let mut s = open(d.path());
    let body = |i: i64| {
        format!(
            r#"{{"uuid":"d{i}","output":"Shell spawned in a container (container_id={:012x} cmd=sh -c id {i})","output_fields":{{"container.id":"{:012x}","proc.cmdline":"sh -c id {i}","proc.name":"sh"}},"priority":"Warning","rule":"Terminal shell in container","source":"syscall"}}"#,
            i % 17,
            i % 17
        )
    };
    for chunk in 0..6 {
        let analyses: Vec<Analysis> = (0..500)
            .map(|k| {
                let i = chunk * 500 + k + 1;
                let mut a = analysis(i, &format!("d{i}"), "fp", VerdictKind::Benign, i);
                let mut row = alert(&format!("d{i}"), "R", Priority::Warning, "h", i);
                row.body = body(i);
                a.row = Some(row);
                a.report_json = None;
                a
            })
            .collect();
        s.write(&WriteBatch {
            analyses,
            ..Default::default()
        })
        .unwrap();
    }
    let raw = rusqlite::Connection::open(&path).unwrap();
    let dicts: i64 = raw
        .query_row("SELECT count(*) FROM zstd_dicts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(dicts, 1);
    // Rows packed before and after the dictionary read back through a fresh reader.
    let reader = SqliteStore::open_reader(&path, &SqliteOptions::default()).unwrap();
    for i in [1, 999, 2500, 3000] {
        let rec = reader.get_alert(&format!("d{i}")).unwrap().unwrap();
        assert_eq!(rec.body, body(i));
        assert_eq!(rec.verdict_json.as_deref(), Some("{}"));
    }
    // Those packed with it are much smaller than those packed without.
    let len = |i: i64| -> i64 {
        raw.query_row("SELECT length(body) FROM alerts WHERE id = ?1", [i], |r| {
            r.get(0)
        })
        .unwrap()
    };
    assert!(len(3000) * 2 < len(1), "{} vs {}", len(3000), len(1));
    // Reopened for writing, the store packs with the same dictionary (no second one).
    drop(s);
    let mut s = open(d.path());
    let mut a = analysis(5000, "d5000", "fp", VerdictKind::Benign, 5000);
    let mut row = alert("d5000", "R", Priority::Warning, "h", 5000);
    row.body = body(5000);
    a.row = Some(row);
    s.write(&WriteBatch {
        analyses: vec![a],
        ..Default::default()
    })
    .unwrap();
    assert!(len(5000) * 2 < len(1));
    assert_eq!(reader.get_alert("d5000").unwrap().unwrap().body, body(5000));
}

fn uuids_where(s: &SqliteStore, f: AlertFilter) -> Vec<String> {
    let mut u: Vec<String> = s
        .list_alerts(&f, &PageRequest::default())
        .unwrap()
        .items
        .into_iter()
        .map(|a| a.uuid)
        .collect();
    u.sort();
    u
}

/// A database as a service of schema `version` left it, empty (its migrations applied as
/// they were then: a table they add a backfilled column to is empty, so the backfill marks are
/// plain comments here).
fn database_at_schema(path: &Path, version: i64) -> rusqlite::Connection {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(
        "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
    )
    .unwrap();
    for (v, sql) in MIGRATIONS.iter().filter(|(v, _)| *v <= version) {
        c.execute_batch(sql).unwrap();
        c.execute("INSERT INTO schema_version VALUES (?1, 0)", [v])
            .unwrap();
    }
    c
}

/// Rows a schema-3 service stored get their keys when the database is migrated, and every
/// keyed filter finds them through its index.
#[test]
fn rows_from_schema_3_are_given_their_keys_and_found_by_every_filter() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("db.sqlite");
    {
        let c = database_at_schema(&path, 3);
        for (i, (rule, host, ns, fp, inc)) in [
            ("Rule A", "h1", Some("ns1"), "fp1", Some("inc1")),
            ("Rule B", "h2", None, "fp2", None),
            ("Rule A", "h2", Some("ns1"), "fp1", None),
        ]
        .into_iter()
        .enumerate()
        {
            c.execute(
                "INSERT INTO alerts (uuid, received_at, ts, rule, hostname, namespace, body,
                                     analyzed, fingerprint, incident_id)
                 VALUES (?1, 1, 1, ?2, ?3, ?4, '{}', 1, ?5, ?6)",
                rusqlite::params![format!("u{i}"), rule, host, ns, fp, inc],
            )
            .unwrap();
        }
    }
    let s = SqliteStore::open(&path, &SqliteOptions::default()).unwrap();
    assert_eq!(s.schema_version().unwrap(), MIGRATIONS.last().unwrap().0);
    let by = |f: AlertFilter| uuids_where(&s, f);
    assert_eq!(
        by(AlertFilter {
            rule: Some("Rule A".into()),
            ..Default::default()
        }),
        ["u0", "u2"]
    );
    assert_eq!(
        by(AlertFilter {
            hostname: Some("h2".into()),
            ..Default::default()
        }),
        ["u1", "u2"]
    );
    assert_eq!(
        by(AlertFilter {
            namespace: Some("ns1".into()),
            ..Default::default()
        }),
        ["u0", "u2"]
    );
    assert_eq!(
        by(AlertFilter {
            fingerprint: Some("fp2".into()),
            ..Default::default()
        }),
        ["u1"]
    );
    assert_eq!(
        by(AlertFilter {
            incident_id: Some("inc1".into()),
            ..Default::default()
        }),
        ["u0"]
    );
    let raw = rusqlite::Connection::open(&path).unwrap();
    let unkeyed: i64 = raw
        .query_row(
            "SELECT count(*) FROM alerts WHERE rule_key IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(unkeyed, 0);
}

/// Two texts with one key (forced here: FNV-1a collisions are rare) never answer for each
/// other, and the filters go through the key indexes.
#[test]
fn a_key_shared_by_two_texts_never_matches_the_wrong_one() {
    let d = tempfile::tempdir().unwrap();
    let mut s = open(d.path());
    let b = WriteBatch {
        alerts: vec![
            alert("a", "Rule A", Priority::Notice, "h1", 1),
            alert("b", "Rule B", Priority::Notice, "h2", 2),
        ],
        ..Default::default()
    };
    s.write(&b).unwrap();
    let raw = rusqlite::Connection::open(d.path().join("db.sqlite")).unwrap();
    raw.execute(
        "UPDATE alerts SET rule_key = ?1, hostname_key = ?2 WHERE uuid = 'b'",
        [text_key("Rule A"), text_key("h1")],
    )
    .unwrap();
    let rule_a = AlertFilter {
        rule: Some("Rule A".into()),
        ..Default::default()
    };
    assert_eq!(uuids_where(&s, rule_a), ["a"]);
    let host_1 = AlertFilter {
        hostname: Some("h1".into()),
        ..Default::default()
    };
    assert_eq!(uuids_where(&s, host_1), ["a"]);
    for (col, index) in [
        ("rule", "alerts_rule_key"),
        ("hostname", "alerts_hostname_key"),
        ("namespace", "alerts_namespace_key"),
        ("fingerprint", "alerts_fingerprint_key"),
        ("incident_id", "alerts_incident_key"),
    ] {
        let key = if col == "incident_id" {
            "incident_key".to_string()
        } else {
            format!("{col}_key")
        };
        let plan: Vec<String> = raw
            .prepare(&format!(
                "EXPLAIN QUERY PLAN SELECT id FROM alerts WHERE {key} = 1 AND {col} = 'x'
                 ORDER BY id DESC LIMIT 51"
            ))
            .unwrap()
            .query_map([], |r| r.get::<_, String>(3))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert!(plan.iter().any(|p| p.contains(index)), "{col}: {plan:?}");
    }
}

/// The uuid of an analysed alert already stored under another id (a redelivery that reached
/// the analysers) is not stored again or counted again in its cluster.
fn an_analysed_alert_whose_uuid_is_stored_under_another_id_is_not_stored_twice(db: &TestDb) {
    let mut s = db.open();
    let with_row = |id: i64| {
        let mut a = analysis(id, "dup", "fp", VerdictKind::Benign, 1);
        a.row = Some(alert("dup", "R", Priority::Warning, "h", 1));
        a
    };
    for id in [7, 8] {
        s.write(&WriteBatch {
            analyses: vec![with_row(id)],
            ..Default::default()
        })
        .unwrap();
    }
    assert_eq!(s.stats().unwrap().alerts, 1);
    assert_eq!(s.get_alert("dup").unwrap().unwrap().row.id, 7);
    assert_eq!(s.get_cluster("fp").unwrap().unwrap().count, 1);
}

/// Alerts a schema-4 service stored get their uuid keys when the table is rebuilt; they are
/// found by uuid through the key index, and their uuids still cannot be stored twice.
#[test]
fn uuids_stored_before_schema_5_are_keyed_found_and_kept_unique() {
    let d = tempfile::tempdir().unwrap();
    let path = d.path().join("db.sqlite");
    {
        let c = database_at_schema(&path, 4);
        for i in 0..3 {
            c.execute(
                "INSERT INTO alerts (id, uuid, received_at, ts, rule, hostname, body, analyzed,
                                     fingerprint, rule_key, hostname_key, fingerprint_key)
                 VALUES (?1, ?2, 1, 1, 'R', 'h', '{}', 1, 'fp', ?3, ?4, ?5)",
                rusqlite::params![
                    10 + i,
                    format!("old-{i}"),
                    text_key("R"),
                    text_key("h"),
                    text_key("fp")
                ],
            )
            .unwrap();
        }
    }
    let mut s = SqliteStore::open(&path, &SqliteOptions::default()).unwrap();
    // Migrated through schema 5 (and any later migration).
    assert_eq!(s.schema_version().unwrap(), MIGRATIONS.last().unwrap().0);
    assert!(s.alert_exists("old-1").unwrap());
    assert!(!s.alert_exists("old-9").unwrap());
    assert_eq!(s.get_alert("old-2").unwrap().unwrap().row.id, 12);
    // Every filter still finds them (the key indexes were rebuilt with the table).
    assert_eq!(
        uuids_where(
            &s,
            AlertFilter {
                rule: Some("R".into()),
                ..Default::default()
            }
        ),
        ["old-0", "old-1", "old-2"]
    );
    let out = s
        .write(&WriteBatch {
            alerts: vec![
                alert("old-0", "R", Priority::Warning, "h", 1),
                alert("new", "R", Priority::Warning, "h", 1),
            ],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(out[0], Inserted::Duplicate);
    assert!(matches!(out[1], Inserted::New(_)));
    let raw = rusqlite::Connection::open(&path).unwrap();
    let mut q = raw.prepare("SELECT uuid, uuid_key FROM alerts").unwrap();
    let keys: Vec<(String, Option<i64>)> = q
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(keys.len(), 4);
    let unkeyed = keys.iter().filter(|(u, k)| *k != Some(text_key(u))).count();
    assert_eq!(unkeyed, 0);
    let plan: Vec<String> = raw
        .prepare("EXPLAIN QUERY PLAN SELECT 1 FROM alerts WHERE uuid_key = 1 AND uuid = 'x'")
        .unwrap()
        .query_map([], |r| r.get::<_, String>(3))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    assert!(
        plan.iter().any(|p| p.contains("alerts_uuid_key")),
        "{plan:?}"
    );
}

/// Two uuids with one key (forced: FNV-1a collisions are rare) are told apart by their text:
/// each is found as itself, and a new uuid sharing a stored one's key is still stored.
#[test]
fn a_uuid_key_shared_by_two_uuids_never_mixes_them_up() {
    let d = tempfile::tempdir().unwrap();
    let mut s = open(d.path());
    s.write(&WriteBatch {
        alerts: vec![
            alert("a", "R", Priority::Notice, "h", 1),
            alert("b", "R", Priority::Notice, "h", 2),
        ],
        ..Default::default()
    })
    .unwrap();
    let raw = rusqlite::Connection::open(d.path().join("db.sqlite")).unwrap();
    raw.execute(
        "UPDATE alerts SET uuid_key = ?1 WHERE uuid = 'b'",
        [text_key("a")],
    )
    .unwrap();
    assert_eq!(s.get_alert("a").unwrap().unwrap().row.uuid, "a");
    raw.execute(
        "UPDATE alerts SET uuid_key = ?1 WHERE uuid = 'a'",
        [text_key("c")],
    )
    .unwrap();
    assert!(!s.alert_exists("c").unwrap());
    let out = s
        .write(&WriteBatch {
            alerts: vec![alert("c", "R", Priority::Notice, "h", 3)],
            ..Default::default()
        })
        .unwrap();
    assert!(matches!(out[0], Inserted::New(_)), "{out:?}");
    assert_eq!(s.get_alert("c").unwrap().unwrap().row.uuid, "c");
}
