//! `parallel::run`: on several threads, every alert's result is what one thread gives it, in
//! input order, with the input's errors passed through in place; stopping early stops cleanly.

use fa_analyze::engine::{Analyzer, Engine, EngineConfig};
use fa_analyze::parallel;
use fa_model::Alert;
use std::ops::ControlFlow;

/// Every bundled alert (test data and labelled corpus), repeated with shifted times, pids and
/// container ids so that clusters, incidents and evictions all happen, with an error record
/// every 997 items: many batches, enough to fill the in-flight limit several times over.
fn stream() -> Vec<Result<Alert, String>> {
    let mut base = Vec::new();
    for dir in [fa_testdata::alerts_dir(), fa_testdata::corpus_dir()] {
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("test data directory")
            .map(|e| e.expect("entry").path())
            .filter(|p| {
                p.extension()
                    .is_some_and(|x| x == "jsonl" || x == "txt" || x == "log")
            })
            .collect();
        files.sort();
        for f in files {
            let input = fa_ingest::open_input(f.to_str().expect("utf-8 path")).expect("opens");
            base.extend(input.into_alerts().filter_map(Result::ok));
        }
    }
    assert!(base.len() > 150, "only {} alerts", base.len());
    let mut out = Vec::new();
    for round in 0..40i64 {
        for (i, a) in base.iter().enumerate() {
            let mut a = a.clone();
            if let Some(t) = a.time {
                a.time = Some(t + chrono::Duration::seconds(round * 37));
            }
            if round % 3 == 1 {
                a.output_fields.insert(
                    "proc.pid".into(),
                    serde_json::json!(1000 + i as i64 + round),
                );
            }
            if round % 4 == 2 {
                if let Some(c) = a.field("container.id").map(|c| c.to_string()) {
                    a.output_fields.insert(
                        "container.id".into(),
                        serde_json::json!(format!("{c}{round}")),
                    );
                }
            }
            out.push(Ok(a));
            if out.len() % 997 == 0 {
                out.push(Err(format!("bad record {}", out.len())));
            }
        }
    }
    out
}

/// Everything a run writes, serialised: the reports and errors as they come, then what
/// `finish` gives.
fn run(items: &[Result<Alert, String>], threads: usize, cfg: EngineConfig) -> Vec<String> {
    let analyzer = Analyzer::load(&[]).expect("knowledge base loads");
    let mut engine = Engine::new(analyzer, cfg);
    let mut out = Vec::new();
    let stopped = parallel::run(
        &mut engine,
        items.iter().cloned(),
        threads,
        |r| -> ControlFlow<()> {
            match r {
                Ok(emitted) => {
                    for e in emitted {
                        out.push(serde_json::to_string(&e.report).expect("report serialises"));
                    }
                }
                Err(e) => out.push(format!("error: {e}")),
            }
            ControlFlow::Continue(())
        },
    );
    assert!(stopped.is_none());
    let done = engine.finish(0);
    for e in &done.reports {
        out.push(serde_json::to_string(&e.report).expect("report serialises"));
    }
    for i in &done.incidents {
        out.push(serde_json::to_string(i).expect("incident serialises"));
    }
    out.push(serde_json::to_string(&done.summary).expect("summary serialises"));
    out
}

#[test]
fn several_threads_give_what_one_gives() {
    let items = stream();
    for cfg in [
        EngineConfig::default(),
        EngineConfig {
            every_alert: true,
            ..EngineConfig::default()
        },
        // Few clusters kept: evicted clusters' reports come out mid-stream.
        EngineConfig {
            max_clusters: 50,
            ..EngineConfig::default()
        },
    ] {
        let one = run(&items, 1, cfg.clone());
        assert!(one.iter().any(|l| l.starts_with("error: bad record")));
        for threads in [2, 4] {
            let many = run(&items, threads, cfg.clone());
            assert_eq!(one.len(), many.len(), "{threads} threads, {cfg:?}");
            for (i, (a, b)) in one.iter().zip(&many).enumerate() {
                assert_eq!(a, b, "line {i}, {threads} threads, {cfg:?}");
            }
        }
    }
}

#[test]
fn a_break_stops_the_run_at_that_item() {
    let items = stream();
    let analyzer = Analyzer::load(&[]).expect("knowledge base loads");
    let mut engine = Engine::new(analyzer, EngineConfig::default());
    let mut seen = 0usize;
    let stopped = parallel::run(&mut engine, items.into_iter(), 3, |r| {
        seen += 1;
        match r {
            Err(e) => ControlFlow::Break(e),
            Ok(_) => ControlFlow::Continue(()),
        }
    });
    // The first error comes after the first 997 alerts: nothing after it was handed over.
    assert_eq!(stopped.as_deref(), Some("bad record 997"));
    assert_eq!(seen, 998);
    assert_eq!(engine.stats.alerts, 997);
}
