//! Templates (compiled in, HTML autoescape on every one) and the small helpers pages share.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use minijinja::{AutoEscape, Environment, Value};
use std::sync::OnceLock;

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/ui/base.html")),
    (
        "macros.html",
        include_str!("../../templates/ui/macros.html"),
    ),
    ("login.html", include_str!("../../templates/ui/login.html")),
    (
        "no_users.html",
        include_str!("../../templates/ui/no_users.html"),
    ),
    ("error.html", include_str!("../../templates/ui/error.html")),
    (
        "overview.html",
        include_str!("../../templates/ui/overview.html"),
    ),
    (
        "incidents.html",
        include_str!("../../templates/ui/incidents.html"),
    ),
    (
        "incident.html",
        include_str!("../../templates/ui/incident.html"),
    ),
    (
        "clusters.html",
        include_str!("../../templates/ui/clusters.html"),
    ),
    (
        "cluster.html",
        include_str!("../../templates/ui/cluster.html"),
    ),
    (
        "alerts.html",
        include_str!("../../templates/ui/alerts.html"),
    ),
    ("alert.html", include_str!("../../templates/ui/alert.html")),
    (
        "tuning.html",
        include_str!("../../templates/ui/tuning.html"),
    ),
    (
        "dead_letters.html",
        include_str!("../../templates/ui/dead_letters.html"),
    ),
];

fn env() -> Result<&'static Environment<'static>, String> {
    static ENV: OnceLock<Result<Environment<'static>, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        // Every template escapes for HTML whatever its name. The only values marked safe are
        // the charts, which are drawn from numbers and names of our own (chart.rs).
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        for (name, src) in TEMPLATES {
            env.add_template(name, src).map_err(|e| e.to_string())?;
        }
        Ok(env)
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Render a template into an HTML answer with `status`.
pub fn page(status: StatusCode, name: &str, ctx: Value) -> Response {
    let out = env().and_then(|e| {
        e.get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|e| format!("{e:#}"))
    });
    match out {
        Ok(html) => (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(template = name, error = %e, "console template failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "the page could not be rendered; see the service log",
            )
                .into_response()
        }
    }
}

/// Percent-encoding for a path segment or a query value: everything but RFC 3986's
/// unreserved characters.
pub fn enc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

/// `?k=v&...` of the non-empty pairs (empty string when none).
pub fn query(pairs: &[(&str, &str)]) -> String {
    let parts: Vec<String> = pairs
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.join("&"))
    }
}

pub fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

pub fn when_opt(t: Option<DateTime<Utc>>) -> String {
    t.map(when).unwrap_or_else(|| "—".into())
}

pub fn when_nanos(n: Option<i64>) -> String {
    when_opt(n.map(fa_store::from_nanos))
}

/// Raw bytes shown as text: valid UTF-8 as it is (escaped by the template), control
/// characters and invalid bytes as `\xNN`, so nothing invisible hides in a dead letter.
pub fn visible_bytes(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len());
    for chunk in raw.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() && c != '\n' && c != '\t' {
                out.push_str(&format!("\\x{:02x}", c as u32));
            } else if matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
            {
                // Zero-width and bidirectional controls: shown, not obeyed.
                out.push_str(&format!("\\u{{{:04x}}}", c as u32));
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_and_visible_bytes() {
        assert_eq!(enc("a b/c?d&e=f"), "a%20b%2Fc%3Fd%26e%3Df");
        assert_eq!(enc("javascript:x"), "javascript%3Ax");
        assert_eq!(
            query(&[("a", "1"), ("b", ""), ("c", "x y")]),
            "?a=1&c=x%20y"
        );
        assert_eq!(query(&[("b", "")]), "");
        assert_eq!(
            visible_bytes(b"ok\x1b[31m\xff\n\xe2\x80\xaeabc"),
            "ok\\x1b[31m\\xff\n\\u{202e}abc"
        );
    }

    #[test]
    fn every_template_parses() {
        env().unwrap();
    }
}
