//! `kb lint`: what load-time validation cannot see. Placeholders and fields must be Falco
//! fields, MITRE references well formed, the depth the knowledge base promises must be there,
//! and every example configuration must pass the validator with zero findings.

use crate::kb::{KnowledgeBase, Rule, Signature, SignatureSource};
use fa_model::Snippet;
use std::collections::{BTreeMap, HashSet};
use std::fmt;

/// The upstream rules files, compiled in so that `kb lint` can check that a signature's source
/// names a macro or list that really exists, wherever the binary runs.
const UPSTREAM_RULES: &[&str] = &[
    include_str!("../../../kb/upstream/falco_rules.yaml"),
    include_str!("../../../kb/upstream/falco-incubating_rules.yaml"),
    include_str!("../../../kb/upstream/falco-sandbox_rules.yaml"),
    include_str!("../../../kb/upstream/falco-deprecated_rules.yaml"),
    include_str!("../../../kb/upstream/k8s_audit_rules.yaml"),
    include_str!("../../../kb/upstream/aws_cloudtrail_rules.yaml"),
    include_str!("../../../kb/upstream/gcp_auditlog_rules.yaml"),
    include_str!("../../../kb/upstream/github_rules.yaml"),
    include_str!("../../../kb/upstream/okta_rules.yaml"),
];

/// Every `- macro: NAME` and `- list: NAME` declared in the given YAML texts. Upstream files
/// declare them one per top-level item, so a line scan is enough.
pub fn upstream_names<'a>(texts: impl IntoIterator<Item = &'a str>) -> HashSet<String> {
    let mut out = HashSet::new();
    for text in texts {
        for line in text.lines() {
            let Some(rest) = line.strip_prefix("- ") else {
                continue;
            };
            let name = rest
                .strip_prefix("macro:")
                .or_else(|| rest.strip_prefix("list:"));
            if let Some(n) = name.map(|n| n.trim().trim_matches(['"', '\''])) {
                if !n.is_empty() {
                    out.insert(n.to_string());
                }
            }
        }
    }
    out
}

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

/// Findings for a verdict evidence file (kb/evidence.toml): every entry has an id, a positive
/// weight, a source, an ATT&CK technique and known fields; ids are unique; every regex compiles.
pub fn lint_evidence(file: &str, text: &str) -> Vec<LintFinding> {
    let mut out = Vec::new();
    let mut push = |id: &str, field: &str, message: String| {
        out.push(LintFinding {
            location: format!("{file}: {id}"),
            field: field.to_string(),
            message,
        })
    };
    let entries = match crate::verdict::read_entries(file, text) {
        Ok(e) => e,
        Err(e) => {
            push("-", "file", e.to_string());
            return out;
        }
    };
    let mut seen = std::collections::HashSet::new();
    for e in &entries {
        let id = e.id.as_str();
        if let Err(m) = crate::verdict::check_entry(e) {
            push(id, "entry", m);
        }
        if !seen.insert(id) {
            push(id, "id", "duplicate id".into());
        }
        let technique_ok = e.technique.len() >= 5
            && e.technique.starts_with('T')
            && e.technique[1..]
                .split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
        if !technique_ok {
            push(
                id,
                "technique",
                format!("`{}` is not an ATT&CK technique id", e.technique),
            );
        }
        for f in &e.fields {
            if !known_field(f) && !crate::verdict::is_pseudo_field(f) {
                push(id, "fields", format!("`{f}` is not a Falco field"));
            }
        }
        for (part, w) in e
            .when
            .iter()
            .map(|w| ("when", w))
            .chain(e.require.iter().map(|w| ("require", w)))
        {
            if !known_field(&w.field) {
                push(id, part, format!("`{}` is not a Falco field", w.field));
            }
        }
        let patterns = e
            .all
            .iter()
            .map(|p| ("all", p.as_str()))
            .chain(e.unless.iter().map(|p| ("unless", p.as_str())))
            .chain(e.when.iter().map(|w| ("when", w.regex.as_str())))
            .chain(e.require.iter().map(|w| ("require", w.regex.as_str())))
            .chain(
                e.when
                    .iter()
                    .chain(e.require.iter())
                    .filter_map(|w| w.output.as_deref())
                    .map(|p| ("when", p)),
            )
            .chain(
                e.output_all
                    .iter()
                    .flatten()
                    .map(|p| ("output_all", p.as_str())),
            );
        for (field, p) in patterns {
            if let Err(err) = crate::verdict::evidence_pattern(p) {
                push(id, field, format!("regex does not compile: {err}"));
            }
        }
    }
    out
}

/// Findings for the verdict facts of a scoring file (kb/scoring.toml `[[fact]]`): each has an
/// id, a weight and a source, ids are unique and each has its evaluator.
pub fn lint_scoring(file: &str, text: &str) -> Vec<LintFinding> {
    match crate::scoring::Scoring::parse(file, text) {
        Ok(s) => s
            .facts
            .iter()
            .filter(|f| f.about.trim().is_empty())
            .map(|f| LintFinding {
                location: format!("{file}: {}", f.id),
                field: "about".into(),
                message: "no `about` text".into(),
            })
            .collect(),
        Err(e) => vec![LintFinding {
            location: file.to_string(),
            field: "fact".into(),
            message: e.to_string(),
        }],
    }
}

/// Signature provenance: every signature's source must be an upstream macro or list that exists
/// (or a URL, which the schema already requires to be https), and signature ids are unique
/// within their scope so that a reason can be traced back to one entry.
fn lint_signature_sources(kb: &KnowledgeBase, out: &mut Vec<LintFinding>) {
    let known = upstream_names(UPSTREAM_RULES.iter().copied());
    let mut check = |location: String, field: String, s: &Signature| {
        if let SignatureSource::Upstream(name) = &s.source {
            if !known.contains(name) {
                out.push(LintFinding {
                    location,
                    field,
                    message: format!(
                        "source `{name}` is not a macro or list in kb/upstream/*.yaml (use its exact name, or a URL)"
                    ),
                });
            }
        }
    };
    for r in kb.rules() {
        for (i, s) in r.signatures.iter().enumerate() {
            check(
                format!("{}: {}", r.origin, r.entry.name),
                format!("benign[{i}] `{}`", s.id),
                s,
            );
        }
    }
    for s in kb.global_signatures() {
        check("kb/benign.toml".into(), format!("signature `{}`", s.id), s);
    }
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for s in kb.global_signatures() {
        *seen.entry(s.id.as_str()).or_default() += 1;
    }
    for (id, n) in seen {
        if n > 1 {
            out.push(LintFinding {
                location: "kb/benign.toml".into(),
                field: format!("signature `{id}`"),
                message: format!("{n} global signatures share this id"),
            });
        }
    }
}

/// Every finding for the loaded knowledge base (built-in plus user directories) and the
/// built-in verdict data.
pub fn lint(kb: &KnowledgeBase) -> Vec<LintFinding> {
    let mut out = lint_evidence("kb/evidence.toml", crate::verdict::EVIDENCE_TEXT);
    out.extend(lint_scoring(
        "kb/scoring.toml",
        crate::scoring::BUILTIN_TEXT,
    ));
    lint_signature_sources(kb, &mut out);
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

#[cfg(test)]
mod tests {
    use super::*;

    const ENTRY: &str = r#"
[[evidence]]
id = "x"
group = "g"
weight = 2.0
technique = "T1059.004"
source = "https://attack.mitre.org/techniques/T1059/004/"
about = "a"
fields = ["proc.cmdline", "proc.aname[*]"]
all = ['bash -i']
"#;

    #[test]
    fn a_sound_evidence_entry_has_no_findings() {
        assert!(lint_evidence("e.toml", ENTRY).is_empty());
    }

    #[test]
    fn evidence_lint_names_each_problem() {
        let bad = ENTRY
            .replace("'bash -i'", "'(bash'")
            .replace("proc.cmdline", "proc.cmdlinez")
            .replace("T1059.004", "exec")
            .replace(
                "source = \"https://attack.mitre.org/techniques/T1059/004/\"",
                "source = \"\"",
            );
        let twice = format!("{bad}{ENTRY}");
        let found: Vec<String> = lint_evidence("e.toml", &twice)
            .iter()
            .map(|f| f.to_string())
            .collect();
        for needle in [
            "does not compile",
            "proc.cmdlinez",
            "ATT&CK",
            "no source",
            "duplicate",
        ] {
            assert!(
                found.iter().any(|f| f.contains(needle)),
                "{needle}: {found:#?}"
            );
        }
    }

    #[test]
    fn evidence_lint_reads_require_and_output_patterns_too() {
        let bad = ENTRY.replace(
            "all = ['bash -i']",
            "all = ['bash -i']\noutput_all = ['(x']\nrequire = [{ field = \"proc.nme\", regex = 'sh' }]",
        );
        let found: Vec<String> = lint_evidence("e.toml", &bad)
            .iter()
            .map(|f| f.to_string())
            .collect();
        assert!(
            found
                .iter()
                .any(|f| f.contains("output_all") && f.contains("does not compile")),
            "{found:#?}"
        );
        assert!(found.iter().any(|f| f.contains("proc.nme")), "{found:#?}");
    }

    #[test]
    fn scoring_lint_reports_a_fact_without_evaluator_or_source() {
        let text = crate::scoring::BUILTIN_TEXT;
        assert!(lint_scoring("s.toml", text).is_empty());
        let extra = format!(
            "{text}\n[[fact]]\nid = \"made_up\"\nweight = 1.0\nsource = \"x\"\nabout = \"y\"\n"
        );
        let found = lint_scoring("s.toml", &extra);
        assert!(
            found.iter().any(|f| f.message.contains("made_up")),
            "{found:?}"
        );
        let line = "source = \"the user's rules file given with --rules\"";
        assert!(text.contains(line));
        let unsourced = text.replacen(line, "source = \" \"", 1);
        let found = lint_scoring("s.toml", &unsourced);
        assert!(
            found.iter().any(|f| f.message.contains("names no source")),
            "{found:?}"
        );
    }
}
