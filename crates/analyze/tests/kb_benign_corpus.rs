//! The benign signatures against the labelled corpus (testdata/corpus, FORMAT.md): no line of an
//! attack source (`atk-*.log`) may match any signature, and the share of false-positive lines
//! (`fp-*.log`) that a signature recognises is printed for BENCHMARKS.md. Lines are read as
//! published: Falco JSON, or Falco's plain-text output with the rule recovered from the message.

use fa_analyze::kb::KnowledgeBase;
use fa_model::Alert;
use std::path::PathBuf;

fn parse(line: &str) -> Option<Alert> {
    let t = line.trim();
    if t.is_empty() {
        return None;
    }
    if t.starts_with('{') {
        return serde_json::from_str(t).ok();
    }
    // Plain text: from the first `<time>: <Priority>` on (syslog or journal prefixes dropped).
    (0..t.len())
        .filter(|&i| t.is_char_boundary(i) && (i == 0 || t.as_bytes()[i - 1] == b' '))
        .find_map(|i| fa_ingest::parse_plain_line(&t[i..]).ok())
}

fn logs(prefix: &str) -> Vec<PathBuf> {
    let dir = fa_testdata::corpus_dir();
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "log")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(prefix))
        })
        .collect();
    out.sort();
    out
}

/// (file:line, is JSON, ids of the matching signatures) for every parsable line.
fn matches(kb: &KnowledgeBase, prefix: &str) -> Vec<(String, bool, Vec<String>)> {
    let mut out = Vec::new();
    for path in logs(prefix) {
        let text = fa_testdata::read_to_string(&path);
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("?")
            .to_string();
        for (i, line) in text.lines().enumerate() {
            let Some(a) = parse(line) else { continue };
            let ids = kb
                .benign_matches(&a, kb.rule_for(&a))
                .iter()
                .map(|m| m.id.to_string())
                .collect();
            out.push((
                format!("{name}:{}", i + 1),
                line.trim_start().starts_with('{'),
                ids,
            ));
        }
    }
    out
}

#[test]
fn no_attack_line_of_the_corpus_matches_a_benign_signature() {
    let kb = KnowledgeBase::builtin().unwrap_or_else(|e| panic!("{e}"));
    let atk = matches(&kb, "atk-");
    assert!(!atk.is_empty(), "the corpus holds attack sources");
    let wrong: Vec<_> = atk.iter().filter(|(_, _, ids)| !ids.is_empty()).collect();
    println!(
        "corpus attack lines: {} parsed, {} matching a benign signature",
        atk.len(),
        wrong.len()
    );
    assert!(
        wrong.is_empty(),
        "attack lines called known-benign: {wrong:#?}"
    );
}

#[test]
fn benign_corpus_lines_recognised_by_a_signature() {
    let kb = KnowledgeBase::builtin().unwrap_or_else(|e| panic!("{e}"));
    let fp = matches(&kb, "fp-");
    let json: Vec<_> = fp.iter().filter(|(_, j, _)| *j).collect();
    let json_hit = json.iter().filter(|(_, _, ids)| !ids.is_empty()).count();
    let all_hit = fp.iter().filter(|(_, _, ids)| !ids.is_empty()).count();
    println!(
        "corpus benign lines: JSON {json_hit}/{} matched, all parsed {all_hit}/{} matched",
        json.len(),
        fp.len()
    );
    for (at, _, ids) in &fp {
        println!("  {at}: {ids:?}");
    }
    // The published false positives include ones the signatures are written for (kubelet token
    // requests, controller-manager accounts, upstream allow-list cases): some must be recognised.
    assert!(
        fp.is_empty() || all_hit > 0,
        "no benign corpus line matched"
    );
}
