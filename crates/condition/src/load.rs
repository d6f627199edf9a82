//! Falco rules files: `list`, `macro` and `rule` items collected in load order, with
//! `append: true` and `override:` applied to what earlier files defined, as Falco's rule loader
//! does (falco/userspace/engine/rule_loader_collector.cpp). Compilation happens once all files
//! are in (see `compile`), so a later file can change a macro an earlier rule uses.

use crate::parse::{parse_condition, Expr, SyntaxError};
use serde::Deserialize;
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;

/// What kind of rules-file item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemKind {
    List,
    Macro,
    Rule,
    Exception,
}

impl fmt::Display for ItemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ItemKind::List => "list",
            ItemKind::Macro => "macro",
            ItemKind::Rule => "rule",
            ItemKind::Exception => "exception",
        })
    }
}

/// Where an item is: the file (as the caller named it) and the item's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub file: String,
    pub line: u64,
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "{}:{}", self.file, self.line)
        } else {
            f.write_str(&self.file)
        }
    }
}

/// A rules file that cannot be loaded or compiled, naming the file, the item and the position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    #[error("{file}: not a Falco rules file: {message}")]
    Yaml { file: String, message: String },
    #[error("{place}: {kind} `{name}`: {problem}")]
    Item {
        place: Place,
        kind: ItemKind,
        name: String,
        problem: String,
    },
    #[error("{place}: {kind} `{name}`: condition {source}")]
    Syntax {
        place: Place,
        kind: ItemKind,
        name: String,
        source: SyntaxError,
    },
}

#[derive(Debug, Deserialize)]
struct RawException {
    name: Option<String>,
    fields: Option<Value>,
    comps: Option<Value>,
    values: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct RawItem {
    rule: Option<Value>,
    #[serde(rename = "macro")]
    macro_: Option<Value>,
    list: Option<Value>,
    condition: Option<Value>,
    items: Option<Vec<Value>>,
    exceptions: Option<Vec<RawException>>,
    append: Option<bool>,
    #[serde(rename = "override")]
    override_: Option<HashMap<String, String>>,
    enabled: Option<bool>,
    source: Option<String>,
}

/// An exception as written: one field with values, or a tuple of fields with value tuples.
#[derive(Debug, Clone, PartialEq)]
pub struct ExceptionDef {
    pub name: String,
    /// `fields: proc.name` (one field) is `Single`; `fields: [a, b]` is `Tuple`.
    pub fields: ExceptionFields,
    pub comps: Vec<String>,
    pub values: Vec<Value>,
    pub place: Place,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExceptionFields {
    Single(String),
    Tuple(Vec<String>),
}

#[derive(Debug, Clone)]
pub(crate) struct ListDef {
    pub items: Vec<String>,
    pub files: Vec<usize>,
}

#[derive(Debug, Clone)]
pub(crate) struct MacroDef {
    pub condition: String,
    pub place: Place,
    pub files: Vec<usize>,
}

#[derive(Debug, Clone)]
pub(crate) struct RuleDef {
    pub name: String,
    pub condition: String,
    pub exceptions: Vec<ExceptionDef>,
    pub enabled: bool,
    pub source: Option<String>,
    pub place: Place,
    pub files: Vec<usize>,
}

/// One loaded file: its name and whether the user gave it (not built in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    pub name: String,
    pub user: bool,
}

/// Lists, macros and rules collected from rules files, in load order.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    pub(crate) files: Vec<FileInfo>,
    pub(crate) lists: HashMap<String, ListDef>,
    pub(crate) macros: HashMap<String, MacroDef>,
    pub(crate) rules: Vec<RuleDef>,
    pub(crate) rule_index: HashMap<String, usize>,
}

/// What a changing rule item does to each part of the rule.
#[derive(Clone, Copy)]
struct RuleModes {
    condition: Mode,
    exceptions: Mode,
    enabled: Mode,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Define,
    Append,
    Replace,
}

/// A scalar item as text: strings as they are, numbers and booleans as YAML writes them.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl RuleSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// The files loaded so far, in order.
    pub fn files(&self) -> &[FileInfo] {
        &self.files
    }

    /// Number of rules defined.
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// Add one rules file on top of what is loaded. `user` marks a file the user gave, so a
    /// rule it defines or changes can be told from the built-in one.
    pub fn add_file(&mut self, name: &str, text: &str, user: bool) -> Result<(), LoadError> {
        let items: Option<Vec<serde_saphyr::Spanned<Value>>> = serde_saphyr::from_str(text)
            .map_err(|e| LoadError::Yaml {
                file: name.to_string(),
                message: e.to_string().lines().next().unwrap_or("").to_string(),
            })?;
        let file_id = self.files.len();
        self.files.push(FileInfo {
            name: name.to_string(),
            user,
        });
        for item in items.unwrap_or_default() {
            let place = Place {
                file: name.to_string(),
                line: item.referenced.line(),
            };
            let raw: RawItem = match &item.value {
                Value::Object(_) => {
                    serde_json::from_value(item.value.clone()).map_err(|e| LoadError::Item {
                        place: place.clone(),
                        kind: ItemKind::Rule,
                        name: String::new(),
                        problem: format!("malformed item: {e}"),
                    })?
                }
                _ => {
                    return Err(LoadError::Yaml {
                        file: name.to_string(),
                        message: format!("line {}: an item is not a mapping", place.line),
                    })
                }
            };
            self.add_item(raw, place, file_id)?;
        }
        Ok(())
    }

    fn add_item(&mut self, raw: RawItem, place: Place, file: usize) -> Result<(), LoadError> {
        let (kind, name) = if let Some(n) = &raw.list {
            (ItemKind::List, n)
        } else if let Some(n) = &raw.macro_ {
            (ItemKind::Macro, n)
        } else if let Some(n) = &raw.rule {
            (ItemKind::Rule, n)
        } else {
            // required_engine_version, required_plugin_versions and other keys: not conditions.
            return Ok(());
        };
        let name = scalar(name).unwrap_or_default();
        let fail = |problem: String| LoadError::Item {
            place: place.clone(),
            kind,
            name: name.clone(),
            problem,
        };
        if name.trim().is_empty() {
            return Err(fail("the name is empty".into()));
        }
        if raw.append == Some(true) && raw.override_.is_some() {
            return Err(fail(
                "`append` and `override` cannot be used together".into(),
            ));
        }
        // What each key does to an existing item.
        let mode_of = |key: &str| -> Result<Mode, LoadError> {
            if raw.append == Some(true) {
                return Ok(Mode::Append);
            }
            match raw.override_.as_ref().and_then(|o| o.get(key)) {
                None => Ok(Mode::Define),
                Some(v) if v == "append" => Ok(Mode::Append),
                Some(v) if v == "replace" => Ok(Mode::Replace),
                Some(v) => Err(fail(format!(
                    "override of `{key}` must be `append` or `replace`, not `{v}`"
                ))),
            }
        };
        let is_change = raw.append == Some(true) || raw.override_.is_some();
        if let Some(o) = &raw.override_ {
            for (key, v) in o {
                if v == "append" && !matches!(key.as_str(), "items" | "condition" | "exceptions") {
                    return Err(fail(format!(
                        "`{key}` cannot be appended to, only replaced"
                    )));
                }
            }
        }
        match kind {
            ItemKind::List => {
                let items: Vec<String> = raw
                    .items
                    .as_ref()
                    .ok_or_else(|| fail("a list needs `items`".into()))?
                    .iter()
                    .map(|v| scalar(v).ok_or_else(|| fail("list items must be scalars".into())))
                    .collect::<Result<_, _>>()?;
                let mode = mode_of("items")?;
                match (mode, self.lists.get_mut(&name)) {
                    (Mode::Define, _) if !is_change => {
                        self.lists.insert(
                            name.clone(),
                            ListDef {
                                items,
                                files: vec![file],
                            },
                        );
                    }
                    (Mode::Define, _) => {}
                    (_, None) => {
                        return Err(fail(
                            "appends to or overrides a list that no earlier file defines".into(),
                        ))
                    }
                    (Mode::Append, Some(l)) => {
                        l.items.extend(items);
                        l.files.push(file);
                    }
                    (Mode::Replace, Some(l)) => {
                        l.items = items;
                        l.files.push(file);
                    }
                }
            }
            ItemKind::Macro => {
                let cond = match &raw.condition {
                    Some(v) => scalar(v).ok_or_else(|| fail("`condition` must be text".into()))?,
                    None => return Err(fail("a macro needs a `condition`".into())),
                };
                let mode = mode_of("condition")?;
                match (mode, self.macros.get_mut(&name)) {
                    (Mode::Define, _) if !is_change => {
                        self.macros.insert(
                            name.clone(),
                            MacroDef {
                                condition: cond,
                                place: place.clone(),
                                files: vec![file],
                            },
                        );
                    }
                    (Mode::Define, _) => {}
                    (_, None) => {
                        return Err(fail(
                            "appends to or overrides a macro that no earlier file defines".into(),
                        ))
                    }
                    (Mode::Append, Some(m)) => {
                        // Falco joins the texts with a blank: the appended text says `and ...`/`or ...`.
                        m.condition = format!("{} {}", m.condition, cond);
                        m.files.push(file);
                    }
                    (Mode::Replace, Some(m)) => {
                        m.condition = cond;
                        m.place = place.clone();
                        m.files.push(file);
                    }
                }
            }
            ItemKind::Rule | ItemKind::Exception => {
                let modes = RuleModes {
                    condition: mode_of("condition")?,
                    exceptions: mode_of("exceptions")?,
                    enabled: mode_of("enabled")?,
                };
                self.add_rule(raw, name, place, file, is_change, modes)?;
            }
        }
        Ok(())
    }

    fn add_rule(
        &mut self,
        raw: RawItem,
        name: String,
        place: Place,
        file: usize,
        is_change: bool,
        modes: RuleModes,
    ) -> Result<(), LoadError> {
        let fail = |problem: String| LoadError::Item {
            place: place.clone(),
            kind: ItemKind::Rule,
            name: name.clone(),
            problem,
        };
        let cond = match &raw.condition {
            Some(v) => Some(scalar(v).ok_or_else(|| fail("`condition` must be text".into()))?),
            None => None,
        };
        let exceptions = raw
            .exceptions
            .unwrap_or_default()
            .into_iter()
            .map(|e| exception_def(e, &place, &name))
            .collect::<Result<Vec<_>, _>>()?;
        let existing = self.rule_index.get(&name).copied();
        if !is_change {
            match cond {
                Some(condition) => {
                    let def = RuleDef {
                        name: name.clone(),
                        condition,
                        exceptions,
                        enabled: raw.enabled.unwrap_or(true),
                        source: raw.source,
                        place,
                        files: vec![file],
                    };
                    match existing {
                        // A redefinition replaces the rule, keeping its place in the order.
                        Some(i) => {
                            if let Some(slot) = self.rules.get_mut(i) {
                                *slot = def;
                            }
                        }
                        None => {
                            self.rule_index.insert(name, self.rules.len());
                            self.rules.push(def);
                        }
                    }
                }
                // `- rule: X` with only `enabled:` switches an existing rule on or off.
                None => match (existing.and_then(|i| self.rules.get_mut(i)), raw.enabled) {
                    (Some(r), Some(en)) => {
                        r.enabled = en;
                        r.files.push(file);
                    }
                    (None, Some(_)) => {
                        return Err(fail(
                            "enables or disables a rule that no earlier file defines".into(),
                        ))
                    }
                    _ => return Err(fail("a rule needs a `condition`".into())),
                },
            }
            return Ok(());
        }
        let RuleModes {
            condition: cond_mode,
            exceptions: exc_mode,
            enabled: enabled_mode,
        } = modes;
        let Some(r) = existing.and_then(|i| self.rules.get_mut(i)) else {
            return Err(fail(
                "appends to or overrides a rule that no earlier file defines".into(),
            ));
        };
        r.files.push(file);
        if let Some(c) = cond {
            match cond_mode {
                Mode::Append => r.condition = format!("{} {}", r.condition, c),
                Mode::Replace => r.condition = c,
                Mode::Define => {}
            }
        }
        match exc_mode {
            Mode::Append => {
                for e in exceptions {
                    match r.exceptions.iter_mut().find(|x| x.name == e.name) {
                        // Values appended to an exception of the same name extend it.
                        Some(x) => x.values.extend(e.values),
                        None => r.exceptions.push(e),
                    }
                }
            }
            Mode::Replace => r.exceptions = exceptions,
            Mode::Define => {}
        }
        if let (Some(en), Mode::Replace) = (raw.enabled, enabled_mode) {
            r.enabled = en;
        }
        Ok(())
    }

    /// Parse every macro and rule condition: syntax errors name the item and position.
    pub(crate) fn parsed_macro(&self, name: &str) -> Option<Result<Expr, LoadError>> {
        let m = self.macros.get(name)?;
        Some(
            parse_condition(&m.condition).map_err(|source| LoadError::Syntax {
                place: m.place.clone(),
                kind: ItemKind::Macro,
                name: name.to_string(),
                source,
            }),
        )
    }
}

fn exception_def(e: RawException, place: &Place, rule: &str) -> Result<ExceptionDef, LoadError> {
    let ename = e.name.clone().unwrap_or_default();
    let fail = |problem: String| LoadError::Item {
        place: place.clone(),
        kind: ItemKind::Exception,
        name: format!("{rule}/{ename}"),
        problem,
    };
    if ename.is_empty() {
        return Err(fail("an exception needs a `name`".into()));
    }
    let fields = match &e.fields {
        Some(Value::String(s)) => ExceptionFields::Single(s.clone()),
        Some(Value::Array(a)) => ExceptionFields::Tuple(
            a.iter()
                .map(|v| {
                    scalar(v).ok_or_else(|| fail("`fields` entries must be field names".into()))
                })
                .collect::<Result<_, _>>()?,
        ),
        // An exception without fields is accepted only when it has no values either.
        None => ExceptionFields::Tuple(Vec::new()),
        Some(_) => {
            return Err(fail(
                "`fields` must be a field name or a list of them".into(),
            ))
        }
    };
    let comps = match (&e.comps, &fields) {
        (None, ExceptionFields::Single(_)) => vec!["in".to_string()],
        (None, ExceptionFields::Tuple(f)) => vec!["=".to_string(); f.len()],
        (Some(Value::String(s)), _) => vec![s.clone()],
        (Some(Value::Array(a)), _) => a
            .iter()
            .map(|v| scalar(v).ok_or_else(|| fail("`comps` entries must be operators".into())))
            .collect::<Result<_, _>>()?,
        (Some(_), _) => return Err(fail("`comps` must be an operator or a list of them".into())),
    };
    if let ExceptionFields::Tuple(f) = &fields {
        if f.len() != comps.len() {
            return Err(fail(format!(
                "{} fields but {} comps",
                f.len(),
                comps.len()
            )));
        }
    }
    let values = match e.values {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a,
        Some(_) => return Err(fail("`values` must be a list".into())),
    };
    if values.is_empty() && matches!(&fields, ExceptionFields::Tuple(f) if f.is_empty()) {
        return Err(fail("an exception needs `fields`".into()));
    }
    Ok(ExceptionDef {
        name: ename,
        fields,
        comps,
        values,
        place: place.clone(),
    })
}
