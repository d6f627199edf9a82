//! `POST /` and `POST /api/v1/alerts`: authenticate, decode, parse, reserve queue room, hand to
//! the writer, answer once committed.

use crate::app::{json_error, AppState};
use crate::auth::SignatureCheck;
pub use crate::body::reason_kind;
use crate::body::{decode, parse_limited, Decoded, Parsed};
use crate::pipeline::{
    count_received, new_alert_row, source_label, IngestCmd, JournalCmd, WriteCmd,
};
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use fa_ingest::Rejected;
use fa_model::Alert;
use http_body_util::BodyExt as _;

use fa_store::{to_nanos, NewAlert, NewDeadLetter};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::{oneshot, OwnedSemaphorePermit};

/// Bodies larger than this are parsed on the blocking pool instead of a runtime thread.
const INLINE_PARSE_BYTES: usize = 256 * 1024;
/// Rejected records listed in a 400 answer at most (all of them are dead-lettered).
const LISTED_REJECTIONS: usize = 20;
/// What is kept of a body too large to accept, so the dead letter shows what it was.
const TOO_LARGE_PREFIX: usize = 64 * 1024;

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
pub(crate) fn identify(
    a: &mut Alert,
    size_hint: usize,
) -> Result<(String, String), serde_json::Error> {
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

/// Why a body could not be read.
#[derive(Debug)]
enum BodyError {
    TooLarge,
    /// Slower than `server.body_timeout` plus a second per `server.min_body_rate` bytes.
    TooSlow,
    Read(String),
}

/// How long a body may take: a grace period, then it must keep up a minimum rate.
#[derive(Debug, Clone, Copy)]
pub struct BodyPace {
    pub grace: Duration,
    pub min_rate: u64,
}

impl BodyPace {
    fn allowed(&self, received: usize) -> Duration {
        self.grace + Duration::from_secs_f64(received as f64 / self.min_rate.max(1) as f64)
    }
}

/// Read a body of at most `max` bytes as it arrives, feeding each piece to the signature
/// check when there is one: the body is held once and never beyond `max`.
async fn read_body(
    mut body: Body,
    max: usize,
    size_hint: usize,
    pace: BodyPace,
    mut sig: Option<&mut SignatureCheck>,
) -> Result<Vec<u8>, BodyError> {
    let start = tokio::time::Instant::now();
    let mut buf: Vec<u8> = Vec::with_capacity(size_hint.min(max));
    loop {
        let deadline = start + pace.allowed(buf.len());
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(BodyError::TooSlow),
            Ok(None) => return Ok(buf),
            Ok(Some(Err(e))) if is_length_limit(&e) => return Err(BodyError::TooLarge),
            Ok(Some(Err(e))) => return Err(BodyError::Read(e.to_string())),
            Ok(Some(Ok(f))) => f,
        };
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > max {
                return Err(BodyError::TooLarge);
            }
            if let Some(s) = sig.as_deref_mut() {
                s.update(&data);
            }
            buf.extend_from_slice(&data);
        }
    }
}

/// What a refused request left behind: which of its alerts are stored (none, unless said)
/// and how many of its rejected records were kept as dead letters.
#[derive(Debug, Default, Clone, Copy)]
struct Kept {
    dead_letters: usize,
}

/// 429/503 with Retry-After and an exact account of what was kept: `stored_alerts` lists the
/// uuids of the request's alerts that are stored (always none on these answers).
fn refused(status: StatusCode, secs: u32, msg: &str, kept: Kept) -> Response {
    let mut r = (
        status,
        axum::Json(serde_json::json!({
            "error": msg,
            "stored_alerts": [],
            "dead_letters_kept": kept.dead_letters,
        })),
    )
        .into_response();
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    r
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

/// Budget permits are KiB of body memory.
fn kib(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(1024)).unwrap_or(u32::MAX)
}

/// Body memory for `bytes`, waiting up to [`BUDGET_WAIT`]; None when it stays taken.
async fn body_memory(st: &AppState, bytes: usize) -> Option<OwnedSemaphorePermit> {
    let n = kib(bytes).min(st.limits.body_budget_kib);
    match tokio::time::timeout(BUDGET_WAIT, st.body_budget.clone().acquire_many_owned(n)).await {
        Ok(Ok(p)) => Some(p),
        _ => {
            st.shared.metrics.limited("max_body_memory");
            None
        }
    }
}

/// How long a request waits for body memory before it is told to come back.
const BUDGET_WAIT: Duration = Duration::from_secs(1);

async fn ingest_inner(st: &AppState, req: Request) -> Response {
    let shared = &st.shared;
    if shared.draining.load(Ordering::Relaxed) {
        shared.metrics.throttled("shutting_down");
        return refused(
            StatusCode::SERVICE_UNAVAILABLE,
            5,
            "the service is shutting down; nothing was stored, retry later",
            Kept::default(),
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

    // Credentials are decided before any of the body is read: a token (or Basic auth) from
    // the headers, or a well-formed signature, whose check then runs over the body as it
    // arrives.
    let token_ok = st.auth.token_ok(headers);
    let mut sig = if token_ok {
        None
    } else {
        match st.auth.signature_check(headers) {
            Some(c) => Some(c),
            None => return unauthorized(st),
        }
    };
    // Nothing is written below the free-space reserve, not even a dead letter.
    if st.disk.is_low() {
        shared.metrics.limited("min_free_disk");
        shared.metrics.throttled("disk_low");
        return refused(
            StatusCode::SERVICE_UNAVAILABLE,
            5,
            "free disk space is below the reserve (ingest.min_free_disk); nothing was stored, retry later",
            Kept::default(),
        );
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large_msg = format!(
        "the body is larger than the {}-byte limit (server.max_body_bytes)",
        st.max_body
    );
    if declared.is_some_and(|n| n > st.max_body as u64) {
        shared.metrics.limited("max_body_bytes");
        if sig.is_some() {
            // An unverifiable body from someone without the token is not kept.
            return unauthorized(st);
        }
        return reject_whole(
            st,
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            &too_large_msg,
            &origin(),
            Vec::new(),
        )
        .await;
    }
    // Bodies whose sender is not known yet: only a few at once, refused at once beyond.
    let unauthenticated = match &sig {
        None => None,
        Some(_) => match st.unauthenticated.clone().try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) => {
                shared.metrics.limited("max_unauthenticated_bodies");
                return refused(
                    StatusCode::SERVICE_UNAVAILABLE,
                    1,
                    "too many signed bodies being verified (ingest.max_unauthenticated_bodies); nothing was stored, retry later",
                    Kept::default(),
                );
            }
        },
    };
    let expected = declared.map_or(st.max_body, |n| n as usize);
    let Some(raw_memory) = body_memory(st, expected).await else {
        return refused(
            StatusCode::SERVICE_UNAVAILABLE,
            1,
            "too many bodies being read (ingest.max_body_memory); nothing was stored, retry later",
            Kept::default(),
        );
    };
    let raw = match read_body(
        Body::new(body),
        st.max_body,
        expected,
        st.limits.pace,
        sig.as_mut(),
    )
    .await
    {
        Ok(b) => b,
        Err(BodyError::TooLarge) => {
            shared.metrics.limited("max_body_bytes");
            if sig.is_some() {
                return unauthorized(st);
            }
            return reject_whole(
                st,
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                &too_large_msg,
                &origin(),
                Vec::new(),
            )
            .await;
        }
        Err(BodyError::TooSlow) => {
            shared.metrics.limited("body_timeout");
            let mut r = json_error(
                StatusCode::REQUEST_TIMEOUT,
                "the body arrived too slowly (server.body_timeout, server.min_body_rate); nothing was stored",
            );
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return r;
        }
        Err(BodyError::Read(e)) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                &format!("could not read the request body: {e}"),
            )
        }
    };
    if let Some(check) = sig.take() {
        if !check.verify() {
            return unauthorized(st);
        }
    }
    drop(unauthenticated);

    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok());
    let decoded = match decode(encoding, &raw, st.max_body) {
        Decoded::Ok(b) => b,
        Decoded::TooLarge => {
            shared.metrics.limited("max_body_bytes");
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
                raw,
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
                raw,
            )
            .await;
        }
    };
    // A decompressed body is more memory: budgeted too (the compressed one is let go).
    let _memory = if decoded.len() > raw.len() {
        drop(raw_memory);
        match body_memory(st, decoded.len()).await {
            Some(p) => p,
            None => {
                return refused(
                    StatusCode::SERVICE_UNAVAILABLE,
                    1,
                    "too many bodies being read (ingest.max_body_memory); nothing was stored, retry later",
                    Kept::default(),
                )
            }
        }
    } else {
        raw_memory
    };
    drop(raw);
    if decoded.iter().all(u8::is_ascii_whitespace) {
        shared.metrics.rejected("empty_body");
        return json_error(
            StatusCode::BAD_REQUEST,
            "empty body: expected a Falco alert (JSON object, array or JSON Lines)",
        );
    }

    let decoded_len = decoded.len();
    let (max_dead, max_alerts) = (
        st.limits.max_dead_letters,
        st.limits.max_alerts.min(shared.queue_capacity),
    );
    let parsed = if decoded.len() > INLINE_PARSE_BYTES {
        match tokio::task::spawn_blocking(move || parse_limited(&decoded, max_dead, max_alerts))
            .await
        {
            Ok(r) => r,
            Err(_) => {
                return json_error(StatusCode::INTERNAL_SERVER_ERROR, "parsing the body failed")
            }
        }
    } else {
        parse_limited(&decoded, max_dead, max_alerts)
    };
    if parsed.too_many_alerts {
        shared.metrics.limited("max_alerts_per_request");
        return json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "the body holds more than {max_alerts} alerts (ingest.max_alerts_per_request, analysis.queue_capacity); nothing was stored, send fewer per request"
            ),
        );
    }
    let Parsed {
        alerts,
        kept: rejected,
        rejected_by_kind,
        rejected: n_rejected,
        too_many_alerts: _,
    } = parsed;

    let n = alerts.len();
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
    let origin_text = origin();
    let dead: Vec<NewDeadLetter> = rejected
        .into_iter()
        .map(|r| rejected_letter(&origin_text, r))
        .collect();
    let n_dead = dead.len();

    // Room in the analysis queue first: without it nothing is stored and the sender retries.
    if n > 0 {
        match st.shared.queue.clone().try_acquire_many_owned(n as u32) {
            Ok(p) => p.forget(),
            Err(_) => {
                shared.metrics.throttled("queue_full");
                return refused(
                    StatusCode::TOO_MANY_REQUESTS,
                    1,
                    "the analysis queue is full; nothing was stored, retry later",
                    Kept::default(),
                );
            }
        }
    }
    // Rejected records are kept before the answer says so.
    if !dead.is_empty() && !keep_dead_letters(st, dead).await {
        shared.release(n);
        return refused(
            StatusCode::SERVICE_UNAVAILABLE,
            1,
            "the store is saturated; nothing was stored, retry later",
            Kept::default(),
        );
    }
    let uuids: Vec<String> = new_alerts.iter().map(|a| a.uuid.clone()).collect();
    let outcomes = if n == 0 {
        Vec::new()
    } else {
        match append(
            st,
            new_alerts,
            parsed,
            Kept {
                dead_letters: n_dead,
            },
        )
        .await
        {
            Ok(o) => o,
            Err(r) => return r,
        }
    };
    // Counted once stored: a refused request is counted when it is sent again.
    for (k, count) in rejected_by_kind {
        shared.metrics.rejected_n(k, count);
    }
    if n_rejected > n_dead {
        shared
            .metrics
            .limited_by("max_dead_letters_per_request", (n_rejected - n_dead) as u64);
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
    let kept_note = if n_dead < n_rejected {
        format!(
            "the first {n_dead} kept as dead letters (ingest.max_dead_letters_per_request), the rest only counted"
        )
    } else {
        "kept as dead letters".to_string()
    };
    let error = format!(
        "{n_rejected} of {} records rejected, {kept_note}; the first: {}",
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
            "rejected_count": n_rejected,
            "dead_letters_kept": n_dead,
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

pub(crate) fn dead_letter(origin: &str, kind: &str, reason: &str, raw: Vec<u8>) -> NewDeadLetter {
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
    kept: Kept,
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
        return Err(refused(StatusCode::SERVICE_UNAVAILABLE, 1, msg, kept));
    }
    // A failed journal append keeps none of the group (the journal cuts what reached the
    // file back off), so "nothing was stored" is exact.
    match rx.await {
        Ok(Ok(o)) => Ok(o),
        Ok(Err(e)) => Err(refused(
            StatusCode::SERVICE_UNAVAILABLE,
            5,
            &format!("the store failed: {e}; none of the alerts was stored"),
            kept,
        )),
        Err(_) => Err(refused(
            StatusCode::SERVICE_UNAVAILABLE,
            5,
            "the store stopped; none of the alerts was stored",
            kept,
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
