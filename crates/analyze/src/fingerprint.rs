//! Alert fingerprints: what makes two alerts "the same thing" for de-duplication.

use fa_model::fields::FieldValueExt;
use fa_model::Alert;
use serde::{Deserialize, Serialize};
use std::fmt;
use xxhash_rust::xxh3::Xxh3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Fingerprint(pub u64);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl std::str::FromStr for Fingerprint {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        u64::from_str_radix(s, 16).map(Fingerprint)
    }
}

/// Identity fields per source beyond the process ones: who acted and on what.
const ACTOR_FIELDS: &[&str] = &[
    "ka.user.name",
    "ka.verb",
    "ka.target.resource",
    "ka.target.namespace",
    "ct.user",
    "ct.name",
    "gcp.user",
    "gcp.methodName",
    "github.user",
    "github.repo",
    "github.action",
    "okta.actor.name",
    "okta.evt.type",
];

/// The fingerprint's hash input: labelled values, some normalised through one reused buffer.
struct Parts {
    h: Xxh3,
    buf: String,
}

impl Parts {
    fn put(&mut self, label: &str, v: &str) {
        self.h.update(label.as_bytes());
        self.h.update(&[0]);
        self.h.update(v.as_bytes());
        self.h.update(&[0xff]);
    }

    fn put_normalized(&mut self, label: &str, v: &str) {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        normalize_into(v, &mut buf);
        self.put(label, &buf);
        self.buf = buf;
    }
}

/// rule + (image, else host) + executable + normalised command line + parent + actor fields.
pub fn fingerprint(alert: &Alert) -> Fingerprint {
    let mut p = Parts {
        h: Xxh3::new(),
        buf: String::new(),
    };
    p.put("rule", alert.rule.as_str());
    match alert
        .field("container.image.repository")
        .or_else(|| alert.field("container.image"))
    {
        Some(img) => p.put("image", &img),
        None => p.put("host", alert.hostname.as_deref().unwrap_or("")),
    }
    if let Some(exe) = alert
        .field("proc.exepath")
        .or_else(|| alert.field("proc.exe"))
        .or_else(|| alert.field("proc.name"))
    {
        p.put_normalized("exe", &exe);
    }
    if let Some(cmd) = alert.field("proc.cmdline") {
        p.put_normalized("cmd", &cmd);
    }
    if let Some(parent) = alert.field("proc.pname") {
        p.put("parent", &parent);
    }
    if let Some(f) = alert.field("fd.name") {
        p.put_normalized("fd", &f);
    }
    // One pass over the alert's fields instead of a lookup per actor field: most alerts
    // (syscall) have none of them. Hashed in ACTOR_FIELDS order.
    let mut actors: [Option<std::borrow::Cow<'_, str>>; ACTOR_FIELDS.len()] = Default::default();
    for (k, v) in &alert.output_fields {
        let cloud = ["ka.", "ct.", "gcp.", "github.", "okta."]
            .iter()
            .any(|prefix| k.starts_with(prefix));
        if !cloud {
            continue;
        }
        if let Some(i) = ACTOR_FIELDS.iter().position(|f| f == k) {
            actors[i] = v.as_text();
        }
    }
    for (f, v) in ACTOR_FIELDS.iter().zip(&actors) {
        if let Some(v) = v {
            p.put_normalized(f, v);
        }
    }
    if alert.rule.is_unknown() {
        if let Some(m) = alert.message() {
            p.put_normalized("msg", m);
        }
    }
    Fingerprint(p.h.digest())
}

/// Collapse what varies between repeats of the same activity: numbers, hex hashes, uuids and
/// random-looking tokens (temp names, base64) become `#`, `<hex>` and `<rand>`.
pub fn normalize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    normalize_into(s, &mut out);
    out
}

/// [`normalize`] appending to `out`.
pub fn normalize_into(s: &str, out: &mut String) {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if is_word(c as char) {
            let start = i;
            while i < bytes.len() && is_word(bytes[i] as char) {
                i += 1;
            }
            push_token(&s[start..i], out);
        } else {
            // Non-word bytes (including multi-byte UTF-8) are copied as they are.
            let ch_len = utf8_len(c);
            let end = (i + ch_len).min(bytes.len());
            out.push_str(s.get(i..end).unwrap_or(""));
            i = end.max(i + 1);
        }
    }
}

fn utf8_len(first: u8) -> usize {
    match first {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    }
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn push_token(t: &str, out: &mut String) {
    let digits = t.bytes().filter(u8::is_ascii_digit).count();
    if digits == t.len() {
        out.push('#');
        return;
    }
    let hex = t.bytes().all(|b| b.is_ascii_hexdigit());
    if hex && t.len() >= 8 && digits > 0 {
        out.push_str("<hex>");
        return;
    }
    // A word followed by a run of digits (`generator3982217557`, `worker-12`): keep the word.
    let trimmed = t.trim_end_matches(|c: char| c.is_ascii_digit());
    if t.len() - trimmed.len() >= 3 && !trimmed.bytes().any(|b| b.is_ascii_digit()) {
        out.push_str(trimmed);
        out.push('#');
        return;
    }
    let upper = t.bytes().filter(u8::is_ascii_uppercase).count();
    let lower = t.bytes().filter(u8::is_ascii_lowercase).count();
    // Random names: long tokens mixing digits with letters (mktemp, base64, generated pod suffixes).
    if t.len() >= 10
        && digits >= 2
        && (upper + lower) >= 2
        && (digits * 4 >= t.len() || (upper >= 2 && lower >= 2))
    {
        out.push_str("<rand>");
        return;
    }
    out.push_str(t);
}

/// A hasher for keys that are hashes already (fingerprints).
#[derive(Default)]
pub struct FingerprintHasher(u64);

impl std::hash::Hasher for FingerprintHasher {
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

/// A map keyed by fingerprint, hashed by [`FingerprintHasher`].
pub type FingerprintMap<V> =
    std::collections::HashMap<Fingerprint, V, std::hash::BuildHasherDefault<FingerprintHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_what_varies() {
        assert_eq!(
            normalize("/tmp/falco-event-generator3982217557/httpd"),
            "/tmp/falco-event-generator#/httpd"
        );
        assert_eq!(normalize("sleep 30"), "sleep #");
        assert_eq!(
            normalize("cat /proc/1234/environ 9656db3bb3588e7b23da7d48fe8894"),
            "cat /proc/#/environ <hex>"
        );
        assert_eq!(
            normalize("mktemp /tmp/tmp.aZ3kQ9x7Lm2p"),
            "mktemp /tmp/tmp.<rand>"
        );
        assert_eq!(
            normalize("ip link del calico_tmp_A"),
            "ip link del calico_tmp_A"
        );
        assert_eq!(normalize("héllo wörld 12"), "héllo wörld #");
    }

    fn alert(cmd: &str, rule: &str) -> Alert {
        serde_json::from_value(serde_json::json!({
            "rule": rule, "priority": "Notice", "hostname": "h",
            "output_fields": {"proc.cmdline": cmd, "proc.exepath": "/bin/sleep", "proc.pname": "sh"}
        }))
        .unwrap()
    }

    #[test]
    fn repeats_share_a_fingerprint_and_different_activity_does_not() {
        assert_eq!(
            fingerprint(&alert("sleep 30", "R")),
            fingerprint(&alert("sleep 45", "R"))
        );
        assert_ne!(
            fingerprint(&alert("sleep 30", "R")),
            fingerprint(&alert("sleep 30", "S"))
        );
        assert_ne!(
            fingerprint(&alert("sleep 30", "R")),
            fingerprint(&alert("cat /etc/shadow", "R"))
        );
    }
}
