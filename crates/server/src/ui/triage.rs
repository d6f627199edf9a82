//! Triage over REST: `PATCH /api/v1/{incidents,clusters}/{id}/triage` and
//! `GET .../triage`, `GET .../audit`. Machines use the API token; a signed-in browser uses
//! its session cookie plus the `X-CSRF-Token` header, and needs the triager role to change.

use super::pages::session_for_change;
use super::session::cookie_token;
use super::ConsoleState;
use crate::app::ApiError;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use fa_analyze::engine::Analyzer;
use fa_model::{Alert, Report};
use fa_store::{
    to_nanos, ClusterRow, PageRequest, Store, StoreError, Triage, TriageChange, TriageKind,
    TriageStatus,
};
use serde_json::json;
use std::collections::HashMap;

fn unauthorized(c: &ConsoleState) -> Response {
    c.app.shared.metrics.unauthorized.inc();
    let mut r = ApiError {
        status: StatusCode::UNAUTHORIZED,
        message: "missing or wrong credentials: send `Authorization: Bearer <token>`, or sign in to the console".into(),
    }
    .into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        axum::http::HeaderValue::from_static("Bearer realm=\"falco-analyst\""),
    );
    r
}

/// Who is asking, as the audit trail names them.
struct Caller {
    name: String,
    can_triage: bool,
}

/// The API token (all rights, named `api-token` in the audit trail), an open API
/// (`--insecure-no-auth`), or a session (with its CSRF token for a change).
// The error is the response itself, made once per request: boxing it buys nothing.
#[allow(clippy::result_large_err)]
fn caller(c: &ConsoleState, headers: &HeaderMap, change: bool) -> Result<Caller, Response> {
    let auth = &c.app.auth;
    if headers.contains_key(header::AUTHORIZATION) {
        if auth.token_ok(headers) {
            return Ok(Caller {
                name: "api-token".into(),
                can_triage: true,
            });
        }
        return Err(unauthorized(c));
    }
    if cookie_token(headers).is_some() && c.idp.has_users() {
        let s = if change {
            session_for_change(c, headers, None)?
        } else {
            cookie_token(headers)
                .and_then(|t| c.sessions.get(&t))
                .ok_or_else(|| unauthorized(c))?
        };
        return Ok(Caller {
            name: s.user,
            can_triage: s.role.can_triage(),
        });
    }
    if auth.disabled() {
        return Ok(Caller {
            name: "anonymous".into(),
            can_triage: true,
        });
    }
    Err(unauthorized(c))
}

/// Apply a triage change through the console's writing connection; muting follows a
/// cluster's status at once.
pub(super) async fn apply(
    c: &ConsoleState,
    kind: TriageKind,
    item: &str,
    change: TriageChange,
    actor: &str,
) -> Result<Option<Triage>, ApiError> {
    let store = c.triage_store.clone();
    let (item_, actor) = (item.to_string(), actor.to_string());
    let out = tokio::task::spawn_blocking(move || {
        let mut s = match store.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        s.triage_update(kind, &item_, &change, &actor, to_nanos(chrono::Utc::now()))
    })
    .await
    .map_err(|e| ApiError::internal(format!("triage task failed: {e}")))??;
    if let (TriageKind::Cluster, Some(t)) = (kind, &out) {
        c.muted.set(item, t.status.mutes_notifications());
    }
    Ok(out)
}

/// The exception for a cluster: its representative report's (validated when the report was
/// made), else one built from the representative alert and the rule's tuning fields (a
/// cluster someone marked false positive may not be benign to the engine).
pub(super) fn cluster_exception(
    st: &dyn Store,
    analyzer: &Analyzer,
    cl: &ClusterRow,
) -> Result<Option<String>, StoreError> {
    let Some(rec) = st.get_alert(&cl.representative_uuid)? else {
        return Ok(None);
    };
    if let Some(t) = rec
        .report_json
        .as_deref()
        .and_then(|j| serde_json::from_str::<Report>(j).ok())
        .and_then(|r| r.tuning)
    {
        return Ok(Some(t.yaml));
    }
    let Ok(alert) = serde_json::from_str::<Alert>(&rec.body) else {
        return Ok(None);
    };
    let (name, fields) = match analyzer.rule_for(&alert) {
        Some(r) => (r.entry.name.clone(), r.entry.tuning_fields.clone()),
        None => {
            let src = alert
                .source
                .as_ref()
                .map(|s| s.as_str())
                .unwrap_or("syscall");
            let fields = analyzer
                .kb
                .fallback_for(src)
                .map(|f| f.tuning_fields.clone())
                .unwrap_or_default();
            (alert.rule.to_string(), fields)
        }
    };
    Ok(fa_analyze::kb::tuning(&name, &fields, &alert).map(|t| t.yaml))
}

/// The JSON body of a PATCH: `status`, `assignee` (null clears it), `note`.
fn change_from_json(v: &serde_json::Value) -> Result<TriageChange, ApiError> {
    let Some(o) = v.as_object() else {
        return Err(ApiError::bad_request("expected a JSON object"));
    };
    if let Some(k) = o
        .keys()
        .find(|k| !["status", "assignee", "note"].contains(&k.as_str()))
    {
        return Err(ApiError::bad_request(format!(
            "unknown field `{k}` (known: status, assignee, note)"
        )));
    }
    let status = match o.get("status") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(
            s.parse::<TriageStatus>()
                .map_err(|e| ApiError::bad_request(e.to_string()))?,
        ),
        Some(_) => return Err(ApiError::bad_request("`status` must be a string")),
    };
    let assignee = match o.get("assignee") {
        None => None,
        Some(serde_json::Value::Null) => Some(None),
        Some(serde_json::Value::String(s)) if s.len() <= 200 => Some(Some(s.clone())),
        Some(_) => {
            return Err(ApiError::bad_request(
                "`assignee` must be a string of at most 200 bytes, or null",
            ))
        }
    };
    let note = match o.get("note") {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) if s.len() <= 10_000 => Some(s.clone()),
        Some(_) => {
            return Err(ApiError::bad_request(
                "`note` must be a string of at most 10,000 bytes",
            ))
        }
    };
    let ch = TriageChange {
        status,
        assignee,
        note,
    };
    if ch.is_empty() {
        return Err(ApiError::bad_request(
            "nothing to change: give status, assignee or note",
        ));
    }
    Ok(ch)
}

async fn patch(
    c: ConsoleState,
    headers: HeaderMap,
    kind: TriageKind,
    item: String,
    body: axum::body::Bytes,
) -> Response {
    let who = match caller(&c, &headers, true) {
        Ok(w) => w,
        Err(r) => return r,
    };
    if !who.can_triage {
        return ApiError {
            status: StatusCode::FORBIDDEN,
            message: "your role may read but not change triage".into(),
        }
        .into_response();
    }
    let v: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return ApiError::bad_request(format!("invalid JSON: {e}")).into_response(),
    };
    let change = match change_from_json(&v) {
        Ok(ch) => ch,
        Err(e) => return e.into_response(),
    };
    let t = match apply(&c, kind, &item, change, &who.name).await {
        Ok(Some(t)) => t,
        Ok(None) => {
            return ApiError::not_found(format!("no {} `{item}`", kind.as_str())).into_response()
        }
        Err(e) => return e.into_response(),
    };
    let mut out = json!({"kind": kind.as_str(), "id": item, "triage": t});
    // Marking a cluster false positive offers the exception that would silence it.
    if kind == TriageKind::Cluster && t.status == TriageStatus::FalsePositive {
        let analyzer = c.app.analyzer.clone();
        let fp = item.clone();
        let exc = c
            .app
            .read(move |st| match st.get_cluster(&fp)? {
                Some(cl) => cluster_exception(st, &analyzer, &cl),
                None => Ok(None),
            })
            .await;
        if let Ok(Some(e)) = exc {
            out["exception"] = json!(e);
        }
    }
    Json(out).into_response()
}

pub async fn patch_incident(
    State(c): State<ConsoleState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    patch(c, headers, TriageKind::Incident, id, body).await
}

pub async fn patch_cluster(
    State(c): State<ConsoleState>,
    headers: HeaderMap,
    Path(fp): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    patch(c, headers, TriageKind::Cluster, fp, body).await
}

async fn get_triage(
    c: ConsoleState,
    headers: HeaderMap,
    kind: TriageKind,
    item: String,
) -> Response {
    if let Err(r) = caller(&c, &headers, false) {
        return r;
    }
    let key = item.clone();
    let read = c
        .app
        .read(move |st| {
            let exists = match kind {
                TriageKind::Incident => st.get_incident(&key)?.is_some(),
                TriageKind::Cluster => st.get_cluster(&key)?.is_some(),
            };
            Ok(exists
                .then(|| st.triage_get(kind, &key))
                .transpose()?
                .map(Option::unwrap_or_default))
        })
        .await;
    match read {
        Ok(Some(t)) => {
            Json(json!({"kind": kind.as_str(), "id": item, "triage": t})).into_response()
        }
        Ok(None) => ApiError::not_found(format!("no {} `{item}`", kind.as_str())).into_response(),
        Err(e) => e.into_response(),
    }
}

pub async fn get_incident(
    State(c): State<ConsoleState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    get_triage(c, headers, TriageKind::Incident, id).await
}

pub async fn get_cluster(
    State(c): State<ConsoleState>,
    headers: HeaderMap,
    Path(fp): Path<String>,
) -> Response {
    get_triage(c, headers, TriageKind::Cluster, fp).await
}

async fn audit(
    c: ConsoleState,
    headers: HeaderMap,
    kind: TriageKind,
    item: String,
    q: HashMap<String, String>,
) -> Response {
    if let Err(r) = caller(&c, &headers, false) {
        return r;
    }
    let limit = match q.get("limit").map(|l| l.trim().parse::<usize>()) {
        None => 100,
        Some(Ok(n)) if (1..=1000).contains(&n) => n,
        Some(_) => {
            return ApiError::bad_request(
                "query parameter `limit`: expected a number from 1 to 1000",
            )
            .into_response()
        }
    };
    let p = PageRequest {
        limit,
        cursor: q.get("cursor").cloned().filter(|c| !c.is_empty()),
    };
    match c.app.read(move |st| st.triage_audit(kind, &item, &p)).await {
        Ok(page) => Json(page).into_response(),
        Err(e) => e.into_response(),
    }
}

pub async fn incident_audit(
    State(c): State<ConsoleState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    audit(c, headers, TriageKind::Incident, id, q).await
}

pub async fn cluster_audit(
    State(c): State<ConsoleState>,
    headers: HeaderMap,
    Path(fp): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    audit(c, headers, TriageKind::Cluster, fp, q).await
}
