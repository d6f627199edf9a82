//! `kb lint` over the built-in knowledge base: zero findings allowed.

#[test]
fn builtin_knowledge_base_has_zero_lint_findings() {
    let kb = fa_analyze::kb::KnowledgeBase::builtin().expect("loads");
    let findings = fa_analyze::lint::lint(&kb);
    let text: Vec<String> = findings.iter().map(|f| f.to_string()).collect();
    assert!(
        findings.is_empty(),
        "{} finding(s):\n{}",
        findings.len(),
        text.join("\n")
    );
}

#[test]
fn lint_catches_an_invented_flag_and_an_unknown_placeholder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("custom.toml"),
        r#"
[[rule]]
name = "Acme custom"
source = "syscall"
priority = "Warning"
severity = 5
description = "A custom rule."
[[rule.investigate]]
title = "look"
command = "crictl inspect {container.idd}"
[[rule.mitigate]]
kind = "prevent"
title = "bad"
text = "bad"
lang = "shell"
example = "docker run --no-pid alpine"
"#,
    )
    .unwrap();
    let kb = fa_analyze::kb::KnowledgeBase::load(&[dir.path().to_path_buf()]).expect("loads");
    let findings: Vec<String> = fa_analyze::lint::lint(&kb)
        .iter()
        .filter(|f| f.location.contains("custom.toml"))
        .map(|f| f.to_string())
        .collect();
    assert!(
        findings.iter().any(|f| f.contains("container.idd")),
        "{findings:?}"
    );
    assert!(
        findings.iter().any(|f| f.contains("--no-pid")),
        "{findings:?}"
    );
}
