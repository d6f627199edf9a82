//! Proven exceptions: every proposed tuning exception is checked against all alerts of the run
//! (fixtures written for these tests; values invented).

use fa_analyze::engine::{Analyzer, Engine, EngineConfig, Finished};
use fa_analyze::tune;
use fa_model::{Alert, VerdictKind};
use serde_json::{json, Value};

const RULE: &str = "Terminal shell in container";
const GENERATOR: &str = "docker.io/falcosecurity/event-generator";

fn alert(fields: Value) -> Alert {
    serde_json::from_value(json!({
        "time": "2026-03-02T10:00:00Z",
        "rule": RULE,
        "priority": "Notice",
        "source": "syscall",
        "hostname": "node-3",
        "output_fields": fields,
    }))
    .expect("fixture is a valid alert")
}

/// Falco's event-generator opening a shell: benign (a test event), repeated.
fn generator_shell() -> Alert {
    alert(json!({
        "container.id": "5c2d9a7e13f0",
        "container.image.repository": GENERATOR,
        "k8s.ns.name": "falco-tests",
        "user.name": "root",
        "proc.name": "bash",
        "proc.exepath": "/bin/bash",
        "proc.pname": "event-generator",
        "proc.cmdline": "bash",
        "proc.tty": 0
    }))
}

/// A shell from a web server in a privileged container of the same image, namespace and user,
/// with a terminal: malicious.
fn webshell() -> Alert {
    alert(json!({
        "container.id": "9e1f0c2b7a44",
        "container.image.repository": GENERATOR,
        "container.privileged": true,
        "k8s.ns.name": "falco-tests",
        "user.name": "root",
        "user.uid": 0,
        "proc.name": "bash",
        "proc.exepath": "/bin/bash",
        "proc.pname": "nginx",
        "proc.cmdline": "bash -i",
        "proc.tty": 34816
    }))
}

fn run(alerts: Vec<Alert>) -> (Analyzer, Finished) {
    let a = Analyzer::load(&[]).expect("built-in knowledge base loads");
    let mut e = Engine::new(a.clone(), EngineConfig::default());
    for x in alerts {
        e.process(x);
    }
    (a, e.finish(0))
}

fn storm(n: usize) -> Vec<Alert> {
    (0..n).map(|_| generator_shell()).collect()
}

#[test]
fn a_benign_storm_alone_gets_its_exception_with_the_proof() {
    let (_, f) = run(storm(60));
    let r = &f.reports[0].report;
    assert_eq!(r.verdict.as_ref().unwrap().kind, VerdictKind::Benign);
    let t = r.tuning.as_ref().expect("tuning kept");
    let proof = t.proof.as_deref().expect("a proof line");
    assert!(proof.contains("silences 60 alerts in 1 cluster"), "{proof}");
    assert!(
        proof.contains("none of them judged suspicious or malicious"),
        "{proof}"
    );
    assert!(!proof.contains("Narrowed"), "{proof}");
}

#[test]
fn an_exception_that_would_silence_a_malicious_cluster_is_narrowed_to_the_storm() {
    let mut alerts = storm(60);
    alerts.insert(30, webshell());
    let (a, f) = run(alerts);
    let kinds: Vec<VerdictKind> = f.clusters.iter().map(|c| c.verdict).collect();
    assert!(kinds.contains(&VerdictKind::Malicious), "{kinds:?}");
    assert!(kinds.contains(&VerdictKind::Benign), "{kinds:?}");

    let benign = f
        .reports
        .iter()
        .map(|e| &e.report)
        .find(|r| r.verdict.as_ref().unwrap().kind == VerdictKind::Benign)
        .unwrap();
    let t = benign.tuning.as_ref().expect("narrowed, not withheld");
    let proof = t.proof.as_deref().unwrap();
    assert!(proof.contains("Narrowed with `proc.pname`"), "{proof}");
    assert!(
        proof.contains("would also have silenced 1 alert in 1 cluster"),
        "{proof}"
    );
    assert!(proof.contains("silences 60 alerts in 1 cluster"), "{proof}");
    assert!(
        t.yaml.contains("proc.pname") && t.yaml.contains("\"event-generator\""),
        "{}",
        t.yaml
    );

    // The tune command's rules file makes the same decision.
    let (yaml, n) = tune::rules_file(&a, &f.clusters, 10);
    assert_eq!(n, 1, "{yaml}");
    assert!(
        yaml.contains("proc.pname") && yaml.contains("Checked against the 61 alerts"),
        "{yaml}"
    );
}

#[test]
fn an_exception_no_field_can_narrow_is_withheld_and_the_report_says_so() {
    // The storm's alerts carry only the image, namespace, user and executable; the malicious
    // cluster lacks the executable, so nothing tells them apart for certain.
    let bare = || {
        alert(json!({
            "container.image.repository": GENERATOR,
            "k8s.ns.name": "falco-tests",
            "user.name": "root",
            "proc.exepath": "/bin/event-generator"
        }))
    };
    let mut alerts: Vec<Alert> = (0..60).map(|_| bare()).collect();
    let mut evil = webshell();
    evil.output_fields = evil
        .output_fields
        .iter()
        .filter(|(k, _)| *k != "proc.exepath")
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    alerts.push(evil);
    let (a, f) = run(alerts);
    let benign = f
        .reports
        .iter()
        .map(|e| &e.report)
        .find(|r| r.verdict.as_ref().unwrap().kind == VerdictKind::Benign)
        .expect("the storm is benign");
    assert!(benign.tuning.is_none(), "{:?}", benign.tuning);
    let note = benign
        .notes
        .iter()
        .find(|n| n.starts_with("Falco tuning withheld"))
        .expect("a note saying why");
    assert!(
        note.contains("judged suspicious or malicious") && note.contains("malicious"),
        "{note}"
    );

    let (yaml, n) = tune::rules_file(&a, &f.clusters, 10);
    assert_eq!(n, 0, "{yaml}");
    assert!(yaml.contains("# Falco tuning withheld"), "{yaml}");
    // The summary does not offer it either.
    assert!(f.summary.noisy_benign.iter().all(|c| c.tuning.is_none()));
}

#[test]
fn rule_conditions_are_evaluated_once_per_reported_cluster() {
    let a = Analyzer::load(&[]).unwrap();
    let mut e = Engine::new(a.clone(), EngineConfig::default());
    for x in storm(500) {
        e.process(x);
    }
    // One cluster: one evaluation for its report, whatever the storm's size.
    assert_eq!(a.rules.evaluations(), 1);
    e.finish(0);
    assert_eq!(a.rules.evaluations(), 1);
    let checks = a.rule_check(&generator_shell());
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].rule, RULE);
}
