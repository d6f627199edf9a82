//! Redaction: identifying values and secrets in the prompt become stable placeholders
//! (`[HOST_1]`, `[SECRET_2]`) before anything is sent, and the placeholders in the answer are
//! mapped back.
//!
//! The whole prompt text is redacted at once, not the alert alone: the report's summary, the
//! verdict's reasons and the investigation commands all repeat alert values. Two sources find
//! what to replace: the alert's own values for identifying fields (`data/redaction.toml`
//! classes), and detectors that work on any text (secret patterns, IP addresses, high-entropy
//! tokens). Overlapping finds are merged so that no part of a value is left over.

use crate::args::RedactionLevel;
use fa_model::Alert;
use regex::Regex;
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::LazyLock;

const RULES_TOML: &str = include_str!("../data/redaction.toml");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Level {
    #[default]
    Standard,
    Strict,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    class: Vec<ClassEntry>,
    pattern: Vec<PatternEntry>,
    entropy: EntropyEntry,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClassEntry {
    placeholder: String,
    level: Level,
    fields: Vec<String>,
    #[serde(default)]
    keep: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatternEntry {
    name: String,
    #[serde(default = "secret_placeholder")]
    placeholder: String,
    #[serde(default)]
    level: Level,
    #[serde(default)]
    keep: Vec<String>,
    regex: String,
}

fn secret_placeholder() -> String {
    "SECRET".to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntropyEntry {
    min_len: usize,
    min_bits: f64,
    min_hex_len: usize,
}

struct Pattern {
    entry: PatternEntry,
    re: Regex,
}

struct Rules {
    classes: Vec<ClassEntry>,
    patterns: Vec<Pattern>,
    entropy: EntropyEntry,
    ip_keep: Vec<String>,
    ipv4: Regex,
    ipv6: Regex,
    token: Regex,
    placeholder: Regex,
}

fn load_rules() -> Result<Rules, String> {
    let file: RulesFile =
        toml::from_str(RULES_TOML).map_err(|e| format!("redaction rules: {e}"))?;
    let mut patterns = Vec::new();
    for p in file.pattern {
        let re =
            Regex::new(&p.regex).map_err(|e| format!("redaction pattern `{}`: {e}", p.name))?;
        patterns.push(Pattern { entry: p, re });
    }
    let mut names: Vec<String> = file.class.iter().map(|c| c.placeholder.clone()).collect();
    names.extend(patterns.iter().map(|p| p.entry.placeholder.clone()));
    names.push("SECRET".into());
    names.push("ID".into());
    names.sort();
    names.dedup();
    if let Some(bad) = names
        .iter()
        .find(|n| n.is_empty() || !n.bytes().all(|b| b.is_ascii_uppercase()))
    {
        return Err(format!(
            "redaction placeholder `{bad}` must be upper-case letters"
        ));
    }
    let ip_keep = file
        .class
        .iter()
        .filter(|c| c.placeholder == "IP")
        .flat_map(|c| c.keep.clone())
        .collect();
    let re = |s: &str| Regex::new(s).map_err(|e| e.to_string());
    Ok(Rules {
        ipv4: re(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")?,
        ipv6: re(r"[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*")?,
        token: re(r"[A-Za-z0-9+/_-]+={0,2}")?,
        placeholder: re(&format!(r"\[({})_([0-9]{{1,6}})\]", names.join("|")))?,
        classes: file.class,
        patterns,
        entropy: file.entropy,
        ip_keep,
    })
}

static RULES: LazyLock<Result<Rules, String>> = LazyLock::new(load_rules);

fn rules() -> Result<&'static Rules, RedactError> {
    RULES.as_ref().map_err(|e| RedactError(e.clone()))
}

/// The embedded redaction rules could not be loaded; nothing may be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RedactError(String);

/// Knows which values of one alert to hide, at one level.
#[derive(Debug, Clone)]
pub struct Redactor {
    level: RedactionLevel,
    /// (text to look for, the value it stands for, placeholder class)
    needles: Vec<(String, String, String)>,
}

/// A redacted text and the map back from its placeholders.
#[derive(Debug, Clone, PartialEq)]
pub struct Redacted {
    pub text: String,
    pub placeholders: Placeholders,
}

/// Placeholder -> original value, for one prompt.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Placeholders {
    to_raw: HashMap<String, String>,
}

impl Placeholders {
    pub fn len(&self) -> usize {
        self.to_raw.len()
    }
    pub fn is_empty(&self) -> bool {
        self.to_raw.is_empty()
    }
    /// The original value behind `[CLASS_N]`.
    pub fn get(&self, placeholder: &str) -> Option<&str> {
        self.to_raw.get(placeholder).map(String::as_str)
    }

    /// `s` with every known placeholder replaced by its original value; unknown ones (the model
    /// invented them) stay as they are.
    pub fn restore(&self, s: &str) -> String {
        if self.to_raw.is_empty() {
            return s.to_string();
        }
        let Ok(rules) = rules() else {
            return s.to_string();
        };
        rules
            .placeholder
            .replace_all(s, |c: &regex::Captures<'_>| {
                let whole = c.get(0).map_or("", |m| m.as_str());
                self.to_raw
                    .get(whole)
                    .cloned()
                    .unwrap_or_else(|| whole.to_string())
            })
            .into_owned()
    }
}

#[derive(Debug, Clone)]
struct Span {
    start: usize,
    end: usize,
    class: String,
    /// The value it stands for when that differs from the text (a JSON-escaped field value).
    value: Option<String>,
    /// Lower wins when spans are merged: secrets name the merged span.
    rank: u8,
}

impl Redactor {
    /// What to hide for `alert` at `level`.
    pub fn for_alert(alert: &Alert, level: RedactionLevel) -> Result<Redactor, RedactError> {
        let rules = rules()?;
        let mut needles = Vec::new();
        if level == RedactionLevel::Off {
            return Ok(Redactor { level, needles });
        }
        for class in &rules.classes {
            if class.level == Level::Strict && level != RedactionLevel::Strict {
                continue;
            }
            for field in &class.fields {
                let mut values = Vec::new();
                if let Some(v) = alert.output_fields.get(field.as_str()) {
                    flatten(v, &mut values);
                }
                if field == "hostname" {
                    values.extend(alert.hostname.clone());
                }
                for v in values {
                    let v = v.trim().to_string();
                    if v.chars().count() < 2 || v == "<NA>" {
                        continue;
                    }
                    if level == RedactionLevel::Standard && class.keep.iter().any(|k| k == &v) {
                        continue;
                    }
                    if class.placeholder == "HOST" {
                        // The short name of a host is as identifying as its FQDN.
                        if let Some((first, _)) = v.split_once('.') {
                            if first.chars().count() >= 3
                                && !first.bytes().all(|b| b.is_ascii_digit())
                            {
                                push_needle(&mut needles, first, &class.placeholder);
                            }
                        }
                    }
                    push_needle(&mut needles, &v, &class.placeholder);
                }
            }
        }
        // Longer values first so that the merge keeps them whole.
        needles.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        needles.dedup_by(|a, b| a.0 == b.0);
        Ok(Redactor { level, needles })
    }

    pub fn level(&self) -> RedactionLevel {
        self.level
    }

    /// `text` with every value to hide replaced by its placeholder.
    pub fn redact(&self, text: &str) -> Result<Redacted, RedactError> {
        let (mut texts, placeholders) = self.redact_parts(&[text])?;
        Ok(Redacted {
            text: texts.pop().unwrap_or_default(),
            placeholders,
        })
    }

    /// Several texts redacted with one placeholder table: the same value gets the same
    /// placeholder in every part.
    pub fn redact_parts(&self, parts: &[&str]) -> Result<(Vec<String>, Placeholders), RedactError> {
        if self.level == RedactionLevel::Off {
            return Ok((
                parts.iter().map(|p| p.to_string()).collect(),
                Placeholders::default(),
            ));
        }
        let rules = rules()?;
        let mut table = Table::default();
        let mut out = Vec::with_capacity(parts.len());
        for text in parts {
            let mut spans = Vec::new();
            self.pattern_spans(rules, text, &mut spans);
            entropy_spans(rules, text, &mut spans);
            for (needle, value, class) in &self.needles {
                for start in find_bounded(text, needle) {
                    spans.push(Span {
                        start,
                        end: start + needle.len(),
                        class: class.clone(),
                        value: (needle != value).then(|| value.clone()),
                        rank: 2,
                    });
                }
            }
            self.ip_spans(rules, text, &mut spans);
            out.push(table.apply(text, merge(spans)));
        }
        Ok((
            out,
            Placeholders {
                to_raw: table.to_raw,
            },
        ))
    }

    fn keeps(&self, keep: &[String], s: &str) -> bool {
        self.level == RedactionLevel::Standard && keep.iter().any(|k| k.eq_ignore_ascii_case(s))
    }

    fn pattern_spans(&self, rules: &Rules, text: &str, spans: &mut Vec<Span>) {
        for p in &rules.patterns {
            if p.entry.level == Level::Strict && self.level != RedactionLevel::Strict {
                continue;
            }
            for c in p.re.captures_iter(text) {
                let Some(m) = c.get(1).or_else(|| c.get(0)) else {
                    continue;
                };
                if m.as_str().is_empty() || self.keeps(&p.entry.keep, m.as_str()) {
                    continue;
                }
                let rank = if p.entry.placeholder == "SECRET" {
                    0
                } else {
                    1
                };
                spans.push(Span {
                    start: m.start(),
                    end: m.end(),
                    class: p.entry.placeholder.clone(),
                    value: None,
                    rank,
                });
            }
        }
    }

    fn ip_spans(&self, rules: &Rules, text: &str, spans: &mut Vec<Span>) {
        for m in rules.ipv4.find_iter(text) {
            if m.as_str().parse::<std::net::Ipv4Addr>().is_ok()
                && !self.keeps(&rules.ip_keep, m.as_str())
            {
                spans.push(Span {
                    start: m.start(),
                    end: m.end(),
                    class: "IP".into(),
                    value: None,
                    rank: 1,
                });
            }
        }
        let bytes = text.as_bytes();
        for m in rules.ipv6.find_iter(text) {
            let s = m.as_str().trim_end_matches(['.', ':']);
            let s_start = m.start();
            let (before, after) = (
                s_start.checked_sub(1).map(|i| bytes[i]),
                bytes.get(s_start + s.len()).copied(),
            );
            let word = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_');
            if s.len() < 3 || word(before) || word(after) {
                continue;
            }
            if s.parse::<std::net::Ipv6Addr>().is_ok() && !self.keeps(&rules.ip_keep, s) {
                spans.push(Span {
                    start: s_start,
                    end: s_start + s.len(),
                    class: "IP".into(),
                    value: None,
                    rank: 1,
                });
            }
        }
    }
}

fn push_needle(needles: &mut Vec<(String, String, String)>, value: &str, class: &str) {
    needles.push((value.to_string(), value.to_string(), class.to_string()));
    // The prompt carries the alert as JSON too, where quotes and backslashes are escaped.
    if let Ok(json) = serde_json::to_string(value) {
        let inner = &json[1..json.len().saturating_sub(1).max(1)];
        if inner != value {
            needles.push((inner.to_string(), value.to_string(), class.to_string()));
        }
    }
}

fn flatten(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Array(items) => items.iter().for_each(|i| flatten(i, out)),
        Value::Bool(_) | Value::Null | Value::Object(_) => {}
    }
}

/// Start offsets of `needle` in `text` where it is not part of a longer word.
fn find_bounded(text: &str, needle: &str) -> Vec<usize> {
    let mut out = Vec::new();
    if needle.is_empty() {
        return out;
    }
    let first_word = needle.chars().next().is_some_and(char::is_alphanumeric);
    let last_word = needle
        .chars()
        .next_back()
        .is_some_and(char::is_alphanumeric);
    let mut from = 0;
    while let Some(pos) = text[from..].find(needle) {
        let start = from + pos;
        let end = start + needle.len();
        let before_ok = !first_word
            || !text[..start]
                .chars()
                .next_back()
                .is_some_and(char::is_alphanumeric);
        let after_ok = !last_word
            || !text[end..]
                .chars()
                .next()
                .is_some_and(char::is_alphanumeric);
        if before_ok && after_ok {
            out.push(start);
        }
        from = start + needle.chars().next().map_or(1, char::len_utf8);
    }
    out
}

fn shannon_bits(s: &str) -> f64 {
    let mut counts: HashMap<char, usize> = HashMap::new();
    let mut n = 0usize;
    for c in s.chars() {
        *counts.entry(c).or_default() += 1;
        n += 1;
    }
    if n == 0 {
        return 0.0;
    }
    counts
        .values()
        .map(|&k| {
            let p = k as f64 / n as f64;
            -p * p.log2()
        })
        .sum()
}

/// Long random-looking tokens: mixed-case alphanumerics with high entropy (base64-like
/// secrets), or long hex (hashes, ids, hex keys). Paths are left alone.
fn entropy_spans(rules: &Rules, text: &str, spans: &mut Vec<Span>) {
    let e = &rules.entropy;
    for m in rules.token.find_iter(text) {
        let t = m.as_str().trim_end_matches('=');
        if t.len() < e.min_len || t.starts_with('/') {
            continue;
        }
        let hex = t.len() >= e.min_hex_len
            && t.bytes().all(|b| b.is_ascii_hexdigit())
            && t.bytes().any(|b| b.is_ascii_digit())
            && t.bytes().any(|b| b.is_ascii_alphabetic());
        let mixed = t.bytes().any(|b| b.is_ascii_uppercase())
            && t.bytes().any(|b| b.is_ascii_lowercase())
            && t.bytes().any(|b| b.is_ascii_digit());
        if hex {
            spans.push(Span {
                start: m.start(),
                end: m.start() + t.len(),
                class: "ID".into(),
                value: None,
                rank: 1,
            });
        } else if mixed && shannon_bits(t) >= e.min_bits {
            spans.push(Span {
                start: m.start(),
                end: m.start() + t.len(),
                class: "SECRET".into(),
                value: None,
                rank: 0,
            });
        }
    }
}

/// Overlapping or touching-inside spans become one, named after the most sensitive member.
fn merge(mut spans: Vec<Span>) -> Vec<Span> {
    spans.sort_by(|a, b| {
        a.start
            .cmp(&b.start)
            .then(b.end.cmp(&a.end))
            .then(a.rank.cmp(&b.rank))
    });
    let mut out: Vec<Span> = Vec::new();
    for s in spans {
        match out.last_mut() {
            Some(last) if s.start < last.end => {
                if s.start == last.start && s.end == last.end {
                    if s.rank < last.rank {
                        last.class = s.class;
                        last.rank = s.rank;
                    }
                    if last.value.is_none() {
                        last.value = s.value;
                    }
                    continue;
                }
                if s.end > last.end {
                    last.end = s.end;
                    last.value = None;
                }
                if s.rank < last.rank {
                    last.class = s.class;
                    last.rank = s.rank;
                }
            }
            _ => out.push(s),
        }
    }
    out
}

/// Placeholder numbering shared by the parts of one prompt.
#[derive(Default)]
struct Table {
    by_value: HashMap<String, String>,
    counters: HashMap<String, usize>,
    to_raw: HashMap<String, String>,
}

impl Table {
    fn apply(&mut self, text: &str, spans: Vec<Span>) -> String {
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for s in spans {
            let raw = s
                .value
                .clone()
                .unwrap_or_else(|| text[s.start..s.end].to_string());
            let ph = match self.by_value.get(&raw) {
                Some(ph) => ph.clone(),
                None => {
                    let n = self.counters.entry(s.class.clone()).or_insert(0);
                    *n += 1;
                    let ph = format!("[{}_{}]", s.class, n);
                    self.to_raw.insert(ph.clone(), raw.clone());
                    self.by_value.insert(raw, ph.clone());
                    ph
                }
            };
            out.push_str(&text[at..s.start]);
            out.push_str(&ph);
            at = s.end;
        }
        out.push_str(&text[at..]);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(v: serde_json::Value) -> Alert {
        serde_json::from_value(v).unwrap()
    }

    fn sample() -> Alert {
        alert(serde_json::json!({
            "rule": "Terminal shell in container", "priority": "Notice",
            "hostname": "db-prod-7.corp.example.com",
            "output": "shell in pod payments-api-5d9f (user=alice ns=payments ip=10.42.7.19)",
            "output_fields": {
                "user.name": "alice", "k8s.ns.name": "payments", "k8s.pod.name": "payments-api-5d9f",
                "container.id": "3f2a9c1b7e44", "fd.sip": "203.0.113.77", "user.uid": 1000,
                "proc.cmdline": "sh -c curl -H 'Authorization: Bearer abcdefghijklmnop123' https://files.internal.example:8443/x && mysql -u admin -phunter2 -h 10.42.7.19",
                "proc.env": "DB_PASSWORD=s3cr3t-pass AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY HOME=/home/alice",
                "proc.args": "--token=ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789 mail bob@example.org"
            }
        }))
    }

    #[test]
    fn rules_load_and_name_upper_case_placeholders() {
        let r = rules().unwrap();
        assert!(r.patterns.len() >= 10);
        assert!(r.classes.iter().any(|c| c.placeholder == "HOST"));
    }

    #[test]
    fn standard_level_hides_every_identifying_value_and_secret() {
        let a = sample();
        let text = serde_json::to_string_pretty(&a).unwrap()
            + "\nSummary: alice opened a shell on db-prod-7 in payments/payments-api-5d9f, ipv6 2001:db8::7";
        let r = Redactor::for_alert(&a, RedactionLevel::Standard)
            .unwrap()
            .redact(&text)
            .unwrap();
        for raw in [
            "db-prod-7",
            "corp.example.com",
            "alice",
            "payments",
            "3f2a9c1b7e44",
            "203.0.113.77",
            "10.42.7.19",
            "abcdefghijklmnop123",
            "files.internal.example",
            "hunter2",
            "s3cr3t-pass",
            "wJalrXUtnFEMI",
            "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789",
            "bob@example.org",
            "2001:db8::7",
        ] {
            assert!(!r.text.contains(raw), "`{raw}` leaked:\n{}", r.text);
        }
        // The analysis still has what identifies nobody.
        assert!(r.text.contains("Terminal shell in container"));
        assert!(r.text.contains("mysql -u admin"), "{}", r.text);
        // Names of secrets stay (they tell the analyst what leaked); their values go.
        assert!(r.text.contains("DB_PASSWORD=[SECRET_"), "{}", r.text);
        assert!(
            r.text.contains("AWS_SECRET_ACCESS_KEY=[SECRET_"),
            "{}",
            r.text
        );
        assert!(r.text.contains("--token=[SECRET_"), "{}", r.text);
        assert!(r.text.contains("curl"));
    }

    #[test]
    fn placeholders_are_stable_and_map_back() {
        let a = sample();
        let red = Redactor::for_alert(&a, RedactionLevel::Standard).unwrap();
        let r1 = red
            .redact("alice on db-prod-7.corp.example.com, again alice")
            .unwrap();
        let r2 = red
            .redact("alice on db-prod-7.corp.example.com, again alice")
            .unwrap();
        assert_eq!(r1, r2);
        assert_eq!(r1.text, "[USER_1] on [HOST_1], again [USER_1]");
        assert_eq!(
            r1.placeholders
                .restore("Ask [USER_1] about [HOST_1] and [HOST_9]."),
            "Ask alice about db-prod-7.corp.example.com and [HOST_9]."
        );
    }

    #[test]
    fn parts_share_one_placeholder_table() {
        let red = Redactor::for_alert(&sample(), RedactionLevel::Standard).unwrap();
        let (parts, ph) = red
            .redact_parts(&["alice", "10.42.7.19 and alice"])
            .unwrap();
        assert_eq!(
            parts,
            vec!["[USER_1]".to_string(), "[IP_1] and [USER_1]".to_string()]
        );
        assert_eq!(ph.len(), 2);
    }

    #[test]
    fn values_are_replaced_only_as_whole_words() {
        let a = alert(
            serde_json::json!({"rule":"r","priority":"Notice","output_fields":{"user.name":"ed"}}),
        );
        let r = Redactor::for_alert(&a, RedactionLevel::Standard)
            .unwrap()
            .redact("ed edited /home/ed/x")
            .unwrap();
        assert_eq!(r.text, "[USER_1] edited /home/[USER_1]/x");
    }

    #[test]
    fn well_known_values_stay_at_standard_and_go_at_strict() {
        let a = alert(
            serde_json::json!({"rule":"r","priority":"Notice","output_fields":{
            "user.name":"root","k8s.ns.name":"kube-system","container.name":"web","fd.sip":"127.0.0.1"}}),
        );
        let text = "root in kube-system container web to 127.0.0.1";
        let s = Redactor::for_alert(&a, RedactionLevel::Standard)
            .unwrap()
            .redact(text)
            .unwrap();
        assert_eq!(s.text, text);
        let s = Redactor::for_alert(&a, RedactionLevel::Strict)
            .unwrap()
            .redact(text)
            .unwrap();
        assert_eq!(
            s.text,
            "[USER_1] in [NAMESPACE_1] container [CONTAINER_1] to [IP_1]"
        );
        let s = Redactor::for_alert(&a, RedactionLevel::Off)
            .unwrap()
            .redact("10.0.0.1 root")
            .unwrap();
        assert_eq!(s.text, "10.0.0.1 root");
    }

    #[test]
    fn overlapping_values_are_merged_so_nothing_is_left_over() {
        let a = alert(
            serde_json::json!({"rule":"r","priority":"Notice","output_fields":{
            "k8s.pod.name":"alpha-beta","user.name":"beta-gamma"}}),
        );
        let r = Redactor::for_alert(&a, RedactionLevel::Standard)
            .unwrap()
            .redact("x alpha-beta-gamma y")
            .unwrap();
        assert!(
            !r.text.contains("gamma") && !r.text.contains("alpha"),
            "{}",
            r.text
        );
        assert_eq!(r.placeholders.restore(&r.text), "x alpha-beta-gamma y");
    }

    #[test]
    fn json_escaped_values_are_found_and_restored_unescaped() {
        let a = alert(
            serde_json::json!({"rule":"r","priority":"Notice","output_fields":{"user.name":"o\"brien"}}),
        );
        let text = serde_json::to_string(&a).unwrap();
        let r = Redactor::for_alert(&a, RedactionLevel::Standard)
            .unwrap()
            .redact(&text)
            .unwrap();
        assert!(!r.text.contains("brien"), "{}", r.text);
        assert_eq!(r.placeholders.get("[USER_1]"), Some("o\"brien"));
    }

    #[test]
    fn timestamps_paths_and_words_are_not_mistaken_for_secrets_or_addresses() {
        let a = Alert::default();
        let text = "at 18:54:19.341081180 /usr/lib/x86_64-linux-gnu/libc.so.6 event-generator run --loop \
                    elastic-package-service-falco-event-generator-1 fa::model T1059.004 the password hash";
        let r = Redactor::for_alert(&a, RedactionLevel::Standard)
            .unwrap()
            .redact(text)
            .unwrap();
        assert_eq!(r.text, text);
    }

    #[test]
    fn long_hex_and_private_keys_are_hidden() {
        let a = Alert::default();
        let text =
            "digest sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 key \
                    -----BEGIN RSA PRIVATE KEY-----\\nMIIEow\\n-----END RSA PRIVATE KEY----- done";
        let r = Redactor::for_alert(&a, RedactionLevel::Standard)
            .unwrap()
            .redact(text)
            .unwrap();
        assert!(!r.text.contains("9f86d08"), "{}", r.text);
        assert!(!r.text.contains("MIIEow"), "{}", r.text);
        assert!(r.text.ends_with(" done"), "{}", r.text);
    }
}
