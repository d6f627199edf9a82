//! `POST /` and `POST /api/v1/alerts`: authenticate, decode, parse, reserve queue room, hand to
//! the writer, answer once committed.

use crate::app::{json_error, AppState};
use crate::pipeline::{
    count_received, new_alert_row, source_label, IngestCmd, JournalCmd, WriteCmd,
};
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use fa_ingest::{parse_body, IngestError, Rejected};
use fa_model::{Alert, AlertError};

use fa_store::{to_nanos, NewAlert, NewDeadLetter};
use std::io::Read;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Instant;
use tokio::sync::oneshot;

/// Bodies larger than this are parsed on the blocking pool instead of a runtime thread.
const INLINE_PARSE_BYTES: usize = 256 * 1024;
/// Rejected records listed in a 400 answer at most (all of them are dead-lettered).
const LISTED_REJECTIONS: usize = 20;
/// What is kept of a body too large to accept, so the dead letter shows what it was.
const TOO_LARGE_PREFIX: usize = 64 * 1024;

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

/// A sender's uuid is kept when it is a sane identifier; it names the alert in URLs.
fn usable_uuid(u: &str) -> bool {
    !u.is_empty() && u.len() <= 64 && u.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Falco's `http_output` sends no uuid: derive one from the content (a UUIDv8 of its 128-bit
/// xxh3), so redelivering an identical body does not store it twice.
pub fn derived_uuid(a: &Alert) -> String {
    uuid_of(&serde_json::to_vec(a).unwrap_or_default())
}

fn uuid_of(encoded: &[u8]) -> String {
    let h = xxhash_rust::xxh3::xxh3_128(encoded);
    uuid::Uuid::new_v8(h.to_be_bytes()).to_string()
}

/// The alert's uuid (its own when usable, else derived: [`derived_uuid`]) and its canonical JSON,
/// with the uuid set in both the alert and the JSON.
fn identify(a: &mut Alert, size_hint: usize) -> Result<(String, String), serde_json::Error> {
    let mut buf = Vec::with_capacity(size_hint);
    let uuid = match a.uuid.as_deref() {
        Some(u) if usable_uuid(u) => u.to_string(),
        None => {
            // Falco's http_output. The encoding without a uuid is what the uuid is derived
            // from and, with the uuid put in front, the stored body: encoded once, not twice.
            serde_json::to_writer(&mut buf, a)?;
            let uuid = uuid_of(&buf);
            let mut body = Vec::with_capacity(buf.len() + uuid.len() + 12);
            body.extend_from_slice(b"{\"uuid\":\"");
            // Hex digits and dashes: nothing to escape.
            body.extend_from_slice(uuid.as_bytes());
            body.push(b'"');
            if buf.len() > 2 {
                body.push(b',');
            }
            body.extend_from_slice(buf.get(1..).unwrap_or(b"}"));
            a.uuid = Some(uuid.clone());
            // serde_json writes UTF-8 only.
            return Ok((uuid, String::from_utf8(body).unwrap_or_default()));
        }
        Some(unusable) => {
            let original = unusable.to_string();
            let derived = derived_uuid(a);
            a.extra
                .insert("original_uuid".into(), serde_json::Value::String(original));
            derived
        }
    };
    a.uuid = Some(uuid.clone());
    serde_json::to_writer(&mut buf, a)?;
    Ok((uuid, String::from_utf8(buf).unwrap_or_default()))
}

fn retry_after(status: StatusCode, secs: u32, msg: &str) -> Response {
    let mut r = json_error(status, msg);
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    r
}

enum Decoded {
    Ok(Vec<u8>),
    TooLarge,
    Bad(String),
    Unsupported(String),
}

fn decode(headers: &HeaderMap, raw: &[u8], max: usize) -> Decoded {
    let enc = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
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

fn is_length_limit(e: &axum::Error) -> bool {
    let mut src: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = src {
        if s.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        src = s.source();
    }
    false
}

pub async fn ingest(State(st): State<AppState>, req: Request) -> Response {
    let t0 = Instant::now();
    let resp = ingest_inner(&st, req).await;
    st.shared
        .metrics
        .ingest_seconds
        .observe(t0.elapsed().as_secs_f64());
    resp
}

async fn ingest_inner(st: &AppState, req: Request) -> Response {
    let shared = &st.shared;
    if shared.draining.load(Ordering::Relaxed) {
        shared.metrics.throttled("shutting_down");
        return retry_after(
            StatusCode::SERVICE_UNAVAILABLE,
            5,
            "the service is shutting down; retry later",
        );
    }
    let (parts, body) = req.into_parts();
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    // Only dead letters need it: not formatted for every accepted request.
    let origin = {
        let (method, path) = (&parts.method, parts.uri.path());
        move || match peer {
            Some(p) => format!("{method} {path} from {p}"),
            None => format!("{method} {path} from unknown"),
        }
    };
    let headers = &parts.headers;

    // A token is checked before the body is read; a signature needs the body.
    let token_ok = st.auth.token_ok(headers);
    let may_sign = st.auth.has_hmac() && headers.contains_key(crate::auth::SIGNATURE_HEADER);
    if !token_ok && !may_sign {
        return unauthorized(st);
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let raw = if declared.is_some_and(|n| n > st.max_body as u64) {
        None
    } else {
        match axum::body::to_bytes(Body::new(body), st.max_body).await {
            Ok(b) => Some(b),
            Err(e) if is_length_limit(&e) => None,
            Err(e) => {
                return json_error(
                    StatusCode::BAD_REQUEST,
                    &format!("could not read the request body: {e}"),
                )
            }
        }
    };
    let Some(raw) = raw else {
        if !token_ok {
            // An unverifiable body from someone without the token is not kept.
            return unauthorized(st);
        }
        let msg = format!(
            "the body is larger than the {}-byte limit (server.max_body_bytes)",
            st.max_body
        );
        return reject_whole(
            st,
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            &msg,
            &origin(),
            Vec::new(),
        )
        .await;
    };
    if !token_ok && !st.auth.ingest_ok(headers, &raw) {
        return unauthorized(st);
    }

    let decoded = match decode(headers, &raw, st.max_body) {
        Decoded::Ok(b) => b,
        Decoded::TooLarge => {
            let msg = format!(
                "the decompressed body is larger than the {}-byte limit (server.max_body_bytes)",
                st.max_body
            );
            let keep = raw[..raw.len().min(TOO_LARGE_PREFIX)].to_vec();
            return reject_whole(
                st,
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                &msg,
                &origin(),
                keep,
            )
            .await;
        }
        Decoded::Bad(msg) => {
            return reject_whole(
                st,
                StatusCode::BAD_REQUEST,
                "bad_gzip",
                &msg,
                &origin(),
                raw.to_vec(),
            )
            .await;
        }
        Decoded::Unsupported(enc) => {
            let msg = format!("unsupported Content-Encoding `{enc}` (send identity or gzip)");
            return reject_whole(
                st,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_encoding",
                &msg,
                &origin(),
                raw.to_vec(),
            )
            .await;
        }
    };
    if decoded.iter().all(u8::is_ascii_whitespace) {
        shared.metrics.rejected("empty_body");
        return json_error(
            StatusCode::BAD_REQUEST,
            "empty body: expected a Falco alert (JSON object, array or JSON Lines)",
        );
    }

    let decoded_len = decoded.len();
    let (alerts, rejected) = if decoded.len() > INLINE_PARSE_BYTES {
        match tokio::task::spawn_blocking(move || parse_body(&decoded)).await {
            Ok(r) => r,
            Err(_) => {
                return json_error(StatusCode::INTERNAL_SERVER_ERROR, "parsing the body failed")
            }
        }
    } else {
        parse_body(&decoded)
    };

    let n = alerts.len();
    if n > shared.queue_capacity {
        return json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "the body holds {n} alerts; send at most {} per request",
                shared.queue_capacity
            ),
        );
    }
    let now = to_nanos(chrono::Utc::now());
    let mut new_alerts = Vec::with_capacity(n);
    let mut parsed = Vec::with_capacity(n);
    let mut labels = Vec::with_capacity(n);
    for mut a in alerts {
        // Sized from the body so encoding rarely grows the buffer.
        let (uuid, body) = match identify(&mut a, decoded_len / n.max(1) + 128) {
            Ok(r) => r,
            Err(e) => {
                return json_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("re-encoding an alert failed: {e}"),
                )
            }
        };
        labels.push((a.priority, source_label(a.source.as_ref())));
        new_alerts.push(new_alert_row(&a, uuid, now, body));
        parsed.push(a);
    }
    let rejections: Vec<serde_json::Value> = rejected
        .iter()
        .take(LISTED_REJECTIONS)
        .map(|r| serde_json::json!({"line": r.line, "reason": reason_kind(&r.error), "error": r.error.to_string()}))
        .collect();
    let first_problem = rejected.first().map(|r| r.to_string());
    let n_rejected = rejected.len();
    let kinds: Vec<&'static str> = rejected.iter().map(|r| reason_kind(&r.error)).collect();
    let dead: Vec<NewDeadLetter> = rejected
        .into_iter()
        .map(|r| rejected_letter(&origin(), r))
        .collect();

    // Room in the analysis queue first: without it nothing is stored and the sender retries.
    if n > 0 {
        match st.shared.queue.clone().try_acquire_many_owned(n as u32) {
            Ok(p) => p.forget(),
            Err(_) => {
                shared.metrics.throttled("queue_full");
                return retry_after(
                    StatusCode::TOO_MANY_REQUESTS,
                    1,
                    "the analysis queue is full; nothing was stored, retry later",
                );
            }
        }
    }
    // Rejected records are kept before the answer says so.
    if !dead.is_empty() && !keep_dead_letters(st, dead).await {
        shared.release(n);
        return retry_after(
            StatusCode::SERVICE_UNAVAILABLE,
            1,
            "the store is saturated; nothing was stored, retry later",
        );
    }
    let uuids: Vec<String> = new_alerts.iter().map(|a| a.uuid.clone()).collect();
    let outcomes = if n == 0 {
        Vec::new()
    } else {
        match append(st, new_alerts, parsed).await {
            Ok(o) => o,
            Err(r) => return r,
        }
    };
    // Counted once stored: a refused request is counted when it is sent again.
    for k in kinds {
        shared.metrics.rejected(k);
    }
    let mut accepted = 0u64;
    let mut duplicates = 0u64;
    for (o, (priority, source)) in outcomes.iter().zip(labels) {
        count_received(&shared.metrics, priority, source);
        match o {
            fa_store::Inserted::New(_) => accepted += 1,
            fa_store::Inserted::Duplicate => duplicates += 1,
        }
    }
    if n_rejected == 0 {
        #[derive(serde::Serialize)]
        struct Ack<'a> {
            accepted: u64,
            duplicates: u64,
            uuids: &'a [String],
        }
        return (
            StatusCode::OK,
            axum::Json(Ack {
                accepted,
                duplicates,
                uuids: &uuids,
            }),
        )
            .into_response();
    }
    let error = format!(
        "{n_rejected} of {} records rejected and kept as dead letters; the first: {}",
        n_rejected + n,
        first_problem.unwrap_or_default()
    );
    (
        StatusCode::BAD_REQUEST,
        axum::Json(serde_json::json!({
            "error": error,
            "accepted": accepted,
            "duplicates": duplicates,
            "uuids": uuids,
            "rejected": rejections,
        })),
    )
        .into_response()
}

/// 401 with the challenge, counted; for ingest and for the read API.
pub(crate) fn unauthorized(st: &AppState) -> Response {
    st.shared.metrics.unauthorized.inc();
    let mut r = json_error(
        StatusCode::UNAUTHORIZED,
        "missing or wrong credentials: send `Authorization: Bearer <token>`",
    );
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"falco-analyst\""),
    );
    r
}

fn dead_letter(origin: &str, kind: &str, reason: &str, raw: Vec<u8>) -> NewDeadLetter {
    NewDeadLetter {
        received_at: to_nanos(chrono::Utc::now()),
        origin: origin.to_string(),
        reason_kind: kind.to_string(),
        reason: reason.to_string(),
        raw,
    }
}

fn rejected_letter(origin: &str, r: Rejected) -> NewDeadLetter {
    let kind = reason_kind(&r.error);
    let reason = r.to_string();
    dead_letter(origin, kind, &reason, r.raw)
}

/// Keep a whole-body rejection as a dead letter (committed before answering), then answer.
async fn reject_whole(
    st: &AppState,
    status: StatusCode,
    kind: &str,
    msg: &str,
    origin: &str,
    raw: Vec<u8>,
) -> Response {
    st.shared.metrics.rejected(kind);
    let kept = keep_dead_letters(st, vec![dead_letter(origin, kind, msg, raw)]).await;
    if !kept {
        tracing::warn!(
            reason = kind,
            "a rejected body could not be dead-lettered (store busy)"
        );
    }
    json_error(status, msg)
}

/// Commit dead letters through the store writer; false when it is saturated or failed.
async fn keep_dead_letters(st: &AppState, dead: Vec<NewDeadLetter>) -> bool {
    let (tx, rx) = oneshot::channel();
    match st
        .writer
        .try_send(WriteCmd::DeadLetters { dead, reply: tx })
    {
        Ok(()) => matches!(rx.await, Ok(Ok(()))),
        Err(_) => false,
    }
}

/// Append alerts to the journal (group commit with other requests) and wait for it.
async fn append(
    st: &AppState,
    new_alerts: Vec<NewAlert>,
    parsed: Vec<Alert>,
) -> Result<Vec<fa_store::Inserted>, Response> {
    let shared = &st.shared;
    let n = new_alerts.len();
    let (tx, rx) = oneshot::channel();
    let cmd = JournalCmd::Append(IngestCmd {
        alerts: new_alerts,
        parsed,
        reply: tx,
    });
    if let Err(e) = st.journal.try_send(cmd) {
        shared.release(n);
        shared.metrics.throttled("store_busy");
        let msg = match e {
            tokio::sync::mpsc::error::TrySendError::Full(_) => {
                "the store is saturated; nothing was stored, retry later"
            }
            tokio::sync::mpsc::error::TrySendError::Closed(_) => {
                "the store is shutting down; nothing was stored"
            }
        };
        return Err(retry_after(StatusCode::SERVICE_UNAVAILABLE, 1, msg));
    }
    match rx.await {
        Ok(Ok(o)) => Ok(o),
        Ok(Err(e)) => Err(retry_after(
            StatusCode::SERVICE_UNAVAILABLE,
            5,
            &format!("the store failed: {e}; nothing was stored"),
        )),
        Err(_) => Err(retry_after(
            StatusCode::SERVICE_UNAVAILABLE,
            5,
            "the store stopped; nothing was stored",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Alert {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn an_alert_without_uuid_is_encoded_once_with_the_uuid_derived_from_its_content() {
        let json = r#"{"output":"18:54:19: Warning Sensitive file opened (file=/etc/shadow)","priority":"Warning","rule":"Read sensitive file untrusted","time":"2024-05-07T18:54:19.341081180Z","output_fields":{"fd.name":"/etc/shadow","proc.name":"cat"},"hostname":"node-2","source":"syscall","tags":["T1555"]}"#;
        let mut a = parse(json);
        let expected_uuid = derived_uuid(&a);
        let (uuid, body) = identify(&mut a, 0).unwrap();
        assert_eq!(uuid, expected_uuid);
        assert_eq!(a.uuid.as_deref(), Some(uuid.as_str()));
        // The spliced body is the alert's own encoding, uuid included.
        let from_body: serde_json::Value = serde_json::from_str(&body).unwrap();
        let encoded: serde_json::Value = serde_json::to_value(&a).unwrap();
        assert_eq!(from_body, encoded);
        assert_eq!(parse(&body).uuid.as_deref(), Some(uuid.as_str()));
    }

    #[test]
    fn a_usable_uuid_is_kept_and_an_unusable_one_is_replaced_and_remembered() {
        let mut a = parse(r#"{"uuid":"abc-123","rule":"R","output":"x","priority":"Notice"}"#);
        let (uuid, body) = identify(&mut a, 0).unwrap();
        assert_eq!(uuid, "abc-123");
        assert_eq!(parse(&body).uuid.as_deref(), Some("abc-123"));

        let mut b =
            parse(r#"{"uuid":"no spaces <allowed>","rule":"R","output":"x","priority":"Notice"}"#);
        let (uuid, body) = identify(&mut b, 0).unwrap();
        assert_eq!(uuid.len(), 36);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["uuid"], uuid.as_str());
        assert_eq!(v["original_uuid"], "no spaces <allowed>");
    }
}
