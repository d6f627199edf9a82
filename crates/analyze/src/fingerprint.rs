//! Alert fingerprints: what makes two alerts "the same thing" for de-duplication.

use fa_model::fields::FieldValueExt;
use fa_model::Alert;
use serde::{Deserialize, Serialize};
use std::fmt;

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

/// The fingerprint's hash input: labelled values, some normalised, written into one buffer
/// and hashed once (the same digest as feeding them to a streaming xxh3 one by one, which is
/// how earlier versions computed it, at a fraction of the cost).
struct Parts {
    buf: Vec<u8>,
}

impl Parts {
    fn put(&mut self, label: &str, v: &str) {
        self.label(label);
        self.buf.extend_from_slice(v.as_bytes());
        self.buf.push(0xff);
    }

    fn put_normalized(&mut self, label: &str, v: &str) {
        self.label(label);
        normalize_bytes(v, &mut self.buf);
        self.buf.push(0xff);
    }

    fn label(&mut self, label: &str) {
        self.buf.extend_from_slice(label.as_bytes());
        self.buf.push(0);
    }

    fn digest(&self) -> u64 {
        xxhash_rust::xxh3::xxh3_64(&self.buf)
    }
}

/// rule + (image, else host) + executable + normalised command line + parent + actor fields.
pub fn fingerprint(alert: &Alert) -> Fingerprint {
    let mut p = Parts {
        buf: Vec::with_capacity(256),
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
        if let Some(i) = ACTOR_FIELDS.iter().position(|f| *f == k) {
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
    Fingerprint(p.digest())
}

/// Collapse what varies between repeats of the same activity: numbers, hex hashes, uuids and
/// random-looking tokens (temp names, base64) become `#`, `<hex>` and `<rand>`.
pub fn normalize(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    normalize_bytes(s, &mut out);
    // Tokens are ASCII words and the bytes between them are copied whole, so UTF-8 stays UTF-8.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// [`normalize`] appending to `out`: words (`[A-Za-z0-9_]+`) go through [`push_token`]; every run
/// of other bytes (punctuation, spaces, multi-byte UTF-8) is copied at once.
fn normalize_bytes(s: &str, out: &mut Vec<u8>) {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        if is_word(bytes[i]) {
            while i < bytes.len() && is_word(bytes[i]) {
                i += 1;
            }
            push_token(&bytes[start..i], out);
        } else {
            while i < bytes.len() && !is_word(bytes[i]) {
                i += 1;
            }
            out.extend_from_slice(&bytes[start..i]);
        }
    }
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// One word, in one pass over its bytes: all digits -> `#`; hex of 8+ with a digit ->
/// `<hex>`; a digit-free word ending in 3+ digits -> the word and `#`; a long token mixing
/// letters and digits like a random name -> `<rand>`; anything else as it is.
fn push_token(t: &[u8], out: &mut Vec<u8>) {
    let (mut digits, mut upper, mut lower) = (0usize, 0usize, 0usize);
    let mut hex = true;
    // Digits since the last non-digit, and whether a digit came before that.
    let (mut trailing, mut digit_before_trailing) = (0usize, false);
    for &b in t {
        if b.is_ascii_digit() {
            digits += 1;
            trailing += 1;
        } else {
            digit_before_trailing |= trailing > 0;
            trailing = 0;
            hex &= b.is_ascii_hexdigit();
            upper += usize::from(b.is_ascii_uppercase());
            lower += usize::from(b.is_ascii_lowercase());
        }
    }
    if digits == t.len() {
        out.push(b'#');
        return;
    }
    if hex && t.len() >= 8 && digits > 0 {
        out.extend_from_slice(b"<hex>");
        return;
    }
    // A word followed by a run of digits (`generator3982217557`, `worker-12`): keep the word.
    if trailing >= 3 && !digit_before_trailing {
        out.extend_from_slice(&t[..t.len() - trailing]);
        out.push(b'#');
        return;
    }
    // Random names: long tokens mixing digits with letters (mktemp, base64, generated pod suffixes).
    if t.len() >= 10
        && digits >= 2
        && (upper + lower) >= 2
        && (digits * 4 >= t.len() || (upper >= 2 && lower >= 2))
    {
        out.extend_from_slice(b"<rand>");
        return;
    }
    out.extend_from_slice(t);
}

/// A hasher for keys that are hashes already (fingerprints).
pub type FingerprintHasher = fa_model::fields::HashIsKey;

/// A map keyed by fingerprint, hashed by [`FingerprintHasher`].
pub type FingerprintMap<V> =
    std::collections::HashMap<Fingerprint, V, std::hash::BuildHasherDefault<FingerprintHasher>>;

#[cfg(test)]
mod tests {
    use super::*;

    /// The multi-pass normaliser earlier versions used, kept as the reference the one-pass
    /// version must agree with (fingerprints are stored across versions).
    fn normalize_reference(s: &str) -> String {
        fn token(t: &str, out: &mut String) {
            let digits = t.bytes().filter(u8::is_ascii_digit).count();
            if digits == t.len() {
                return out.push('#');
            }
            if t.bytes().all(|b| b.is_ascii_hexdigit()) && t.len() >= 8 && digits > 0 {
                return out.push_str("<hex>");
            }
            let trimmed = t.trim_end_matches(|c: char| c.is_ascii_digit());
            if t.len() - trimmed.len() >= 3 && !trimmed.bytes().any(|b| b.is_ascii_digit()) {
                out.push_str(trimmed);
                return out.push('#');
            }
            let upper = t.bytes().filter(u8::is_ascii_uppercase).count();
            let lower = t.bytes().filter(u8::is_ascii_lowercase).count();
            if t.len() >= 10
                && digits >= 2
                && (upper + lower) >= 2
                && (digits * 4 >= t.len() || (upper >= 2 && lower >= 2))
            {
                return out.push_str("<rand>");
            }
            out.push_str(t)
        }
        let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
        let mut out = String::new();
        let mut rest = s;
        while let Some(c) = rest.chars().next() {
            let end = if word(c) {
                rest.find(|c: char| !word(c)).unwrap_or(rest.len())
            } else {
                c.len_utf8()
            };
            if word(c) {
                token(&rest[..end], &mut out);
            } else {
                out.push_str(&rest[..end]);
            }
            rest = &rest[end..];
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn one_pass_normalising_agrees_with_the_reference(
            s in "([a-fA-F0-9]{1,12}|[a-zA-Z_]{1,6}|[0-9]{1,5}|[ /.:=-]|é|日|\\PC){0,12}"
        ) {
            proptest::prop_assert_eq!(normalize(&s), normalize_reference(&s));
        }
    }

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

    /// Fingerprints are stored (clusters, triage, the service's database) and compared with
    /// those of later alerts: the same activity must keep its fingerprint from one version to
    /// the next. Pinned from the implementation of 2026-12 (streamed xxh3).
    #[test]
    fn fingerprints_stay_what_earlier_versions_stored() {
        let cases = [
            serde_json::json!({"rule": "Terminal shell in container", "priority": "Notice",
                "hostname": "node-1", "output_fields": {
                "container.image.repository": "nginx", "proc.exepath": "/usr/bin/bash",
                "proc.cmdline": "bash -c 'sleep 30; cat /proc/1234/environ 9656db3bb3588e7b23da7d48fe8894 /tmp/tmp.aZ3kQ9x7Lm2p héllo'",
                "proc.pname": "runc", "fd.name": "/dev/pts/0"}}),
            serde_json::json!({"rule": "Create Privileged Pod", "priority": "Warning",
                "source": "k8s_audit", "output_fields": {"ka.user.name": "system:serviceaccount:ci:deployer-2",
                "ka.verb": "create", "ka.target.resource": "pods", "ka.target.namespace": "ci-7"}}),
            serde_json::json!({"rule": "", "priority": "Error", "hostname": "h",
                "output": "12:00:01.123: Error Something odd happened (pid=4242 file=/var/x_998877)"}),
            serde_json::json!({"rule": "Read sensitive file untrusted", "priority": "Warning",
                "output_fields": {"proc.name": "cat", "fd.name": "/etc/shadow", "ct.user": "x"}}),
        ];
        let got: Vec<String> = cases
            .iter()
            .map(|v| fingerprint(&serde_json::from_value(v.clone()).unwrap()).to_string())
            .collect();
        assert_eq!(
            got,
            [
                "6e2b0bfcd4a220e0",
                "854416b15374551e",
                "f430eaee31eb2b21",
                "db4714e2823b7a6d"
            ]
        );
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
