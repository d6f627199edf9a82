//! The optional LLM narrative for the service.
//!
//! Reports are stored deterministic first; the analysis thread then queues each kept report
//! (a cluster's first alert, every alert that is not benign) here, and a tokio task asks the
//! [`Narrator`] for its narrative and rewrites the stored report through the writer. Nothing
//! here can hold up ingest or analysis: the queue is bounded and a full queue drops the
//! narration (counted in `llm_requests_total{outcome="dropped"}`), and any failure leaves the
//! deterministic report with a note. The narrator asks once per cluster (its cache is keyed by
//! the fingerprint) and [`StoreCache`] keeps its answers in the database across restarts.

use crate::metrics::{Metrics, OutcomeLabel};
use crate::pipeline::{NarrationJob, Shared, WriteCmd};
use fa_llm::{
    apply, CacheError, CacheKey, CachedAnswer, NarrativeCache, Narrator, Outcome, Unavailable,
};
use fa_store::{to_nanos, LlmCacheEntry, ReportUpdate, Store};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinSet;

/// Reports waiting for a narrative at most; beyond it narrations are dropped.
pub const QUEUE_CAPACITY: usize = 10_000;

/// Narrations in progress at once. HTTP requests are capped lower by the narrator itself
/// (`--llm-concurrency`); this bounds the reports held while they wait, and so the slots of
/// the writer's queue that narration can take from ingest.
const MAX_IN_FLIGHT: usize = 64;

/// The budget period of a service: `--llm-max-requests` and `--llm-max-tokens` are per day.
pub const BUDGET_PERIOD: Duration = Duration::from_secs(24 * 3600);

/// The narrative cache in the store's `llm_cache` table: read through its own read
/// connection, written through the writer thread (which owns the only writing connection).
pub struct StoreCache {
    reader: Mutex<Box<dyn Store>>,
    writer: mpsc::Sender<WriteCmd>,
}

impl StoreCache {
    pub fn new(reader: Box<dyn Store>, writer: mpsc::Sender<WriteCmd>) -> Self {
        StoreCache {
            reader: Mutex::new(reader),
            writer,
        }
    }

    fn row_key(key: &CacheKey) -> String {
        format!("narrative:{}:{}", key.prompt_version, key.fingerprint)
    }
}

/// The stored value names its key, so a row is never served for another key.
#[derive(Serialize, Deserialize)]
struct Stored {
    key: CacheKey,
    value: CachedAnswer,
}

impl NarrativeCache for StoreCache {
    fn get(&self, key: &CacheKey) -> Option<CachedAnswer> {
        // A point query on the primary key: short enough to run on the async task.
        let found = match self.reader.lock() {
            Ok(s) => s.llm_cache_get(&Self::row_key(key)),
            Err(p) => p.into_inner().llm_cache_get(&Self::row_key(key)),
        };
        let text = match found {
            Ok(t) => t?,
            Err(e) => {
                tracing::warn!(error = %e, "reading the LLM cache; treated as a miss");
                return None;
            }
        };
        let stored: Stored = serde_json::from_str(&text).ok()?;
        (stored.key == *key).then_some(stored.value)
    }

    fn put(&self, key: &CacheKey, value: &CachedAnswer) -> Result<(), CacheError> {
        let text = serde_json::to_string(&Stored {
            key: key.clone(),
            value: value.clone(),
        })
        .map_err(|e| CacheError::Other(e.to_string()))?;
        // Never wait for a busy writer: a lost entry costs one request after a restart (the
        // narrator keeps the answer in memory meanwhile).
        self.writer
            .try_send(WriteCmd::LlmCache(LlmCacheEntry {
                key: Self::row_key(key),
                value: text,
                created_at: to_nanos(chrono::Utc::now()),
            }))
            .map_err(|_| CacheError::Other("the store writer is busy or stopped".into()))
    }
}

/// The metric label of an outcome: `ok`, `cache_hit`, or why there is no narrative.
pub fn outcome_label(o: &Outcome) -> &'static str {
    match &o.result {
        Ok(_) if o.from_cache => "cache_hit",
        Ok(_) => "ok",
        Err(u) => match u {
            Unavailable::DryRun => "dry_run",
            Unavailable::Redaction(_) => "redaction_failed",
            Unavailable::RequestBudget(_) | Unavailable::TokenBudget(_) => "budget_spent",
            Unavailable::CircuitOpen { .. } => "circuit_open",
            Unavailable::Timeout { .. } => "timeout",
            Unavailable::RateLimited { .. } => "rate_limited",
            Unavailable::Server { .. } => "server_error",
            Unavailable::Rejected { .. } => "rejected",
            Unavailable::Transport { .. } => "transport_error",
            Unavailable::Refused(_) => "refused",
            Unavailable::Malformed(_) => "malformed",
            Unavailable::NothingValid { .. } => "invalid",
        },
    }
}

/// Whether the call went to the API (its duration is a request's latency, retries included).
fn reached_the_api(o: &Outcome) -> bool {
    if o.from_cache {
        return false;
    }
    !matches!(
        o.result,
        Err(Unavailable::DryRun
            | Unavailable::Redaction(_)
            | Unavailable::RequestBudget(_)
            | Unavailable::TokenBudget(_)
            | Unavailable::CircuitOpen { .. })
    )
}

/// At most one warning a minute about missing narratives, with how many there were.
struct WarnLimiter {
    start: Instant,
    last: AtomicU64,
    suppressed: AtomicU64,
}

impl WarnLimiter {
    fn new() -> Self {
        WarnLimiter {
            start: Instant::now(),
            last: AtomicU64::new(u64::MAX),
            suppressed: AtomicU64::new(0),
        }
    }

    fn warn(&self, uuid: &str, reason: &Unavailable) {
        let now = self.start.elapsed().as_secs();
        let last = self.last.load(Ordering::Relaxed);
        let due = last == u64::MAX || now >= last.saturating_add(60);
        if due
            && self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let more = self.suppressed.swap(0, Ordering::Relaxed);
            tracing::warn!(uuid, reason = %reason, similar_since_last_warning = more, "LLM narrative unavailable; the report stays deterministic");
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(uuid, reason = %reason, "LLM narrative unavailable");
        }
    }
}

/// The narration task: runs until every sender of `rx` is gone (the analysis thread has
/// stopped) and what was queued is done.
pub async fn run(
    narrator: Arc<Narrator>,
    mut rx: mpsc::Receiver<NarrationJob>,
    writer: mpsc::Sender<WriteCmd>,
    shared: Arc<Shared>,
) {
    let gate = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let warn = Arc::new(WarnLimiter::new());
    let mut tasks = JoinSet::new();
    while let Some(job) = rx.recv().await {
        let Ok(permit) = gate.clone().acquire_owned().await else {
            break;
        };
        let (narrator, writer, shared, warn) = (
            narrator.clone(),
            writer.clone(),
            shared.clone(),
            warn.clone(),
        );
        tasks.spawn(async move {
            narrate_one(&narrator, job, &writer, &shared.metrics, &warn).await;
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
    tracing::debug!("narration stopped");
}

async fn narrate_one(
    narrator: &Narrator,
    job: NarrationJob,
    writer: &mpsc::Sender<WriteCmd>,
    metrics: &Metrics,
    warn: &WarnLimiter,
) {
    let NarrationJob {
        alert_id,
        uuid,
        fingerprint,
        mut report,
        alert,
    } = job;
    let started = Instant::now();
    let outcome = narrator
        .narrate(&CacheKey::new(fingerprint), &report, &alert)
        .await;
    metrics
        .llm_requests
        .get_or_create(&OutcomeLabel {
            outcome: outcome_label(&outcome).into(),
        })
        .inc();
    if reached_the_api(&outcome) {
        metrics.llm_seconds.observe(started.elapsed().as_secs_f64());
    }
    if let Err(u) = &outcome.result {
        warn.warn(&uuid, u);
    }
    // Only the narrative and the notes change: apply() never touches the verdict.
    apply(&mut report, outcome);
    let body = match serde_json::to_string(&report) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(uuid, error = %e, "a narrated report cannot be serialised; the stored one stays");
            return;
        }
    };
    // Waits for room in the writer's queue: this task is not on the ingest path.
    if writer
        .send(WriteCmd::ReportUpdate(ReportUpdate { alert_id, body }))
        .await
        .is_err()
    {
        tracing::debug!(
            uuid,
            "the writer has stopped; the report stays deterministic"
        );
    }
}
