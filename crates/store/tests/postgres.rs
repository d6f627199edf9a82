//! What only the PostgreSQL store has to get right: replicas starting and writing together,
//! text PostgreSQL cannot hold as it is, reconnection, and a URL that never shows its
//! password. Skipped (with a notice) when `FA_TEST_POSTGRES_URL` is unset; the behaviour both
//! stores share is tested on both in `store.rs`.

use fa_model::{Priority, VerdictKind};
use fa_store::*;

mod backends;
use backends::PgSchema;

fn alert(uuid: &str, host: &str, t: Nanos) -> NewAlert {
    NewAlert {
        uuid: uuid.into(),
        received_at: t,
        time: Some(t),
        rule: "R".into(),
        priority: Some(Priority::Warning),
        source: Some("syscall".into()),
        hostname: Some(host.into()),
        namespace: None,
        body: format!(r#"{{"uuid":"{uuid}"}}"#),
    }
}

/// An analysed alert as the service writes it: the row from its journal, under `id`.
fn journalled(id: i64, uuid: &str, fp: &str) -> Analysis {
    Analysis {
        alert_id: id,
        row: Some(alert(uuid, "h", id)),
        verdict: VerdictKind::Suspicious,
        score: 1.0,
        verdict_json: "{}".into(),
        fingerprint: fp.into(),
        incident_id: None,
        report_json: None,
        cluster: ClusterUpdate {
            rule: "R".into(),
            time: id,
            verdict: VerdictKind::Suspicious,
            uuid: uuid.into(),
            location: "host:h".into(),
            activity: "sh".into(),
        },
        analyzed_at: id,
    }
}

fn open(p: &PgSchema) -> PgStore {
    PgStore::open(&p.url, &PgOptions::default()).unwrap()
}

#[test]
fn replicas_starting_together_migrate_once() {
    let Some(p) = PgSchema::create("replicas_starting_together_migrate_once") else {
        return;
    };
    let opened: Vec<Result<PgStore, StoreError>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|_| s.spawn(|| PgStore::open(&p.url, &PgOptions::default())))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for o in &opened {
        assert!(o.is_ok(), "{o:?}");
    }
    let mut raw = p.raw();
    let applied: Vec<i64> = raw
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let known: Vec<i64> = PG_MIGRATIONS.iter().map(|m| m.0).collect();
    assert_eq!(applied, known);
}

#[test]
fn refuses_a_database_from_a_newer_version() {
    let Some(p) = PgSchema::create("refuses_a_database_from_a_newer_version") else {
        return;
    };
    drop(open(&p));
    p.raw()
        .execute("INSERT INTO schema_migrations VALUES (99, 0)", &[])
        .unwrap();
    let e = PgStore::open(&p.url, &PgOptions::default()).unwrap_err();
    assert!(
        matches!(e, StoreError::SchemaTooNew { found: 99, .. }),
        "{e}"
    );
    let e = PgStore::open_reader(&p.url, &PgOptions::default()).unwrap_err();
    assert!(
        matches!(e, StoreError::SchemaTooNew { found: 99, .. }),
        "{e}"
    );
}

/// Two replicas number their alerts in blocks of their own, so neither overwrites or drops
/// the other's; the same alert delivered to both is stored and counted once.
#[test]
fn replicas_never_share_an_id_and_store_a_redelivered_alert_once() {
    let Some(p) = PgSchema::create("replicas_never_share_an_id") else {
        return;
    };
    let mut a = open(&p);
    let mut b = open(&p);
    let fa = a.claim_id_floor().unwrap();
    let fb = b.claim_id_floor().unwrap();
    assert_ne!(fa, fb);
    assert!((fa - fb).abs() >= 1 << ID_BLOCK_BITS, "{fa} {fb}");
    // Each journal numbers from its floor: 1, 2 past it.
    a.write(&WriteBatch {
        analyses: vec![
            journalled(fa + 1, "a1", "fp"),
            journalled(fa + 2, "both", "fp"),
        ],
        ..Default::default()
    })
    .unwrap();
    b.write(&WriteBatch {
        analyses: vec![
            journalled(fb + 1, "b1", "fp"),
            journalled(fb + 2, "both", "fp"),
        ],
        ..Default::default()
    })
    .unwrap();
    assert_eq!(a.stats().unwrap().alerts, 3);
    assert_eq!(a.get_cluster("fp").unwrap().unwrap().count, 3);
    assert_eq!(b.get_alert("a1").unwrap().unwrap().row.id, fa + 1);
    assert_eq!(a.get_alert("b1").unwrap().unwrap().row.id, fb + 1);
    assert_eq!(a.get_alert("both").unwrap().unwrap().row.id, fa + 2);
    // A restarted replica claims a block above everything stored.
    let mut c = open(&p);
    let fc = c.claim_id_floor().unwrap();
    assert!(fc > a.max_alert_id().unwrap(), "{fc}");
}

/// Writes from several replicas at once, to the same clusters and overlapping alerts, all
/// commit (no deadlock between their cluster upserts) and count every alert once.
#[test]
fn concurrent_writers_count_each_alert_once() {
    let Some(p) = PgSchema::create("concurrent_writers_count_each_alert_once") else {
        return;
    };
    drop(open(&p));
    std::thread::scope(|s| {
        for w in 0..4i64 {
            let p = &p;
            s.spawn(move || {
                let mut st = open(p);
                let floor = st.claim_id_floor().unwrap();
                for round in 0..10i64 {
                    // Every writer sends the same 20 uuids; clusters in opposite orders.
                    let mut batch: Vec<Analysis> = (0..20i64)
                        .map(|k| {
                            let fp = format!("fp{}", k % 5);
                            journalled(floor + round * 20 + k + 1, &format!("r{round}-{k}"), &fp)
                        })
                        .collect();
                    if w % 2 == 1 {
                        batch.reverse();
                    }
                    st.write(&WriteBatch {
                        analyses: batch,
                        ..Default::default()
                    })
                    .unwrap();
                }
            });
        }
    });
    let s = open(&p);
    assert_eq!(s.stats().unwrap().alerts, 200);
    let total: u64 = (0..5)
        .map(|k| s.get_cluster(&format!("fp{k}")).unwrap().unwrap().count)
        .sum();
    assert_eq!(total, 200);
}

/// Alert fields are attacker-controlled: a NUL (which PostgreSQL text cannot hold) or a field
/// longer than a B-tree entry may be must not fail the batch, and the alert is found again.
#[test]
fn nul_bytes_and_very_long_fields_are_stored_and_found() {
    let Some(p) = PgSchema::create("nul_bytes_and_very_long_fields") else {
        return;
    };
    let mut s = open(&p);
    let long = "x".repeat(20_000);
    let mut nul = alert("nul\0id", "host\0name", 1);
    nul.rule = long.clone();
    let mut long_uuid = alert(&long, &long, 2);
    long_uuid.body = format!(r#"{{"output":"{}"}}"#, "A shell ".repeat(50_000));
    let out = s
        .write(&WriteBatch {
            alerts: vec![nul, long_uuid.clone()],
            ..Default::default()
        })
        .unwrap();
    assert!(out.iter().all(|o| matches!(o, Inserted::New(_))), "{out:?}");
    assert!(s.alert_exists("nul\0id").unwrap());
    let rec = s.get_alert("nul\0id").unwrap().unwrap();
    assert_eq!(rec.row.hostname.as_deref(), Some("host\u{FFFD}name"));
    let by_host = s
        .list_alerts(
            &AlertFilter {
                hostname: Some("host\0name".into()),
                rule: Some(long.clone()),
                ..Default::default()
            },
            &PageRequest::default(),
        )
        .unwrap();
    assert_eq!(by_host.items.len(), 1);
    // A large body comes back exactly (PostgreSQL compresses it itself).
    assert_eq!(s.get_alert(&long).unwrap().unwrap().body, long_uuid.body);
    let dup = s
        .write(&WriteBatch {
            alerts: vec![long_uuid],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(dup, vec![Inserted::Duplicate]);
}

#[test]
fn every_uuid_is_visited_once() {
    let Some(p) = PgSchema::create("every_uuid_is_visited_once") else {
        return;
    };
    let mut s = open(&p);
    // More than one chunk of the cursor.
    let analyses = (1..=20_000)
        .map(|i| journalled(i, &format!("u{i}"), "fp"))
        .collect();
    s.write(&WriteBatch {
        analyses,
        ..Default::default()
    })
    .unwrap();
    let mut seen = std::collections::HashSet::new();
    let mut calls = 0;
    s.for_each_uuid(&mut |u| {
        calls += 1;
        seen.insert(u.to_owned());
    })
    .unwrap();
    assert_eq!((calls, seen.len()), (20_000, 20_000));
    assert!(seen.contains("u1") && seen.contains("u20000"));
}

/// When the server drops the connection (a failover, a restart), the store connects again:
/// at most the call that found it closed fails.
#[test]
fn a_dropped_connection_is_opened_again() {
    let Some(p) = PgSchema::create("a_dropped_connection_is_opened_again") else {
        return;
    };
    let opts = PgOptions {
        application_name: p.name.clone(),
        ..PgOptions::default()
    };
    let s = PgStore::open(&p.url, &opts).unwrap();
    assert_eq!(s.stats().unwrap().alerts, 0);
    let killed: i64 = p
        .raw()
        .query_one(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
            &[&p.name],
        )
        .unwrap()
        .get(0);
    assert_eq!(killed, 1);
    let first = s.stats();
    let second = s.stats();
    assert!(second.is_ok(), "{first:?} then {second:?}");
}

#[test]
fn the_password_never_shows() {
    let Some(p) = PgSchema::create("the_password_never_shows") else {
        return;
    };
    // Trust authentication ignores the password; the store must still never show it.
    let u = p.url.expose();
    let host_start = u.find("://").map_or(0, |i| i + 3);
    let with_password = match u[host_start..].split('/').next().and_then(|a| a.find('@')) {
        Some(at) => format!(
            "{}:hunter2-secret{}",
            &u[..host_start + at],
            &u[host_start + at..]
        ),
        None => format!(
            "{}postgres:hunter2-secret@{}",
            &u[..host_start],
            &u[host_start..]
        ),
    };
    let url = PgUrl::parse(&with_password).unwrap();
    let shown = format!("{url} {url:?}");
    assert!(
        !shown.contains("hunter2") && shown.contains(":***@"),
        "{shown}"
    );
    let s = PgStore::open(&url, &PgOptions::default()).unwrap();
    assert!(!format!("{s:?}").contains("hunter2"));
    let bad = PgUrl::parse("postgres://u:hunter2-secret@127.0.0.1:1/x?connect_timeout=1").unwrap();
    let e = PgStore::open(&bad, &PgOptions::default()).unwrap_err();
    assert!(!e.to_string().contains("hunter2"), "{e}");
}

#[test]
fn a_reader_cannot_write() {
    let Some(p) = PgSchema::create("a_reader_cannot_write") else {
        return;
    };
    drop(open(&p));
    let mut r = PgStore::open_reader(&p.url, &PgOptions::default()).unwrap();
    assert!(r.llm_cache_put("k", "v", 1).is_err());
    assert_eq!(r.llm_cache_get("k").unwrap(), None);
}

/// TLS to PostgreSQL is not built in: a URL that requires it is refused at open (not silently
/// downgraded), with the reason.
#[test]
fn a_url_requiring_tls_is_refused_at_open() {
    let Some(p) = PgSchema::create("a_url_requiring_tls_is_refused_at_open") else {
        return;
    };
    let url = PgUrl::parse(&format!("{}&sslmode=require", p.url.expose())).unwrap();
    let e = PgStore::open(&url, &PgOptions::default()).unwrap_err();
    assert!(e.to_string().to_lowercase().contains("tls"), "{e}");
}
