//! Compiled benign-signature conditions.

use super::schema::{AttackEvidence, Condition, SignatureEntry, SignatureKind, SignatureSource};
use fa_model::{Alert, FieldValueExt};
use globset::{Glob, GlobMatcher};
use regex::Regex;

/// Fields a condition on `ancestry` looks at, nearest ancestor first.
const ANCESTRY_FIELDS: &[&str] = &["proc.pname", "proc.pexepath", "proc.pexe", "proc.pcmdline"];
/// The ancestors beyond the parent, `proc.aname[N]`, which `ancestry` scans as one range.
pub const ANCESTRY_PREFIX: &str = "proc.aname[";

#[derive(Debug, Clone)]
enum Op {
    Equals(String),
    OneOf(Vec<String>),
    Glob(GlobMatcher),
    Prefix(String),
    Suffix(String),
    Contains(String),
    Regex(Regex),
    Absent(bool),
}

#[derive(Debug, Clone)]
pub struct Matcher {
    field: String,
    op: Op,
}

impl Matcher {
    pub fn compile(c: &Condition) -> Result<Matcher, String> {
        let mut ops = Vec::new();
        if let Some(v) = &c.equals {
            ops.push(Op::Equals(v.clone()));
        }
        if let Some(v) = &c.one_of {
            ops.push(Op::OneOf(v.clone()));
        }
        if let Some(v) = &c.glob {
            let g = Glob::new(v).map_err(|e| format!("glob `{v}`: {e}"))?;
            ops.push(Op::Glob(g.compile_matcher()));
        }
        if let Some(v) = &c.prefix {
            ops.push(Op::Prefix(v.clone()));
        }
        if let Some(v) = &c.suffix {
            ops.push(Op::Suffix(v.clone()));
        }
        if let Some(v) = &c.contains {
            ops.push(Op::Contains(v.clone()));
        }
        if let Some(v) = &c.regex {
            ops.push(Op::Regex(
                Regex::new(v).map_err(|e| format!("regex `{v}`: {e}"))?,
            ));
        }
        if let Some(v) = c.absent {
            ops.push(Op::Absent(v));
        }
        if ops.len() != 1 {
            return Err(format!(
                "condition on `{}` must set exactly one of equals, one_of, glob, prefix, suffix, contains, regex, absent (found {})",
                c.field,
                ops.len()
            ));
        }
        Ok(Matcher {
            field: c.field.clone(),
            op: ops.remove(0),
        })
    }

    pub fn field(&self) -> &str {
        &self.field
    }

    fn test(&self, v: &str) -> bool {
        match &self.op {
            Op::Equals(x) => v == x,
            Op::OneOf(xs) => xs.iter().any(|x| x == v),
            Op::Glob(g) => g.is_match(v),
            Op::Prefix(x) => v.starts_with(x.as_str()),
            Op::Suffix(x) => v.ends_with(x.as_str()),
            Op::Contains(x) => v.contains(x.as_str()),
            Op::Regex(r) => r.is_match(v),
            Op::Absent(want) => !*want,
        }
    }

    /// The value that matched, for the reason shown to the analyst.
    pub fn matching_value(&self, alert: &Alert) -> Option<(String, String)> {
        if self.field == "ancestry" {
            for f in ANCESTRY_FIELDS {
                if let Some(v) = alert.field(f) {
                    if self.test(&v) {
                        return Some((f.to_string(), v.into_owned()));
                    }
                }
            }
            // `proc.aname[N]` keys sort together: one range scan instead of a lookup per level,
            // and the nearest matching ancestor (smallest N) is the evidence.
            const ANAME: &str = ANCESTRY_PREFIX;
            let mut best: Option<(u32, &str, std::borrow::Cow<'_, str>)> = None;
            for (k, v) in alert.output_fields.with_prefix(ANAME) {
                let Some(n) = k[ANAME.len()..]
                    .strip_suffix(']')
                    .and_then(|n| n.parse::<u32>().ok())
                    .filter(|n| (1..=16).contains(n))
                else {
                    continue;
                };
                if best.as_ref().is_some_and(|(b, _, _)| *b <= n) {
                    continue;
                }
                if let Some(v) = v.as_text() {
                    if self.test(&v) {
                        best = Some((n, k, v));
                    }
                }
            }
            return best.map(|(_, k, v)| (k.to_string(), v.into_owned()));
        }
        if let Op::Absent(want) = self.op {
            let absent = alert.field(&self.field).is_none();
            return (absent == want).then(|| {
                (
                    self.field.clone(),
                    if absent {
                        "(absent)".into()
                    } else {
                        "(present)".into()
                    },
                )
            });
        }
        let v = alert.field(&self.field)?;
        if self.test(&v) {
            Some((self.field.clone(), v.into_owned()))
        } else {
            None
        }
    }
}

/// A compiled known-benign signature.
#[derive(Debug, Clone)]
pub struct Signature {
    pub id: String,
    pub reason: String,
    pub source: SignatureSource,
    pub kind: Option<SignatureKind>,
    /// Rules it is limited to (global signatures only; empty = all).
    pub rules: Vec<String>,
    all: Vec<Matcher>,
    any: Vec<Matcher>,
}

/// Evidence that a signature matched: which field carried which value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureMatch<'a> {
    pub id: &'a str,
    pub reason: &'a str,
    pub kind: Option<&'a str>,
    /// Where the fact behind the signature comes from.
    pub source: &'a SignatureSource,
    /// (field, value) pairs that satisfied the conditions.
    pub evidence: Vec<(String, String)>,
}

impl Signature {
    pub fn compile(e: &SignatureEntry) -> Result<Signature, String> {
        if e.all.is_empty() && e.any.is_empty() {
            return Err(format!("signature `{}` has no conditions", e.id));
        }
        let all = e
            .all
            .iter()
            .map(Matcher::compile)
            .collect::<Result<Vec<_>, _>>()?;
        let any = e
            .any
            .iter()
            .map(Matcher::compile)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Signature {
            id: e.id.clone(),
            reason: e.reason.clone(),
            source: e.source.clone(),
            kind: e.kind,
            rules: e.rules.clone(),
            all,
            any,
        })
    }

    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.all.iter().chain(self.any.iter()).map(|m| m.field())
    }

    /// The alert fields its conditions read: `ancestry` stands for the parent fields and every
    /// `proc.aname[N]`, which the caller has to treat as a prefix (`ANCESTRY_PREFIX`).
    pub fn read_fields(&self) -> Vec<&str> {
        let mut out = Vec::new();
        for f in self.fields() {
            if f == "ancestry" {
                out.extend(ANCESTRY_FIELDS);
            } else {
                out.push(f);
            }
        }
        out
    }

    pub fn applies_to(&self, rule: &str) -> bool {
        self.rules.is_empty() || self.rules.iter().any(|r| r == rule)
    }

    pub fn matches(&self, alert: &Alert) -> Option<SignatureMatch<'_>> {
        let mut evidence = Vec::new();
        for m in &self.all {
            evidence.push(m.matching_value(alert)?);
        }
        if !self.any.is_empty() {
            evidence.push(self.any.iter().find_map(|m| m.matching_value(alert))?);
        }
        Some(SignatureMatch {
            id: &self.id,
            reason: &self.reason,
            kind: self.kind.map(SignatureKind::as_str),
            source: &self.source,
            evidence,
        })
    }
}

/// Command-line evidence of an attack that vetoes signatures of some kinds (`[attack_evidence]`
/// in kb/benign.toml): an agent's image or a controller's identity says who acts, not that what
/// it runs is harmless, so a reverse shell under an agent's name is never excused.
#[derive(Debug, Clone, Default)]
pub struct AttackGuard {
    kinds: Vec<SignatureKind>,
    fields: Vec<String>,
    patterns: Vec<(Regex, String)>,
}

/// Why a guard vetoed a signature: the field, its value and what the pattern means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Veto {
    pub field: String,
    pub value: String,
    pub means: String,
}

impl AttackGuard {
    pub fn compile(e: &AttackEvidence) -> Result<AttackGuard, String> {
        let patterns = e
            .patterns
            .iter()
            .map(|p| {
                regex::RegexBuilder::new(&p.regex)
                    .case_insensitive(true)
                    .build()
                    .map(|r| (r, p.means.clone()))
                    .map_err(|err| format!("attack_evidence regex `{}`: {err}", p.regex))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AttackGuard {
            kinds: e.kinds.clone(),
            fields: e.fields.clone(),
            patterns,
        })
    }

    /// The fields it reads.
    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    /// Whether signatures of this kind are subject to the guard.
    pub fn guards(&self, kind: Option<SignatureKind>) -> bool {
        kind.is_some_and(|k| self.kinds.contains(&k))
    }

    /// The first attack evidence in the alert's guarded fields, if any.
    pub fn evidence(&self, alert: &Alert) -> Option<Veto> {
        for f in &self.fields {
            let Some(v) = alert.field(f) else { continue };
            if let Some((_, means)) = self.patterns.iter().find(|(r, _)| r.is_match(&v)) {
                return Some(Veto {
                    field: f.clone(),
                    value: v.into_owned(),
                    means: means.clone(),
                });
            }
        }
        None
    }

    /// Whether the guard vetoes this signature for this alert.
    pub fn vetoes(&self, sig: &Signature, alert: &Alert) -> Option<Veto> {
        if self.guards(sig.kind) {
            self.evidence(alert)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(field: &str, absent: bool) -> Condition {
        Condition {
            field: field.into(),
            equals: None,
            one_of: None,
            glob: None,
            prefix: None,
            suffix: None,
            contains: None,
            regex: None,
            absent: Some(absent),
        }
    }

    #[test]
    fn absent_treats_empty_null_and_na_as_missing() {
        let a: Alert = serde_json::from_str(
            r#"{"rule":"r","priority":"Debug","output_fields":{"container.id":"","k8s.ns.name":null,"proc.name":"x"}}"#,
        )
        .unwrap();
        let absent = Matcher::compile(&cond("container.id", true)).unwrap();
        assert!(absent.matching_value(&a).is_some());
        assert!(Matcher::compile(&cond("k8s.ns.name", true))
            .unwrap()
            .matching_value(&a)
            .is_some());
        assert!(Matcher::compile(&cond("proc.name", true))
            .unwrap()
            .matching_value(&a)
            .is_none());
        assert!(Matcher::compile(&cond("proc.name", false))
            .unwrap()
            .matching_value(&a)
            .is_some());
    }

    #[test]
    fn a_condition_needs_exactly_one_operator() {
        let mut c = cond("proc.name", true);
        c.equals = Some("x".into());
        assert!(Matcher::compile(&c).is_err());
    }
}
