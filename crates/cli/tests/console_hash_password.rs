//! `falco-analyst hash-password`: reads the password from stdin, prints an Argon2id hash that
//! the console accepts.

use std::io::Write;
use std::process::{Command, Stdio};

fn hash(input: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_falco-analyst"))
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn prints_an_argon2id_hash_of_stdin_that_verifies() {
    let out = hash("correct horse battery staple\n");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let h = String::from_utf8(out.stdout).unwrap();
    let h = h.trim();
    assert!(h.starts_with("$argon2id$"), "{h}");
    // The console accepts it, for this password only.
    let users = fa_server::ui::identity::ConfigUsers::new(&[fa_server::ui::UserConfig {
        name: "alice".into(),
        role: fa_server::ui::Role::Admin,
        password_hash: h.to_string(),
    }])
    .unwrap();
    use fa_server::ui::IdentityProvider as _;
    assert!(users
        .verify_password("alice", "correct horse battery staple")
        .is_ok());
    assert!(users.verify_password("alice", "correct horse").is_err());
}

#[test]
fn refuses_empty_and_short_passwords() {
    let out = hash("");
    assert_eq!(out.status.code(), Some(2));
    let out = hash("short\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("shorter"));
}
