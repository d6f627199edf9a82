//! The Falco filter language, parsed as libsinsp's parser does (libsinsp/filter/parser.cpp):
//! the same token shapes (field names need a dot, bare strings stop at `()"'=,` and blanks),
//! operators tried in the same order, `not` needing a blank or `(`, a depth limit of 100.

use std::fmt;

/// How deep expressions may nest before the parser refuses (libsinsp uses the same limit).
const MAX_DEPTH: u32 = 100;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Contains,
    IContains,
    BContains,
    StartsWith,
    BStartsWith,
    EndsWith,
    Glob,
    IGlob,
    Regex,
    In,
    Intersects,
    PMatch,
    Exists,
}

impl Op {
    /// The operator as Falco spells it (also the `comps` of an exception).
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Contains => "contains",
            Op::IContains => "icontains",
            Op::BContains => "bcontains",
            Op::StartsWith => "startswith",
            Op::BStartsWith => "bstartswith",
            Op::EndsWith => "endswith",
            Op::Glob => "glob",
            Op::IGlob => "iglob",
            Op::Regex => "regex",
            Op::In => "in",
            Op::Intersects => "intersects",
            Op::PMatch => "pmatch",
            Op::Exists => "exists",
        }
    }

    /// An operator from its spelling (`==` is `=`), e.g. an exception's `comps` entry.
    pub fn from_name(s: &str) -> Option<Op> {
        Some(match s {
            "=" | "==" => Op::Eq,
            "!=" => Op::Ne,
            "<" => Op::Lt,
            "<=" => Op::Le,
            ">" => Op::Gt,
            ">=" => Op::Ge,
            "contains" => Op::Contains,
            "icontains" => Op::IContains,
            "bcontains" => Op::BContains,
            "startswith" => Op::StartsWith,
            "bstartswith" => Op::BStartsWith,
            "endswith" => Op::EndsWith,
            "glob" => Op::Glob,
            "iglob" => Op::IGlob,
            "regex" => Op::Regex,
            "in" => Op::In,
            "intersects" => Op::Intersects,
            "pmatch" => Op::PMatch,
            "exists" => Op::Exists,
            _ => return None,
        })
    }

    /// Operators whose right side is a list of values.
    pub fn takes_list(self) -> bool {
        matches!(self, Op::In | Op::Intersects | Op::PMatch)
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A field transformer: `tolower(proc.name)`, or `val(proc.pname)` on the right side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transformer {
    ToLower,
    ToUpper,
    B64,
    Basename,
    Len,
    Join,
    Val,
}

impl Transformer {
    pub fn as_str(self) -> &'static str {
        match self {
            Transformer::ToLower => "tolower",
            Transformer::ToUpper => "toupper",
            Transformer::B64 => "b64",
            Transformer::Basename => "basename",
            Transformer::Len => "len",
            Transformer::Join => "join",
            Transformer::Val => "val",
        }
    }
}

/// A field reference: `proc.aname[2]`, `fd.name`, `json.value[/userIdentity/type]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldRef {
    pub name: String,
    pub arg: Option<String>,
}

impl fmt::Display for FieldRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.arg {
            Some(a) => write!(f, "{}[{}]", self.name, a),
            None => f.write_str(&self.name),
        }
    }
}

/// Something with values: a field, a transformed operand, a constant, or a list of them
/// (a transformer's list argument).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operand {
    Field(FieldRef),
    Transform {
        name: Transformer,
        args: Vec<Operand>,
    },
    Value(String),
    List(Vec<Operand>),
}

impl fmt::Display for Operand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operand::Field(x) => x.fmt(f),
            Operand::Transform { name, args } => {
                write!(f, "{}(", name.as_str())?;
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    a.fmt(f)?;
                }
                f.write_str(")")
            }
            Operand::Value(v) => write!(f, "{v:?}"),
            Operand::List(items) => {
                f.write_str("(")?;
                for (i, a) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    a.fmt(f)?;
                }
                f.write_str(")")
            }
        }
    }
}

/// The right side of a comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rhs {
    /// A unary operator (`exists`).
    None,
    /// One value.
    Value(String),
    /// `(a, b, "c")`: its items may name lists.
    List(Vec<String>),
    /// `in name` without parentheses: a list reference.
    ListName(String),
    /// `val(field)` or a transformer: compared with another field's values.
    Operand(Operand),
}

/// One comparison as written, with the byte span of its text in the condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub left: Operand,
    pub op: Op,
    pub right: Rhs,
    pub span: (usize, usize),
}

/// A parsed condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    /// A bare identifier: a macro reference.
    Ident {
        name: String,
        offset: usize,
    },
    Check(Box<Check>),
}

/// A syntax error with its place in the condition (1-based line and column).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line} column {column}: {message}")]
pub struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub offset: usize,
    pub message: String,
}

/// Line and column (1-based, in characters) of a byte offset in `src`.
pub fn line_col(src: &str, offset: usize) -> (usize, usize) {
    let mut line = 1;
    let mut col = 1;
    for (i, c) in src.char_indices() {
        if i >= offset {
            break;
        }
        if c == '\n' {
            line += 1;
            col = 1;
        } else {
            col += 1;
        }
    }
    (line, col)
}

/// Parse a whole condition.
pub fn parse_condition(src: &str) -> Result<Expr, SyntaxError> {
    let mut p = Parser {
        src,
        b: src.as_bytes(),
        i: 0,
        depth: 0,
    };
    if src.trim().is_empty() {
        return Err(p.err("the condition is empty"));
    }
    let e = p.parse_or()?;
    p.blank();
    if p.i != p.b.len() {
        return Err(p.err("unexpected token, expecting 'or', 'and'"));
    }
    Ok(e)
}

/// Parse a field reference on its own (an exception's `fields` entry), e.g. `proc.aname[2]`.
pub fn parse_field(src: &str) -> Result<FieldRef, SyntaxError> {
    let mut p = Parser {
        src,
        b: src.as_bytes(),
        i: 0,
        depth: 0,
    };
    p.blank();
    let f = match p.field_name() {
        Some(name) => p.field_remainder(name)?,
        None => return Err(p.err("expected a field name such as `proc.name`")),
    };
    p.blank();
    if p.i != p.b.len() {
        return Err(p.err("unexpected text after the field name"));
    }
    Ok(f)
}

struct Parser<'a> {
    src: &'a str,
    b: &'a [u8],
    i: usize,
    depth: u32,
}

const STR_OPS: [(&str, Op, bool); 12] = [
    ("==", Op::Eq, false),
    ("=", Op::Eq, false),
    ("!=", Op::Ne, false),
    ("glob", Op::Glob, true),
    ("iglob", Op::IGlob, true),
    ("contains", Op::Contains, true),
    ("icontains", Op::IContains, true),
    ("bcontains", Op::BContains, true),
    ("startswith", Op::StartsWith, true),
    ("bstartswith", Op::BStartsWith, true),
    ("endswith", Op::EndsWith, true),
    ("regex", Op::Regex, true),
];
const NUM_OPS: [(&str, Op); 4] = [("<=", Op::Le), ("<", Op::Lt), (">=", Op::Ge), (">", Op::Gt)];
const LIST_OPS: [(&str, Op); 3] = [
    ("intersects", Op::Intersects),
    ("in", Op::In),
    ("pmatch", Op::PMatch),
];
const TRANSFORMERS: [(&str, Transformer); 6] = [
    ("tolower(", Transformer::ToLower),
    ("toupper(", Transformer::ToUpper),
    ("b64(", Transformer::B64),
    ("basename(", Transformer::Basename),
    ("len(", Transformer::Len),
    ("join(", Transformer::Join),
];

fn is_blank(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\x08' | b'\r' | b'\n')
}

impl<'a> Parser<'a> {
    fn err(&self, message: impl Into<String>) -> SyntaxError {
        let offset = self.i.min(self.b.len());
        let (line, column) = line_col(self.src, offset);
        SyntaxError {
            line,
            column,
            offset,
            message: message.into(),
        }
    }

    fn enter(&mut self) -> Result<(), SyntaxError> {
        self.depth += 1;
        if self.depth >= MAX_DEPTH {
            return Err(self.err(format!("exceeded the maximum nesting depth of {MAX_DEPTH}")));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn rest(&self) -> &'a [u8] {
        self.b.get(self.i..).unwrap_or(&[])
    }

    /// The text between two byte offsets (both on character boundaries by construction).
    fn text(&self, from: usize, to: usize) -> String {
        self.src.get(from..to).unwrap_or_default().to_string()
    }

    fn blank(&mut self) -> bool {
        let start = self.i;
        while self.peek().is_some_and(is_blank) {
            self.i += 1;
        }
        self.i > start
    }

    fn lit(&mut self, s: &str) -> bool {
        if self.rest().starts_with(s.as_bytes()) {
            self.i += s.len();
            true
        } else {
            false
        }
    }

    /// `[a-zA-Z]+[a-zA-Z0-9_]*` from `at`; returns the end offset.
    fn ident_end(&self, at: usize) -> Option<usize> {
        let b = self.b;
        if !b.get(at).is_some_and(u8::is_ascii_alphabetic) {
            return None;
        }
        let mut j = at + 1;
        while b
            .get(j)
            .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        {
            j += 1;
        }
        Some(j)
    }

    fn identifier(&mut self) -> Option<String> {
        let end = self.ident_end(self.i)?;
        let s = self.text(self.i, end);
        self.i = end;
        Some(s)
    }

    /// A field name: an identifier followed by at least one `.identifier`.
    fn field_name(&mut self) -> Option<String> {
        let mut end = self.ident_end(self.i)?;
        let mut parts = 1;
        while self.b.get(end) == Some(&b'.') {
            match self.ident_end(end + 1) {
                Some(e) => {
                    end = e;
                    parts += 1;
                }
                None => break,
            }
        }
        if parts < 2 {
            return None;
        }
        let s = self.text(self.i, end);
        self.i = end;
        Some(s)
    }

    fn quoted(&mut self) -> Option<String> {
        let delim = self.peek().filter(|c| *c == b'"' || *c == b'\'')?;
        let start = self.i;
        let mut j = self.i + 1;
        // A delimiter preceded by a backslash does not close the string (as in libsinsp).
        let mut prev = 0u8;
        while let Some(&c) = self.b.get(j) {
            if c == delim && prev != b'\\' {
                let raw = self.text(start + 1, j);
                self.i = j + 1;
                return Some(unescape(&raw));
            }
            prev = c;
            j += 1;
        }
        None
    }

    /// A bare string: `[^()"'[:space:]=,]+`.
    fn bare(&mut self) -> Option<String> {
        let start = self.i;
        let mut j = self.i;
        while self
            .b
            .get(j)
            .is_some_and(|c| !is_blank(*c) && !b"()\"'=,".contains(c))
        {
            j += 1;
        }
        if j == start {
            return None;
        }
        // Stop on a character boundary (a multi-byte character is never one of the stops).
        let s = self.text(start, j);
        self.i = j;
        Some(s)
    }

    /// A number: hex `0x..` or `[+-]?[0-9]+\.?[0-9]*([eE][+-][0-9]+)?`.
    fn number(&mut self) -> Option<String> {
        let b = self.b;
        let start = self.i;
        let mut j = start;
        if b.get(j) == Some(&b'0') && matches!(b.get(j + 1), Some(b'x' | b'X')) {
            let mut k = j + 2;
            while b.get(k).is_some_and(u8::is_ascii_hexdigit) {
                k += 1;
            }
            if k > j + 2 {
                self.i = k;
                return Some(self.text(start, k));
            }
        }
        if matches!(b.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        let digits = j;
        while b.get(j).is_some_and(u8::is_ascii_digit) {
            j += 1;
        }
        if j == digits {
            return None;
        }
        if b.get(j) == Some(&b'.') {
            j += 1;
            while b.get(j).is_some_and(u8::is_ascii_digit) {
                j += 1;
            }
        }
        if matches!(b.get(j), Some(b'e' | b'E')) && matches!(b.get(j + 1), Some(b'+' | b'-')) {
            let mut k = j + 2;
            while b.get(k).is_some_and(u8::is_ascii_digit) {
                k += 1;
            }
            if k > j + 2 {
                j = k;
            }
        }
        self.i = j;
        Some(self.text(start, j))
    }

    fn parse_or(&mut self) -> Result<Expr, SyntaxError> {
        self.enter()?;
        self.blank();
        let mut children = vec![self.parse_and()?];
        self.blank();
        while self.lit("or") {
            let child = if self.blank() {
                self.parse_and()?
            } else if self.lit("(") {
                self.embedded()?
            } else {
                return Err(self.err("expected a blank or '(' after 'or'"));
            };
            children.push(child);
            self.blank();
        }
        self.leave();
        Ok(if children.len() == 1 {
            children.swap_remove(0)
        } else {
            Expr::Or(children)
        })
    }

    fn parse_and(&mut self) -> Result<Expr, SyntaxError> {
        self.enter()?;
        self.blank();
        let mut children = vec![self.parse_not()?];
        self.blank();
        while self.lit("and") {
            let child = if self.blank() {
                self.parse_not()?
            } else if self.lit("(") {
                self.embedded()?
            } else {
                return Err(self.err("expected a blank or '(' after 'and'"));
            };
            children.push(child);
            self.blank();
        }
        self.leave();
        Ok(if children.len() == 1 {
            children.swap_remove(0)
        } else {
            Expr::And(children)
        })
    }

    fn not_blank(&mut self) -> bool {
        if self.rest().starts_with(b"not") && self.b.get(self.i + 3).is_some_and(|c| is_blank(*c)) {
            self.i += 3;
            self.blank();
            true
        } else {
            false
        }
    }

    fn parse_not(&mut self) -> Result<Expr, SyntaxError> {
        self.enter()?;
        self.blank();
        let mut negate = false;
        while self.not_blank() {
            negate = !negate;
        }
        let child = if self.lit("not(") {
            negate = !negate;
            self.embedded()?
        } else {
            self.parse_check()?
        };
        self.leave();
        Ok(if negate {
            Expr::Not(Box::new(child))
        } else {
            child
        })
    }

    /// After a `(`: an expression and its `)`.
    fn embedded(&mut self) -> Result<Expr, SyntaxError> {
        self.enter()?;
        self.blank();
        let e = self.parse_or()?;
        self.blank();
        if !self.lit(")") {
            return Err(self.err("expected a ')' token"));
        }
        self.leave();
        Ok(e)
    }

    fn transformer(&mut self) -> Option<Transformer> {
        for (s, t) in TRANSFORMERS {
            if self.lit(s) {
                return Some(t);
            }
        }
        None
    }

    fn parse_check(&mut self) -> Result<Expr, SyntaxError> {
        self.enter()?;
        self.blank();
        let start = self.i;
        let e = if self.lit("(") {
            self.embedded()?
        } else if let Some(name) = self.field_name() {
            let left = Operand::Field(self.field_remainder(name)?);
            self.condition(left, start)?
        } else if let Some(t) = self.transformer() {
            self.blank();
            let left = self.transformer_remainder(t)?;
            self.condition(left, start)?
        } else if let Some(name) = self.identifier() {
            Expr::Ident {
                name,
                offset: start,
            }
        } else {
            return Err(self.err("expected a '(' token, a field check, or an identifier"));
        };
        self.leave();
        Ok(e)
    }

    fn field_remainder(&mut self, name: String) -> Result<FieldRef, SyntaxError> {
        let mut arg = None;
        if self.lit("[") {
            let a = match self.quoted() {
                Some(q) => q,
                None => {
                    let start = self.i;
                    let mut j = self.i;
                    while self
                        .b
                        .get(j)
                        .is_some_and(|c| !is_blank(*c) && !b"[]\"'".contains(c))
                    {
                        j += 1;
                    }
                    if j == start {
                        return Err(self.err(
                            "expected a valid field argument: a quoted string or a bare string",
                        ));
                    }
                    self.i = j;
                    self.text(start, j)
                }
            };
            if !self.lit("]") {
                return Err(self.err("expected a ']' token"));
            }
            arg = Some(a);
        }
        Ok(FieldRef { name, arg })
    }

    /// After `name(`: the arguments and the closing `)`.
    fn transformer_remainder(&mut self, t: Transformer) -> Result<Operand, SyntaxError> {
        self.enter()?;
        self.blank();
        let mut args = Vec::new();
        loop {
            args.push(self.transformer_arg()?);
            self.blank();
            if !self.lit(",") {
                break;
            }
        }
        self.blank();
        if !self.lit(")") {
            return Err(self.err("expected a ')' token closing the transformer"));
        }
        self.leave();
        Ok(Operand::Transform { name: t, args })
    }

    fn transformer_arg(&mut self) -> Result<Operand, SyntaxError> {
        self.enter()?;
        self.blank();
        let a = if let Some(n) = self.number() {
            Operand::Value(n)
        } else if let Some(q) = self.quoted() {
            Operand::Value(q)
        } else if self.lit("(") {
            let mut items = Vec::new();
            self.blank();
            if !self.lit(")") {
                loop {
                    self.blank();
                    items.push(self.transformer_arg()?);
                    self.blank();
                    if !self.lit(",") {
                        break;
                    }
                }
                if !self.lit(")") {
                    return Err(self.err("expected ')'"));
                }
            }
            Operand::List(items)
        } else if let Some(t) = self.transformer() {
            self.transformer_remainder(t)?
        } else if let Some(name) = self.field_name() {
            Operand::Field(self.field_remainder(name)?)
        } else {
            return Err(self.err(
                "expected a field transformer argument: field, transformer, quoted string, number, or list",
            ));
        };
        self.leave();
        Ok(a)
    }

    fn op_word(&mut self, s: &str, needs_blank: bool) -> bool {
        let save = self.i;
        if !self.lit(s) {
            return false;
        }
        if needs_blank && !self.blank() {
            self.i = save;
            return false;
        }
        true
    }

    fn condition(&mut self, left: Operand, start: usize) -> Result<Expr, SyntaxError> {
        self.enter()?;
        self.blank();
        let (op, right) = if self.lit("exists") {
            (Op::Exists, Rhs::None)
        } else if let Some(op) = NUM_OPS
            .iter()
            .find_map(|(s, op)| self.op_word(s, false).then_some(*op))
        {
            self.blank();
            let r = match self.transformer_or_val()? {
                Some(o) => Rhs::Operand(o),
                None => match self.number() {
                    Some(n) => Rhs::Value(n),
                    None => return Err(self.err("expected a number or a field transformer")),
                },
            };
            (op, r)
        } else if let Some(op) = STR_OPS
            .iter()
            .find_map(|(s, op, blank)| self.op_word(s, *blank).then_some(*op))
        {
            self.blank();
            let r = match self.transformer_or_val()? {
                Some(o) => Rhs::Operand(o),
                None => match self.quoted().or_else(|| self.bare()) {
                    Some(v) => Rhs::Value(v),
                    None => return Err(self.err("expected a string value")),
                },
            };
            (op, r)
        } else if let Some(op) = LIST_OPS
            .iter()
            .find_map(|(s, op)| self.op_word(s, false).then_some(*op))
        {
            self.blank();
            (op, self.list_value()?)
        } else {
            return Err(self.err(
                "expected a check operator: one of exists, <=, <, >=, >, ==, =, !=, glob, iglob, \
                 contains, icontains, bcontains, startswith, bstartswith, endswith, regex, \
                 intersects, in, pmatch",
            ));
        };
        self.leave();
        Ok(Expr::Check(Box::new(Check {
            left,
            op,
            right,
            span: (start, self.i),
        })))
    }

    fn list_value(&mut self) -> Result<Rhs, SyntaxError> {
        if self.lit("(") {
            self.blank();
            let mut values = Vec::new();
            if let Some(v) = self.quoted().or_else(|| self.bare()) {
                values.push(v);
                self.blank();
                while self.lit(",") {
                    self.blank();
                    match self.quoted().or_else(|| self.bare()) {
                        Some(v) => values.push(v),
                        None => return Err(self.err("expected a string value")),
                    }
                    self.blank();
                }
            }
            if !self.lit(")") {
                return Err(self.err("expected a ')' token"));
            }
            return Ok(Rhs::List(values));
        }
        if let Some(o) = self.transformer_or_val()? {
            return Ok(Rhs::Operand(o));
        }
        match self.identifier() {
            Some(name) => Ok(Rhs::ListName(name)),
            None => Err(self.err("expected a list, an identifier, or a field transformer")),
        }
    }

    fn transformer_or_val(&mut self) -> Result<Option<Operand>, SyntaxError> {
        if self.lit("val(") {
            self.blank();
            let name = match self.field_name() {
                Some(n) => n,
                None => return Err(self.err("expected a field within 'val' transformer")),
            };
            let f = self.field_remainder(name)?;
            self.blank();
            if !self.lit(")") {
                return Err(self.err("expected a ')' token closing the transformer"));
            }
            return Ok(Some(Operand::Transform {
                name: Transformer::Val,
                args: vec![Operand::Field(f)],
            }));
        }
        if let Some(t) = self.transformer() {
            self.blank();
            return self.transformer_remainder(t).map(Some);
        }
        Ok(None)
    }
}

/// Undo the escapes of a quoted string (`\"`, `\'`, `\\`, `\n`, `\t`, ...).
fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut it = raw.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('b') => out.push('\x08'),
            Some('f') => out.push('\x0c'),
            Some(c @ ('\\' | '"' | '\'' | '/')) => out.push(c),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(src: &str) -> Check {
        match parse_condition(src) {
            Ok(Expr::Check(c)) => *c,
            other => panic!("{src}: {other:?}"),
        }
    }

    #[test]
    fn every_operator_parses() {
        for (src, op) in [
            ("a.b = x", Op::Eq),
            ("a.b==x", Op::Eq),
            ("a.b != x", Op::Ne),
            ("a.b < 1", Op::Lt),
            ("a.b <= 1", Op::Le),
            ("a.b > 1", Op::Gt),
            ("a.b >= 0x1f", Op::Ge),
            ("a.b contains x", Op::Contains),
            ("a.b icontains x", Op::IContains),
            ("a.b bcontains 7f454c46", Op::BContains),
            ("a.b startswith /etc", Op::StartsWith),
            ("a.b bstartswith 7f", Op::BStartsWith),
            ("a.b endswith .sh", Op::EndsWith),
            ("a.b glob '/tmp/*'", Op::Glob),
            ("a.b iglob '*.SH'", Op::IGlob),
            ("a.b regex '^a+$'", Op::Regex),
            ("a.b in (x, y)", Op::In),
            ("a.b intersects (x)", Op::Intersects),
            ("a.b pmatch (/etc)", Op::PMatch),
            ("a.b exists", Op::Exists),
        ] {
            assert_eq!(check(src).op, op, "{src}");
        }
    }

    #[test]
    fn values_lists_fields_and_transformers() {
        let c = check(r#"proc.aname[2] in (sh, "a b", 'c\'d', shell_binaries)"#);
        assert_eq!(
            c.left,
            Operand::Field(FieldRef {
                name: "proc.aname".into(),
                arg: Some("2".into())
            })
        );
        assert_eq!(
            c.right,
            Rhs::List(vec![
                "sh".into(),
                "a b".into(),
                "c'd".into(),
                "shell_binaries".into()
            ])
        );
        let c = check("json.value[/userIdentity/type]=\"Root\"");
        assert_eq!(c.left.to_string(), "json.value[/userIdentity/type]");
        let c = check("tolower(proc.name) = bash");
        assert!(matches!(
            c.left,
            Operand::Transform {
                name: Transformer::ToLower,
                ..
            }
        ));
        let c = check("proc.name = val(proc.pname)");
        assert!(matches!(
            c.right,
            Rhs::Operand(Operand::Transform {
                name: Transformer::Val,
                ..
            })
        ));
        // `evt.dir=<` : the bare value `<`.
        assert_eq!(check("evt.dir=<").right, Rhs::Value("<".into()));
        assert_eq!(
            check("proc.name in shell_binaries").right,
            Rhs::ListName("shell_binaries".into())
        );
    }

    #[test]
    fn boolean_structure() {
        let e = parse_condition("a and not (b or c.d exists) and not(e)").unwrap();
        let Expr::And(parts) = e else { panic!("and") };
        assert_eq!(parts.len(), 3);
        assert!(matches!(&parts[1], Expr::Not(inner) if matches!(**inner, Expr::Or(_))));
        assert!(matches!(&parts[2], Expr::Not(_)));
        // `not not x` is x.
        assert!(matches!(
            parse_condition("not not x").unwrap(),
            Expr::Ident { .. }
        ));
    }

    #[test]
    fn errors_name_the_position() {
        let e = parse_condition("proc.name = x and\n  (fd.name = y").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("')'"), "{e}");
        let e = parse_condition("proc.name ~ x").unwrap_err();
        assert_eq!((e.line, e.column), (1, 11));
        assert!(parse_condition("").is_err());
        assert!(parse_condition("a b").is_err());
        assert!(parse_condition(&"(".repeat(500)).is_err());
    }
}
