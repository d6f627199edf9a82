//! `falco-analyst hash-password`: an Argon2id hash for a console user (`[[ui.users]]`
//! `password_hash`). The password is read from stdin (first line), never from the command
//! line, where other users of the machine could see it.

use anyhow::{bail, Context, Result};
use clap::Args;
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct HashPasswordArgs {
    /// Refuse passwords shorter than this
    #[arg(long, default_value_t = 12)]
    pub min_length: usize,
}

pub fn run(args: HashPasswordArgs) -> Result<ExitCode> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("Password (input is shown; pipe it in to hide it): ");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("reading the password from stdin")?;
    let password = line.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        bail!(
            "no password on stdin (e.g. `printf '%s' \"$PASSWORD\" | falco-analyst hash-password`)"
        );
    }
    if password.chars().count() < args.min_length {
        bail!(
            "the password is shorter than {} characters (--min-length)",
            args.min_length
        );
    }
    let hash = fa_server::ui::hash_password(password)?;
    println!("{hash}");
    Ok(ExitCode::SUCCESS)
}
