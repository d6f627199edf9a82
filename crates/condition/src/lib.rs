//! Falco rules files and their conditions, evaluated over an alert's fields.
//!
//! - `load`: `list`, `macro` and `rule` items, `append: true`, `override:`, `exceptions:`,
//!   `enabled`, collected in load order ([`RuleSet`]).
//! - `parse`: the filter language as libsinsp parses it ([`parse_condition`]).
//! - `compile`: macros inlined, lists expanded, exceptions built into each rule ([`Compiled`]).
//! - `eval`: three-valued evaluation over a [`FieldSource`]; a field the alert lacks is
//!   unknown, and a false result names the macro, list, exception or comparison behind it.

pub mod compile;
pub mod eval;
pub mod load;
pub mod parse;

pub use compile::{compile, compile_condition, Compiled, CompiledRule, Condition};
pub use eval::{FieldSource, Lookup, Outcome, Step, StepKind, Tri};
pub use load::{FileInfo, ItemKind, LoadError, Place, RuleSet};
pub use parse::{parse_condition, parse_field, FieldRef, Op, SyntaxError};

use std::collections::HashMap;

/// A field source from a plain map (field name with its `[arg]`, as Falco prints it), for
/// tests and simple callers. A name not in the map is unknown.
#[derive(Debug, Clone, Default)]
pub struct MapFields(pub HashMap<String, Vec<String>>);

impl MapFields {
    pub fn new<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut m: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in pairs {
            m.entry(k.to_string()).or_default().push(v.to_string());
        }
        MapFields(m)
    }
}

impl FieldSource for MapFields {
    fn field(&self, name: &str, arg: Option<&str>) -> Lookup {
        let key = match arg {
            Some(a) => format!("{name}[{a}]"),
            None => name.to_string(),
        };
        match self.0.get(&key) {
            Some(v) => Lookup::Known(v.clone()),
            None => Lookup::Unknown,
        }
    }
}
