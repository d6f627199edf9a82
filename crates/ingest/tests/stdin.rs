//! `-` reads standard input (gzip detected there too). The test runs itself as a child
//! process with the input piped in, since a test cannot replace its own stdin.

use fa_ingest::open_input;
use std::io::Write;
use std::process::{Command, Stdio};

const CHILD_ENV: &str = "FA_INGEST_STDIN_CHILD";

#[test]
#[ignore = "run by stdin_dash_reads_standard_input as a child process"]
fn child_reads_stdin() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let input = open_input("-").unwrap();
    let (name, gzip) = (input.name.clone(), input.gzip);
    let mut ok = 0;
    let mut bad = Vec::new();
    for r in input.into_alerts() {
        match r {
            Ok(_) => ok += 1,
            Err(r) => bad.push(r.to_string()),
        }
    }
    println!("RESULT name={name} gzip={gzip} ok={ok} bad={bad:?}");
}

fn run_child(stdin_bytes: &[u8]) -> String {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_reads_stdin",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin_bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    // libtest prints `test child_reads_stdin ... ` in front of the test's own output.
    let line = text.lines().find_map(|l| l.find("RESULT").map(|i| &l[i..]));
    line.unwrap_or_default().to_string()
}

#[test]
fn stdin_dash_reads_standard_input() {
    let input = "{\"rule\":\"a\",\"priority\":\"Notice\"}\nnot an alert\n{\"rule\":\"b\",\"priority\":\"Debug\"}\n";
    assert_eq!(
        run_child(input.as_bytes()),
        r#"RESULT name=<stdin> gzip=false ok=2 bad=["<stdin>:2: not a Falco alert line (no `<time>: <Priority>` prefix and no `key=value` fields); expected JSON or `<time>: <Priority> <message>`"]"#
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(input.as_bytes()).unwrap();
    let gz = gz.finish().unwrap();
    assert!(run_child(&gz).starts_with("RESULT name=<stdin> gzip=true ok=2"));
}
