//! `serve --db postgres://...` as a user runs it: a database that does not answer is a start-up
//! error that names the database without its password.

use std::process::Command;

#[test]
fn an_unreachable_database_fails_the_start_without_showing_the_password() {
    // Port 1 on loopback: nothing listens, the connection is refused at once.
    let out = Command::new(env!("CARGO_BIN_EXE_falco-analyst"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--insecure-no-auth",
            "--db",
            "postgres://fa:hunter2-pw@127.0.0.1:1/fa?connect_timeout=5",
        ])
        .env_remove("FALCO_ANALYST_DB")
        .env_remove("FALCO_ANALYST_TOKEN")
        .current_dir(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let all = format!("{err}{}", String::from_utf8_lossy(&out.stdout));
    assert!(!all.contains("hunter2"), "{all}");
    assert!(err.contains("postgres://fa:***@127.0.0.1:1/fa"), "{err}");
}
