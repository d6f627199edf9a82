//! fa-llm: an optional narrative written by a language model on top of the deterministic report.
//!
//! The model is grounded (the prompt carries the knowledge base's facts and the deterministic
//! verdict), fed redacted data (identifying values and secrets become placeholders, mapped back
//! in the answer), cached (one request per cluster fingerprint and prompt version), limited
//! (token bucket, concurrency cap, retries with jittered backoff honouring `Retry-After`, a
//! circuit breaker, a per-run budget) and never trusted: the answer is parsed strictly against
//! a schema with no verdict in it, every command and configuration in it goes through
//! `fa-validate`, and [`apply`] writes only `Report.narrative` and `Report.notes`.
//!
//! Without `--llm` ([`LlmConfig::from_args`] returns `None`) nothing leaves the machine.
//!
//! ```no_run
//! # async fn run(report: &mut fa_model::Report, alert: &fa_model::Alert, args: &fa_llm::LlmArgs)
//! # -> Result<(), fa_llm::LlmError> {
//! use fa_llm::{apply, CacheKey, FsCache, LlmConfig, MemoryCache, NarrativeCache, Narrator};
//! if let Some(cfg) = LlmConfig::from_args(args)? {
//!     let cache: Box<dyn NarrativeCache> = match cfg.cache_dir.clone().map(FsCache::open) {
//!         Some(Ok(fs)) => Box::new(fs),
//!         _ => Box::new(MemoryCache::new()),
//!     };
//!     let narrator = Narrator::new(cfg, cache)?;
//!     let outcome = narrator.narrate(&CacheKey::new("5f1e0c2a9b7d3e41"), report, alert).await;
//!     if let Some(req) = &outcome.request_preview {
//!         println!("{req}");
//!     }
//!     apply(report, outcome);
//! }
//! # Ok(()) }
//! ```

mod answer;
mod args;
mod cache;
mod config;
mod error;
mod limits;
mod narrator;
mod prompt;
pub mod provider;
mod redact;

pub use answer::{Answer, AnswerExample, AnswerMitigation};
pub use args::{LlmArgs, RedactionLevel};
pub use cache::{CacheError, CacheKey, CachedAnswer, FsCache, MemoryCache, NarrativeCache};
pub use config::{default_cache_dir, ApiKey, BreakerPolicy, LlmConfig, ProviderKind, RetryPolicy};
pub use error::LlmError;
pub use narrator::{apply, dry_run_request, LlmStats, Narrator, Outcome, Unavailable};
pub use prompt::{answer_schema, prompt_version, Prompt, PROMPT_REVISION, SYSTEM_PROMPT};
pub use redact::{Placeholders, RedactError, Redacted, Redactor};
