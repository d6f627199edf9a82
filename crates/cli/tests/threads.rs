//! `analyze --threads 2` parses on a thread of its own and prepares alerts on a worker ahead of the
//! in-order analysis: its output must be byte for byte what one thread writes, on every bundled
//! input and in every report mode.

use std::path::PathBuf;
use std::process::Command;

fn run(file: &PathBuf, threads: &str, mode: &[&str]) -> (Vec<u8>, Vec<u8>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_falco-analyst"))
        .arg("analyze")
        .arg(file)
        .args([
            "--format",
            "json",
            "--output",
            "-",
            "--quiet",
            "--threads",
            threads,
        ])
        .arg("--dead-letter")
        .arg(dir.path().join("dead.jsonl"))
        .args(mode)
        .output()
        .expect("falco-analyst runs");
    let dead = std::fs::read(dir.path().join("dead.jsonl")).unwrap_or_default();
    (out.stdout, dead)
}

#[test]
fn two_threads_write_exactly_what_one_writes() {
    let mut files: Vec<PathBuf> = std::fs::read_dir(fa_testdata::alerts_dir())
        .expect("testdata/alerts")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x == "jsonl" || x == "json" || x == "log" || x == "gz")
        })
        .collect();
    files.push(fa_testdata::repo("examples/alerts.jsonl"));
    // Text shapes and rejected lines: the corpus's mixed files.
    for f in [
        "more-kris-nova-runtime-security-ctf.log",
        "atk-falco-example-mitm-sh-installer.log",
    ] {
        files.push(fa_testdata::corpus_dir().join(f));
    }
    files.sort();
    assert!(files.len() > 5, "{files:?}");
    for f in &files {
        for mode in [&[][..], &["--every-alert"][..], &["--summary"][..]] {
            let one = run(f, "1", mode);
            let two = run(f, "2", mode);
            assert!(!one.0.is_empty(), "{}: no output", f.display());
            assert!(one == two, "{} {mode:?}: --threads 2 differs", f.display());
        }
    }
}
