//! Providers: how a prompt becomes an HTTP request and how a response becomes the model's
//! answer text. Sending, retries and limits are the narrator's; a provider is pure, which is
//! also what makes `--llm-dry-run` exact.

mod anthropic;
mod openai;

pub use anthropic::Anthropic;
pub use openai::OpenAiCompatible;

use crate::config::{LlmConfig, ProviderKind};
use crate::prompt::Prompt;
use serde_json::Value;
use std::fmt;

/// How the answer's JSON shape is requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StructuredMode {
    /// The provider's schema mode: OpenAI `response_format: json_schema`, Anthropic forced tool.
    Schema,
    /// OpenAI `response_format: json_object`, with the schema in the prompt (servers that reject
    /// `json_schema`).
    JsonObject,
}

/// One request to make.
#[derive(Clone, PartialEq)]
pub struct HttpRequest {
    pub url: String,
    /// Header name and value. Secret values are only in `secret_headers`.
    pub headers: Vec<(String, String)>,
    /// Headers carrying the API key; printed masked by dry runs.
    pub secret_headers: Vec<(String, String)>,
    pub body: String,
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpRequest")
            .field("url", &self.url)
            .field("headers", &self.headers)
            .field(
                "secret_headers",
                &self
                    .secret_headers
                    .iter()
                    .map(|(k, _)| k)
                    .collect::<Vec<_>>(),
            )
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

impl HttpRequest {
    /// The request as it would go on the wire, API key masked: what `--llm-dry-run` prints.
    pub fn display_masked(&self) -> String {
        let mut s = format!("POST {}\n", self.url);
        for (k, v) in &self.headers {
            s.push_str(&format!("{k}: {v}\n"));
        }
        for (k, _) in &self.secret_headers {
            s.push_str(&format!("{k}: ***\n"));
        }
        s.push('\n');
        s.push_str(&self.body);
        s.push('\n');
        s
    }
}

/// The model's answer text and what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The JSON text of the answer (the tool input for Anthropic).
    pub text: String,
    /// Prompt plus answer tokens, when the provider reports them.
    pub tokens: Option<u64>,
}

/// A 2xx response that does not carry an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("the response is not the provider's JSON: {0}")]
    Envelope(String),
    #[error("the model refused: {0}")]
    Refused(String),
    #[error("the answer was cut off at the token limit")]
    Truncated,
    #[error("the response has no answer")]
    Empty,
}

/// An LLM API. Two implementations: [`OpenAiCompatible`] and [`Anthropic`].
pub trait Provider: Send + Sync + fmt::Debug {
    /// `openai`, `ollama` or `anthropic`.
    fn name(&self) -> &str;
    fn model(&self) -> &str;
    /// The HTTP request for `prompt`, asking for at most `max_tokens` of answer.
    fn request(&self, prompt: &Prompt, max_tokens: u32, mode: StructuredMode) -> HttpRequest;
    /// The answer in a 2xx response body.
    fn reply(&self, body: &[u8]) -> Result<Reply, ReplyError>;
    /// True when a 4xx response to a `mode` request says the server does not support that
    /// structured-output mode, and the next weaker one should be tried.
    fn fallback_mode(
        &self,
        _mode: StructuredMode,
        _status: u16,
        _body: &str,
    ) -> Option<StructuredMode> {
        None
    }
}

/// The provider a configuration names.
pub fn from_config(cfg: &LlmConfig) -> Box<dyn Provider> {
    match cfg.provider {
        ProviderKind::OpenAi | ProviderKind::Ollama => Box::new(OpenAiCompatible::new(cfg)),
        ProviderKind::Anthropic => Box::new(Anthropic::new(cfg)),
    }
}

/// `base` + `path`, keeping a query string (Azure's `?api-version=`) at the end. `versioned`
/// is the path to append when the base already ends in `/v1`.
pub(crate) fn join_url(base: &reqwest::Url, full: &str, versioned: &str) -> String {
    let mut url = base.clone();
    let path = url.path().trim_end_matches('/').to_string();
    let last = full.rsplit('/').next().unwrap_or(full);
    let new_path =
        if path.ends_with(full) || path.ends_with(versioned) || path.ends_with(&format!("/{last}"))
        {
            path
        } else if path.ends_with("/v1") || path.contains("/deployments/") {
            format!("{path}{versioned}")
        } else {
            format!("{path}{full}")
        };
    url.set_path(&new_path);
    url.to_string()
}

/// The text of a JSON body, cut for messages.
pub(crate) fn short(body: &str) -> String {
    let one: String = body.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() > 200 {
        format!("{}…", one.chars().take(200).collect::<String>())
    } else {
        one
    }
}

pub(crate) fn parse_json(body: &[u8]) -> Result<Value, ReplyError> {
    serde_json::from_slice(body).map_err(|e| ReplyError::Envelope(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> reqwest::Url {
        reqwest::Url::parse(s).unwrap()
    }

    #[test]
    fn chat_completions_url_for_every_base_form() {
        let j = |b: &str| join_url(&u(b), "/v1/chat/completions", "/chat/completions");
        assert_eq!(
            j("https://api.openai.com/v1"),
            "https://api.openai.com/v1/chat/completions"
        );
        assert_eq!(
            j("http://127.0.0.1:11434"),
            "http://127.0.0.1:11434/v1/chat/completions"
        );
        assert_eq!(
            j("http://127.0.0.1:8000/v1/"),
            "http://127.0.0.1:8000/v1/chat/completions"
        );
        assert_eq!(
            j("https://r.openai.azure.com/openai/v1"),
            "https://r.openai.azure.com/openai/v1/chat/completions"
        );
        assert_eq!(
            j("https://r.openai.azure.com/openai/deployments/gpt4o?api-version=2024-10-21"),
            "https://r.openai.azure.com/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(
            j("http://h/v1/chat/completions"),
            "http://h/v1/chat/completions"
        );
    }

    #[test]
    fn messages_url() {
        let j = |b: &str| join_url(&u(b), "/v1/messages", "/messages");
        assert_eq!(
            j("https://api.anthropic.com"),
            "https://api.anthropic.com/v1/messages"
        );
        assert_eq!(
            j("https://gw.example/anthropic/v1"),
            "https://gw.example/anthropic/v1/messages"
        );
    }
}
