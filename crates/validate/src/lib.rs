//! fa-validate: checks that the commands and configurations a report shows are real.
//!
//! Every snippet a report carries (knowledge-base examples, LLM output, tuning YAML) goes through
//! [`validate_snippet`]; whole Markdown or text documents go through [`check_document`]. Findings
//! name the snippet, the offending token and why it is wrong. Nothing is ever executed, and the
//! same input always gives the same findings in the same order.
//!
//! The knowledge lives in embedded data files: CLI flag tables generated from the real tools
//! (`data/cli/`, see `tools/gen_cli_tables.py`), closed value sets (`data/values.toml`), a compact
//! Kubernetes schema (`data/k8s_schema.txt`) and the Falco field list (`kb/falco_fields.txt`).

mod apparmor;
mod cli;
mod docker;
mod document;
mod falco;
mod fields;
mod finding;
mod k8s;
mod seccomp;
mod shell;
mod values;
mod yaml;

use document::Kind;
use fa_model::Snippet;

pub use fields::is_falco_field;
pub use finding::Finding;

/// The snippet languages [`validate_snippet`] knows (the `lang` of [`fa_model::Snippet`]).
pub const LANGS: &[&str] = &[
    "shell",
    "docker",
    "kubectl",
    "k8s-yaml",
    "falco-yaml",
    "yaml",
    "json",
    "seccomp-json",
    "apparmor",
    "aws",
    "gcloud",
    "gh",
    "text",
];

/// Validates one snippet according to its `lang`. An unknown `lang` is itself a finding.
///
/// Command languages (`shell`, `docker`, `kubectl`, `aws`, `gcloud`, `gh`) are parsed as shell
/// scripts and every simple command is checked against its CLI table; the CLI-named ones must
/// also run that CLI. `text` is prose: commands and configurations inside it are still found
/// and checked, as [`check_document`] does.
pub fn validate_snippet(snippet: &Snippet) -> Vec<Finding> {
    let code = snippet.code.as_str();
    match snippet.lang.as_str() {
        "shell" => document::check_kind(Kind::Shell, code),
        lang @ ("docker" | "kubectl" | "aws" | "gcloud" | "gh") => {
            let mut findings = document::check_kind(Kind::Shell, code);
            if !runs_program(code, lang) {
                findings.push(Finding::new(
                    "snippet",
                    code,
                    lang,
                    format!("the snippet is marked `{lang}` but runs no `{lang}` command"),
                ));
            }
            findings
        }
        "k8s-yaml" => document::check_kind(Kind::K8sYaml, code),
        "falco-yaml" => document::check_kind(Kind::FalcoYaml, code),
        "yaml" => document::check_kind(document::detect("yaml", code), code),
        "json" => document::check_kind(Kind::Json, code),
        "seccomp-json" => document::check_kind(Kind::SeccompJson, code),
        "apparmor" => document::check_kind(Kind::AppArmor, code),
        "text" => document::check(code),
        other => vec![Finding::new(
            "snippet",
            code,
            other,
            format!(
                "unknown snippet language `{other}` (known: {})",
                LANGS.join(", ")
            ),
        )],
    }
}

/// Finds the commands and configurations inside a Markdown or plain-text document (fenced code
/// blocks, inline code spans holding a whole command, `$ ` and command lines in the prose),
/// detects their kind by info string and content, and validates them. Finding lines are lines of
/// `text`.
pub fn check_document(text: &str) -> Vec<Finding> {
    document::check(text)
}

fn runs_program(code: &str, program: &str) -> bool {
    shell::parse(code).commands.iter().any(|c| {
        let words = shell::program_words(c);
        let mut words = words.iter().map(|w| cli::basename(&w.text));
        // `sudo [options] docker ...`
        words.any(|w| w == program)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snip(lang: &str, code: &str) -> Snippet {
        Snippet {
            lang: lang.to_string(),
            code: code.to_string(),
        }
    }

    #[test]
    fn dispatches_on_lang() {
        assert_eq!(
            validate_snippet(&snip("docker", "docker run --no-pid x"))[0].token,
            "--no-pid"
        );
        assert_eq!(
            validate_snippet(&snip(
                "k8s-yaml",
                "apiVersion: v1\nkind: Pod\nspec: {bogus: 1}\n"
            ))[0]
                .token,
            "spec.bogus"
        );
        assert_eq!(
            validate_snippet(&snip("falco-yaml", "- rule: x\n  enabled: maybe\n"))[0].token,
            "maybe"
        );
        assert_eq!(
            validate_snippet(&snip("seccomp-json", "{\"defaultAction\": \"NOPE\"}"))[0].token,
            "NOPE"
        );
        assert_eq!(
            validate_snippet(&snip("apparmor", "profile p {\n  network\n}\n"))[0].token,
            "network"
        );
        assert!(validate_snippet(&snip("json", "{\"a\": 1}")).is_empty());
        assert_eq!(validate_snippet(&snip("json", "{\"a\": }")).len(), 1);
        assert!(validate_snippet(&snip("yaml", "a: b\n")).is_empty());
    }

    #[test]
    fn unknown_lang_is_a_finding() {
        let f = validate_snippet(&snip("powershell", "Get-Process"));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].token, "powershell");
        assert_eq!(f[0].checker, "snippet");
    }

    #[test]
    fn cli_lang_must_run_that_cli() {
        let f = validate_snippet(&snip("kubectl", "docker ps"));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].token, "kubectl");
        assert!(validate_snippet(&snip("kubectl", "sudo kubectl get pods | grep web")).is_empty());
    }

    #[test]
    fn text_snippets_still_have_their_commands_checked() {
        let f = validate_snippet(&snip(
            "text",
            "Then run `docker run --securityOpt x nginx`.",
        ));
        assert_eq!(f[0].token, "--securityOpt");
        assert!(validate_snippet(&snip("text", "Plain words only.")).is_empty());
    }
}
