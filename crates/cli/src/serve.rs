//! `falco-analyst serve`: configuration file, then `FALCO_ANALYST_*` environment, then flags;
//! everything else is `fa_server`.

use anyhow::{Context as _, Result};
use clap::Args;
use fa_server::{Config, LogFormat};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:2802]
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// SQLite database file, created if missing [default: ./falco-analyst.db]
    #[arg(long, value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Bearer token that senders and API clients must present (at least 16 characters)
    #[arg(
        long,
        value_name = "TOKEN",
        env = "FALCO_ANALYST_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// TOML configuration file (see docs/service.md)
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Run without authentication; only allowed on a loopback address
    #[arg(long)]
    pub insecure_no_auth: bool,
    /// TLS certificate chain (PEM); with --tls-key, serve HTTPS
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM)
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Alerts waiting for analysis at most; beyond it ingest answers 429
    #[arg(long, value_name = "N")]
    pub queue_capacity: Option<usize>,
    /// Log format on stderr
    #[arg(long, value_name = "text|json", value_parser = parse_log_format)]
    pub log_format: Option<LogFormat>,
    /// Extra knowledge-base directories (*.toml)
    #[arg(long, value_name = "DIR")]
    pub kb: Vec<PathBuf>,
    /// The optional LLM narrative: the same flags as analyze (they override `[llm]`).
    #[command(flatten)]
    pub llm: fa_llm::LlmArgs,
}

fn parse_log_format(s: &str) -> Result<LogFormat, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        _ => Err(format!("`{s}`: expected text or json")),
    }
}

pub fn run(args: ServeArgs) -> Result<ExitCode> {
    let mut cfg = match &args.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    cfg.apply_env(|k| std::env::var(k).ok())?;
    if let Some(l) = args.listen {
        cfg.server.listen = l;
    }
    if let Some(d) = args.db {
        cfg.store.path = d;
    }
    if let Some(t) = args.token {
        cfg.auth.token = Some(t);
    }
    if args.insecure_no_auth {
        cfg.server.insecure_no_auth = true;
    }
    if let (Some(c), Some(k)) = (args.tls_cert, args.tls_key) {
        cfg.server.tls_cert = Some(c);
        cfg.server.tls_key = Some(k);
    }
    if let Some(q) = args.queue_capacity {
        cfg.analysis.queue_capacity = q;
    }
    if let Some(f) = args.log_format {
        cfg.log.format = f;
    }
    cfg.analysis.kb_dirs.extend(args.kb);
    cfg.llm = args.llm.or(std::mem::take(&mut cfg.llm));
    cfg.validate()?;
    fa_server::run_blocking(cfg).context("serving")?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    #[test]
    fn takes_the_llm_flags_of_analyze() {
        let cli = Cli::try_parse_from([
            "serve",
            "--listen",
            "127.0.0.1:2802",
            "--llm",
            "ollama:llama3.1:8b",
            "--llm-base-url",
            "http://127.0.0.1:11434",
            "--llm-redaction",
            "strict",
            "--llm-timeout",
            "30",
            "--queue-capacity",
            "10",
        ])
        .unwrap();
        let a = cli.serve;
        assert_eq!(a.llm.llm.as_deref(), Some("ollama:llama3.1:8b"));
        assert_eq!(a.llm.llm_redaction, Some(fa_llm::RedactionLevel::Strict));
        assert_eq!(a.llm.llm_timeout, Some(30.0));
        assert_eq!(a.queue_capacity, Some(10));
    }
}
