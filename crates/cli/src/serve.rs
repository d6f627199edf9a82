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
    /// SQLite database file, created if missing [default: ./falco-analyst.db], or a
    /// PostgreSQL URL (postgres://USER@HOST/DB) shared by several replicas
    #[arg(long, value_name = "PATH|URL")]
    pub db: Option<String>,
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
    /// Falco rules files loaded on top of the built-in upstream rules, in order (repeatable): their
    /// appends, overrides and exceptions change the upstream rules as in Falco; custom rules are checked too
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<PathBuf>,
    /// NATS server with JetStream (nats://HOST:4222): JetStream becomes the durable queue
    /// (no local journal) and replicas with the same --nats-prefix share the work
    #[arg(long, value_name = "URL", env = "FALCO_ANALYST_NATS_URL")]
    pub nats: Option<String>,
    /// With --nats: consume only, no HTTP listener (alerts arrive through NATS)
    #[arg(long, requires = "nats")]
    pub no_listen: bool,
    /// With --nats: prefix of the subjects, stream, consumers and lease bucket [default: fa]
    #[arg(long, value_name = "NAME", requires = "nats")]
    pub nats_prefix: Option<String>,
    /// With --nats: partitions of the alert subjects, the same on every replica [default: 16]
    #[arg(long, value_name = "N", requires = "nats")]
    pub nats_partitions: Option<u32>,
    /// With --nats: seconds a dead replica keeps its partitions before the others take them
    /// over [default: 6]
    #[arg(long, value_name = "SECS", requires = "nats")]
    pub nats_lease_ttl: Option<u64>,
    /// With --nats: this replica's name in the lease bucket [default: host-pid-random]
    #[arg(long, value_name = "NAME", requires = "nats")]
    pub nats_replica: Option<String>,
    /// With --nats: also consume what Falcosidekick's NATS output publishes on these subjects
    /// (e.g. 'falco.>'), kept by the stream PREFIX_falco
    #[arg(long, value_name = "SUBJECTS", requires = "nats")]
    pub nats_falco_subjects: Option<String>,
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

/// `mi_option_purge_delay` in mimalloc.h (the same in v2 and v3: the enum is part of its ABI).
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

extern "C" {
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    #[cfg(test)]
    fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
}

/// mimalloc hands emptied pages back to the kernel a second after they empty; the service frees and
/// allocates per request all the time, and the page faults that zero those pages again were
/// ~7 % of its CPU at 15,000 alerts/s (3,300-3,800 faults/s; ~580 without purging). So the
/// service keeps them: its RSS stays at its peak (~+15 % at that rate, 214-221 MB against
/// 187-197). `MIMALLOC_PURGE_DELAY` in the environment still decides.
fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: mi_option_set stores an integer option; it is safe to call at any time.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
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
        cfg.store.set_db(&d).context("--db")?;
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
    if let Some(u) = args.nats {
        cfg.nats.url = Some(u);
    }
    if args.no_listen {
        cfg.nats.no_listen = true;
    }
    if let Some(p) = args.nats_prefix {
        cfg.nats.prefix = p;
    }
    if let Some(n) = args.nats_partitions {
        cfg.nats.partitions = n;
    }
    if let Some(t) = args.nats_lease_ttl {
        cfg.nats.lease_ttl = std::time::Duration::from_secs(t);
    }
    if let Some(r) = args.nats_replica {
        cfg.nats.replica = Some(r);
    }
    if let Some(f) = args.nats_falco_subjects {
        cfg.nats.falco_subjects = Some(f);
    }
    cfg.analysis.kb_dirs.extend(args.kb);
    cfg.analysis.rules_files.extend(args.rules);
    cfg.llm = args.llm.or(std::mem::take(&mut cfg.llm));
    cfg.validate()?;
    keep_freed_memory();
    fa_server::run_blocking(cfg).context("serving")?;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    /// The option set is the purge delay: its default in the bundled mimalloc v3 (1000 ms, in
    /// its options.c) before, -1 after.
    #[test]
    fn the_service_keeps_freed_memory() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // SAFETY: reading an integer option.
        let get = || unsafe { super::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        assert_eq!(get(), 1000);
        super::keep_freed_memory();
        assert_eq!(get(), -1);
    }

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
