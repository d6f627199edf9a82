//! `falco-analyst check FILE...`: validate the commands and configurations inside any Markdown
//! or text report (ours or another tool's) and list the findings.

use anyhow::{Context, Result};
use clap::Args;
use std::io::Read;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Markdown or text reports; `-` is stdin
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<String>,
}

pub fn run(args: CheckArgs) -> Result<ExitCode> {
    let mut total = 0usize;
    for path in &args.files {
        let text = if path == "-" {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("reading stdin")?;
            s
        } else {
            let bytes = std::fs::read(path).with_context(|| format!("reading {path}"))?;
            String::from_utf8_lossy(&bytes).into_owned()
        };
        let findings = fa_validate::check_document(&text);
        for f in &findings {
            // Findings quote the document; keep control characters off the terminal.
            let line: String = format!("{path}: {f}")
                .chars()
                .filter(|c| !c.is_control() || *c == '\t')
                .collect();
            println!("{line}");
        }
        total += findings.len();
    }
    eprintln!("{} finding(s) in {} file(s)", total, args.files.len());
    Ok(if total > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
