//! The model's answer: parsed strictly, placeholders mapped back, cleaned, and every command or
//! configuration in it checked by `fa-validate`. What fails is dropped and counted.

use crate::redact::Placeholders;
use fa_model::{Mitigation, MitigationKind, Narrative, Snippet};
use serde::{Deserialize, Serialize};

/// The answer exactly as the schema defines it. Unknown keys (a `verdict`, say) are errors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    pub summary: String,
    pub analysis: String,
    pub mitigations: Vec<AnswerMitigation>,
    pub next_steps: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerMitigation {
    pub kind: MitigationKind,
    pub title: String,
    pub text: String,
    #[serde(default)]
    pub example: Option<AnswerExample>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnswerExample {
    pub lang: String,
    pub code: String,
}

const MAX_SUMMARY: usize = 1_500;
const MAX_ANALYSIS: usize = 8_000;
const MAX_TEXT: usize = 2_000;
const MAX_CODE: usize = 4_000;
const MAX_MITIGATIONS: usize = 8;
const MAX_NEXT_STEPS: usize = 10;

/// Parses the answer text. The only leniency: one surrounding Markdown code fence, which
/// local models add in `json_object` mode.
pub fn parse(text: &str) -> Result<Answer, String> {
    let t = text.trim();
    let t = match t.strip_prefix("```") {
        Some(rest) => {
            let rest = rest.strip_prefix("json").unwrap_or(rest);
            rest.strip_suffix("```").unwrap_or(rest).trim()
        }
        None => t,
    };
    serde_json::from_str(t).map_err(|e| e.to_string())
}

/// Maps placeholders back, cleans and validates: the narrative (`None` when nothing survives)
/// and how many of the model's items were dropped.
pub fn check(
    answer: &Answer,
    placeholders: &Placeholders,
    provider: &str,
    model: &str,
) -> (Option<Narrative>, usize) {
    let fix = |s: &str, max: usize| clean(&placeholders.restore(s), max);
    let mut dropped = 0usize;

    let mut summary = fix(&answer.summary, MAX_SUMMARY);
    if !fa_validate::check_document(&summary).is_empty() {
        summary.clear();
        dropped += 1;
    }

    let mut kept_units = Vec::new();
    for unit in units(&fix(&answer.analysis, MAX_ANALYSIS)) {
        if fa_validate::check_document(&unit).is_empty() {
            kept_units.push(unit);
        } else {
            dropped += 1;
        }
    }
    let analysis = kept_units.join("\n\n");

    let mut mitigations = Vec::new();
    for m in &answer.mitigations {
        let title = fix(&m.title, 200);
        let text = fix(&m.text, MAX_TEXT);
        let example = m.example.as_ref().map(|e| Snippet {
            lang: e.lang.trim().to_string(),
            code: fix(&e.code, MAX_CODE),
        });
        let prose_ok = fa_validate::check_document(&format!("{title}\n\n{text}")).is_empty();
        let example_ok = example.as_ref().is_none_or(|e| {
            !e.code.trim().is_empty() && fa_validate::validate_snippet(e).is_empty()
        });
        if !prose_ok || !example_ok || title.is_empty() {
            dropped += 1;
            continue;
        }
        if mitigations.len() < MAX_MITIGATIONS {
            mitigations.push(Mitigation {
                kind: m.kind,
                title,
                text,
                example,
            });
        }
    }

    let mut next_steps = Vec::new();
    for s in &answer.next_steps {
        let s = fix(s, 500);
        if s.is_empty() {
            continue;
        }
        if !fa_validate::check_document(&s).is_empty() {
            dropped += 1;
            continue;
        }
        if next_steps.len() < MAX_NEXT_STEPS {
            next_steps.push(s);
        }
    }

    if summary.is_empty() && analysis.is_empty() && mitigations.is_empty() && next_steps.is_empty()
    {
        return (None, dropped);
    }
    let narrative = Narrative {
        provider: provider.to_string(),
        model: model.to_string(),
        summary,
        analysis,
        mitigations,
        next_steps,
    };
    (Some(narrative), dropped)
}

/// Paragraphs, with each fenced code block kept whole inside its paragraph, so that a bad
/// command removes its paragraph and nothing else.
fn units(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Vec<&str> = Vec::new();
    let mut fence: Option<String> = None;
    for line in text.lines() {
        let t = line.trim_start();
        match &fence {
            Some(f) => {
                cur.push(line);
                if t.starts_with(f.as_str()) && t.trim().chars().all(|c| c == '`' || c == '~') {
                    fence = None;
                }
            }
            None => {
                if t.starts_with("```") || t.starts_with("~~~") {
                    let ch = t.chars().next().unwrap_or('`');
                    fence = Some(t.chars().take_while(|c| *c == ch).collect());
                    cur.push(line);
                } else if t.is_empty() {
                    if !cur.is_empty() {
                        out.push(cur.join("\n"));
                        cur.clear();
                    }
                } else {
                    cur.push(line);
                }
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur.join("\n"));
    }
    out
}

/// Without control characters (terminal escapes) or bidirectional overrides, trimmed, and cut
/// at `max` characters.
fn clean(s: &str, max: usize) -> String {
    let filtered: String = s
        .chars()
        .filter(|&c| {
            (c == '\n' || c == '\t' || !c.is_control())
                && !matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
        })
        .collect();
    let t = filtered.trim();
    if t.chars().count() <= max {
        t.to_string()
    } else {
        let mut cut: String = t.chars().take(max).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn answer(v: serde_json::Value) -> Answer {
        parse(&v.to_string()).unwrap()
    }

    #[test]
    fn strict_parse_rejects_extra_keys_and_missing_ones() {
        let ok = json!({"summary":"s","analysis":"a","mitigations":[],"next_steps":[]});
        assert!(parse(&ok.to_string()).is_ok());
        assert!(parse(&format!("```json\n{ok}\n```")).is_ok());
        let mut extra = ok.clone();
        extra["verdict"] = json!("benign");
        assert!(parse(&extra.to_string()).unwrap_err().contains("verdict"));
        assert!(parse(r#"{"summary":"s"}"#).is_err());
        assert!(parse("Sure! Here is the JSON: {").is_err());
        let bad_kind = json!({"summary":"s","analysis":"a","mitigations":[{"kind":"ignore","title":"t","text":"x","example":null}],"next_steps":[]});
        assert!(parse(&bad_kind.to_string()).is_err());
    }

    #[test]
    fn invented_flags_never_reach_the_narrative() {
        let a = answer(json!({
            "summary": "A shell ran in [POD_1].",
            "analysis": "First paragraph.\n\nRun this:\n```bash\ndocker run --no-pid alpine\n```\n\nLast paragraph.",
            "mitigations": [
                {"kind":"prevent","title":"Isolate PIDs","text":"Run containers without host PID.","example":{"lang":"docker","code":"docker run --no-pid alpine"}},
                {"kind":"prevent","title":"Drop privileges","text":"Never grant new privileges.","example":{"lang":"docker","code":"docker run --security-opt no-new-privileges alpine"}},
                {"kind":"detect","title":"Bad prose","text":"Use `docker run --securityOpt x nginx` to check.","example":null}
            ],
            "next_steps": ["Check the pod.", "$ kubectl get pods --bogus-flag"]
        }));
        let (n, dropped) = check(&a, &Placeholders::default(), "openai", "m");
        let n = n.unwrap();
        let all = serde_json::to_string(&n).unwrap();
        assert!(!all.contains("--no-pid"), "{all}");
        assert!(!all.contains("--securityOpt"), "{all}");
        assert!(!all.contains("--bogus-flag"), "{all}");
        assert_eq!(n.mitigations.len(), 1);
        assert_eq!(n.mitigations[0].title, "Drop privileges");
        assert_eq!(n.analysis, "First paragraph.\n\nLast paragraph.");
        assert_eq!(n.next_steps, vec!["Check the pod."]);
        assert_eq!(dropped, 4);
    }

    #[test]
    fn nothing_left_is_no_narrative() {
        let a = answer(
            json!({"summary":"docker run --no-pid x","analysis":"","mitigations":[],"next_steps":[]}),
        );
        assert_eq!(check(&a, &Placeholders::default(), "p", "m"), (None, 1));
    }

    #[test]
    fn control_characters_and_bidi_overrides_are_removed_and_text_is_capped() {
        assert_eq!(clean("a\u{1b}[31mb\u{202E}c\n", 10), "a[31mbc");
        assert_eq!(clean(&"x".repeat(20), 5), "xxxxx…");
    }

    #[test]
    fn units_keep_fences_whole() {
        let u = units("a\n\n```sh\nx\n\ny\n```\nafter\n\nb");
        assert_eq!(
            u,
            vec![
                "a".to_string(),
                "```sh\nx\n\ny\n```\nafter".to_string(),
                "b".to_string()
            ]
        );
    }
}
