//! The knowledge base against the upstream Falco rule files in kb/upstream.
//! One test per upstream file, so a missing entry names its file and rule.

use fa_analyze::kb::{KnowledgeBase, Rule};
use serde::Deserialize;
use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Deserialize)]
struct Item {
    rule: Option<String>,
    #[serde(default)]
    priority: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    source: Option<String>,
}

struct Upstream {
    name: String,
    priority: String,
    tags: Vec<String>,
    source: String,
}

fn upstream(file: &str) -> Vec<Upstream> {
    let path = fa_testdata::upstream_rules_dir()
        .join(file)
        .display()
        .to_string();
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let items: Vec<serde_json::Value> =
        serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    items
        .into_iter()
        .filter_map(|v| serde_json::from_value::<Item>(v).ok())
        .filter_map(|i| {
            let name = i.rule?;
            // `- rule:` items that only append/override (no priority) are not definitions.
            let priority = i.priority?;
            Some(Upstream {
                name,
                priority,
                tags: i.tags,
                source: i.source.unwrap_or_else(|| "syscall".into()),
            })
        })
        .collect()
}

fn kb() -> KnowledgeBase {
    KnowledgeBase::builtin().unwrap_or_else(|e| panic!("built-in knowledge base: {e}"))
}

fn known_fields() -> BTreeSet<String> {
    include_str!("../../../kb/falco_fields.txt")
        .lines()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.split_whitespace().next().unwrap_or(l).to_string())
        .collect()
}

fn field_known(known: &BTreeSet<String>, f: &str) -> bool {
    if known.contains(f) {
        return true;
    }
    if let Some(open) = f.find('[') {
        return known.contains(&format!("{}[]", &f[..open]));
    }
    // An argument field used bare (`proc.env`) is a field too.
    if known.contains(&format!("{f}[]")) {
        return true;
    }
    f.starts_with("evt.arg.") || f.starts_with("evt.rawarg.")
}

fn placeholders(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(o) = rest.find('{') {
        let after = &rest[o + 1..];
        if let Some(c) = after.find('}') {
            let p = &after[..c];
            if p.contains('.')
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._[]".contains(&b))
            {
                out.push(p.to_string());
            }
            rest = &after[c + 1..];
        } else {
            break;
        }
    }
    out
}

/// Everything the issue asks of one upstream file's entries; returns the problems found.
fn check_file(file: &str, kb_file: &str, deep: bool) -> Vec<String> {
    let kb = kb();
    let known = known_fields();
    let mut problems = Vec::new();
    // The validator (kb lint): every example and command must be real syntax, every field a Falco field.
    let origin = format!("kb/rules/{kb_file}");
    for f in fa_analyze::lint::lint(&kb) {
        if f.location.starts_with(&origin) {
            problems.push(format!("lint: {f}"));
        }
    }
    for up in upstream(file) {
        let Some(rule) = kb.lookup_str(&up.name) else {
            problems.push(format!("missing entry: {}", up.name));
            continue;
        };
        let e = &rule.entry;
        if rule.origin != format!("kb/rules/{kb_file}") {
            problems.push(format!(
                "{}: expected in kb/rules/{kb_file}, found in {}",
                up.name, rule.origin
            ));
        }
        if e.priority.to_lowercase() != up.priority.to_lowercase() {
            problems.push(format!(
                "{}: priority {} but upstream says {}",
                up.name, e.priority, up.priority
            ));
        }
        if e.source != up.source && !(up.source == "k8s_audit" && e.source == "k8s_audit") {
            problems.push(format!(
                "{}: source {} but upstream says {}",
                up.name, e.source, up.source
            ));
        }
        if e.rules_file.as_deref() != Some(file) {
            problems.push(format!("{}: rules_file should be {file}", up.name));
        }
        problems.extend(mitre_agreement(&kb, &up, rule));
        for p in e
            .investigate
            .iter()
            .filter_map(|s| s.command.as_deref())
            .flat_map(placeholders)
            .chain(e.key_fields.iter().cloned())
            .chain(e.tuning_fields.iter().cloned())
        {
            if !field_known(&known, &p) {
                problems.push(format!("{}: `{p}` is not a Falco field", up.name));
            }
        }
        if e.mitigate.is_empty()
            || e.investigate.is_empty()
            || e.mitre.is_empty() && up.tags.iter().any(|t| t.starts_with("mitre_"))
        {
            problems.push(format!(
                "{}: needs investigation steps, mitigations and MITRE mapping",
                up.name
            ));
        }
        if deep {
            let steps = e.investigate.iter().filter(|s| s.command.is_some()).count();
            let mits = e.mitigate.iter().filter(|m| m.example.is_some()).count();
            if steps < 2 || mits < 2 {
                problems.push(format!(
                    "{}: needs >= 2 investigation commands and >= 2 mitigations with examples (has {steps} and {mits})",
                    up.name
                ));
            }
        }
    }
    problems
}

fn mitre_agreement(kb: &KnowledgeBase, up: &Upstream, rule: &Rule) -> Vec<String> {
    let mut problems = Vec::new();
    let kb_tactics: BTreeSet<&str> = rule.entry.mitre.iter().map(|m| m.tactic.as_str()).collect();
    let kb_techniques: BTreeSet<&str> = rule
        .entry
        .mitre
        .iter()
        .filter_map(|m| m.technique.as_deref())
        .collect();
    for t in &up.tags {
        if let Some(slug) = t.strip_prefix("mitre_") {
            // Non-standard upstream slugs resolve through kb/mitre.toml aliases.
            let canonical = kb
                .tactic_by_slug(slug)
                .map(|t| t.slug.as_str())
                .unwrap_or(slug);
            if !kb_tactics.contains(canonical) {
                problems.push(format!(
                    "{}: upstream tag {t} has no matching tactic",
                    up.name
                ));
            }
        } else if fa_analyze::kb::is_technique_id(t) && !kb_techniques.contains(t.as_str()) {
            problems.push(format!(
                "{}: upstream technique {t} missing from mitre",
                up.name
            ));
        }
    }
    problems
}

fn assert_clean(file: &str, kb_file: &str, deep: bool) {
    let problems = check_file(file, kb_file, deep);
    assert!(
        problems.is_empty(),
        "{} problem(s) for {file}:\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

#[test]
fn stable_syscall_rules() {
    assert_clean("falco_rules.yaml", "falco_rules.toml", true);
}
#[test]
fn incubating_syscall_rules() {
    assert_clean(
        "falco-incubating_rules.yaml",
        "falco-incubating_rules.toml",
        true,
    );
}
#[test]
fn sandbox_syscall_rules() {
    assert_clean("falco-sandbox_rules.yaml", "falco-sandbox_rules.toml", true);
}
#[test]
fn deprecated_syscall_rules() {
    assert_clean(
        "falco-deprecated_rules.yaml",
        "falco-deprecated_rules.toml",
        true,
    );
}
#[test]
fn k8s_audit_rules() {
    assert_clean("k8s_audit_rules.yaml", "k8s_audit_rules.toml", true);
}
#[test]
fn aws_cloudtrail_rules() {
    assert_clean(
        "aws_cloudtrail_rules.yaml",
        "aws_cloudtrail_rules.toml",
        false,
    );
}
#[test]
fn gcp_auditlog_rules() {
    assert_clean("gcp_auditlog_rules.yaml", "gcp_auditlog_rules.toml", false);
}
#[test]
fn github_rules() {
    assert_clean("github_rules.yaml", "github_rules.toml", false);
}
#[test]
fn okta_rules() {
    assert_clean("okta_rules.yaml", "okta_rules.toml", false);
}

/// Entries that repeat each other with the names swapped do not count as coverage.
#[test]
fn entries_are_not_copies_of_each_other() {
    let kb = kb();
    let mut seen: HashMap<String, &str> = HashMap::new();
    let mut problems = Vec::new();
    for r in kb.rules() {
        let norm = |s: &str| {
            s.replace(&r.entry.name, "")
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase()
        };
        let key = norm(&r.entry.description);
        if let Some(other) = seen.insert(key, &r.entry.name) {
            problems.push(format!("{} and {other} share a description", r.entry.name));
        }
        let mit: String = r
            .entry
            .mitigate
            .iter()
            .map(|m| norm(&m.text))
            .collect::<Vec<_>>()
            .join("|");
        if !mit.is_empty() {
            if let Some(other) = seen.insert(format!("mit:{mit}"), &r.entry.name) {
                problems.push(format!(
                    "{} and {other} have identical mitigations",
                    r.entry.name
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn total_entry_count_covers_every_upstream_rule() {
    let files = [
        "falco_rules.yaml",
        "falco-incubating_rules.yaml",
        "falco-sandbox_rules.yaml",
        "falco-deprecated_rules.yaml",
        "k8s_audit_rules.yaml",
        "aws_cloudtrail_rules.yaml",
        "gcp_auditlog_rules.yaml",
        "github_rules.yaml",
        "okta_rules.yaml",
    ];
    let kb = kb();
    let total: usize = files.iter().map(|f| upstream(f).len()).sum();
    assert_eq!(total, 242, "INDEX.md lists 242 upstream rules");
    let missing: Vec<String> = files
        .iter()
        .flat_map(|f| upstream(f))
        .filter(|u| kb.lookup_str(&u.name).is_none())
        .map(|u| u.name)
        .collect();
    assert!(
        missing.is_empty(),
        "{} rules without an entry:\n  {}",
        missing.len(),
        missing.join("\n  ")
    );
}
