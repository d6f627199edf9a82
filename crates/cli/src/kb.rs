//! `falco-analyst kb list|show|lint`.

use anyhow::{Context, Result};
use clap::Subcommand;
use fa_analyze::kb::KnowledgeBase;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum KbCmd {
    /// List every entry (rule, source, priority, severity, MITRE)
    List {
        #[arg(long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
        /// Extra knowledge-base directories
        #[arg(long, value_name = "DIR")]
        kb: Vec<PathBuf>,
    },
    /// Show one entry as its report sections would use it
    Show {
        rule: String,
        #[arg(long, value_name = "DIR")]
        kb: Vec<PathBuf>,
    },
    /// Check the built-in knowledge base (and DIR, if given): schema, placeholders, MITRE ids, examples
    Lint { dir: Option<PathBuf> },
}

pub fn run(cmd: KbCmd) -> Result<ExitCode> {
    match cmd {
        KbCmd::List { format, kb } => {
            let kb = KnowledgeBase::load(&kb).context("loading the knowledge base")?;
            if format == "json" {
                let rows: Vec<serde_json::Value> = kb
                    .rules()
                    .iter()
                    .map(|r| {
                        serde_json::json!({
                            "rule": r.entry.name,
                            "source": r.entry.source,
                            "priority": r.priority.as_str(),
                            "severity": r.entry.severity,
                            "rules_file": r.entry.rules_file,
                            "mitre": r.entry.mitre.iter().map(|m| m.technique.clone().unwrap_or_else(|| m.tactic.clone())).collect::<Vec<_>>(),
                            "origin": r.origin,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                println!(
                    "{:<60} {:<15} {:<13} {:>3}  MITRE",
                    "RULE", "SOURCE", "PRIORITY", "SEV"
                );
                for r in kb.rules() {
                    let mitre: Vec<String> = r
                        .entry
                        .mitre
                        .iter()
                        .map(|m| m.technique.clone().unwrap_or_else(|| m.tactic.clone()))
                        .collect();
                    println!(
                        "{:<60} {:<15} {:<13} {:>3}  {}",
                        r.entry.name,
                        r.entry.source,
                        r.priority.as_str(),
                        r.entry.severity,
                        mitre.join(" ")
                    );
                }
                eprintln!("{} entries", kb.len());
            }
            Ok(ExitCode::SUCCESS)
        }
        KbCmd::Show { rule, kb } => {
            let kb = KnowledgeBase::load(&kb).context("loading the knowledge base")?;
            match kb.lookup_str(&rule) {
                Some(r) => {
                    println!("{:#?}", r.entry);
                    Ok(ExitCode::SUCCESS)
                }
                None => {
                    eprintln!(
                        "falco-analyst: no knowledge-base entry for rule `{rule}` (try `kb list`)"
                    );
                    Ok(ExitCode::from(1))
                }
            }
        }
        KbCmd::Lint { dir } => {
            let dirs: Vec<PathBuf> = dir.into_iter().collect();
            let kb = KnowledgeBase::load(&dirs).context("loading the knowledge base")?;
            let findings = fa_analyze::lint::lint(&kb);
            for f in &findings {
                println!("{f}");
            }
            eprintln!("{} entries, {} finding(s)", kb.len(), findings.len());
            Ok(if findings.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
