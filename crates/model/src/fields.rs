//! `output_fields`: Falco field name -> typed JSON value (string, integer, boolean, null, list).

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasherDefault;
use std::sync::OnceLock;

/// Field name -> value, kept sorted by name, with a hash of each name beside it.
///
/// An alert has a few dozen fields and analysis reads some of them many times: a lookup is a
/// hash of the wanted name and a scan of a short array of integers, then one string compare,
/// instead of a string compare per step of a tree or binary search. Falco writes the fields in
/// order, so building the map is mostly pushes.
#[derive(Debug, Clone, Default)]
pub struct FieldMap {
    entries: Vec<(FieldName, Value)>,
    hashes: Vec<u64>,
}

/// A field's name: one of Falco's own, shared and never copied (`kb/falco_fields.txt`), or
/// whatever else the sender wrote. Every alert carries a dozen names or more, nearly always
/// Falco's: sharing them spares an allocation and a free per field.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FieldName(Cow<'static, str>);

impl FieldName {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name and its [`name_hash`]: Falco's own names are looked up by the hash.
    fn hashed(name: Cow<'_, str>) -> (FieldName, u64) {
        let h = name_hash(&name);
        let known = known_names().get(&h).filter(|k| ***k == *name);
        let name = match known {
            Some(k) => FieldName(Cow::Borrowed(*k)),
            None => FieldName(Cow::Owned(name.into_owned())),
        };
        (name, h)
    }

    /// Whether the name is one of Falco's, shared rather than owned.
    #[cfg(test)]
    fn is_shared(&self) -> bool {
        matches!(self.0, Cow::Borrowed(_))
    }
}

impl std::ops::Deref for FieldName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for FieldName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FieldName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<FieldName> for String {
    fn from(n: FieldName) -> String {
        n.0.into_owned()
    }
}

impl PartialEq<str> for FieldName {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for FieldName {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

/// A string the parser lends when it can (no escapes in it) and copies only when it must:
/// serde's own `Cow<str>` always copies.
pub(crate) struct Lent<'de>(pub(crate) Cow<'de, str>);

impl<'de> Deserialize<'de> for Lent<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Lent<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(self, s: &'de str) -> Result<Lent<'de>, E> {
                Ok(Lent(Cow::Borrowed(s)))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Lent<'de>, E> {
                Ok(Lent(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, s: String) -> Result<Lent<'de>, E> {
                Ok(Lent(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}

const FALCO_FIELDS: &str = include_str!("../../../kb/falco_fields.txt");

/// Highest index spelled out for a field that takes one (`proc.aname[16]` is Falco's deepest).
const MAX_FIELD_INDEX: usize = 16;

/// Falco's field names by [`name_hash`]: the plain ones of `kb/falco_fields.txt`, and those
/// that take an argument bare and with each index up to [`MAX_FIELD_INDEX`]. Built once from
/// our own data, so it is bounded whatever the alerts say.
fn known_names() -> &'static HashMap<u64, &'static str, BuildHasherDefault<HashIsKey>> {
    static NAMES: OnceLock<HashMap<u64, &'static str, BuildHasherDefault<HashIsKey>>> =
        OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names = HashMap::default();
        let mut add = |name: &'static str| {
            names.entry(name_hash(name)).or_insert(name);
        };
        for line in FALCO_FIELDS.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match line.strip_suffix("[]") {
                Some(bare) => {
                    add(bare);
                    for i in 0..=MAX_FIELD_INDEX {
                        add(Box::leak(format!("{bare}[{i}]").into_boxed_str()));
                    }
                }
                None => add(line),
            }
        }
        names
    })
}

/// A hasher for keys that are hashes already (name hashes, fingerprints, cache keys): hashing
/// them again would only cost time. Keys of other types are folded in byte by byte.
#[derive(Debug, Default)]
pub struct HashIsKey(u64);

impl std::hash::Hasher for HashIsKey {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
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
        let (name, h) = FieldName::hashed(Cow::Owned(name));
        self.insert_hashed(name, h, value)
    }

    fn insert_hashed(&mut self, name: FieldName, h: u64, value: Value) -> Option<Value> {
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
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&str, &Value)> + ExactSizeIterator {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Fields in name order, each with its name's [`name_hash`].
    pub fn iter_hashed(&self) -> impl Iterator<Item = (u64, &str, &Value)> {
        self.hashes
            .iter()
            .zip(self.entries.iter())
            .map(|(h, (k, v))| (*h, k.as_str(), v))
    }

    /// The fields whose names start with `prefix`, in name order.
    pub fn with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a str, &'a Value)> + 'a {
        let start = self.entries.partition_point(|(k, _)| k.as_str() < prefix);
        self.entries[start..]
            .iter()
            .take_while(move |(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.as_str(), v))
    }
}

impl<'a> IntoIterator for &'a FieldMap {
    type Item = (&'a str, &'a Value);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (FieldName, Value)>,
        fn(&'a (FieldName, Value)) -> (&'a str, &'a Value),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }
}

impl IntoIterator for FieldMap {
    type Item = (FieldName, Value);
    type IntoIter = std::vec::IntoIter<(FieldName, Value)>;
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
            m.serialize_entry(k.as_str(), v)?;
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
                // Room for what Falco usually sends, so the map is not grown step by step.
                let n = map.size_hint().unwrap_or(16).min(64);
                let mut m = FieldMap {
                    entries: Vec::with_capacity(n),
                    hashes: Vec::with_capacity(n),
                };
                while let Some(Lent(k)) = map.next_key::<Lent<'de>>()? {
                    let v: Value = map.next_value()?;
                    let (name, h) = FieldName::hashed(k);
                    m.insert_hashed(name, h, v);
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
        let keys: Vec<&str> = m.iter().map(|(k, _)| k).collect();
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
    fn falco_names_are_shared_and_the_senders_owned() {
        let m: FieldMap = serde_json::from_str(
            r#"{"proc.name":"sh","proc.n\u0061me2":2,"proc.aname[3]":"x","my.own":1,"proc.p\u006eame":"bash","proc.aname[99]":"y"}"#,
        )
        .unwrap();
        let names: Vec<(&str, bool)> = m
            .entries
            .iter()
            .map(|(k, _)| (k.as_str(), k.is_shared()))
            .collect();
        assert_eq!(
            names,
            [
                ("my.own", false),
                ("proc.aname[3]", true),
                ("proc.aname[99]", false),
                ("proc.name", true),
                ("proc.name2", false),
                ("proc.pname", true),
            ]
        );
        assert_eq!(m.get("proc.pname"), Some(&json!("bash")));
        let mut built = FieldMap::new();
        built.insert("fd.name".to_string(), json!("/etc/shadow"));
        built.insert("fd.nam".to_string(), json!("x"));
        let shared: Vec<bool> = built.entries.iter().map(|(k, _)| k.is_shared()).collect();
        assert_eq!(shared, [false, true]);
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
        let got: Vec<&str> = m.with_prefix("proc.aname[").map(|(k, _)| k).collect();
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
