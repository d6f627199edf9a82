//! Every alert in the real-data corpus (testdata/alerts) and in examples/ parses.

mod common;
use common::*;
use fa_ingest::{open_input, IngestError};
use fa_model::{InputFormat, Priority, Source};
use std::fs;

fn corpus_files() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = fs::read_dir(shared_alerts())
        .expect("testdata/alerts is in the repository")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_real_alert_line_parses() {
    let files = corpus_files();
    assert!(files.len() >= 4, "{files:?}");
    for path in files {
        let bytes = fs::read(&path).unwrap();
        let lines = bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .count();
        let (alerts, rejected) = read_all(&bytes);
        // All lines in the corpus are well-formed Falco / Falcosidekick alerts, so nothing may be
        // rejected. (Were a line ever added that is genuinely malformed, it would be listed here
        // with the reason.)
        assert!(
            rejected.is_empty(),
            "{}: {:?}",
            path.display(),
            rejected.iter().map(|r| r.to_string()).collect::<Vec<_>>()
        );
        assert_eq!(alerts.len(), lines, "{}", path.display());
        for a in &alerts {
            assert!(!a.rule.is_unknown());
            assert!(a.priority.is_some());
            assert_eq!(a.format, InputFormat::Json);
        }
        // The same through a small buffer (lines cross chunk boundaries) gives the same alerts.
        let (again, _) = read_all_tiny(&bytes, 61);
        assert_eq!(again, alerts, "{}", path.display());
    }
}

#[test]
fn real_alert_quirks_are_kept() {
    let read = |name: &str| read_all(&fs::read(shared_alerts().join(name)).unwrap()).0;

    let community = read("community-readme-snippets.jsonl");
    // The 2022 honeypot line: old Falco, no source/tags/hostname, space before "output_fields".
    let honeypot = &community[3];
    assert_eq!(honeypot.source, None);
    assert!(honeypot.tags.is_empty());
    assert_eq!(honeypot.hostname, None);
    assert_eq!(
        honeypot.field("k8s.pod.name").as_deref(),
        Some("ssssssh-6948f886dc-b9p44")
    );
    // Newer ` | ` output with nulls kept as sent.
    assert_eq!(
        community[0].output_fields["k8s.ns.name"],
        serde_json::Value::Null
    );
    assert_eq!(
        community[0].output_fields["proc.tty"],
        serde_json::json!(34816)
    );

    let sidekick = read("falcosidekick-test-payloads.jsonl");
    // Falco internal alert: no source, string counters.
    assert_eq!(
        sidekick[0].rule.as_str(),
        "Falco internal: syscall event drop"
    );
    assert_eq!(sidekick[0].source, None);
    assert_eq!(sidekick[0].priority, Some(Priority::Debug));
    // Falcosidekick's plural `syscalls`.
    assert_eq!(sidekick[1].source, Some(Source::Syscall));

    let elastic = read("elastic-falco-pipeline-test.jsonl");
    assert_eq!(elastic[1].priority, Some(Priority::Informational));
    assert!(elastic[4].tags.is_empty());
    assert_eq!(
        elastic[9].output_fields["k8s.pod.labels"],
        serde_json::json!(["key1:value1", "key2:value2", "key3:value3"])
    );
}

#[test]
fn example_files_parse_as_documented() {
    let count = |name: &str| {
        let input = open_input(&format!("{EXAMPLES}/{name}")).unwrap();
        let (ok, bad) = split(input.into_alerts());
        (ok, bad)
    };
    let (jsonl, bad) = count("alerts.jsonl");
    assert!(bad.is_empty() && jsonl.len() >= 12, "{}", jsonl.len());
    let sources: std::collections::BTreeSet<_> =
        jsonl.iter().filter_map(|a| a.source.clone()).collect();
    for s in [
        Source::Syscall,
        Source::K8sAudit,
        Source::AwsCloudtrail,
        Source::Okta,
        Source::Github,
    ] {
        assert!(sources.contains(&s), "{s}");
    }
    assert!(sources.iter().any(|s| matches!(s, Source::Other(_))));

    let (gz, bad) = count("alerts.jsonl.gz");
    assert!(bad.is_empty());
    assert_eq!(gz, jsonl);

    let (array, bad) = count("alerts-array.json");
    assert!(bad.is_empty());
    assert_eq!(array[..], jsonl[..array.len()]);

    let (conc, bad) = count("alerts-concatenated.json");
    assert!(bad.is_empty());
    assert_eq!(conc[..], jsonl[7..7 + conc.len()]);
    assert_eq!(conc.len(), 5);

    let (sk, bad) = count("sidekick-webhook.json");
    assert!(bad.is_empty() && sk.len() == 1);
    assert!(sk[0].uuid.is_some());

    let (http, bad) = count("http-output.json");
    assert!(bad.is_empty() && http.len() == 1);

    let (plain, bad) = count("falco-plain.txt");
    assert!(
        bad.is_empty(),
        "{:?}",
        bad.iter().map(|r| r.to_string()).collect::<Vec<_>>()
    );
    assert_eq!(plain.len(), 5);
    assert!(plain
        .iter()
        .all(|a| a.format == InputFormat::PlainText && a.rule.is_unknown()));

    let (good, bad) = count("bad-lines.jsonl");
    assert_eq!(good.len(), 4);
    let lines: Vec<u64> = bad.iter().map(|r| r.line).collect();
    assert_eq!(lines, vec![2, 4, 5, 6, 7, 9, 10]);
    assert!(matches!(bad[0].error, IngestError::Incomplete(_)));
    assert!(matches!(bad[1].error, IngestError::Alert(_)));
    assert!(matches!(bad[3].error, IngestError::UnrecognisedLine(_)));
    assert!(matches!(bad[6].error, IngestError::JsonSyntax { .. }));
}
