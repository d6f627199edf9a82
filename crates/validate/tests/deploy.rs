//! The deployment files (`deploy/`, `Dockerfile`) are checked like the configurations a report
//! shows: every Kubernetes document passes the project's own validator, and the hardening the
//! docs promise (restricted Pod Security, probes, a network policy, a sandboxed systemd unit)
//! is really in the files. When `kubectl` is installed, the Kustomize trees are rendered too.

use fa_model::Snippet;
use fa_validate::validate_snippet;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn k8s_dir() -> PathBuf {
    fa_testdata::repo("deploy/kubernetes")
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "yaml" || x == "yml") {
            out.push(p);
        }
    }
}

/// The documents of a YAML stream (split at `---` lines), without empty ones.
fn documents(text: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in text.lines() {
        if line.trim_end() == "---" {
            docs.push(String::new());
        } else if let Some(d) = docs.last_mut() {
            d.push_str(line);
            d.push('\n');
        }
    }
    docs.into_iter()
        .filter(|d| {
            d.lines()
                .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        })
        .collect()
}

fn k8s_findings(doc: &str) -> Vec<String> {
    validate_snippet(&Snippet {
        lang: "k8s-yaml".into(),
        code: doc.into(),
    })
    .iter()
    .map(|f| format!("{f:?}"))
    .collect()
}

fn parse(doc: &str) -> Value {
    serde_saphyr::from_str(doc).unwrap_or_else(|e| panic!("{e}\n{doc}"))
}

/// Every document of `file` (relative to deploy/kubernetes), parsed.
fn docs_of(file: &str) -> Vec<Value> {
    let text = fa_testdata::read_to_string(&k8s_dir().join(file));
    documents(&text).iter().map(|d| parse(d)).collect()
}

fn kind_in(file: &str, kind: &str) -> Value {
    docs_of(file)
        .into_iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {file}"))
}

#[test]
fn every_kubernetes_document_passes_the_validator() {
    let mut files = Vec::new();
    yaml_files(&k8s_dir(), &mut files);
    assert!(files.len() >= 8, "{files:?}");
    let mut checked = 0;
    let mut problems = Vec::new();
    for f in &files {
        let text = fa_testdata::read_to_string(f);
        let docs = documents(&text);
        assert!(!docs.is_empty(), "{}: no document", f.display());
        for d in docs {
            checked += 1;
            for finding in k8s_findings(&d) {
                problems.push(format!("{}: {finding}", f.display()));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
    assert!(checked >= 10, "{checked} documents");
}

/// The validator does look into these manifests: the StatefulSet with one field misspelled
/// is caught (so the test above passing means something).
#[test]
fn a_misspelled_field_in_the_statefulset_is_caught() {
    let text = fa_testdata::read_to_string(&k8s_dir().join("base/statefulset.yaml"));
    assert!(k8s_findings(&text).is_empty());
    let broken = text.replacen("readOnlyRootFilesystem", "readOnlyRootFileSystem", 1);
    assert_ne!(broken, text);
    let f = k8s_findings(&broken);
    assert!(
        f.iter().any(|f| f.contains("readOnlyRootFileSystem")),
        "{f:?}"
    );
}

#[test]
fn the_pods_meet_the_restricted_pod_security_standard() {
    let ns = kind_in("base/namespace.yaml", "Namespace");
    assert_eq!(
        ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    let sts = kind_in("base/statefulset.yaml", "StatefulSet");
    let pod = &sts["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(pod["automountServiceAccountToken"], false);
    let containers = pod["containers"].as_array().unwrap();
    assert!(!containers.is_empty());
    for c in containers {
        let sc = &c["securityContext"];
        assert_eq!(sc["runAsNonRoot"], true, "{c}");
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{c}");
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{c}");
        assert_eq!(
            sc["capabilities"]["drop"],
            serde_json::json!(["ALL"]),
            "{c}"
        );
        assert!(sc["capabilities"].get("add").is_none(), "{c}");
        assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault", "{c}");
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz", "{c}");
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz", "{c}");
        // The token comes from a Secret, never from the manifest.
        let env = c["env"].as_array().unwrap();
        let token = env
            .iter()
            .find(|e| e["name"] == "FALCO_ANALYST_TOKEN")
            .unwrap();
        assert!(token["valueFrom"]["secretKeyRef"].is_object(), "{token}");
        assert!(token.get("value").is_none());
    }
    // Single writer on SQLite.
    assert_eq!(sts["spec"]["replicas"], 1);
    assert_eq!(
        sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"],
        "data"
    );
}

#[test]
fn the_base_has_a_network_policy_and_a_service_monitor() {
    let kust = docs_of("base/kustomization.yaml").remove(0);
    let resources: Vec<&str> = kust["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for r in &resources {
        assert!(k8s_dir().join("base").join(r).is_file(), "{r}");
    }
    let np = kind_in("base/networkpolicy.yaml", "NetworkPolicy");
    assert_eq!(
        np["spec"]["policyTypes"],
        serde_json::json!(["Ingress", "Egress"])
    );
    assert_eq!(np["spec"]["ingress"][0]["ports"][0]["port"], 2802);
    let sm = kind_in("base/servicemonitor.yaml", "ServiceMonitor");
    assert_eq!(sm["spec"]["endpoints"][0]["path"], "/metrics");
    // It selects exactly one of the two services (no double scrape).
    let services = docs_of("base/service.yaml");
    let selector = sm["spec"]["selector"]["matchLabels"].as_object().unwrap();
    let selected = services
        .iter()
        .filter(|s| {
            selector
                .iter()
                .all(|(k, v)| &s["metadata"]["labels"][k.as_str()] == v)
        })
        .count();
    assert_eq!(selected, 1);
}

#[test]
fn the_replicas_overlay_shares_postgresql_from_a_secret() {
    let kust = docs_of("overlays/replicas/kustomization.yaml").remove(0);
    assert_eq!(kust["resources"][0], "../../base");
    let patch = kind_in("overlays/replicas/statefulset-replicas.yaml", "StatefulSet");
    assert!(patch["spec"]["replicas"].as_u64().unwrap() > 1);
    let env = &patch["spec"]["template"]["spec"]["containers"][0]["env"];
    let db = env
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "FALCO_ANALYST_DB")
        .unwrap();
    assert_eq!(db["valueFrom"]["secretKeyRef"]["key"], "url");
    // The URL (with its password) never goes on the command line, where `ps` shows it: the
    // overlay's args carry no --db (it would override the environment).
    let args = kust["patches"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["patch"].as_str())
        .map(parse)
        .find(|ops| ops[0]["path"] == "/spec/template/spec/containers/0/args")
        .unwrap();
    let args: Vec<&str> = args[0]["value"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(args[0], "serve");
    assert!(!args.iter().any(|a| a.starts_with("--db")), "{args:?}");
    let np = kind_in(
        "overlays/replicas/networkpolicy-postgres.yaml",
        "NetworkPolicy",
    );
    assert_eq!(np["spec"]["egress"][0]["ports"][0]["port"], 5432);
}

/// `kubectl kustomize` renders both trees and the result passes the validator. Skipped (with
/// a notice) where kubectl is not installed.
#[test]
fn the_kustomizations_render_when_kubectl_is_installed() {
    for tree in ["base", "overlays/replicas"] {
        let out = match std::process::Command::new("kubectl")
            .arg("kustomize")
            .arg(k8s_dir().join(tree))
            .output()
        {
            Ok(o) => o,
            Err(e) => {
                eprintln!("kubectl is not available ({e}): the Kustomize rendering of {tree} is not checked");
                return;
            }
        };
        assert!(
            out.status.success(),
            "{tree}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let rendered = String::from_utf8_lossy(&out.stdout);
        let docs = documents(&rendered);
        assert!(docs.len() >= 7, "{tree}: {} documents", docs.len());
        for d in docs {
            let f = k8s_findings(&d);
            assert!(f.is_empty(), "{tree}: {f:?}\n{d}");
        }
    }
}

/// The directives of a systemd unit, `key -> values` (a key may repeat).
fn unit_directives(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

#[test]
fn the_systemd_unit_is_sandboxed() {
    let text =
        fa_testdata::read_to_string(&fa_testdata::repo("deploy/systemd/falco-analyst.service"));
    let d = unit_directives(&text);
    let get = |k: &str| -> Vec<&str> {
        d.iter()
            .filter(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    for (k, v) in [
        ("DynamicUser", "yes"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("StateDirectory", "falco-analyst"),
        ("CapabilityBoundingSet", ""),
        ("RestrictSUIDSGID", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("SystemCallArchitectures", "native"),
    ] {
        assert_eq!(get(k), vec![v], "{k}");
    }
    let exec = get("ExecStart");
    assert_eq!(exec.len(), 1);
    // It writes only where StateDirectory lets it (ProtectSystem=strict makes the rest
    // read-only), and listens on loopback unless told otherwise.
    assert!(exec[0].contains("--db /var/lib/falco-analyst/"), "{exec:?}");
    assert!(exec[0].contains("--listen 127.0.0.1:"), "{exec:?}");
    // Secrets come from a root-only file, never from the unit.
    assert!(get("Environment").is_empty());
    assert_eq!(get("EnvironmentFile").len(), 1);
}

#[test]
fn the_dockerfile_is_multi_stage_and_runs_as_non_root() {
    let text = fa_testdata::read_to_string(&fa_testdata::repo("Dockerfile"));
    let instr: Vec<(String, String)> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(' '))
        .map(|(i, rest)| (i.to_ascii_uppercase(), rest.trim().to_owned()))
        .collect();
    let from: Vec<&str> = instr
        .iter()
        .filter(|(i, _)| i == "FROM")
        .map(|(_, r)| r.as_str())
        .collect();
    assert!(from.len() >= 2, "{from:?}");
    assert!(from.last().unwrap().contains("distroless"), "{from:?}");
    let user: Vec<&str> = instr
        .iter()
        .filter(|(i, _)| i == "USER")
        .map(|(_, r)| r.as_str())
        .collect();
    let last_user = user.last().unwrap();
    assert!(
        !last_user.starts_with("root") && !last_user.starts_with("0"),
        "{user:?}"
    );
}
