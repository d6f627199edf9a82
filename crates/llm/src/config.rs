//! `LlmArgs` (flags, configuration file, environment) resolved into one checked configuration.

use crate::args::{LlmArgs, RedactionLevel};
use crate::error::LlmError;
use reqwest::Url;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Which wire protocol and which defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProviderKind {
    /// `POST /v1/chat/completions`: OpenAI, Azure OpenAI, vLLM, llama.cpp server, LM Studio.
    OpenAi,
    /// The same protocol, with Ollama's defaults (no key, `OLLAMA_HOST`).
    Ollama,
    /// The Anthropic Messages API.
    Anthropic,
}

impl ProviderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "openai",
            ProviderKind::Ollama => "ollama",
            ProviderKind::Anthropic => "anthropic",
        }
    }

    fn base_url_var(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "OPENAI_BASE_URL",
            ProviderKind::Ollama => "OLLAMA_HOST",
            ProviderKind::Anthropic => "ANTHROPIC_BASE_URL",
        }
    }

    fn default_base_url(self) -> &'static str {
        match self {
            ProviderKind::OpenAi => "https://api.openai.com/v1",
            ProviderKind::Ollama => "http://127.0.0.1:11434",
            ProviderKind::Anthropic => "https://api.anthropic.com",
        }
    }

    fn key_var(self) -> Option<&'static str> {
        match self {
            ProviderKind::OpenAi => Some("OPENAI_API_KEY"),
            ProviderKind::Ollama => None,
            ProviderKind::Anthropic => Some("ANTHROPIC_API_KEY"),
        }
    }
}

/// An API key. Its `Debug` form never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(s: impl Into<String>) -> Self {
        ApiKey(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(***)")
    }
}

/// Retries of one request on timeouts, connection errors, 429 and 5xx.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff; doubled on each retry, with jitter.
    pub base: Duration,
    /// Longest backoff between two attempts.
    pub cap: Duration,
    /// Longest `Retry-After` honoured; a server asking for more fails the request at once.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            base: Duration::from_millis(500),
            cap: Duration::from_secs(20),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

/// After `threshold` failed narrations in a row, no request is made for `cooldown`.
#[derive(Debug, Clone, PartialEq)]
pub struct BreakerPolicy {
    pub threshold: u32,
    pub cooldown: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            threshold: 5,
            cooldown: Duration::from_secs(60),
        }
    }
}

/// Everything the narrator needs, checked.
#[derive(Debug, Clone)]
pub struct LlmConfig {
    pub provider: ProviderKind,
    pub model: String,
    /// The base URL as given (or defaulted); the provider appends its path.
    pub base_url: Url,
    pub api_key: Option<ApiKey>,
    /// Per HTTP request.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub redaction: RedactionLevel,
    pub dry_run: bool,
    /// Per run: HTTP requests, retries included.
    pub max_requests: u64,
    /// Per run: prompt plus answer tokens as the provider reports them (estimated otherwise).
    pub max_tokens: u64,
    /// Longest answer asked for, in tokens.
    pub max_output_tokens: u32,
    pub concurrency: usize,
    /// Requests started per second (token bucket; burst = max(1, rate)).
    pub rate: f64,
    /// `None`: no directory could be found; use an in-memory cache.
    pub cache_dir: Option<PathBuf>,
    pub retry: RetryPolicy,
    pub breaker: BreakerPolicy,
}

pub const DEFAULT_TIMEOUT_SECS: f64 = 60.0;
pub const DEFAULT_MAX_REQUESTS: u64 = 100;
pub const DEFAULT_MAX_TOKENS: u64 = 400_000;
pub const DEFAULT_MAX_OUTPUT_TOKENS: u32 = 1_500;
pub const DEFAULT_CONCURRENCY: usize = 4;
pub const DEFAULT_RATE: f64 = 2.0;

impl LlmConfig {
    /// `None` without `--llm`: then nothing is ever sent.
    pub fn from_args(args: &LlmArgs) -> Result<Option<LlmConfig>, LlmError> {
        Self::from_args_with_env(args, &|k| std::env::var(k).ok())
    }

    /// As [`LlmConfig::from_args`], reading the environment through `env` (for tests and for
    /// services that keep their own environment).
    pub fn from_args_with_env(
        args: &LlmArgs,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<LlmConfig>, LlmError> {
        let Some(spec) = args.llm.as_deref() else {
            return Ok(None);
        };
        let (provider, model) = parse_spec(spec)?;
        let env_nonempty = |k: &str| env(k).filter(|v| !v.trim().is_empty());

        let (raw_url, from_ollama_host) = match &args.llm_base_url {
            Some(u) => (u.clone(), false),
            None => match env_nonempty(provider.base_url_var()) {
                Some(u) => (u, provider == ProviderKind::Ollama),
                None => (provider.default_base_url().to_string(), false),
            },
        };
        let base_url = parse_base_url(&raw_url, from_ollama_host)?;

        let api_key = provider.key_var().and_then(env_nonempty).map(ApiKey::new);
        let uses_default_endpoint = base_url.host_str()
            == Url::parse(provider.default_base_url())
                .ok()
                .as_ref()
                .and_then(|u| u.host_str());
        if let (Some(var), None) = (provider.key_var(), &api_key) {
            // Local servers (vLLM, llama.cpp, LM Studio) need no key; the public APIs do.
            if uses_default_endpoint && !args.llm_dry_run {
                return Err(LlmError::MissingKey {
                    var,
                    provider: provider.as_str(),
                });
            }
        }
        if api_key.is_some() && base_url.scheme() == "http" && !is_loopback(&base_url) {
            return Err(LlmError::BaseUrl {
                url: raw_url,
                problem: "refusing to send an API key over plain http to a remote host; use https"
                    .into(),
            });
        }

        let timeout = positive_secs(
            "llm-timeout",
            args.llm_timeout.unwrap_or(DEFAULT_TIMEOUT_SECS),
        )?;
        let rate = args.llm_rate.unwrap_or(DEFAULT_RATE);
        if !(rate.is_finite() && rate > 0.0) {
            return Err(LlmError::Value {
                flag: "llm-rate",
                problem: format!("{rate} is not a positive number"),
            });
        }
        let concurrency = args.llm_concurrency.unwrap_or(DEFAULT_CONCURRENCY);
        if concurrency == 0 {
            return Err(LlmError::Value {
                flag: "llm-concurrency",
                problem: "must be at least 1".into(),
            });
        }
        let cache_dir = args.llm_cache.clone().or_else(|| default_cache_dir(env));

        Ok(Some(LlmConfig {
            provider,
            model,
            base_url,
            api_key,
            timeout,
            connect_timeout: timeout.min(Duration::from_secs(10)),
            redaction: args.llm_redaction.unwrap_or_default(),
            dry_run: args.llm_dry_run,
            max_requests: args.llm_max_requests.unwrap_or(DEFAULT_MAX_REQUESTS),
            max_tokens: args.llm_max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
            max_output_tokens: DEFAULT_MAX_OUTPUT_TOKENS,
            concurrency,
            rate,
            cache_dir,
            retry: RetryPolicy::default(),
            breaker: BreakerPolicy::default(),
        }))
    }

    /// A configuration with every default, for a provider at `base_url` (tests, services).
    pub fn new(provider: ProviderKind, model: &str, base_url: &str) -> Result<LlmConfig, LlmError> {
        let base_url = parse_base_url(base_url, false)?;
        Ok(LlmConfig {
            provider,
            model: model.to_string(),
            base_url,
            api_key: None,
            timeout: Duration::from_secs_f64(DEFAULT_TIMEOUT_SECS),
            connect_timeout: Duration::from_secs(10),
            redaction: RedactionLevel::Standard,
            dry_run: false,
            max_requests: DEFAULT_MAX_REQUESTS,
            max_tokens: DEFAULT_MAX_TOKENS,
            max_output_tokens: DEFAULT_MAX_OUTPUT_TOKENS,
            concurrency: DEFAULT_CONCURRENCY,
            rate: DEFAULT_RATE,
            cache_dir: None,
            retry: RetryPolicy::default(),
            breaker: BreakerPolicy::default(),
        })
    }

    /// `provider:model`, as reports name the narrative's author.
    pub fn label(&self) -> String {
        format!("{}:{}", self.provider.as_str(), self.model)
    }
}

fn parse_spec(spec: &str) -> Result<(ProviderKind, String), LlmError> {
    // Split at the first colon only: Ollama model names carry tags (`llama3.1:8b`).
    let (p, model) = spec
        .split_once(':')
        .ok_or_else(|| LlmError::Spec(spec.to_string()))?;
    let model = model.trim();
    if model.is_empty() {
        return Err(LlmError::Spec(spec.to_string()));
    }
    let provider = match p.trim().to_ascii_lowercase().as_str() {
        "openai" => ProviderKind::OpenAi,
        "anthropic" => ProviderKind::Anthropic,
        "ollama" => ProviderKind::Ollama,
        other => return Err(LlmError::UnknownProvider(other.to_string())),
    };
    Ok((provider, model.to_string()))
}

/// `OLLAMA_HOST` is often `host:port` or a listen address such as `0.0.0.0:11434`: add the
/// scheme and connect to loopback in that case.
fn parse_base_url(raw: &str, ollama_host: bool) -> Result<Url, LlmError> {
    let trimmed = raw.trim();
    let with_scheme = if trimmed.contains("://") {
        trimmed.to_string()
    } else {
        format!("http://{trimmed}")
    };
    let mut url = Url::parse(&with_scheme).map_err(|e| LlmError::BaseUrl {
        url: raw.to_string(),
        problem: e.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(LlmError::BaseUrl {
            url: raw.to_string(),
            problem: "only http and https are supported".into(),
        });
    }
    if url.host_str().is_none() {
        return Err(LlmError::BaseUrl {
            url: raw.to_string(),
            problem: "no host".into(),
        });
    }
    if ollama_host && matches!(url.host_str(), Some("0.0.0.0") | Some("[::]")) {
        url.set_host(Some("127.0.0.1"))
            .map_err(|e| LlmError::BaseUrl {
                url: raw.to_string(),
                problem: e.to_string(),
            })?;
    }
    if ollama_host && !trimmed.contains("://") && url.port().is_none() {
        let _ = url.set_port(Some(11434));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(LlmError::BaseUrl {
            url: "(hidden: it carries credentials)".into(),
            problem: "put the key in the environment, not in the URL".into(),
        });
    }
    Ok(url)
}

fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn positive_secs(flag: &'static str, secs: f64) -> Result<Duration, LlmError> {
    if secs.is_finite() && secs > 0.0 && secs < 86_400.0 {
        Ok(Duration::from_secs_f64(secs))
    } else {
        Err(LlmError::Value {
            flag,
            problem: format!("{secs} is not a number of seconds between 0 and 86400"),
        })
    }
}

/// `$XDG_CACHE_HOME/falco-analyst/llm`, else `$HOME/.cache/falco-analyst/llm`.
pub fn default_cache_dir(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let base = env("XDG_CACHE_HOME")
        .filter(|v| v.starts_with('/'))
        .map(PathBuf::from)
        .or_else(|| {
            env("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })?;
    Some(base.join("falco-analyst").join("llm"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    fn args(spec: &str) -> LlmArgs {
        LlmArgs {
            llm: Some(spec.into()),
            ..Default::default()
        }
    }

    #[test]
    fn nothing_without_llm() {
        assert!(
            LlmConfig::from_args_with_env(&LlmArgs::default(), &env_of(&[]))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn provider_model_split_at_first_colon() {
        let c = LlmConfig::from_args_with_env(&args("ollama:llama3.1:8b"), &env_of(&[]))
            .unwrap()
            .unwrap();
        assert_eq!(c.provider, ProviderKind::Ollama);
        assert_eq!(c.model, "llama3.1:8b");
        assert_eq!(c.base_url.as_str(), "http://127.0.0.1:11434/");
        assert!(matches!(
            LlmConfig::from_args_with_env(&args("gemini:x"), &env_of(&[])),
            Err(LlmError::UnknownProvider(_))
        ));
        assert!(matches!(
            LlmConfig::from_args_with_env(&args("openai:"), &env_of(&[])),
            Err(LlmError::Spec(_))
        ));
        assert!(matches!(
            LlmConfig::from_args_with_env(&args("gpt-4o"), &env_of(&[])),
            Err(LlmError::Spec(_))
        ));
    }

    #[test]
    fn ollama_host_without_scheme_and_listen_address() {
        let c = LlmConfig::from_args_with_env(
            &args("ollama:qwen2.5"),
            &env_of(&[("OLLAMA_HOST", "0.0.0.0")]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.base_url.as_str(), "http://127.0.0.1:11434/");
        let c = LlmConfig::from_args_with_env(
            &args("ollama:qwen2.5"),
            &env_of(&[("OLLAMA_HOST", "gpu-box:8080")]),
        )
        .unwrap()
        .unwrap();
        assert_eq!(c.base_url.as_str(), "http://gpu-box:8080/");
    }

    #[test]
    fn public_apis_need_a_key_local_servers_do_not() {
        let e =
            LlmConfig::from_args_with_env(&args("openai:gpt-4o-mini"), &env_of(&[])).unwrap_err();
        assert!(e.to_string().contains("OPENAI_API_KEY"), "{e}");
        let e = LlmConfig::from_args_with_env(&args("anthropic:claude"), &env_of(&[])).unwrap_err();
        assert!(e.to_string().contains("ANTHROPIC_API_KEY"), "{e}");
        // vLLM on loopback without a key.
        let mut a = args("openai:Qwen/Qwen2.5-7B-Instruct");
        a.llm_base_url = Some("http://127.0.0.1:8000/v1".into());
        assert!(LlmConfig::from_args_with_env(&a, &env_of(&[]))
            .unwrap()
            .unwrap()
            .api_key
            .is_none());
        // A dry run needs no key.
        let mut a = args("openai:gpt-4o-mini");
        a.llm_dry_run = true;
        assert!(LlmConfig::from_args_with_env(&a, &env_of(&[]))
            .unwrap()
            .is_some());
    }

    #[test]
    fn flag_beats_environment_and_keys_come_from_the_environment() {
        let mut a = args("openai:gpt-4o-mini");
        a.llm_base_url = Some("https://example-resource.openai.azure.com/openai/v1".into());
        let env = env_of(&[
            ("OPENAI_API_KEY", "sk-test"),
            ("OPENAI_BASE_URL", "https://elsewhere.example/v1"),
        ]);
        let c = LlmConfig::from_args_with_env(&a, &env).unwrap().unwrap();
        assert_eq!(
            c.base_url.host_str(),
            Some("example-resource.openai.azure.com")
        );
        assert_eq!(c.api_key.as_ref().map(ApiKey::expose), Some("sk-test"));
        assert!(!format!("{c:?}").contains("sk-test"));
    }

    #[test]
    fn never_sends_a_key_over_plain_http_to_a_remote_host() {
        let mut a = args("openai:m");
        a.llm_base_url = Some("http://10.0.0.5:8000/v1".into());
        let e =
            LlmConfig::from_args_with_env(&a, &env_of(&[("OPENAI_API_KEY", "sk-x")])).unwrap_err();
        assert!(e.to_string().contains("plain http"), "{e}");
        a.llm_base_url = Some("http://localhost:8000/v1".into());
        assert!(LlmConfig::from_args_with_env(&a, &env_of(&[("OPENAI_API_KEY", "sk-x")])).is_ok());
    }

    #[test]
    fn rejects_bad_numbers_and_urls() {
        let mut a = args("ollama:m");
        a.llm_timeout = Some(0.0);
        assert!(LlmConfig::from_args_with_env(&a, &env_of(&[])).is_err());
        let mut a = args("ollama:m");
        a.llm_rate = Some(f64::NAN);
        assert!(LlmConfig::from_args_with_env(&a, &env_of(&[])).is_err());
        let mut a = args("ollama:m");
        a.llm_base_url = Some("file:///etc/passwd".into());
        assert!(LlmConfig::from_args_with_env(&a, &env_of(&[])).is_err());
        let mut a = args("ollama:m");
        a.llm_base_url = Some("https://user:secret@host.example".into());
        let e = LlmConfig::from_args_with_env(&a, &env_of(&[])).unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
    }

    #[test]
    fn cache_dir_defaults_to_xdg_then_home() {
        assert_eq!(
            default_cache_dir(&env_of(&[("XDG_CACHE_HOME", "/x"), ("HOME", "/h")])),
            Some(PathBuf::from("/x/falco-analyst/llm"))
        );
        assert_eq!(
            default_cache_dir(&env_of(&[("HOME", "/h")])),
            Some(PathBuf::from("/h/.cache/falco-analyst/llm"))
        );
        assert_eq!(default_cache_dir(&env_of(&[])), None);
    }
}
