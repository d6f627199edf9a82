//! HTML: one standalone page per report (inline CSS, no scripts, no external resources), rendered
//! with minijinja with HTML autoescape on for every template, so every piece of alert content is
//! escaped. A strict Content-Security-Policy allows nothing but the page's own stylesheet.

use crate::view::{IncidentView, ReportView};
use fa_model::{IncidentReport, Report};
use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use std::sync::OnceLock;

pub(crate) const CSS: &str = include_str!("../templates/style.css");

/// `sha256-` of `CSS` with its trailing newline trimmed (exactly what sits between the `<style>`
/// tags). A test recomputes it; change it whenever style.css changes.
pub(crate) const STYLE_HASH: &str = "sha256-bXGmHk2aymth+Us1e+O71onuzRAp4AlMUCxfw4DKB9A=";

/// No scripts, images, fonts, frames, connections, forms or base changes; only the inline style
/// whose hash is listed. (`frame-ancestors` cannot be set from a meta tag.)
pub(crate) fn csp() -> String {
    format!("default-src 'none'; style-src '{STYLE_HASH}'; base-uri 'none'; form-action 'none'")
}

fn env() -> Result<&'static Environment<'static>, String> {
    static BASE: OnceLock<String> = OnceLock::new();
    static ENV: OnceLock<Result<Environment<'static>, String>> = OnceLock::new();
    let base = BASE.get_or_init(|| {
        include_str!("../templates/base.html")
            .replace("__CSP__", &csp())
            .replace("__CSS__", CSS.trim_end_matches('\n'))
    });
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        // Every template escapes for HTML, whatever its name; nothing is ever marked safe.
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        // A misspelt field in a template is an error in tests, not a silently empty section.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.add_template("base.html", base)
            .map_err(|e| e.to_string())?;
        env.add_template("macros.html", include_str!("../templates/macros.html"))
            .map_err(|e| e.to_string())?;
        env.add_template("report.html", include_str!("../templates/report.html"))
            .map_err(|e| e.to_string())?;
        env.add_template("incident.html", include_str!("../templates/incident.html"))
            .map_err(|e| e.to_string())?;
        env.add_template("summary.html", include_str!("../templates/summary.html"))
            .map_err(|e| e.to_string())?;
        Ok(env)
    })
    .as_ref()
    .map_err(Clone::clone)
}

fn render_template<S: serde::Serialize>(name: &str, ctx: &S) -> Result<String, String> {
    let env = env()?;
    let tmpl = env.get_template(name).map_err(|e| e.to_string())?;
    let mut out = tmpl
        .render(minijinja::Value::from_serialize(ctx))
        .map_err(|e| e.to_string())?;
    out.push('\n');
    Ok(out)
}

pub fn report(r: &Report) -> Result<String, String> {
    render_template("report.html", &ReportView::new(r))
}

pub fn summary(s: &fa_model::SummaryReport) -> Result<String, String> {
    render_template("summary.html", s)
}

pub fn incident(i: &IncidentReport) -> Result<String, String> {
    render_template("incident.html", &IncidentView::new(i))
}

/// A page saying the report could not be rendered; only reached if a built-in template is broken.
pub fn error_page(message: &str) -> String {
    let mut escaped = String::with_capacity(message.len());
    for c in crate::sanitize::strip_controls(message).chars() {
        match c {
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '&' => escaped.push_str("&amp;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'\">\
         <title>Report rendering failed</title></head><body><p>Report rendering failed: {escaped}</p></body></html>\n"
    )
}
