//! `kb lint`: what load-time validation cannot see. Placeholders and fields must be Falco
//! fields, MITRE references well formed, the depth the knowledge base promises must be there,
//! and every example configuration must pass the validator with zero findings.

use crate::kb::{KnowledgeBase, Rule};
use fa_model::Snippet;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LintFinding {
    /// `file: rule`
    pub location: String,
    /// Which part of the entry, e.g. `mitigate[1].example`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for LintFinding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.location, self.field, self.message)
    }
}

fn placeholders(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(o) = rest.find('{') {
        let after = &rest[o + 1..];
        match after.find('}') {
            Some(c) => {
                if crate::kb::is_placeholder(&after[..c]) {
                    out.push(&after[..c]);
                }
                rest = &after[c + 1..];
            }
            None => break,
        }
    }
    out
}

/// Falco field names, plus the `ancestry` pseudo-field benign signatures may use.
fn known_field(f: &str) -> bool {
    f == "ancestry" || fa_validate::is_falco_field(f)
}

fn lint_rule(r: &Rule, out: &mut Vec<LintFinding>) {
    let e = &r.entry;
    let at = format!("{}: {}", r.origin, e.name);
    let mut push = |field: String, message: String| {
        out.push(LintFinding {
            location: at.clone(),
            field,
            message,
        })
    };
    for (i, s) in e.investigate.iter().enumerate() {
        let Some(cmd) = &s.command else { continue };
        for p in placeholders(cmd) {
            if !known_field(p) {
                push(
                    format!("investigate[{i}].command"),
                    format!("placeholder `{{{p}}}` is not a Falco field"),
                );
            }
        }
        // Validate the command as an analyst would run it, with placeholders standing in as words.
        let snippet = Snippet {
            lang: s.lang.clone().unwrap_or_else(|| "shell".into()),
            code: cmd.replace(['{', '}'], ""),
        };
        for f in fa_validate::validate_snippet(&snippet) {
            push(format!("investigate[{i}].command"), f.to_string());
        }
    }
    for (i, m) in e.mitigate.iter().enumerate() {
        if let (Some(code), Some(lang)) = (&m.example, &m.lang) {
            for f in fa_validate::validate_snippet(&Snippet {
                lang: lang.clone(),
                code: code.clone(),
            }) {
                push(format!("mitigate[{i}].example"), f.to_string());
            }
        }
    }
    for (name, list) in [
        ("key_fields", &e.key_fields),
        ("tuning_fields", &e.tuning_fields),
    ] {
        for f in list {
            if !known_field(f) {
                push(name.to_string(), format!("`{f}` is not a Falco field"));
            }
        }
    }
    for (i, s) in r.signatures.iter().enumerate() {
        for f in s.fields() {
            if !known_field(f) {
                push(
                    format!("benign[{i}]"),
                    format!("condition field `{f}` is not a Falco field"),
                );
            }
        }
    }
    for (i, m) in e.mitre.iter().enumerate() {
        if m.technique.is_some() && m.technique_name.is_none() {
            push(
                format!("mitre[{i}]"),
                "technique without technique_name".into(),
            );
        }
    }
    let deep = matches!(e.source.as_str(), "syscall" | "k8s_audit") && e.rules_file.is_some();
    if deep {
        let steps = e.investigate.iter().filter(|s| s.command.is_some()).count();
        let examples = e.mitigate.iter().filter(|m| m.example.is_some()).count();
        if steps < 2 {
            push(
                "investigate".into(),
                format!("{steps} runnable step(s); syscall and k8s audit entries need at least 2"),
            );
        }
        if examples < 2 {
            push("mitigate".into(), format!("{examples} mitigation(s) with an example; syscall and k8s audit entries need at least 2"));
        }
    }
}

/// Every finding for the loaded knowledge base (built-in plus user directories).
pub fn lint(kb: &KnowledgeBase) -> Vec<LintFinding> {
    let mut out = Vec::new();
    for r in kb.rules() {
        lint_rule(r, &mut out);
    }
    for s in kb.global_signatures() {
        for f in s.fields() {
            if !known_field(f) {
                out.push(LintFinding {
                    location: "kb/benign.toml".into(),
                    field: format!("signature `{}`", s.id),
                    message: format!("condition field `{f}` is not a Falco field"),
                });
            }
        }
    }
    for fb in &kb.fallback().source {
        for (i, s) in fb.investigate.iter().enumerate() {
            if let Some(cmd) = &s.command {
                for p in placeholders(cmd) {
                    if !known_field(p) {
                        out.push(LintFinding {
                            location: format!("kb/fallback.toml: {}", fb.name),
                            field: format!("investigate[{i}].command"),
                            message: format!("placeholder `{{{p}}}` is not a Falco field"),
                        });
                    }
                }
            }
        }
    }
    out
}
