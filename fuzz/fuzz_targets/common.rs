//! Shared by the body targets: the server's own body code (decode and budgeted parse), taken
//! from its source file so that the fuzz build does not pull in the whole service.

#[path = "../../crates/server/src/body.rs"]
#[allow(dead_code)]
pub mod body;

use body::{decode, parse_limited, Decoded};

/// Dead letters kept per request and alerts per request in the targets: small, so that the
/// caps are reached.
pub const MAX_DEAD: usize = 8;
pub const MAX_ALERTS: usize = 64;
pub const MAX_BODY: usize = 64 * 1024;

/// A body through what `POST /api/v1/alerts` does with it after authentication: no panic,
/// the caps hold, and the count of records agrees with the plain reader.
pub fn check_body(encoding: Option<&str>, raw: &[u8]) {
    let decoded = match decode(encoding, raw, MAX_BODY) {
        Decoded::Ok(b) => b,
        Decoded::TooLarge | Decoded::Bad(_) | Decoded::Unsupported(_) => return,
    };
    assert!(decoded.len() <= MAX_BODY);
    let p = parse_limited(&decoded, MAX_DEAD, MAX_ALERTS);
    assert!(p.kept.len() <= MAX_DEAD);
    assert!(p.kept.len() <= p.rejected);
    assert!(p.alerts.len() <= MAX_ALERTS);
    let by_kind: u64 = p.rejected_by_kind.iter().map(|(_, n)| n).sum();
    assert_eq!(by_kind as usize, p.rejected);
    if !p.too_many_alerts {
        let (ok, bad) = fa_ingest::parse_body(&decoded);
        assert_eq!(ok.len(), p.alerts.len());
        assert_eq!(bad.len(), p.rejected);
    }
    for r in &p.kept {
        let _ = body::reason_kind(&r.error);
        let _ = r.to_string();
    }
}

/// `data` as a JSON string (lossy UTF-8). Not every target uses it.
#[allow(dead_code)]
pub fn json_str(data: &[u8]) -> String {
    serde_json::Value::String(String::from_utf8_lossy(data).into_owned()).to_string()
}
