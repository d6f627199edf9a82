//! The real binary on the bundled examples: exit codes, dead letters, output files, escaping.

use std::path::Path;
use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_falco-analyst"))
}

fn examples(name: &str) -> String {
    format!("{}/../../examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn analyze_examples_exits_0_with_reports_and_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .current_dir(dir.path())
        .args(["analyze", &examples("alerts.jsonl")])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = String::from_utf8(out.stdout).unwrap();
    assert!(md.contains("# Alert Analysis Report"), "{md}");
    assert!(md.contains("## Verdict"));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("alerts read") && err.contains("0 rejected") && err.contains("top rules"),
        "{err}"
    );
    // Nothing rejected: no dead-letter file appears.
    assert!(!dir.path().join("falco-analyst.dead-letter.jsonl").exists());
}

#[test]
fn every_input_format_is_read() {
    for f in [
        "alerts-array.json",
        "alerts-concatenated.json",
        "alerts.jsonl.gz",
        "falco-plain.txt",
        "sidekick-webhook.json",
        "http-output.json",
    ] {
        let out = bin()
            .args(["analyze", "--format", "json", "--quiet", &examples(f)])
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{f}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(
            lines
                .iter()
                .any(|v| v["type"] == "alert_report" && v["schema_version"] == 1),
            "{f}: {text}"
        );
    }
}

#[test]
fn bad_lines_are_named_dead_lettered_unchanged_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let dl = dir.path().join("dl.jsonl");
    let out = bin()
        .args([
            "analyze",
            "--quiet",
            "--format",
            "json",
            "--dead-letter",
            dl.to_str().unwrap(),
            &examples("bad-lines.jsonl"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    let named: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("bad-lines.jsonl:"))
        .collect();
    assert!(!named.is_empty(), "{err}");
    let kept = std::fs::read_to_string(&dl).unwrap();
    let input = std::fs::read_to_string(examples("bad-lines.jsonl")).unwrap();
    assert_eq!(
        kept.lines().count(),
        named.len(),
        "one dead letter per message"
    );
    for line in kept.lines() {
        assert!(
            input.lines().any(|l| l == line),
            "dead letter not byte-identical to an input line: {line}"
        );
    }
    // The good lines still produced reports.
    assert!(String::from_utf8(out.stdout).unwrap().lines().count() >= 1);
}

#[test]
fn strict_stops_at_the_first_bad_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .current_dir(dir.path())
        .args([
            "analyze",
            "--strict",
            "--quiet",
            "--format",
            "json",
            &examples("bad-lines.jsonl"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(
        err.lines()
            .filter(|l| l.contains("bad-lines.jsonl:"))
            .count(),
        1,
        "{err}"
    );
}

#[test]
fn missing_input_and_bad_flags_exit_2() {
    let out = bin()
        .args(["analyze", "/nonexistent/alerts.jsonl"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = bin()
        .args(["analyze", "--format", "pdf", &examples("alerts.jsonl")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn output_dir_gets_one_file_per_report_named_by_uuid_or_hash() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .args([
            "analyze",
            "--quiet",
            "--every-alert",
            "--format",
            "html",
            "--output",
            dir.path().to_str().unwrap(),
            &examples("sidekick-webhook.json"),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let uuid = serde_json::from_str::<serde_json::Value>(
        &std::fs::read_to_string(examples("sidekick-webhook.json")).unwrap(),
    )
    .unwrap()["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(Path::new(&dir.path().join(format!("{uuid}.html"))).exists());
}

#[test]
fn hostile_alert_content_is_escaped_in_html_and_terminal_output() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("evil.jsonl");
    std::fs::write(
        &f,
        r#"{"rule":"<script>alert(1)</script>","priority":"Warning","output":"x","output_fields":{"proc.cmdline":"sh -c '\u001b[31mred\u001b[0m' | <img src=x onerror=alert(1)>","proc.name":"sh"}}"#,
    )
    .unwrap();
    let html = bin()
        .args([
            "analyze",
            "--quiet",
            "--format",
            "html",
            f.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let page = String::from_utf8(html.stdout).unwrap();
    assert!(!page.contains("<script>alert(1)"), "raw script in HTML");
    assert!(!page.contains("<img src=x"), "raw img in HTML");
    assert!(
        page.contains("&lt;script&gt;") || page.contains("&lt;script"),
        "escaped form present"
    );
    let md = bin()
        .args(["analyze", f.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        !md.stdout.contains(&0x1b) && !md.stderr.contains(&0x1b),
        "ESC reached the terminal"
    );
}

#[test]
fn check_flags_the_seeds_invented_flags_and_exits_1() {
    let files: Vec<String> = std::fs::read_dir(fa_testdata::prior_art_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .map(|p| p.display().to_string())
        .collect();
    assert_eq!(
        files.len(),
        2,
        "both prior-art reports are in the repository"
    );
    let out = bin().arg("check").args(&files).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    for token in [
        "--no-pid",
        "nonewuid",
        "--securityOpt",
        "--netcat-opt",
        "chsh",
    ] {
        assert!(text.contains(token), "{token} not flagged:\n{text}");
    }
}

#[test]
fn summary_and_tune_run_on_the_examples() {
    let out = bin()
        .args(["analyze", "--summary", "--quiet", &examples("alerts.jsonl")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let md = String::from_utf8(out.stdout).unwrap();
    assert!(
        md.contains("# Alert Storm Summary") && md.contains("## Verdicts"),
        "{md}"
    );
    let out = bin()
        .args(["tune", "--min-count", "1", &examples("alerts.jsonl")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let yaml = String::from_utf8(out.stdout).unwrap();
    assert!(
        fa_validate::check_document(&format!("```yaml\n{yaml}\n```")).is_empty(),
        "{yaml}"
    );
}

#[test]
fn llm_dry_run_prints_the_redacted_request_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = bin()
        .env_remove("OPENAI_API_KEY")
        .env("XDG_CACHE_HOME", dir.path())
        // Port 9 on loopback: if anything were sent, it would fail, not succeed.
        .args([
            "analyze",
            "--format",
            "json",
            "--llm",
            "openai:gpt-4o-mini",
            "--llm-base-url",
            "http://127.0.0.1:9/v1",
            "--llm-dry-run",
            &examples("http-output.json"),
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("dry run; nothing was sent"), "{err}");
    assert!(err.contains("LLM: 0 requests"), "{err}");
    let alert: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(examples("http-output.json")).unwrap())
            .unwrap();
    if let Some(host) = alert["hostname"].as_str() {
        let preview = err.split("nothing was sent").nth(1).unwrap_or("");
        assert!(
            !preview.contains(host),
            "hostname {host} leaked into the request preview"
        );
    }
    let report: serde_json::Value = serde_json::from_str(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert!(
        report["notes"]
            .to_string()
            .contains("LLM narrative unavailable"),
        "{report}"
    );
}

#[test]
fn rules_files_load_on_top_and_a_bad_one_exits_2_naming_file_item_and_position() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("my_rules.yaml");
    std::fs::write(
        &good,
        "- list: falco_privileged_images\n  items: [docker.io/acme/agent]\n  override:\n    items: append\n- rule: Acme custom\n  desc: d\n  condition: proc.name = nc\n  output: o\n  priority: WARNING\n",
    )
    .unwrap();
    let out = bin()
        .args(["analyze", "--quiet", "--rules"])
        .arg(&good)
        .arg(examples("alerts.jsonl"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let bad = dir.path().join("bad_rules.yaml");
    std::fs::write(
        &bad,
        "- macro: fine\n  condition: proc.name = x\n- rule: Broken one\n  desc: d\n  condition: proc.name in (a, b\n  output: o\n  priority: INFO\n",
    )
    .unwrap();
    for cmd in ["analyze", "tune"] {
        let out = bin()
            .args([cmd, "--rules"])
            .arg(&good)
            .arg("--rules")
            .arg(&bad)
            .arg(examples("alerts.jsonl"))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("bad_rules.yaml:3")
                && err.contains("rule `Broken one`")
                && err.contains("column"),
            "{cmd}: {err}"
        );
    }
}

#[test]
fn serve_refuses_to_start_with_a_bad_rules_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad_rules.yaml");
    std::fs::write(&bad, "- rule: Mine\n  condition: and proc.name = x\n").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = bin()
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--db"])
        .arg(dir.path().join("s.db"))
        .arg("--rules")
        .arg(&bad)
        .env("FALCO_ANALYST_TOKEN", "rules-test-token-0123456789")
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad_rules.yaml:1") && err.contains("rule `Mine`"),
        "{err}"
    );
}
