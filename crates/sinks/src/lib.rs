//! Sinks: where finished reports go. `StreamSink` writes to any `Write` (stdout), `DirSink`
//! writes one file per report. Notifiers (Slack, webhooks) live in `notify`.

pub mod notify;
mod threaded;

pub use threaded::ThreadedSink;

use fa_model::{IncidentReport, Report, SummaryReport};
use fa_report::Format;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Something that takes finished reports.
pub trait ReportSink {
    fn report(&mut self, r: &Report) -> io::Result<()>;
    /// [`ReportSink::report`] for a report the caller is done with (a sink on another thread
    /// takes it without a copy).
    fn report_owned(&mut self, r: Report) -> io::Result<()> {
        self.report(&r)
    }
    fn incident(&mut self, r: &IncidentReport) -> io::Result<()>;
    fn summary(&mut self, s: &SummaryReport) -> io::Result<()>;
    fn finish(&mut self) -> io::Result<()>;
    /// Reports (of any kind) written so far.
    fn written(&self) -> u64;
}

/// JSON Lines need a discriminator when alert, incident and summary reports share a stream:
/// `{"type":"alert_report",...}`. Written by splicing, so the report is serialised once.
fn json_line<W: Write, T: serde::Serialize>(
    w: &mut W,
    kind: &str,
    v: &T,
    buf: &mut Vec<u8>,
) -> io::Result<()> {
    buf.clear();
    serde_json::to_writer(&mut *buf, v).map_err(io::Error::other)?;
    w.write_all(b"{\"type\":\"")?;
    w.write_all(kind.as_bytes())?;
    w.write_all(b"\",")?;
    w.write_all(buf.get(1..).unwrap_or_default())?;
    w.write_all(b"\n")
}

/// Reports to one stream: JSON Lines, Markdown separated by rules, or (HTML) one page
/// holding every report, written when the run finishes.
pub struct StreamSink<W: Write> {
    w: W,
    format: Format,
    written: u64,
    buf: Vec<u8>,
    html_reports: Vec<Report>,
    html_incidents: Vec<IncidentReport>,
    html_summary: Option<SummaryReport>,
}

impl<W: Write> StreamSink<W> {
    pub fn new(w: W, format: Format) -> Self {
        StreamSink {
            w,
            format,
            written: 0,
            buf: Vec::with_capacity(16 * 1024),
            html_reports: Vec::new(),
            html_incidents: Vec::new(),
            html_summary: None,
        }
    }

    fn separator(&mut self) -> io::Result<()> {
        if self.written > 0 && self.format == Format::Markdown {
            self.w.write_all(b"\n---\n\n")?;
        }
        Ok(())
    }

    pub fn into_inner(self) -> W {
        self.w
    }
}

impl<W: Write> ReportSink for StreamSink<W> {
    fn report(&mut self, r: &Report) -> io::Result<()> {
        match self.format {
            Format::Json => json_line(&mut self.w, "alert_report", r, &mut self.buf)?,
            Format::Markdown => {
                self.separator()?;
                self.w
                    .write_all(fa_report::render(r, Format::Markdown).as_bytes())?;
            }
            Format::Html => self.html_reports.push(r.clone()),
        }
        self.written += 1;
        Ok(())
    }

    fn incident(&mut self, r: &IncidentReport) -> io::Result<()> {
        match self.format {
            Format::Json => json_line(&mut self.w, "incident_report", r, &mut self.buf)?,
            Format::Markdown => {
                self.separator()?;
                self.w
                    .write_all(fa_report::render_incident(r, Format::Markdown).as_bytes())?;
            }
            Format::Html => self.html_incidents.push(r.clone()),
        }
        self.written += 1;
        Ok(())
    }

    fn summary(&mut self, s: &SummaryReport) -> io::Result<()> {
        match self.format {
            Format::Json => json_line(&mut self.w, "summary_report", s, &mut self.buf)?,
            Format::Markdown => {
                self.separator()?;
                self.w
                    .write_all(fa_report::render_summary(s, Format::Markdown).as_bytes())?;
            }
            Format::Html => self.html_summary = Some(s.clone()),
        }
        self.written += 1;
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        if self.format == Format::Html && self.written > 0 {
            let page = fa_report::render_html_bundle(
                self.html_summary.as_ref(),
                &self.html_reports,
                &self.html_incidents,
            );
            self.w.write_all(page.as_bytes())?;
        }
        self.w.flush()
    }

    fn written(&self) -> u64 {
        self.written
    }
}

/// One file per report under a directory: `<id>.<ext>`, `incident-<id>.<ext>`, `summary.<ext>`.
/// Ids are the alert's uuid only when it is filename-safe, else a content hash (see `Alert::report_id`).
pub struct DirSink {
    dir: PathBuf,
    format: Format,
    written: u64,
}

impl DirSink {
    pub fn create(dir: &Path, format: Format) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        Ok(DirSink {
            dir: dir.to_path_buf(),
            format,
            written: 0,
        })
    }

    fn ext(&self) -> &'static str {
        match self.format {
            Format::Markdown => "md",
            Format::Json => "json",
            Format::Html => "html",
        }
    }

    fn write_file(&mut self, name: &str, body: &str) -> io::Result<()> {
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let path = self.dir.join(format!("{safe}.{}", self.ext()));
        // Write then rename: a reader never sees half a report.
        let tmp = self.dir.join(format!(".{safe}.{}.tmp", self.ext()));
        fs::write(&tmp, body)?;
        fs::rename(&tmp, &path)?;
        self.written += 1;
        Ok(())
    }
}

impl ReportSink for DirSink {
    fn report(&mut self, r: &Report) -> io::Result<()> {
        let body = fa_report::render_pretty(r, self.format);
        self.write_file(&r.id.clone(), &body)
    }

    fn incident(&mut self, r: &IncidentReport) -> io::Result<()> {
        let body = fa_report::render_incident(r, self.format);
        self.write_file(&format!("incident-{}", r.id), &body)
    }

    fn summary(&mut self, s: &SummaryReport) -> io::Result<()> {
        let body = fa_report::render_summary(s, self.format);
        self.write_file("summary", &body)
    }

    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn written(&self) -> u64 {
        self.written
    }
}
