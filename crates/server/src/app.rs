//! The router, shared request state and the read API.

use crate::auth::Auth;
use crate::disk::DiskGuard;
use crate::ingest::BodyPace;
use crate::pipeline::{InFlight, JournalCmd, Shared, WriteCmd};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use fa_analyze::engine::Analyzer;
use fa_model::{Alert, ClusterInfo, IncidentReport, Priority, Report, Verdict, VerdictKind};
use fa_report::Format;
use fa_store::{
    from_nanos, AlertFilter, AlertRecord, ClusterFilter, PageRequest, Store, StoreError,
};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::sync::{mpsc, Semaphore};

pub type StoreOpener = Arc<dyn Fn() -> Result<Box<dyn Store>, StoreError> + Send + Sync>;

/// Read connections for the API, used on the blocking pool.
pub struct ReadPool {
    open: StoreOpener,
    idle: Mutex<Vec<Box<dyn Store>>>,
    max_idle: usize,
}

impl ReadPool {
    pub fn new(open: StoreOpener, max_idle: usize) -> Self {
        ReadPool {
            open,
            idle: Mutex::new(Vec::new()),
            max_idle: max_idle.max(1),
        }
    }

    pub fn open_one(&self) -> Result<Box<dyn Store>, StoreError> {
        (self.open)()
    }

    fn take(&self) -> Result<Box<dyn Store>, StoreError> {
        let pooled = match self.idle.lock() {
            Ok(mut v) => v.pop(),
            Err(p) => p.into_inner().pop(),
        };
        match pooled {
            Some(s) => Ok(s),
            None => (self.open)(),
        }
    }

    fn put(&self, s: Box<dyn Store>) {
        let mut v = match self.idle.lock() {
            Ok(v) => v,
            Err(p) => p.into_inner(),
        };
        if v.len() < self.max_idle {
            v.push(s);
        }
    }
}

pub struct AppInner {
    pub shared: Arc<Shared>,
    /// Received alerts: the ingest thread's journal append.
    pub journal: mpsc::Sender<JournalCmd>,
    /// Acknowledged alerts not yet in the store.
    pub in_flight: Arc<InFlight>,
    /// Everything else written: dead letters, analyses, reports.
    pub writer: mpsc::Sender<WriteCmd>,
    pub readers: Arc<ReadPool>,
    pub analyzer: Analyzer,
    pub auth: Auth,
    pub max_body: usize,
    pub limits: IngestLimits,
    /// Body memory of all ingest requests, in KiB permits (`ingest.max_body_memory`).
    pub body_budget: Arc<Semaphore>,
    /// Bodies being read before their signature is verified (`ingest.max_unauthenticated_bodies`).
    pub unauthenticated: Arc<Semaphore>,
    pub disk: Arc<DiskGuard>,
}

/// The budgets of one ingest request.
#[derive(Debug, Clone, Copy)]
pub struct IngestLimits {
    pub max_dead_letters: usize,
    pub max_alerts: usize,
    pub pace: BodyPace,
    /// The whole body budget: one request never asks for more than there is.
    pub body_budget_kib: u32,
}

pub type AppState = Arc<AppInner>;

/// An error answer: a status and a JSON body `{"error": "..."}`.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn bad_request(m: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: m.into(),
        }
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            message: m.into(),
        }
    }
    pub fn internal(m: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: m.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        tracing::error!(error = %e, "store read failed");
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: format!("store error: {e}"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_error(self.status, &self.message)
    }
}

pub fn json_error(status: StatusCode, msg: &str) -> Response {
    (status, Json(serde_json::json!({ "error": msg }))).into_response()
}

impl AppInner {
    /// Run a store read on the blocking pool with a pooled connection.
    pub async fn read<R: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&dyn Store) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, ApiError> {
        let pool = self.readers.clone();
        let t = Instant::now();
        let r = tokio::task::spawn_blocking(move || {
            let s = pool.take()?;
            let r = f(s.as_ref());
            pool.put(s);
            r
        })
        .await
        .map_err(|e| ApiError::internal(format!("read task failed: {e}")))?;
        self.shared
            .metrics
            .store_read_seconds
            .observe(t.elapsed().as_secs_f64());
        Ok(r?)
    }
}

pub const OPENAPI: &str = include_str!("openapi.json");

pub fn router(st: AppState) -> Router {
    let api = Router::new()
        .route("/", post(crate::ingest::ingest))
        .route(
            "/api/v1/alerts",
            post(crate::ingest::ingest).get(list_alerts),
        )
        .route("/api/v1/alerts/{uuid}", get(get_alert))
        .route("/api/v1/clusters", get(list_clusters))
        .route("/api/v1/clusters/{fingerprint}", get(get_cluster))
        .route("/api/v1/incidents", get(list_incidents))
        .route("/api/v1/incidents/{id}", get(get_incident))
        .route("/api/v1/dead-letters", get(list_dead_letters))
        .route("/api/v1/stats", get(stats))
        .route_layer(middleware::from_fn_with_state(st.clone(), require_token));
    Router::new()
        .merge(api)
        .route("/api/openapi.json", get(openapi))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn(security_headers))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(st)
}

/// Reads need the token; ingest (POST) checks its own credentials, which may be a signature.
async fn require_token(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() == Method::POST || st.auth.token_ok(req.headers()) {
        return next.run(req).await;
    }
    crate::ingest::unauthorized(&st)
}

async fn not_found(req: Request) -> Response {
    json_error(
        StatusCode::NOT_FOUND,
        &format!("no route for {} {}", req.method(), req.uri().path()),
    )
}

/// Error answers not written by this service (axum's rejections of a path, a query string, a
/// method; a body limit) are plain text or empty: they are rewritten as the documented
/// `{"error": "..."}`, keeping their status, message and headers.
async fn json_errors(req: Request, next: Next) -> Response {
    let r = next.run(req).await;
    let status = r.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return r;
    }
    let is_json = r
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return r;
    }
    let (mut parts, body) = r.into_parts();
    // Rejection texts are short; a long body is not one of them.
    let text = match axum::body::to_bytes(body, 16 * 1024).await {
        Ok(b) => String::from_utf8_lossy(&b).trim().to_string(),
        Err(_) => String::new(),
    };
    let msg = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.remove(header::CONTENT_TYPE);
    let mut out = json_error(status, &msg);
    for (k, v) in parts.headers.iter() {
        out.headers_mut().insert(k.clone(), v.clone());
    }
    out
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut r = next.run(req).await;
    r.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn healthz() -> Response {
    Json(serde_json::json!({"status": "ok"})).into_response()
}

async fn readyz(State(st): State<AppState>) -> Response {
    let s = &st.shared;
    // Ready means "can accept alerts": not while the disk is below the reserve.
    let disk_low = st.disk.is_low();
    let ready = s.ready.load(Ordering::Relaxed) && !s.draining.load(Ordering::Relaxed) && !disk_low;
    let body = serde_json::json!({
        "ready": ready,
        "draining": s.draining.load(Ordering::Relaxed),
        "disk_low": disk_low,
        "disk_free_bytes": st.disk.free(),
        "min_free_disk": st.disk.min_free(),
        "queue_depth": s.queue_depth(),
        "queue_capacity": s.queue_capacity,
        "backlog_queued": s.backlog_queued.load(Ordering::Relaxed),
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics(State(st): State<AppState>) -> Response {
    st.shared
        .metrics
        .queue_depth
        .set(st.shared.queue_depth() as i64);
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        st.shared.metrics.encode(),
    )
        .into_response()
}

type Params = Query<HashMap<String, String>>;

fn param<'a>(q: &'a HashMap<String, String>, k: &str) -> Option<&'a str> {
    q.get(k).map(|s| s.trim()).filter(|s| !s.is_empty())
}

fn parse_param<T: std::str::FromStr>(
    q: &HashMap<String, String>,
    k: &str,
    what: &str,
) -> Result<Option<T>, ApiError>
where
    T::Err: std::fmt::Display,
{
    match param(q, k) {
        None => Ok(None),
        Some(v) => v.parse::<T>().map(Some).map_err(|e| {
            ApiError::bad_request(format!("query parameter `{k}`: expected {what}: {e}"))
        }),
    }
}

fn time_param(q: &HashMap<String, String>, k: &str) -> Result<Option<i64>, ApiError> {
    match param(q, k) {
        None => Ok(None),
        Some(v) => fa_model::alert::parse_time(v)
            .map(|t| Some(fa_store::to_nanos(t)))
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "query parameter `{k}`: `{v}` is not an RFC 3339 time"
                ))
            }),
    }
}

fn page(q: &HashMap<String, String>) -> Result<PageRequest, ApiError> {
    let limit = parse_param::<usize>(q, "limit", "a number from 1 to 1000")?.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request(
            "query parameter `limit`: expected a number from 1 to 1000",
        ));
    }
    Ok(PageRequest {
        limit,
        cursor: param(q, "cursor").map(str::to_string),
    })
}

fn format_param(q: &HashMap<String, String>) -> Result<Format, ApiError> {
    Ok(parse_param::<Format>(q, "format", "markdown, json or html")?.unwrap_or(Format::Json))
}

const KNOWN_ALERT_PARAMS: &[&str] = &[
    "priority",
    "min_priority",
    "rule",
    "verdict",
    "source",
    "host",
    "hostname",
    "namespace",
    "since",
    "until",
    "analyzed",
    "fingerprint",
    "cluster",
    "incident",
    "limit",
    "cursor",
];

async fn list_alerts(State(st): State<AppState>, Query(q): Params) -> Result<Response, ApiError> {
    if let Some(k) = q.keys().find(|k| !KNOWN_ALERT_PARAMS.contains(&k.as_str())) {
        return Err(ApiError::bad_request(format!(
            "unknown query parameter `{k}` (known: {})",
            KNOWN_ALERT_PARAMS.join(", ")
        )));
    }
    let filter = AlertFilter {
        priority: parse_param::<Priority>(&q, "priority", "a Falco priority")?,
        min_priority: parse_param::<Priority>(&q, "min_priority", "a Falco priority")?,
        rule: param(&q, "rule").map(str::to_string),
        verdict: parse_param::<VerdictKind>(&q, "verdict", "benign, suspicious or malicious")?,
        source: param(&q, "source").map(|s| fa_model::Source::parse(s).as_str().to_string()),
        hostname: param(&q, "host")
            .or_else(|| param(&q, "hostname"))
            .map(str::to_string),
        namespace: param(&q, "namespace").map(str::to_string),
        fingerprint: param(&q, "fingerprint")
            .or_else(|| param(&q, "cluster"))
            .map(str::to_string),
        incident_id: param(&q, "incident").map(str::to_string),
        analyzed: parse_param::<bool>(&q, "analyzed", "true or false")?,
        since: time_param(&q, "since")?,
        until: time_param(&q, "until")?,
    };
    let p = page(&q)?;
    let page = st.read(move |s| s.list_alerts(&filter, &p)).await?;
    Ok(Json(page).into_response())
}

/// The alert's report: the stored one, or rebuilt from the stored alert and verdict; with
/// the cluster's current figures.
///
/// A rebuilt report takes the LLM narrative (and its notes) of its cluster's stored report,
/// `cluster_report`: the narrative is written once per cluster, as in `analyze`.
pub(crate) fn report_of(
    analyzer: &Analyzer,
    rec: &AlertRecord,
    cluster: Option<ClusterInfo>,
    cluster_report: Option<&str>,
) -> Result<Option<Report>, ApiError> {
    if !rec.row.analyzed {
        return Ok(None);
    }
    let mut report: Report = match &rec.report_json {
        Some(j) => serde_json::from_str(j)
            .map_err(|e| ApiError::internal(format!("stored report unreadable: {e}")))?,
        None => {
            let alert: Alert = serde_json::from_str(&rec.body)
                .map_err(|e| ApiError::internal(format!("stored alert unreadable: {e}")))?;
            let verdict: Verdict =
                serde_json::from_str(rec.verdict_json.as_deref().unwrap_or("null"))
                    .map_err(|e| ApiError::internal(format!("stored verdict unreadable: {e}")))?;
            let mut r = analyzer.report_with(&alert, analyzer.rule_for(&alert), verdict);
            if let Some(rep) = cluster_report.and_then(|j| serde_json::from_str::<Report>(j).ok()) {
                r.narrative = rep.narrative;
                r.notes.extend(
                    rep.notes
                        .into_iter()
                        .filter(|n| n.starts_with("LLM narrative")),
                );
            }
            r
        }
    };
    if cluster.is_some() {
        report.cluster = cluster;
    }
    Ok(Some(report))
}

fn rendered(body: String, format: Format) -> Response {
    match format {
        Format::Markdown => (
            [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
            body,
        )
            .into_response(),
        Format::Html => {
            let csp = fa_report::html_content_security_policy();
            let mut r =
                ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response();
            if let Ok(v) = HeaderValue::from_str(&csp) {
                r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
            }
            r
        }
        Format::Json => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
    }
}

async fn get_alert(
    State(st): State<AppState>,
    Path(uuid): Path<String>,
    Query(q): Params,
) -> Result<Response, ApiError> {
    let format = format_param(&q)?;
    let id = uuid.clone();
    let found = st
        .read(move |s| {
            let Some(rec) = s.get_alert(&id)? else {
                return Ok(None);
            };
            let cluster = match &rec.row.fingerprint {
                Some(fp) => s.get_cluster(fp)?,
                None => None,
            };
            // The cluster's stored report, for a repeat whose own report was not stored.
            let cluster_report = match (&rec.report_json, &cluster) {
                (None, Some(c)) if c.representative_uuid != id => s
                    .get_alert(&c.representative_uuid)?
                    .and_then(|r| r.report_json),
                _ => None,
            };
            Ok(Some((rec, cluster, cluster_report)))
        })
        .await?;
    let Some((rec, cluster, cluster_report)) = found else {
        if st.in_flight.get(&uuid).is_some() {
            // Acknowledged and kept, not analysed yet: ask again in a moment.
            let mut r = (
                StatusCode::ACCEPTED,
                Json(serde_json::json!({
                    "uuid": uuid,
                    "analyzed": false,
                    "status": "received and kept; analysis pending",
                })),
            )
                .into_response();
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return Ok(r);
        }
        return Err(ApiError::not_found(format!("no alert with uuid `{uuid}`")));
    };
    let info = cluster.map(|c| ClusterInfo {
        fingerprint: c.fingerprint,
        count: c.count,
        first_seen: Some(c.first_seen),
        last_seen: Some(c.last_seen),
    });
    let analyzer = st.analyzer.clone();
    let (rec, report) = tokio::task::spawn_blocking(move || {
        let r = report_of(&analyzer, &rec, info, cluster_report.as_deref());
        (rec, r)
    })
    .await
    .map_err(|e| ApiError::internal(format!("report task failed: {e}")))?;
    let report = report?;
    match (format, report) {
        (Format::Json, report) => {
            let alert: serde_json::Value =
                serde_json::from_str(&rec.body).unwrap_or(serde_json::Value::Null);
            Ok(Json(serde_json::json!({
                "uuid": rec.row.uuid,
                "analyzed": rec.row.analyzed,
                "received_at": rec.row.received_at,
                "verdict": rec.row.verdict,
                "fingerprint": rec.row.fingerprint,
                "incident_id": rec.row.incident_id,
                "alert": alert,
                "report": report,
            }))
            .into_response())
        }
        (f, Some(report)) => Ok(rendered(fa_report::render(&report, f), f)),
        (_, None) => {
            let mut r = json_error(
                StatusCode::ACCEPTED,
                "the alert is stored and queued for analysis; its report is not ready yet",
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(1u32));
            Ok(r)
        }
    }
}

async fn list_clusters(State(st): State<AppState>, Query(q): Params) -> Result<Response, ApiError> {
    let filter = ClusterFilter {
        rule: param(&q, "rule").map(str::to_string),
        verdict: parse_param::<VerdictKind>(&q, "verdict", "benign, suspicious or malicious")?,
    };
    let p = page(&q)?;
    Ok(Json(st.read(move |s| s.list_clusters(&filter, &p)).await?).into_response())
}

async fn get_cluster(
    State(st): State<AppState>,
    Path(fp): Path<String>,
) -> Result<Response, ApiError> {
    let key = fp.clone();
    match st.read(move |s| s.get_cluster(&key)).await? {
        Some(c) => Ok(Json(c).into_response()),
        None => Err(ApiError::not_found(format!(
            "no cluster with fingerprint `{fp}`"
        ))),
    }
}

async fn list_incidents(
    State(st): State<AppState>,
    Query(q): Params,
) -> Result<Response, ApiError> {
    let p = page(&q)?;
    let page = st.read(move |s| s.list_incidents(&p)).await?;
    let items: Vec<serde_json::Value> = page
        .items
        .iter()
        .map(|i| {
            serde_json::json!({
                "id": i.id,
                "entity": i.entity,
                "first_seen": i.first_seen.map(from_nanos),
                "last_seen": i.last_seen.map(from_nanos),
                "alert_count": i.alert_count,
                "verdict": i.verdict,
                "updated_at": from_nanos(i.updated_at),
            })
        })
        .collect();
    Ok(Json(serde_json::json!({"items": items, "next_cursor": page.next_cursor})).into_response())
}

async fn get_incident(
    State(st): State<AppState>,
    Path(id): Path<String>,
    Query(q): Params,
) -> Result<Response, ApiError> {
    let format = format_param(&q)?;
    let key = id.clone();
    let Some(row) = st.read(move |s| s.get_incident(&key)).await? else {
        return Err(ApiError::not_found(format!("no incident with id `{id}`")));
    };
    let rep: IncidentReport = serde_json::from_str(&row.body)
        .map_err(|e| ApiError::internal(format!("stored incident unreadable: {e}")))?;
    Ok(rendered(fa_report::render_incident(&rep, format), format))
}

async fn list_dead_letters(
    State(st): State<AppState>,
    Query(q): Params,
) -> Result<Response, ApiError> {
    let p = page(&q)?;
    let page = st.read(move |s| s.list_dead_letters(&p)).await?;
    let items: Vec<serde_json::Value> = page
        .items
        .iter()
        .map(|d| {
            serde_json::json!({
                "id": d.id,
                "received_at": d.received_at,
                "origin": d.origin,
                "reason_kind": d.reason_kind,
                "reason": d.reason,
                "raw": std::str::from_utf8(&d.raw).ok(),
                "raw_base64": base64::engine::general_purpose::STANDARD.encode(&d.raw),
            })
        })
        .collect();
    Ok(Json(serde_json::json!({"items": items, "next_cursor": page.next_cursor})).into_response())
}

async fn stats(State(st): State<AppState>) -> Result<Response, ApiError> {
    let mut s = st.read(|s| s.stats()).await?;
    // Acknowledged alerts still in the journal count as stored and not yet analysed.
    let waiting = st.in_flight.len() as u64;
    s.alerts += waiting;
    s.unanalyzed += waiting;
    Ok(Json(serde_json::json!({
        "store": s,
        "queue_depth": st.shared.queue_depth(),
        "queue_capacity": st.shared.queue_capacity,
        "backlog_queued": st.shared.backlog_queued.load(Ordering::Relaxed),
    }))
    .into_response())
}
