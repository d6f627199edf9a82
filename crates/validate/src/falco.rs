//! Falco rules files: rules, macros, lists, exceptions and overrides, plus a light lexer-level
//! check of `condition:` expressions and `%field` references in `output:`.

use crate::fields::is_falco_field;
use crate::finding::Finding;
use crate::values::{contains, values};
use crate::yaml::{kind_of, line_of_key, parse_documents, Booleans};
use serde_json::{Map, Value};

const CHECKER: &str = "falco-yaml";
const ITEM_KINDS: &[&str] = &[
    "rule",
    "macro",
    "list",
    "required_engine_version",
    "required_plugin_versions",
];

struct Ctx<'a> {
    src: &'a str,
    /// `- rule: NAME` of the item being checked, the finding's excerpt.
    item: String,
    findings: Vec<Finding>,
}

impl Ctx<'_> {
    fn report(&mut self, key: &str, token: &str, message: String) {
        let line = self.item_line().or_else(|| line_of_key(self.src, key));
        let excerpt = if self.item.is_empty() {
            self.src
        } else {
            self.item.as_str()
        };
        self.findings
            .push(Finding::new(CHECKER, excerpt, token, message).at_line(line));
    }

    /// The line of the current item's first line (`- rule: NAME`), when it can be found.
    fn item_line(&self) -> Option<usize> {
        if self.item.is_empty() {
            return None;
        }
        let (kind, name) = self.item.trim_start_matches("- ").split_once(": ")?;
        self.src
            .lines()
            .position(|l| {
                let t = l.trim_start().trim_start_matches("- ").trim_start();
                t.strip_prefix(kind)
                    .and_then(|r| r.trim_start().strip_prefix(':'))
                    .is_some_and(|r| r.trim().trim_matches(['"', '\'']) == name)
            })
            .map(|i| i + 1)
    }
}

pub(crate) fn check(src: &str) -> Vec<Finding> {
    let docs = match parse_documents(CHECKER, src, Booleans::Strict) {
        Ok(d) => d,
        Err(f) => return vec![f],
    };
    let mut ctx = Ctx {
        src,
        item: String::new(),
        findings: Vec::new(),
    };
    for doc in &docs {
        match doc {
            Value::Null => {}
            Value::Array(items) => {
                for item in items {
                    check_item(&mut ctx, item);
                }
            }
            other => ctx.report(
                "",
                "(document)",
                format!(
                    "a Falco rules file is a list of `- rule:`, `- macro:` and `- list:` items, not {}",
                    kind_of(other)
                ),
            ),
        }
    }
    ctx.findings
}

fn check_item(ctx: &mut Ctx<'_>, item: &Value) {
    let Some(map) = item.as_object() else {
        ctx.report(
            "",
            &render(item),
            format!("a rules file item is a mapping, not {}", kind_of(item)),
        );
        return;
    };
    let kinds: Vec<&str> = ITEM_KINDS
        .iter()
        .copied()
        .filter(|k| map.contains_key(*k))
        .collect();
    ctx.item = match kinds.first() {
        Some(k) if matches!(*k, "rule" | "macro" | "list") => format!("- {k}: {}", name_of(map, k)),
        _ => String::new(),
    };
    match kinds.as_slice() {
        [kind] => match *kind {
            "rule" => rule(ctx, map),
            "macro" => macro_item(ctx, map),
            "list" => list_item(ctx, map),
            "required_plugin_versions" => plugin_versions(ctx, map),
            _ => only_key(ctx, map, "required_engine_version"),
        },
        [] => {
            let keys: Vec<&str> = map.keys().map(String::as_str).collect();
            ctx.report(
                keys.first().copied().unwrap_or(""),
                keys.first().copied().unwrap_or("(item)"),
                "an item must start with rule:, macro:, list:, required_engine_version: or required_plugin_versions:".to_string(),
            );
        }
        many => ctx.report(
            many[1],
            many[1],
            format!("one item cannot be both {} and {}", many[0], many[1]),
        ),
    }
}

fn only_key(ctx: &mut Ctx<'_>, map: &Map<String, Value>, key: &str) {
    for k in map.keys().filter(|k| k.as_str() != key) {
        ctx.report(k, k, format!("unknown key `{k}` next to {key}"));
    }
}

fn unknown_keys(
    ctx: &mut Ctx<'_>,
    map: &Map<String, Value>,
    allowed: &[String],
    what: &str,
    name: &str,
) {
    for k in map.keys() {
        if !contains(allowed, k) {
            ctx.report(
                k,
                k,
                format!(
                    "{what} `{name}` has no key `{k}` (allowed: {})",
                    allowed.join(", ")
                ),
            );
        }
    }
}

fn name_of(map: &Map<String, Value>, key: &str) -> String {
    match map.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::new(),
    }
}

fn rule(ctx: &mut Ctx<'_>, map: &Map<String, Value>) {
    let f = &values().falco;
    let name = name_of(map, "rule");
    if !map.get("rule").is_some_and(Value::is_string) {
        ctx.report("rule", "rule", "a rule's name must be a string".to_string());
    }
    unknown_keys(ctx, map, &f.rule_keys, "rule", &name);
    let appending = map.get("append").and_then(Value::as_bool).unwrap_or(false);
    let overriding = map.contains_key("override");
    if appending && overriding {
        ctx.report(
            "append",
            "append",
            format!("rule `{name}` cannot use both append and override"),
        );
    }
    let toggle_only = map.keys().all(|k| k == "rule" || k == "enabled");
    if !appending && !overriding && !toggle_only {
        for required in ["condition", "output", "desc", "priority"] {
            if !map.contains_key(required) {
                ctx.report(
                    "rule",
                    required,
                    format!("rule `{name}` needs `{required}` (or `override:` to change an existing rule)"),
                );
            }
        }
    }
    if let Some(p) = map.get("priority") {
        match p.as_str() {
            Some(s) if crate::values::contains_ci(&f.priorities, s) => {}
            _ => ctx.report(
                "priority",
                &render(p),
                format!("priority must be one of {}", f.priorities.join(", ")),
            ),
        }
    }
    if let Some(v) = map.get("enabled") {
        if !v.is_boolean() {
            ctx.report(
                "enabled",
                &render(v),
                "enabled must be true or false".to_string(),
            );
        }
    }
    if let Some(tags) = map.get("tags") {
        if !tags
            .as_array()
            .is_some_and(|a| a.iter().all(Value::is_string))
        {
            ctx.report("tags", "tags", "tags must be a list of strings".to_string());
        }
    }
    let condition_appended = appending
        || map
            .get("override")
            .and_then(|o| o.get("condition"))
            .and_then(Value::as_str)
            == Some("append");
    if let Some(c) = map.get("condition") {
        condition(ctx, c, condition_appended);
    }
    if let Some(o) = map.get("output") {
        output(ctx, o);
    }
    let exceptions_appended = appending
        || map
            .get("override")
            .and_then(|o| o.get("exceptions"))
            .and_then(Value::as_str)
            == Some("append");
    if let Some(e) = map.get("exceptions") {
        exceptions(ctx, e, exceptions_appended);
    }
    if let Some(o) = map.get("override") {
        override_map(
            ctx,
            map,
            o,
            &f.rule_override_append,
            &f.rule_override_replace,
            &name,
        );
    }
}

fn macro_item(ctx: &mut Ctx<'_>, map: &Map<String, Value>) {
    let f = &values().falco;
    let name = name_of(map, "macro");
    unknown_keys(ctx, map, &f.macro_keys, "macro", &name);
    let appended = map.get("append").and_then(Value::as_bool).unwrap_or(false)
        || map
            .get("override")
            .and_then(|o| o.get("condition"))
            .and_then(Value::as_str)
            == Some("append");
    match map.get("condition") {
        Some(c) => condition(ctx, c, appended),
        None => ctx.report(
            "macro",
            "condition",
            format!("macro `{name}` needs `condition`"),
        ),
    }
    if let Some(o) = map.get("override") {
        let keys = vec!["condition".to_string()];
        override_map(ctx, map, o, &keys, &keys, &name);
    }
}

fn list_item(ctx: &mut Ctx<'_>, map: &Map<String, Value>) {
    let f = &values().falco;
    let name = name_of(map, "list");
    unknown_keys(ctx, map, &f.list_keys, "list", &name);
    match map.get("items") {
        Some(Value::Array(items)) => {
            for it in items {
                if !(it.is_string() || it.is_number()) {
                    ctx.report(
                        "items",
                        &render(it),
                        format!("list `{name}` items must be strings or numbers"),
                    );
                }
            }
        }
        Some(other) => ctx.report(
            "items",
            "items",
            format!("list `{name}` items must be a list, not {}", kind_of(other)),
        ),
        None => ctx.report("list", "items", format!("list `{name}` needs `items`")),
    }
    if let Some(o) = map.get("override") {
        let keys = vec!["items".to_string()];
        override_map(ctx, map, o, &keys, &keys, &name);
    }
}

fn plugin_versions(ctx: &mut Ctx<'_>, map: &Map<String, Value>) {
    only_key(ctx, map, "required_plugin_versions");
    let Some(Value::Array(items)) = map.get("required_plugin_versions") else {
        ctx.report(
            "required_plugin_versions",
            "required_plugin_versions",
            "must be a list of {name, version}".to_string(),
        );
        return;
    };
    for it in items {
        let ok = it.get("name").is_some_and(Value::is_string)
            && it.get("version").is_some_and(Value::is_string);
        let keys_ok = it.as_object().is_some_and(|m| {
            m.keys()
                .all(|k| matches!(k.as_str(), "name" | "version" | "alternatives"))
        });
        if !ok || !keys_ok {
            ctx.report(
                "name",
                &render(it),
                "each required plugin needs `name` and `version` (and optional `alternatives`)"
                    .to_string(),
            );
        }
    }
}

fn override_map(
    ctx: &mut Ctx<'_>,
    item: &Map<String, Value>,
    o: &Value,
    can_append: &[String],
    can_replace: &[String],
    name: &str,
) {
    let Some(map) = o.as_object() else {
        ctx.report(
            "override",
            "override",
            format!("override of `{name}` must map keys to append or replace"),
        );
        return;
    };
    for (k, v) in map {
        let how = v.as_str().unwrap_or("");
        let allowed = match how {
            "append" => can_append,
            "replace" => can_replace,
            _ => {
                ctx.report(
                    k,
                    &render(v),
                    format!("override `{k}` must be append or replace"),
                );
                continue;
            }
        };
        if !contains(allowed, k) {
            ctx.report(
                k,
                k,
                format!("`{k}` cannot be overridden with {how} in `{name}`"),
            );
        }
        if !item.contains_key(k) {
            ctx.report(
                k,
                k,
                format!("override of `{k}` in `{name}` needs the `{k}:` key with the new value"),
            );
        }
    }
}

fn exceptions(ctx: &mut Ctx<'_>, e: &Value, appended: bool) {
    let f = &values().falco;
    let Some(list) = e.as_array() else {
        ctx.report(
            "exceptions",
            "exceptions",
            "exceptions must be a list".to_string(),
        );
        return;
    };
    for ex in list {
        let Some(map) = ex.as_object() else {
            ctx.report(
                "exceptions",
                &render(ex),
                "each exception is a mapping with name, fields, comps, values".to_string(),
            );
            continue;
        };
        let name = name_of(map, "name");
        for k in map.keys() {
            if !contains(&f.exception_keys, k) {
                ctx.report(
                    k,
                    k,
                    format!("exception `{name}` has no key `{k}` (name, fields, comps, values)"),
                );
            }
        }
        if name.is_empty() {
            ctx.report(
                "exceptions",
                "name",
                "each exception needs a `name`".to_string(),
            );
        }
        let fields = map.get("fields");
        if fields.is_none() && !appended {
            ctx.report(
                "name",
                "fields",
                format!("exception `{name}` needs `fields`"),
            );
        }
        let arity = match fields {
            Some(Value::String(field)) => {
                check_field_name(ctx, "fields", field);
                None
            }
            Some(Value::Array(fs)) => {
                for fv in fs {
                    match fv.as_str() {
                        Some(field) => check_field_name(ctx, "fields", field),
                        None => ctx.report(
                            "fields",
                            &render(fv),
                            "exception fields are field names".to_string(),
                        ),
                    }
                }
                Some(fs.len())
            }
            Some(other) => {
                ctx.report(
                    "fields",
                    &render(other),
                    "fields is a field name or a list of them".to_string(),
                );
                None
            }
            None => None,
        };
        let comps = map.get("comps");
        let single_comp = match (arity, comps) {
            (_, None) => Some("="),
            (Some(n), Some(Value::Array(cs))) => {
                if cs.len() != n {
                    ctx.report(
                        "comps",
                        "comps",
                        format!("exception `{name}` has {n} fields but {} comps", cs.len()),
                    );
                }
                for c in cs {
                    check_operator(ctx, c);
                }
                None
            }
            (None, Some(Value::String(c))) if fields.is_some() => {
                check_operator(ctx, &Value::String(c.clone()));
                Some(c.as_str())
            }
            (None, Some(Value::Array(_))) if fields.is_some() => {
                ctx.report(
                    "comps",
                    "comps",
                    format!("exception `{name}` has one field, so comps is one operator"),
                );
                None
            }
            (Some(_), Some(other)) => {
                ctx.report("comps", &render(other), format!("exception `{name}` has a list of fields, so comps is a list of the same length"));
                None
            }
            _ => None,
        };
        if let Some(vals) = map.get("values") {
            exception_values(ctx, &name, vals, arity, single_comp);
        }
    }
}

fn exception_values(
    ctx: &mut Ctx<'_>,
    name: &str,
    vals: &Value,
    arity: Option<usize>,
    comp: Option<&str>,
) {
    let f = &values().falco;
    let Some(rows) = vals.as_array() else {
        ctx.report(
            "values",
            "values",
            format!("values of exception `{name}` must be a list"),
        );
        return;
    };
    for row in rows {
        match (arity, row) {
            (Some(n), Value::Array(tuple)) => {
                if tuple.len() != n {
                    ctx.report("values", &render(row), format!("exception `{name}` has {n} fields, so each value is a list of {n} items"));
                }
            }
            (Some(n), other) => ctx.report(
                "values",
                &render(other),
                format!("exception `{name}` has {n} fields, so each value is a list of {n} items, not a single value"),
            ),
            (None, Value::Array(_)) => {
                // One field: a list value is only meaningful for list operators (in, pmatch...).
                if !comp.is_some_and(|c| contains(&f.list_operators, c)) {
                    ctx.report("values", &render(row), format!("exception `{name}` has one field, so values is a list of single values"));
                }
            }
            (None, _) => {}
        }
    }
}

fn check_operator(ctx: &mut Ctx<'_>, c: &Value) {
    let f = &values().falco;
    match c.as_str() {
        Some(op) if contains(&f.operators, op) => {}
        _ => ctx.report(
            "comps",
            &render(c),
            format!(
                "not a Falco operator (use one of {})",
                f.operators.join(" ")
            ),
        ),
    }
}

fn check_field_name(ctx: &mut Ctx<'_>, key: &str, field: &str) {
    if !is_falco_field(field) {
        ctx.report(key, field, format!("`{field}` is not a Falco field"));
    }
}

fn render(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn output(ctx: &mut Ctx<'_>, o: &Value) {
    let Some(text) = o.as_str() else {
        ctx.report("output", "output", "output must be a string".to_string());
        return;
    };
    let placeholders = &values().falco.output_placeholders;
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] != '%' {
            i += 1;
            continue;
        }
        let start = i + 1;
        let mut j = start;
        while j < chars.len()
            && (chars[j].is_ascii_alphanumeric() || chars[j] == '_' || chars[j] == '.')
        {
            j += 1;
        }
        if j < chars.len() && chars[j] == '[' {
            if let Some(close) = chars[j..].iter().position(|c| *c == ']') {
                j += close + 1;
            }
        }
        let name: String = chars[start..j]
            .iter()
            .collect::<String>()
            .trim_end_matches('.')
            .to_string();
        if name.contains('.') && !is_falco_field(&name) && !contains(placeholders, &name) {
            ctx.report("output", &name, format!("`%{name}` is not a Falco field"));
        }
        i = j.max(start);
    }
}

// ---------------------------------------------------------------- condition expressions

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Open,
    Close,
    Comma,
    Str,
    Op(String),
    Word(String),
}

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Tok::Open);
                i += 1;
            }
            ')' => {
                out.push(Tok::Close);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            '"' | '\'' => {
                let q = c;
                i += 1;
                let mut closed = false;
                while i < chars.len() {
                    if chars[i] == '\\' {
                        i += 2;
                        continue;
                    }
                    if chars[i] == q {
                        closed = true;
                        i += 1;
                        break;
                    }
                    i += 1;
                }
                if !closed {
                    return Err(format!("unterminated {q} string"));
                }
                out.push(Tok::Str);
            }
            '=' | '!' | '<' | '>' => {
                let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
                let op = if matches!(two.as_str(), "==" | "!=" | "<=" | ">=") {
                    two
                } else {
                    c.to_string()
                };
                if op == "!" {
                    return Err("`!` is not an operator (use `not` or `!=`)".to_string());
                }
                i += op.len();
                out.push(Tok::Op(op));
            }
            _ => {
                let start = i;
                while i < chars.len() {
                    let ch = chars[i];
                    if ch == '[' {
                        match chars[i..].iter().position(|c| *c == ']') {
                            Some(p) => i += p + 1,
                            None => return Err("unclosed `[` in a field argument".to_string()),
                        }
                        continue;
                    }
                    if ch.is_whitespace() || "(),=!<>\"'".contains(ch) {
                        break;
                    }
                    i += 1;
                }
                out.push(Tok::Word(chars[start..i].iter().collect()));
            }
        }
    }
    Ok(out)
}

/// Deeper nesting of `(` and `not` than this is reported instead of followed.
const MAX_CONDITION_DEPTH: usize = 128;

struct Cond<'a, 'c> {
    toks: Vec<Tok>,
    i: usize,
    ctx: &'a mut Ctx<'c>,
    errors: usize,
    depth: usize,
}

/// `appended`: the text is added to an existing condition, so it may start with `and`/`or`.
fn condition(ctx: &mut Ctx<'_>, c: &Value, appended: bool) {
    let Some(text) = c.as_str() else {
        ctx.report(
            "condition",
            "condition",
            "condition must be a string".to_string(),
        );
        return;
    };
    let toks = match lex(text) {
        Ok(mut t) => {
            if appended && matches!(t.first(), Some(Tok::Word(w)) if w == "and" || w == "or") {
                t.remove(0);
            }
            t
        }
        Err(e) => {
            ctx.report("condition", text, format!("condition does not parse: {e}"));
            return;
        }
    };
    let depth_ok = {
        let mut d: i64 = 0;
        let mut ok = true;
        for t in &toks {
            match t {
                Tok::Open => d += 1,
                Tok::Close => {
                    d -= 1;
                    ok &= d >= 0;
                }
                _ => {}
            }
        }
        ok && d == 0
    };
    if !depth_ok {
        ctx.report(
            "condition",
            text,
            "condition has unbalanced parentheses".to_string(),
        );
        return;
    }
    if toks.is_empty() {
        ctx.report("condition", "condition", "condition is empty".to_string());
        return;
    }
    let mut p = Cond {
        toks,
        i: 0,
        ctx,
        errors: 0,
        depth: 0,
    };
    p.expr();
    if p.errors == 0 && p.i < p.toks.len() {
        let t = p.describe(p.i);
        p.error(&t, format!("unexpected `{t}` in condition"));
    }
}

impl Cond<'_, '_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i)
    }

    fn describe(&self, i: usize) -> String {
        match self.toks.get(i) {
            Some(Tok::Open) => "(".into(),
            Some(Tok::Close) => ")".into(),
            Some(Tok::Comma) => ",".into(),
            Some(Tok::Str) => "a string".into(),
            Some(Tok::Op(o)) | Some(Tok::Word(o)) => o.clone(),
            None => "end of condition".into(),
        }
    }

    fn error(&mut self, token: &str, message: String) {
        // One structural error per condition: later ones are consequences.
        if self.errors == 0 {
            self.ctx.report("condition", token, message);
        }
        self.errors += 1;
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(x)) if x == w)
    }

    fn expr(&mut self) {
        self.and_expr();
        while self.errors == 0 && self.is_word("or") {
            self.i += 1;
            self.and_expr();
        }
    }

    fn and_expr(&mut self) {
        self.not_expr();
        while self.errors == 0 && self.is_word("and") {
            self.i += 1;
            self.not_expr();
        }
    }

    fn not_expr(&mut self) {
        if self.depth > MAX_CONDITION_DEPTH {
            self.error("(", "condition nests too deeply to check".to_string());
            return;
        }
        self.depth += 1;
        if self.is_word("not") {
            self.i += 1;
            self.not_expr();
        } else {
            self.primary();
        }
        self.depth -= 1;
    }

    fn primary(&mut self) {
        match self.peek().cloned() {
            Some(Tok::Open) => {
                self.i += 1;
                self.expr();
                if self.errors == 0 {
                    if self.peek() == Some(&Tok::Close) {
                        self.i += 1;
                    } else {
                        let t = self.describe(self.i);
                        self.error(&t, format!("expected `)` but found `{t}`"));
                    }
                }
            }
            Some(Tok::Word(w)) if matches!(w.as_str(), "and" | "or") => {
                self.error(&w, format!("`{w}` needs an expression before it"));
            }
            Some(Tok::Word(w)) => {
                self.i += 1;
                let is_field = self.lhs(&w);
                self.comparison(&w, is_field);
            }
            _ => {
                let t = self.describe(self.i);
                self.error(
                    &t,
                    format!("expected a field, macro or `(` but found `{t}`"),
                );
            }
        }
    }

    /// A left-hand side word; returns whether it is a field (else a macro reference).
    fn lhs(&mut self, w: &str) -> bool {
        let f = &values().falco;
        if contains(&f.transformers, w) && self.peek() == Some(&Tok::Open) {
            self.i += 1;
            let inner = match self.peek().cloned() {
                Some(Tok::Word(x)) => {
                    self.i += 1;
                    x
                }
                _ => String::new(),
            };
            if self.peek() == Some(&Tok::Close) {
                self.i += 1;
            } else {
                let t = self.describe(self.i);
                self.error(&t, format!("`{w}(` needs one field and `)`"));
            }
            self.check_field(&inner);
            return true;
        }
        if looks_like_field(w) {
            self.check_field(w);
            return true;
        }
        false
    }

    fn check_field(&mut self, w: &str) {
        if !is_falco_field(w) {
            self.ctx
                .report("condition", w, format!("`{w}` is not a Falco field"));
        }
    }

    fn comparison(&mut self, lhs: &str, is_field: bool) {
        let f = &values().falco;
        let op = match self.peek().cloned() {
            Some(Tok::Op(o)) => Some(o),
            Some(Tok::Word(o)) if contains(&f.operators, &o) => Some(o),
            _ => None,
        };
        let Some(op) = op else {
            if is_field {
                match self.peek().cloned() {
                    Some(Tok::Word(x)) if !matches!(x.as_str(), "and" | "or") => {
                        self.error(&x, format!("`{x}` is not a Falco operator (after `{lhs}`)"));
                    }
                    _ => self.error(lhs, format!("field `{lhs}` needs an operator and a value")),
                }
            }
            return;
        };
        if !is_field {
            self.error(
                lhs,
                format!("`{lhs}` is not a Falco field, so it cannot be compared"),
            );
            return;
        }
        self.i += 1;
        if op == "exists" {
            return;
        }
        if contains(&f.list_operators, &op) {
            match self.peek().cloned() {
                Some(Tok::Open) => {
                    self.i += 1;
                    loop {
                        match self.peek().cloned() {
                            Some(Tok::Close) => {
                                self.i += 1;
                                break;
                            }
                            Some(Tok::Str) | Some(Tok::Word(_)) | Some(Tok::Comma) => self.i += 1,
                            _ => {
                                let t = self.describe(self.i);
                                self.error(&t, format!("the list after `{op}` is not closed"));
                                return;
                            }
                        }
                    }
                }
                Some(Tok::Word(_)) => self.i += 1, // a list name
                _ => {
                    let t = self.describe(self.i);
                    self.error(&t, format!("`{op}` needs a list `(a, b)` or a list name"));
                }
            }
            return;
        }
        match self.peek().cloned() {
            Some(Tok::Str) => self.i += 1,
            // evt.dir = < and evt.dir = > compare with the direction characters themselves
            Some(Tok::Op(v)) if v == "<" || v == ">" => self.i += 1,
            Some(Tok::Word(v)) if !matches!(v.as_str(), "and" | "or" | "not") => {
                self.i += 1;
                if contains(&f.transformers, &v) && self.peek() == Some(&Tok::Open) {
                    // val(field) and friends on the right-hand side
                    while let Some(t) = self.peek().cloned() {
                        self.i += 1;
                        if t == Tok::Close {
                            break;
                        }
                    }
                }
            }
            _ => {
                let t = self.describe(self.i);
                self.error(&t, format!("`{lhs} {op}` needs a value"));
            }
        }
    }
}

fn looks_like_field(w: &str) -> bool {
    match w.split_once('.') {
        Some((class, rest)) => !rest.is_empty() && contains(&values().falco.field_classes, class),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(src: &str) -> Vec<String> {
        check(src).into_iter().map(|f| f.token).collect()
    }

    #[test]
    fn valid_exception_append() {
        let y = r#"
- rule: Terminal shell in container
  exceptions:
    - name: calico_housekeeping
      fields: [proc.pname, proc.cmdline]
      comps: [=, startswith]
      values:
        - [calico-node, "sh -c ip link del calico_tmp"]
  override:
    exceptions: append
"#;
        assert_eq!(check(y), vec![]);
    }

    #[test]
    fn exception_shapes_are_checked() {
        let y = r#"
- rule: X
  exceptions:
    - name: a
      fields: [proc.name, proc.pname]
      comps: [=]
      values:
        - [bash]
    - name: b
      fields: proc.name
      comps: equals
      values: [sh, bash]
    - name: c
      fields: [proc.parent]
      values: [[x]]
  override:
    exceptions: append
"#;
        let t = tokens(y);
        assert_eq!(
            t,
            vec!["comps", "[\"bash\"]", "equals", "proc.parent"],
            "{t:?}"
        );
    }

    #[test]
    fn rule_needs_required_keys_and_valid_priority() {
        let y = "- rule: New\n  desc: d\n  condition: proc.name = bash\n  output: \"%proc.name\"\n  priority: urgent\n";
        assert_eq!(tokens(y), vec!["urgent"]);
        let y = "- rule: New\n  condition: evt.type = execve\n";
        assert_eq!(tokens(y), vec!["output", "desc", "priority"]);
        assert_eq!(check("- rule: Old\n  enabled: false\n"), vec![]);
    }

    #[test]
    fn unknown_keys_and_override_values() {
        let y = "- rule: X\n  condition: and proc.name=x\n  override:\n    condition: merge\n  severity: high\n";
        let t = tokens(y);
        assert!(t.contains(&"severity".to_string()), "{t:?}");
        assert!(t.contains(&"merge".to_string()), "{t:?}");
        let y = "- macro: m\n  condition: proc.name = x\n  override:\n    items: append\n";
        assert_eq!(tokens(y), vec!["items", "items"]);
    }

    #[test]
    fn condition_lexer_checks() {
        let ok = "- macro: m\n  condition: (proc.aname[2] in (runc, containerd) and evt.arg.flags contains EXE_WRITABLE) or not container or val(proc.pid) exists or k8s.pod.label[app.kubernetes.io/name] = web\n";
        assert_eq!(check(ok), vec![]);
        assert_eq!(
            tokens("- macro: m\n  condition: (proc.name = x\n"),
            vec!["(proc.name = x"]
        );
        assert_eq!(
            tokens("- macro: m\n  condition: proc.name equals bash\n"),
            vec!["equals"]
        );
        assert_eq!(
            tokens("- macro: m\n  condition: proc.parent_name = bash\n"),
            vec!["proc.parent_name"]
        );
        assert_eq!(
            tokens("- macro: m\n  condition: okta.evt.type = user.account.lock\n"),
            Vec::<String>::new()
        );
        let deep = format!(
            "- macro: m\n  condition: {}proc.name = x{}\n",
            "(".repeat(5000),
            ")".repeat(5000)
        );
        assert_eq!(tokens(&deep), vec!["("]);
    }

    #[test]
    fn output_fields_are_checked() {
        let y = "- rule: r\n  desc: d\n  condition: spawned_process\n  output: \"shell %proc.name parent=%proc.aname[2] flags=%evt.arg.flags x=%proc.bogus\"\n  priority: WARNING\n";
        assert_eq!(tokens(y), vec!["proc.bogus"]);
    }

    #[test]
    fn structure_errors() {
        assert_eq!(tokens("rule: x\n"), vec!["(document)"]);
        assert_eq!(tokens("- rules: x\n"), vec!["rules"]);
        assert_eq!(
            tokens("- list: l\n  items: [a, {b: c}]\n"),
            vec!["{\"b\":\"c\"}"]
        );
    }
}
