//! `falco-analyst analyze`: inputs -> engine -> sink, with dead letters, progress and an end summary.

use crate::util::{paint, parse_duration, stderr_color};
use anyhow::{Context as _, Result};
use clap::Args;
use fa_analyze::engine::{Analyzer, Engine, EngineConfig, RunStats};
use fa_analyze::rules::RuleBook;
use fa_ingest::{open_input, DeadLetterWriter};
use fa_model::Priority;
use fa_report::Format;
use fa_sinks::{DirSink, ReportSink, StreamSink, ThreadedSink};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{self, IsTerminal};
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Args, Debug)]
pub struct AnalyzeArgs {
    /// Alert files (JSON Lines, JSON arrays, concatenated JSON, Falco plain text; .gz ok); `-` is stdin
    #[arg(value_name = "FILE")]
    pub inputs: Vec<String>,
    /// Report format
    #[arg(long, short = 'f', default_value = "markdown", value_parser = parse_format)]
    pub format: Format,
    /// Write one file per report into DIR (`-` or absent: stdout)
    #[arg(long, short = 'o', value_name = "DIR|-")]
    pub output: Option<String>,
    /// Where rejected lines are kept, byte for byte [default: DIR/dead-letter.jsonl with --output DIR, else ./falco-analyst.dead-letter.jsonl]
    #[arg(long, value_name = "PATH")]
    pub dead_letter: Option<PathBuf>,
    /// Stop at the first rejected line (exit 1)
    #[arg(long)]
    pub strict: bool,
    /// Threads: with 2, framing and parsing run on a thread of their own that also does the
    /// per-alert work (rule, fingerprint, rule checks, signatures and evidence) when the in-order
    /// part (clusters, incidents) is behind; from 3, N-2 workers do it; reports are written on a
    /// thread of their own. The output is the same as with 1 [default: the machine's cores]
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
    /// No progress bar and no end summary
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// One report for the whole input (verdicts, top clusters, incidents, tuning) instead of a report per cluster
    #[arg(long)]
    pub summary: bool,
    /// One report per alert instead of one per cluster of identical alerts
    #[arg(long, conflicts_with = "summary")]
    pub every_alert: bool,
    /// Incident correlation window (e.g. 90s, 10m, 2h)
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub window: chrono::Duration,
    /// Clusters kept in memory; the least recently seen is written out and evicted beyond this
    #[arg(long, default_value_t = 10_000)]
    pub max_clusters: usize,
    /// Extra knowledge-base directories (*.toml), extending or overriding built-in entries
    #[arg(long, value_name = "DIR")]
    pub kb: Vec<PathBuf>,
    /// Falco rules files loaded on top of the built-in upstream rules, in order (repeatable): their
    /// appends, overrides and exceptions change the upstream rules as in Falco; custom rules are checked too
    #[arg(long = "rules", value_name = "FILE")]
    pub rules: Vec<PathBuf>,
    /// Do not write incident reports
    #[arg(long)]
    pub no_incidents: bool,
    #[command(flatten)]
    pub llm: fa_llm::LlmArgs,
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse::<Format>().map_err(|e| e.to_string())
}

struct Counters {
    rejected: u64,
    io_errors: u64,
}

/// A batch run keeps many small heap objects: with transparent huge pages the allocator has the
/// kernel zero 2 MiB at a time for heaps that stay small (BENCHMARKS.md: peak RSS about a third
/// lower without, and less time in page faults). The service keeps the default.
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments only and changes this process's flag.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

pub fn run(args: AnalyzeArgs) -> Result<ExitCode> {
    no_huge_pages();
    let mut inputs = args.inputs.clone();
    if inputs.is_empty() {
        if io::stdin().is_terminal() {
            anyhow::bail!("no input: give alert files, or `-` to read stdin (see --help)");
        }
        inputs.push("-".into());
    }
    let analyzer = Analyzer::load(&args.kb)
        .context("loading the knowledge base")?
        .with_rules(RuleBook::load(&args.rules).context("loading --rules")?);
    let narration = crate::narrate::Narration::from_args(&args.llm)?;
    let cfg = EngineConfig {
        emit_alerts: narration.is_some(),
        window: args.window,
        max_clusters: args.max_clusters,
        every_alert: args.every_alert,
        keep_reports: !args.summary,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(analyzer, cfg);

    let out_dir = args
        .output
        .as_deref()
        .filter(|o| *o != "-")
        .map(PathBuf::from);
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let base: Box<dyn ReportSink + Send> = match &out_dir {
        Some(dir) => Box::new(
            DirSink::create(dir, args.format)
                .with_context(|| format!("creating output directory {}", dir.display()))?,
        ),
        None => Box::new(StreamSink::new(
            io::BufWriter::with_capacity(256 * 1024, io::stdout()),
            args.format,
        )),
    };
    // With threads to spare, reports are rendered and written on a thread of their own.
    let mut sink: Box<dyn ReportSink> = if threads >= 2 {
        Box::new(ThreadedSink::spawn(base).context("starting the report writer")?)
    } else {
        base
    };
    // A path the user named is opened as given; a default one never through a symlink.
    let mut dead = match (&args.dead_letter, &out_dir) {
        (Some(p), _) => DeadLetterWriter::new(p.clone()),
        (None, Some(d)) => DeadLetterWriter::new_no_follow(d.join("dead-letter.jsonl")),
        (None, None) => DeadLetterWriter::new_no_follow("falco-analyst.dead-letter.jsonl"),
    };
    let mut n = Counters {
        rejected: 0,
        io_errors: 0,
    };
    let show_progress = !args.quiet && io::stderr().is_terminal();

    'inputs: for path in &inputs {
        let input = match open_input(path) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("falco-analyst: {e}");
                n.io_errors += 1;
                continue;
            }
        };
        let bar = progress_bar(show_progress, &input);
        let progress = input.progress();
        let mut since_tick = 0u32;
        let stopped = fa_analyze::parallel::run(
            &mut engine,
            input.into_alerts(),
            threads,
            |item| -> ControlFlow<Result<()>> {
                // `?` inside: a failed write stops the run with its error.
                let step = (|| -> Result<ControlFlow<()>> {
                    match item {
                        Ok(emitted) => {
                            for mut e in emitted {
                                if let Some(n) = &narration {
                                    n.narrate(&mut e);
                                }
                                sink.report_owned(e.report).context("writing a report")?;
                            }
                        }
                        Err(rej) => {
                            if rej.is_fatal() {
                                eprintln!("falco-analyst: {rej}");
                                n.io_errors += 1;
                                return Ok(ControlFlow::Continue(()));
                            }
                            eprintln!("{rej}");
                            n.rejected += 1;
                            dead.write(&rej).with_context(|| {
                                format!("writing dead letter to {}", dead.path().display())
                            })?;
                            if args.strict {
                                dead.flush()?;
                                sink.finish()?;
                                eprintln!(
                                    "falco-analyst: stopping at the first rejected line (--strict)"
                                );
                                return Ok(ControlFlow::Break(()));
                            }
                        }
                    }
                    since_tick += 1;
                    if since_tick >= 4096 {
                        since_tick = 0;
                        if let Some(b) = &bar {
                            b.set_position(progress.bytes());
                        }
                    }
                    Ok(ControlFlow::Continue(()))
                })();
                match step {
                    Ok(flow) => flow.map_break(Ok),
                    Err(e) => ControlFlow::Break(Err(e)),
                }
            },
        );
        match stopped {
            Some(Ok(())) => break 'inputs,
            Some(Err(e)) => return Err(e),
            None => {}
        }
        if let Some(b) = bar {
            b.finish_and_clear();
        }
    }
    dead.flush()
        .with_context(|| format!("writing dead letter to {}", dead.path().display()))?;

    let mut finished = engine.finish(n.rejected);
    let incidents = std::mem::take(&mut finished.incidents);
    if args.summary {
        sink.summary(&finished.summary)
            .context("writing the summary")?;
    } else {
        for mut e in finished.reports.into_iter() {
            if let Some(n) = &narration {
                n.narrate(&mut e);
            }
            sink.report_owned(e.report).context("writing a report")?;
        }
        if !args.no_incidents {
            for inc in &incidents {
                sink.incident(inc).context("writing an incident report")?;
            }
        }
    }
    sink.finish().context("writing reports")?;

    if !args.quiet {
        end_summary(
            &finished.stats,
            sink.written(),
            &n,
            incidents.len(),
            finished.summary.clusters,
            &dead,
            out_dir.as_deref(),
        );
        if let Some(nar) = &narration {
            eprintln!("{}", nar.stats_line());
        }
    }
    Ok(if n.io_errors > 0 {
        ExitCode::from(2)
    } else if n.rejected > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn progress_bar(show: bool, input: &fa_ingest::Input) -> Option<ProgressBar> {
    // Only worth it for large regular files.
    let size = input.size.filter(|s| *s > 8 * 1024 * 1024)?;
    if !show {
        return None;
    }
    let bar = ProgressBar::new(size);
    let style = ProgressStyle::with_template(
        "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(input.name.clone());
    Some(bar)
}

fn end_summary(
    stats: &RunStats,
    written: u64,
    n: &Counters,
    incidents: usize,
    clusters: u64,
    dead: &DeadLetterWriter,
    out_dir: Option<&std::path::Path>,
) {
    let c = stderr_color();
    let mut s = String::new();
    s.push_str(&format!(
        "\n{} alerts read, {} reports written{}, {} rejected",
        stats.alerts,
        written,
        out_dir
            .map(|d| format!(" to {}", d.display()))
            .unwrap_or_default(),
        n.rejected
    ));
    if n.rejected > 0 {
        s.push_str(&format!(" (kept in {})", dead.path().display()));
    }
    if n.io_errors > 0 {
        s.push_str(&format!(", {} input error(s)", n.io_errors));
    }
    s.push('\n');
    let v = stats.verdicts;
    s.push_str(&format!(
        "verdicts: {} malicious, {} suspicious, {} benign; {} clusters, {} incidents\n",
        paint(c && v.malicious > 0, "1;31", &v.malicious.to_string()),
        paint(c && v.suspicious > 0, "33", &v.suspicious.to_string()),
        paint(c, "32", &v.benign.to_string()),
        clusters,
        incidents
    ));
    let prios: Vec<String> = Priority::ALL
        .iter()
        .filter_map(|p| stats.by_priority.get(p).map(|k| format!("{p} {k}")))
        .collect();
    if !prios.is_empty() {
        s.push_str(&format!("by priority: {}\n", prios.join(", ")));
    }
    let top = stats.top_rules(5);
    if !top.is_empty() {
        s.push_str("top rules:\n");
        for (rule, k) in top {
            // Rule names come from alerts: strip control characters before they reach a terminal.
            let clean: String = rule.chars().filter(|ch| !ch.is_control()).collect();
            s.push_str(&format!("  {k:>8}  {clean}\n"));
        }
    }
    eprint!("{s}");
}
