//! The OpenAI-compatible `POST /v1/chat/completions`: OpenAI, Azure OpenAI (by base URL),
//! Ollama, vLLM, llama.cpp server, LM Studio.

use super::{
    join_url, parse_json, short, HttpRequest, Provider, Reply, ReplyError, StructuredMode,
};
use crate::config::{LlmConfig, ProviderKind};
use crate::prompt::{answer_schema, Prompt};
use serde_json::{json, Value};

#[derive(Debug, Clone)]
pub struct OpenAiCompatible {
    name: &'static str,
    model: String,
    url: String,
    key: Option<crate::config::ApiKey>,
    /// Azure deployments read the key from `api-key`; OpenAI and the rest from a bearer token.
    azure: bool,
    /// OpenAI's own API (and Azure) name the answer limit `max_completion_tokens` and reject
    /// `max_tokens` for reasoning models; local servers know `max_tokens`.
    completion_tokens_field: bool,
}

impl OpenAiCompatible {
    pub fn new(cfg: &LlmConfig) -> Self {
        let host = cfg.base_url.host_str().unwrap_or("").to_ascii_lowercase();
        let azure = host.ends_with(".azure.com") || host.ends_with(".azure-api.net");
        OpenAiCompatible {
            name: if cfg.provider == ProviderKind::Ollama {
                "ollama"
            } else {
                "openai"
            },
            model: cfg.model.clone(),
            url: join_url(&cfg.base_url, "/v1/chat/completions", "/chat/completions"),
            key: cfg.api_key.clone(),
            azure,
            completion_tokens_field: host == "api.openai.com" || azure,
        }
    }
}

impl Provider for OpenAiCompatible {
    fn name(&self) -> &str {
        self.name
    }

    fn model(&self) -> &str {
        &self.model
    }

    fn request(&self, prompt: &Prompt, max_tokens: u32, mode: StructuredMode) -> HttpRequest {
        let (user, response_format) = match mode {
            StructuredMode::Schema => (
                prompt.user.clone(),
                json!({
                    "type": "json_schema",
                    "json_schema": { "name": "alert_narrative", "strict": true, "schema": answer_schema() }
                }),
            ),
            StructuredMode::JsonObject => (
                format!(
                    "{}\nThe JSON object must match this JSON Schema:\n{}\n",
                    prompt.user,
                    serde_json::to_string(&answer_schema()).unwrap_or_default()
                ),
                json!({ "type": "json_object" }),
            ),
        };
        let mut body = json!({
            "model": self.model,
            "messages": [
                { "role": "system", "content": prompt.system },
                { "role": "user", "content": user },
            ],
            "response_format": response_format,
            "stream": false,
        });
        let limit_field = if self.completion_tokens_field {
            "max_completion_tokens"
        } else {
            "max_tokens"
        };
        body[limit_field] = json!(max_tokens);
        let mut secret_headers = Vec::new();
        if let Some(k) = &self.key {
            secret_headers.push((
                "authorization".to_string(),
                format!("Bearer {}", k.expose()),
            ));
            if self.azure {
                secret_headers.push(("api-key".to_string(), k.expose().to_string()));
            }
        }
        HttpRequest {
            url: self.url.clone(),
            headers: vec![("content-type".into(), "application/json".into())],
            secret_headers,
            body: serde_json::to_string_pretty(&body).unwrap_or_default(),
        }
    }

    fn reply(&self, body: &[u8]) -> Result<Reply, ReplyError> {
        let v = parse_json(body)?;
        let tokens = v["usage"]["total_tokens"].as_u64().or_else(|| {
            Some(v["usage"]["prompt_tokens"].as_u64()? + v["usage"]["completion_tokens"].as_u64()?)
        });
        let choice = v["choices"].get(0).ok_or(ReplyError::Empty)?;
        let msg = &choice["message"];
        if let Some(r) = msg["refusal"].as_str().filter(|r| !r.is_empty()) {
            return Err(ReplyError::Refused(short(r)));
        }
        if choice["finish_reason"].as_str() == Some("length") {
            return Err(ReplyError::Truncated);
        }
        let text = match &msg["content"] {
            Value::String(s) => s.clone(),
            // Some servers return content parts.
            Value::Array(parts) => parts
                .iter()
                .filter_map(|p| p["text"].as_str())
                .collect::<Vec<_>>()
                .join(""),
            _ => String::new(),
        };
        if text.trim().is_empty() {
            return Err(ReplyError::Empty);
        }
        Ok(Reply { text, tokens })
    }

    fn fallback_mode(
        &self,
        mode: StructuredMode,
        status: u16,
        _body: &str,
    ) -> Option<StructuredMode> {
        // Servers word the rejection of `json_schema` differently (or not at all): any 400, 422
        // or 501 to a schema request gets one try in `json_object` mode.
        (mode == StructuredMode::Schema && matches!(status, 400 | 422 | 501))
            .then_some(StructuredMode::JsonObject)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ApiKey;
    use crate::redact::Placeholders;

    fn prompt() -> Prompt {
        Prompt {
            system: "sys".into(),
            user: "usr".into(),
            placeholders: Placeholders::default(),
        }
    }

    #[test]
    fn schema_request_shape() {
        let mut cfg = LlmConfig::new(
            ProviderKind::OpenAi,
            "gpt-4o-mini",
            "https://api.openai.com/v1",
        )
        .unwrap();
        cfg.api_key = Some(ApiKey::new("sk-abc"));
        let p = OpenAiCompatible::new(&cfg);
        let r = p.request(&prompt(), 900, StructuredMode::Schema);
        assert_eq!(r.url, "https://api.openai.com/v1/chat/completions");
        let body: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(body["response_format"]["type"], "json_schema");
        assert_eq!(body["response_format"]["json_schema"]["strict"], true);
        assert_eq!(
            body["response_format"]["json_schema"]["schema"],
            answer_schema()
        );
        assert_eq!(body["max_completion_tokens"], 900);
        assert_eq!(body["messages"][0]["role"], "system");
        assert!(!r.display_masked().contains("sk-abc"));
        assert_eq!(
            r.secret_headers,
            vec![("authorization".to_string(), "Bearer sk-abc".to_string())]
        );
    }

    #[test]
    fn json_object_mode_puts_the_schema_in_the_prompt() {
        let cfg =
            LlmConfig::new(ProviderKind::Ollama, "llama3.1", "http://127.0.0.1:11434").unwrap();
        let p = OpenAiCompatible::new(&cfg);
        let body: Value =
            serde_json::from_str(&p.request(&prompt(), 10, StructuredMode::JsonObject).body)
                .unwrap();
        assert_eq!(body["response_format"], json!({"type": "json_object"}));
        assert!(body["messages"][1]["content"]
            .as_str()
            .unwrap()
            .contains("\"next_steps\""));
        assert_eq!(body["max_tokens"], 10);
        assert_eq!(p.name(), "ollama");
        assert_eq!(
            p.fallback_mode(StructuredMode::Schema, 400, ""),
            Some(StructuredMode::JsonObject)
        );
        assert_eq!(p.fallback_mode(StructuredMode::JsonObject, 400, ""), None);
        assert_eq!(p.fallback_mode(StructuredMode::Schema, 401, ""), None);
    }

    #[test]
    fn azure_gets_the_api_key_header() {
        let mut cfg = LlmConfig::new(
            ProviderKind::OpenAi,
            "dep",
            "https://r.openai.azure.com/openai/v1",
        )
        .unwrap();
        cfg.api_key = Some(ApiKey::new("k"));
        let r = OpenAiCompatible::new(&cfg).request(&prompt(), 10, StructuredMode::Schema);
        assert!(r
            .secret_headers
            .iter()
            .any(|(h, v)| h == "api-key" && v == "k"));
    }

    #[test]
    fn replies() {
        let cfg = LlmConfig::new(ProviderKind::OpenAi, "m", "http://127.0.0.1:1/v1").unwrap();
        let p = OpenAiCompatible::new(&cfg);
        let ok = br#"{"choices":[{"message":{"content":"{\"a\":1}"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":7}}"#;
        assert_eq!(
            p.reply(ok).unwrap(),
            Reply {
                text: "{\"a\":1}".into(),
                tokens: Some(12)
            }
        );
        let cut = br#"{"choices":[{"message":{"content":"{"},"finish_reason":"length"}]}"#;
        assert_eq!(p.reply(cut), Err(ReplyError::Truncated));
        let refused = br#"{"choices":[{"message":{"content":null,"refusal":"no"}}]}"#;
        assert!(matches!(p.reply(refused), Err(ReplyError::Refused(_))));
        assert!(matches!(p.reply(b"<html>"), Err(ReplyError::Envelope(_))));
        assert_eq!(p.reply(br#"{"choices":[]}"#), Err(ReplyError::Empty));
    }
}
