use crate::fields::{FieldKey, FieldMap, FieldValueExt, Lent};
use crate::{Priority, Source};
use chrono::{DateTime, Utc};
use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;

/// A Falco rule name. Empty only for plain-text alerts whose rule could not be recovered.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct RuleName(String);

impl RuleName {
    pub fn new(s: impl Into<String>) -> Self {
        RuleName(s.into())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    pub fn is_unknown(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl fmt::Display for RuleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_unknown() {
            f.write_str("(rule not recorded)")
        } else {
            f.write_str(&self.0)
        }
    }
}

impl From<&str> for RuleName {
    fn from(s: &str) -> Self {
        RuleName(s.to_string())
    }
}

/// How an alert reached us; plain-text alerts carry much less and reports say so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum InputFormat {
    #[default]
    Json,
    PlainText,
}

/// One Falco alert. Every field but `rule` and `priority` may be missing; unknown top-level
/// keys are kept in `extra` and written back out unchanged.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Alert {
    pub time: Option<DateTime<Utc>>,
    pub rule: RuleName,
    pub priority: Option<Priority>,
    pub output: Option<String>,
    pub output_fields: FieldMap,
    pub source: Option<Source>,
    pub tags: Vec<String>,
    pub hostname: Option<String>,
    pub uuid: Option<String>,
    pub extra: Map<String, Value>,
    pub format: InputFormat,
}

/// `proc.aname[2]` to `proc.aname[16]`, spelled out so reading ancestry allocates nothing.
const ANAME_KEYS: [&str; 15] = [
    "proc.aname[2]",
    "proc.aname[3]",
    "proc.aname[4]",
    "proc.aname[5]",
    "proc.aname[6]",
    "proc.aname[7]",
    "proc.aname[8]",
    "proc.aname[9]",
    "proc.aname[10]",
    "proc.aname[11]",
    "proc.aname[12]",
    "proc.aname[13]",
    "proc.aname[14]",
    "proc.aname[15]",
    "proc.aname[16]",
];

/// The ancestry fields with their hashes, computed once.
struct AncestryKeys {
    pname: FieldKey,
    aname1: FieldKey,
    anames: Vec<FieldKey>,
}

fn ancestry_keys() -> &'static AncestryKeys {
    static KEYS: std::sync::OnceLock<AncestryKeys> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| AncestryKeys {
        pname: FieldKey::new("proc.pname"),
        aname1: FieldKey::new("proc.aname[1]"),
        anames: ANAME_KEYS.iter().map(|k| FieldKey::new(k)).collect(),
    })
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertError {
    #[error("field `{field}`: {problem}")]
    Field {
        field: &'static str,
        problem: String,
    },
    #[error("missing required field `{0}`")]
    Missing(&'static str),
}

impl Alert {
    /// A field of the alert as text, `None` when absent, null or `<NA>`.
    /// `hostname` falls back to the top-level hostname.
    pub fn field(&self, name: &str) -> Option<Cow<'_, str>> {
        if let Some(v) = self.output_fields.get(name).and_then(|v| v.as_text()) {
            return Some(v);
        }
        match name {
            "hostname" | "evt.hostname" => self.hostname.as_deref().map(Cow::Borrowed),
            _ => None,
        }
    }

    pub fn priority_or_default(&self) -> Priority {
        self.priority.unwrap_or(Priority::Warning)
    }

    /// Process ancestry as Falco reports it: parent first (`proc.pname`), then `proc.aname[2]`...
    pub fn ancestors(&self) -> Vec<Cow<'_, str>> {
        let mut out = Vec::new();
        self.walk_ancestors(|a| {
            out.push(a);
            None::<()>
        });
        out
    }

    /// The first of [`Alert::ancestors`], in order, that `want` accepts. Reads no further than
    /// needed and collects nothing.
    pub fn find_ancestor(&self, mut want: impl FnMut(&str) -> bool) -> Option<Cow<'_, str>> {
        self.walk_ancestors(|a| want(&a).then_some(a))
    }

    /// Each ancestor in order, until `f` returns something.
    fn walk_ancestors<'a, T>(&'a self, mut f: impl FnMut(Cow<'a, str>) -> Option<T>) -> Option<T> {
        // The names' hashes are computed once: ancestry is read for many alerts.
        let keys = ancestry_keys();
        let fields = &self.output_fields;
        let parent = fields
            .get_key(&keys.pname)
            .and_then(|v| v.as_text())
            .or_else(|| fields.get_key(&keys.aname1).and_then(|v| v.as_text()));
        if let Some(found) = parent.and_then(&mut f) {
            return Some(found);
        }
        for (i, key) in keys.anames.iter().enumerate() {
            let Some(v) = fields.get_key(key) else {
                if i > 0 {
                    break;
                }
                continue;
            };
            if let Some(found) = v.as_text().and_then(&mut f) {
                return Some(found);
            }
        }
        None
    }

    /// A stable content hash (xxh3 of the canonical JSON form), used when no uuid names the alert.
    pub fn content_hash(&self) -> u64 {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        xxhash_rust::xxh3::xxh3_64(&bytes)
    }

    /// A name safe to use as a file name: the uuid when it looks like one, else the content hash.
    /// The uuid comes from the sender, so anything but `[A-Za-z0-9-]` falls back to the hash.
    pub fn report_id(&self) -> String {
        match &self.uuid {
            Some(u)
                if !u.is_empty()
                    && u.len() <= 64
                    && u.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
            {
                u.clone()
            }
            _ => format!("{:016x}", self.content_hash()),
        }
    }

    /// The rule text of `output` without Falco's leading time and priority.
    pub fn message(&self) -> Option<&str> {
        let out = self.output.as_deref()?;
        Some(strip_output_prefix(out, self.priority))
    }

    /// Parse one JSON value (already decoded) into an alert, naming the field that is wrong.
    pub fn from_value(v: Value) -> Result<Alert, AlertError> {
        match v {
            Value::Object(map) => Alert::from_map(map),
            other => Err(AlertError::Field {
                field: "(top level)",
                problem: format!("expected a JSON object, found {}", kind_of(&other)),
            }),
        }
    }

    fn from_map(map: Map<String, Value>) -> Result<Alert, AlertError> {
        let mut a = Alert::default();
        let mut saw_rule = false;
        for (k, v) in map {
            a.set(Cow::Owned(k), v, &mut saw_rule)?;
        }
        a.finish(saw_rule)
    }

    /// `time`, `priority` or `source` given as a string: read, not kept (so a parser can lend
    /// the text instead of copying it). Other keys are left alone.
    fn set_text(&mut self, k: &str, s: &str) -> Result<(), AlertError> {
        match k {
            "time" => self.time = Some(time_from_text(s)?),
            "priority" => {
                self.priority = Some(s.parse().map_err(|e: crate::priority::UnknownPriority| {
                    AlertError::Field {
                        field: "priority",
                        problem: e.to_string(),
                    }
                })?)
            }
            "source" => self.source = Some(Source::parse(s)),
            _ => {}
        }
        Ok(())
    }

    fn set(&mut self, k: Cow<'_, str>, v: Value, saw_rule: &mut bool) -> Result<(), AlertError> {
        match k.as_ref() {
            "time" | "priority" | "source" if v.is_string() => {
                self.set_text(&k, v.as_str().unwrap_or_default())?
            }
            "time" => self.time = parse_time_value(&v)?,
            "rule" => {
                *saw_rule = true;
                self.rule = RuleName(expect_string("rule", v)?.unwrap_or_default());
            }
            // Not a string (a string is `set_text`'s): null leaves it unset, the rest is an error.
            "priority" => {
                expect_string("priority", v)?;
            }
            "output" => self.output = expect_string("output", v)?,
            "output_fields" => match v {
                Value::Object(m) => self.output_fields = m.into_iter().collect(),
                Value::Null => {}
                other => {
                    return Err(AlertError::Field {
                        field: "output_fields",
                        problem: format!("expected an object, found {}", kind_of(&other)),
                    })
                }
            },
            // Not a string either (see above): null unsets it, the rest is an error.
            "source" => {
                expect_string("source", v)?;
                self.source = None;
            }
            "tags" => match v {
                Value::Array(items) => {
                    let mut tags = Vec::with_capacity(items.len());
                    for it in items {
                        match it {
                            Value::String(s) => tags.push(s),
                            other => {
                                return Err(AlertError::Field {
                                    field: "tags",
                                    problem: format!("expected strings, found {}", kind_of(&other)),
                                })
                            }
                        }
                    }
                    self.tags = tags;
                }
                Value::Null => {}
                other => {
                    return Err(AlertError::Field {
                        field: "tags",
                        problem: format!("expected a list of strings, found {}", kind_of(&other)),
                    })
                }
            },
            "hostname" => self.hostname = expect_string("hostname", v)?,
            "uuid" => self.uuid = expect_string("uuid", v)?,
            _ => {
                self.extra.insert(k.into_owned(), v);
            }
        }
        Ok(())
    }

    fn finish(self, saw_rule: bool) -> Result<Alert, AlertError> {
        if !saw_rule {
            return Err(AlertError::Missing("rule"));
        }
        if self.priority.is_none() {
            return Err(AlertError::Missing("priority"));
        }
        Ok(self)
    }
}

/// Strip `2024-05-07T18:54:19.341081180+0000: Warning ` or `23:50:54.719348051: Error ` from
/// the front of an output line; leave anything else alone.
pub fn strip_output_prefix(out: &str, priority: Option<Priority>) -> &str {
    let Some((head, rest)) = out.split_once(": ") else {
        return out;
    };
    let looks_like_time = head.len() >= 8
        && head.as_bytes()[0].is_ascii_digit()
        && head
            .bytes()
            .all(|b| b.is_ascii_digit() || b":.-+TZ".contains(&b));
    if !looks_like_time {
        return out;
    }
    let rest = rest.trim_start();
    if let Some((word, tail)) = rest.split_once(' ') {
        let is_prio = word.parse::<Priority>().is_ok();
        if is_prio && priority.is_none_or(|p| word.parse::<Priority>() == Ok(p)) {
            return tail;
        }
    }
    rest
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn expect_string(field: &'static str, v: Value) -> Result<Option<String>, AlertError> {
    match v {
        Value::String(s) => Ok(Some(s)),
        Value::Null => Ok(None),
        other => Err(AlertError::Field {
            field,
            problem: format!("expected a string, found {}", kind_of(&other)),
        }),
    }
}

/// RFC 3339 (what Falco and Falcosidekick write), Falco's text form with `+0000`, or an
/// integer of nanoseconds since the epoch.
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z")
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// [`parse_time`] with the error naming the field and what it held.
fn time_from_text(s: &str) -> Result<DateTime<Utc>, AlertError> {
    parse_time(s).ok_or_else(|| AlertError::Field {
        field: "time",
        problem: format!("`{}` is not an RFC 3339 timestamp", truncate(s, 60)),
    })
}

fn parse_time_value(v: &Value) -> Result<Option<DateTime<Utc>>, AlertError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => time_from_text(s).map(Some),
        Value::Number(n) => match n.as_i64() {
            Some(ns) => Ok(Some(DateTime::from_timestamp_nanos(ns))),
            None => Err(AlertError::Field {
                field: "time",
                problem: format!("{n} is not a timestamp in nanoseconds"),
            }),
        },
        other => Err(AlertError::Field {
            field: "time",
            problem: format!("expected a string, found {}", kind_of(other)),
        }),
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let t: String = s.chars().take(n).collect();
        format!("{t}…")
    }
}

// Serialization writes Falco's own shape back (time in RFC 3339 with nanoseconds).
impl Serialize for Alert {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        if let Some(t) = &self.time {
            m.serialize_entry(
                "time",
                &t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            )?;
        }
        m.serialize_entry("rule", &self.rule)?;
        if let Some(p) = &self.priority {
            m.serialize_entry("priority", p)?;
        }
        if let Some(o) = &self.output {
            m.serialize_entry("output", o)?;
        }
        m.serialize_entry("output_fields", &self.output_fields)?;
        if let Some(src) = &self.source {
            m.serialize_entry("source", src)?;
        }
        m.serialize_entry("tags", &self.tags)?;
        if let Some(h) = &self.hostname {
            m.serialize_entry("hostname", h)?;
        }
        if let Some(u) = &self.uuid {
            m.serialize_entry("uuid", u)?;
        }
        for (k, v) in &self.extra {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

// Deserializing straight from the input (no intermediate `Value` for the top level) keeps
// parsing as fast as a bare `serde_json::Value` parse.
/// `output_fields`: an object (into a [`FieldMap`]) or null; anything else is an error naming
/// the field, as [`Alert::from_value`] gives.
struct FieldsSeed;

impl<'de> de::DeserializeSeed<'de> for FieldsSeed {
    type Value = Option<FieldMap>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FieldsSeed {
    type Value = Option<FieldMap>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("field `output_fields`: an object")
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        FieldMap::deserialize(de::value::MapAccessDeserializer::new(map)).map(Some)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Err(not_an_object("a boolean"))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Err(not_an_object("a number"))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Err(not_an_object("a number"))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Err(not_an_object("a number"))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Err(not_an_object("a string"))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(not_an_object("a list"))
    }
}

fn not_an_object<E: de::Error>(found: &str) -> E {
    E::custom(AlertError::Field {
        field: "output_fields",
        problem: format!("expected an object, found {found}"),
    })
}

/// A top-level value as the parser gives it: a string lent where it can be, anything else as
/// JSON.
enum Scalar<'de> {
    Text(Cow<'de, str>),
    Other(Value),
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Text(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Text(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Text(Cow::Owned(s)))
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Other(Value::Bool(b)))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Other(Value::from(n)))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Other(Value::from(n)))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Other(Value::from(n)))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Other(Value::Null))
            }
            fn visit_none<E: de::Error>(self) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Other(Value::Null))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Scalar<'de>, D::Error> {
                Scalar::deserialize(d)
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Scalar<'de>, A::Error> {
                Value::deserialize(de::value::SeqAccessDeserializer::new(seq)).map(Scalar::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Scalar<'de>, A::Error> {
                Value::deserialize(de::value::MapAccessDeserializer::new(map)).map(Scalar::Other)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Alert {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Alert;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a Falco alert object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Alert, A::Error> {
                let mut a = Alert::default();
                let mut saw_rule = false;
                while let Some(Lent(k)) = map.next_key::<Lent<'de>>()? {
                    if k == "output_fields" {
                        // Straight into the field map: no intermediate JSON object.
                        if let Some(f) = map.next_value_seed(FieldsSeed)? {
                            a.output_fields = f;
                        }
                        continue;
                    }
                    if matches!(k.as_ref(), "time" | "priority" | "source") {
                        // Read in place: these strings are parsed, not kept.
                        match map.next_value::<Scalar<'de>>()? {
                            Scalar::Text(s) => a.set_text(&k, &s),
                            Scalar::Other(v) => a.set(k, v, &mut saw_rule),
                        }
                        .map_err(de::Error::custom)?;
                        continue;
                    }
                    let v: Value = map.next_value()?;
                    a.set(k, v, &mut saw_rule).map_err(de::Error::custom)?;
                }
                a.finish(saw_rule).map_err(de::Error::custom)
            }
        }
        d.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = r#"{"hostname":"h1","output":"2024-05-07T18:54:19.341081180+0000: Warning Sensitive file opened (file=/etc/shadow)","priority":"Warning","rule":"Read sensitive file untrusted","source":"syscall","tags":["T1555"],"time":"2024-05-07T18:54:19.341081180Z","output_fields":{"proc.pname":"sh","proc.aname[2]":"bash","proc.aname[3]":null,"proc.tty":0,"evt.failed":true},"x_custom":{"a":1}}"#;

    #[test]
    fn parses_a_falco_line_and_keeps_unknown_fields() {
        let a: Alert = serde_json::from_str(LINE).unwrap();
        assert_eq!(a.rule.as_str(), "Read sensitive file untrusted");
        assert_eq!(a.priority, Some(Priority::Warning));
        assert_eq!(a.source, Some(Source::Syscall));
        assert_eq!(a.time.unwrap().timestamp_subsec_nanos(), 341081180);
        assert_eq!(a.extra.get("x_custom"), Some(&serde_json::json!({"a":1})));
        assert_eq!(a.field("proc.tty").as_deref(), Some("0"));
        assert_eq!(a.field("evt.failed").as_deref(), Some("true"));
        assert_eq!(a.field("proc.aname[3]"), None);
        assert_eq!(a.ancestors(), vec!["sh", "bash"]);
        assert_eq!(
            a.message(),
            Some("Sensitive file opened (file=/etc/shadow)")
        );
    }

    #[test]
    fn round_trips_through_serialize() {
        let a: Alert = serde_json::from_str(LINE).unwrap();
        let again: Alert = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(a, again);
    }

    #[test]
    fn value_and_direct_parse_agree_and_errors_name_fields() {
        let v: Value = serde_json::from_str(LINE).unwrap();
        assert_eq!(
            Alert::from_value(v).unwrap(),
            serde_json::from_str(LINE).unwrap()
        );
        let e = Alert::from_value(serde_json::json!({"rule":"r","priority":"Loud"})).unwrap_err();
        assert!(e.to_string().contains("priority"), "{e}");
        let e = Alert::from_value(serde_json::json!({"priority":"Debug"})).unwrap_err();
        assert_eq!(e, AlertError::Missing("rule"));
        let e = Alert::from_value(
            serde_json::json!({"rule":"r","priority":"Debug","time":"yesterday"}),
        )
        .unwrap_err();
        assert!(e.to_string().contains("time"), "{e}");
    }

    /// `time`, `priority` and `source` are read in place by the parser: every shape they come
    /// in (escaped, null, a number, a list, an object) gives what the `Value` path gives.
    #[test]
    fn lent_top_level_values_read_like_owned_ones() {
        let shapes = [
            r#""time":"2024-05-07T18:54:19.341081180Z""#,
            r#""time":"2024-05-07T18:54:19.341081180\u005a""#,
            r#""time":1715108059341081180"#,
            r#""time":null"#,
            r#""time":"yesterday""#,
            r#""time":true"#,
            r#""time":[1]"#,
            r#""time":1.5"#,
            r#""priority":"Warn\u0069ng""#,
            r#""priority":"Loud""#,
            r#""priority":null"#,
            r#""priority":3"#,
            r#""source":"SYSCALLS""#,
            r#""source":" k8s_audit ""#,
            r#""source":"my_plugin""#,
            r#""source":"\u006fkta""#,
            r#""source":null"#,
            r#""source":{"a":1}"#,
        ];
        for shape in shapes {
            let priority = if shape.starts_with(r#""priority""#) {
                ""
            } else {
                r#""priority":"Notice","#
            };
            let line = format!(r#"{{"rule":"r",{priority}{shape}}}"#);
            let direct = serde_json::from_str::<Alert>(&line).map_err(|e| e.to_string());
            let value: Value = serde_json::from_str(&line).unwrap();
            let via_value = Alert::from_value(value).map_err(|e| e.to_string());
            match (&direct, &via_value) {
                (Ok(a), Ok(b)) => assert_eq!(a, b, "{shape}"),
                (Err(a), Err(b)) => assert!(a.contains(b.as_str()), "{shape}: {a} / {b}"),
                _ => panic!("{shape}: {direct:?} / {via_value:?}"),
            }
        }
        let a: Alert =
            serde_json::from_str(r#"{"rule":"r","priority":"Warn\u0069ng","source":"\u006fkta"}"#)
                .unwrap();
        assert_eq!(a.priority, Some(Priority::Warning));
        assert_eq!(a.source, Some(Source::Okta));
    }

    #[test]
    fn report_id_never_uses_an_unsafe_uuid() {
        let mut a: Alert = serde_json::from_str(LINE).unwrap();
        a.uuid = Some("87a85bcd-775f-4538-aead-75ba8a1e8572".into());
        assert_eq!(a.report_id(), "87a85bcd-775f-4538-aead-75ba8a1e8572");
        a.uuid = Some("../../etc/passwd".into());
        assert_eq!(a.report_id().len(), 16);
        assert!(!a.report_id().contains('/'));
    }

    #[test]
    fn strips_short_time_prefix() {
        assert_eq!(
            strip_output_prefix(
                "23:50:54.719348051: Error wreating files",
                Some(Priority::Error)
            ),
            "wreating files"
        );
        assert_eq!(
            strip_output_prefix("no prefix: here", None),
            "no prefix: here"
        );
    }
}
