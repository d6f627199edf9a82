//! Corpus tests: each tests/corpus/*.toml names a snippet language, snippets that must validate
//! cleanly (`valid`) and snippets that must be flagged on a given token (`invalid`).

use fa_model::Snippet;
use fa_validate::validate_snippet;
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Deserialize)]
struct Corpus {
    lang: String,
    #[serde(default)]
    valid: Vec<String>,
    #[serde(default)]
    invalid: Vec<Invalid>,
}

#[derive(Deserialize)]
struct Invalid {
    code: String,
    token: String,
}

fn corpora() -> Vec<(String, Corpus)> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus"));
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir)
        .expect("tests/corpus exists")
        .flatten()
    {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "toml") {
            let text = std::fs::read_to_string(&p).expect("readable corpus");
            let corpus: Corpus =
                toml::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}", p.display()));
            out.push((
                p.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
                corpus,
            ));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[test]
fn every_checker_has_a_corpus() {
    let langs: Vec<String> = corpora().into_iter().map(|(_, c)| c.lang).collect();
    for lang in [
        "docker",
        "kubectl",
        "shell",
        "aws",
        "gcloud",
        "gh",
        "k8s-yaml",
        "falco-yaml",
        "seccomp-json",
        "apparmor",
    ] {
        assert!(langs.iter().any(|l| l == lang), "no corpus for {lang}");
    }
}

#[test]
fn valid_snippets_have_no_findings() {
    let mut failures = Vec::new();
    for (file, corpus) in corpora() {
        for code in &corpus.valid {
            let snippet = Snippet {
                lang: corpus.lang.clone(),
                code: code.clone(),
            };
            let findings = validate_snippet(&snippet);
            if !findings.is_empty() {
                failures.push(format!(
                    "{file}: {code}\n  {}",
                    findings
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("\n  ")
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "valid snippets with findings:\n{}",
        failures.join("\n")
    );
}

#[test]
fn invalid_snippets_are_flagged_on_their_token() {
    let mut failures = Vec::new();
    let mut count = 0;
    for (file, corpus) in corpora() {
        for inv in &corpus.invalid {
            count += 1;
            let snippet = Snippet {
                lang: corpus.lang.clone(),
                code: inv.code.clone(),
            };
            let findings = validate_snippet(&snippet);
            if !findings.iter().any(|f| f.token == inv.token) {
                failures.push(format!(
                    "{file}: expected token `{}` in\n  {}\n  got: {:?}",
                    inv.token,
                    inv.code.trim(),
                    findings.iter().map(ToString::to_string).collect::<Vec<_>>()
                ));
            }
            for f in &findings {
                assert!(
                    !f.message.is_empty() && !f.snippet.is_empty(),
                    "{file}: {f:?}"
                );
            }
        }
    }
    assert!(count > 50, "corpus too small: {count}");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
