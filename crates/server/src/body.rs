//! The pure part of reading an ingest body: decoding (identity or gzip, bounded) and parsing
//! within the request's budgets. No I/O, no server state: the fuzz targets include this file.

use fa_ingest::{AlertReader, IngestError, Rejected, BODY_ORIGIN};
use fa_model::{Alert, AlertError};
use std::io::Read;

/// A short, stable name for why a record was rejected (metrics label, dead-letter kind).
pub fn reason_kind(e: &IngestError) -> &'static str {
    match e {
        IngestError::Open { .. } | IngestError::Io(_) => "io",
        IngestError::JsonSyntax { .. } => "json_syntax",
        IngestError::Incomplete(_) => "incomplete",
        IngestError::TrailingCharacters { .. } => "trailing_characters",
        IngestError::NotAnObject { .. } => "not_an_object",
        IngestError::Alert(AlertError::Missing(_)) => "missing_field",
        IngestError::Alert(AlertError::Field { .. }) => "invalid_field",
        IngestError::TooLarge { .. } => "too_large",
        IngestError::InvalidUtf8 { .. } => "invalid_utf8",
        IngestError::UnrecognisedLine(_) => "unrecognised_line",
        IngestError::NotAnAlert(_) => "not_an_alert",
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    Ok(Vec<u8>),
    TooLarge,
    Bad(String),
    Unsupported(String),
}

/// A body as sent (`Content-Encoding` identity or gzip), decoded to at most `max` bytes.
pub fn decode(content_encoding: Option<&str>, raw: &[u8], max: usize) -> Decoded {
    let enc = content_encoding.unwrap_or("").trim().to_ascii_lowercase();
    match enc.as_str() {
        "" | "identity" => Decoded::Ok(raw.to_vec()),
        "gzip" | "x-gzip" => {
            // Read one byte past the limit to tell "exactly max" from "more" (zip bombs).
            let mut out = Vec::with_capacity(raw.len().saturating_mul(4).min(max));
            let mut d = flate2::read::MultiGzDecoder::new(raw).take(max as u64 + 1);
            match d.read_to_end(&mut out) {
                Ok(_) if out.len() > max => Decoded::TooLarge,
                Ok(_) => Decoded::Ok(out),
                Err(e) => Decoded::Bad(format!("the body is not valid gzip: {e}")),
            }
        }
        other => Decoded::Unsupported(other.to_string()),
    }
}

/// A body parsed within the request's budgets.
pub struct Parsed {
    pub alerts: Vec<Alert>,
    /// The first `ingest.max_dead_letters_per_request` rejected records.
    pub kept: Vec<Rejected>,
    /// Rejected records, kept or not, by reason.
    pub rejected_by_kind: Vec<(&'static str, u64)>,
    pub rejected: usize,
    /// More alerts than `ingest.max_alerts_per_request`: parsing stopped.
    pub too_many_alerts: bool,
}

/// Parse a decoded body, keeping at most `max_dead` rejected records (the rest are counted)
/// and stopping past `max_alerts` alerts: memory follows the limits, not the line count.
pub fn parse_limited(bytes: &[u8], max_dead: usize, max_alerts: usize) -> Parsed {
    let mut p = Parsed {
        alerts: Vec::new(),
        kept: Vec::new(),
        rejected_by_kind: Vec::new(),
        rejected: 0,
        too_many_alerts: false,
    };
    for item in AlertReader::new(BODY_ORIGIN, bytes) {
        match item {
            Ok(a) => {
                if p.alerts.len() >= max_alerts {
                    p.too_many_alerts = true;
                    break;
                }
                p.alerts.push(a);
            }
            Err(r) => {
                p.rejected += 1;
                let kind = reason_kind(&r.error);
                match p.rejected_by_kind.iter_mut().find(|(k, _)| *k == kind) {
                    Some((_, n)) => *n += 1,
                    None => p.rejected_by_kind.push((kind, 1)),
                }
                if p.kept.len() < max_dead {
                    p.kept.push(r);
                }
            }
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_million_bad_lines_keep_only_the_first_dead_letters_and_count_the_rest() {
        let body = "x\n".repeat(200_000);
        let p = parse_limited(body.as_bytes(), 100, 10);
        assert_eq!(p.kept.len(), 100);
        assert_eq!(p.rejected, 200_000);
        assert_eq!(p.rejected_by_kind, vec![("unrecognised_line", 200_000)]);
        assert_eq!(p.kept[99].line, 100);
        assert!(p.alerts.is_empty() && !p.too_many_alerts);
    }

    #[test]
    fn parsing_stops_past_the_alert_limit() {
        let one = r#"{"rule":"R","priority":"Notice","output":"x","output_fields":{}}"#;
        let body = format!("{one}\n").repeat(5);
        let p = parse_limited(body.as_bytes(), 10, 4);
        assert!(p.too_many_alerts);
        assert_eq!(p.alerts.len(), 4);
        let p = parse_limited(body.as_bytes(), 10, 5);
        assert!(!p.too_many_alerts);
        assert_eq!(p.alerts.len(), 5);
    }

    #[test]
    fn gzip_is_decoded_up_to_the_limit() {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&[b'a'; 2000]).unwrap();
        let gz = e.finish().unwrap();
        assert_eq!(
            decode(Some("gzip"), &gz, 2000),
            Decoded::Ok(vec![b'a'; 2000])
        );
        assert_eq!(decode(Some(" GZIP "), &gz, 1999), Decoded::TooLarge);
        assert!(matches!(decode(Some("gzip"), b"nope", 10), Decoded::Bad(_)));
        assert_eq!(
            decode(Some("br"), b"x", 10),
            Decoded::Unsupported("br".into())
        );
        assert_eq!(decode(None, b"x", 10), Decoded::Ok(b"x".to_vec()));
    }
}
