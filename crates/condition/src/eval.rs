//! Three-valued evaluation over an alert's fields. An alert carries only the fields its rule
//! prints, so a field it lacks is Unknown, never false (Kleene logic: false and unknown is
//! false, true or unknown is true, not unknown is unknown). Each definite result keeps the
//! chain of macros, exceptions and lists behind it, outermost first.

use crate::compile::{CheckNode, Condition, Item, Node, Right};
use crate::parse::{Op, Operand, Transformer};
use base64::Engine as _;
use std::fmt;

/// Three-valued truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tri {
    True,
    False,
    Unknown,
}

impl Tri {
    fn not(self) -> Tri {
        match self {
            Tri::True => Tri::False,
            Tri::False => Tri::True,
            Tri::Unknown => Tri::Unknown,
        }
    }
}

/// What an alert says about one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The alert does not carry the field: anything about it is unknown.
    Unknown,
    /// The field's values (none: the event had no value, as Falco's `<NA>` or null says).
    Known(Vec<String>),
    /// Some of the field's values (e.g. `proc.aname` when the alert prints a few ancestors).
    Partial(Vec<String>),
}

/// A field lookup over one alert. `arg` is the bracketed argument (`proc.aname[2]`: `2`).
pub trait FieldSource {
    fn field(&self, name: &str, arg: Option<&str>) -> Lookup;
}

/// What kind of construct a step of an explanation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StepKind {
    Macro,
    List,
    Exception,
    Comparison,
}

/// One construct behind a result: a macro, an exception, or the comparison (with the list
/// whose item matched), each with the decisive field and the alert's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub kind: StepKind,
    /// The macro, list or exception name; for a comparison, its text.
    pub name: String,
    pub field: Option<String>,
    pub value: Option<String>,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            StepKind::Macro => "macro",
            StepKind::List => "list",
            StepKind::Exception => "exception",
            StepKind::Comparison => "comparison",
        };
        write!(f, "{kind} `{}`", self.name)?;
        if let (Some(field), Some(value)) = (&self.field, &self.value) {
            write!(f, " ({field}={value})")?;
        }
        Ok(())
    }
}

/// The value of a condition and, when definite, the constructs that decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub value: Tri,
    /// Outermost first; empty when the value is unknown.
    pub because: Vec<Step>,
    /// The result is false because a negated term holds (`and not user_known_x`, `and not
    /// proc.name in (list)`, an exception): the rule's own allow-list excludes the alert. False
    /// through a positive term (the alert is not what the rule looks for) is not an exclusion.
    pub excluded: bool,
}

/// Longest value shown in an explanation; alert values are attacker-controlled and unbounded.
const MAX_SHOWN: usize = 200;

fn shown(values: &[String]) -> String {
    let s = values.join(",");
    if s.len() <= MAX_SHOWN {
        return s;
    }
    let mut end = MAX_SHOWN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

impl Condition {
    /// Evaluate over an alert's fields.
    pub fn evaluate(&self, fields: &dyn FieldSource) -> Outcome {
        let (value, because, negated) = eval(&self.node, fields, false);
        Outcome {
            value,
            because,
            excluded: value == Tri::False && negated == Some(true),
        }
    }
}

/// The value, its explanation, and whether the explanation's outermost named construct (macro,
/// exception, list) appears negated in the whole condition (`None`: the explanation names none).
type Res = (Tri, Vec<Step>, Option<bool>);

/// Among definite children, the explanation that says most (one naming a macro, list or
/// exception rather than a bare comparison), with its polarity. The value is `True`; callers
/// that need `False` replace it.
fn best_of(cands: Vec<(Vec<Step>, Option<bool>)>) -> Res {
    let i = cands
        .iter()
        .position(|(s, _)| s.iter().any(|x| x.kind != StepKind::Comparison))
        .unwrap_or(0);
    match cands.into_iter().nth(i) {
        Some((why, neg)) => (Tri::True, why, neg),
        None => (Tri::True, Vec::new(), None),
    }
}

fn wrap(kind: StepKind, name: &str, mut inner: Vec<Step>) -> Vec<Step> {
    let leaf = inner.last().cloned();
    inner.insert(
        0,
        Step {
            kind,
            name: name.to_string(),
            field: leaf.as_ref().and_then(|l| l.field.clone()),
            value: leaf.and_then(|l| l.value),
        },
    );
    inner
}

/// `neg`: whether `n` sits under an odd number of `not`s in the whole condition.
fn eval(n: &Node, fs: &dyn FieldSource, neg: bool) -> Res {
    match n {
        Node::And(children) => {
            let mut unknown = false;
            let mut trues = Vec::new();
            for c in children {
                match eval(c, fs, neg) {
                    (Tri::False, why, pol) => return (Tri::False, why, pol),
                    (Tri::Unknown, _, _) => unknown = true,
                    (Tri::True, why, pol) => trues.push((why, pol)),
                }
            }
            if unknown {
                (Tri::Unknown, Vec::new(), None)
            } else {
                best_of(trues)
            }
        }
        Node::Or(children) => {
            let mut unknown = false;
            let mut falses = Vec::new();
            for c in children {
                match eval(c, fs, neg) {
                    (Tri::True, why, pol) => return (Tri::True, why, pol),
                    (Tri::Unknown, _, _) => unknown = true,
                    (Tri::False, why, pol) => falses.push((why, pol)),
                }
            }
            if unknown {
                (Tri::Unknown, Vec::new(), None)
            } else {
                let (_, why, pol) = best_of(falses);
                (Tri::False, why, pol)
            }
        }
        Node::Not(c) => {
            let (v, why, pol) = eval(c, fs, !neg);
            (v.not(), why, pol)
        }
        Node::Macro(m) => match eval(&m.body, fs, neg) {
            (Tri::Unknown, _, _) => (Tri::Unknown, Vec::new(), None),
            // A negated allow-list macro or exception inside a positive macro (`not
            // ufw_writing_conf` inside `write_etc_common`) decided it: that inner construct is
            // the exclusion, so it stays outermost with its own polarity.
            (v, why, Some(true))
                if !neg && why.first().is_some_and(|s| s.kind != StepKind::Comparison) =>
            {
                (v, why, Some(true))
            }
            (v, why, _) => (v, wrap(StepKind::Macro, &m.name, why), Some(neg)),
        },
        Node::Exception { name, body } => match eval(body, fs, neg) {
            (Tri::Unknown, _, _) => (Tri::Unknown, Vec::new(), None),
            (v, why, _) => (v, wrap(StepKind::Exception, name, why), Some(neg)),
        },
        Node::Check(c) => {
            // A comparison the rule itself negates (`and not proc.pname in (runc, crio)`) is an
            // inline allow-list; inside a macro, the macro's own polarity decides (above).
            let (v, why) = check(c, fs);
            (v, why, Some(neg))
        }
    }
}

/// The values of an operand; `None` when unknown.
fn operand(o: &Operand, fs: &dyn FieldSource) -> Lookup {
    match o {
        Operand::Field(f) => fs.field(&f.name, f.arg.as_deref()),
        Operand::Value(v) => Lookup::Known(vec![v.clone()]),
        Operand::List(items) => {
            let mut out = Vec::new();
            for i in items {
                match operand(i, fs) {
                    Lookup::Known(v) => out.extend(v),
                    _ => return Lookup::Unknown,
                }
            }
            Lookup::Known(out)
        }
        Operand::Transform { name, args } => {
            let inner = match args.as_slice() {
                [one] => operand(one, fs),
                _ => return Lookup::Unknown,
            };
            let map = |vals: Vec<String>| -> Option<Vec<String>> {
                Some(match name {
                    Transformer::Val => vals,
                    Transformer::ToLower => vals.iter().map(|v| v.to_lowercase()).collect(),
                    Transformer::ToUpper => vals.iter().map(|v| v.to_uppercase()).collect(),
                    Transformer::Basename => vals
                        .iter()
                        .map(|v| v.rsplit('/').next().unwrap_or(v).to_string())
                        .collect(),
                    Transformer::B64 => vals
                        .iter()
                        .filter_map(|v| {
                            base64::engine::general_purpose::STANDARD
                                .decode(v.trim())
                                .ok()
                                .map(|b| String::from_utf8_lossy(&b).into_owned())
                        })
                        .collect(),
                    Transformer::Len if vals.len() == 1 => {
                        vals.iter().map(|v| v.len().to_string()).collect()
                    }
                    Transformer::Len => vec![vals.len().to_string()],
                    Transformer::Join => return None,
                })
            };
            match inner {
                Lookup::Known(v) => map(v).map_or(Lookup::Unknown, Lookup::Known),
                Lookup::Partial(v) if *name != Transformer::Len => {
                    map(v).map_or(Lookup::Unknown, Lookup::Partial)
                }
                _ => Lookup::Unknown,
            }
        }
    }
}

fn number(s: &str) -> Option<f64> {
    let t = s.trim();
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return i64::from_str_radix(h, 16).ok().map(|n| n as f64);
    }
    t.parse::<f64>().ok()
}

fn equal(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (number(a), number(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// `/etc` matches `/etc` and `/etc/passwd`, not `/etcx`.
fn path_prefix(path: &str, prefix: &str) -> bool {
    let p = prefix.trim_end_matches('/');
    if p.is_empty() {
        return path.starts_with('/');
    }
    path == p
        || path
            .strip_prefix(p)
            .is_some_and(|rest| rest.starts_with('/'))
}

fn contains_bytes(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// One left value against a single right value; None when it cannot be told.
fn compare_one(op: Op, l: &str, r: &str) -> Option<bool> {
    Some(match op {
        Op::Eq | Op::In | Op::Intersects => equal(l, r),
        Op::Ne => !equal(l, r),
        Op::Lt | Op::Le | Op::Gt | Op::Ge => {
            let (a, b) = (number(l)?, number(r)?);
            match op {
                Op::Lt => a < b,
                Op::Le => a <= b,
                Op::Gt => a > b,
                _ => a >= b,
            }
        }
        Op::Contains => l.contains(r),
        Op::IContains => l.to_lowercase().contains(&r.to_lowercase()),
        Op::StartsWith => l.starts_with(r),
        Op::EndsWith => l.ends_with(r),
        Op::PMatch => path_prefix(l, r),
        Op::BContains | Op::BStartsWith | Op::Glob | Op::IGlob | Op::Regex | Op::Exists => {
            return None
        }
    })
}

/// Does one left value satisfy the check? Returns the matching right item when there is one.
fn matches<'a>(
    op: Op,
    right: &'a Right,
    rvals: &'a [Item],
    l: &str,
) -> (Option<bool>, Option<&'a Item>) {
    match right {
        Right::Regex(re) => (Some(re.is_match(l)), None),
        Right::Glob(g) => (Some(g.is_match(l)), None),
        Right::Bytes(b) => (
            Some(if op == Op::BStartsWith {
                l.as_bytes().starts_with(b)
            } else {
                contains_bytes(l.as_bytes(), b)
            }),
            None,
        ),
        _ => {
            let mut unknown = false;
            if op == Op::Ne {
                // `!=` holds when the value differs from the (single) right value.
                return match rvals.first() {
                    Some(r) => (compare_one(op, l, &r.value), None),
                    None => (None, None),
                };
            }
            for r in rvals {
                match compare_one(op, l, &r.value) {
                    Some(true) => return (Some(true), Some(r)),
                    Some(false) => {}
                    None => unknown = true,
                }
            }
            (if unknown { None } else { Some(false) }, None)
        }
    }
}

fn check(c: &CheckNode, fs: &dyn FieldSource) -> (Tri, Vec<Step>) {
    let left = operand(&c.left, fs);
    let field = c.left.to_string();
    let (vals, complete) = match left {
        Lookup::Unknown => return (Tri::Unknown, Vec::new()),
        Lookup::Known(v) => (v, true),
        Lookup::Partial(v) => (v, false),
    };
    let step = |kind: StepKind, name: &str, value: String| Step {
        kind,
        name: name.to_string(),
        field: Some(field.clone()),
        value: Some(value),
    };
    let cmp = |v: String| vec![step(StepKind::Comparison, &c.text, v)];
    if c.op == Op::Exists {
        return match (vals.is_empty(), complete) {
            (false, _) => (Tri::True, cmp(shown(&vals))),
            (true, true) => (Tri::False, cmp("(no value)".into())),
            (true, false) => (Tri::Unknown, Vec::new()),
        };
    }
    if vals.is_empty() {
        // Falco compares nothing when the event has no value: the check is false.
        return if complete {
            (Tri::False, cmp("(no value)".into()))
        } else {
            (Tri::Unknown, Vec::new())
        };
    }
    let owned;
    let rvals: &[Item] = match &c.right {
        Right::Values(v) => v,
        Right::Operand(o) => match operand(o, fs) {
            Lookup::Known(v) if !v.is_empty() => {
                owned = v
                    .into_iter()
                    .map(|value| Item { value, list: None })
                    .collect::<Vec<_>>();
                &owned
            }
            Lookup::Known(_) => return (Tri::False, cmp(shown(&vals))),
            _ => return (Tri::Unknown, Vec::new()),
        },
        _ => &[],
    };
    // A matching value with the list its item came from: the step names the list.
    let hit = |v: &str, item: Option<&Item>| match item.and_then(|i| i.list.as_deref()) {
        Some(list) => vec![
            step(StepKind::List, list, v.to_string()),
            step(StepKind::Comparison, &c.text, v.to_string()),
        ],
        None => cmp(v.to_string()),
    };
    // `in` on a multi-valued field asks that every value be in the set (libsinsp); for a
    // partial field (`proc.aname`: any ancestor) and every other operator, any value will do.
    if c.op == Op::In && complete {
        let mut first_hit: Option<(String, Option<&Item>)> = None;
        let mut unknown = false;
        for v in &vals {
            match matches(c.op, &c.right, rvals, v) {
                (Some(false), _) => return (Tri::False, cmp(v.clone())),
                (None, _) => unknown = true,
                (Some(true), item) => {
                    if first_hit.is_none() {
                        first_hit = Some((v.clone(), item));
                    }
                }
            }
        }
        if unknown {
            return (Tri::Unknown, Vec::new());
        }
        return match first_hit {
            Some((v, item)) if vals.len() == 1 => (Tri::True, hit(&v, item)),
            Some((_, item)) => (Tri::True, hit(&shown(&vals), item)),
            None => (Tri::False, cmp(shown(&vals))),
        };
    }
    let mut unknown = !complete;
    for v in &vals {
        match matches(c.op, &c.right, rvals, v) {
            (Some(true), item) => return (Tri::True, hit(v, item)),
            (Some(false), _) => {}
            (None, _) => unknown = true,
        }
    }
    if unknown {
        (Tri::Unknown, Vec::new())
    } else {
        (Tri::False, cmp(shown(&vals)))
    }
}
