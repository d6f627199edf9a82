//! The summary paragraph and the event details of a report, derived only from what the alert
//! carries. Which fields are shown as labelled facts, and in which order, is data
//! (`data/facts.toml`); every other field is listed verbatim so nothing the alert carried is hidden.
//!
//! Values are kept verbatim here (alert content is attacker-controlled): escaping and stripping of
//! control characters is the renderers' job (`fa-report`).

use chrono::{DateTime, Utc};
use fa_model::alert::parse_time;
use fa_model::{Alert, EventDetails, Fact, FieldValueExt, InputFormat, Source};
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::OnceLock;

const FACTS_TOML: &str = include_str!("../data/facts.toml");

/// Longest stretch of alert text quoted in a summary, in characters.
const SUMMARY_MESSAGE_CHARS: usize = 240;
const SUMMARY_VALUE_CHARS: usize = 120;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FactsFile {
    #[serde(default)]
    event: EventSpec,
    #[serde(default)]
    fact: Vec<FactEntry>,
    #[serde(default)]
    summary: SummarySpec,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EventSpec {
    #[serde(default)]
    time_fields: Vec<String>,
    #[serde(default)]
    host_fields: Vec<String>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    #[default]
    First,
    Join,
    Endpoint,
    Ancestors,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FactEntry {
    label: String,
    fields: Vec<String>,
    #[serde(default)]
    kind: Kind,
    #[serde(default)]
    sep: Option<String>,
    #[serde(default)]
    fallback: Vec<String>,
    #[serde(default)]
    notes: BTreeMap<String, String>,
    #[serde(default)]
    from: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SummarySpec {
    #[serde(default)]
    actors: Vec<Labelled>,
    #[serde(default)]
    actor_ips: Vec<String>,
    #[serde(default)]
    places: Vec<Labelled>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Labelled {
    field: String,
    text: String,
}

/// A fact entry with its field names resolved to slots, so one pass over the alert's fields
/// finds everything (no per-fact map lookups).
#[derive(Debug)]
struct CompiledFact {
    entry: FactEntry,
    slots: Vec<usize>,
    fallback_slots: Vec<usize>,
}

#[derive(Debug, Default)]
struct Spec {
    facts: Vec<CompiledFact>,
    /// Field name -> slot (read for every field of every report: xxh3, not SipHash; the names
    /// are ours, from data/facts.toml).
    slot_of: HashMap<String, usize, std::hash::BuildHasherDefault<crate::scoring::NameHasher>>,
    /// `proc.aname`-style prefix and first index of the ancestors fact, if any.
    ancestors: Option<(String, u32)>,
    event: EventSpec,
    summary: SummarySpec,
}

impl Spec {
    fn slot_count(&self) -> usize {
        self.slot_of.len()
    }
}

fn parse_spec(text: &str) -> Result<Spec, String> {
    let file: FactsFile = toml::from_str(text).map_err(|e| e.to_string())?;
    let mut spec = Spec {
        event: file.event,
        summary: file.summary,
        ..Spec::default()
    };
    for entry in file.fact {
        if entry.fields.is_empty() {
            return Err(format!("fact `{}` has no fields", entry.label));
        }
        match entry.kind {
            Kind::Endpoint if entry.fields.len() != 2 => {
                return Err(format!("fact `{}`: endpoint needs [ip, port]", entry.label));
            }
            Kind::Ancestors => {
                if entry.fields.len() != 1 || spec.ancestors.is_some() {
                    return Err(format!(
                        "fact `{}`: one ancestors fact with one prefix",
                        entry.label
                    ));
                }
                spec.ancestors = Some((entry.fields[0].clone(), entry.from.unwrap_or(2)));
                spec.facts.push(CompiledFact {
                    entry,
                    slots: Vec::new(),
                    fallback_slots: Vec::new(),
                });
                continue;
            }
            _ => {}
        }
        let mut intern = |name: &str| -> Result<usize, String> {
            let next = spec.slot_of.len();
            match spec.slot_of.entry(name.to_string()) {
                std::collections::hash_map::Entry::Occupied(_) => {
                    Err(format!("field `{name}` is used by two facts"))
                }
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(next);
                    Ok(next)
                }
            }
        };
        let slots = entry
            .fields
            .iter()
            .map(|f| intern(f))
            .collect::<Result<Vec<_>, _>>()?;
        let fallback_slots = entry
            .fallback
            .iter()
            .map(|f| intern(f))
            .collect::<Result<Vec<_>, _>>()?;
        spec.facts.push(CompiledFact {
            entry,
            slots,
            fallback_slots,
        });
    }
    Ok(spec)
}

fn spec() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    // The file is compiled in and checked by a test; should it ever fail to parse, every field
    // still reaches the report under "Other fields" rather than the process panicking.
    SPEC.get_or_init(|| parse_spec(FACTS_TOML).unwrap_or_default())
}

/// One output field of the alert as it is being sorted into facts.
struct Slot<'a> {
    name: &'a str,
    text: Option<Cow<'a, str>>,
    shown: bool,
}

/// Everything the alert says about the event: the top-level fields, then labelled facts in the
/// display order of `data/facts.toml`, then every other output field verbatim.
/// Null, `<NA>` and empty values are omitted.
pub fn event_details(alert: &Alert) -> EventDetails {
    let spec = spec();
    let mut fields: Vec<Slot<'_>> = alert
        .output_fields
        .iter()
        .map(|(k, v)| {
            let text = v.as_text();
            // Absent values are "shown" in the sense that there is nothing to list.
            let shown = text.is_none();
            Slot {
                name: k,
                text,
                shown,
            }
        })
        .collect();

    // Which alert field fills each slot, and the ancestors by index.
    let mut by_slot: Vec<Option<usize>> = vec![None; spec.slot_count()];
    let mut ancestors: Vec<(u32, usize)> = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        if f.text.is_none() {
            continue;
        }
        if let Some(&s) = spec.slot_of.get(f.name) {
            by_slot[s] = Some(i);
        } else if let Some((prefix, from)) = &spec.ancestors {
            if let Some(n) = indexed(f.name, prefix) {
                if n >= *from {
                    ancestors.push((n, i));
                }
            }
        }
    }

    let time = top_level_or_field(
        alert.time,
        &spec.event.time_fields,
        &mut fields,
        field_time,
        |a, b| a == b,
    );
    let hostname = top_level_or_field(
        alert.hostname.clone(),
        &spec.event.host_fields,
        &mut fields,
        |t| Some(t.to_string()),
        |a, b| a == b,
    );

    let mut facts = Vec::new();
    for cf in &spec.facts {
        if let Some(fact) = build_fact(cf, &by_slot, &ancestors, &mut fields) {
            facts.push(fact);
        }
    }

    let other_fields = fields
        .into_iter()
        .filter(|f| !f.shown)
        .filter_map(|f| {
            f.text.map(|t| Fact {
                label: f.name.to_string(),
                field: f.name.to_string(),
                value: t.into_owned(),
            })
        })
        .collect();

    EventDetails {
        time,
        rule: alert.rule.as_str().to_string(),
        priority: alert.priority,
        source: alert.source.clone(),
        tags: alert.tags.clone(),
        hostname,
        uuid: alert.uuid.clone(),
        message: alert.message().map(str::to_string),
        facts,
        other_fields,
    }
}

/// `prefix[N]` -> N.
fn indexed(name: &str, prefix: &str) -> Option<u32> {
    name.strip_prefix(prefix)?
        .strip_prefix('[')?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The top-level value when there is one (output fields saying the same are not repeated),
/// else the first listed output field that has one (which is then shown as that value).
fn top_level_or_field<T>(
    top: Option<T>,
    names: &[String],
    fields: &mut [Slot<'_>],
    parse: impl Fn(&str) -> Option<T>,
    same: impl Fn(&T, &T) -> bool,
) -> Option<T> {
    let mut value = top;
    for name in names {
        let Some(f) = fields.iter_mut().find(|f| f.name == name.as_str()) else {
            continue;
        };
        let Some(parsed) = f.text.as_deref().and_then(&parse) else {
            continue;
        };
        match &value {
            Some(v) if same(v, &parsed) => f.shown = true,
            Some(_) => {}
            None => {
                f.shown = true;
                value = Some(parsed);
            }
        }
    }
    value
}

/// An event time field: integer nanoseconds since the epoch, or an RFC 3339 text.
fn field_time(text: &str) -> Option<DateTime<Utc>> {
    match text.parse::<i64>() {
        Ok(ns) => Some(DateTime::from_timestamp_nanos(ns)),
        Err(_) => parse_time(text),
    }
}

fn build_fact(
    cf: &CompiledFact,
    by_slot: &[Option<usize>],
    ancestors: &[(u32, usize)],
    fields: &mut [Slot<'_>],
) -> Option<Fact> {
    let e = &cf.entry;
    let present = |slot: usize| by_slot.get(slot).copied().flatten();
    let (field, value) = match e.kind {
        Kind::First => first_of(&cf.slots, by_slot, fields)?,
        Kind::Join => match cf.slots.first().and_then(|&s| present(s)) {
            Some(_) => {
                let sep = e.sep.as_deref().unwrap_or(" ");
                let mut names = String::new();
                let mut value = String::new();
                for i in cf.slots.iter().filter_map(|&s| present(s)) {
                    if !value.is_empty() {
                        names.push_str(", ");
                        value.push_str(sep);
                    }
                    names.push_str(fields[i].name);
                    value.push_str(fields[i].text.as_deref().unwrap_or_default());
                    fields[i].shown = true;
                }
                // A fallback that says the same (`container.image` = repository:tag) is not repeated.
                for i in cf.fallback_slots.iter().filter_map(|&s| present(s)) {
                    if fields[i].text.as_deref() == Some(value.as_str()) {
                        fields[i].shown = true;
                    }
                }
                (names, value)
            }
            None => first_of(&cf.fallback_slots, by_slot, fields)?,
        },
        Kind::Endpoint => {
            let ip = cf.slots.first().and_then(|&s| present(s));
            let port = cf.slots.get(1).and_then(|&s| present(s));
            let text = |i: usize| fields[i].text.as_deref().unwrap_or_default();
            let (names, value) = match (ip, port) {
                (Some(ip), Some(port)) => {
                    let (a, p) = (text(ip), text(port));
                    let value = if a.contains(':') {
                        format!("[{a}]:{p}")
                    } else {
                        format!("{a}:{p}")
                    };
                    (format!("{}, {}", fields[ip].name, fields[port].name), value)
                }
                (Some(ip), None) => (fields[ip].name.to_string(), text(ip).to_string()),
                (None, Some(port)) => (
                    fields[port].name.to_string(),
                    format!("port {}", text(port)),
                ),
                (None, None) => return None,
            };
            for i in [ip, port].into_iter().flatten() {
                fields[i].shown = true;
            }
            (names, value)
        }
        Kind::Ancestors => {
            if ancestors.is_empty() {
                return None;
            }
            let mut sorted = ancestors.to_vec();
            sorted.sort_unstable_by_key(|&(n, _)| n);
            let sep = e.sep.as_deref().unwrap_or(" < ");
            let mut value = String::new();
            for &(_, i) in &sorted {
                if !value.is_empty() {
                    value.push_str(sep);
                }
                value.push_str(fields[i].text.as_deref().unwrap_or_default());
                fields[i].shown = true;
            }
            let prefix = e.fields.first().map(String::as_str).unwrap_or_default();
            let (lo, hi) = (sorted[0].0, sorted[sorted.len() - 1].0);
            let names = if lo == hi {
                format!("{prefix}[{lo}]")
            } else {
                format!("{prefix}[{lo}..{hi}]")
            };
            (names, value)
        }
    };
    let value = match e.notes.get(&value) {
        Some(note) => format!("{value} ({note})"),
        None => value,
    };
    Some(Fact {
        label: e.label.clone(),
        field,
        value,
    })
}

/// The first slot with a value; alternates saying the same thing are not repeated, alternates
/// saying something else stay for "Other fields".
fn first_of(
    slots: &[usize],
    by_slot: &[Option<usize>],
    fields: &mut [Slot<'_>],
) -> Option<(String, String)> {
    let mut present = slots
        .iter()
        .filter_map(|&s| by_slot.get(s).copied().flatten());
    let chosen = present.next()?;
    fields[chosen].shown = true;
    let value = fields[chosen]
        .text
        .as_deref()
        .unwrap_or_default()
        .to_string();
    for i in present {
        if fields[i].text.as_deref() == Some(value.as_str()) {
            fields[i].shown = true;
        }
    }
    Some((fields[chosen].name.to_string(), value))
}

/// One paragraph (2-4 sentences): what happened (rule and message), where (container, image,
/// pod, host, or the cloud/SaaS place), as whom (user or actor), and when. Only fields the alert
/// carries are used; `rule_desc` (the knowledge base's description) stands in for a missing message.
pub fn summary(alert: &Alert, rule_desc: Option<&str>) -> String {
    let spec = spec();
    let mut out = String::with_capacity(320);

    // What and when.
    if let Some(t) = alert.time {
        let _ = write!(out, "On {}, ", t.format("%Y-%m-%d at %H:%M:%S UTC"));
        out.push_str("Falco ");
    } else {
        out.push_str("Falco ");
    }
    if alert.rule.is_unknown() {
        out.push_str("raised ");
        match alert.priority {
            Some(p) => {
                let _ = write!(out, "a {p} alert");
            }
            None => out.push_str("an alert"),
        }
        out.push_str(" whose rule name was not recorded");
        if alert.format == InputFormat::PlainText {
            out.push_str(" (plain-text alert)");
        }
    } else {
        out.push_str("rule \"");
        push_clean(&mut out, alert.rule.as_str(), SUMMARY_VALUE_CHARS);
        out.push('"');
        if let Some(p) = alert.priority {
            let _ = write!(out, " ({p})");
        }
        out.push_str(" fired");
    }
    match alert.message().map(message_head).filter(|m| !m.is_empty()) {
        Some(msg) => {
            out.push_str(": ");
            push_clean(&mut out, msg, SUMMARY_MESSAGE_CHARS);
        }
        None => {
            if let Some(desc) = rule_desc.map(first_sentence).filter(|d| !d.is_empty()) {
                out.push_str(". The rule describes: ");
                push_clean(&mut out, desc, SUMMARY_MESSAGE_CHARS);
            }
        }
    }
    end_sentence(&mut out);

    where_sentence(alert, spec, &mut out);
    who_sentence(alert, spec, &mut out);
    out
}

/// Builds "It occurred A, B, C." from the clauses that have data.
struct Clauses<'o> {
    out: &'o mut String,
    lead: &'static str,
    started: bool,
}

impl<'o> Clauses<'o> {
    fn new(out: &'o mut String, lead: &'static str) -> Self {
        Clauses {
            out,
            lead,
            started: false,
        }
    }
    fn next(&mut self) -> &mut String {
        if self.started {
            self.out.push_str(", ");
        } else {
            self.out.push(' ');
            self.out.push_str(self.lead);
            self.started = true;
        }
        self.out
    }
    fn finish(self) {
        if self.started {
            end_sentence(self.out);
        }
    }
}

fn where_sentence(alert: &Alert, spec: &Spec, out: &mut String) {
    let f = |name: &str| alert.field(name);
    let host = alert
        .hostname
        .as_deref()
        .map(Cow::Borrowed)
        .or_else(|| f("hostname"));
    let on_host_itself = f("container.id").is_some_and(|id| id == "host");
    let mut c = Clauses::new(out, "It occurred ");

    if !on_host_itself {
        let (id, name) = (f("container.id"), f("container.name"));
        if id.is_some() || name.is_some() {
            let o = c.next();
            o.push_str("in container ");
            let mut inner = false;
            match (&name, &id) {
                (Some(n), Some(i)) => {
                    push_clean(o, n, SUMMARY_VALUE_CHARS);
                    o.push_str(" (id ");
                    push_clean(o, i, SUMMARY_VALUE_CHARS);
                    inner = true;
                }
                (Some(n), None) => push_clean(o, n, SUMMARY_VALUE_CHARS),
                (None, Some(i)) => push_clean(o, i, SUMMARY_VALUE_CHARS),
                (None, None) => {}
            }
            if let Some(img) = image(alert) {
                o.push_str(if inner { ", image " } else { " (image " });
                push_clean(o, &img, SUMMARY_VALUE_CHARS);
                inner = true;
            }
            if inner {
                o.push(')');
            }
        }
    }
    match (f("k8s.ns.name"), f("k8s.pod.name")) {
        (Some(ns), Some(pod)) => {
            let o = c.next();
            o.push_str("in Kubernetes pod ");
            push_clean(o, &ns, SUMMARY_VALUE_CHARS);
            o.push('/');
            push_clean(o, &pod, SUMMARY_VALUE_CHARS);
        }
        (None, Some(pod)) => {
            let o = c.next();
            o.push_str("in Kubernetes pod ");
            push_clean(o, &pod, SUMMARY_VALUE_CHARS);
        }
        (Some(ns), None) => {
            let o = c.next();
            o.push_str("in Kubernetes namespace ");
            push_clean(o, &ns, SUMMARY_VALUE_CHARS);
        }
        (None, None) => {}
    }
    // Kubernetes audit events act on an object rather than run somewhere.
    if let Some(res) = f("ka.target.resource") {
        let o = c.next();
        o.push_str("on Kubernetes ");
        push_clean(o, &res, SUMMARY_VALUE_CHARS);
        match (f("ka.target.namespace"), f("ka.target.name")) {
            (Some(ns), Some(name)) => {
                o.push(' ');
                push_clean(o, &ns, SUMMARY_VALUE_CHARS);
                o.push('/');
                push_clean(o, &name, SUMMARY_VALUE_CHARS);
            }
            (None, Some(name)) => {
                o.push(' ');
                push_clean(o, &name, SUMMARY_VALUE_CHARS);
            }
            (Some(ns), None) => {
                o.push_str(" in namespace ");
                push_clean(o, &ns, SUMMARY_VALUE_CHARS);
            }
            (None, None) => {}
        }
    }
    if let Some((place, value)) = spec
        .summary
        .places
        .iter()
        .find_map(|p| f(&p.field).map(|v| (p, v)))
    {
        let o = c.next();
        o.push_str(&place.text);
        o.push(' ');
        push_clean(o, &value, SUMMARY_VALUE_CHARS);
    }
    let syscall_like = matches!(alert.source, None | Some(Source::Syscall));
    match (host, on_host_itself) {
        (Some(h), true) => {
            let o = c.next();
            o.push_str("directly on host ");
            push_clean(o, &h, SUMMARY_VALUE_CHARS);
            o.push_str(" (not in a container)");
        }
        (None, true) => c
            .next()
            .push_str("directly on the host (not in a container)"),
        (Some(h), false) => {
            let o = c.next();
            // For plugin sources the Falco host only received the event; it did not happen there.
            o.push_str(if syscall_like {
                "on host "
            } else {
                "reported by Falco on host "
            });
            push_clean(o, &h, SUMMARY_VALUE_CHARS);
        }
        (None, false) => {}
    }
    c.finish();
}

/// `repository:tag`, `repository`, or `container.image`.
fn image(alert: &Alert) -> Option<Cow<'_, str>> {
    match (
        alert.field("container.image.repository"),
        alert.field("container.image.tag"),
    ) {
        (Some(r), Some(t)) => Some(Cow::Owned(format!("{r}:{t}"))),
        (Some(r), None) => Some(r),
        _ => alert.field("container.image"),
    }
}

fn who_sentence(alert: &Alert, spec: &Spec, out: &mut String) {
    let f = |name: &str| alert.field(name);
    let process = f("proc.cmdline").or_else(|| f("proc.name"));
    let (user, uid) = (f("user.name"), f("user.uid"));
    let parent = f("proc.pname");
    let has_user = user.is_some() || uid.is_some();

    if process.is_some() || has_user || parent.is_some() {
        out.push(' ');
        if let Some(p) = &process {
            out.push_str("The process \"");
            push_clean(out, p, SUMMARY_VALUE_CHARS);
            out.push('"');
            out.push_str(if has_user { " ran as " } else { " ran" });
        } else if has_user {
            out.push_str("It ran as ");
        }
        match (&user, &uid) {
            (Some(u), Some(id)) => {
                out.push_str("user ");
                push_clean(out, u, SUMMARY_VALUE_CHARS);
                out.push_str(" (uid ");
                push_clean(out, id, SUMMARY_VALUE_CHARS);
                out.push(')');
            }
            (Some(u), None) => {
                out.push_str("user ");
                push_clean(out, u, SUMMARY_VALUE_CHARS);
            }
            (None, Some(id)) => {
                out.push_str("uid ");
                push_clean(out, id, SUMMARY_VALUE_CHARS);
            }
            (None, None) => {}
        }
        if let Some(pn) = &parent {
            out.push_str(if process.is_some() || has_user {
                ", child of "
            } else {
                "The parent process was "
            });
            push_clean(out, pn, SUMMARY_VALUE_CHARS);
        }
        end_sentence(out);
    }

    let actor = spec
        .summary
        .actors
        .iter()
        .find_map(|a| f(&a.field).map(|v| (a, v)));
    let ip = spec.summary.actor_ips.iter().find_map(|n| f(n));
    match (actor, ip) {
        (Some((a, v)), ip) => {
            out.push_str(" The actor was ");
            out.push_str(&a.text);
            out.push(' ');
            push_clean(out, &v, SUMMARY_VALUE_CHARS);
            if let Some(ip) = ip {
                out.push_str(", from ");
                push_clean(out, &ip, SUMMARY_VALUE_CHARS);
            }
            end_sentence(out);
        }
        (None, Some(ip)) => {
            out.push_str(" The request came from ");
            push_clean(out, &ip, SUMMARY_VALUE_CHARS);
            end_sentence(out);
        }
        (None, None) => {}
    }
}

/// The rule's own text without the `(key=value ...)` or ` | key=value ...` fields Falco appends.
fn message_head(msg: &str) -> &str {
    let bytes = msg.as_bytes();
    let mut i = 0;
    while i + 1 < bytes.len() {
        let cut = match (bytes[i], bytes[i + 1]) {
            (b' ', b'(') => Some(i + 2),
            (b' ', b'|') if bytes.get(i + 2) == Some(&b' ') => Some(i + 3),
            _ => None,
        };
        if let Some(start) = cut {
            // Only a list of fields is cut: the next word must be `key=value`.
            let word = msg[start..].split([' ', ')']).next().unwrap_or_default();
            if word.contains('=') && !word.starts_with('=') {
                return msg[..i].trim_end();
            }
        }
        i += 1;
    }
    msg.trim()
}

fn first_sentence(text: &str) -> &str {
    let t = text.trim();
    match t.find(". ") {
        Some(i) => &t[..=i],
        None => t,
    }
}

/// Append `s` as part of one paragraph: line breaks and tabs become single spaces, and text
/// longer than `max_chars` is cut with an ellipsis. Other control characters are left for the
/// renderers, which strip whole escape sequences.
fn push_clean(out: &mut String, s: &str, max_chars: usize) {
    let s = s.trim();
    let mut prev_space = false;
    for (n, ch) in s.chars().enumerate() {
        if n == max_chars {
            out.push('…');
            return;
        }
        let ch = if matches!(ch, '\n' | '\r' | '\t') {
            ' '
        } else {
            ch
        };
        if ch == ' ' && prev_space {
            continue;
        }
        prev_space = ch == ' ';
        out.push(ch);
    }
}

fn end_sentence(out: &mut String) {
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    if !out.ends_with(['.', '!', '?', '…']) {
        out.push('.');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fa_model::Priority;

    const SHELL: &str = r#"{"hostname":"abbc238194b1","output":"2026-07-04T20:46:44.180672852+0000: Notice A shell was spawned in a container with an attached terminal | evt_type=execve user=root","output_fields":{"container.id":"16514a12c7ad","container.image.repository":"alpine","container.image.tag":"3.20","container.name":"lab9-target","evt.arg.flags":"EXE_WRITABLE|EXE_LOWER_LAYER","evt.time.iso8601":1783198004180672852,"evt.type":"execve","k8s.ns.name":null,"k8s.pod.name":null,"proc.cmdline":"sh -lc echo \"shell-in-container test\"","proc.exepath":"/bin/busybox","proc.name":"sh","proc.pname":"containerd-shim","proc.tty":34816,"user.loginuid":-1,"user.name":"root","user.uid":0},"priority":"Notice","rule":"Terminal shell in container","source":"syscall","tags":["T1059","container"],"time":"2026-07-04T20:46:44.180672852Z"}"#;

    fn alert(json: &str) -> Alert {
        serde_json::from_str(json).expect("test alert parses")
    }

    fn fact<'a>(d: &'a EventDetails, label: &str) -> Option<&'a Fact> {
        d.facts.iter().find(|f| f.label == label)
    }

    #[test]
    fn facts_file_parses_and_names_only_known_falco_fields() {
        let spec = parse_spec(FACTS_TOML).expect("data/facts.toml parses");
        assert!(spec.facts.len() > 40);
        let known = include_str!("../../../kb/falco_fields.txt");
        let is_known = |name: &str| {
            known
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .any(|k| match k.strip_suffix("[]") {
                    Some(base) => {
                        name == base
                            || name.starts_with(&format!("{base}["))
                            || name.starts_with(&format!("{base}."))
                    }
                    None => name == k,
                })
        };
        let mut names: Vec<&str> = spec.slot_of.keys().map(String::as_str).collect();
        names.extend(spec.summary.actors.iter().map(|a| a.field.as_str()));
        names.extend(spec.summary.places.iter().map(|a| a.field.as_str()));
        names.extend(spec.summary.actor_ips.iter().map(String::as_str));
        names.extend(spec.event.time_fields.iter().map(String::as_str));
        for n in names {
            // `hostname` is Falcosidekick's copy of the top-level field, not a Falco field.
            assert!(
                n == "hostname" || is_known(n),
                "facts.toml names unknown Falco field `{n}`"
            );
        }
    }

    #[test]
    fn facts_file_rejects_a_field_used_twice() {
        let bad = "[[fact]]\nlabel='a'\nfields=['proc.name']\n[[fact]]\nlabel='b'\nfields=['proc.name']\n";
        assert!(parse_spec(bad).unwrap_err().contains("proc.name"));
    }

    #[test]
    fn event_details_in_display_order_with_composites_and_notes() {
        let d = event_details(&alert(SHELL));
        let labels: Vec<&str> = d.facts.iter().map(|f| f.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "Process",
                "Command line",
                "Executable",
                "Parent process",
                "User",
                "UID",
                "Login UID",
                "Terminal",
                "Container ID",
                "Container name",
                "Image",
                "Event type",
                "Flags"
            ]
        );
        let image = fact(&d, "Image").unwrap();
        assert_eq!(image.value, "alpine:3.20");
        assert_eq!(
            image.field,
            "container.image.repository, container.image.tag"
        );
        assert_eq!(
            fact(&d, "Login UID").unwrap().value,
            "-1 (unset: not started from a login session)"
        );
        assert_eq!(fact(&d, "Terminal").unwrap().value, "34816");
        assert_eq!(
            fact(&d, "Command line").unwrap().value,
            "sh -lc echo \"shell-in-container test\""
        );
        assert_eq!(d.rule, "Terminal shell in container");
        assert_eq!(d.priority, Some(Priority::Notice));
        assert_eq!(d.hostname.as_deref(), Some("abbc238194b1"));
        assert_eq!(
            d.message
                .as_deref()
                .map(|m| m.starts_with("A shell was spawned")),
            Some(true)
        );
        // evt.time.iso8601 is the same instant as `time`, nulls are omitted: nothing else is left.
        assert!(d.other_fields.is_empty(), "{:?}", d.other_fields);
    }

    #[test]
    fn nothing_the_alert_carried_is_hidden() {
        let a = alert(
            r#"{"rule":"r","priority":"Warning","time":"2024-05-07T18:54:19Z","output_fields":{
            "proc.exepath":"/bin/a","proc.exe":"/tmp/b","container.image":"other:1","container.image.repository":"repo",
            "container.image.tag":"t","evt.time":1,"n_drops":"815508","proc.aname[0]":"x","custom.k":{"a":1},"empty":"",
            "na":"<NA>","lst":["a","b"]}}"#,
        );
        let d = event_details(&a);
        assert_eq!(fact(&d, "Executable").unwrap().value, "/bin/a");
        assert_eq!(fact(&d, "Image").unwrap().value, "repo:t");
        let other: Vec<(&str, &str)> = d
            .other_fields
            .iter()
            .map(|f| (f.label.as_str(), f.value.as_str()))
            .collect();
        assert_eq!(
            other,
            [
                ("container.image", "other:1"),
                ("custom.k", r#"{"a":1}"#),
                ("evt.time", "1"),
                ("lst", "a,b"),
                ("n_drops", "815508"),
                ("proc.aname[0]", "x"),
                ("proc.exe", "/tmp/b"),
            ]
        );
    }

    #[test]
    fn ancestors_sorted_numerically_and_null_skipped() {
        let mut of = String::new();
        for i in 2..=11 {
            let _ = write!(of, r#""proc.aname[{i}]":"a{i}","#);
        }
        let a = alert(&format!(
            r#"{{"rule":"r","priority":"Notice","output_fields":{{{of}"proc.aname[12]":null,"proc.aname[1]":"p"}}}}"#
        ));
        let d = event_details(&a);
        let anc = fact(&d, "Ancestors (grandparent first)").unwrap();
        assert_eq!(
            anc.value,
            "a2 < a3 < a4 < a5 < a6 < a7 < a8 < a9 < a10 < a11"
        );
        assert_eq!(anc.field, "proc.aname[2..11]");
        assert_eq!(fact(&d, "Parent process").unwrap().value, "p");
        assert!(d.other_fields.is_empty());
    }

    #[test]
    fn endpoints_and_host_container_note() {
        let a = alert(
            r#"{"rule":"r","priority":"Notice","output_fields":{"fd.sip":"::1","fd.sport":443,"fd.rport":3333,"fd.l4proto":"tcp","container.id":"host","hostname":"h"},"hostname":"h"}"#,
        );
        let d = event_details(&a);
        assert_eq!(fact(&d, "Server").unwrap().value, "[::1]:443");
        assert_eq!(fact(&d, "Remote endpoint").unwrap().value, "port 3333");
        assert_eq!(
            fact(&d, "Container ID").unwrap().value,
            "host (not in a container)"
        );
        assert!(
            d.other_fields.is_empty(),
            "hostname equal to top-level is not repeated"
        );
    }

    #[test]
    fn time_and_host_come_from_fields_when_top_level_lacks_them() {
        let a = alert(
            r#"{"rule":"r","priority":"Notice","output_fields":{"evt.time":1715108059341081180,"hostname":"h2"}}"#,
        );
        let d = event_details(&a);
        assert_eq!(d.time.map(|t| t.timestamp()), Some(1715108059));
        assert_eq!(d.hostname.as_deref(), Some("h2"));
        assert!(d.other_fields.is_empty());
        // A different value from the top level is listed, not dropped.
        let b = alert(
            r#"{"rule":"r","priority":"Notice","hostname":"h1","output_fields":{"hostname":"h2"}}"#,
        );
        assert_eq!(event_details(&b).other_fields[0].value, "h2");
    }

    #[test]
    fn summary_says_what_where_whom_when() {
        let s = summary(&alert(SHELL), None);
        assert_eq!(
            s,
            "On 2026-07-04 at 20:46:44 UTC, Falco rule \"Terminal shell in container\" (Notice) fired: A shell was \
             spawned in a container with an attached terminal. It occurred in container lab9-target (id 16514a12c7ad, \
             image alpine:3.20), on host abbc238194b1. The process \"sh -lc echo \"shell-in-container test\"\" ran as \
             user root (uid 0), child of containerd-shim."
        );
    }

    #[test]
    fn summary_cuts_parenthesised_fields_and_uses_pod() {
        let a = alert(
            r#"{"output":"23:50:54.719348051: Error wreating files in container (user=root command=sshd -D -e)","priority":"Error","rule":"Create files below container any dir","time":"2022-09-25T15:50:54.719348051Z","output_fields":{"container.id":"027dae4c3693","container.image.repository":"ehoney/ssh","k8s.ns.name":"default","k8s.pod.name":"ssssssh-6948f886dc-b9p44","proc.cmdline":"sshd -D -e","user.name":"root"}}"#,
        );
        let s = summary(&a, None);
        assert!(s.contains("fired: wreating files in container. It occurred in container 027dae4c3693 (image ehoney/ssh), in Kubernetes pod default/ssssssh-6948f886dc-b9p44."), "{s}");
        assert!(
            s.ends_with("The process \"sshd -D -e\" ran as user root."),
            "{s}"
        );
    }

    #[test]
    fn summary_for_plain_text_alert_without_rule() {
        let mut a = alert(
            r#"{"rule":"","priority":"Warning","output":"2024-05-07T18:54:19.341081180+0000: Warning Sensitive file opened (file=/etc/shadow)"}"#,
        );
        a.format = InputFormat::PlainText;
        let s = summary(&a, None);
        assert_eq!(
            s,
            "Falco raised a Warning alert whose rule name was not recorded (plain-text alert): Sensitive file opened."
        );
    }

    #[test]
    fn summary_for_cloud_actor_and_rule_description_fallback() {
        let a = alert(
            r#"{"rule":"Console Login Without MFA","priority":"Critical","source":"aws_cloudtrail","hostname":"falco-0","output_fields":{"ct.user":"alice","ct.srcip":"203.0.113.9","ct.region":"us-east-1"}}"#,
        );
        let s = summary(
            &a,
            Some("Detect a console login without multi-factor authentication. More text."),
        );
        assert_eq!(
            s,
            "Falco rule \"Console Login Without MFA\" (Critical) fired. The rule describes: Detect a console login \
             without multi-factor authentication. It occurred in AWS region us-east-1, reported by Falco on host \
             falco-0. The actor was AWS identity alice, from 203.0.113.9."
        );
    }

    #[test]
    fn summary_for_k8s_audit_names_target_and_actor() {
        let a = alert(
            r#"{"rule":"Create Privileged Pod","priority":"Warning","source":"k8s_audit","hostname":"falco-x","output_fields":{"ka.user.name":"dev@example.com","ka.verb":"create","ka.target.resource":"pods","ka.target.namespace":"default","ka.target.name":"web-1","ka.sourceips":["10.0.0.7"]}}"#,
        );
        let s = summary(&a, None);
        assert_eq!(
            s,
            "Falco rule \"Create Privileged Pod\" (Warning) fired. It occurred on Kubernetes pods default/web-1, \
             reported by Falco on host falco-x. The actor was Kubernetes user dev@example.com, from 10.0.0.7."
        );
        let d = event_details(&a);
        assert_eq!(fact(&d, "Verb").map(|f| f.value.as_str()), Some("create"));
        assert_eq!(
            fact(&d, "Source IPs").map(|f| f.value.as_str()),
            Some("10.0.0.7")
        );
    }

    #[test]
    fn summary_keeps_one_paragraph_and_bounds_length() {
        let long = "x".repeat(1000);
        let a = alert(&format!(
            r#"{{"rule":"r\nx","priority":"Notice","output":"line1\nline2","output_fields":{{"proc.cmdline":"{long}"}}}}"#
        ));
        let s = summary(&a, None);
        assert!(!s.contains('\n'));
        assert!(s.contains("rule \"r x\""));
        assert!(s.contains("fired: line1 line2."));
        assert!(s.chars().count() < 400, "{}", s.len());
        assert!(s.contains('…'));
    }

    #[test]
    fn summary_on_host_itself() {
        let a = alert(
            r#"{"rule":"r","priority":"Notice","hostname":"node-1","output_fields":{"container.id":"host","user.uid":0}}"#,
        );
        let s = summary(&a, None);
        assert!(
            s.contains("It occurred directly on host node-1 (not in a container)."),
            "{s}"
        );
        assert!(s.ends_with("It ran as uid 0."), "{s}");
    }

    #[test]
    fn every_real_alert_gets_details_and_summary() {
        let dir = fa_testdata::alerts_dir();
        let entries = std::fs::read_dir(&dir).expect("testdata/alerts is in the repository");
        let mut n = 0;
        for e in entries.flatten() {
            if e.path().extension().and_then(|x| x.to_str()) != Some("jsonl") {
                continue;
            }
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let a = alert(line);
                let d = event_details(&a);
                let s = summary(&a, None);
                assert!(s.starts_with("On ") || s.starts_with("Falco "), "{s}");
                // Every non-empty output field shows up somewhere.
                let shown = d
                    .facts
                    .iter()
                    .map(|f| f.field.as_str())
                    .chain(d.other_fields.iter().map(|f| f.field.as_str()))
                    .collect::<Vec<_>>()
                    .join(",");
                for (k, v) in &a.output_fields {
                    let covered = v.as_text().is_none()
                        || shown.contains(k)
                        || k.starts_with("proc.aname[")
                        || k.starts_with("evt.time")
                        || k == "hostname";
                    assert!(covered, "{k} missing from {shown}");
                }
                n += 1;
            }
        }
        assert!(n >= 15, "read {n} alerts");
    }
}
