//! `output_fields`: Falco field name -> typed JSON value (string, integer, boolean, null, list).

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

/// Field name -> value, kept sorted by name, with a hash of each name beside it.
///
/// An alert has a few dozen fields and analysis reads some of them many times: a lookup is a
/// hash of the wanted name and a scan of a short array of integers, then one string compare,
/// instead of a string compare per step of a tree or binary search. Falco writes the fields in
/// order, so building the map is mostly pushes.
#[derive(Debug, Clone, Default)]
pub struct FieldMap {
    entries: Vec<(String, Value)>,
    hashes: Vec<u64>,
}

impl PartialEq for FieldMap {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries
    }
}

/// The hash `FieldMap` keeps beside each name (for callers that test names against a set of
/// their own by the same hash, see [`FieldMap::iter_hashed`]).
pub fn name_hash(name: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(name.as_bytes())
}

/// A field name with its [`name_hash`], computed once (see [`FieldMap::get_key`]).
#[derive(Debug, Clone)]
pub struct FieldKey {
    hash: u64,
    name: &'static str,
}

impl FieldKey {
    pub fn new(name: &'static str) -> Self {
        FieldKey {
            hash: name_hash(name),
            name,
        }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }
}

impl FieldMap {
    pub fn new() -> Self {
        FieldMap::default()
    }

    fn find(&self, name: &str) -> Option<usize> {
        let h = name_hash(name);
        self.hashes
            .iter()
            .enumerate()
            .filter(|(_, x)| **x == h)
            .map(|(i, _)| i)
            .find(|&i| self.entries[i].0 == name)
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.find(name).map(|i| &self.entries[i].1)
    }

    /// [`FieldMap::get`] by a name whose hash was computed once ([`FieldKey`]): for names read
    /// on every alert, where hashing the name again would be most of the lookup.
    pub fn get_key(&self, key: &FieldKey) -> Option<&Value> {
        self.hashes
            .iter()
            .enumerate()
            .filter(|(_, x)| **x == key.hash)
            .map(|(i, _)| i)
            .find(|&i| self.entries[i].0 == key.name)
            .map(|i| &self.entries[i].1)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.find(name).is_some()
    }

    /// Insert or replace; returns the previous value.
    pub fn insert(&mut self, name: String, value: Value) -> Option<Value> {
        let h = name_hash(&name);
        if self
            .entries
            .last()
            .is_none_or(|(k, _)| k.as_str() < name.as_str())
        {
            self.entries.push((name, value));
            self.hashes.push(h);
            return None;
        }
        match self
            .entries
            .binary_search_by(|(k, _)| k.as_str().cmp(name.as_str()))
        {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, value)),
            Err(i) => {
                self.entries.insert(i, (name, value));
                self.hashes.insert(i, h);
                None
            }
        }
    }

    /// Remove a field; returns its value.
    pub fn remove(&mut self, name: &str) -> Option<Value> {
        let i = self.find(name)?;
        self.hashes.remove(i);
        Some(self.entries.remove(i).1)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Fields in name order.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&String, &Value)> + ExactSizeIterator {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// Fields in name order, each with its name's [`name_hash`].
    pub fn iter_hashed(&self) -> impl Iterator<Item = (u64, &String, &Value)> {
        self.hashes
            .iter()
            .zip(self.entries.iter())
            .map(|(h, (k, v))| (*h, k, v))
    }

    /// The fields whose names start with `prefix`, in name order.
    pub fn with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a Value)> + 'a {
        let start = self.entries.partition_point(|(k, _)| k.as_str() < prefix);
        self.entries[start..]
            .iter()
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k, v))
    }
}

impl<'a> IntoIterator for &'a FieldMap {
    type Item = (&'a String, &'a Value);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (String, Value)>,
        fn(&'a (String, Value)) -> (&'a String, &'a Value),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}

impl IntoIterator for FieldMap {
    type Item = (String, Value);
    type IntoIter = std::vec::IntoIter<(String, Value)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl FromIterator<(String, Value)> for FieldMap {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(iter: I) -> Self {
        let mut m = FieldMap::new();
        for (k, v) in iter {
            m.insert(k, v);
        }
        m
    }
}

impl std::ops::Index<&str> for FieldMap {
    type Output = Value;
    /// Like `serde_json`'s maps: a missing field reads as `null`.
    fn index(&self, name: &str) -> &Value {
        static NULL: Value = Value::Null;
        self.get(name).unwrap_or(&NULL)
    }
}

impl Serialize for FieldMap {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.entries.len()))?;
        for (k, v) in &self.entries {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for FieldMap {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FieldMap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of Falco fields")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FieldMap, A::Error> {
                let mut m = FieldMap::new();
                while let Some((k, v)) = map.next_entry::<String, Value>()? {
                    m.insert(k, v);
                }
                Ok(m)
            }
        }
        d.deserialize_map(V)
    }
}

/// Reading a field as text the way Falco prints it, treating `null` and `<NA>` as absent.
pub trait FieldValueExt {
    fn as_text(&self) -> Option<Cow<'_, str>>;
    /// `as_text().is_some()`, without writing the text.
    fn has_text(&self) -> bool;
    /// `as_text().as_deref() == Some(want)`, without writing an integer or a boolean as text.
    fn text_is(&self, want: &str) -> bool;
}

/// An integer as Falco (and `serde_json`) prints it, into `buf`.
fn write_int(n: u64, negative: bool, buf: &mut [u8; 21]) -> &[u8] {
    let mut at = buf.len();
    let mut n = n;
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if negative {
        at -= 1;
        buf[at] = b'-';
    }
    &buf[at..]
}

impl FieldValueExt for Value {
    fn as_text(&self) -> Option<Cow<'_, str>> {
        match self {
            Value::Null => None,
            Value::String(s) if s.is_empty() || s == "<NA>" => None,
            Value::String(s) => Some(Cow::Borrowed(s.as_str())),
            Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
            Value::Number(n) => Some(Cow::Owned(n.to_string())),
            Value::Array(items) => {
                let parts: Vec<String> = items
                    .iter()
                    .filter_map(|v| v.as_text().map(|c| c.into_owned()))
                    .collect();
                if parts.is_empty() {
                    None
                } else {
                    Some(Cow::Owned(parts.join(",")))
                }
            }
            Value::Object(_) => Some(Cow::Owned(self.to_string())),
        }
    }

    fn has_text(&self) -> bool {
        match self {
            Value::Null => false,
            Value::String(s) => !(s.is_empty() || s == "<NA>"),
            Value::Bool(_) | Value::Number(_) | Value::Object(_) => true,
            Value::Array(items) => items.iter().any(|v| v.has_text()),
        }
    }

    fn text_is(&self, want: &str) -> bool {
        let mut buf = [0u8; 21];
        match self {
            Value::Null => false,
            Value::String(s) => !(s.is_empty() || s == "<NA>") && s == want,
            Value::Bool(b) => want == if *b { "true" } else { "false" },
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    write_int(u, false, &mut buf) == want.as_bytes()
                } else if let Some(i) = n.as_i64() {
                    write_int(i.unsigned_abs(), i < 0, &mut buf) == want.as_bytes()
                } else {
                    self.as_text().as_deref() == Some(want)
                }
            }
            Value::Array(_) | Value::Object(_) => self.as_text().as_deref() == Some(want),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_names_sorted_whatever_the_insertion_order() {
        let mut m = FieldMap::new();
        for (k, v) in [("b", 2), ("a", 1), ("d", 4), ("c", 3), ("b", 20)] {
            m.insert(k.to_string(), json!(v));
        }
        let keys: Vec<&str> = m.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a", "b", "c", "d"]);
        assert_eq!(m.get("b"), Some(&json!(20)));
        assert_eq!(m["zz"], Value::Null);
        assert!(m.contains_key("c") && !m.contains_key("e"));
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"a":1,"b":20,"c":3,"d":4}"#
        );
        let back: FieldMap = serde_json::from_str(r#"{"d":4,"a":1,"c":3,"b":20}"#).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn text_is_and_has_text_agree_with_as_text() {
        let values = [
            json!(null),
            json!(""),
            json!("<NA>"),
            json!("0"),
            json!("root"),
            json!(true),
            json!(false),
            json!(0),
            json!(7),
            json!(34816),
            json!(-1),
            json!(i64::MIN),
            json!(u64::MAX),
            json!(0.0),
            json!(1.5),
            json!([]),
            json!([null, ""]),
            json!([false, true]),
            json!({"a": 1}),
        ];
        let wants = [
            "",
            "0",
            "00",
            "-0",
            "root",
            "true",
            "false",
            "7",
            "34816",
            "-1",
            "0.0",
            "1.5",
            "false,true",
            "18446744073709551615",
            "-9223372036854775808",
        ];
        for v in &values {
            assert_eq!(v.has_text(), v.as_text().is_some(), "{v}");
            for w in wants {
                assert_eq!(
                    v.text_is(w),
                    v.as_text().as_deref() == Some(w),
                    "{v} vs {w}"
                );
            }
        }
    }

    #[test]
    fn get_key_finds_what_get_finds() {
        let m: FieldMap = [("proc.name", json!("sh")), ("user.uid", json!(0))]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        for name in ["proc.name", "user.uid", "proc.tty"] {
            assert_eq!(m.get_key(&FieldKey::new(name)), m.get(name), "{name}");
        }
    }

    #[test]
    fn prefix_scan_returns_exactly_the_prefixed_names() {
        let m: FieldMap = [
            "proc.aname",
            "proc.aname[10]",
            "proc.aname[2]",
            "proc.anames",
            "proc.name",
        ]
        .into_iter()
        .map(|k| (k.to_string(), json!(k)))
        .collect();
        let got: Vec<&str> = m
            .with_prefix("proc.aname[")
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(got, ["proc.aname[10]", "proc.aname[2]"]);
    }
}

/// An image reference split into its repository and tag: `registry:5000/team/app:1.2@sha256:..`
/// is `registry:5000/team/app` and `1.2`. The tag is a `:` after the last `/` (a registry's port
/// comes before it); a digest is dropped. `None` for the tag when there is none.
pub fn split_image(image: &str) -> (&str, Option<&str>) {
    let no_digest = image.split_once('@').map_or(image, |(r, _)| r);
    let last_slash = no_digest.rfind('/').map_or(0, |i| i + 1);
    match no_digest[last_slash..].find(':') {
        Some(i) => (
            &no_digest[..last_slash + i],
            Some(&no_digest[last_slash + i + 1..]),
        ),
        None => (no_digest, None),
    }
}

#[cfg(test)]
mod split_image_tests {
    #[test]
    fn repository_and_tag() {
        use super::split_image;
        assert_eq!(
            split_image("k8s.gcr.io/pause:3.6"),
            ("k8s.gcr.io/pause", Some("3.6"))
        );
        assert_eq!(
            split_image("registry:5000/a/b:1.2@sha256:ff"),
            ("registry:5000/a/b", Some("1.2"))
        );
        assert_eq!(
            split_image("localhost:5000/team/app@sha256:ab"),
            ("localhost:5000/team/app", None)
        );
        assert_eq!(split_image("alpine"), ("alpine", None));
    }
}
