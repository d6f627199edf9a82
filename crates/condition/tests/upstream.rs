//! Every rule of every upstream rules file parses and compiles.

use fa_condition::{compile, RuleSet};

/// Plugin files first, then the syscall files with the stable one last: where the syscall files
/// repeat a list or macro, the stable definition is the one kept (as when they are all loaded
/// with falco_rules.yaml given last).
const ORDER: [&str; 9] = [
    "aws_cloudtrail_rules.yaml",
    "gcp_auditlog_rules.yaml",
    "github_rules.yaml",
    "k8s_audit_rules.yaml",
    "okta_rules.yaml",
    "falco-deprecated_rules.yaml",
    "falco-sandbox_rules.yaml",
    "falco-incubating_rules.yaml",
    "falco_rules.yaml",
];

#[test]
fn every_upstream_rule_compiles() {
    let dir = fa_testdata::upstream_rules_dir();
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = ORDER.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "a new upstream file must be added to ORDER"
    );

    let mut set = RuleSet::new();
    for f in ORDER {
        let text = fa_testdata::read_to_string(&dir.join(f));
        set.add_file(f, &text, false)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let compiled = compile(&set).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(compiled.len(), 242);
    assert_eq!(set.rule_count(), 242);
    for r in compiled.rules() {
        assert!(r.user_files.is_empty(), "{}", r.name);
    }
    assert!(compiled.rule("Terminal shell in container").is_some());
}

/// Each file on its own (with the stable file for the syscall ones) compiles too.
#[test]
fn each_upstream_file_compiles_with_its_dependencies() {
    let dir = fa_testdata::upstream_rules_dir();
    let stable = fa_testdata::read_to_string(&dir.join("falco_rules.yaml"));
    let mut total = 0;
    for f in ORDER {
        let mut set = RuleSet::new();
        if f.starts_with("falco-") {
            set.add_file("falco_rules.yaml", &stable, false).unwrap();
        }
        let before = set.rule_count();
        set.add_file(f, &fa_testdata::read_to_string(&dir.join(f)), false)
            .unwrap();
        compile(&set).unwrap_or_else(|e| panic!("{f}: {e}"));
        total += set.rule_count() - before;
    }
    assert_eq!(total, 242);
}
