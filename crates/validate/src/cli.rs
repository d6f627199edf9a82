//! Command-line tables (`data/cli/*.txt`) and the generic checker that walks a command's words
//! against them: sub-commands, flags, flag values and positional arguments.
//!
//! The table format is described in `tools/gen_cli_tables.py`, which generates most tables from
//! the real tools' `--help`.

use crate::finding::Finding;
use crate::shell::Word;
use crate::{docker, shell};
use std::collections::HashMap;
use std::sync::OnceLock;

/// Embedded tables: (checker name reported in findings, table text).
const TABLES: &[(&str, &str)] = &[
    ("docker", include_str!("../data/cli/docker.txt")),
    ("kubectl", include_str!("../data/cli/kubectl.txt")),
    ("aws", include_str!("../data/cli/aws.txt")),
    ("gcloud", include_str!("../data/cli/gcloud.txt")),
    ("gh", include_str!("../data/cli/gh.txt")),
    ("shell", include_str!("../data/cli/unix.txt")),
    ("shell", include_str!("../data/cli/unix_manual.txt")),
];

/// How deep `sudo sudo ...` style nesting is followed.
const MAX_NESTING: usize = 4;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ValueType {
    Any,
    Int,
    Uint,
    Uint16,
    Decimal,
    Duration,
    Bytes,
    Enum(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Arity {
    /// No value (`--rm`); `--rm=false` is accepted.
    Bool,
    /// A value only when written `--flag=value`.
    Optional,
    /// A value from `=value` or the next word unless it starts with `-`.
    OptionalNext,
    /// `=value` or, when the next word is one of the choices, that word.
    OptionalEnum(Vec<String>),
    /// Exactly one value.
    One(ValueType),
    /// One or more values up to the next `--flag` (aws list parameters).
    Many,
    /// Two values (`jq --arg NAME VALUE`).
    Pair,
    /// Values up to and including `;` or `+` (`find -exec ... ;`).
    UntilTerminator,
}

#[derive(Debug, Clone)]
pub(crate) struct Flag {
    pub names: Vec<String>,
    pub arity: Arity,
    pub validator: Option<String>,
}

impl Flag {
    /// `-c (--cpu-shares)` style display of the flag as the user wrote it.
    fn display(&self, written: &str) -> String {
        match self
            .names
            .iter()
            .find(|n| n.starts_with("--") && n.as_str() != written)
        {
            Some(long) if !written.starts_with("--") => format!("{written} ({long})"),
            _ => written.to_string(),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Node {
    pub checker: &'static str,
    pub min: usize,
    pub max: Option<usize>,
    pub stop: Option<usize>,
    pub opaque: bool,
    pub alias: Option<String>,
    pub flags: Vec<Flag>,
    pub inherited: Vec<Flag>,
    pub children: Vec<String>,
    pub single_dash: bool,
    pub numflags: bool,
    pub sigflags: bool,
    pub exec: bool,
    pub prefix: bool,
    pub negatable: bool,
}

#[derive(Debug, Default)]
pub(crate) struct Registry {
    nodes: HashMap<String, Node>,
    /// Node paths in the order the tables define them (children keep this order).
    order: Vec<String>,
    /// Lines that did not parse, as `table:line: text` (a build defect; tests assert none).
    pub errors: Vec<String>,
}

pub(crate) fn registry() -> &'static Registry {
    static REG: OnceLock<Registry> = OnceLock::new();
    REG.get_or_init(|| {
        let mut reg = Registry::default();
        for (checker, text) in TABLES {
            reg.load(checker, text);
        }
        reg.link_children();
        reg
    })
}

fn parse_value_type(s: &str) -> ValueType {
    match s {
        "int" | "int64" | "long" => ValueType::Int,
        "uint" | "uint64" => ValueType::Uint,
        "uint16" => ValueType::Uint16,
        "decimal" | "float" | "float64" => ValueType::Decimal,
        "duration" => ValueType::Duration,
        "bytes" => ValueType::Bytes,
        _ => match s.strip_prefix("enum:") {
            Some(choices) => ValueType::Enum(choices.split('|').map(str::to_string).collect()),
            None => ValueType::Any,
        },
    }
}

fn parse_arity(s: &str) -> Arity {
    match s {
        "bool" => Arity::Bool,
        "opt" => Arity::Optional,
        "optnext" => Arity::OptionalNext,
        "nargs" => Arity::Many,
        "pair" => Arity::Pair,
        "until;" => Arity::UntilTerminator,
        _ => match s.strip_prefix("optenum:") {
            Some(c) => Arity::OptionalEnum(c.split('|').map(str::to_string).collect()),
            None => Arity::One(parse_value_type(s)),
        },
    }
}

impl Registry {
    fn load(&mut self, checker: &'static str, text: &str) {
        let mut current: Option<String> = None;
        for (n, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(def) = line.strip_prefix('@') {
                current = self.load_node(checker, def);
                if current.is_none() {
                    self.errors.push(format!("{checker}:{}: {line}", n + 1));
                }
                continue;
            }
            let Some(path) = &current else {
                self.errors.push(format!(
                    "{checker}:{}: flag outside a command: {line}",
                    n + 1
                ));
                continue;
            };
            let (inherited, spec) = match line.strip_prefix('^') {
                Some(rest) => (true, rest),
                None => (false, line),
            };
            let mut parts = spec.split_whitespace();
            let (Some(names), Some(kind)) = (parts.next(), parts.next()) else {
                self.errors.push(format!("{checker}:{}: {line}", n + 1));
                continue;
            };
            let validator = parts
                .next()
                .and_then(|v| v.strip_prefix('='))
                .map(str::to_string);
            let names: Vec<String> = names.split(',').map(str::to_string).collect();
            if names.iter().any(|n| !n.starts_with('-')) {
                self.errors
                    .push(format!("{checker}:{}: bad flag name: {line}", n + 1));
                continue;
            }
            let flag = Flag {
                names,
                arity: parse_arity(kind),
                validator,
            };
            if let Some(node) = self.nodes.get_mut(path) {
                if inherited {
                    node.inherited.push(flag);
                } else {
                    node.flags.push(flag);
                }
            }
        }
    }

    /// Parses `word word attr=.. [-> path | *]`, creates or extends the node, returns its path.
    fn load_node(&mut self, checker: &'static str, def: &str) -> Option<String> {
        let (def, alias) = match def.split_once("->") {
            Some((d, a)) => (d, Some(a.split_whitespace().collect::<Vec<_>>().join(" "))),
            None => (def, None),
        };
        let mut words = Vec::new();
        let mut node = Node {
            checker,
            ..Node::default()
        };
        let mut has_args = false;
        for tok in def.split_whitespace() {
            if tok == "*" {
                node.opaque = true;
            } else if let Some(v) = tok.strip_prefix("args=") {
                let (lo, hi) = v.split_once("..")?;
                node.min = lo.parse().ok()?;
                node.max = if hi.is_empty() {
                    None
                } else {
                    Some(hi.parse().ok()?)
                };
                has_args = true;
            } else if let Some(v) = tok.strip_prefix("stop=") {
                node.stop = Some(v.parse().ok()?);
            } else if tok == "style=single" {
                node.single_dash = true;
            } else if tok == "numflags=yes" {
                node.numflags = true;
            } else if tok == "sigflags=yes" {
                node.sigflags = true;
            } else if tok == "exec=yes" {
                node.exec = true;
            } else if tok == "prefix=yes" {
                node.prefix = true;
            } else if tok == "negatable=yes" {
                node.negatable = true;
            } else if tok.contains('=') {
                return None;
            } else {
                words.push(tok);
            }
        }
        if words.is_empty() {
            return None;
        }
        if !has_args && alias.is_none() && !node.opaque {
            node.max = None;
        }
        node.alias = alias;
        let path = words.join(" ");
        match self.nodes.get_mut(&path) {
            // A second definition adds flags (see unix_manual.txt) and switches on its markers.
            Some(existing) => {
                existing.single_dash |= node.single_dash;
                existing.numflags |= node.numflags;
                existing.sigflags |= node.sigflags;
                existing.exec |= node.exec;
                existing.prefix |= node.prefix;
                existing.negatable |= node.negatable;
            }
            None => {
                self.nodes.insert(path.clone(), node);
                self.order.push(path.clone());
            }
        }
        Some(path)
    }

    /// Records every node as a child of its parent, once all tables are loaded (an alias may be
    /// defined before its parent group).
    fn link_children(&mut self) {
        for path in &self.order {
            let Some((parent, name)) = path.rsplit_once(' ') else {
                continue;
            };
            if let Some(p) = self.nodes.get_mut(parent) {
                if !p.children.iter().any(|c| c == name) {
                    p.children.push(name.to_string());
                }
            }
        }
    }

    /// The node at `path`, following aliases.
    pub(crate) fn get(&self, path: &str) -> Option<&Node> {
        let mut node = self.nodes.get(path)?;
        for _ in 0..4 {
            match &node.alias {
                Some(target) => node = self.nodes.get(target)?,
                None => return Some(node),
            }
        }
        None
    }

    /// The resolved path of `path` (aliases followed), for building child paths.
    fn resolve_path(&self, path: &str) -> Option<String> {
        let mut p = path.to_string();
        for _ in 0..4 {
            let node = self.nodes.get(&p)?;
            match &node.alias {
                Some(t) => p = t.clone(),
                None => return Some(p),
            }
        }
        None
    }

    pub(crate) fn has_program(&self, name: &str) -> bool {
        self.nodes.contains_key(name)
    }

    fn child_path(&self, path: &str, node: &Node, word: &str) -> Option<String> {
        if node.children.iter().any(|c| c == word) {
            return Some(format!("{path} {word}"));
        }
        if node.prefix && !word.is_empty() {
            if let Some(c) = node.children.iter().find(|c| c.starts_with(word)) {
                return Some(format!("{path} {c}"));
            }
        }
        None
    }

    /// True when `words` start with a program and one of its sub-commands (`docker run`).
    pub(crate) fn is_program_with_subcommand(&self, words: &[&str]) -> bool {
        let (Some(prog), Some(sub)) = (words.first(), words.get(1)) else {
            return false;
        };
        let prog = basename(prog);
        match self.get(prog) {
            Some(node) if !node.children.is_empty() => self.child_path(prog, node, sub).is_some(),
            _ => false,
        }
    }
}

pub(crate) fn basename(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

/// Checks one simple command (program first). Unknown programs yield nothing.
pub(crate) fn check_command(words: &[Word], source: &str, line: usize) -> Vec<Finding> {
    check_nested(registry(), words, source, line, 0)
}

struct Walk<'a> {
    reg: &'a Registry,
    words: &'a [Word],
    source: &'a str,
    line: usize,
    findings: Vec<Finding>,
    checker: &'static str,
}

impl Walk<'_> {
    fn report(&mut self, token: &str, message: String) {
        self.findings
            .push(Finding::new(self.checker, self.source, token, message).at_line(Some(self.line)));
    }
}

fn check_nested(
    reg: &Registry,
    words: &[Word],
    source: &str,
    line: usize,
    depth: usize,
) -> Vec<Finding> {
    let Some(first) = words.first() else {
        return Vec::new();
    };
    if first.dynamic || depth > MAX_NESTING {
        return Vec::new();
    }
    let prog = basename(&first.text);
    let Some(mut path) = reg.resolve_path(prog) else {
        return Vec::new();
    };
    let Some(mut node) = reg.get(&path) else {
        return Vec::new();
    };
    let mut walk = Walk {
        reg,
        words,
        source,
        line,
        findings: Vec::new(),
        checker: node.checker,
    };
    let mut inherited: Vec<&Flag> = node.inherited.iter().collect();
    let mut positionals: Vec<&Word> = Vec::new();
    let mut counted = true;
    let mut i = 1;
    while i < words.len() {
        if node.opaque {
            return walk.findings;
        }
        let w = &words[i];
        let t = w.text.as_str();
        let is_flag = t.starts_with('-') && t.len() > 1 && !w.dynamic;
        if t == "--" {
            // Everything after `--` belongs to the command being run or is a plain operand.
            counted = false;
            break;
        }
        if !is_flag {
            if positionals.is_empty() && !node.children.is_empty() {
                if let Some(child) = reg.child_path(&path, node, t) {
                    let resolved = reg.resolve_path(&child).unwrap_or(child);
                    if let Some(next) = reg.get(&resolved) {
                        path = resolved;
                        node = next;
                        inherited.extend(node.inherited.iter());
                        i += 1;
                        continue;
                    }
                }
                if node.min >= 1 && !w.dynamic && !is_placeholder(t) {
                    let known = node.children.join(", ");
                    walk.report(
                        t,
                        format!(
                            "`{path}` has no sub-command `{t}` (known: {})",
                            shorten(&known)
                        ),
                    );
                    return walk.findings;
                }
            }
            if node.exec {
                let nested = check_nested(reg, &words[i..], source, line, depth + 1);
                walk.findings.extend(nested);
                return walk.findings;
            }
            positionals.push(w);
            i += 1;
            if node.stop == Some(positionals.len()) {
                counted = false;
                break;
            }
            continue;
        }
        let room = node.max.is_none_or(|m| positionals.len() < m) || !node.children.is_empty();
        i = check_flag(&mut walk, node, &inherited, &path, i, room);
    }
    if node.opaque {
        return walk.findings;
    }
    if counted {
        if node.children.is_empty() && positionals.len() < node.min {
            walk.report(
                &path,
                format!(
                    "`{path}` needs at least {} argument(s), got {}",
                    node.min,
                    positionals.len()
                ),
            );
        }
        if let Some(max) = node.max {
            if let Some(extra) = positionals.get(max) {
                let what = if max == 0 {
                    "no arguments".to_string()
                } else {
                    format!("at most {max} argument(s)")
                };
                walk.report(
                    &extra.text,
                    format!(
                        "`{path}` takes {what}; `{}` and what follows do not belong to it",
                        extra.text
                    ),
                );
            }
        }
    }
    walk.findings
}

fn shorten(s: &str) -> String {
    if s.chars().count() > 80 {
        let mut out: String = s.chars().take(80).collect();
        out.push('…');
        out
    } else {
        s.to_string()
    }
}

fn find_flag<'a>(node: &'a Node, inherited: &[&'a Flag], name: &str) -> Option<&'a Flag> {
    node.flags
        .iter()
        .chain(inherited.iter().copied())
        .find(|f| f.names.iter().any(|n| n == name))
}

/// Checks the flag word at `i`; returns the index of the next unread word.
fn check_flag(
    walk: &mut Walk<'_>,
    node: &Node,
    inherited: &[&Flag],
    path: &str,
    i: usize,
    room_for_positional: bool,
) -> usize {
    let words = walk.words;
    let t = words[i].text.as_str();
    if node.numflags || node.sigflags {
        let rest = &t[1..];
        let numeric = rest.chars().all(|c| c.is_ascii_digit());
        let signal = node.sigflags
            && rest
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '+' || c == '-')
            && rest.chars().next().is_some_and(|c| c.is_ascii_uppercase());
        if numeric || signal {
            return i + 1;
        }
    }
    if t.starts_with("--") || node.single_dash {
        let (name, inline) = match t.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (t, None),
        };
        let flag = find_flag(node, inherited, name).or_else(|| {
            // gcloud style --no-FLAG for boolean flags
            let negated = name.strip_prefix("--no-")?;
            let root_negatable = walk
                .reg
                .get(path.split(' ').next().unwrap_or(path))
                .is_some_and(|r| r.negatable);
            if !(node.negatable || root_negatable) {
                return None;
            }
            find_flag(node, inherited, &format!("--{negated}")).filter(|f| f.arity == Arity::Bool)
        });
        return match flag {
            Some(flag) => consume_value(walk, flag, name, inline, i + 1),
            None => unknown_flag(walk, node, inherited, path, name, i, room_for_positional),
        };
    }
    // short option cluster: -it, -p8080:80, -uroot
    let chars: Vec<char> = t[1..].chars().collect();
    let mut k = 0;
    while k < chars.len() {
        let name = format!("-{}", chars[k]);
        match find_flag(node, inherited, &name) {
            None => {
                if chars.len() == 1 {
                    return unknown_flag(
                        walk,
                        node,
                        inherited,
                        path,
                        &name,
                        i,
                        room_for_positional,
                    );
                }
                walk.report(&name, format!("`{path}` has no option `{name}` (in `{t}`)"));
                k += 1;
            }
            Some(flag) => {
                if matches!(flag.arity, Arity::Bool) {
                    k += 1;
                    continue;
                }
                let rest: String = chars[k + 1..].iter().collect();
                let inline = if rest.is_empty() {
                    None
                } else {
                    Some(rest.trim_start_matches('='))
                };
                return consume_value(walk, flag, &name, inline, i + 1);
            }
        }
    }
    i + 1
}

fn unknown_flag(
    walk: &mut Walk<'_>,
    node: &Node,
    inherited: &[&Flag],
    path: &str,
    name: &str,
    i: usize,
    room_for_positional: bool,
) -> usize {
    let hint = match suggest(node, inherited, name) {
        Some(real) => format!("; did you mean `{real}`?"),
        None => String::new(),
    };
    walk.report(name, format!("`{path}` has no option `{name}`{hint}"));
    // Guess whether the invented flag swallowed a value, so the value is not taken for the image
    // or an argument: a quoted phrase, a list, a key=value, or a word followed by more flags.
    let words = walk.words;
    let has_inline = words[i].text.contains('=');
    let Some(next) = words.get(i + 1) else {
        return i + 1;
    };
    if has_inline {
        return i + 1;
    }
    let nt = next.text.as_str();
    let spaced = nt.contains(char::is_whitespace);
    if nt.starts_with('-') && !spaced {
        return i + 1;
    }
    let followed_by_flag = words.get(i + 2).is_some_and(|w| w.text.starts_with('-'));
    if spaced || nt.contains(',') || nt.contains('=') || followed_by_flag || !room_for_positional {
        i + 2
    } else {
        i + 1
    }
}

/// The real long flag an invented one most likely meant: same letters ignoring case and
/// separators (`--securityOpt`), or one edit away for longer names (`--cap-dorp`).
fn suggest(node: &Node, inherited: &[&Flag], name: &str) -> Option<String> {
    if !name.starts_with("--") || name.len() < 5 {
        return None;
    }
    let norm = |s: &str| -> String {
        s.chars()
            .filter(|c| !matches!(c, '-' | '_'))
            .flat_map(char::to_lowercase)
            .collect()
    };
    let wanted = norm(name);
    let mut best: Option<(usize, &str)> = None;
    for flag in node.flags.iter().chain(inherited.iter().copied()) {
        for n in flag.names.iter().filter(|n| n.starts_with("--")) {
            let d = if norm(n) == wanted {
                0
            } else {
                edit_distance(&norm(n), &wanted)
            };
            if (d == 0 || (d == 1 && wanted.len() >= 6))
                && best.is_none_or(|(bd, bn)| (d, n.as_str()) < (bd, bn))
            {
                best = Some((d, n));
            }
        }
    }
    best.map(|(_, n)| n.to_string())
}

/// Optimal-string-alignment distance: insertions, deletions, substitutions and swaps of two
/// neighbouring letters (the usual typo) each cost one.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

fn consume_value(
    walk: &mut Walk<'_>,
    flag: &Flag,
    written: &str,
    inline: Option<&str>,
    next: usize,
) -> usize {
    let words = walk.words;
    let shown = flag.display(written);
    match &flag.arity {
        Arity::Bool => {
            if let Some(v) = inline {
                if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") {
                    walk.report(
                        v,
                        format!(
                            "`{shown}` is a switch; it takes no value other than true or false"
                        ),
                    );
                }
            }
            next
        }
        Arity::Optional => next,
        Arity::OptionalNext => match inline {
            Some(_) => next,
            None => match words.get(next) {
                Some(w) if !w.text.starts_with('-') => next + 1,
                _ => next,
            },
        },
        Arity::OptionalEnum(choices) => match inline {
            Some(v) => {
                if !choices.iter().any(|c| c == v) && !is_placeholder(v) {
                    walk.report(v, format!("`{shown}` takes one of {}", choices.join(", ")));
                }
                next
            }
            None => match words.get(next) {
                Some(w) if choices.contains(&w.text) => next + 1,
                _ => next,
            },
        },
        Arity::One(vt) => {
            let (value, dynamic, after) = match inline {
                Some(v) => (v.to_string(), words[next - 1].dynamic, next),
                None => match words.get(next) {
                    Some(w) => (w.text.clone(), w.dynamic, next + 1),
                    None => {
                        walk.report(written, format!("`{shown}` needs a value"));
                        return next;
                    }
                },
            };
            if !dynamic {
                if let Some(message) = check_value(vt, flag.validator.as_deref(), &shown, &value) {
                    walk.report(&value, message);
                }
            }
            after
        }
        Arity::Many => {
            let mut j = next;
            let mut count = usize::from(inline.is_some());
            while let Some(w) = words.get(j) {
                if w.text.starts_with("--") {
                    break;
                }
                count += 1;
                j += 1;
            }
            if count == 0 {
                walk.report(written, format!("`{shown}` needs at least one value"));
            }
            j
        }
        Arity::Pair => {
            let needed = if inline.is_some() { 1 } else { 2 };
            if words.len() < next + needed {
                walk.report(written, format!("`{shown}` needs two values"));
                return words.len();
            }
            next + needed
        }
        Arity::UntilTerminator => {
            let mut j = next;
            while let Some(w) = words.get(j) {
                j += 1;
                if w.text == ";" || w.text == "+" {
                    return j;
                }
            }
            walk.report(written, format!("`{shown}` must end with `\\;` or `+`"));
            j
        }
    }
}

/// A value the reader fills in: `<container-id>`, `{proc.pid}`, `$PID`.
pub(crate) fn is_placeholder(v: &str) -> bool {
    (v.starts_with('<') && v.ends_with('>'))
        || (v.contains('{') && v.contains('}'))
        || v.contains('$')
}

/// An upper-case word like `PID` or `N` standing for a number.
fn is_caps_placeholder(v: &str) -> bool {
    !v.is_empty()
        && v.chars().any(|c| c.is_ascii_uppercase())
        && v.chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

fn check_value(
    vt: &ValueType,
    validator: Option<&str>,
    shown: &str,
    value: &str,
) -> Option<String> {
    if is_placeholder(value) {
        return None;
    }
    let numeric_placeholder = is_caps_placeholder(value);
    let problem = match vt {
        ValueType::Any => None,
        ValueType::Int => value
            .parse::<i64>()
            .is_err()
            .then(|| format!("`{shown}` takes an integer, not `{value}`")),
        ValueType::Uint => value
            .parse::<u64>()
            .is_err()
            .then(|| format!("`{shown}` takes a non-negative integer, not `{value}`")),
        ValueType::Uint16 => value
            .parse::<u16>()
            .is_err()
            .then(|| format!("`{shown}` takes an integer from 0 to 65535, not `{value}`")),
        ValueType::Decimal => value
            .parse::<f64>()
            .is_err()
            .then(|| format!("`{shown}` takes a number, not `{value}`")),
        ValueType::Duration => (!docker::is_go_duration(value))
            .then(|| format!("`{shown}` takes a duration such as 10s or 1m30s, not `{value}`")),
        ValueType::Bytes => (!docker::is_byte_size(value))
            .then(|| format!("`{shown}` takes a size such as 512m or 1g, not `{value}`")),
        ValueType::Enum(choices) => (!choices.iter().any(|c| c == value)).then(|| {
            format!(
                "`{shown}` takes one of {}, not `{value}`",
                shorten(&choices.join(", "))
            )
        }),
    };
    if problem.is_some() {
        if numeric_placeholder && !matches!(vt, ValueType::Enum(_)) {
            return None;
        }
        return problem;
    }
    let v = validator?;
    docker::check_value(v, value).map(|why| format!("`{shown}` {why}"))
}

/// The program names with a table (for recognising commands in prose).
pub(crate) fn known_program(word: &str) -> bool {
    registry().has_program(basename(word))
}

/// Commands found in a shell script, checked one by one.
pub(crate) fn check_script(src: &str, line_offset: usize) -> Vec<Finding> {
    let script = shell::parse(src);
    let mut findings = Vec::new();
    for e in &script.errors {
        findings.push(
            Finding::new("shell", src, e.token.clone(), e.message.clone())
                .at_line(Some(e.line + line_offset)),
        );
    }
    for cmd in &script.commands {
        let words = shell::program_words(cmd);
        findings.extend(check_command(words, &cmd.source, cmd.line + line_offset));
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(cmd: &str) -> Vec<Finding> {
        check_script(cmd, 0)
    }

    fn tokens(cmd: &str) -> Vec<String> {
        run(cmd).into_iter().map(|f| f.token).collect()
    }

    #[test]
    fn every_table_line_parses() {
        assert!(registry().errors.is_empty(), "{:?}", registry().errors);
    }

    #[test]
    fn tables_cover_the_programs_the_kb_uses() {
        for p in [
            "docker",
            "kubectl",
            "aws",
            "gcloud",
            "gh",
            "chsh",
            "usermod",
            "ip",
            "ss",
            "nc",
            "ncat",
            "crictl",
            "journalctl",
            "systemctl",
            "ps",
            "lsof",
            "ls",
            "cat",
            "grep",
            "find",
            "stat",
            "sha256sum",
            "getent",
            "id",
            "last",
            "who",
            "sudo",
            "runc",
            "setfacl",
            "chmod",
            "chown",
            "apt-get",
            "apk",
            "kill",
            "ausearch",
            "curl",
            "jq",
            "falco",
            "helm",
        ] {
            assert!(registry().has_program(p), "no table for {p}");
        }
    }

    #[test]
    fn invented_docker_flags_are_found() {
        assert_eq!(tokens("docker run --no-pid nginx"), vec!["--no-pid"]);
        assert_eq!(
            tokens("docker run --securityOpt nosuid,noexec nginx"),
            vec!["--securityOpt"]
        );
    }

    #[test]
    fn unknown_flags_get_a_suggestion_when_close() {
        let f = run("docker run --securityOpt no-new-privileges nginx");
        assert!(
            f[0].message.ends_with("did you mean `--security-opt`?"),
            "{}",
            f[0].message
        );
        let f = run("docker run --no-pid nginx");
        assert!(!f[0].message.contains("did you mean"), "{}", f[0].message);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("capdorp", "capdrop"), 1);
        assert!(run("docker run --cap-dorp ALL nginx")[0]
            .message
            .contains("`--cap-drop`"));
    }

    #[test]
    fn short_clusters_and_attached_values() {
        assert!(run("docker run -it -p8080:80 -uroot nginx").is_empty());
        assert_eq!(tokens("docker run -iZ nginx"), vec!["-Z"]);
    }

    #[test]
    fn typed_values_are_checked() {
        let f = run("docker run -c lots nginx");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].token, "lots");
        assert!(f[0].message.contains("--cpu-shares"), "{}", f[0].message);
        assert!(
            run("docker run --pids-limit 100 --memory 512m --stop-timeout 10 nginx").is_empty()
        );
        assert_eq!(tokens("docker run --pids-limit many nginx"), vec!["many"]);
        assert!(
            run("docker run --pids-limit N nginx").is_empty(),
            "placeholder"
        );
    }

    #[test]
    fn container_command_after_image_is_not_docker_flags() {
        assert!(run("docker run --rm alpine ls -la --weird").is_empty());
        assert!(run("docker exec -it web sh -c 'id'").is_empty());
    }

    #[test]
    fn subcommands_are_resolved_and_unknown_ones_reported() {
        assert!(run("kubectl -n prod get pods -o wide").is_empty());
        assert!(run("kubectl auth can-i --list --as system:serviceaccount:a:b").is_empty());
        assert_eq!(
            tokens("kubectl rollout restartt deploy/x"),
            vec!["restartt"]
        );
        assert_eq!(tokens("docker imagez ls"), vec!["imagez"]);
    }

    #[test]
    fn positional_limits() {
        assert_eq!(tokens("chsh root /bin/sh"), vec!["/bin/sh"]);
        assert!(run("chsh -s /usr/sbin/nologin www-data").is_empty());
        assert_eq!(tokens("docker logs"), vec!["docker logs"]);
        assert_eq!(tokens("aws iam list-users extra"), vec!["extra"]);
    }

    #[test]
    fn sudo_checks_the_command_it_runs() {
        let t = tokens("sudo -u root chsh root /bin/sh -c \"ip link del x || true\"");
        assert_eq!(t, vec!["-c", "/bin/sh"]);
        assert!(run("sudo chsh -s /usr/sbin/nologin www-data").is_empty());
    }

    #[test]
    fn aws_gcloud_gh_tables() {
        assert!(run("aws --region us-east-1 iam list-access-keys --user-name bob").is_empty());
        assert!(run("aws cloudtrail lookup-events --lookup-attributes AttributeKey=EventName,AttributeValue=ConsoleLogin --max-results 50").is_empty());
        assert!(
            run("aws ec2 describe-instances --instance-ids i-1 i-2 --region eu-west-1").is_empty()
        );
        assert_eq!(tokens("aws iam list-users --user bob"), vec!["--user"]);
        assert_eq!(tokens("aws iam list-userz"), vec!["list-userz"]);
        assert!(run("gcloud iam service-accounts keys list --iam-account a@b.iam.gserviceaccount.com --project p").is_empty());
        assert!(run("gcloud compute instances list --filter=name:x --format=json").is_empty());
        assert!(run("gh api -X GET repos/o/r/hooks --paginate --jq '.[].id'").is_empty());
        assert!(run("gh secret list -R owner/repo").is_empty());
        assert_eq!(tokens("gh secret list --all"), vec!["--all"]);
    }

    #[test]
    fn single_dash_tools_and_signals() {
        assert!(run("find / -xdev -perm -4000 -type f -exec ls -l {} \\;").is_empty());
        assert_eq!(tokens("find / -nme x"), vec!["-nme"]);
        assert!(run("ip -br a").is_empty());
        assert!(run("ip link del calico_tmp_A").is_empty());
        assert!(run("kill -9 1234; kill -SIGKILL 1; kill -s TERM 2").is_empty());
        assert!(run("last -20").is_empty());
        assert!(run("ausearch -ts recent -m EXECVE -i").is_empty());
    }

    #[test]
    fn unknown_programs_are_not_findings() {
        assert!(run("frobnicate --everything").is_empty());
        assert!(run("$CMD --x").is_empty());
    }
}
