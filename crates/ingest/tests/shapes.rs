//! Each input shape, errors, resynchronisation, gzip and dead letters.

mod common;
use common::*;
use fa_ingest::{
    open_input, parse_body, AlertReader, DeadLetterWriter, Incomplete, IngestError, Input,
};
use fa_model::{InputFormat, Priority};
use serde_json::{json, Value};
use std::io::Write;

fn rules(alerts: &[fa_model::Alert]) -> Vec<&str> {
    alerts.iter().map(|a| a.rule.as_str()).collect()
}

#[test]
fn json_lines_with_blank_lines_crlf_and_bom() {
    let input = format!(
        "\u{feff}{}\r\n\n   \n{}\r\n\t{}",
        alert_line("a", 1),
        alert_line("b", 2),
        alert_line("c", 3)
    );
    let (ok, bad) = read_all(input.as_bytes());
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(rules(&ok), ["a", "b", "c"]);
    assert_eq!(ok[0].output_fields["proc.tty"], json!(1));
    assert_eq!(ok[0].output_fields["k8s.ns.name"], Value::Null);
    assert_eq!(ok[0].output_fields["flag"], json!(true));
}

#[test]
fn pretty_printed_array_is_read_element_by_element() {
    let alerts: Vec<Value> = (0..3)
        .map(|n| serde_json::from_str(&alert_line(&format!("r{n}"), n)).unwrap())
        .collect();
    let pretty = serde_json::to_string_pretty(&alerts).unwrap();
    let (ok, bad) = read_all(pretty.as_bytes());
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(rules(&ok), ["r0", "r1", "r2"]);
    // Compact on one line, and one element per line with trailing commas.
    let compact = serde_json::to_string(&alerts).unwrap();
    assert_eq!(rules(&read_all(compact.as_bytes()).0), ["r0", "r1", "r2"]);
    let per_line = format!(
        "[\n{},\n{},\n{}\n]\n",
        alert_line("x", 1),
        alert_line("y", 2),
        alert_line("z", 3)
    );
    let (ok, bad) = read_all(per_line.as_bytes());
    assert!(bad.is_empty());
    assert_eq!(rules(&ok), ["x", "y", "z"]);
}

#[test]
fn an_array_longer_than_a_segment_on_one_line() {
    // ~2.5 MB on one line: more than the 1 MiB segment, far less than the value cap.
    let items: Vec<String> = (0..8000).map(|n| alert_line("big", n)).collect();
    let line = format!("[{}]\n", items.join(","));
    assert!(line.len() > 1 << 21, "{}", line.len());
    let (ok, bad) = read_all(line.as_bytes());
    assert!(bad.is_empty());
    assert_eq!(ok.len(), 8000);
    assert_eq!(ok[7999].hostname.as_deref(), Some("h7999"));
}

#[test]
fn concatenated_values_on_one_line_and_back_to_back() {
    let one_line = format!(
        "{}{} {}\n",
        alert_line("a", 1),
        alert_line("b", 2),
        alert_line("c", 3)
    );
    let (ok, bad) = read_all(one_line.as_bytes());
    assert!(bad.is_empty());
    assert_eq!(rules(&ok), ["a", "b", "c"]);

    let v: Value = serde_json::from_str(&alert_line("p", 1)).unwrap();
    let pretty = serde_json::to_string_pretty(&v).unwrap();
    let input = format!("{pretty}{pretty}\n{pretty}\n{}\n", alert_line("q", 2));
    let (ok, bad) = read_all(input.as_bytes());
    assert!(bad.is_empty());
    assert_eq!(rules(&ok), ["p", "p", "p", "q"]);
}

#[test]
fn http_output_and_sidekick_bodies() {
    let http = alert_line("Terminal shell in container", 1);
    let (ok, bad) = parse_body(http.as_bytes());
    assert!(bad.is_empty() && ok.len() == 1);

    let sidekick = r#"{
      "uuid": "6b1d2f0e-9c4a-4e8b-b3a1-2f7d5c9e0a14",
      "output": "This is a test from falcosidekick",
      "priority": "Debug",
      "rule": "Test rule",
      "time": "2001-01-01T01:10:00Z",
      "output_fields": {"proc.name": "falcosidekick", "proc.tty": 1234},
      "source": "syscalls",
      "tags": ["test", "example"],
      "hostname": "test-host"
    }"#;
    let (ok, bad) = parse_body(sidekick.as_bytes());
    assert!(bad.is_empty());
    assert_eq!(
        ok[0].uuid.as_deref(),
        Some("6b1d2f0e-9c4a-4e8b-b3a1-2f7d5c9e0a14")
    );
    assert_eq!(ok[0].priority, Some(Priority::Debug));

    // An array body, JSON Lines body and a body with one bad record.
    let array = format!("[{},{}]", alert_line("a", 1), alert_line("b", 2));
    assert_eq!(parse_body(array.as_bytes()).0.len(), 2);
    let jsonl = format!("{}\n{}\n", alert_line("a", 1), alert_line("b", 2));
    assert_eq!(parse_body(jsonl.as_bytes()).0.len(), 2);
    let (ok, bad) = parse_body(br#"[{"rule":"a","priority":"info"}, 7, "x"]"#);
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].priority, Some(Priority::Informational));
    assert_eq!(bad.len(), 2);
    assert!(matches!(
        bad[0].error,
        IngestError::NotAnObject { found: "a number" }
    ));
    assert!(matches!(
        bad[1].error,
        IngestError::NotAnObject { found: "a string" }
    ));
    assert_eq!(bad[0].origin, "<body>");
    assert_eq!(bad[0].raw, b"7");
}

#[test]
fn plain_text_new_style() {
    let line = r#"2026-07-04T20:46:44.180672852+0000: Notice A shell was spawned in a container with an attached terminal | evt_type=execve user=root user_uid=0 user_loginuid=-1 process=sh proc_exepath=/bin/busybox parent=containerd-shim command=sh -lc echo "shell-in-container test" terminal=34816 exe_flags=EXE_WRITABLE|EXE_LOWER_LAYER container_id=16514a12c7ad container_name=lab9-target container_image_repository=alpine container_image_tag=3.20 k8s_pod_name=<NA> k8s_ns_name=<NA>"#;
    let (ok, bad) = read_all(line.as_bytes());
    assert!(bad.is_empty(), "{bad:?}");
    let a = &ok[0];
    assert_eq!(a.format, InputFormat::PlainText);
    assert!(a.rule.is_unknown());
    assert_eq!(a.priority, Some(Priority::Notice));
    assert_eq!(a.output.as_deref(), Some(line));
    assert_eq!(
        a.time.unwrap().timestamp_nanos_opt(),
        Some(1783198004180672852)
    );
    // The same event's JSON form (community-readme-snippets.jsonl line 1) has these fields.
    let f = &a.output_fields;
    assert_eq!(
        f["proc.cmdline"],
        json!("sh -lc echo \"shell-in-container test\"")
    );
    assert_eq!(f["proc.tty"], json!(34816));
    assert_eq!(f["user.loginuid"], json!(-1));
    assert_eq!(f["user.uid"], json!(0));
    assert_eq!(f["proc.exepath"], json!("/bin/busybox"));
    assert_eq!(f["proc.pname"], json!("containerd-shim"));
    assert_eq!(f["evt.arg.flags"], json!("EXE_WRITABLE|EXE_LOWER_LAYER"));
    assert_eq!(f["container.image.tag"], json!("3.20"));
    assert_eq!(f["k8s.pod.name"], Value::Null);
    assert_eq!(f["k8s.ns.name"], Value::Null);
    assert_eq!(a.message(), Some(&line[43..]));
}

#[test]
fn plain_text_old_style_and_time_only() {
    let line = "23:50:54.719348051: Error wreating files in container (user=root user_loginuid=-1 command=sshd -D -e k8s.ns=default k8s.pod=ssssssh-6948f886dc-b9p44 container=027dae4c3693 file=/proc/self/oom_score_adj container_id=027dae4c3693 container_name=k8s_ssssssh_0 image=ehoney/ssh) k8s.ns=default k8s.pod=ssssssh-6948f886dc-b9p44 container=027dae4c3693\n";
    let (ok, bad) = read_all(line.as_bytes());
    assert!(bad.is_empty(), "{bad:?}");
    let a = &ok[0];
    assert_eq!(a.time, None);
    assert_eq!(a.extra["time_text"], json!("23:50:54.719348051"));
    assert_eq!(a.priority, Some(Priority::Error));
    let f = &a.output_fields;
    assert_eq!(f["proc.cmdline"], json!("sshd -D -e"));
    assert_eq!(f["k8s.ns.name"], json!("default"));
    assert_eq!(f["k8s.pod.name"], json!("ssssssh-6948f886dc-b9p44"));
    assert_eq!(f["fd.name"], json!("/proc/self/oom_score_adj"));
    assert_eq!(f["container.image.repository"], json!("ehoney/ssh"));
    // `container=` (Falco's `%container.info`) is the id; `container_id=` says the same.
    assert_eq!(f["container.id"], json!("027dae4c3693"));

    let old = "2024-05-07T18:54:19.341081180+0000: Warning Sensitive file opened for reading by non-trusted program (file=/etc/shadow gparent=runc ggparent=init gggparent=<NA> evt_type=openat user=root process=event-generator parent=containerd-shim command=event-generator run --loop terminal=0 container_id=9656db3bb358 container_name=elastic-package-service-falco-event-generator-1)";
    let a = &read_all(old.as_bytes()).0[0];
    let f = &a.output_fields;
    assert_eq!(f["proc.aname[2]"], json!("runc"));
    assert_eq!(f["proc.aname[3]"], json!("init"));
    assert_eq!(f["proc.aname[4]"], Value::Null);
    assert_eq!(f["proc.cmdline"], json!("event-generator run --loop"));
    assert_eq!(
        f["container.name"],
        json!("elastic-package-service-falco-event-generator-1")
    );
    assert_eq!(a.ancestors(), ["containerd-shim", "runc", "init"]);
}

#[test]
fn every_priority_in_plain_text() {
    for (word, p) in [
        ("Emergency", Priority::Emergency),
        ("ALERT", Priority::Alert),
        ("critical", Priority::Critical),
        ("Error", Priority::Error),
        ("Warning", Priority::Warning),
        ("Notice", Priority::Notice),
        ("Informational", Priority::Informational),
        ("Info", Priority::Informational),
        ("Debug", Priority::Debug),
    ] {
        let line = format!("12:00:00.000000001: {word} something happened");
        assert_eq!(read_all(line.as_bytes()).0[0].priority, Some(p), "{word}");
    }
}

#[test]
fn truncated_line_does_not_swallow_the_next_ones() {
    let good = alert_line("good", 1);
    let cut_in_string = &good[..80];
    let cut_between = r#"{"rule":"x","priority":"Notice","#;
    let input =
        format!("{good}\n{cut_in_string}\n{good}\n{cut_between}\n{good}\n  \n{cut_between}\n");
    let (ok, bad) = read_all(input.as_bytes());
    assert_eq!(ok.len(), 3);
    assert_eq!(bad.len(), 3);
    assert_eq!(bad[0].line, 2);
    assert!(matches!(
        bad[0].error,
        IngestError::Incomplete(Incomplete::LineEndInString)
    ));
    assert_eq!(bad[0].raw, cut_in_string.as_bytes());
    assert_eq!(bad[1].line, 4);
    assert!(matches!(
        bad[1].error,
        IngestError::Incomplete(Incomplete::NewValueStarted { line: 5 })
    ));
    assert_eq!(bad[1].raw, cut_between.as_bytes());
    assert_eq!(bad[2].line, 7);
    assert!(matches!(
        bad[2].error,
        IngestError::Incomplete(Incomplete::EndOfInput)
    ));
    assert_eq!(
        bad[2].to_string(),
        "t:7: incomplete JSON value: the input ends before the value is closed"
    );
}

#[test]
fn truncated_element_in_a_pretty_array_resyncs_on_the_next_element() {
    let input = "[\n  {\"rule\": \"a\", \"priority\": \"Notice\",\n  {\"rule\": \"b\", \"priority\": \"Notice\"}\n]\n";
    let (ok, bad) = read_all(input.as_bytes());
    assert_eq!(rules(&ok), ["b"]);
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].line, 2);
    let unclosed = "[\n{\"rule\": \"a\", \"priority\": \"Notice\"}\n";
    let (ok, bad) = read_all(unclosed.as_bytes());
    assert_eq!(ok.len(), 1);
    assert!(matches!(
        bad[0].error,
        IngestError::Incomplete(Incomplete::UnclosedArray)
    ));
    assert_eq!((bad[0].line, bad[0].raw.len()), (1, 0));
    // Text after a cut-off array is read as text again, not as array elements.
    let then_text = "[
  {\"rule\": \"a\", \"priority\": \"Notice\"},
12:00:00.1: Warning x (user=root)\n";
    let (ok, bad) = read_all(then_text.as_bytes());
    assert_eq!(ok.len(), 2);
    assert_eq!(ok[1].field("user.name").as_deref(), Some("root"));
    assert_eq!(bad.len(), 1);
    assert!(matches!(
        bad[0].error,
        IngestError::Incomplete(Incomplete::UnclosedArray)
    ));
}

#[test]
fn errors_name_the_problem_and_the_line() {
    let input = [
        r#"{"rule":"r","priority":"Loud"}"#,
        r#"{"priority":"Warning"}"#,
        r#"{"rule": "r", "priority": "Notice", "output_fields": {"a": 1,}}"#,
        "a stray line",
        r#"{"rule":"r","priority":"Notice"} tail"#,
        r#"{"rule":"r","priority":"Notice","output_fields":[1]}"#,
    ]
    .join("\n");
    let (ok, bad) = read_all(input.as_bytes());
    // The value before ` tail` is itself a good alert, but a line with junk after a value is
    // one broken record: all of it goes to the dead letters, once.
    assert_eq!(ok.len(), 0);
    let shown: Vec<String> = bad.iter().map(|r| r.to_string()).collect();
    assert!(
        shown[0].starts_with("t:1: field `priority`: unknown priority `Loud`"),
        "{}",
        shown[0]
    );
    assert_eq!(shown[1], "t:2: missing required field `rule`");
    assert_eq!(
        shown[2],
        "t:3: invalid JSON at line 3, column 62: trailing comma"
    );
    assert!(
        shown[3].starts_with("t:4: not a Falco alert line"),
        "{}",
        shown[3]
    );
    assert_eq!(
        shown[4],
        "t:5: unexpected 't' after a JSON value at column 34"
    );
    assert_eq!(bad[4].raw, br#"{"rule":"r","priority":"Notice"} tail"#);
    assert!(
        shown[5].starts_with("t:6: field `output_fields`: expected an object"),
        "{}",
        shown[5]
    );
}

#[test]
fn json_error_positions_are_absolute_for_multi_line_values() {
    let input = "{\"rule\":\"ok\",\"priority\":\"Notice\"}\n{\n  \"rule\": \"r\",\n  \"priority\": \"Notice\" \"oops\": 1\n}\n";
    let (_, bad) = read_all(input.as_bytes());
    match &bad[0].error {
        IngestError::JsonSyntax { line, column, .. } => assert_eq!((*line, *column), (4, 24)),
        other => panic!("{other}"),
    }
    assert_eq!(bad[0].line, 2);
    // A value that starts mid-line reports columns of the line, not of the value.
    let (_, bad) = read_all(br#"{"rule":"a","priority":"Notice"}  {"rule" 1}"#);
    match &bad[0].error {
        IngestError::JsonSyntax { column, .. } => assert_eq!(*column, 43),
        other => panic!("{other}"),
    }
}

#[test]
fn invalid_utf8_is_reported() {
    let mut input = br#"{"rule":"r","priority":"Notice","output":"caf"#.to_vec();
    input.extend_from_slice(&[0xE9, b'"', b'}', b'\n']);
    input.extend_from_slice(b"12:00:00: Warning caf\xE9\n");
    let (_, bad) = read_all(&input);
    assert!(
        matches!(bad[0].error, IngestError::InvalidUtf8 { offset: 45 }),
        "{}",
        bad[0].error
    );
    assert!(
        matches!(bad[1].error, IngestError::InvalidUtf8 { offset: 21 }),
        "{}",
        bad[1].error
    );
}

#[test]
fn values_over_the_cap_are_rejected_and_reading_goes_on() {
    let big = format!(
        r#"{{"rule":"r","priority":"Notice","output":"{}"}}"#,
        "x".repeat(500)
    );
    let pretty_big = format!("{{\n\"rule\":\"r\",\n\"output\":\"{}\"}}", "y".repeat(500));
    let input = format!(
        "{big}\n{}\n{pretty_big}\n{}\n{}\n",
        alert_line("a", 1),
        "z".repeat(600),
        alert_line("b", 2)
    );
    let reader = AlertReader::new("t", input.as_bytes()).with_max_value_bytes(400);
    let (ok, bad) = split(reader);
    assert_eq!(rules(&ok), ["a", "b"]);
    assert_eq!(bad.len(), 3);
    for r in &bad {
        assert!(
            matches!(r.error, IngestError::TooLarge { limit: 400 }),
            "{r}"
        );
        assert_eq!(r.raw.len(), 400);
    }
    assert_eq!(bad.iter().map(|r| r.line).collect::<Vec<_>>(), [1, 3, 6]);
}

#[test]
fn small_buffers_give_the_same_result() {
    let v: Value = serde_json::from_str(&alert_line("p", 1)).unwrap();
    let input = format!(
        "{}\n[{} ,\n{}]\n{}\n12:00:00: Warning x (user=root)\n{{\"rule\":\"cut\n{}{}\n",
        alert_line("a", 1),
        alert_line("b", 2),
        serde_json::to_string_pretty(&v).unwrap(),
        alert_line("c", 3),
        alert_line("d", 4),
        alert_line("e", 5),
    );
    let (ok, bad) = read_all(input.as_bytes());
    assert_eq!(rules(&ok), ["a", "b", "p", "c", "", "d", "e"]);
    assert_eq!(bad.len(), 1);
    for cap in [1, 2, 3, 7, 64, 200] {
        let (ok2, bad2) = read_all_tiny(input.as_bytes(), cap);
        assert_eq!(ok2, ok, "cap {cap}");
        let lines = |b: &[fa_ingest::Rejected]| {
            b.iter()
                .map(|r| (r.line, r.raw.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(lines(&bad2), lines(&bad), "cap {cap}");
    }
}

#[test]
fn gzip_is_detected_by_content_not_name() {
    let dir = tempfile::tempdir().unwrap();
    let plain = format!("{}\n{}\n", alert_line("a", 1), alert_line("b", 2));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(plain.as_bytes()).unwrap();
    let mut bytes = gz.finish().unwrap();
    // A second gzip member (as `cat a.gz b.gz` makes) is read too.
    let mut gz2 = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz2.write_all(alert_line("c", 3).as_bytes()).unwrap();
    bytes.extend(gz2.finish().unwrap());
    let path = dir.path().join("alerts.log");
    std::fs::write(&path, &bytes).unwrap();

    let input = open_input(path.to_str().unwrap()).unwrap();
    assert!(input.gzip);
    assert_eq!(input.size, Some(bytes.len() as u64));
    let progress = input.progress();
    let (ok, bad) = split(input.into_alerts());
    assert!(bad.is_empty());
    assert_eq!(rules(&ok), ["a", "b", "c"]);
    assert_eq!(progress.bytes(), bytes.len() as u64);

    let plain_path = dir.path().join("alerts.jsonl.gz");
    std::fs::write(&plain_path, &plain).unwrap();
    let input = open_input(plain_path.to_str().unwrap()).unwrap();
    assert!(!input.gzip);
    let mut reader = input.into_alerts();
    assert_eq!(reader.origin(), plain_path.to_str().unwrap());
    assert_eq!(reader.by_ref().count(), 2);
    assert_eq!(reader.bytes_read(), plain.len() as u64);
}

#[test]
fn corrupt_gzip_ends_with_a_fatal_error() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(format!("{}\n", alert_line("a", 1)).repeat(50).as_bytes())
        .unwrap();
    let mut bytes = gz.finish().unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    bytes.truncate(n - 4);
    let input = Input::from_reader("broken.gz", std::io::Cursor::new(bytes)).unwrap();
    let items: Vec<_> = input.into_alerts().collect();
    let last = items.last().unwrap().as_ref().unwrap_err();
    assert!(last.is_fatal(), "{last}");
    assert!(matches!(last.error, IngestError::Io(_)));
}

#[test]
fn open_errors_name_the_path() {
    let e = open_input("/nonexistent/alerts.jsonl").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("cannot open /nonexistent/alerts.jsonl:"),
        "{e}"
    );
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        open_input(dir.path().to_str().unwrap()),
        Err(IngestError::Open { .. })
    ));
}

#[test]
fn dead_letters_are_byte_identical_and_created_lazily() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dead.jsonl");
    let bad_lines = [
        "{\"rule\":\"cut".to_string(),
        "{\"rule\":\"x\",\"priority\":\"Loud\"}\r".to_string(),
        "garbage \u{1b}[31m line\r".to_string(),
        "{\n  \"rule\": \"multi\",\n  \"priority\": 5\n}".to_string(),
    ];
    let input = format!(
        "{}\n{}\n{}\n{}\n{}\n{}\n",
        alert_line("a", 1),
        bad_lines[0],
        bad_lines[1],
        bad_lines[2],
        bad_lines[3],
        alert_line("b", 2)
    );

    let mut dl = DeadLetterWriter::new(&path);
    let clean = format!("{}\n", alert_line("a", 1));
    for r in AlertReader::new("t", clean.as_bytes()) {
        if let Err(r) = r {
            dl.write(&r).unwrap();
        }
    }
    dl.flush().unwrap();
    assert!(!path.exists(), "no rejections, no file");

    let mut good = 0;
    for r in AlertReader::new("t", input.as_bytes()) {
        match r {
            Ok(_) => good += 1,
            Err(r) => assert!(dl.write(&r).unwrap()),
        }
    }
    dl.flush().unwrap();
    assert_eq!(good, 2);
    assert_eq!(dl.count(), 4);
    // Records are kept byte for byte: a CRLF line keeps its `\r`.
    let expected: String = bad_lines.iter().map(|l| format!("{l}\n")).collect();
    assert_eq!(std::fs::read(&path).unwrap(), expected.as_bytes());
    // A rejection without a record (an unclosed array) has nothing to replay.
    let (_, unclosed) = read_all(b"[\n");
    assert!(!dl.write(&unclosed[0]).unwrap());
    assert_eq!(dl.count(), 4);
    // Replaying the dead letters gives the same rejections again.
    let replay = std::fs::read(&path).unwrap();
    assert_eq!(read_all(&replay).1.len(), 4);
}
