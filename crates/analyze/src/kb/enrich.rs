//! Filling a report's knowledge sections from the knowledge base.

use super::{KnowledgeBase, Rule};
use fa_model::{
    Alert, Knowledge, Mitigation, MitigationKind, MitreRef, Report, Snippet, Step, Tuning,
};
use std::fmt::Write as _;

/// A template with its `{field}` placeholders filled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filled {
    pub text: String,
    /// Placeholders the alert had no value for; left as `{field}` in `text`.
    pub missing: Vec<String>,
}

/// Replace `{falco.field}` with the alert's value, shell-quoted because alert values are
/// attacker-chosen and the result is meant to be pasted into a terminal.
pub fn fill_placeholders(template: &str, alert: &Alert) -> Filled {
    let mut text = String::with_capacity(template.len() + 32);
    let mut missing = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        text.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) if is_placeholder(&after[..close]) => {
                let name = &after[..close];
                match alert.field(name) {
                    Some(v) => text.push_str(&shell_quote(&v)),
                    None => {
                        text.push('{');
                        text.push_str(name);
                        text.push('}');
                        if !missing.iter().any(|m| m == name) {
                            missing.push(name.to_string());
                        }
                    }
                }
                rest = &after[close + 1..];
            }
            _ => {
                text.push('{');
                rest = after;
            }
        }
    }
    text.push_str(rest);
    Filled { text, missing }
}

/// Placeholders look like Falco fields: `proc.name`, `proc.aname[2]`, `ka.target.name`.
pub(crate) fn is_placeholder(s: &str) -> bool {
    !s.is_empty()
        && s.contains('.')
        && s.as_bytes()[0].is_ascii_lowercase()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._[]".contains(&b))
}

/// Quote a value for a POSIX shell: bare when it is plainly safe, else single-quoted.
pub fn shell_quote(v: &str) -> String {
    let safe = !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_./:@%+=,-".contains(&b))
        && !v.starts_with('-');
    if safe {
        v.to_string()
    } else {
        format!("'{}'", v.replace('\'', r"'\''"))
    }
}

/// A YAML double-quoted scalar; everything outside printable ASCII is escaped so that no
/// alert value can break out of the string or smuggle control characters into a rules file.
/// The (field, value) pairs an exception can be scoped by: fields the alert has, with a single
/// value. A list-valued field (`container.image.digest` as a list, `k8s.pod.labels`) cannot be
/// matched with `=`, so it is left out rather than turned into a wrong comparison.
pub fn scope_values(fields: &[String], alert: &Alert) -> Vec<(String, String)> {
    fields
        .iter()
        .filter(|f| {
            !matches!(
                alert.output_fields.get(f),
                Some(serde_json::Value::Array(_) | serde_json::Value::Object(_))
            )
        })
        .filter_map(|f| alert.field(f).map(|v| (f.clone(), v.into_owned())))
        .collect()
}

/// A field name as an item of a YAML flow sequence (`fields: [a, b]`): plain when it is only
/// name characters, quoted otherwise (`proc.aname[2]` would end the sequence early).
pub fn yaml_flow_item(name: &str) -> String {
    if !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        name.to_string()
    } else {
        yaml_quote(name)
    }
}

pub fn yaml_quote(v: &str) -> String {
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            ' '..='~' => out.push(c),
            c if (c as u32) <= 0xFFFF => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08X}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

fn mitigation_kind(s: &str) -> MitigationKind {
    match s {
        "prevent" => MitigationKind::Prevent,
        "detect" => MitigationKind::Detect,
        _ => MitigationKind::Respond,
    }
}

impl KnowledgeBase {
    /// Fill the knowledge sections of `report` for `alert`: from the rule's curated entry when
    /// there is one, otherwise from the fallback derived from the alert's own tags and source.
    pub fn enrich(&self, alert: &Alert, report: &mut Report) {
        self.enrich_with(alert, self.rule_for(alert), report)
    }

    /// As `enrich`, with the rule already looked up (see `rule_for`).
    pub fn enrich_with(&self, alert: &Alert, rule: Option<&Rule>, report: &mut Report) {
        match rule {
            Some(r) => self.enrich_curated(alert, r, report),
            None => self.enrich_fallback(alert, report),
        }
    }

    /// The alert's entry: by rule name or alias, or for alerts that did not record their rule
    /// (plain-text output), by the fixed start of the message.
    pub fn rule_for(&self, alert: &Alert) -> Option<&Rule> {
        self.lookup(&alert.rule)
            .or_else(|| match alert.rule.is_unknown() {
                true => alert.message().and_then(|m| self.recover_rule(m)),
                false => None,
            })
    }

    fn enrich_curated(&self, alert: &Alert, rule: &Rule, report: &mut Report) {
        let e = &rule.entry;
        if alert.rule.is_unknown() {
            report.event.rule = e.name.clone();
            report.notes.push(format!(
                "The alert did not record its rule; `{}` was recovered from its output text.",
                e.name
            ));
        }
        report.knowledge = Some(Knowledge {
            curated: true,
            description: e.description.clone(),
            false_positives: e.false_positives.clone(),
        });
        report.mitre = e
            .mitre
            .iter()
            .map(|m| {
                let t = self.tactic_by_slug(&m.tactic);
                MitreRef {
                    tactic_id: t.map(|t| t.id.clone()),
                    tactic: t
                        .map(|t| t.name.clone())
                        .unwrap_or_else(|| m.tactic.clone()),
                    technique_id: m.technique.clone(),
                    technique: m.technique_name.clone(),
                }
            })
            .collect();
        report.investigation = e
            .investigate
            .iter()
            .map(|s| step(&s.title, s.command.as_deref(), alert))
            .collect();
        report.mitigations = e
            .mitigate
            .iter()
            .map(|m| Mitigation {
                kind: mitigation_kind(&m.kind),
                title: m.title.clone(),
                text: m.text.clone(),
                example: m.example.as_ref().map(|code| Snippet {
                    lang: m.lang.clone().unwrap_or_else(|| "text".into()),
                    code: code.clone(),
                }),
            })
            .collect();
        report.tuning = tuning(&e.name, &e.tuning_fields, alert);
        report.next_steps = e.next_steps.clone();
    }

    fn enrich_fallback(&self, alert: &Alert, report: &mut Report) {
        let rule_name = if alert.rule.is_unknown() {
            "(rule not recorded)"
        } else {
            alert.rule.as_str()
        };
        report.knowledge = Some(Knowledge {
            curated: false,
            description: format!(
                "Rule `{rule_name}` is not in falco-analyst's knowledge base (a custom or newer rule). \
                 What follows is derived only from the alert's own tags, priority, source and fields; \
                 read the rule's definition in your Falco rules files to know exactly what it matches."
            ),
            false_positives: None,
        });
        report.mitre = self.mitre_from_tags(&alert.tags);
        let source = alert
            .source
            .as_ref()
            .map(|s| s.as_str())
            .unwrap_or("syscall");
        if let Some(fb) = self.fallback_for(source) {
            report.investigation = fb
                .investigate
                .iter()
                .map(|s| step(&s.title, s.command.as_deref(), alert))
                .collect();
            if !alert.rule.is_unknown() {
                report.tuning = tuning(alert.rule.as_str(), &fb.tuning_fields, alert);
            }
            report.next_steps = fb.next_steps.clone();
        }
        report.notes.push(format!(
            "No knowledge-base entry for rule `{rule_name}`: no curated mitigations are given. \
             Add one with `--kb DIR` (see `falco-analyst kb show` for the format)."
        ));
    }

    /// MITRE references from Falco tags: `mitre_<tactic>` and `T1234[.001]`.
    pub fn mitre_from_tags(&self, tags: &[String]) -> Vec<MitreRef> {
        let tactics: Vec<_> = tags
            .iter()
            .filter_map(|t| self.tactic_by_slug(t).filter(|_| t.starts_with("mitre_")))
            .collect();
        let techniques: Vec<&String> = tags.iter().filter(|t| super::is_technique_id(t)).collect();
        let mut out = Vec::new();
        for t in &tactics {
            out.push(MitreRef {
                tactic_id: Some(t.id.clone()),
                tactic: t.name.clone(),
                technique_id: None,
                technique: None,
            });
        }
        // A technique is attributed to a tactic only when the tags name exactly one.
        for tech in techniques {
            if tactics.len() == 1 {
                if let Some(first) = out.first_mut().filter(|m| m.technique_id.is_none()) {
                    first.technique_id = Some(tech.clone());
                    continue;
                }
            }
            out.push(MitreRef {
                tactic_id: tactics
                    .first()
                    .filter(|_| tactics.len() == 1)
                    .map(|t| t.id.clone()),
                tactic: tactics
                    .first()
                    .filter(|_| tactics.len() == 1)
                    .map(|t| t.name.clone())
                    .unwrap_or_else(|| "(tactic not tagged)".into()),
                technique_id: Some(tech.clone()),
                technique: None,
            });
        }
        out
    }
}

fn step(title: &str, command: Option<&str>, alert: &Alert) -> Step {
    match command {
        Some(c) => {
            let f = fill_placeholders(c, alert);
            Step {
                title: title.to_string(),
                command: Some(f.text),
                missing_fields: f.missing,
            }
        }
        None => Step {
            title: title.to_string(),
            command: None,
            missing_fields: Vec::new(),
        },
    }
}

/// A Falco exception appended to the rule, scoped by the tuning fields the alert has values for.
pub fn tuning(rule: &str, fields: &[String], alert: &Alert) -> Option<Tuning> {
    let present = scope_values(fields, alert);
    if present.is_empty() {
        return None;
    }
    let names: Vec<&str> = present.iter().map(|(f, _)| f.as_str()).collect();
    let slug: String = names
        .iter()
        .map(|f| f.replace(['.', '[', ']'], "_"))
        .collect::<Vec<_>>()
        .join("_");
    let mut yaml = String::new();
    let _ = writeln!(yaml, "- rule: {}", yaml_quote(rule));
    yaml.push_str("  exceptions:\n");
    let _ = writeln!(yaml, "    - name: fa_{}", slug.trim_matches('_'));
    let _ = writeln!(
        yaml,
        "      fields: [{}]",
        names
            .iter()
            .map(|n| yaml_flow_item(n))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(yaml, "      comps: [{}]", vec!["="; names.len()].join(", "));
    yaml.push_str("      values:\n");
    let vals: Vec<String> = present.iter().map(|(_, v)| yaml_quote(v)).collect();
    let _ = writeln!(yaml, "        - [{}]", vals.join(", "));
    yaml.push_str("  override:\n    exceptions: append\n");
    Some(Tuning {
        explanation: format!(
            "Only if you have confirmed this activity is expected: this exception silences `{rule}` \
             for exactly this {} and nothing else. It is appended to the upstream rule, which stays enabled.",
            names.join(" + ")
        ),
        yaml,
        proof: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert() -> Alert {
        serde_json::from_str(
            r#"{"rule":"X","priority":"Notice","output_fields":{"k8s.ns.name":"prod","k8s.pod.name":"web; rm -rf /","proc.name":"it's"}}"#,
        )
        .unwrap()
    }

    #[test]
    fn placeholders_are_filled_quoted_or_named_when_missing() {
        let f = fill_placeholders("kubectl -n {k8s.ns.name} describe pod {k8s.pod.name} # {container.id} {notaplaceholder}", &alert());
        assert_eq!(
            f.text,
            "kubectl -n prod describe pod 'web; rm -rf /' # {container.id} {notaplaceholder}"
        );
        assert_eq!(f.missing, vec!["container.id".to_string()]);
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("-rf"), "'-rf'");
    }

    #[test]
    fn yaml_quote_escapes_everything_unsafe() {
        assert_eq!(
            yaml_quote("a\"b\\c\n\u{1b}é"),
            "\"a\\\"b\\\\c\\u000A\\u001B\\u00E9\""
        );
    }

    #[test]
    fn tuning_is_scoped_to_present_fields() {
        let t = tuning(
            "Terminal shell in container",
            &[
                "proc.name".into(),
                "container.id".into(),
                "k8s.ns.name".into(),
            ],
            &alert(),
        )
        .unwrap();
        assert!(
            t.yaml.contains("fields: [proc.name, k8s.ns.name]"),
            "{}",
            t.yaml
        );
        assert!(t.yaml.contains("comps: [=, =]"));
        assert!(t.yaml.contains("exceptions: append"));
        assert!(tuning("r", &["container.id".into()], &alert()).is_none());
    }

    #[test]
    fn bracketed_fields_are_quoted_and_list_values_left_out() {
        let a: Alert = serde_json::from_str(
            r#"{"rule":"X","priority":"Notice","output_fields":{"proc.aname[2]":"containerd-shim","proc.name":"sh","container.image.digest":["sha256:1","sha256:2"]}}"#,
        )
        .unwrap();
        let t = tuning(
            "Run shell untrusted",
            &[
                "proc.name".into(),
                "proc.aname[2]".into(),
                "container.image.digest".into(),
            ],
            &a,
        )
        .unwrap();
        assert!(
            t.yaml.contains(r#"fields: [proc.name, "proc.aname[2]"]"#),
            "{}",
            t.yaml
        );
        assert!(t.yaml.contains("comps: [=, =]"), "{}", t.yaml);
        assert!(!t.yaml.contains("sha256"), "{}", t.yaml);
        // And the validator, which gates every report, accepts it as a Falco rules snippet.
        let findings = fa_validate::validate_snippet(&fa_model::Snippet {
            lang: "falco-yaml".into(),
            code: t.yaml.clone(),
        });
        assert!(findings.is_empty(), "{findings:?}\n{}", t.yaml);
    }
}
