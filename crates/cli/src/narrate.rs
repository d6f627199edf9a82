//! The optional LLM narrative for `analyze`: one request per cluster (the cache is keyed by
//! fingerprint), run on a small tokio runtime; any failure leaves the deterministic report
//! with a note saying why the narrative is unavailable.

use anyhow::{Context, Result};
use fa_analyze::engine::Emitted;
use fa_llm::{apply, CacheKey, FsCache, LlmArgs, LlmConfig, MemoryCache, NarrativeCache, Narrator};

pub struct Narration {
    rt: tokio::runtime::Runtime,
    narrator: Narrator,
    dry_run: bool,
}

impl Narration {
    /// None without `--llm`: then nothing ever leaves the machine.
    pub fn from_args(args: &LlmArgs) -> Result<Option<Narration>> {
        let Some(cfg) = LlmConfig::from_args(args).context("LLM configuration")? else {
            return Ok(None);
        };
        let dry_run = cfg.dry_run;
        let cache: Box<dyn NarrativeCache> = match cfg.cache_dir.clone().map(FsCache::open) {
            Some(Ok(fs)) => Box::new(fs),
            _ => Box::new(MemoryCache::new()),
        };
        let narrator = Narrator::new(cfg, cache).context("LLM client")?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("tokio runtime")?;
        Ok(Some(Narration {
            rt,
            narrator,
            dry_run,
        }))
    }

    /// Add the narrative to an emitted report (or a note saying why there is none).
    pub fn narrate(&self, e: &mut Emitted) {
        let Some(alert) = &e.alert else {
            e.report
                .notes
                .push("LLM narrative unavailable: the alert was not kept for this report".into());
            return;
        };
        let fp = e
            .report
            .cluster
            .as_ref()
            .map(|c| c.fingerprint.clone())
            .unwrap_or_else(|| fa_analyze::fingerprint::fingerprint(alert).to_string());
        let outcome = self
            .rt
            .block_on(self.narrator.narrate(&CacheKey::new(fp), &e.report, alert));
        if self.dry_run {
            if let Some(req) = &outcome.request_preview {
                eprintln!(
                    "--- LLM request that would be sent (dry run; nothing was sent) ---\n{req}"
                );
            }
        }
        apply(&mut e.report, outcome);
    }

    pub fn stats_line(&self) -> String {
        let s = self.narrator.stats();
        format!(
            "LLM: {} requests, {} cache hits, {} misses, {} failures, {} invalid snippets dropped, {} tokens",
            s.requests, s.cache_hits, s.cache_misses, s.failures, s.dropped_snippets, s.tokens
        )
    }
}
