//! `output_fields`: Falco field name -> typed JSON value (string, integer, boolean, null, list).

use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;

pub type FieldMap = BTreeMap<String, Value>;

/// Reading a field as text the way Falco prints it, treating `null` and `<NA>` as absent.
pub trait FieldValueExt {
    fn as_text(&self) -> Option<Cow<'_, str>>;
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
}
