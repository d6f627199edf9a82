//! Finding the commands and configurations inside a Markdown or plain-text report: fenced code
//! blocks (also ones whose fence is indented differently from their content), inline code spans
//! that hold a whole command, and command lines in the prose.

use crate::cli;
use crate::finding::Finding;
use crate::shell;
use crate::{apparmor, falco, k8s, seccomp, yaml};
use serde_json::Value;

/// What a block of code is, decided from its info string and its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Shell,
    /// A terminal transcript: only `$ ` lines are commands.
    Console,
    FalcoYaml,
    K8sYaml,
    Yaml,
    SeccompJson,
    Json,
    AppArmor,
    Text,
}

struct Block {
    info: String,
    content: String,
    /// Document line of the block's first content line.
    first_line: usize,
}

/// Checks every command and configuration found in `text`.
pub(crate) fn check(text: &str) -> Vec<Finding> {
    let (blocks, prose) = split(text);
    let mut findings = Vec::new();
    for b in &blocks {
        let kind = detect(&b.info, &b.content);
        findings.extend(shift(check_kind(kind, &b.content), b.first_line - 1));
    }
    for (line_no, line) in prose {
        findings.extend(check_prose_line(line, line_no));
    }
    findings
}

fn shift(findings: Vec<Finding>, offset: usize) -> Vec<Finding> {
    findings
        .into_iter()
        .map(|mut f| {
            f.line = f.line.map(|l| l + offset);
            f
        })
        .collect()
}

/// Checks a code block of a known kind; finding lines are relative to `code`.
pub(crate) fn check_kind(kind: Kind, code: &str) -> Vec<Finding> {
    match kind {
        Kind::Shell => cli::check_script(code, 0),
        Kind::Console => check_console(code),
        Kind::FalcoYaml => falco::check(code),
        Kind::K8sYaml => k8s::check(code),
        Kind::Yaml => check_generic_yaml(code),
        Kind::SeccompJson => seccomp::check(code),
        Kind::Json => check_json(code),
        Kind::AppArmor => apparmor::check(code),
        Kind::Text => Vec::new(),
    }
}

/// An opening fence: its indentation, character, length and info string.
type FenceOpen<'a> = (usize, char, usize, &'a str);

fn fence_of(line: &str) -> Option<FenceOpen<'_>> {
    let indent = line.len() - line.trim_start().len();
    let t = line.trim_start();
    let ch = t.chars().next()?;
    if ch != '`' && ch != '~' {
        return None;
    }
    let len = t.chars().take_while(|c| *c == ch).count();
    if len < 3 {
        return None;
    }
    let info = t[len..].trim();
    if ch == '`' && info.contains('`') {
        return None;
    }
    Some((indent, ch, len, info))
}

/// `line` without up to `depth` blockquote markers (`>` and one optional space after each), and
/// how many it had.
fn strip_quotes(line: &str, depth: usize) -> (&str, usize) {
    let mut rest = line;
    let mut n = 0;
    while n < depth {
        let t = rest.trim_start_matches([' ', '\t']);
        // A marker is indented by at most three spaces (CommonMark); more is code.
        if rest.len() - t.len() > 3 {
            break;
        }
        let Some(after) = t.strip_prefix('>') else {
            break;
        };
        rest = after.strip_prefix(' ').unwrap_or(after);
        n += 1;
    }
    (rest, n)
}

/// A list item marker (`-`, `*`, `+`, `1.`, `1)`) at the start of `line` followed by a space:
/// the width of the marker with its indentation and the space, which the item's content is
/// indented by.
fn list_marker_width(line: &str) -> Option<usize> {
    let t = line.trim_start_matches(' ');
    let indent = line.len() - t.len();
    let marker = if t.starts_with(['-', '*', '+']) {
        1
    } else {
        let digits = t.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 || !t[digits..].starts_with(['.', ')']) {
            return None;
        }
        digits + 1
    };
    let after = &t[marker..];
    let spaces = after.len() - after.trim_start_matches(' ').len();
    (spaces > 0).then_some(indent + marker + spaces)
}

/// A fence opening on `line`, also inside blockquotes and list items: (quote depth, fence).
fn container_fence(line: &str) -> Option<(usize, FenceOpen<'_>)> {
    let (inner, depth) = strip_quotes(line, usize::MAX);
    if let Some(f) = fence_of(inner) {
        return Some((depth, f));
    }
    let width = list_marker_width(inner)?;
    let (indent, ch, len, info) = fence_of(&inner[width..])?;
    Some((depth, (width + indent, ch, len, info)))
}

fn split(text: &str) -> (Vec<Block>, Vec<(usize, &str)>) {
    let lines: Vec<&str> = text.lines().collect();
    let mut blocks = Vec::new();
    let mut prose = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some((depth, (indent, ch, len, info))) = container_fence(lines[i]) else {
            prose.push((i + 1, lines[i]));
            i += 1;
            continue;
        };
        let first_line = i + 2;
        let mut content = Vec::new();
        i += 1;
        while i < lines.len() {
            // Inside a blockquote the code's lines carry the quote's `>` markers: they are
            // not part of the code. A line without them ends the quote, and the block.
            let (l, quotes) = strip_quotes(lines[i], depth);
            if quotes < depth {
                break;
            }
            let t = l.trim();
            if t.chars().all(|c| c == ch) && t.chars().count() >= len {
                i += 1; // the closing fence
                break;
            }
            // Content is de-indented by the fence's indentation where it has it; seeds put the
            // fence in a list item and the content at column 0.
            content.push(strip_indent(l, indent));
            i += 1;
        }
        let lang = info
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        blocks.push(Block {
            info: lang,
            content: content.join("\n"),
            first_line,
        });
    }
    (blocks, prose)
}

/// `line` without up to `indent` leading spaces or tabs.
fn strip_indent(line: &str, indent: usize) -> &str {
    let cut: usize = line
        .chars()
        .take(indent)
        .take_while(|c| *c == ' ' || *c == '\t')
        .map(char::len_utf8)
        .sum();
    &line[cut..]
}

/// The kind of a code block from its info string, or from its content when that says nothing.
pub(crate) fn detect(info: &str, content: &str) -> Kind {
    match info {
        "bash" | "sh" | "shell" | "zsh" | "ksh" => {
            if content.lines().any(|l| l.trim_start().starts_with("$ ")) {
                Kind::Console
            } else {
                Kind::Shell
            }
        }
        "console" | "terminal" | "shell-session" | "sh-session" | "shellsession" => Kind::Console,
        "yaml" | "yml" => yaml_kind(content),
        "json" | "jsonc" => json_kind(content),
        "apparmor" => Kind::AppArmor,
        _ => detect_content(content),
    }
}

fn yaml_kind(content: &str) -> Kind {
    let falco = content.lines().any(|l| {
        let t = l.trim_start();
        [
            "- rule:",
            "- macro:",
            "- list:",
            "- required_engine_version",
            "- required_plugin_versions",
        ]
        .iter()
        .any(|p| t.starts_with(p))
    });
    if falco {
        return Kind::FalcoYaml;
    }
    let k8s = content
        .lines()
        .any(|l| l.starts_with("apiVersion:") || l.starts_with("kind:"));
    if k8s {
        Kind::K8sYaml
    } else {
        Kind::Yaml
    }
}

fn json_kind(content: &str) -> Kind {
    if content.contains("\"defaultAction\"") {
        Kind::SeccompJson
    } else {
        Kind::Json
    }
}

fn detect_content(content: &str) -> Kind {
    let t = content.trim_start();
    if t.is_empty() {
        return Kind::Text;
    }
    if (t.starts_with('{') || t.starts_with('[')) && serde_json::from_str::<Value>(t).is_ok() {
        return json_kind(t);
    }
    if t.starts_with("#include <tunables") || t.starts_with("profile ") || t.starts_with("abi <") {
        return Kind::AppArmor;
    }
    match yaml_kind(content) {
        Kind::Yaml => {}
        other => return other,
    }
    let first_code = content
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'));
    match first_code {
        Some(l) if l.starts_with("$ ") => Kind::Console,
        Some(l) => {
            let first_word = l.split_whitespace().next().unwrap_or("");
            if cli::known_program(first_word) {
                Kind::Shell
            } else {
                Kind::Text
            }
        }
        None => Kind::Text,
    }
}

fn check_console(code: &str) -> Vec<Finding> {
    // Keep `$ ` lines (and their `\` continuations) at their own line numbers; blank the rest.
    let mut kept = Vec::new();
    let mut continuing = false;
    for l in code.lines() {
        let t = l.trim_start();
        if let Some(cmd) = t.strip_prefix("$ ") {
            kept.push(cmd.to_string());
            continuing = cmd.trim_end().ends_with('\\');
        } else if continuing {
            kept.push(l.to_string());
            continuing = l.trim_end().ends_with('\\');
        } else {
            kept.push(String::new());
        }
    }
    cli::check_script(&kept.join("\n"), 0)
}

fn check_generic_yaml(code: &str) -> Vec<Finding> {
    let docs = match yaml::parse_documents("yaml", code, yaml::Booleans::Yaml11) {
        Ok(d) => d,
        Err(f) => return vec![f],
    };
    // Kubernetes fragments (a securityContext, a patch) are checked against the schema.
    let k8s_keys = [
        "spec",
        "metadata",
        "securityContext",
        "containers",
        "template",
    ];
    let mut out = Vec::new();
    for doc in &docs {
        // A top-level `name` beside `spec` without apiVersion/kind is another system's
        // document (a GCP organisation policy, for one): Kubernetes objects keep their name
        // under `metadata`, and a container fragment has no `spec`.
        let foreign = doc.as_object().is_some_and(|m| {
            m.contains_key("name")
                && m.contains_key("spec")
                && !m.contains_key("apiVersion")
                && !m.contains_key("kind")
        });
        let is_k8s = !foreign
            && doc
                .as_object()
                .is_some_and(|m| m.keys().any(|k| k8s_keys.contains(&k.as_str())));
        if is_k8s {
            out.extend(k8s::check_document(code, doc));
        }
    }
    out
}

fn check_json(code: &str) -> Vec<Finding> {
    match serde_json::from_str::<Value>(code) {
        Ok(v) if v.get("defaultAction").is_some() => seccomp::check_value(code, &v),
        Ok(_) => Vec::new(),
        Err(e) => vec![
            Finding::new("json", code, "", format!("JSON does not parse: {e}"))
                .at_line(Some(e.line())),
        ],
    }
}

/// Inline code spans on a line: the text between matching backtick runs.
fn inline_spans(line: &str) -> Vec<&str> {
    let mut spans = Vec::new();
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        // `\`` is an escaped literal backtick in Markdown, not the start of a code span.
        if bytes[i] != b'`' || (i > 0 && bytes[i - 1] == b'\\') {
            i += 1;
            continue;
        }
        let run = bytes[i..].iter().take_while(|b| **b == b'`').count();
        let start = i + run;
        let mut j = start;
        let mut found = None;
        while j < bytes.len() {
            if bytes[j] == b'`' {
                let r = bytes[j..].iter().take_while(|b| **b == b'`').count();
                if r == run {
                    found = Some(j);
                    break;
                }
                j += r;
            } else {
                j += 1;
            }
        }
        match found {
            Some(end) => {
                spans.push(&line[start..end]);
                i = end + run;
            }
            None => i = start,
        }
    }
    spans
}

/// A span or line is a whole command when it starts with a tabled program and a sub-command
/// (`docker run ...`), with `sudo`, or with a tabled program and at least two arguments. Two-word
/// mentions in a sentence (`nc -e`) are not commands.
fn is_whole_command(text: &str) -> bool {
    let script = shell::parse(text);
    let Some(cmd) = script.commands.first() else {
        return false;
    };
    let words: Vec<&str> = shell::program_words(cmd)
        .iter()
        .map(|w| w.text.as_str())
        .collect();
    let Some(first) = words.first() else {
        return false;
    };
    if *first == "sudo" {
        return words.len() >= 2;
    }
    if cli::registry().is_program_with_subcommand(&words) {
        return true;
    }
    cli::known_program(first) && words.len() >= 3
}

fn check_prose_line(line: &str, line_no: usize) -> Vec<Finding> {
    let mut out = Vec::new();
    let spans = inline_spans(line);
    for span in &spans {
        let text = span.trim();
        let text = text.strip_prefix("$ ").unwrap_or(text);
        if is_whole_command(text) {
            // A span in a sentence may name a command without its operands (`docker exec -it`);
            // too few arguments is not an invented flag, so only a fenced block is held to arity.
            let findings = cli::check_script(text, 0)
                .into_iter()
                .filter(|f| !f.message.contains("needs at least"));
            out.extend(shift(findings.collect(), line_no - 1));
        }
    }
    if !spans.is_empty() {
        return out;
    }
    let t = line.trim();
    let cmd = match t.strip_prefix("$ ") {
        Some(c) => Some(c),
        None => {
            let words: Vec<&str> = t.split_whitespace().collect();
            let has_flag = words
                .iter()
                .skip(1)
                .any(|w| w.starts_with('-') && w.len() > 1);
            (has_flag && cli::registry().is_program_with_subcommand(&words)).then_some(t)
        }
    };
    if let Some(c) = cmd {
        out.extend(shift(cli::check_script(c, 0), line_no - 1));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fences_inside_blockquotes_and_list_items() {
        let doc = "> Run this:\n>\n> ```bash\n> docker run --no-pid x\n> ```\n\n- Or:\n  ```bash\n  docker run --securityOpt x\n  ```\n1. ```bash\n   docker run --netcat-opt x\n   ```\n> - ```sh\n>   docker run --no-pid y\n>   ```\n";
        let (blocks, _) = split(doc);
        let contents: Vec<&str> = blocks.iter().map(|b| b.content.as_str()).collect();
        assert_eq!(
            contents,
            vec![
                "docker run --no-pid x",
                "docker run --securityOpt x",
                "docker run --netcat-opt x",
                "docker run --no-pid y"
            ]
        );
        let f = check(doc);
        let tokens: Vec<(&str, Option<usize>)> =
            f.iter().map(|f| (f.token.as_str(), f.line)).collect();
        assert_eq!(
            tokens,
            vec![
                ("--no-pid", Some(4)),
                ("--securityOpt", Some(9)),
                ("--netcat-opt", Some(12)),
                ("--no-pid", Some(15))
            ]
        );
        // A quote that ends before its fence closes ends the block too.
        let (blocks, prose) = split("> ```bash\n> ls\nafter\n");
        assert_eq!(blocks[0].content, "ls");
        assert_eq!(prose, vec![(3, "after")]);
    }

    #[test]
    fn fences_including_misindented_ones() {
        let doc = "Text\n    ```bash\ndocker run --no-pid x\n```\nmore\n```yaml\n- rule: r\n  enabled: false\n```\n";
        let (blocks, prose) = split(doc);
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].info, "bash");
        assert_eq!(blocks[0].content, "docker run --no-pid x");
        assert_eq!(blocks[0].first_line, 3);
        assert_eq!(
            prose.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            vec![1, 5]
        );
        let f = check(doc);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].token, "--no-pid");
        assert_eq!(f[0].line, Some(3));
    }

    #[test]
    fn a_gcp_org_policy_is_not_taken_for_a_kubernetes_object() {
        let policy = "name: projects/p/policies/iam.allowedPolicyMemberDomains\nspec:\n  rules:\n  - values:\n      allowedValues: [C0abc123]\n";
        assert!(check_kind(Kind::Yaml, policy).is_empty());
        // A Kubernetes fragment with a wrong field is still checked.
        let bad = "spec:\n  containers:\n  - name: x\n    securityContext: {runAsNonRot: true}\n";
        assert!(!check_kind(Kind::Yaml, bad).is_empty());
    }

    #[test]
    fn indentation_is_stripped_by_characters() {
        assert_eq!(strip_indent("    abc", 2), "  abc");
        assert_eq!(strip_indent("\u{3000}abc", 2), "\u{3000}abc");
        // a wide space is not shell whitespace: no program is recognised, and nothing panics
        assert!(check("  ```\n\u{3000}docker run --no-pid x\n  ```\n").is_empty());
    }

    #[test]
    fn kinds_by_info_and_content() {
        assert_eq!(detect("yaml", "- rule: x\n"), Kind::FalcoYaml);
        assert_eq!(detect("", "apiVersion: v1\nkind: Pod\n"), Kind::K8sYaml);
        assert_eq!(
            detect("", "{\"defaultAction\": \"SCMP_ACT_ERRNO\"}"),
            Kind::SeccompJson
        );
        assert_eq!(detect("", "profile p {\n}\n"), Kind::AppArmor);
        assert_eq!(detect("", "# check\nkubectl get pods\n"), Kind::Shell);
        assert_eq!(detect("", "Some output text\n"), Kind::Text);
        assert_eq!(detect("bash", "$ docker ps\nCONTAINER ID\n"), Kind::Console);
    }

    #[test]
    fn console_output_lines_are_not_commands() {
        let f = check("```console\n$ docker ps --bogus\nCONTAINER ID   IMAGE --weird\n```\n");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].token, "--bogus");
        assert_eq!(f[0].line, Some(2));
    }

    #[test]
    fn escaped_backticks_and_operand_less_mentions_in_prose() {
        assert!(inline_spans(r"ran \`docker exec -it\` into it").is_empty());
        assert!(check_prose_line("someone ran `docker exec -it` into it", 1).is_empty());
        assert!(!check_prose_line("then `docker run --no-pid alpine`", 1).is_empty());
    }

    #[test]
    fn inline_spans_that_are_commands() {
        assert_eq!(
            inline_spans("use `a` and ``b ` c`` then"),
            vec!["a", "b ` c"]
        );
        let f =
            check("Run `docker run --no-pid nginx` or `ip link show`; avoid `nc -e` and `capAdd`.");
        assert_eq!(
            f.iter().map(|f| f.token.as_str()).collect::<Vec<_>>(),
            vec!["--no-pid"]
        );
        assert!(check("Use `--no-pid` flags.").is_empty());
    }

    #[test]
    fn command_lines_in_prose() {
        assert_eq!(check("$ kubectl get pods --bogus\n")[0].token, "--bogus");
        assert_eq!(check("docker run --no-pid nginx\n")[0].token, "--no-pid");
        assert!(check("aws iam allows you to manage users.\n").is_empty());
    }
}
