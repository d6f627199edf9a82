//! How long the console's list queries take on a large store: fills a SQLite store with N
//! analysed alerts (default 1,000,000; clusters, incidents with timelines and tactics, as the
//! service writes them), then runs each list query of the console (first page and a deep page,
//! with and without filters) and prints p50/p95/max over the runs.
//!
//! `cargo run --release -p fa-store --example console_bench -- [ALERTS] [RUNS] [DB]`
//! (the store is built once in DB, default a temporary file, and reused when it holds alerts;
//! DB may be a `postgres://` URL).

use fa_model::{Priority, VerdictKind};
use fa_store::*;
use std::time::{Duration, Instant};

const RULES: &[(&str, Priority)] = &[
    ("Terminal shell in container", Priority::Notice),
    ("Read sensitive file untrusted", Priority::Warning),
    (
        "Drop and execute new binary in container",
        Priority::Critical,
    ),
    ("Contact K8S API Server From Container", Priority::Notice),
    ("Clear Log Activities", Priority::Warning),
];
const TACTICS: &[&str] = &["execution", "credential-access", "persistence", "discovery"];

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn fill(s: &mut dyn Store, n: u64, now: Nanos) -> Result<(), StoreError> {
    let batch = 5000u64;
    let span = 7 * 24 * 3600 * 1_000_000_000i64;
    let mut id = 0u64;
    while id < n {
        let mut analyses = Vec::new();
        let mut incidents = Vec::new();
        for _ in 0..batch.min(n - id) {
            id += 1;
            let h = mix(id);
            let (rule, prio) = RULES[(h % RULES.len() as u64) as usize];
            let container = h >> 40 & 0x3ff;
            let ns = format!("ns-{}", container % 20);
            let t = now - span + (id as i64) * (span / n as i64);
            let uuid = format!("{:016x}-{:016x}", h, mix(h));
            let fp = format!("fp-{}-{}", container % 300, (h >> 8) % RULES.len() as u64);
            let inc = format!("inc-{container}-{}", t / (600 * 1_000_000_000));
            let verdict = match h % 10 {
                0 => VerdictKind::Malicious,
                1..=4 => VerdictKind::Suspicious,
                _ => VerdictKind::Benign,
            };
            let cmd = format!("bash -c echo {:x}", h >> 12);
            let body = format!(
                r#"{{"uuid":"{uuid}","rule":"{rule}","priority":"{prio}","output":"{rule} (command={cmd})","output_fields":{{"proc.cmdline":"{cmd}","k8s.ns.name":"{ns}","container.id":"{container:012x}"}}}}"#
            );
            analyses.push(Analysis {
                alert_id: id as i64,
                row: Some(NewAlert {
                    uuid: uuid.clone(),
                    received_at: t,
                    time: Some(t),
                    rule: rule.into(),
                    priority: Some(prio),
                    source: Some("syscall".into()),
                    hostname: Some(format!("node-{}", h % 50)),
                    namespace: Some(ns.clone()),
                    body,
                }),
                verdict,
                score: 5.0,
                verdict_json: "{}".into(),
                fingerprint: fp,
                incident_id: Some(inc.clone()),
                report_json: None,
                cluster: ClusterUpdate {
                    rule: rule.into(),
                    time: t,
                    verdict,
                    uuid,
                    location: format!("pod:{ns}/web-{container}"),
                    activity: cmd,
                },
                analyzed_at: t,
            });
            if id.is_multiple_of(20) {
                incidents.push(IncidentRow {
                    id: inc.clone(),
                    entity: format!("container:{container:012x}"),
                    first_seen: Some(t),
                    last_seen: Some(t),
                    alert_count: 20,
                    verdict,
                    updated_at: t,
                    body: format!(
                        r#"{{"id":"{inc}","tactics":["{}","{}"],"entities":["host:node-{}"],"timeline":[{{"rule":"{rule}"}}]}}"#,
                        TACTICS[(h % 4) as usize],
                        TACTICS[((h >> 3) % 4) as usize],
                        h % 50
                    ),
                });
            }
        }
        s.write(&WriteBatch {
            analyses,
            incidents,
            ..Default::default()
        })?;
    }
    Ok(())
}

fn time<R>(
    runs: usize,
    mut f: impl FnMut() -> Result<R, StoreError>,
) -> Result<(Duration, Duration, Duration), StoreError> {
    let mut d = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f()?;
        d.push(t.elapsed());
    }
    d.sort();
    let at = |q: f64| d[((d.len() as f64 - 1.0) * q).round() as usize];
    Ok((at(0.5), at(0.95), d[d.len() - 1]))
}

fn main() -> Result<(), StoreError> {
    let args: Vec<String> = std::env::args().collect();
    let n: u64 = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let runs: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(50);
    let tmp = tempfile::tempdir()?;
    let db = args
        .get(3)
        .cloned()
        .unwrap_or_else(|| tmp.path().join("bench.db").display().to_string());
    let now = to_nanos(chrono::Utc::now());
    let opts = SqliteOptions::default();
    // A `postgres://` URL measures the PostgreSQL store instead (filled when it is empty).
    let pg = match DbLocation::parse(&db) {
        Ok(DbLocation::Postgres(url)) => Some(url),
        _ => None,
    };
    let path = std::path::PathBuf::from(&db);
    let mut s: Box<dyn Store> = match &pg {
        Some(url) => Box::new(PgStore::open(url, &PgOptions::default())?),
        None => Box::new(SqliteStore::open(&path, &opts)?),
    };
    if s.stats()?.alerts == 0 {
        let t = Instant::now();
        fill(s.as_mut(), n, now)?;
        eprintln!("filled {n} alerts in {:.1} s", t.elapsed().as_secs_f64());
    }
    // What the service's store writer does while idle: index the alerts for search.
    let t = Instant::now();
    let mut indexed = 0;
    loop {
        let k = s.index_pending(1000)?;
        if k == 0 {
            break;
        }
        indexed += k;
    }
    if indexed > 0 {
        eprintln!(
            "indexed {indexed} alerts for search in {:.1} s",
            t.elapsed().as_secs_f64()
        );
    }
    drop(s);
    let r: Box<dyn Store> = match &pg {
        Some(url) => Box::new(PgStore::open_reader(url, &PgOptions::default())?),
        None => Box::new(SqliteStore::open_reader(&path, &opts)?),
    };
    let st = r.stats()?;
    println!(
        "store: {} alerts, {} clusters, {} incidents; {runs} runs each",
        st.alerts, st.clusters, st.incidents
    );
    let page = |c: Option<String>| PageRequest {
        limit: 50,
        cursor: c,
    };
    // A cursor some pages in, for "deep" pages.
    let deep_inc = {
        let mut c = None;
        for _ in 0..20 {
            c = r
                .console_incidents(&IncidentQuery::default(), &page(c))?
                .next_cursor;
        }
        c
    };
    let deep_alert = {
        let mut c = None;
        for _ in 0..20 {
            c = r
                .list_alerts(&AlertFilter::default(), &page(c))?
                .next_cursor;
        }
        c
    };
    // The command line of one alert half-way through the store: a search with one match.
    let rare = format!("echo {:x}", mix(n / 2) >> 12);
    let day = 24 * 3600 * 1_000_000_000i64;
    type Case<'a> = (&'a str, Box<dyn FnMut() -> Result<usize, StoreError> + 'a>);
    let cases: Vec<Case<'_>> = vec![
        (
            "incidents, first page",
            Box::new(|| {
                Ok(r.console_incidents(&IncidentQuery::default(), &page(None))?
                    .items
                    .len())
            }),
        ),
        (
            "incidents, page 21",
            Box::new(|| {
                Ok(
                    r.console_incidents(&IncidentQuery::default(), &page(deep_inc.clone()))?
                        .items
                        .len(),
                )
            }),
        ),
        (
            "incidents, verdict=malicious",
            Box::new(|| {
                Ok(r.console_incidents(
                    &IncidentQuery {
                        verdict: Some(VerdictKind::Malicious),
                        ..Default::default()
                    },
                    &page(None),
                )?
                .items
                .len())
            }),
        ),
        (
            "incidents, tactic=persistence",
            Box::new(|| {
                Ok(r.console_incidents(
                    &IncidentQuery {
                        tactic: Some("persistence".into()),
                        ..Default::default()
                    },
                    &page(None),
                )?
                .items
                .len())
            }),
        ),
        (
            "incidents, status=acknowledged (none)",
            Box::new(|| {
                Ok(r.console_incidents(
                    &IncidentQuery {
                        status: Some(TriageStatus::Acknowledged),
                        ..Default::default()
                    },
                    &page(None),
                )?
                .items
                .len())
            }),
        ),
        (
            "incidents, namespace=ns-3",
            Box::new(|| {
                Ok(r.console_incidents(
                    &IncidentQuery {
                        namespace: Some("ns-3".into()),
                        ..Default::default()
                    },
                    &page(None),
                )?
                .items
                .len())
            }),
        ),
        (
            "clusters, first page",
            Box::new(|| {
                Ok(r.console_clusters(&ClusterQuery::default(), &page(None))?
                    .items
                    .len())
            }),
        ),
        (
            "clusters, verdict=benign, text",
            Box::new(|| {
                Ok(r.console_clusters(
                    &ClusterQuery {
                        verdict: Some(VerdictKind::Benign),
                        text: Some("echo".into()),
                        ..Default::default()
                    },
                    &page(None),
                )?
                .items
                .len())
            }),
        ),
        (
            "alerts, first page",
            Box::new(|| {
                Ok(r.list_alerts(&AlertFilter::default(), &page(None))?
                    .items
                    .len())
            }),
        ),
        (
            "alerts, page 21",
            Box::new(|| {
                Ok(
                    r.list_alerts(&AlertFilter::default(), &page(deep_alert.clone()))?
                        .items
                        .len(),
                )
            }),
        ),
        (
            "alerts, rule + verdict",
            Box::new(|| {
                Ok(r.list_alerts(
                    &AlertFilter {
                        rule: Some("Clear Log Activities".into()),
                        verdict: Some(VerdictKind::Malicious),
                        ..Default::default()
                    },
                    &page(None),
                )?
                .items
                .len())
            }),
        ),
        (
            "alerts, search (20,000 scanned at most)",
            Box::new(|| {
                Ok(
                    r.search_alerts(&AlertFilter::default(), "echo ff", &page(None), 20_000)?
                        .items
                        .len(),
                )
            }),
        ),
        (
            "alerts, namespace=ns-3",
            Box::new(|| {
                Ok(r.list_alerts(
                    &AlertFilter {
                        namespace: Some("ns-3".into()),
                        ..Default::default()
                    },
                    &page(None),
                )?
                .items
                .len())
            }),
        ),
        (
            "alerts, host=node-7 + verdict=malicious",
            Box::new(|| {
                Ok(r.list_alerts(
                    &AlertFilter {
                        hostname: Some("node-7".into()),
                        verdict: Some(VerdictKind::Malicious),
                        ..Default::default()
                    },
                    &page(None),
                )?
                .items
                .len())
            }),
        ),
        (
            "alerts, search, rare text (one match)",
            Box::new(|| {
                Ok(
                    r.search_alerts(&AlertFilter::default(), &rare, &page(None), 20_000)?
                        .items
                        .len(),
                )
            }),
        ),
        (
            "alerts, search + rule + verdict",
            Box::new(|| {
                Ok(r.search_alerts(
                    &AlertFilter {
                        rule: Some("Clear Log Activities".into()),
                        verdict: Some(VerdictKind::Malicious),
                        ..Default::default()
                    },
                    "bash -c",
                    &page(None),
                    20_000,
                )?
                .items
                .len())
            }),
        ),
        (
            "incidents, host=node-7",
            Box::new(|| {
                Ok(r.console_incidents(
                    &IncidentQuery {
                        hostname: Some("node-7".into()),
                        ..Default::default()
                    },
                    &page(None),
                )?
                .items
                .len())
            }),
        ),
        (
            "incidents, rule=Clear Log Activities",
            Box::new(|| {
                Ok(r.console_incidents(
                    &IncidentQuery {
                        rule: Some("Clear Log Activities".into()),
                        ..Default::default()
                    },
                    &page(None),
                )?
                .items
                .len())
            }),
        ),
        (
            "dead letters, first page",
            Box::new(|| Ok(r.list_dead_letters(&page(None))?.items.len())),
        ),
        (
            "overview, 1 hour",
            Box::new(|| {
                Ok(r.console_overview(now - day / 24, now, day / 24 / 60, 10)?
                    .buckets
                    .len())
            }),
        ),
        (
            "overview, 24 hours",
            Box::new(|| {
                Ok(r.console_overview(now - day, now, day / 60, 10)?
                    .buckets
                    .len())
            }),
        ),
        (
            "overview, 7 days",
            Box::new(|| {
                Ok(r.console_overview(now - 7 * day, now, 7 * day / 60, 10)?
                    .buckets
                    .len())
            }),
        ),
    ];
    println!("| query | p50 ms | p95 ms | max ms |");
    println!("|---|---:|---:|---:|");
    for (name, mut f) in cases {
        let (p50, p95, max) = time(runs, &mut f)?;
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} |",
            p50.as_secs_f64() * 1e3,
            p95.as_secs_f64() * 1e3,
            max.as_secs_f64() * 1e3
        );
    }
    Ok(())
}
