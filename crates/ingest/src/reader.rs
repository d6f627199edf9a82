//! `AlertReader`: records from the framer, parsed into alerts or rejected with a reason.

use crate::error::{IngestError, Rejected};
use crate::framer::{FrameKind, Framer, DEFAULT_MAX_VALUE_BYTES};
use crate::shapes::{json_envelope, parse_text_line, salvage_broken_json};
use fa_model::Alert;
use serde_json::Value;
use std::io::BufRead;

/// Reads alerts from any buffered reader: JSON Lines, pretty-printed or concatenated JSON
/// values, a top-level JSON array (its elements are the alerts) and Falco plain-text lines,
/// mixed freely. Each item is one alert or one rejected record; reading goes on after a
/// rejection. An I/O error is the last item (`Rejected::is_fatal`).
///
/// Memory stays bounded: one line piece of at most 1 MiB plus one record of at most
/// `max_value_bytes` (default 16 MiB) are held at a time.
pub struct AlertReader<R> {
    framer: Framer<R>,
    origin: String,
}

impl<R: BufRead> AlertReader<R> {
    /// `origin` names the input in errors: a path, `<stdin>` or `<body>`.
    pub fn new(origin: impl Into<String>, reader: R) -> Self {
        AlertReader {
            framer: Framer::new(reader, DEFAULT_MAX_VALUE_BYTES),
            origin: origin.into(),
        }
    }

    /// Change the per-record size cap (bytes). Larger records are rejected as `TooLarge`.
    pub fn with_max_value_bytes(mut self, max: usize) -> Self {
        self.framer.set_max(max);
        self
    }

    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Bytes read so far (decompressed), for progress reporting.
    pub fn bytes_read(&self) -> u64 {
        self.framer.bytes_read()
    }

    /// The line the reader has reached (1-based).
    pub fn line(&self) -> u64 {
        self.framer.line()
    }

    /// Blank (empty or whitespace-only) lines skipped so far between records. They are not
    /// records, so they are neither alerts nor dead letters; this count accounts for them.
    pub fn blank_lines(&self) -> u64 {
        self.framer.blank_lines()
    }
}

impl<R: BufRead> std::iter::FusedIterator for AlertReader<R> {}

impl<R: BufRead> Iterator for AlertReader<R> {
    type Item = Result<Alert, Rejected>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let frame = self.framer.next_frame()?;
            let (line, col, bytes) = (frame.line, frame.col, frame.bytes);
            let result = match frame.kind {
                FrameKind::Candidate => {
                    // The fast path: one JSON Lines record parsed straight into an Alert.
                    if let Ok(alert) = alert_from_bytes(bytes) {
                        self.framer.accept();
                        return Some(Ok(alert));
                    }
                    self.framer.decline();
                    continue;
                }
                // A value that is not an alert may be a container or journal record holding
                // one; only when it is neither is the error worked out.
                FrameKind::Json => match alert_from_bytes(bytes) {
                    Ok(a) => Ok(a),
                    Err(fast) => json_envelope(bytes, line)
                        .or_else(|| salvage_broken_json(bytes))
                        .unwrap_or_else(|| Err(explain(bytes, line, col, fast))),
                },
                FrameKind::Text => match std::str::from_utf8(bytes) {
                    Ok(s) => parse_text_line(s, line),
                    Err(e) => Err(IngestError::InvalidUtf8 {
                        offset: e.valid_up_to(),
                    }),
                },
                FrameKind::Bad(e) => Err(e),
            };
            return Some(result.map_err(|error| Rejected {
                origin: self.origin.clone(),
                line,
                raw: bytes.to_vec(),
                error,
            }));
        }
    }
}

/// One JSON value into an alert. The record is checked as UTF-8 once, whole, and then parsed as
/// text: parsing bytes checks every string on its own, which on Falco's string-heavy records
/// costs several times more. Invalid UTF-8 goes the byte way, for serde_json's own error.
pub fn alert_from_bytes(bytes: &[u8]) -> Result<Alert, serde_json::Error> {
    match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str::<Alert>(text),
        Err(_) => serde_json::from_slice::<Alert>(bytes),
    }
}

/// Parse one complete JSON value (starting at `line`, 0-based column `col`) into an alert.
pub(crate) fn parse_json(bytes: &[u8], line: u64, col: u64) -> Result<Alert, IngestError> {
    match alert_from_bytes(bytes) {
        Ok(a) => Ok(a),
        Err(fast) => Err(explain(bytes, line, col, fast)),
    }
}

/// Work out, for the error report, what is wrong with a value the fast parse refused. Only
/// rejected records pay for this second parse.
fn explain(bytes: &[u8], line: u64, col: u64, fast: serde_json::Error) -> IngestError {
    if let Err(e) = std::str::from_utf8(bytes) {
        return IngestError::InvalidUtf8 {
            offset: e.valid_up_to(),
        };
    }
    match serde_json::from_slice::<Value>(bytes) {
        Err(e) => syntax(&e, line, col),
        Ok(Value::Object(map)) => match Alert::from_value(Value::Object(map)) {
            Err(e) => IngestError::Alert(e),
            // Both parsers agree on what is valid; keep the first one's message regardless.
            Ok(_) => syntax(&fast, line, col),
        },
        Ok(other) => IngestError::NotAnObject {
            found: kind_of(&other),
        },
    }
}

fn syntax(e: &serde_json::Error, line: u64, col: u64) -> IngestError {
    let rel_line = e.line().max(1) as u64;
    let column = if rel_line == 1 {
        col + e.column() as u64
    } else {
        e.column() as u64
    };
    let text = e.to_string();
    let message = match text.rfind(" at line ") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    IngestError::JsonSyntax {
        line: line + rel_line - 1,
        column,
        message,
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
