//! The envelopes Falco's lines arrive in when they are not read straight from Falco's stdout:
//! syslog and journal prefixes (RFC 3164, RFC 3339 timestamps, RFC 5424), `journalctl -o json`
//! records, `kubectl logs --timestamps` and `--prefix`, Docker json-file and CRI container log
//! lines, `docker compose logs` prefixes. Each layer is taken off in turn (outermost first);
//! what is left is a JSON alert or Falco's text output. The envelope's host and time fill in
//! only what the alert itself lacks.
//!
//! Only lines that did not parse as a JSON alert come here: the JSON fast path pays nothing.

use crate::error::IngestError;
use crate::plain::parse_falco_text;
use crate::reader::parse_json;
use chrono::{DateTime, Utc};
use fa_model::alert::parse_time;
use fa_model::Alert;
use serde_json::{Map, Value};

/// Envelopes nest (a journal record holding a container log line...), but not deeply.
const MAX_DEPTH: u8 = 4;

/// What the envelopes said about the line they carried. An inner envelope overrides an outer
/// one (it is closer to Falco); the alert's own fields override both.
#[derive(Debug, Default, Clone)]
struct Envelope {
    host: Option<String>,
    time: Option<DateTime<Utc>>,
}

impl Envelope {
    fn set_host(&mut self, host: &str) {
        if plausible_host(host) {
            self.host = Some(host.to_string());
        }
    }

    fn fill(&self, alert: &mut Alert) {
        if alert.hostname.is_none() {
            alert.hostname.clone_from(&self.host);
        }
        if alert.time.is_none() {
            alert.time = self.time;
        }
    }
}

/// One text line (not starting with `{`), without its newline: envelopes, then the alert.
/// `line` is the line's number, for JSON error positions.
pub(crate) fn parse_text_line(text: &str, line: u64) -> Result<Alert, IngestError> {
    parse_in(text, Envelope::default(), line, 0)
}

/// A JSON value that is not an alert may be an envelope: a Docker json-file record
/// (`{"log": ..., "stream": ..., "time": ...}`) or a `journalctl -o json` record (`MESSAGE`).
/// `None` when it is neither.
pub(crate) fn json_envelope(bytes: &[u8], line: u64) -> Option<Result<Alert, IngestError>> {
    json_envelope_in(bytes, Envelope::default(), line, 0)
}

fn json_envelope_in(
    bytes: &[u8],
    mut env: Envelope,
    line: u64,
    depth: u8,
) -> Option<Result<Alert, IngestError>> {
    if depth >= MAX_DEPTH {
        return None;
    }
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(bytes) else {
        return None;
    };
    let inner = if let Some(log) = docker_log(&map) {
        if let Some(t) = map.get("time").and_then(Value::as_str).and_then(parse_time) {
            env.time = Some(t);
        }
        log
    } else if let Some(Value::String(msg)) = map.get("MESSAGE") {
        if let Some(h) = map.get("_HOSTNAME").and_then(Value::as_str) {
            env.set_host(h);
        }
        // Microseconds since the epoch, as a decimal string.
        let realtime = map
            .get("__REALTIME_TIMESTAMP")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<i64>().ok())
            .and_then(DateTime::from_timestamp_micros);
        if realtime.is_some() {
            env.time = realtime;
        }
        msg.as_str()
    } else {
        return None;
    };
    // The container runtime keeps the line's newline (and a CRLF's `\r`) in `log`.
    let inner = inner.trim_end_matches(['\n', '\r']);
    Some(parse_in(inner, env, line, depth + 1))
}

/// Docker's json-file driver: `log` plus `stream` or `time`.
fn docker_log(map: &Map<String, Value>) -> Option<&str> {
    let log = map.get("log")?.as_str()?;
    (map.contains_key("stream") || map.contains_key("time")).then_some(log)
}

fn parse_in(text: &str, mut env: Envelope, line: u64, depth: u8) -> Result<Alert, IngestError> {
    let mut rest = text.trim();
    for _ in 0..MAX_DEPTH {
        match strip_layer(rest, &mut env) {
            Some(inner) => rest = inner.trim(),
            None => break,
        }
    }
    let mut alert = if rest.starts_with('{') {
        match parse_json(rest.as_bytes(), line, 0) {
            Ok(a) => a,
            Err(e) => match json_envelope_in(rest.as_bytes(), env.clone(), line, depth)
                .or_else(|| salvage_broken_json(rest.as_bytes()))
            {
                Some(r) => r?,
                None => return Err(e),
            },
        }
    } else {
        parse_falco_text(rest)?
    };
    env.fill(&mut alert);
    Ok(alert)
}

/// A JSON alert that is no longer valid JSON (a hand-edited or truncated value such as
/// `"time":""` next to `"evt.time":,`): Falco's `output` text still says what happened, so it is
/// read as Falco text, with `rule`, `priority` and `source` taken from their own keys when those
/// are intact. `None` when there is no readable `output` string.
pub(crate) fn salvage_broken_json(bytes: &[u8]) -> Option<Result<Alert, IngestError>> {
    let text = std::str::from_utf8(bytes).ok()?;
    // Junk after the object (`{...}}x`) is not a broken value: that line stays a dead letter.
    if !text.trim_end().ends_with('}') {
        return None;
    }
    let output = json_string_after(text, "\"output\"")?;
    // Falco wrote `<time>: <Priority> msg`; an emptied time leaves `: <Priority> msg`.
    let out = output.trim_start_matches(|c: char| c == ':' || c.is_whitespace());
    let mut alert = match parse_falco_text(out) {
        Ok(a) => a,
        Err(e) => return Some(Err(e)),
    };
    if let Some(rule) = json_string_after(text, "\"rule\"") {
        alert.rule = fa_model::RuleName::from(rule.as_str());
    }
    if alert.priority.is_none() {
        alert.priority = json_string_after(text, "\"priority\"").and_then(|p| p.parse().ok());
    }
    if alert.source.is_none() {
        alert.source = json_string_after(text, "\"source\"").map(|s| fa_model::Source::parse(&s));
    }
    Some(Ok(alert))
}

/// The JSON string value of the first `key` (quoted) at the top level of a broken object,
/// if it reads as a complete JSON string.
fn json_string_after(text: &str, key: &str) -> Option<String> {
    let at = text.find(key)? + key.len();
    let rest = text[at..].trim_start().strip_prefix(':')?.trim_start();
    let mut it = serde_json::Deserializer::from_str(rest).into_iter::<String>();
    it.next()?.ok()
}

/// Take one envelope layer off the front of `s`, if it has one.
fn strip_layer<'a>(s: &'a str, env: &mut Envelope) -> Option<&'a str> {
    match s.as_bytes().first()? {
        // `# {...}`: an alert pasted as a comment into a shell snippet or a config file.
        b'#' => s
            .trim_start_matches('#')
            .trim_start()
            .starts_with('{')
            .then(|| s.trim_start_matches('#').trim_start()),
        b'<' => strip_syslog_pri(s, env),
        b'[' => strip_kubectl_prefix(s),
        b'0'..=b'9' => strip_timestamp_led(s, env),
        b'A'..=b'Z' => strip_rfc3164(s, env)
            .or_else(|| strip_compose(s))
            .or_else(|| strip_program_tag(s)),
        _ => strip_compose(s).or_else(|| strip_program_tag(s)),
    }
}

/// `<14>1 2024-05-07T18:54:19.341Z host falco 812 - - msg` (RFC 5424) or `<14>` in front of
/// an RFC 3164 line.
fn strip_syslog_pri<'a>(s: &'a str, env: &mut Envelope) -> Option<&'a str> {
    let close = s.find('>')?;
    let pri = &s[1..close];
    if pri.is_empty() || pri.len() > 3 || !pri.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let rest = &s[close + 1..];
    let Some(v5424) = rest.strip_prefix("1 ") else {
        return Some(rest);
    };
    // TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]; `-` is nil.
    let mut parts = v5424.splitn(6, ' ');
    let (ts, host, _app, _proc, _msgid, tail) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next().unwrap_or(""),
    );
    if let Some(t) = parse_time(ts) {
        env.time = Some(t);
    }
    if host != "-" {
        env.set_host(host);
    }
    let msg = skip_structured_data(tail)?;
    Some(msg.strip_prefix('\u{feff}').unwrap_or(msg))
}

/// RFC 5424 STRUCTURED-DATA: `-` or one or more `[id k="v" ...]` elements (values may hold
/// `\]` and `\"`). Returns the message after it.
fn skip_structured_data(s: &str) -> Option<&str> {
    if let Some(rest) = s.strip_prefix('-') {
        return Some(rest.strip_prefix(' ').unwrap_or(rest));
    }
    let b = s.as_bytes();
    let mut i = 0;
    while b.get(i) == Some(&b'[') {
        let (mut in_quote, mut esc) = (false, false);
        i += 1;
        loop {
            let c = *b.get(i)?;
            i += 1;
            match c {
                _ if esc => esc = false,
                b'\\' => esc = true,
                b'"' => in_quote = !in_quote,
                b']' if !in_quote => break,
                _ => {}
            }
        }
    }
    if i == 0 {
        return None;
    }
    let rest = &s[i..];
    Some(rest.strip_prefix(' ').unwrap_or(rest))
}

/// `kubectl logs --prefix`: `[pod/falco-abc/falco] <line>`.
fn strip_kubectl_prefix(s: &str) -> Option<&str> {
    let (inner, rest) = s[1..].split_once("] ")?;
    let ok = inner.contains('/')
        && inner
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-._:".contains(&b));
    ok.then_some(rest)
}

/// A line that starts with an RFC 3339 timestamp followed by a space:
/// - CRI (containerd, CRI-O): `<time> stdout F <line>`;
/// - syslog with an RFC 3339 time (rsyslog, `journalctl -o short-iso`): `<time> host tag[pid]: <line>`;
/// - `kubectl logs --timestamps`, `docker logs -t`: `<time> <line>`.
///
/// Falco's own ISO 8601 text output (`<time>: Warning ...`) has a colon after the time and is
/// left alone.
fn strip_timestamp_led<'a>(s: &'a str, env: &mut Envelope) -> Option<&'a str> {
    let (tok, rest) = s.split_once(' ')?;
    let time = parse_time(tok)?;
    env.time = Some(time);
    for stream in ["stdout ", "stderr "] {
        if let Some(r) = rest.strip_prefix(stream) {
            // `F` a full line, `P` a partial one (a long line split by the runtime).
            if let Some(line) = r.strip_prefix("F ").or_else(|| r.strip_prefix("P ")) {
                return Some(line);
            }
        }
    }
    if let Some((host, after)) = rest.split_once(' ') {
        if plausible_host(host) {
            if let Some(msg) = strip_tag(after) {
                env.set_host(host);
                return Some(msg);
            }
        }
    }
    Some(rest)
}

/// RFC 3164 / `journalctl -o short`: `Dec  1 08:15:02 worker-3 falco[812]: <line>` (day space-
/// or zero-padded, seconds optionally with a fraction as in `-o short-precise`).
fn strip_rfc3164<'a>(s: &'a str, env: &mut Envelope) -> Option<&'a str> {
    let b = s.as_bytes();
    // `s.get(..3)`: the first three bytes may end inside a multi-byte character.
    if b.len() < 16 || !s.get(..3).is_some_and(is_month) || b[3] != b' ' {
        return None;
    }
    let mut i = 4;
    if b[i] == b' ' {
        i += 1;
    }
    let day_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    if !(1..=2).contains(&(i - day_start)) || b.get(i) != Some(&b' ') {
        return None;
    }
    let (clock, rest) = s[i + 1..].split_once(' ')?;
    if !crate::plain::looks_like_time_of_day(clock) {
        return None;
    }
    let (host, after) = rest.split_once(' ')?;
    let msg = strip_tag(after)?;
    env.set_host(host);
    Some(msg)
}

/// `docker compose logs`: `falco_1            | <line>` (v1) or `falco-1  | <line>` (v2).
fn strip_compose(s: &str) -> Option<&str> {
    let name_end = s.find(' ')?;
    let name = &s[..name_end];
    if name.is_empty() || !name.bytes().all(is_tag_byte) {
        return None;
    }
    s[name_end..].trim_start_matches(' ').strip_prefix("| ")
}

/// A program tag without time or host, as some collectors keep it: `falco: <line>` or
/// `falco[812]: <line>`. Only Falco's own name, so a message's `Something: ...` stays whole.
fn strip_program_tag(s: &str) -> Option<&str> {
    let b = s.as_bytes();
    if b.len() < 6 || !b[..5].eq_ignore_ascii_case(b"falco") {
        return None;
    }
    strip_tag(s)
}

/// `tag[pid]: rest` or `tag: rest`, where tag is a program name.
fn strip_tag(s: &str) -> Option<&str> {
    let (tag, rest) = s.split_once(": ")?;
    let name = match tag.strip_suffix(']') {
        Some(t) => {
            let (name, pid) = t.split_once('[')?;
            if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            name
        }
        None => tag,
    };
    (!name.is_empty() && name.bytes().all(is_tag_byte)).then_some(rest)
}

fn is_tag_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"_.-/".contains(&b)
}

/// A host name or address as envelopes write it (no spaces, no `:` unless an IPv6 address).
fn plausible_host(h: &str) -> bool {
    !h.is_empty()
        && h.len() <= 253
        && h != "-"
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
}

pub(crate) fn is_month(s: &str) -> bool {
    matches!(
        s,
        "Jan"
            | "Feb"
            | "Mar"
            | "Apr"
            | "May"
            | "Jun"
            | "Jul"
            | "Aug"
            | "Sep"
            | "Oct"
            | "Nov"
            | "Dec"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structured_data_is_skipped_with_quotes_and_escapes() {
        assert_eq!(skip_structured_data("- msg"), Some("msg"));
        assert_eq!(
            skip_structured_data(r#"[a k="x] \"y\" \]"][b@1 z="1"] msg"#),
            Some("msg")
        );
        assert_eq!(skip_structured_data("[unclosed k=\"v\" msg"), None);
    }

    #[test]
    fn tags_and_hosts() {
        assert_eq!(strip_tag("falco[812]: x"), Some("x"));
        assert_eq!(strip_tag("falco: x"), Some("x"));
        assert_eq!(strip_tag("Falco internal: x"), None);
        assert_eq!(strip_tag("falco[]: x"), None);
        assert!(!plausible_host("08:15:02.1:"));
        assert!(plausible_host("ip-10-0-1-2.ec2.internal"));
    }
}
