//! Renderers for the Alert Analysis Report (`fa_model::Report`) and the incident report
//! (`fa_model::IncidentReport`): Markdown, JSON and HTML.
//!
//! Alert content is attacker-chosen. Markdown escapes it and strips terminal control sequences
//! (it is read in terminals); HTML escapes it through minijinja's autoescape and ships a strict
//! Content-Security-Policy; JSON is the model's serde form, verbatim (documented in
//! `docs/report-schema.md`): whoever displays JSON values must escape them.

mod html;
mod markdown;
pub mod sanitize;
mod summary;
mod view;

use fa_model::{IncidentReport, Report};
use std::fmt;
use std::io::{self, Write};
use std::str::FromStr;

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Markdown,
    Json,
    Html,
}

impl Format {
    pub const ALL: [Format; 3] = [Format::Markdown, Format::Json, Format::Html];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Markdown => "markdown",
            Format::Json => "json",
            Format::Html => "html",
        }
    }

    /// File extension for one report in this format (without the dot).
    pub fn extension(self) -> &'static str {
        match self {
            Format::Markdown => "md",
            Format::Json => "json",
            Format::Html => "html",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format `{0}` (expected markdown, json or html)")]
pub struct UnknownFormat(pub String);

impl FromStr for Format {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let is = |names: &[&str]| names.iter().any(|n| t.eq_ignore_ascii_case(n));
        if is(&["markdown", "md"]) {
            Ok(Format::Markdown)
        } else if is(&["json", "jsonl", "ndjson"]) {
            Ok(Format::Json)
        } else if is(&["html", "htm"]) {
            Ok(Format::Html)
        } else {
            Err(UnknownFormat(s.to_string()))
        }
    }
}

/// How JSON is laid out; Markdown and HTML ignore it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// One line, no trailing newline from `render`; `write_*` add one (JSON Lines).
    Compact,
    /// Indented, for a single file.
    Pretty,
}

fn json<T: serde::Serialize>(value: &T, layout: Layout) -> String {
    let r = match layout {
        Layout::Compact => serde_json::to_string(value),
        Layout::Pretty => serde_json::to_string_pretty(value),
    };
    // The model types serialize infallibly (string keys, no non-finite floats: `Confidence`
    // clamps, scores come from finite arithmetic); should one ever fail, say so as JSON.
    r.unwrap_or_else(|e| {
        serde_json::json!({ "error": format!("report serialization failed: {e}") }).to_string()
    })
}

fn render_report(report: &Report, format: Format, layout: Layout) -> String {
    match format {
        Format::Markdown => markdown::report(report),
        Format::Json => json(report, layout),
        Format::Html => html::report(report).unwrap_or_else(|e| html::error_page(&e)),
    }
}

fn render_incident_with(incident: &IncidentReport, format: Format, layout: Layout) -> String {
    match format {
        Format::Markdown => markdown::incident(incident),
        Format::Json => json(incident, layout),
        Format::Html => html::incident(incident).unwrap_or_else(|e| html::error_page(&e)),
    }
}

/// The report in `format`. JSON is compact (one line, no trailing newline).
pub fn render(report: &Report, format: Format) -> String {
    render_report(report, format, Layout::Compact)
}

/// The report in `format`, JSON indented for a single file.
pub fn render_pretty(report: &Report, format: Format) -> String {
    render_report(report, format, Layout::Pretty)
}

/// An incident report in `format`. JSON is compact (one line, no trailing newline).
pub fn render_incident(incident: &IncidentReport, format: Format) -> String {
    render_incident_with(incident, format, Layout::Compact)
}

/// An incident report in `format`, JSON indented.
pub fn render_incident_pretty(incident: &IncidentReport, format: Format) -> String {
    render_incident_with(incident, format, Layout::Pretty)
}

/// The storm summary (`analyze --summary`) in `format`.
pub fn render_summary(summary: &fa_model::SummaryReport, format: Format) -> String {
    summary::render(summary, format)
}

/// One HTML page with the summary (if any), every report and every incident.
pub fn render_html_bundle(
    summary: Option<&fa_model::SummaryReport>,
    reports: &[Report],
    incidents: &[IncidentReport],
) -> String {
    summary::html_bundle(summary, reports, incidents)
}

/// Write one report for a stream: JSON as one compact line ending in `\n` (JSON Lines);
/// Markdown and HTML as a whole document.
pub fn write_report<W: Write>(mut w: W, report: &Report, format: Format) -> io::Result<()> {
    match format {
        Format::Json => {
            serde_json::to_writer(&mut w, report).map_err(io::Error::other)?;
            w.write_all(b"\n")
        }
        Format::Html => {
            let page = html::report(report).map_err(io::Error::other)?;
            w.write_all(page.as_bytes())
        }
        Format::Markdown => w.write_all(markdown::report(report).as_bytes()),
    }
}

/// Write one report to a file of its own: JSON indented, ending in `\n`.
pub fn write_report_pretty<W: Write>(mut w: W, report: &Report, format: Format) -> io::Result<()> {
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut w, report).map_err(io::Error::other)?;
            w.write_all(b"\n")
        }
        _ => write_report(w, report, format),
    }
}

/// Write one incident report for a stream (JSON: one compact line ending in `\n`).
pub fn write_incident<W: Write>(
    mut w: W,
    incident: &IncidentReport,
    format: Format,
) -> io::Result<()> {
    match format {
        Format::Json => {
            serde_json::to_writer(&mut w, incident).map_err(io::Error::other)?;
            w.write_all(b"\n")
        }
        Format::Html => {
            let page = html::incident(incident).map_err(io::Error::other)?;
            w.write_all(page.as_bytes())
        }
        Format::Markdown => w.write_all(markdown::incident(incident).as_bytes()),
    }
}

/// Write one incident report to a file of its own (JSON indented, ending in `\n`).
pub fn write_incident_pretty<W: Write>(
    mut w: W,
    incident: &IncidentReport,
    format: Format,
) -> io::Result<()> {
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut w, incident).map_err(io::Error::other)?;
            w.write_all(b"\n")
        }
        _ => write_incident(w, incident, format),
    }
}

/// The Content-Security-Policy every HTML page carries, for servers that also want to send it
/// as a header.
pub fn html_content_security_policy() -> String {
    html::csp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use sha2::Digest as _;

    #[test]
    fn format_parses_names_and_aliases() {
        for f in Format::ALL {
            assert_eq!(f.as_str().parse::<Format>(), Ok(f));
            assert_eq!(f.to_string().to_uppercase().parse::<Format>(), Ok(f));
        }
        assert_eq!("md".parse::<Format>(), Ok(Format::Markdown));
        assert_eq!("jsonl".parse::<Format>(), Ok(Format::Json));
        assert_eq!(" htm ".parse::<Format>(), Ok(Format::Html));
        assert!("pdf"
            .parse::<Format>()
            .unwrap_err()
            .to_string()
            .contains("pdf"));
    }

    #[test]
    fn style_hash_in_csp_matches_the_stylesheet() {
        let digest = sha2::Sha256::digest(html::CSS.trim_end_matches('\n').as_bytes());
        let hash = format!(
            "sha256-{}",
            base64::engine::general_purpose::STANDARD.encode(digest)
        );
        assert_eq!(
            hash,
            html::STYLE_HASH,
            "update STYLE_HASH after editing style.css"
        );
        assert!(html::csp().starts_with("default-src 'none'; style-src 'sha256-"));
    }

    #[test]
    fn error_page_escapes() {
        let p = html::error_page("<script>x</script>\u{1b}[31m");
        assert!(!p.contains("<script>"));
        assert!(!p.contains('\u{1b}'));
    }
}
