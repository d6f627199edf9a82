//! YAML parsing shared by the Kubernetes and Falco checkers (serde-saphyr, multi-document, into
//! `serde_json::Value` so the checkers walk a plain tree).

use crate::finding::Finding;
use serde_json::Value;

/// Input larger than this is not parsed (a report snippet is never this big).
const MAX_YAML_BYTES: usize = 1 << 20;

/// How scalars like `yes`, `on`, `y` are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Booleans {
    /// YAML 1.1, as Kubernetes (sigs.k8s.io/yaml) reads them: `yes`, `on`, `y` are booleans.
    Yaml11,
    /// Only `true` and `false` are booleans (Falco rules files).
    Strict,
}

/// Every document of `src`, or a finding saying why it does not parse.
pub(crate) fn parse_documents(
    checker: &'static str,
    src: &str,
    booleans: Booleans,
) -> Result<Vec<Value>, Finding> {
    if src.len() > MAX_YAML_BYTES {
        return Err(Finding::new(
            checker,
            src,
            "",
            "YAML snippet is too large to check",
        ));
    }
    if src.contains('\t') && tab_indented(src) {
        return Err(Finding::new(
            checker,
            src,
            "\\t",
            "YAML does not allow tabs for indentation",
        ));
    }
    let options = serde_saphyr::options! { strict_booleans: booleans == Booleans::Strict };
    serde_saphyr::from_multiple_with_options::<Value>(src, options).map_err(|e| {
        let text = e.to_string();
        let first = text.lines().next().unwrap_or("invalid YAML").to_string();
        Finding::new(checker, src, "", format!("YAML does not parse: {first}"))
            .at_line(error_line(&text))
    })
}

fn tab_indented(src: &str) -> bool {
    src.lines().any(|l| {
        let indent: String = l.chars().take_while(|c| c.is_whitespace()).collect();
        indent.contains('\t') && !l.trim().is_empty()
    })
}

/// serde-saphyr reports `line N column M`; pull N out for the finding.
fn error_line(text: &str) -> Option<usize> {
    let idx = text.find("line ")?;
    text[idx + 5..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .ok()
}

/// Best-effort 1-based line of the first `key:` in `src` (YAML values carry no positions).
pub(crate) fn line_of_key(src: &str, key: &str) -> Option<usize> {
    if key.is_empty() {
        return None;
    }
    src.lines()
        .position(|l| {
            let t = l.trim_start().trim_start_matches("- ").trim_start();
            t.strip_prefix(key)
                .or_else(|| t.strip_prefix(&format!("\"{key}\"")))
                .or_else(|| t.strip_prefix(&format!("'{key}'")))
                .is_some_and(|rest| rest.trim_start().starts_with(':'))
        })
        .map(|i| i + 1)
}

/// A short rendering of a YAML value's kind for messages.
pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_document_and_errors() {
        let docs =
            parse_documents("yaml", "a: 1\n---\nb: [x, y]\n", Booleans::Yaml11).expect("parses");
        assert_eq!(docs.len(), 2);
        assert_eq!(
            docs[1]["b"][1],
            Value::Bool(true),
            "YAML 1.1 reads y as a boolean"
        );
        let strict = parse_documents("yaml", "b: [x, y]\n", Booleans::Strict).expect("parses");
        assert_eq!(strict[0]["b"][1], Value::String("y".into()));
        let err = parse_documents("yaml", "a: [1, 2\n", Booleans::Yaml11).expect_err("broken");
        assert!(
            err.message.starts_with("YAML does not parse"),
            "{}",
            err.message
        );
        let tab = parse_documents("yaml", "a:\n\tb: 1\n", Booleans::Yaml11).expect_err("tab");
        assert!(tab.message.contains("tabs"));
    }

    #[test]
    fn finds_key_lines() {
        let src =
            "spec:\n  containers:\n  - name: x\n    securityContext:\n      runAsNonRoot: true\n";
        assert_eq!(line_of_key(src, "runAsNonRoot"), Some(5));
        assert_eq!(line_of_key(src, "name"), Some(3));
        assert_eq!(line_of_key(src, "missing"), None);
    }
}
