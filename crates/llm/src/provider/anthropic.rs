//! The Anthropic Messages API (`POST /v1/messages`), the answer forced through a tool call
//! whose `input_schema` is the answer schema.

use super::{
    join_url, parse_json, short, HttpRequest, Provider, Reply, ReplyError, StructuredMode,
};
use crate::config::LlmConfig;
use crate::prompt::{answer_schema, Prompt};
use serde_json::json;

const TOOL: &str = "write_alert_narrative";
const API_VERSION: &str = "2023-06-01";

#[derive(Debug, Clone)]
pub struct Anthropic {
    model: String,
    url: String,
    key: Option<crate::config::ApiKey>,
}

impl Anthropic {
    pub fn new(cfg: &LlmConfig) -> Self {
        Anthropic {
            model: cfg.model.clone(),
            url: join_url(&cfg.base_url, "/v1/messages", "/messages"),
            key: cfg.api_key.clone(),
        }
    }
}

impl Provider for Anthropic {
    fn name(&self) -> &str {
        "anthropic"
    }

    fn model(&self) -> &str {
        &self.model
    }

    fn request(&self, prompt: &Prompt, max_tokens: u32, _mode: StructuredMode) -> HttpRequest {
        let body = json!({
            "model": self.model,
            "max_tokens": max_tokens,
            "system": prompt.system,
            "messages": [ { "role": "user", "content": prompt.user } ],
            "tools": [ {
                "name": TOOL,
                "description": "Record the narrative for the alert analysis report.",
                "input_schema": answer_schema(),
            } ],
            "tool_choice": { "type": "tool", "name": TOOL },
        });
        let secret_headers = self
            .key
            .iter()
            .map(|k| ("x-api-key".to_string(), k.expose().to_string()))
            .collect();
        HttpRequest {
            url: self.url.clone(),
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("anthropic-version".into(), API_VERSION.into()),
            ],
            secret_headers,
            body: serde_json::to_string_pretty(&body).unwrap_or_default(),
        }
    }

    fn reply(&self, body: &[u8]) -> Result<Reply, ReplyError> {
        let v = parse_json(body)?;
        let tokens = match (
            v["usage"]["input_tokens"].as_u64(),
            v["usage"]["output_tokens"].as_u64(),
        ) {
            (Some(i), Some(o)) => Some(i + o),
            _ => None,
        };
        match v["stop_reason"].as_str() {
            Some("max_tokens") => return Err(ReplyError::Truncated),
            Some("refusal") => return Err(ReplyError::Refused("stop_reason refusal".into())),
            _ => {}
        }
        let blocks = v["content"]
            .as_array()
            .ok_or_else(|| ReplyError::Envelope(short(&v.to_string())))?;
        if let Some(tool) = blocks
            .iter()
            .find(|b| b["type"] == "tool_use" && b["name"] == TOOL)
        {
            return Ok(Reply {
                text: tool["input"].to_string(),
                tokens,
            });
        }
        // A model that answered in text instead of the tool: its text still has to parse.
        let text: String = blocks
            .iter()
            .filter(|b| b["type"] == "text")
            .filter_map(|b| b["text"].as_str())
            .collect();
        if text.trim().is_empty() {
            return Err(ReplyError::Empty);
        }
        Ok(Reply { text, tokens })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ApiKey, ProviderKind};
    use crate::redact::Placeholders;
    use serde_json::Value;

    #[test]
    fn forced_tool_call_with_the_schema() {
        let mut cfg = LlmConfig::new(
            ProviderKind::Anthropic,
            "claude-x",
            "https://api.anthropic.com",
        )
        .unwrap();
        cfg.api_key = Some(ApiKey::new("ak"));
        let p = Anthropic::new(&cfg);
        let prompt = Prompt {
            system: "s".into(),
            user: "u".into(),
            placeholders: Placeholders::default(),
        };
        let r = p.request(&prompt, 700, StructuredMode::Schema);
        assert_eq!(r.url, "https://api.anthropic.com/v1/messages");
        let b: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(b["tool_choice"], json!({"type": "tool", "name": TOOL}));
        assert_eq!(b["tools"][0]["input_schema"], answer_schema());
        assert_eq!(b["system"], "s");
        assert_eq!(b["max_tokens"], 700);
        assert!(r
            .headers
            .iter()
            .any(|(k, v)| k == "anthropic-version" && v == API_VERSION));
        assert_eq!(
            r.secret_headers,
            vec![("x-api-key".to_string(), "ak".to_string())]
        );
    }

    #[test]
    fn replies() {
        let cfg = LlmConfig::new(ProviderKind::Anthropic, "m", "http://127.0.0.1:1").unwrap();
        let p = Anthropic::new(&cfg);
        let ok = format!(
            r#"{{"content":[{{"type":"tool_use","id":"t","name":"{TOOL}","input":{{"summary":"s"}}}}],"stop_reason":"tool_use","usage":{{"input_tokens":3,"output_tokens":4}}}}"#
        );
        assert_eq!(
            p.reply(ok.as_bytes()).unwrap(),
            Reply {
                text: r#"{"summary":"s"}"#.into(),
                tokens: Some(7)
            }
        );
        assert_eq!(
            p.reply(br#"{"content":[],"stop_reason":"max_tokens"}"#),
            Err(ReplyError::Truncated)
        );
        assert_eq!(p.reply(br#"{"content":[]}"#), Err(ReplyError::Empty));
        assert!(matches!(
            p.reply(br#"{"type":"error"}"#),
            Err(ReplyError::Envelope(_))
        ));
    }
}
