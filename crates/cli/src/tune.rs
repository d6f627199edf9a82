//! `falco-analyst tune`: a Falco rules file of exceptions for benign clusters.

use crate::util::parse_duration;
use anyhow::{Context, Result};
use clap::Args;
use fa_analyze::engine::{Analyzer, Engine, EngineConfig};
use fa_analyze::rules::RuleBook;
use fa_ingest::open_input;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct TuneArgs {
    /// Alert files; `-` is stdin
    #[arg(value_name = "FILE", required = true)]
    pub inputs: Vec<String>,
    /// Only clusters with at least this many alerts get an exception
    #[arg(long, default_value_t = 10)]
    pub min_count: u64,
    /// Write the rules file here instead of stdout
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
    /// Extra knowledge-base directories
    #[arg(long, value_name = "DIR")]
    pub kb: Vec<PathBuf>,
    /// Falco rules files loaded on top of the built-in upstream rules, in order (repeatable): their
    /// appends, overrides and exceptions change the upstream rules as in Falco; custom rules are checked too
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<PathBuf>,
    /// Incident correlation window (affects verdicts of escalating activity)
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub window: chrono::Duration,
    #[arg(long, default_value_t = 100_000)]
    pub max_clusters: usize,
}

pub fn run(args: TuneArgs) -> Result<ExitCode> {
    let analyzer = Analyzer::load(&args.kb)
        .context("loading the knowledge base")?
        .with_rules(RuleBook::load(&args.rules).context("loading --rules")?);
    let cfg = EngineConfig {
        window: args.window,
        max_clusters: args.max_clusters,
        keep_reports: false,
        ..Default::default()
    };
    let mut engine = Engine::new(analyzer.clone(), cfg);
    let mut rejected = 0u64;
    for path in &args.inputs {
        let input = open_input(path)?;
        for item in input.into_alerts() {
            match item {
                Ok(a) => {
                    engine.process(a);
                }
                Err(r) => {
                    eprintln!("{r}");
                    rejected += 1;
                }
            }
        }
    }
    let done = engine.finish(rejected);
    let (yaml, n) = fa_analyze::tune::rules_file(&analyzer, &done.clusters, args.min_count);
    match &args.output {
        Some(p) => std::fs::write(p, &yaml).with_context(|| format!("writing {}", p.display()))?,
        None => std::io::stdout().write_all(yaml.as_bytes())?,
    }
    eprintln!(
        "{} alerts, {} clusters ({} benign); {} exception value(s) proposed for benign clusters with >= {} alerts",
        done.stats.alerts,
        done.summary.clusters,
        done.clusters.iter().filter(|c| c.verdict == fa_model::VerdictKind::Benign).count(),
        n,
        args.min_count
    );
    Ok(if rejected > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
