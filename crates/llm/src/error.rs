use std::path::PathBuf;

/// A configuration that cannot be used. Failures while narrating are not errors: they are
/// [`crate::Unavailable`] reasons and the report stays the deterministic one.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("--llm `{0}`: expected PROVIDER:MODEL, e.g. `openai:gpt-4o-mini`, `anthropic:claude-sonnet-4-5` or `ollama:llama3.1`")]
    Spec(String),
    #[error("--llm: unknown provider `{0}` (openai, anthropic, ollama; use openai with --llm-base-url for Azure OpenAI, vLLM, llama.cpp and LM Studio)")]
    UnknownProvider(String),
    #[error("LLM endpoint `{url}`: {problem}")]
    BaseUrl { url: String, problem: String },
    #[error("{var} is not set: the {provider} API needs a key (or use --llm-dry-run to see the request)")]
    MissingKey {
        var: &'static str,
        provider: &'static str,
    },
    #[error("--{flag}: {problem}")]
    Value { flag: &'static str, problem: String },
    #[error("LLM cache directory {}: {source}", path.display())]
    CacheDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("HTTP client: {0}")]
    Client(String),
}
