//! The upstream Falco rules (falcosecurity/rules and plugins) must validate cleanly: every field
//! they use is in kb/falco_fields.txt and every construct they use is understood.

use fa_model::Snippet;
use fa_validate::{validate_snippet, Finding};
use std::path::PathBuf;

fn rules_dir() -> PathBuf {
    fa_testdata::upstream_rules_dir()
}

fn rule_files() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let entries = std::fs::read_dir(rules_dir()).expect("kb/upstream is in the repository");
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "yaml") {
            let text = std::fs::read_to_string(&p).expect("readable rules file");
            out.push((
                p.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
                text,
            ));
        }
    }
    out.sort();
    assert!(
        out.len() >= 9,
        "expected the upstream rule files, found {}",
        out.len()
    );
    out
}

fn findings(text: &str) -> Vec<Finding> {
    validate_snippet(&Snippet {
        lang: "falco-yaml".into(),
        code: text.into(),
    })
}

#[test]
fn every_field_used_by_upstream_rules_is_known() {
    let mut unknown = Vec::new();
    for (name, text) in rule_files() {
        for f in findings(&text) {
            if f.message.contains("is not a Falco field") {
                unknown.push(format!("{name}: {}", f.token));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "fields missing from kb/falco_fields.txt: {unknown:#?}"
    );
}

#[test]
fn upstream_rule_files_validate_without_findings() {
    let mut all = Vec::new();
    for (name, text) in rule_files() {
        for f in findings(&text) {
            all.push(format!("{name}: {f}"));
        }
    }
    assert!(all.is_empty(), "{all:#?}");
}

#[test]
fn a_broken_copy_of_an_upstream_rule_is_caught() {
    let (_, text) = rule_files()
        .into_iter()
        .find(|(n, _)| n == "falco_rules.yaml")
        .expect("falco_rules.yaml");
    let broken = text.replacen("%proc.name", "%proc.nmae", 1);
    let f = findings(&broken);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].token, "proc.nmae");
    assert!(f[0].snippet.starts_with("- rule: "), "{}", f[0].snippet);
    assert!(f[0].line.is_some());
}
