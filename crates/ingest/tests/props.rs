//! Property tests: no input makes the reader panic, rejected records are always the input's
//! own bytes, and valid alerts survive every shape and a truncated neighbour.

mod common;
use common::*;
use fa_ingest::{parse_body, AlertReader};
use fa_model::Alert;
use proptest::prelude::*;
use serde_json::{json, Map, Value};

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

fn check_invariants(input: &[u8]) {
    let (ok, bad) = read_all(input);
    let lines = input.iter().filter(|b| **b == b'\n').count() as u64 + 1;
    for r in &bad {
        assert!(contains(input, &r.raw), "raw not from the input: {r}");
        assert!(r.line >= 1 && r.line <= lines, "line {} of {lines}", r.line);
        let _ = r.to_string();
    }
    // The read buffer's size never changes the result.
    let (ok2, bad2) = read_all_tiny(input, 3);
    assert_eq!(ok, ok2);
    let key = |b: &[fa_ingest::Rejected]| {
        b.iter()
            .map(|r| (r.line, r.raw.clone()))
            .collect::<Vec<_>>()
    };
    assert_eq!(key(&bad), key(&bad2));
    // A small cap exercises the too-large paths on every input.
    for r in AlertReader::new("t", input).with_max_value_bytes(16) {
        if let Err(r) = r {
            assert!(r.raw.len() <= 16, "{} bytes kept over the cap", r.raw.len());
        }
    }
    let (body_ok, body_bad) = parse_body(input);
    assert_eq!(body_ok.len() + body_bad.len(), ok.len() + bad.len());
}

/// Bytes that are mostly JSON punctuation, so the framer's states are all visited.
fn jsonish() -> impl Strategy<Value = Vec<u8>> {
    let atom = prop_oneof![
        Just(b"{".to_vec()),
        Just(b"}".to_vec()),
        Just(b"[".to_vec()),
        Just(b"]".to_vec()),
        Just(b"\"".to_vec()),
        Just(b"\\".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b" ".to_vec()),
        Just(b",".to_vec()),
        Just(b":".to_vec()),
        Just(b"\"rule\":\"r\",\"priority\":\"Notice\"".to_vec()),
        Just(b"12:00:00.5: Warning x (user=root command=a b)".to_vec()),
        Just(b"2024-05-07T18:54:19.341081180+0000: Error y | k=v".to_vec()),
        Just(vec![0xEF, 0xBB, 0xBF]),
        Just(vec![0xff]),
        any::<u8>().prop_map(|b| vec![b]),
    ];
    prop::collection::vec(atom, 0..60).prop_map(|v| v.concat())
}

fn field_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<String>().prop_map(Value::String),
        any::<i64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
        Just(json!("<NA>")),
        prop::collection::vec("[a-z:=0-9]{0,8}", 0..3).prop_map(|v| json!(v)),
    ]
}

fn alert_value() -> impl Strategy<Value = Value> {
    let prio = prop::sample::select(vec![
        "Emergency",
        "Alert",
        "Critical",
        "Error",
        "Warning",
        "Notice",
        "Informational",
        "Debug",
        "info",
        "WARNING",
    ]);
    (
        "[A-Za-z :/]{1,24}",
        prio,
        any::<String>(),
        prop::collection::btree_map("[a-z.\\[\\]0-9_]{1,16}", field_value(), 0..6),
        prop::option::of("[a-z0-9-]{1,12}"),
        prop::collection::vec("[A-Za-z0-9_.]{1,10}", 0..4),
        prop::option::of(prop::sample::select(vec![
            "syscall",
            "k8s_audit",
            "okta",
            "my_plugin",
        ])),
    )
        .prop_map(|(rule, prio, output, fields, host, tags, source)| {
            let mut m = Map::new();
            m.insert("rule".into(), json!(rule));
            m.insert("priority".into(), json!(prio));
            m.insert("output".into(), json!(output));
            m.insert(
                "output_fields".into(),
                Value::Object(fields.into_iter().collect()),
            );
            m.insert("time".into(), json!("2024-05-07T18:54:19.341081180Z"));
            m.insert("tags".into(), json!(tags));
            if let Some(h) = host {
                m.insert("hostname".into(), json!(h));
            }
            if let Some(s) = source {
                m.insert("source".into(), json!(s));
            }
            Value::Object(m)
        })
}

/// Lay out values in one of the shapes Falco, jq, Falcosidekick or people produce.
fn render(values: &[Value], shape: u8) -> String {
    let compact: Vec<String> = values.iter().map(|v| v.to_string()).collect();
    let pretty: Vec<String> = values
        .iter()
        .map(|v| serde_json::to_string_pretty(v).unwrap())
        .collect();
    match shape % 5 {
        0 => compact.iter().map(|l| format!("{l}\n")).collect(),
        1 => format!("[{}]", compact.join(",")),
        2 => serde_json::to_string_pretty(&Value::Array(values.to_vec())).unwrap(),
        3 => compact.concat(),
        _ => pretty.join("\n"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..600)) {
        check_invariants(&input);
    }

    #[test]
    fn jsonish_bytes_never_panic(input in jsonish()) {
        check_invariants(&input);
    }

    #[test]
    fn valid_alerts_round_trip_in_every_shape(values in prop::collection::vec(alert_value(), 1..5), shape in 0u8..5) {
        let expected: Vec<Alert> = values.iter().map(|v| Alert::from_value(v.clone()).unwrap()).collect();
        let text = render(&values, shape);
        let (ok, bad) = read_all(text.as_bytes());
        prop_assert!(bad.is_empty(), "{:?}", bad.iter().map(|r| r.to_string()).collect::<Vec<_>>());
        prop_assert_eq!(&ok, &expected);
        prop_assert_eq!(parse_body(text.as_bytes()).0, expected);
    }

    #[test]
    fn a_truncated_line_loses_only_itself(values in prop::collection::vec(alert_value(), 2..6), pick in any::<prop::sample::Index>(), cut in any::<prop::sample::Index>()) {
        let lines: Vec<String> = values.iter().map(|v| v.to_string()).collect();
        let k = pick.index(lines.len());
        let mut cut_at = cut.index(lines[k].len());
        while !lines[k].is_char_boundary(cut_at) { cut_at -= 1; }
        let mut input = String::new();
        for (i, l) in lines.iter().enumerate() {
            input.push_str(if i == k { &l[..cut_at] } else { l });
            input.push('\n');
        }
        let expected: Vec<Alert> = values.iter().enumerate().filter(|(i, _)| *i != k)
            .map(|(_, v)| Alert::from_value(v.clone()).unwrap()).collect();
        let (ok, bad) = read_all(input.as_bytes());
        prop_assert_eq!(ok, expected);
        prop_assert!(bad.len() <= 1);
        if let Some(r) = bad.first() {
            prop_assert_eq!(r.line, k as u64 + 1);
            // The dead letter is the line's bytes exactly, trailing whitespace included.
            prop_assert_eq!(&r.raw[..], &lines[k].as_bytes()[..cut_at]);
        }
    }

    #[test]
    fn mutated_alerts_never_panic(values in prop::collection::vec(alert_value(), 1..4), shape in 0u8..5,
                                  edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..6)) {
        let mut bytes = render(&values, shape).into_bytes();
        for (at, byte, op) in edits {
            if bytes.is_empty() { break; }
            let i = at.index(bytes.len());
            match op {
                0 => bytes[i] = byte,
                1 => { bytes.remove(i); }
                _ => bytes.insert(i, byte),
            }
        }
        check_invariants(&bytes);
    }
}
