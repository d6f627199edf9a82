//! The narrator: one request per cluster (cache, in-flight de-duplication), within the run's
//! budget, rate and concurrency, with retries and a circuit breaker; and `apply`, the only
//! place model output touches a report.

use crate::answer::{self, Answer};
use crate::cache::{CacheKey, CachedAnswer, NarrativeCache};
use crate::config::LlmConfig;
use crate::error::LlmError;
use crate::limits::{backoff, parse_retry_after, CircuitBreaker, TokenBucket};
use crate::prompt::{self, Prompt};
use crate::provider::{self, HttpRequest, Provider, Reply, ReplyError, StructuredMode};
use crate::redact::Redactor;
use fa_model::{Alert, Narrative, Report, VerdictKind};
use serde::Serialize;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Largest response body read, in bytes.
const MAX_BODY: usize = 4 << 20;

/// Why a report has no narrative. Its `Display` is the reason the report's note gives.
#[derive(Debug, Clone, PartialEq)]
pub enum Unavailable {
    DryRun,
    Redaction(String),
    RequestBudget(u64),
    TokenBudget(u64),
    CircuitOpen {
        failures: u32,
        retry_in: Duration,
    },
    Timeout {
        attempts: u32,
        after: Duration,
    },
    RateLimited {
        attempts: u32,
        retry_after: Option<Duration>,
    },
    Server {
        status: u16,
        attempts: u32,
    },
    Rejected {
        status: u16,
        message: String,
    },
    Transport {
        attempts: u32,
        message: String,
    },
    Refused(String),
    Malformed(String),
    NothingValid {
        dropped: usize,
    },
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unavailable::DryRun => f.write_str("dry run (--llm-dry-run): the request was printed, not sent"),
            Unavailable::Redaction(e) => write!(f, "redaction failed, so nothing was sent ({e})"),
            Unavailable::RequestBudget(n) => write!(f, "this run's LLM request budget ({n}) is spent"),
            Unavailable::TokenBudget(n) => write!(f, "this run's LLM token budget ({n}) is spent"),
            Unavailable::CircuitOpen { failures, retry_in } => write!(
                f,
                "the LLM API failed {failures} times in a row; no requests for another {} s",
                retry_in.as_secs().max(1)
            ),
            Unavailable::Timeout { attempts, after } => {
                write!(f, "the LLM API did not answer within {:.1} s ({attempts} attempts)", after.as_secs_f64())
            }
            Unavailable::RateLimited { attempts, retry_after: Some(ra) } => write!(
                f,
                "the LLM API is rate-limiting (HTTP 429) and asked to wait {} s ({attempts} attempts)",
                ra.as_secs()
            ),
            Unavailable::RateLimited { attempts, retry_after: None } => {
                write!(f, "the LLM API kept rate-limiting (HTTP 429) ({attempts} attempts)")
            }
            Unavailable::Server { status, attempts } => {
                write!(f, "the LLM API failed with HTTP {status} ({attempts} attempts)")
            }
            Unavailable::Rejected { status, message } => {
                write!(f, "the LLM API rejected the request with HTTP {status}: {message}")
            }
            Unavailable::Transport { attempts, message } => {
                write!(f, "could not reach the LLM API ({attempts} attempts): {message}")
            }
            Unavailable::Refused(m) => write!(f, "the model refused to answer: {m}"),
            Unavailable::Malformed(m) => {
                write!(f, "the model's answer did not match the required JSON schema, twice ({m})")
            }
            Unavailable::NothingValid { dropped } => write!(
                f,
                "nothing in the model's answer passed validation ({dropped} items removed)"
            ),
        }
    }
}

impl Unavailable {
    /// Failures of the API itself (not of the model's answer, nor our own limits) count
    /// towards the circuit breaker.
    fn is_api_failure(&self) -> bool {
        matches!(
            self,
            Unavailable::Timeout { .. }
                | Unavailable::RateLimited { .. }
                | Unavailable::Server { .. }
                | Unavailable::Rejected { .. }
                | Unavailable::Transport { .. }
        )
    }
}

/// The result of one `narrate` call.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub result: Result<Narrative, Unavailable>,
    /// Items of the model's answer removed because the validator found a problem.
    pub dropped_snippets: usize,
    /// The answer came from the cache (or from another alert of the cluster in this run).
    pub from_cache: bool,
    /// With `--llm-dry-run`: the request exactly as it would be sent, key masked.
    pub request_preview: Option<String>,
}

impl Outcome {
    fn unavailable(u: Unavailable) -> Outcome {
        Outcome {
            result: Err(u),
            dropped_snippets: 0,
            from_cache: false,
            request_preview: None,
        }
    }
}

/// Counters for one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct LlmStats {
    /// HTTP requests sent, retries included.
    pub requests: u64,
    /// `narrate` calls answered from the cache or by an earlier call for the same cluster.
    pub cache_hits: u64,
    /// `narrate` calls that needed the API.
    pub cache_misses: u64,
    /// Misses that ended without a narrative.
    pub failures: u64,
    /// Items removed by validation from answers received this run.
    pub dropped_snippets: u64,
    /// Prompt plus answer tokens, as reported by the API (estimated where it reports none).
    pub tokens: u64,
}

impl LlmStats {
    /// Cache hits over all `narrate` calls that reached the cache (0 when there were none).
    pub fn hit_rate(&self) -> f64 {
        let total = self.cache_hits + self.cache_misses;
        if total == 0 {
            0.0
        } else {
            self.cache_hits as f64 / total as f64
        }
    }
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    failures: AtomicU64,
    dropped_snippets: AtomicU64,
    tokens: AtomicU64,
}

/// What the current budget period has used (a run, or a day of a service).
#[derive(Default)]
struct Spent {
    requests: AtomicU64,
    tokens: AtomicU64,
}

/// Writes narratives. Share it (`Arc<Narrator>`) between tasks; every method takes `&self`.
pub struct Narrator {
    cfg: LlmConfig,
    provider: Box<dyn Provider>,
    client: reqwest::Client,
    cache: Box<dyn NarrativeCache>,
    /// Answers seen this run, so a cache that fails to write still costs one request per cluster.
    answers: Mutex<HashMap<CacheKey, CachedAnswer>>,
    /// Recent failures per key: the other alerts of a failing cluster do not retry it.
    failed: Mutex<HashMap<CacheKey, (Unavailable, Instant)>>,
    key_locks: Mutex<HashMap<CacheKey, Arc<tokio::sync::Mutex<()>>>>,
    bucket: TokenBucket,
    gate: tokio::sync::Semaphore,
    breaker: CircuitBreaker,
    /// Set once a server has rejected `json_schema` and accepted `json_object`.
    json_object_only: AtomicBool,
    counters: Counters,
    spent: Spent,
}

impl fmt::Debug for Narrator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Narrator")
            .field("cfg", &self.cfg)
            .field("stats", &self.stats())
            .finish()
    }
}

impl Narrator {
    /// A narrator for the configured provider.
    pub fn new(cfg: LlmConfig, cache: Box<dyn NarrativeCache>) -> Result<Narrator, LlmError> {
        let provider = provider::from_config(&cfg);
        Self::with_provider(cfg, provider, cache)
    }

    /// A narrator for any provider (a gateway with its own protocol, say).
    pub fn with_provider(
        cfg: LlmConfig,
        provider: Box<dyn Provider>,
        cache: Box<dyn NarrativeCache>,
    ) -> Result<Narrator, LlmError> {
        let client = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.connect_timeout)
            // An API has no reason to redirect, and a redirect could carry the key elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("falco-analyst/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| LlmError::Client(e.to_string()))?;
        Ok(Narrator {
            bucket: TokenBucket::new(cfg.rate),
            gate: tokio::sync::Semaphore::new(cfg.concurrency.max(1)),
            breaker: CircuitBreaker::new(cfg.breaker.threshold, cfg.breaker.cooldown),
            cfg,
            provider,
            client,
            cache,
            answers: Mutex::new(HashMap::new()),
            failed: Mutex::new(HashMap::new()),
            key_locks: Mutex::new(HashMap::new()),
            json_object_only: AtomicBool::new(false),
            counters: Counters::default(),
            spent: Spent::default(),
        })
    }

    pub fn config(&self) -> &LlmConfig {
        &self.cfg
    }

    pub fn stats(&self) -> LlmStats {
        let c = &self.counters;
        LlmStats {
            requests: c.requests.load(Ordering::Relaxed),
            cache_hits: c.cache_hits.load(Ordering::Relaxed),
            cache_misses: c.cache_misses.load(Ordering::Relaxed),
            failures: c.failures.load(Ordering::Relaxed),
            dropped_snippets: c.dropped_snippets.load(Ordering::Relaxed),
            tokens: c.tokens.load(Ordering::Relaxed),
        }
    }

    /// Starts a new budget period, for services that run for days: the request and token
    /// budgets start again from zero, and what this narrator remembers in memory (answers,
    /// recent failures, idle per-cluster locks) is forgotten so that it does not grow with
    /// every cluster ever seen; the persistent cache still has the answers. Statistics are kept.
    pub fn start_budget_period(&self) {
        self.spent.requests.store(0, Ordering::Relaxed);
        self.spent.tokens.store(0, Ordering::Relaxed);
        if let Ok(mut m) = self.answers.lock() {
            m.clear();
        }
        let cooldown = self.cfg.breaker.cooldown;
        if let Ok(mut m) = self.failed.lock() {
            // Clusters refused for the spent budget may be asked for again at once.
            m.retain(|_, (u, at)| {
                at.elapsed() < cooldown
                    && !matches!(
                        u,
                        Unavailable::RequestBudget(_) | Unavailable::TokenBudget(_)
                    )
            });
        }
        if let Ok(mut m) = self.key_locks.lock() {
            // A lock someone holds or waits for stays, so a cluster never gets two requests.
            m.retain(|_, l| Arc::strong_count(l) > 1);
        }
    }

    /// The request `narrate` would send for this report, exactly, API key masked.
    pub fn dry_run_request(&self, report: &Report, alert: &Alert) -> String {
        match self.prompt(report, alert) {
            Ok(p) => self
                .provider
                .request(&p, self.cfg.max_output_tokens, self.mode())
                .display_masked(),
            Err(u) => format!("(nothing would be sent: {u})\n"),
        }
    }

    fn prompt(&self, report: &Report, alert: &Alert) -> Result<Prompt, Unavailable> {
        let redactor = Redactor::for_alert(alert, self.cfg.redaction)
            .map_err(|e| Unavailable::Redaction(e.to_string()))?;
        prompt::build(report, alert, &redactor).map_err(|e| Unavailable::Redaction(e.to_string()))
    }

    fn mode(&self) -> StructuredMode {
        if self.json_object_only.load(Ordering::Relaxed) {
            StructuredMode::JsonObject
        } else {
            StructuredMode::Schema
        }
    }

    /// The narrative for `report` (the representative report of the cluster `key` names).
    /// Never fails: a problem is an `Unavailable` reason, and [`apply`] turns it into a note.
    pub async fn narrate(&self, key: &CacheKey, report: &Report, alert: &Alert) -> Outcome {
        let prompt = match self.prompt(report, alert) {
            Ok(p) => p,
            Err(u) => return Outcome::unavailable(u),
        };
        if self.cfg.dry_run {
            let req = self
                .provider
                .request(&prompt, self.cfg.max_output_tokens, self.mode());
            return Outcome {
                result: Err(Unavailable::DryRun),
                dropped_snippets: 0,
                from_cache: false,
                request_preview: Some(req.display_masked()),
            };
        }

        // One request per cluster: later callers for the same key wait for the first.
        let lock = self.key_lock(key);
        let _guard = lock.lock().await;

        if let Some(cached) = self.cached(key) {
            self.counters.cache_hits.fetch_add(1, Ordering::Relaxed);
            let (narrative, dropped) = answer::check(
                &cached.answer,
                &prompt.placeholders,
                &cached.provider,
                &cached.model,
            );
            return Outcome {
                result: narrative.ok_or(Unavailable::NothingValid { dropped }),
                dropped_snippets: dropped,
                from_cache: true,
                request_preview: None,
            };
        }
        if let Some(u) = self.recent_failure(key) {
            return Outcome::unavailable(u);
        }

        self.counters.cache_misses.fetch_add(1, Ordering::Relaxed);
        match self.fetch(&prompt).await {
            Ok(ans) => {
                let cached = CachedAnswer {
                    provider: self.provider.name().to_string(),
                    model: self.provider.model().to_string(),
                    answer: ans,
                    created: std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs()),
                };
                // A cache that cannot write costs a request next run, not a report.
                let _ = self.cache.put(key, &cached);
                if let Ok(mut m) = self.answers.lock() {
                    m.insert(key.clone(), cached.clone());
                }
                let (narrative, dropped) = answer::check(
                    &cached.answer,
                    &prompt.placeholders,
                    &cached.provider,
                    &cached.model,
                );
                self.counters
                    .dropped_snippets
                    .fetch_add(dropped as u64, Ordering::Relaxed);
                if narrative.is_none() {
                    self.counters.failures.fetch_add(1, Ordering::Relaxed);
                }
                Outcome {
                    result: narrative.ok_or(Unavailable::NothingValid { dropped }),
                    dropped_snippets: dropped,
                    from_cache: false,
                    request_preview: None,
                }
            }
            Err(u) => {
                self.counters.failures.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut m) = self.failed.lock() {
                    m.insert(key.clone(), (u.clone(), Instant::now()));
                }
                Outcome::unavailable(u)
            }
        }
    }

    fn key_lock(&self, key: &CacheKey) -> Arc<tokio::sync::Mutex<()>> {
        match self.key_locks.lock() {
            Ok(mut m) => m.entry(key.clone()).or_default().clone(),
            Err(_) => Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    fn cached(&self, key: &CacheKey) -> Option<CachedAnswer> {
        let same_model = |c: &CachedAnswer| {
            c.provider == self.provider.name() && c.model == self.provider.model()
        };
        if let Some(c) = self.answers.lock().ok()?.get(key).cloned() {
            return Some(c);
        }
        let c = self.cache.get(key).filter(same_model)?;
        if let Ok(mut m) = self.answers.lock() {
            m.insert(key.clone(), c.clone());
        }
        Some(c)
    }

    fn recent_failure(&self, key: &CacheKey) -> Option<Unavailable> {
        let m = self.failed.lock().ok()?;
        let (u, at) = m.get(key)?;
        (at.elapsed() < self.cfg.breaker.cooldown).then(|| u.clone())
    }

    /// One answer: the request (with retries and the structured-mode fallback), then a strict
    /// parse; an answer that does not parse is asked for once more.
    async fn fetch(&self, prompt: &Prompt) -> Result<Answer, Unavailable> {
        if let Err(retry_in) = self.breaker.check() {
            return Err(Unavailable::CircuitOpen {
                failures: self.cfg.breaker.threshold,
                retry_in,
            });
        }
        let mut current = prompt.clone();
        let mut last_problem = String::new();
        for round in 0..2 {
            let reply = match self.send_with_retries(&current).await {
                Ok(r) => {
                    self.breaker.success();
                    r
                }
                Err(u) => {
                    if u.is_api_failure() {
                        self.breaker.failure();
                    }
                    return Err(u);
                }
            };
            let problem = match reply {
                Ok(reply) => match answer::parse(&reply.text) {
                    Ok(a) => return Ok(a),
                    Err(e) => e,
                },
                Err(ReplyError::Refused(m)) => return Err(Unavailable::Refused(m)),
                Err(e) => e.to_string(),
            };
            last_problem = problem;
            if round == 0 {
                current.user = format!(
                    "{}\nYour previous answer could not be used ({}). Answer again with only the JSON object.\n",
                    prompt.user,
                    provider::short(&last_problem)
                );
            }
        }
        Err(Unavailable::Malformed(provider::short(&last_problem)))
    }

    /// Sends one prompt, retrying timeouts, connection errors, 408, 429 and 5xx with jittered
    /// exponential backoff (at least `Retry-After` when the server gives one). A 2xx response
    /// is returned as the provider reads it.
    async fn send_with_retries(
        &self,
        prompt: &Prompt,
    ) -> Result<Result<Reply, ReplyError>, Unavailable> {
        let policy = &self.cfg.retry;
        let mut mode = self.mode();
        let mut fell_back = false;
        let mut attempt: u32 = 0;
        loop {
            self.reserve(prompt)?;
            let req = self
                .provider
                .request(prompt, self.cfg.max_output_tokens, mode);
            let sent = {
                let _permit = self.gate.acquire().await;
                self.bucket.acquire().await;
                self.send(&req).await
            };
            let attempts = attempt + 1;
            let (retry_after, failure) = match sent {
                Ok(resp) if (200..300).contains(&resp.status) => {
                    let reply = self.provider.reply(&resp.body);
                    let tokens = match &reply {
                        Ok(Reply {
                            tokens: Some(t), ..
                        }) => *t,
                        Ok(r) => prompt.estimated_tokens() + (r.text.len() / 4) as u64,
                        Err(_) => prompt.estimated_tokens(),
                    };
                    self.counters.tokens.fetch_add(tokens, Ordering::Relaxed);
                    self.spent.tokens.fetch_add(tokens, Ordering::Relaxed);
                    if fell_back && reply.is_ok() {
                        self.json_object_only.store(true, Ordering::Relaxed);
                    }
                    return Ok(reply);
                }
                Ok(resp) if resp.status == 429 => (
                    resp.retry_after,
                    Unavailable::RateLimited {
                        attempts,
                        retry_after: resp.retry_after,
                    },
                ),
                Ok(resp) if resp.status >= 500 || resp.status == 408 => (
                    resp.retry_after,
                    Unavailable::Server {
                        status: resp.status,
                        attempts,
                    },
                ),
                Ok(resp) => {
                    let text = String::from_utf8_lossy(&resp.body);
                    if let Some(m) = self.provider.fallback_mode(mode, resp.status, &text) {
                        // Not a retry: another request shape.
                        mode = m;
                        fell_back = true;
                        continue;
                    }
                    return Err(Unavailable::Rejected {
                        status: resp.status,
                        message: provider::short(&text),
                    });
                }
                Err(SendError::Timeout) => (
                    None,
                    Unavailable::Timeout {
                        attempts,
                        after: self.cfg.timeout,
                    },
                ),
                Err(SendError::Transport(message)) => {
                    (None, Unavailable::Transport { attempts, message })
                }
            };
            if attempt >= policy.max_retries {
                return Err(failure);
            }
            let mut wait = backoff(attempt, policy.base, policy.cap);
            if let Some(ra) = retry_after {
                if ra > policy.max_retry_after {
                    return Err(Unavailable::RateLimited {
                        attempts,
                        retry_after: Some(ra),
                    });
                }
                wait = wait.max(ra);
            }
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// Counts the request against the run's budgets, or refuses it.
    fn reserve(&self, prompt: &Prompt) -> Result<(), Unavailable> {
        let need = prompt.estimated_tokens() + u64::from(self.cfg.max_output_tokens);
        if self
            .spent
            .tokens
            .load(Ordering::Relaxed)
            .saturating_add(need)
            > self.cfg.max_tokens
        {
            return Err(Unavailable::TokenBudget(self.cfg.max_tokens));
        }
        let max = self.cfg.max_requests;
        self.spent
            .requests
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < max).then_some(n + 1)
            })
            .map_err(|_| Unavailable::RequestBudget(max))?;
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    async fn send(&self, req: &HttpRequest) -> Result<RawResponse, SendError> {
        let mut rb = self.client.post(&req.url).body(req.body.clone());
        for (k, v) in req.headers.iter().chain(req.secret_headers.iter()) {
            rb = rb.header(k.as_str(), v.as_str());
        }
        let mut resp = rb.send().await.map_err(SendError::from)?;
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(SendError::from)? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(SendError::Transport(format!(
                    "response larger than {MAX_BODY} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(RawResponse {
            status,
            retry_after,
            body,
        })
    }
}

struct RawResponse {
    status: u16,
    retry_after: Option<Duration>,
    body: Vec<u8>,
}

enum SendError {
    Timeout,
    Transport(String),
}

impl From<reqwest::Error> for SendError {
    fn from(e: reqwest::Error) -> Self {
        if e.is_timeout() {
            return SendError::Timeout;
        }
        // The error chain says why (refused, reset, DNS); the URL is the configured endpoint.
        let mut msg = e.to_string();
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            src = s.source();
        }
        SendError::Transport(provider::short(&msg))
    }
}

/// The request `--llm-dry-run` prints for `report`, without a narrator (no HTTP client).
pub fn dry_run_request(cfg: &LlmConfig, report: &Report, alert: &Alert) -> String {
    let provider = provider::from_config(cfg);
    let built = Redactor::for_alert(alert, cfg.redaction)
        .map_err(|e| e.to_string())
        .and_then(|r| prompt::build(report, alert, &r).map_err(|e| e.to_string()));
    match built {
        Ok(p) => provider
            .request(&p, cfg.max_output_tokens, StructuredMode::Schema)
            .display_masked(),
        Err(e) => format!("(nothing would be sent: redaction failed: {e})\n"),
    }
}

/// Puts an outcome into the report: the narrative, or a note saying why there is none. Nothing
/// else in the report is touched: the verdict, the knowledge-base facts and the deterministic
/// mitigations stay exactly as they were.
pub fn apply(report: &mut Report, outcome: Outcome) {
    match outcome.result {
        Ok(n) => {
            if outcome.dropped_snippets > 0 {
                report.notes.push(format!(
                    "{} item(s) of the LLM narrative were removed because a command or configuration in them failed validation.",
                    outcome.dropped_snippets
                ));
            }
            if let Some(v) = &report.verdict {
                if v.kind != VerdictKind::Benign && reads_as_benign(&n) {
                    report.notes.push(format!(
                        "The LLM narrative speaks of a benign or harmless reading; it is the model's opinion and does not change the deterministic verdict ({}).",
                        v.kind
                    ));
                }
            }
            report.narrative = Some(n);
        }
        Err(u) => report.notes.push(format!("LLM narrative unavailable: {u}")),
    }
}

fn reads_as_benign(n: &Narrative) -> bool {
    let text = format!("{} {}", n.summary, n.analysis).to_lowercase();
    [
        "benign",
        "harmless",
        "false positive",
        "no action",
        "safe to ignore",
    ]
    .iter()
    .any(|w| text.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_read_as_sentences() {
        let u = Unavailable::RateLimited {
            attempts: 2,
            retry_after: Some(Duration::from_secs(120)),
        };
        assert_eq!(
            u.to_string(),
            "the LLM API is rate-limiting (HTTP 429) and asked to wait 120 s (2 attempts)"
        );
        assert!(Unavailable::Timeout {
            attempts: 4,
            after: Duration::from_millis(1500)
        }
        .to_string()
        .contains("1.5 s"));
        assert!(!Unavailable::Malformed("x".into()).is_api_failure());
        assert!(Unavailable::Server {
            status: 500,
            attempts: 1
        }
        .is_api_failure());
    }

    #[test]
    fn hit_rate() {
        let s = LlmStats {
            cache_hits: 3,
            cache_misses: 1,
            ..Default::default()
        };
        assert_eq!(s.hit_rate(), 0.75);
        assert_eq!(LlmStats::default().hit_rate(), 0.0);
    }
}
