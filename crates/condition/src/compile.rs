//! From collected items to evaluable conditions: macros inlined (shared), list names in value
//! lists expanded, exceptions built into the rule's condition as Falco does
//! (`(condition) and not (exception 1) and not (exception 2)...`).

use crate::load::{ExceptionDef, ExceptionFields, ItemKind, LoadError, Place, RuleSet};
use crate::parse::{parse_condition, parse_field, Check, Expr, Op, Operand, Rhs};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// Lists may name lists; deeper than this is a cycle or an abuse.
const MAX_LIST_DEPTH: usize = 32;

/// A value of a comparison's right side, with the list it was expanded from.
#[derive(Debug, Clone)]
pub(crate) struct Item {
    pub value: String,
    pub list: Option<Arc<str>>,
}

#[derive(Debug, Clone)]
pub(crate) enum Right {
    None,
    Values(Vec<Item>),
    Regex(regex::Regex),
    Glob(globset::GlobMatcher),
    Bytes(Vec<u8>),
    Operand(Operand),
}

#[derive(Debug, Clone)]
pub(crate) struct CheckNode {
    /// The comparison as written (or as built from an exception).
    pub text: String,
    pub left: Operand,
    pub op: Op,
    pub right: Right,
}

#[derive(Debug)]
pub(crate) struct MacroNode {
    pub name: String,
    pub body: Node,
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    And(Vec<Node>),
    Or(Vec<Node>),
    Not(Box<Node>),
    Macro(Arc<MacroNode>),
    Exception { name: String, body: Box<Node> },
    Check(Box<CheckNode>),
}

/// A compiled condition: a rule's (with its exceptions), or one built on its own.
#[derive(Debug, Clone)]
pub struct Condition {
    pub(crate) node: Node,
}

/// One rule, compiled.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    pub name: String,
    pub enabled: bool,
    pub source: Option<String>,
    /// Where the rule is defined.
    pub place: Place,
    /// Names of the user files (not built in) that define or change the rule, or a macro or
    /// list it uses, in load order.
    pub user_files: Vec<String>,
    pub condition: Condition,
}

/// Every rule of a rule set, compiled.
#[derive(Debug, Clone, Default)]
pub struct Compiled {
    rules: Vec<CompiledRule>,
    index: HashMap<String, usize>,
    /// Lowercased names, for alerts whose rule name differs only in case.
    folded: HashMap<String, usize>,
    lists: HashMap<String, Vec<Item>>,
}

impl Compiled {
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn rules(&self) -> impl Iterator<Item = &CompiledRule> {
        self.rules.iter()
    }

    /// The rule of that name (exact, else ignoring case).
    pub fn rule(&self, name: &str) -> Option<&CompiledRule> {
        let i = self
            .index
            .get(name)
            .or_else(|| self.folded.get(&name.to_lowercase()))?;
        self.rules.get(*i)
    }

    /// A condition from exception parts: `fields` compared with `comps` to each row of
    /// `values` (a row matches when every field matches; the condition holds when a row does).
    /// List names among the values are expanded with this rule set's lists.
    pub fn exception(
        &self,
        name: &str,
        fields: &[String],
        comps: &[Op],
        values: &[Vec<String>],
    ) -> Result<Condition, LoadError> {
        let place = Place {
            file: "(exception)".into(),
            line: 0,
        };
        let def = ExceptionDef {
            name: name.to_string(),
            fields: ExceptionFields::Tuple(fields.to_vec()),
            comps: comps.iter().map(|c| c.as_str().to_string()).collect(),
            values: values
                .iter()
                .map(|row| Value::Array(row.iter().cloned().map(Value::String).collect()))
                .collect(),
            place,
        };
        let node = exception_node(&def, name, &|n| self.lists.get(n).cloned())?;
        Ok(Condition {
            node: node.unwrap_or(Node::Or(Vec::new())),
        })
    }
}

/// Compile every rule (and every macro, so a broken macro is found even when unused).
pub fn compile(set: &RuleSet) -> Result<Compiled, LoadError> {
    let mut c = Compiler {
        set,
        macros: HashMap::new(),
        lists: HashMap::new(),
        stack: Vec::new(),
    };
    let mut names: Vec<&String> = set.macros.keys().collect();
    names.sort();
    for name in names {
        c.macro_node(name, &set.macros[name].place)?;
    }
    let mut out = Compiled::default();
    for r in &set.rules {
        let fail = |source| LoadError::Syntax {
            place: r.place.clone(),
            kind: ItemKind::Rule,
            name: r.name.clone(),
            source,
        };
        let expr = parse_condition(&r.condition).map_err(fail)?;
        let mut files: BTreeSet<usize> = r.files.iter().copied().collect();
        let mut node = c.node(
            &expr,
            &r.condition,
            &r.place,
            ItemKind::Rule,
            &r.name,
            &mut files,
        )?;
        let mut parts = vec![node];
        for e in &r.exceptions {
            let mut used: HashMap<String, Vec<Item>> = HashMap::new();
            for n in exception_list_names(e) {
                if let Some(items) = c.list_items(&n, &mut files) {
                    used.insert(n, items);
                }
            }
            let lookup = |n: &str| used.get(n).cloned();
            if let Some(exc) = exception_node(e, &r.name, &lookup)? {
                parts.push(Node::Not(Box::new(exc)));
            }
        }
        node = if parts.len() == 1 {
            parts.swap_remove(0)
        } else {
            Node::And(parts)
        };
        let user_files = files
            .iter()
            .filter_map(|i| set.files.get(*i))
            .filter(|f| f.user)
            .map(|f| f.name.clone())
            .collect();
        let i = out.rules.len();
        out.index.insert(r.name.clone(), i);
        out.folded.entry(r.name.to_lowercase()).or_insert(i);
        out.rules.push(CompiledRule {
            name: r.name.clone(),
            enabled: r.enabled,
            source: r.source.clone(),
            place: r.place.clone(),
            user_files,
            condition: Condition { node },
        });
    }
    let mut list_names: Vec<&String> = set.lists.keys().collect();
    list_names.sort();
    for n in list_names {
        let mut f = BTreeSet::new();
        if let Some(items) = c.list_items(n, &mut f) {
            out.lists.insert(n.clone(), items);
        }
    }
    Ok(out)
}

/// List names an exception's values may use (scalars naming a list).
fn exception_list_names(e: &ExceptionDef) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    e.values.iter().for_each(|v| walk(v, &mut out));
    out
}

struct Compiler<'a> {
    set: &'a RuleSet,
    /// Compiled macros with the files that contributed to them.
    macros: HashMap<String, (Arc<MacroNode>, BTreeSet<usize>)>,
    lists: HashMap<String, (Vec<Item>, BTreeSet<usize>)>,
    /// Macros being compiled, to refuse a macro that uses itself.
    stack: Vec<String>,
}

/// A list item as a value: a quoted item (`'"sh -c"'`) loses its quotes.
fn unquote(s: &str) -> &str {
    let b = s.as_bytes();
    if b.len() >= 2 && (b[0] == b'"' || b[0] == b'\'') && b[b.len() - 1] == b[0] {
        &s[1..s.len() - 1]
    } else {
        s
    }
}

impl Compiler<'_> {
    fn list_items(&mut self, name: &str, files: &mut BTreeSet<usize>) -> Option<Vec<Item>> {
        if let Some((items, f)) = self.lists.get(name) {
            files.extend(f.iter().copied());
            return Some(items.clone());
        }
        self.set.lists.get(name)?;
        let tag: Arc<str> = Arc::from(name);
        let mut items = Vec::new();
        let mut f = BTreeSet::new();
        self.expand(name, &tag, 0, &mut items, &mut f);
        files.extend(f.iter().copied());
        self.lists.insert(name.to_string(), (items.clone(), f));
        Some(items)
    }

    fn expand(
        &self,
        name: &str,
        tag: &Arc<str>,
        depth: usize,
        out: &mut Vec<Item>,
        files: &mut BTreeSet<usize>,
    ) {
        let Some(l) = self.set.lists.get(name) else {
            return;
        };
        files.extend(l.files.iter().copied());
        for it in &l.items {
            if it != name && depth < MAX_LIST_DEPTH && self.set.lists.contains_key(it.as_str()) {
                self.expand(it, tag, depth + 1, out, files);
            } else {
                out.push(Item {
                    value: unquote(it).to_string(),
                    list: Some(tag.clone()),
                });
            }
        }
    }

    fn macro_node(
        &mut self,
        name: &str,
        at: &Place,
    ) -> Result<(Arc<MacroNode>, BTreeSet<usize>), LoadError> {
        if let Some(m) = self.macros.get(name) {
            return Ok(m.clone());
        }
        let Some(def) = self.set.macros.get(name) else {
            return Err(LoadError::Item {
                place: at.clone(),
                kind: ItemKind::Macro,
                name: name.to_string(),
                problem: "is used but no file defines it".into(),
            });
        };
        if self.stack.iter().any(|s| s == name) || self.stack.len() > 64 {
            return Err(LoadError::Item {
                place: def.place.clone(),
                kind: ItemKind::Macro,
                name: name.to_string(),
                problem: format!("uses itself (through {})", self.stack.join(" -> ")),
            });
        }
        let expr = match self.set.parsed_macro(name) {
            Some(r) => r?,
            None => {
                return Err(LoadError::Item {
                    place: at.clone(),
                    kind: ItemKind::Macro,
                    name: name.to_string(),
                    problem: "is used but no file defines it".into(),
                })
            }
        };
        self.stack.push(name.to_string());
        let mut files: BTreeSet<usize> = def.files.iter().copied().collect();
        let place = def.place.clone();
        let cond = def.condition.clone();
        let body = self.node(&expr, &cond, &place, ItemKind::Macro, name, &mut files);
        self.stack.pop();
        let m = Arc::new(MacroNode {
            name: name.to_string(),
            body: body?,
        });
        self.macros
            .insert(name.to_string(), (m.clone(), files.clone()));
        Ok((m, files))
    }

    #[allow(clippy::too_many_arguments)]
    fn node(
        &mut self,
        e: &Expr,
        src: &str,
        place: &Place,
        kind: ItemKind,
        owner: &str,
        files: &mut BTreeSet<usize>,
    ) -> Result<Node, LoadError> {
        Ok(match e {
            Expr::And(v) => Node::And(
                v.iter()
                    .map(|x| self.node(x, src, place, kind, owner, files))
                    .collect::<Result<_, _>>()?,
            ),
            Expr::Or(v) => Node::Or(
                v.iter()
                    .map(|x| self.node(x, src, place, kind, owner, files))
                    .collect::<Result<_, _>>()?,
            ),
            Expr::Not(x) => Node::Not(Box::new(self.node(x, src, place, kind, owner, files)?)),
            Expr::Ident { name, .. } => {
                let (m, f) = self.macro_node(name, place).map_err(|err| match err {
                    // An unknown macro is reported on the item that uses it.
                    LoadError::Item { problem, .. } if problem.starts_with("is used") => {
                        LoadError::Item {
                            place: place.clone(),
                            kind,
                            name: owner.to_string(),
                            problem: format!("uses macro `{name}`, which no file defines"),
                        }
                    }
                    other => other,
                })?;
                files.extend(f);
                Node::Macro(m)
            }
            Expr::Check(c) => {
                let text = src
                    .get(c.span.0..c.span.1)
                    .unwrap_or_default()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                Node::Check(Box::new(self.check(c, text, files).map_err(|problem| {
                    LoadError::Item {
                        place: place.clone(),
                        kind,
                        name: owner.to_string(),
                        problem,
                    }
                })?))
            }
        })
    }

    fn check(
        &mut self,
        c: &Check,
        text: String,
        files: &mut BTreeSet<usize>,
    ) -> Result<CheckNode, String> {
        let values: Vec<Item> = match &c.right {
            Rhs::None => Vec::new(),
            Rhs::Value(v) => vec![Item {
                value: v.clone(),
                list: None,
            }],
            Rhs::List(items) => {
                let mut out = Vec::new();
                for v in items {
                    match self.list_items(v, files) {
                        Some(l) => out.extend(l),
                        None => out.push(Item {
                            value: v.clone(),
                            list: None,
                        }),
                    }
                }
                out
            }
            Rhs::ListName(n) => self.list_items(n, files).unwrap_or_else(|| {
                vec![Item {
                    value: n.clone(),
                    list: None,
                }]
            }),
            Rhs::Operand(o) => {
                return Ok(CheckNode {
                    text,
                    left: c.left.clone(),
                    op: c.op,
                    right: Right::Operand(o.clone()),
                })
            }
        };
        let right = right_for(c.op, values)?;
        Ok(CheckNode {
            text,
            left: c.left.clone(),
            op: c.op,
            right,
        })
    }
}

/// The compiled right side for an operator and its values.
fn right_for(op: Op, values: Vec<Item>) -> Result<Right, String> {
    let first = || values.first().map(|i| i.value.clone()).unwrap_or_default();
    Ok(match op {
        Op::Exists => Right::None,
        Op::Regex => {
            let pat = first();
            // libsinsp matches the whole value (RE2::FullMatch).
            let re = regex::Regex::new(&format!("^(?:{pat})$"))
                .map_err(|e| format!("invalid regex `{pat}`: {e}"))?;
            Right::Regex(re)
        }
        Op::Glob | Op::IGlob => {
            let pat = first();
            let g = globset::GlobBuilder::new(&pat)
                .case_insensitive(op == Op::IGlob)
                .literal_separator(false)
                .backslash_escape(true)
                .build()
                .map_err(|e| format!("invalid glob `{pat}`: {e}"))?;
            Right::Glob(g.compile_matcher())
        }
        Op::BContains | Op::BStartsWith => {
            let hex = first();
            Right::Bytes(
                decode_hex(&hex).ok_or_else(|| format!("`{hex}` is not a hex byte string"))?,
            )
        }
        _ => {
            if !op.takes_list() && values.len() > 1 {
                return Err(format!("`{op}` takes one value"));
            }
            Right::Values(values)
        }
    })
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if s.len() % 2 != 0 || s.is_empty() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

fn check_node(
    field: &str,
    comp: &str,
    value: &Value,
    lists: &dyn Fn(&str) -> Option<Vec<Item>>,
) -> Result<CheckNode, String> {
    let f = parse_field(field).map_err(|e| format!("field `{field}`: {e}"))?;
    let op = Op::from_name(comp.trim()).ok_or_else(|| format!("unknown comparison `{comp}`"))?;
    let mut items = Vec::new();
    let mut push = |v: &Value| -> Result<(), String> {
        let s = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return Err("a value must be text".into()),
        };
        match lists(&s).filter(|_| op.takes_list()) {
            Some(l) => items.extend(l),
            None => items.push(Item {
                value: unquote(&s).to_string(),
                list: None,
            }),
        }
        Ok(())
    };
    match value {
        Value::Array(a) if op.takes_list() => a.iter().try_for_each(&mut push)?,
        Value::Array(_) => return Err(format!("`{comp}` takes one value, not a list")),
        v => push(v)?,
    }
    let shown: Vec<&str> = items.iter().map(|i| i.value.as_str()).collect();
    let text = if op.takes_list() {
        format!("{f} {op} ({})", shown.join(", "))
    } else if op == Op::Exists {
        format!("{f} exists")
    } else {
        format!("{f} {op} {}", shown.join(", "))
    };
    Ok(CheckNode {
        text,
        left: Operand::Field(f),
        op,
        right: right_for(op, items)?,
    })
}

/// An exception as the condition it adds (None when it has no values: it changes nothing).
fn exception_node(
    e: &ExceptionDef,
    rule: &str,
    lists: &dyn Fn(&str) -> Option<Vec<Item>>,
) -> Result<Option<Node>, LoadError> {
    let fail = |problem: String| LoadError::Item {
        place: e.place.clone(),
        kind: ItemKind::Exception,
        name: format!("{rule}/{}", e.name),
        problem,
    };
    if e.values.is_empty() {
        return Ok(None);
    }
    let mut rows = Vec::new();
    match &e.fields {
        ExceptionFields::Single(field) => {
            let comp = e.comps.first().map(String::as_str).unwrap_or("in");
            let op =
                Op::from_name(comp).ok_or_else(|| fail(format!("unknown comparison `{comp}`")))?;
            if op.takes_list() {
                let all = Value::Array(e.values.clone());
                rows.push(Node::Check(Box::new(
                    check_node(field, comp, &all, lists).map_err(fail)?,
                )));
            } else {
                for v in &e.values {
                    rows.push(Node::Check(Box::new(
                        check_node(field, comp, v, lists).map_err(fail)?,
                    )));
                }
            }
        }
        ExceptionFields::Tuple(fields) => {
            for row in &e.values {
                let Value::Array(vals) = row else {
                    return Err(fail(
                        "each value must be a list with one entry per field".into(),
                    ));
                };
                if vals.len() != fields.len() {
                    return Err(fail(format!(
                        "a value row has {} entries for {} fields",
                        vals.len(),
                        fields.len()
                    )));
                }
                let mut parts = Vec::new();
                for ((f, comp), v) in fields.iter().zip(&e.comps).zip(vals) {
                    parts.push(Node::Check(Box::new(
                        check_node(f, comp, v, lists).map_err(fail)?,
                    )));
                }
                rows.push(if parts.len() == 1 {
                    parts.swap_remove(0)
                } else {
                    Node::And(parts)
                });
            }
        }
    }
    let body = if rows.len() == 1 {
        rows.swap_remove(0)
    } else {
        Node::Or(rows)
    };
    Ok(Some(Node::Exception {
        name: e.name.clone(),
        body: Box::new(body),
    }))
}

/// Build a standalone condition from condition text with a rule set's lists and macros.
pub fn compile_condition(set: &RuleSet, text: &str) -> Result<Condition, LoadError> {
    let place = Place {
        file: "(condition)".into(),
        line: 0,
    };
    let expr = parse_condition(text).map_err(|source| LoadError::Syntax {
        place: place.clone(),
        kind: ItemKind::Rule,
        name: String::new(),
        source,
    })?;
    let mut c = Compiler {
        set,
        macros: HashMap::new(),
        lists: HashMap::new(),
        stack: Vec::new(),
    };
    let mut files = BTreeSet::new();
    let node = c.node(&expr, text, &place, ItemKind::Rule, "", &mut files)?;
    Ok(Condition { node })
}
