//! Kubernetes manifests and patches, checked against the compact schema in
//! `data/k8s_schema.txt` plus the value rules the schema cannot say: Pod Security Admission
//! labels, seccomp/AppArmor profile shapes, legacy annotations, capabilities and RBAC verbs.

use crate::finding::Finding;
use crate::values::{contains, values};
use crate::yaml::{kind_of, line_of_key, parse_documents, Booleans};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::OnceLock;

const SCHEMA_TXT: &str = include_str!("../data/k8s_schema.txt");
const CHECKER: &str = "k8s-yaml";
/// Types tried, in order, for a patch or fragment without `kind`.
const FRAGMENT_TYPES: &[&str] = &[
    "Deployment",
    "Pod",
    "CronJob",
    "Namespace",
    "NetworkPolicy",
    "Role",
    "PodSpec",
    "Container",
    "SecurityContext",
    "PodSecurityContext",
];

#[derive(Debug, Default)]
pub(crate) struct Schema {
    types: HashMap<String, Vec<(String, String)>>,
    /// kind -> (apiVersions, type)
    kinds: HashMap<String, (Vec<String>, String)>,
    pub errors: Vec<String>,
}

pub(crate) fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| parse_schema(SCHEMA_TXT))
}

fn parse_schema(text: &str) -> Schema {
    let mut s = Schema::default();
    let mut current: Option<String> = None;
    for (n, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() || raw.trim_start().starts_with('#') {
            continue;
        }
        let words: Vec<&str> = raw.split_whitespace().collect();
        if !raw.starts_with(' ') {
            match words.as_slice() {
                ["type", name] => {
                    s.types.insert(name.to_string(), Vec::new());
                    current = Some(name.to_string());
                }
                ["kind", kind, versions, ty] => {
                    let versions = versions.split(',').map(str::to_string).collect();
                    s.kinds.insert(kind.to_string(), (versions, ty.to_string()));
                }
                _ => s.errors.push(format!("line {}: {raw}", n + 1)),
            }
            continue;
        }
        match (words.as_slice(), &current) {
            ([field, ty], Some(t)) => {
                if let Some(fields) = s.types.get_mut(t) {
                    fields.push((field.to_string(), ty.to_string()));
                }
            }
            _ => s.errors.push(format!("line {}: {raw}", n + 1)),
        }
    }
    s
}

impl Schema {
    fn field_type(&self, ty: &str, field: &str) -> Option<&str> {
        self.types
            .get(ty)?
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, t)| t.as_str())
    }

    /// Every type named in a field that is neither built in nor defined (a schema defect).
    #[cfg(test)]
    pub(crate) fn undefined_types(&self) -> Vec<String> {
        let mut out = Vec::new();
        let builtin = |t: &str| {
            matches!(
                t,
                "string"
                    | "int"
                    | "bool"
                    | "number"
                    | "any"
                    | "object"
                    | "map"
                    | "map:quantity"
                    | "quantity"
                    | "intstr"
                    | "cap"
            ) || t.starts_with("enum:")
        };
        let mut check = |t: &str| {
            let base = t.trim_start_matches("[]");
            if !builtin(base) && !self.types.contains_key(base) {
                out.push(base.to_string());
            }
        };
        for fields in self.types.values() {
            for (_, t) in fields {
                check(t);
            }
        }
        for (_, t) in self.kinds.values() {
            check(t);
        }
        out.sort();
        out.dedup();
        out
    }
}

struct Walker<'a> {
    src: &'a str,
    findings: Vec<Finding>,
}

impl Walker<'_> {
    fn report(&mut self, path: &str, message: String) {
        let key = path
            .rsplit('.')
            .next()
            .unwrap_or(path)
            .split('[')
            .next()
            .unwrap_or("");
        let line = line_of_key(self.src, key);
        self.findings
            .push(Finding::new(CHECKER, self.src, path, message).at_line(line));
    }
}

pub(crate) fn check(src: &str) -> Vec<Finding> {
    let docs = match parse_documents(CHECKER, src, Booleans::Yaml11) {
        Ok(d) => d,
        Err(f) => return vec![f],
    };
    let mut findings = Vec::new();
    for doc in &docs {
        findings.extend(check_document(src, doc));
    }
    findings
}

/// One parsed document: a manifest with `kind`, a JSON patch, or a fragment.
pub(crate) fn check_document(src: &str, doc: &Value) -> Vec<Finding> {
    let mut w = Walker {
        src,
        findings: Vec::new(),
    };
    match doc {
        Value::Null => {}
        Value::Array(items) => json_patch(&mut w, items),
        Value::Object(map) => match map.get("kind").and_then(Value::as_str) {
            Some(kind) => manifest(&mut w, kind, map, doc),
            None => return fragment(src, doc),
        },
        other => w.report(
            "(document)",
            format!("a Kubernetes manifest is a mapping, not {}", kind_of(other)),
        ),
    }
    w.findings
}

fn manifest(w: &mut Walker<'_>, kind: &str, map: &Map<String, Value>, doc: &Value) {
    let s = schema();
    let Some((versions, ty)) = s.kinds.get(kind) else {
        // A kind without schema here (Service, ConfigMap...): not checked beyond parsing.
        return;
    };
    match map.get("apiVersion").and_then(Value::as_str) {
        Some(v) if versions.iter().any(|x| x == v) => {}
        Some(v) => w.report(
            "apiVersion",
            format!(
                "{kind} is served as apiVersion {}, not `{v}`",
                versions.join(" or ")
            ),
        ),
        None => w.report(
            "apiVersion",
            format!("{kind} needs apiVersion {}", versions.join(" or ")),
        ),
    }
    walk(w, doc, ty, "");
}

/// A fragment is checked as each candidate type; the one it fits best (fewest findings, then the
/// deepest match) gives the findings.
fn fragment(src: &str, doc: &Value) -> Vec<Finding> {
    let score = |f: &[Finding]| {
        let depth: usize = f.iter().map(|x| x.token.matches(['.', '[']).count()).sum();
        (f.len(), std::cmp::Reverse(depth))
    };
    let mut best: Option<Vec<Finding>> = None;
    for ty in FRAGMENT_TYPES {
        let mut w = Walker {
            src,
            findings: Vec::new(),
        };
        walk(&mut w, doc, ty, "");
        if w.findings.is_empty() {
            return Vec::new();
        }
        if best.as_ref().is_none_or(|b| score(&w.findings) < score(b)) {
            best = Some(w.findings);
        }
    }
    best.unwrap_or_default()
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn walk(w: &mut Walker<'_>, v: &Value, ty: &str, path: &str) {
    if v.is_null() {
        return;
    }
    let shown = if path.is_empty() { "(document)" } else { path };
    if let Some(inner) = ty.strip_prefix("[]") {
        match v {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(w, item, inner, &format!("{path}[{i}]"));
                }
            }
            other => w.report(shown, format!("must be a list, not {}", kind_of(other))),
        }
        return;
    }
    if let Some(choices) = ty.strip_prefix("enum:") {
        let choices: Vec<&str> = choices.split('|').collect();
        match v.as_str() {
            Some(s) if choices.contains(&s) => {}
            _ => w.report(
                shown,
                format!(
                    "must be one of {}, not {}",
                    choices
                        .iter()
                        .filter(|c| !c.is_empty())
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", "),
                    render(v)
                ),
            ),
        }
        return;
    }
    match ty {
        "any" => {}
        "object" => {
            if !v.is_object() {
                w.report(shown, format!("must be a mapping, not {}", kind_of(v)));
            }
        }
        "string" => {
            if !v.is_string() {
                w.report(
                    shown,
                    format!("must be a string, not {} (quote it)", kind_of(v)),
                );
            }
        }
        "int" => {
            if !(v.is_i64() || v.is_u64()) {
                w.report(shown, format!("must be an integer, not {}", render(v)));
            }
        }
        "number" => {
            if !v.is_number() {
                w.report(shown, format!("must be a number, not {}", render(v)));
            }
        }
        "bool" => {
            if !v.is_boolean() {
                w.report(shown, format!("must be true or false, not {}", render(v)));
            }
        }
        "quantity" | "intstr" => {
            if !(v.is_string() || v.is_i64() || v.is_u64() || v.is_f64()) {
                w.report(
                    shown,
                    format!("must be a number or a string, not {}", kind_of(v)),
                );
            }
        }
        "cap" => capability(w, v, shown),
        "map" | "map:quantity" => match v {
            Value::Object(m) => {
                for (k, val) in m {
                    let ok = val.is_string() || (ty == "map:quantity" && val.is_number());
                    if !ok {
                        w.report(
                            &join(path, k),
                            format!(
                                "values here must be strings, not {} (quote it)",
                                kind_of(val)
                            ),
                        );
                    }
                }
                if path.ends_with("metadata.labels") || path == "metadata.labels" {
                    psa_labels(w, m, path);
                }
                if path.ends_with("metadata.annotations") || path == "metadata.annotations" {
                    legacy_annotations(w, m, path);
                }
            }
            other => w.report(shown, format!("must be a mapping, not {}", kind_of(other))),
        },
        named => object(w, v, named, path, shown),
    }
}

fn object(w: &mut Walker<'_>, v: &Value, ty: &str, path: &str, shown: &str) {
    let s = schema();
    let Value::Object(map) = v else {
        w.report(
            shown,
            format!("must be a mapping ({ty}), not {}", kind_of(v)),
        );
        return;
    };
    for (key, val) in map {
        let p = join(path, key);
        match s.field_type(ty, key) {
            Some(fty) => walk(w, val, fty, &p),
            None => w.report(&p, format!("unknown field `{key}` in {ty}")),
        }
    }
    match ty {
        "SeccompProfile" | "AppArmorProfile" => profile_shape(w, map, path),
        "PolicyRule" => rbac_verbs(w, map, path),
        _ => {}
    }
}

fn render(v: &Value) -> String {
    match v {
        Value::String(s) => format!("`{s}`"),
        Value::Null => "nothing".to_string(),
        other => format!("`{other}`"),
    }
}

fn capability(w: &mut Walker<'_>, v: &Value, shown: &str) {
    let Some(name) = v.as_str() else {
        w.report(
            shown,
            format!("must be a capability name, not {}", kind_of(v)),
        );
        return;
    };
    let upper = name.to_ascii_uppercase();
    if upper == "ALL" {
        return;
    }
    if upper.starts_with("CAP_") {
        w.report(
            shown,
            format!(
                "Kubernetes capability names have no CAP_ prefix: write `{}`",
                &name[4..]
            ),
        );
        return;
    }
    if !contains(&values().capabilities, &upper) {
        w.report(shown, format!("`{name}` is not a Linux capability"));
    }
}

fn profile_shape(w: &mut Walker<'_>, map: &Map<String, Value>, path: &str) {
    let ty = map.get("type").and_then(Value::as_str);
    let local = map.get("localhostProfile");
    match (ty, local) {
        (None, _) => w.report(&join(path, "type"), "a profile needs `type`".to_string()),
        (Some("Localhost"), None) => w.report(
            &join(path, "localhostProfile"),
            "type Localhost needs localhostProfile (the profile's path or name on the node)"
                .to_string(),
        ),
        (Some(t), Some(_)) if t != "Localhost" => w.report(
            &join(path, "localhostProfile"),
            format!("localhostProfile is only allowed with type Localhost, not {t}"),
        ),
        _ => {}
    }
}

fn rbac_verbs(w: &mut Walker<'_>, map: &Map<String, Value>, path: &str) {
    let Some(Value::Array(verbs)) = map.get("verbs") else {
        return;
    };
    for (i, verb) in verbs.iter().enumerate() {
        if let Some(s) = verb.as_str() {
            if !contains(&values().k8s.rbac_verbs, s) {
                w.report(
                    &format!("{}[{i}]", join(path, "verbs")),
                    format!("`{s}` is not a Kubernetes API verb"),
                );
            }
        }
    }
}

fn psa_labels(w: &mut Walker<'_>, labels: &Map<String, Value>, path: &str) {
    let k = &values().k8s;
    for (key, val) in labels {
        let Some(mode) = key.strip_prefix("pod-security.kubernetes.io/") else {
            continue;
        };
        let p = join(path, key);
        // A non-string value is already reported by the map check.
        let Some(value) = val.as_str() else { continue };
        if let Some(m) = mode.strip_suffix("-version") {
            if !contains(&k.psa_modes, m) {
                w.report(
                    &p,
                    format!("Pod Security Admission has no mode `{m}` (enforce, audit, warn)"),
                );
            } else if !(value == "latest" || is_k8s_version(value)) {
                w.report(
                    &p,
                    format!("takes `latest` or a version like v1.32, not `{value}`"),
                );
            }
        } else if !contains(&k.psa_modes, mode) {
            w.report(
                &p,
                format!("Pod Security Admission has no mode `{mode}` (enforce, audit, warn)"),
            );
        } else if !contains(&k.psa_levels, value) {
            w.report(
                &p,
                format!("takes privileged, baseline or restricted, not `{value}`"),
            );
        }
    }
}

fn is_k8s_version(v: &str) -> bool {
    v.strip_prefix("v1.")
        .is_some_and(|minor| !minor.is_empty() && minor.chars().all(|c| c.is_ascii_digit()))
}

fn legacy_annotations(w: &mut Walker<'_>, ann: &Map<String, Value>, path: &str) {
    let k = &values().k8s;
    for (key, val) in ann {
        let value = val.as_str().unwrap_or("");
        let p = join(path, key);
        if key.starts_with(&k.apparmor_annotation_prefix) {
            let ok = value == "runtime/default"
                || value == "unconfined"
                || value
                    .strip_prefix("localhost/")
                    .is_some_and(|n| !n.is_empty());
            if !ok {
                w.report(
                    &p,
                    format!(
                        "takes runtime/default, localhost/PROFILE or unconfined, not `{value}`"
                    ),
                );
            }
        } else if contains(&k.seccomp_annotation_keys, key)
            || key.starts_with(&k.seccomp_annotation_container_prefix)
        {
            let ok = matches!(value, "runtime/default" | "docker/default" | "unconfined")
                || value
                    .strip_prefix("localhost/")
                    .is_some_and(|n| !n.is_empty());
            if !ok {
                w.report(
                    &p,
                    format!(
                        "takes runtime/default, localhost/PROFILE or unconfined, not `{value}`"
                    ),
                );
            }
        }
    }
}

fn json_patch(w: &mut Walker<'_>, items: &[Value]) {
    let k = &values().k8s;
    for (i, item) in items.iter().enumerate() {
        let p = format!("[{i}]");
        let Some(map) = item.as_object() else {
            w.report(
                &p,
                format!("a JSON patch operation is a mapping, not {}", kind_of(item)),
            );
            continue;
        };
        match map.get("op").and_then(Value::as_str) {
            Some(op) if contains(&k.json_patch_ops, op) => {}
            Some(op) => w.report(&format!("{p}.op"), format!("JSON patch has no op `{op}`")),
            None => w.report(
                &format!("{p}.op"),
                "a JSON patch operation needs `op`".to_string(),
            ),
        }
        match map.get("path").and_then(Value::as_str) {
            Some(path) if path.starts_with('/') => {}
            _ => w.report(
                &format!("{p}.path"),
                "a JSON patch path starts with `/`".to_string(),
            ),
        }
        for key in map.keys() {
            if !matches!(key.as_str(), "op" | "path" | "value" | "from") {
                w.report(
                    &format!("{p}.{key}"),
                    format!("unknown JSON patch key `{key}`"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(src: &str) -> Vec<String> {
        check(src).into_iter().map(|f| f.token).collect()
    }

    #[test]
    fn schema_is_complete() {
        let s = schema();
        assert!(s.errors.is_empty(), "{:?}", s.errors);
        assert!(s.undefined_types().is_empty(), "{:?}", s.undefined_types());
    }

    #[test]
    fn hardened_pod_is_clean() {
        let pod = r#"
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  securityContext:
    runAsNonRoot: true
    seccompProfile: {type: RuntimeDefault}
  automountServiceAccountToken: false
  containers:
  - name: web
    image: nginx:1.27
    securityContext:
      allowPrivilegeEscalation: false
      readOnlyRootFilesystem: true
      runAsUser: 1000
      capabilities:
        drop: [ALL]
        add: [NET_BIND_SERVICE]
      appArmorProfile:
        type: Localhost
        localhostProfile: k8s-nginx
    resources:
      limits: {cpu: 500m, memory: 128Mi}
"#;
        assert_eq!(check(pod), vec![]);
    }

    #[test]
    fn unknown_field_names_its_path() {
        let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\nspec:\n  containers:\n  - name: x\n    image: nginx\n    securityContext:\n      runAsNonRoot: true\n      runAsNonRot: true\n";
        let f = check(pod);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].token, "spec.containers[0].securityContext.runAsNonRot");
        assert_eq!(f[0].line, Some(10));
    }

    #[test]
    fn wrong_value_types_and_shapes() {
        assert_eq!(
            tokens("apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: x\n    securityContext: {runAsUser: \"1000\", privileged: yes-please}\n"),
            vec![
                "spec.containers[0].securityContext.privileged",
                "spec.containers[0].securityContext.runAsUser",
            ]
        );
        assert_eq!(
            tokens("apiVersion: v1\nkind: Pod\nspec:\n  securityContext:\n    seccompProfile: {type: Localhost}\n  containers: []\n"),
            vec!["spec.securityContext.seccompProfile.localhostProfile"]
        );
        assert_eq!(
            tokens("apiVersion: v1\nkind: Pod\nspec:\n  containers:\n  - name: x\n    securityContext:\n      capabilities: {drop: [CAP_ALL, NET_BIND]}\n"),
            vec![
                "spec.containers[0].securityContext.capabilities.drop[0]",
                "spec.containers[0].securityContext.capabilities.drop[1]",
            ]
        );
    }

    #[test]
    fn pod_security_admission_labels() {
        let ok = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: prod\n  labels:\n    pod-security.kubernetes.io/enforce: restricted\n    pod-security.kubernetes.io/enforce-version: v1.32\n    pod-security.kubernetes.io/warn: baseline\n";
        assert_eq!(check(ok), vec![]);
        let bad = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: prod\n  labels:\n    pod-security.kubernetes.io/enforce: strict\n    pod-security.kubernetes.io/block: restricted\n    pod-security.kubernetes.io/audit-version: 1.32\n";
        assert_eq!(check(bad).len(), 3, "{:?}", check(bad));
    }

    #[test]
    fn legacy_apparmor_annotation_and_network_policy_and_rbac() {
        let ok = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  selector: {matchLabels: {app: x}}\n  template:\n    metadata:\n      labels: {app: x}\n      annotations:\n        container.apparmor.security.beta.kubernetes.io/x: runtime/default\n    spec:\n      containers: [{name: x, image: nginx}]\n";
        // YAML 1.1 (as kubectl reads it) makes an unquoted y a boolean
        assert_eq!(
            tokens(&ok.replace("image: nginx", "image: y")),
            vec!["spec.template.spec.containers[0].image"]
        );
        assert_eq!(check(ok), vec![]);
        let bad_ann = ok.replace("runtime/default", "docker-default");
        assert_eq!(check(&bad_ann).len(), 1);
        let np = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny}\nspec:\n  podSelector: {}\n  policyTypes: [Ingress, Egress]\n  egress:\n  - to:\n    - ipBlock: {cidr: 10.0.0.0/8}\n    ports:\n    - {protocol: TCP, port: 443}\n";
        assert_eq!(check(np), vec![]);
        assert_eq!(
            tokens(&np.replace("Egress]", "Outbound]")),
            vec!["spec.policyTypes[1]"]
        );
        let role = "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: r, namespace: dev}\nrules:\n- apiGroups: [\"\"]\n  resources: [pods]\n  verbs: [get, list, exec]\n";
        assert_eq!(tokens(role), vec!["rules[0].verbs[2]"]);
    }

    #[test]
    fn patches_and_fragments() {
        let patch = "spec:\n  template:\n    spec:\n      containers:\n      - name: app\n        securityContext:\n          readOnlyRootFilesystem: true\n";
        assert_eq!(check(patch), vec![]);
        let frag = "securityContext:\n  runAsNonRoot: true\n  capabilities: {drop: [ALL]}\n";
        assert_eq!(check(frag), vec![]);
        let bad = "securityContext:\n  runAsNonRoot: true\n  noNewPrivileges: true\n";
        assert_eq!(tokens(bad), vec!["securityContext.noNewPrivileges"]);
        let jp = "- op: add\n  path: /spec/template/spec/securityContext\n  value: {runAsNonRoot: true}\n- op: merge\n  path: x\n";
        assert_eq!(tokens(jp), vec!["[1].op", "[1].path"]);
    }

    #[test]
    fn api_version_is_checked() {
        let dep = "apiVersion: extensions/v1beta1\nkind: Deployment\nmetadata: {name: x}\n";
        assert_eq!(tokens(dep), vec!["apiVersion"]);
    }
}
