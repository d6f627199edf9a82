//! The validation gate: every command and configuration a report carries is checked by
//! `fa-validate` before the report is written. A snippet with findings is removed and the
//! report says so. Results are memoised per thread (keyed by a hash of lang and code), since
//! a storm repeats the same snippets: the knowledge base's examples are identical for every
//! alert of a rule, and filled-in commands repeat within a cluster.

use fa_model::{Report, Snippet};
use std::cell::RefCell;
use std::collections::HashMap;
use xxhash_rust::xxh3::Xxh3;

/// Memo entries kept per thread before the memo is cleared.
const MEMO_CAP: usize = 16_384;

thread_local! {
    static MEMO: RefCell<HashMap<u64, Option<String>>> = RefCell::new(HashMap::new());
}

fn key(lang: &str, code: &str) -> u64 {
    let mut h = Xxh3::new();
    h.update(lang.as_bytes());
    h.update(&[0]);
    h.update(code.as_bytes());
    h.digest()
}

/// `None` when the snippet is valid, else the first finding as text.
pub fn problem(lang: &str, code: &str) -> Option<String> {
    let k = key(lang, code);
    if let Some(hit) = MEMO.with(|m| m.borrow().get(&k).cloned()) {
        return hit;
    }
    let findings = fa_validate::validate_snippet(&Snippet {
        lang: lang.to_string(),
        code: code.to_string(),
    });
    let result = findings.first().map(|f| {
        if findings.len() > 1 {
            format!("{f} (and {} more)", findings.len() - 1)
        } else {
            f.to_string()
        }
    });
    MEMO.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() >= MEMO_CAP {
            m.clear();
        }
        m.insert(k, result.clone());
    });
    result
}

/// Remove every invalid snippet from the report, with a note for each.
pub fn check_report(report: &mut Report) {
    let mut notes = Vec::new();
    for step in &mut report.investigation {
        if let Some(cmd) = &step.command {
            // Placeholders left for missing fields are words to the shell; validate the rest.
            if let Some(p) = problem("shell", cmd) {
                notes.push(format!(
                    "Removed the command of investigation step \"{}\": {p}",
                    step.title
                ));
                step.command = None;
            }
        }
    }
    for m in &mut report.mitigations {
        if let Some(ex) = &m.example {
            if let Some(p) = problem(&ex.lang, &ex.code) {
                notes.push(format!(
                    "Removed the example configuration of mitigation \"{}\": {p}",
                    m.title
                ));
                m.example = None;
            }
        }
    }
    if let Some(t) = &report.tuning {
        if let Some(p) = problem("falco-yaml", &t.yaml) {
            notes.push(format!("Removed the Falco tuning exception: {p}"));
            report.tuning = None;
        }
    }
    if let Some(n) = &mut report.narrative {
        let before = n.mitigations.len();
        n.mitigations.retain(|m| {
            m.example
                .as_ref()
                .is_none_or(|ex| problem(&ex.lang, &ex.code).is_none())
        });
        let dropped = before - n.mitigations.len();
        if dropped > 0 {
            notes.push(format!(
                "Removed {dropped} model-proposed mitigation(s) whose example failed validation."
            ));
        }
    }
    report.notes.extend(notes);
}

#[cfg(test)]
mod tests {
    use super::*;
    use fa_model::{Alert, Mitigation, MitigationKind, Step, Tuning};

    fn report() -> Report {
        let a: Alert = serde_json::from_str(r#"{"rule":"r","priority":"Notice"}"#).unwrap();
        Report::skeleton(&a, "s".into(), Default::default())
    }

    #[test]
    fn invalid_snippets_are_removed_with_a_note_and_valid_ones_kept() {
        let mut r = report();
        r.investigation = vec![
            Step {
                title: "ok".into(),
                command: Some("crictl inspect 3f9a1c2b7d4e".into()),
                missing_fields: vec![],
            },
            Step {
                title: "bad".into(),
                command: Some("docker run --no-pid alpine".into()),
                missing_fields: vec![],
            },
        ];
        r.mitigations = vec![Mitigation {
            kind: MitigationKind::Prevent,
            title: "seed".into(),
            text: "t".into(),
            example: Some(Snippet {
                lang: "shell".into(),
                code: "docker run --security-opt nonewuid my-image".into(),
            }),
        }];
        r.tuning = Some(Tuning { explanation: "e".into(), yaml: "- rule: X\n  exceptions:\n    - name: a\n      fields: [proc.name]\n      comps: [=, =]\n      values: [[a]]\n".into(), proof: None });
        check_report(&mut r);
        assert!(r.investigation[0].command.is_some());
        assert!(r.investigation[1].command.is_none());
        assert!(r.mitigations[0].example.is_none());
        assert!(r.tuning.is_none());
        assert_eq!(r.notes.len(), 3, "{:#?}", r.notes);
        assert!(r.notes[0].contains("--no-pid"), "{}", r.notes[0]);
        // Memoised answers are the same answers.
        assert_eq!(
            problem("shell", "docker run --no-pid alpine"),
            problem("shell", "docker run --no-pid alpine")
        );
    }
}
