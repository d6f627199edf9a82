//! `falco-analyst`: flags in, library calls out. Each subcommand lives in its own module.

mod analyze;
mod check;
mod hash_password;
mod kb;
mod narrate;
mod serve;
mod tune;
mod util;

use clap::{Parser, Subcommand};

// The service allocates per request on several threads; glibc malloc's arena locking and
// consolidation showed up at the top of its profile.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use std::process::ExitCode;

const EXAMPLES: &str = "\
Examples:
  falco-analyst analyze examples/alerts.jsonl
  falco-analyst analyze /var/log/falco/events.json.gz --format json --output reports/
  kubectl logs -n falco ds/falco | falco-analyst analyze - --summary
  falco-analyst tune events.jsonl --min-count 20 > falco_tuning_rules.yaml
  falco-analyst kb show \"Terminal shell in container\"
  falco-analyst check report.md";

#[derive(Parser)]
#[command(name = "falco-analyst", version, about = "Turn Falco alerts into Alert Analysis Reports", after_help = EXAMPLES)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Analyse alerts from files or stdin and write a report per alert cluster
    Analyze(analyze::AnalyzeArgs),
    /// Validate the commands and configurations in Markdown or text reports (exit 1 on findings)
    Check(check::CheckArgs),
    /// Propose Falco exceptions for benign alert clusters
    Tune(tune::TuneArgs),
    /// Run the service: Falco and Falcosidekick post alerts, which are stored, analysed and notified
    Serve(serve::ServeArgs),
    /// Inspect and lint the knowledge base
    Kb {
        #[command(subcommand)]
        cmd: kb::KbCmd,
    },
    /// Hash a console user's password (read from stdin) for `[[ui.users]] password_hash`
    HashPassword(hash_password::HashPasswordArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Analyze(a) => analyze::run(a),
        Cmd::Tune(a) => tune::run(a),
        Cmd::Check(a) => check::run(a),
        Cmd::Kb { cmd } => kb::run(cmd),
        Cmd::Serve(a) => serve::run(a),
        Cmd::HashPassword(a) => hash_password::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("falco-analyst: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    /// Flattened flag groups (`--llm*` in analyze and serve) must not clash with a command's own.
    #[test]
    fn flags_are_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
