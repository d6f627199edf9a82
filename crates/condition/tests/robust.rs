//! No input makes the parser, loader or evaluator panic.

use fa_condition::{compile, compile_condition, parse_condition, MapFields, RuleSet};
use proptest::prelude::*;

const ALPHABET: &[&str] = &[
    "proc.name",
    "fd.name",
    "a",
    "m",
    "(",
    ")",
    " ",
    "and",
    "or",
    "not",
    "=",
    "!=",
    "<",
    ">=",
    "in",
    "pmatch",
    "exists",
    "contains",
    "glob",
    "regex",
    "\"",
    "'",
    ",",
    "[",
    "]",
    "val(",
    "tolower(",
    "b64(",
    "x",
    "1",
    "0x1f",
    "\\",
    "\n",
    "é",
    "shells",
    "intersects",
    ".",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn parser_never_panics(s in "\\PC{0,80}") {
        let _ = parse_condition(&s);
    }

    #[test]
    fn token_soup_never_panics(parts in proptest::collection::vec(0..ALPHABET.len(), 0..40)) {
        let s: String = parts.iter().map(|i| ALPHABET[*i]).collect::<Vec<_>>().join(" ");
        let mut set = RuleSet::new();
        set.add_file("t.yaml", "- list: shells\n  items: [sh]\n- macro: m\n  condition: proc.name = sh\n", false).unwrap();
        if let Ok(c) = compile_condition(&set, &s) {
            let _ = c.evaluate(&MapFields::new([("proc.name", "sh"), ("fd.name", "/etc")]));
        }
    }

    #[test]
    fn loader_never_panics(s in "\\PC{0,200}") {
        let mut set = RuleSet::new();
        if set.add_file("r.yaml", &s, true).is_ok() {
            let _ = compile(&set);
        }
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!("{}a.b = 1{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(parse_condition(&deep).is_err());
    let nots = format!("{}a.b = 1", "not ".repeat(10_000));
    assert!(parse_condition(&nots).is_ok());
}
