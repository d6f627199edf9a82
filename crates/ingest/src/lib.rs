//! Reading Falco alerts from files, standard input and HTTP bodies.
//!
//! Every shape Falco and Falcosidekick write is accepted, in any mix: `json_output` lines
//! (JSON Lines), `http_output` bodies and Falcosidekick webhook payloads (one object), a JSON
//! array of alerts (pretty-printed or not), JSON values concatenated on one line or back to
//! back, gzip-compressed input (detected by its magic bytes) and Falco's plain-text lines of
//! every version, also inside the envelopes logs put around them: syslog and journal prefixes
//! (RFC 3164, RFC 3339, RFC 5424), `journalctl -o json` records, `kubectl logs
//! --timestamps`/`--prefix`, CRI and Docker json-file container logs, `docker compose logs`.
//!
//! Lines that are not alerts are never lost silently: a blank line is skipped and counted
//! ([`AlertReader::blank_lines`]); Falco's own log lines and end-of-run statistics are rejected
//! as [`IngestError::NotAnAlert`], so they reach the dead letters with that reason.
//!
//! ```
//! use fa_ingest::AlertReader;
//! let input = br#"{"rule":"Terminal shell in container","priority":"Notice","output_fields":{}}
//! 23:50:54.719348051: Error Something (user=root)
//! {"rule": "truncated
//! "#;
//! let (alerts, rejected): (Vec<_>, Vec<_>) = AlertReader::new("demo", &input[..]).partition(Result::is_ok);
//! assert_eq!(alerts.len(), 2);
//! assert_eq!(rejected.len(), 1);
//! assert!(rejected[0].as_ref().unwrap_err().to_string().starts_with("demo:3: "));
//! ```
//!
//! Records that cannot be read are returned as [`Rejected`] (origin, line, raw bytes, typed
//! [`IngestError`]) and can be kept with a [`DeadLetterWriter`].

mod deadletter;
mod error;
mod framer;
mod input;
mod plain;
mod reader;
mod shapes;

pub use deadletter::DeadLetterWriter;
pub use error::{Incomplete, IngestError, NonAlert, Rejected};
pub use framer::DEFAULT_MAX_VALUE_BYTES;
pub use input::{open_input, Input, Progress};
pub use plain::parse_plain_line;
pub use reader::{alert_from_bytes, AlertReader};

use fa_model::Alert;

/// Origin used for records read by [`parse_body`].
pub const BODY_ORIGIN: &str = "<body>";

/// Parse an HTTP request body: one alert object (Falco `http_output`, a Falcosidekick
/// webhook), a JSON array of alerts, JSON Lines or concatenated values (plain-text lines too).
/// The body must already be decompressed.
pub fn parse_body(bytes: &[u8]) -> (Vec<Alert>, Vec<Rejected>) {
    let mut alerts = Vec::new();
    let mut rejected = Vec::new();
    for item in AlertReader::new(BODY_ORIGIN, bytes) {
        match item {
            Ok(a) => alerts.push(a),
            Err(r) => rejected.push(r),
        }
    }
    (alerts, rejected)
}
