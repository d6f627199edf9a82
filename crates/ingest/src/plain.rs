//! Falco's plain-text alert lines (`json_output: false`):
//! `2024-05-07T18:54:19.341081180+0000: Warning Sensitive file opened ... (file=/etc/shadow ...)`
//! or, with `time_format_iso_8601: false`, `23:50:54.719348051: Error ...`.
//!
//! The rule name is not in the line; it stays empty for a later stage to recover from the
//! message. The `key=value` pairs of the message become `output_fields` under Falco's field
//! names, through the table in `data/plain_fields.txt`.

use crate::error::{IngestError, NonAlert};
use fa_model::alert::parse_time;
use fa_model::{Alert, FieldMap, InputFormat, Priority};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::OnceLock;

const TABLE_SRC: &str = include_str!("../data/plain_fields.txt");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Int,
}

#[derive(Debug, Default)]
struct FieldTable {
    exact: HashMap<&'static str, (&'static str, Kind)>,
    /// (key prefix before `[*]`, field prefix before `[*]`, kind)
    indexed: Vec<(&'static str, &'static str, Kind)>,
}

/// One table line as (key, field, kind), or `None` for comments, blanks and bad lines.
fn parse_table_line(line: &'static str) -> Option<(&'static str, &'static str, Kind)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut cols = line.split_whitespace();
    let key = cols.next()?;
    let field = cols.next()?;
    let kind = match cols.next() {
        None => Kind::Text,
        Some("int") => Kind::Int,
        Some(_) => return None,
    };
    if cols.next().is_some() {
        return None;
    }
    Some((key, field, kind))
}

fn table() -> &'static FieldTable {
    static TABLE: OnceLock<FieldTable> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = FieldTable::default();
        for (key, field, kind) in TABLE_SRC.lines().filter_map(parse_table_line) {
            match (key.strip_suffix("[*]"), field.strip_suffix("[*]")) {
                (Some(k), Some(f)) => t.indexed.push((k, f, kind)),
                _ => {
                    t.exact.insert(key, (field, kind));
                }
            }
        }
        t
    })
}

/// The Falco field a plain-text key stands for, with its JSON kind.
fn map_key(key: &str) -> (String, Kind) {
    let t = table();
    if let Some((field, kind)) = t.exact.get(key) {
        return ((*field).to_string(), *kind);
    }
    for (kp, fp, kind) in &t.indexed {
        if let Some(rest) = key.strip_prefix(kp) {
            if rest.starts_with('[') && rest.ends_with(']') {
                return (format!("{fp}{rest}"), *kind);
            }
        }
    }
    (key.to_string(), Kind::Text)
}

/// Read one plain-text Falco alert line, in any of the envelopes it may come in (syslog and
/// journal prefixes, `kubectl logs --timestamps`/`--prefix`, CRI and Docker container logs,
/// `docker compose logs`; see the crate docs).
///
/// Falco's own text is `<time>: <Priority> <message>` where time is RFC 3339 (Falco writes
/// `+0000`) or `HH:MM:SS[.fraction]` (optionally with a zone). A full timestamp goes to
/// `time`; a time of day alone is kept as text in `extra["time_text"]`. `output` is Falco's
/// text without the envelope; `rule` stays empty for a later stage to recover.
///
/// Pasted alerts often lose their start: `<Priority> <message>` is read with an unknown time,
/// and a bare `<message>` with both time and priority unknown, but only when it carries
/// Falco's `key=value` fields (otherwise any line of prose would pass for an alert).
pub fn parse_plain_line(line: &str) -> Result<Alert, IngestError> {
    crate::shapes::parse_text_line(line, 1)
}

/// Falco's text output, envelopes already removed.
pub(crate) fn parse_falco_text(text: &str) -> Result<Alert, IngestError> {
    let text = text.trim();
    if let Some(rest) = strip_falco_log_time(text) {
        // Falco's own log line. Falco writes some of them without a newline, so an alert may
        // follow on the same line: read it when there is one.
        return match embedded_alert(rest) {
            Some(at) => parse_falco_text(&rest[at..]),
            None => Err(IngestError::NotAnAlert(NonAlert::FalcoLog)),
        };
    }
    if is_statistics(text) {
        return Err(IngestError::NotAnAlert(NonAlert::Statistics));
    }
    let mut alert = Alert {
        format: InputFormat::PlainText,
        ..Alert::default()
    };
    let message = match text.split_once(": ") {
        Some((head, rest)) if looks_like_time_of_day(head) => {
            alert
                .extra
                .insert("time_text".into(), Value::String(head.to_string()));
            alert.priority = Some(priority_word(rest)?);
            alert.output = Some(text.to_string());
            rest.split_once(' ').map_or("", |(_, m)| m)
        }
        Some((head, rest))
            if head.as_bytes().first().is_some_and(u8::is_ascii_digit) && !head.contains(' ') =>
        {
            alert.time = Some(parse_time(head).ok_or_else(|| {
                IngestError::UnrecognisedLine(format!("`{}` is not a timestamp", shown(head)))
            })?);
            if !head.contains('.') && priority_word(rest).is_err() {
                // With `time_format_iso_8601`, Falco's log lines carry a whole-second time
                // (alerts carry nanoseconds): `2020-06-01T13:16:08+0000: Loading rules ...`.
                return Err(IngestError::NotAnAlert(NonAlert::FalcoLog));
            }
            alert.priority = Some(priority_word(rest)?);
            alert.output = Some(text.to_string());
            rest.split_once(' ').map_or("", |(_, m)| m)
        }
        _ => {
            // No time: `<Priority> <message>` or a bare message.
            let (word, rest) = text.split_once(' ').unwrap_or((text, ""));
            let (priority, message) = match word.parse::<Priority>() {
                Ok(p) if !rest.is_empty() => (Some(p), rest.trim_start()),
                _ => (None, text),
            };
            alert.priority = priority;
            alert.output = Some(message.to_string());
            message
        }
    };
    alert.output_fields = extract_fields(message);
    // A rule's output starts with a word; a line starting with `#`, `{` or `$` is something
    // else that happens to hold `k=v` text.
    let starts_with_word = message.chars().next().is_some_and(char::is_alphabetic);
    if alert.priority.is_none() && (alert.output_fields.is_empty() || !starts_with_word) {
        return Err(IngestError::UnrecognisedLine(
            "no `<time>: <Priority>` prefix and no `key=value` fields".into(),
        ));
    }
    Ok(alert)
}

fn priority_word(rest: &str) -> Result<Priority, IngestError> {
    let word = rest.split_once(' ').map_or(rest, |(w, _)| w);
    word.parse().map_err(|_| {
        IngestError::UnrecognisedLine(format!("`{}` is not a Falco priority", shown(word)))
    })
}

/// Falco's log time `Tue May 21 12:55:58 2019: ` (strftime `%a %b %d %H:%M:%S %Y`; older
/// versions used ctime, whose day is space-padded). Returns the text after it.
fn strip_falco_log_time(s: &str) -> Option<&str> {
    let (head, rest) = s.split_once(": ")?;
    let mut parts = head.split_whitespace();
    let (wday, month, day, clock, year) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    let ok = parts.next().is_none()
        && matches!(wday, "Mon" | "Tue" | "Wed" | "Thu" | "Fri" | "Sat" | "Sun")
        && crate::shapes::is_month(month)
        && (1..=2).contains(&day.len())
        && day.bytes().all(|b| b.is_ascii_digit())
        && looks_like_time_of_day(clock)
        && year.len() == 4
        && year.bytes().all(|b| b.is_ascii_digit());
    ok.then_some(rest)
}

/// Where `HH:MM:SS.fraction: <Priority> ` starts inside a line, if anywhere.
fn embedded_alert(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    (0..b.len().saturating_sub(10)).find(|&i| {
        (i == 0 || !b[i - 1].is_ascii_digit())
            && b[i].is_ascii_digit()
            && b[i + 2] == b':'
            && s.get(i..)
                .and_then(|t| t.split_once(": "))
                .is_some_and(|(head, rest)| {
                    head.contains('.')
                        && looks_like_time_of_day(head)
                        && priority_word(rest).is_ok()
                })
    })
}

/// The statistics Falco prints when it stops (falcosecurity/falco
/// userspace/engine/stats_manager.cpp `stats_manager::format`, userspace/falco/event_drops.cpp):
/// the headings in data/falco_statistics.txt and their indented `name: count` lines.
fn is_statistics(text: &str) -> bool {
    static HEADINGS: OnceLock<Vec<&'static str>> = OnceLock::new();
    let headings = HEADINGS.get_or_init(|| {
        include_str!("../data/falco_statistics.txt")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    });
    if headings.iter().any(|h| text.starts_with(h)) {
        return true;
    }
    // `WARNING: 5`, `Terminal shell in container: 3`, `- event drop detected: 0 occurrences`.
    let Some((name, count)) = text.rsplit_once(": ") else {
        return false;
    };
    let count = count.trim();
    let count = count.strip_suffix(" occurrences").unwrap_or(count);
    !name.is_empty()
        && !name.contains('=')
        && !count.is_empty()
        && count.bytes().all(|b| b.is_ascii_digit())
}

/// Attacker-controlled text quoted in an error message: short, and with control characters
/// escaped so it cannot drive a terminal.
fn shown(s: &str) -> String {
    let mut out: String = s.chars().take(40).flat_map(char::escape_debug).collect();
    if s.chars().count() > 40 {
        out.push('…');
    }
    out
}

/// `HH:MM:SS` with an optional fraction of up to nine digits and an optional zone (`Z`,
/// `+0000`, `+00:00`: Falco's ISO 8601 time without its date).
pub(crate) fn looks_like_time_of_day(s: &str) -> bool {
    let s = strip_zone(s);
    let b = s.as_bytes();
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return false;
    }
    let num = |i: usize| -> Option<u32> {
        let (x, y) = (b[i], b[i + 1]);
        (x.is_ascii_digit() && y.is_ascii_digit())
            .then(|| u32::from(x - b'0') * 10 + u32::from(y - b'0'))
    };
    let (Some(h), Some(m), Some(sec)) = (num(0), num(3), num(6)) else {
        return false;
    };
    if h > 23 || m > 59 || sec > 60 {
        return false;
    }
    match &b[8..] {
        [] => true,
        [b'.', frac @ ..] => {
            !frac.is_empty() && frac.len() <= 9 && frac.iter().all(u8::is_ascii_digit)
        }
        _ => false,
    }
}

fn strip_zone(s: &str) -> &str {
    if let Some(t) = s.strip_suffix('Z') {
        return t;
    }
    let b = s.as_bytes();
    for len in [5, 6] {
        // `is_char_boundary`: the text may end in any character, not only ASCII digits.
        if b.len() > len + 8 && s.is_char_boundary(s.len() - len) {
            let (head, zone) = s.split_at(s.len() - len);
            let z = zone.as_bytes();
            let digits = z[1..].iter().filter(|c| c.is_ascii_digit()).count();
            if matches!(z[0], b'+' | b'-') && digits == 4 && (len == 5 || z[3] == b':') {
                return head;
            }
        }
    }
    s
}

/// A key at `s[i..]`: `[a-z_][A-Za-z0-9_.]*` with an optional `[index]`, followed by `=`.
/// Returns the index of the `=`.
fn key_at(s: &[u8], i: usize) -> Option<usize> {
    let first = *s.get(i)?;
    if !(first.is_ascii_lowercase() || first == b'_') {
        return None;
    }
    let mut j = i + 1;
    while j < s.len() && (s[j].is_ascii_alphanumeric() || s[j] == b'_' || s[j] == b'.') {
        j += 1;
    }
    if s.get(j) == Some(&b'[') {
        let close = s[j..].iter().position(|&c| c == b']')?;
        let inner = &s[j + 1..j + close];
        if inner.is_empty()
            || !inner
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b'_')
        {
            return None;
        }
        j += close + 1;
    }
    (s.get(j) == Some(&b'=')).then_some(j)
}

/// Where the `key=value` pairs start: after the first ` | ` or `(` that is followed by a key,
/// else at the first key after a space. The bool says the pairs sit inside `( ... )`.
fn pairs_start(msg: &str) -> Option<(usize, bool)> {
    let b = msg.as_bytes();
    for i in 0..b.len() {
        if b[i] == b'(' && key_at(b, i + 1).is_some() {
            return Some((i + 1, true));
        }
        if b[i..].starts_with(b" | ") && key_at(b, i + 3).is_some() {
            return Some((i + 3, false));
        }
    }
    // A message may be nothing but pairs (`Warning user=vagrant process=touch ...`).
    (0..b.len())
        .find(|&i| (i == 0 || b[i - 1] == b' ') && key_at(b, i).is_some())
        .map(|i| (i, false))
}

/// The `key=value` pairs of a Falco message as output fields. A value runs until the next
/// ` key=`, so values may contain spaces (`command=sh -c ls -l terminal=0`).
pub(crate) fn extract_fields(msg: &str) -> FieldMap {
    let mut fields = FieldMap::new();
    let Some((start, mut in_group)) = pairs_start(msg) else {
        return fields;
    };
    let b = msg.as_bytes();
    // (key start, `=` position) of every key from `start` on.
    let mut keys = Vec::new();
    let mut i = start;
    while i < b.len() {
        let at_boundary = i == start || b[i - 1] == b' ';
        match at_boundary.then(|| key_at(b, i)).flatten() {
            Some(eq) => {
                keys.push((i, eq));
                i = eq + 1;
            }
            None => i += 1,
        }
    }
    for (n, &(k, eq)) in keys.iter().enumerate() {
        let next = keys.get(n + 1).map(|&(nk, _)| nk);
        let mut value = &msg[eq + 1..next.unwrap_or(msg.len())];
        if in_group {
            // `(k=v ... k=v)`: the group's closing parenthesis ends the value; what follows
            // it is free text or more (appended) pairs.
            if let Some(close) = unbalanced_close(value) {
                value = &value[..close];
                in_group = false;
            }
        }
        let mut value = value.trim();
        if next.is_some() {
            // `(user=alice, ip=10.0.0.1)`: a comma separating pairs is not part of the value.
            value = value.strip_suffix(',').unwrap_or(value).trim_end();
        }
        let key = &msg[k..eq];
        let (field, kind) = if key == "container" {
            let (field, id) = container_key(value);
            if let Some(id) = id {
                value = id;
            }
            (field, Kind::Text)
        } else {
            map_key(key)
        };
        // The first occurrence of a key wins.
        if !fields.contains_key(&field) {
            fields.insert(field, typed(value, kind));
        }
    }
    split_image_tag(&mut fields);
    fields
}

/// Text outputs print `image=%container.image` (`alpine:latest`) under the key that stands for
/// the repository: keep the repository (what rules and allow-lists compare) and move the tag to
/// `container.image.tag` unless the alert prints that too.
fn split_image_tag(fields: &mut FieldMap) {
    let Some(Value::String(image)) = fields.get("container.image.repository") else {
        return;
    };
    let (repo, tag) = match fa_model::fields::split_image(image) {
        (r, _) if r == image => return,
        (r, t) => (r.to_string(), t.unwrap_or("").to_string()),
    };
    if !fields.contains_key("container.image") {
        let full = Value::String(image.clone());
        fields.insert("container.image".into(), full);
    }
    if !fields.contains_key("container.image.tag") && !tag.is_empty() {
        fields.insert("container.image.tag".into(), Value::String(tag));
    }
    fields.insert("container.image.repository".into(), Value::String(repo));
}

/// `container=` is Falco's `%container.info` (`container=<id>` since 2017) or, in 2016's
/// rules, `container=%container.name (id=%container.id)`: an id is 12 hex digits or `host`.
/// Returns the field and, for an id, the id alone (`host (id=host)` -> `host`).
fn container_key(value: &str) -> (String, Option<&str>) {
    let v = value.split_whitespace().next().unwrap_or("");
    let is_id = v == "host" || (v.len() == 12 && v.bytes().all(|b| b.is_ascii_hexdigit()));
    if is_id {
        ("container.id".to_string(), Some(v))
    } else {
        ("container.name".to_string(), None)
    }
}

/// Byte index of the first `)` that closes more than the value opened.
fn unbalanced_close(value: &str) -> Option<usize> {
    let mut depth = 0i32;
    for (i, c) in value.bytes().enumerate() {
        match c {
            b'(' => depth += 1,
            b')' if depth == 0 => return Some(i),
            b')' => depth -= 1,
            _ => {}
        }
    }
    None
}

fn typed(value: &str, kind: Kind) -> Value {
    if value == "<NA>" {
        return Value::Null;
    }
    if kind == Kind::Int {
        if let Ok(n) = value.parse::<i64>() {
            return Value::from(n);
        }
    }
    Value::String(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_table_line_is_valid_and_keys_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for line in TABLE_SRC.lines() {
            let t = line.trim();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let (key, field, _) =
                parse_table_line(line).unwrap_or_else(|| panic!("bad line `{line}`"));
            assert!(seen.insert(key), "duplicate key {key}");
            assert!(field.contains('.'), "`{field}` is not a Falco field name");
        }
        assert!(seen.len() > 60);
    }

    #[test]
    fn maps_keys_through_the_table() {
        assert_eq!(map_key("user").0, "user.name");
        assert_eq!(map_key("gparent").0, "proc.aname[2]");
        assert_eq!(map_key("aname[6]").0, "proc.aname[6]");
        assert_eq!(map_key("k8s.pod").0, "k8s.pod.name");
        assert_eq!(map_key("terminal"), ("proc.tty".to_string(), Kind::Int));
        assert_eq!(map_key("my_custom").0, "my_custom");
    }

    #[test]
    fn values_run_to_the_next_key_and_na_is_null() {
        let f = extract_fields(
            "A shell was spawned | evt_type=execve user=root process=sh command=sh -lc echo \"x\" terminal=0 exe_flags=EXE_WRITABLE|EXE_LOWER_LAYER k8s_pod_name=<NA>",
        );
        assert_eq!(f["proc.cmdline"], json!("sh -lc echo \"x\""));
        assert_eq!(f["proc.tty"], json!(0));
        assert_eq!(f["evt.arg.flags"], json!("EXE_WRITABLE|EXE_LOWER_LAYER"));
        assert_eq!(f["k8s.pod.name"], Value::Null);
        assert_eq!(f["user.name"], json!("root"));
    }

    #[test]
    fn an_image_with_a_tag_keeps_the_repository_under_its_key() {
        let f = extract_fields(
            "Privileged container started (user=root image=k8s.gcr.io/pause:3.6 container=b2dc3b248703)",
        );
        assert_eq!(f["container.image.repository"], json!("k8s.gcr.io/pause"));
        assert_eq!(f["container.image.tag"], json!("3.6"));
        assert_eq!(f["container.image"], json!("k8s.gcr.io/pause:3.6"));
        // A registry's port is not a tag; a digest is dropped from the repository.
        let f = extract_fields("x (image=localhost:5000/team/app@sha256:abcd user=root)");
        assert_eq!(
            f["container.image.repository"],
            json!("localhost:5000/team/app")
        );
        assert!(!f.contains_key("container.image.tag"));
        let f = extract_fields("x (image=ubuntu user=root)");
        assert_eq!(f["container.image.repository"], json!("ubuntu"));
        // Old rules printed `cmdline=%proc.cmdline` and `cur_uid=%user.uid`.
        let f = extract_fields(
            "Shell spawned (user=root shell=sh parent=logrotate cmdline=sh -c x cur_uid=0)",
        );
        assert_eq!(f["proc.cmdline"], json!("sh -c x"));
        assert_eq!(f["user.uid"], json!(0));
    }

    #[test]
    fn a_time_ending_inside_a_multibyte_character_is_no_time() {
        // Found by the fuzz target: the zone check split the text inside a U+FEFF.
        assert!(!looks_like_time_of_day(
            "ot{\"hostnatupet\":\"Falco int\u{feff}ernal"
        ));
        assert!(!looks_like_time_of_day("12:00:00.1234\u{feff}0000"));
    }

    #[test]
    fn container_is_an_id_or_a_name_by_its_value() {
        // Falco 0.2x appends `%container.info`: `container=<12-hex id>` (or `host`).
        let f = extract_fields(
            "Shell history had been deleted or renamed (user=root command=bash k8s.ns=falco k8s.pod=falco-ds-v6jtd container=b89fb893ba70) k8s.ns=falco",
        );
        assert_eq!(f["container.id"], json!("b89fb893ba70"));
        let f = extract_fields("Write (user=root container=host (id=host))");
        assert_eq!(f["container.id"], json!("host"));
        // 2016's rules: `container=%container.name (id=%container.id)`.
        let f = extract_fields("Write (user=root container=k8s_web.1 (id=4f63870599d0))");
        assert_eq!(f["container.name"], json!("k8s_web.1 (id=4f63870599d0)"));
        assert!(!f.contains_key("container.id"));
    }

    #[test]
    fn parenthesised_pairs_stop_at_the_group_end_and_keep_appended_pairs() {
        let f = extract_fields(
            "Possible Cryptominer Activity (container=lab9 proc=nc -z 127.0.0.1 3333 target=<NA>:3333) container_id=5e75ca991d02 k8s_ns_name=<NA>",
        );
        assert_eq!(f["target"], json!("<NA>:3333"));
        assert_eq!(f["proc"], json!("nc -z 127.0.0.1 3333"));
        assert_eq!(f["container.id"], json!("5e75ca991d02"));
        assert_eq!(f["k8s.ns.name"], Value::Null);
        let f = extract_fields("x (command=sh -c (ls) user=root)");
        assert_eq!(f["proc.cmdline"], json!("sh -c (ls)"));
        assert_eq!(f["user.name"], json!("root"));
    }

    #[test]
    fn empty_values_commas_and_no_pairs() {
        let f = extract_fields("x (proc_cwd= evt_res=SUCCESS container_id= user=a, ip=10.0.0.1)");
        assert_eq!(f["proc.cwd"], json!(""));
        assert_eq!(f["evt.res"], json!("SUCCESS"));
        assert_eq!(f["container.id"], json!(""));
        assert_eq!(f["user.name"], json!("a"));
        assert_eq!(f["ip"], json!("10.0.0.1"));
        assert!(extract_fields("Nothing to see here (really)").is_empty());
        // Upper-case words with `=` (environment variables in a command) are not keys.
        let f = extract_fields("x | command=env FOO=bar sh user=root");
        assert_eq!(f["proc.cmdline"], json!("env FOO=bar sh"));
    }

    #[test]
    fn time_of_day_forms() {
        assert!(looks_like_time_of_day("23:50:54.719348051"));
        assert!(looks_like_time_of_day("10:18:28"));
        assert!(!looks_like_time_of_day("24:00:00"));
        assert!(!looks_like_time_of_day("10:18:28."));
        assert!(!looks_like_time_of_day("10:18:28.1234567890"));
        assert!(!looks_like_time_of_day("2024-05-07"));
    }

    #[test]
    fn rejects_lines_that_are_not_alerts() {
        for line in [
            "Thu May  7 18:54:10 2024: Falco version: 0.37.1",
            "Events detected: 12",
            "   Terminal shell in container: 3",
            "   - event drop detected: 0 occurrences",
        ] {
            let e = parse_plain_line(line).unwrap_err();
            assert!(matches!(e, IngestError::NotAnAlert(_)), "{line}: {e}");
        }
        for line in [
            "2024-05-07T18:54:19.1+0000: Loud something",
            "hello world",
            "2024-99-99T00:00:00+0000: Warning x",
        ] {
            let e = parse_plain_line(line).unwrap_err();
            assert!(matches!(e, IngestError::UnrecognisedLine(_)), "{line}: {e}");
        }
        let e = parse_plain_line("10:00:00: \u{1b}[31mEvil x").unwrap_err();
        assert!(!e.to_string().contains('\u{1b}'), "{e}");
    }
}
