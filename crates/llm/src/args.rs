//! The command-line flags shared by `analyze` and `serve` (`#[command(flatten)]`), also readable
//! from the `[llm]` table of a configuration file.

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// How much of the alert is replaced by placeholders before it is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum RedactionLevel {
    /// Send the alert as it is (for a model on your own machine).
    Off,
    /// IP addresses, host names, user names, e-mail addresses, container ids, Kubernetes
    /// namespaces and pods, and secrets.
    #[default]
    Standard,
    /// Standard plus container names, images and repositories, and no well-known values kept
    /// (`root`, `kube-system`, loopback addresses).
    Strict,
}

impl RedactionLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            RedactionLevel::Off => "off",
            RedactionLevel::Standard => "standard",
            RedactionLevel::Strict => "strict",
        }
    }
}

/// LLM narrative flags. Every field is optional so that a configuration file can fill what the
/// command line leaves out ([`LlmArgs::or`]); defaults are applied by
/// [`crate::LlmConfig::from_args`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(default, deny_unknown_fields)]
pub struct LlmArgs {
    /// Write a narrative with a language model: `openai:MODEL`, `anthropic:MODEL` or
    /// `ollama:MODEL`. Without it nothing leaves the machine.
    #[arg(long = "llm", value_name = "PROVIDER:MODEL")]
    #[serde(rename = "model")]
    pub llm: Option<String>,

    /// The API endpoint (default: $OPENAI_BASE_URL, $ANTHROPIC_BASE_URL or $OLLAMA_HOST, else
    /// the provider's public API or http://127.0.0.1:11434 for Ollama).
    #[arg(long = "llm-base-url", value_name = "URL")]
    #[serde(rename = "base_url")]
    pub llm_base_url: Option<String>,

    /// Seconds one HTTP request may take before it is abandoned and retried [default: 60].
    #[arg(long = "llm-timeout", value_name = "SECS")]
    #[serde(rename = "timeout")]
    pub llm_timeout: Option<f64>,

    /// What is replaced by placeholders before sending [default: standard].
    #[arg(long = "llm-redaction", value_name = "LEVEL", value_enum)]
    #[serde(rename = "redaction")]
    pub llm_redaction: Option<RedactionLevel>,

    /// Print exactly what would be sent, and send nothing.
    #[arg(long = "llm-dry-run")]
    #[serde(rename = "dry_run")]
    pub llm_dry_run: bool,

    /// Most HTTP requests this run may make, retries included [default: 100].
    #[arg(long = "llm-max-requests", value_name = "N")]
    #[serde(rename = "max_requests")]
    pub llm_max_requests: Option<u64>,

    /// Most tokens (prompt plus answer) this run may use [default: 400000].
    #[arg(long = "llm-max-tokens", value_name = "N")]
    #[serde(rename = "max_tokens")]
    pub llm_max_tokens: Option<u64>,

    /// Most requests in flight at once [default: 4].
    #[arg(long = "llm-concurrency", value_name = "N")]
    #[serde(rename = "concurrency")]
    pub llm_concurrency: Option<usize>,

    /// Most requests started per second, on average [default: 2].
    #[arg(long = "llm-rate", value_name = "PER_SEC")]
    #[serde(rename = "rate")]
    pub llm_rate: Option<f64>,

    /// Directory of the narrative cache [default: $XDG_CACHE_HOME/falco-analyst/llm].
    #[arg(long = "llm-cache", value_name = "DIR")]
    #[serde(rename = "cache")]
    pub llm_cache: Option<PathBuf>,
}

impl LlmArgs {
    /// These arguments, with every unset one taken from `fallback` (a configuration file).
    pub fn or(self, fallback: LlmArgs) -> LlmArgs {
        LlmArgs {
            llm: self.llm.or(fallback.llm),
            llm_base_url: self.llm_base_url.or(fallback.llm_base_url),
            llm_timeout: self.llm_timeout.or(fallback.llm_timeout),
            llm_redaction: self.llm_redaction.or(fallback.llm_redaction),
            llm_dry_run: self.llm_dry_run || fallback.llm_dry_run,
            llm_max_requests: self.llm_max_requests.or(fallback.llm_max_requests),
            llm_max_tokens: self.llm_max_tokens.or(fallback.llm_max_tokens),
            llm_concurrency: self.llm_concurrency.or(fallback.llm_concurrency),
            llm_rate: self.llm_rate.or(fallback.llm_rate),
            llm_cache: self.llm_cache.or(fallback.llm_cache),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        llm: LlmArgs,
        /// A flag of the host command with a name the flattened args must not clash with.
        #[arg(long)]
        timeout: Option<u64>,
    }

    #[test]
    fn flattens_into_a_command_and_parses_every_flag() {
        let cli = Cli::try_parse_from([
            "x",
            "--llm",
            "ollama:llama3.1:8b",
            "--llm-base-url",
            "http://127.0.0.1:11434",
            "--llm-timeout",
            "2.5",
            "--llm-redaction",
            "strict",
            "--llm-dry-run",
            "--llm-max-requests",
            "7",
            "--llm-max-tokens",
            "9000",
            "--llm-concurrency",
            "3",
            "--llm-rate",
            "0.5",
            "--llm-cache",
            "/tmp/c",
            "--timeout",
            "4",
        ])
        .unwrap();
        let a = cli.llm;
        assert_eq!(a.llm.as_deref(), Some("ollama:llama3.1:8b"));
        assert_eq!(a.llm_timeout, Some(2.5));
        assert_eq!(a.llm_redaction, Some(RedactionLevel::Strict));
        assert!(a.llm_dry_run);
        assert_eq!(a.llm_max_requests, Some(7));
        assert_eq!(a.llm_max_tokens, Some(9000));
        assert_eq!(a.llm_concurrency, Some(3));
        assert_eq!(a.llm_rate, Some(0.5));
        assert_eq!(a.llm_cache, Some(PathBuf::from("/tmp/c")));
        assert_eq!(cli.timeout, Some(4));
    }

    #[test]
    fn config_file_fills_what_the_command_line_leaves_out() {
        let file: LlmArgs =
            toml::from_str("model = \"openai:gpt-4o-mini\"\nredaction = \"off\"\nrate = 1.0\n")
                .unwrap();
        let cli = LlmArgs {
            llm_redaction: Some(RedactionLevel::Strict),
            ..Default::default()
        };
        let merged = cli.or(file);
        assert_eq!(merged.llm.as_deref(), Some("openai:gpt-4o-mini"));
        assert_eq!(merged.llm_redaction, Some(RedactionLevel::Strict));
        assert_eq!(merged.llm_rate, Some(1.0));
        assert!(toml::from_str::<LlmArgs>("modle = \"x\"").is_err());
    }
}
