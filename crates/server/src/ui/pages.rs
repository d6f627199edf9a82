//! The console's pages. Every handler first finds the session (or sends the browser to the
//! sign-in page); every state change also checks the session's CSRF token and the role.

use super::chart::{stacked_bars, Series};
use super::identity::LoginError;
use super::session::{cookie_token, secret_eq, set_cookie, Session};
use super::triage::{apply, cluster_exception};
use super::view::{enc, page, query, visible_bytes, when, when_nanos, when_opt};
use super::ConsoleState;
use crate::app::{report_of, ApiError};
use axum::extract::{ConnectInfo, Form, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use fa_model::{ClusterInfo, IncidentReport, Priority, VerdictKind};
use fa_store::{
    from_nanos, to_nanos, AlertFilter, ClusterQuery, IncidentQuery, PageRequest, TriageChange,
    TriageKind, TriageStatus,
};
use minijinja::{context, Value};
use serde_json::json;
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

type Params = Query<HashMap<String, String>>;

const PAGE_SIZE: usize = 50;
/// Alerts a text search looks at per page (their bodies are compressed: no SQL index).
const SEARCH_SCAN: usize = 20_000;

fn param<'a>(q: &'a HashMap<String, String>, k: &str) -> &'a str {
    q.get(k).map(|s| s.trim()).unwrap_or("")
}

fn opt(q: &HashMap<String, String>, k: &str) -> Option<String> {
    Some(param(q, k))
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// What every page shows of the signed-in person.
fn me(s: &Session, nav: &str) -> serde_json::Value {
    json!({
        "me": {"name": s.user, "role": s.role.as_str(), "can_triage": s.role.can_triage()},
        "csrf": s.csrf,
        "nav": nav,
    })
}

fn with(base: serde_json::Value, extra: serde_json::Value) -> Value {
    let mut b = base;
    if let (Some(o), serde_json::Value::Object(e)) = (b.as_object_mut(), extra) {
        o.extend(e);
    }
    Value::from_serialize(&b)
}

fn error_page(s: Option<&Session>, status: StatusCode, message: &str) -> Response {
    let base = s.map(|s| me(s, "")).unwrap_or_else(|| json!({}));
    page(
        status,
        "error.html",
        with(base, json!({"status": status.as_u16(), "message": message})),
    )
}

fn api_error_page(s: &Session, e: ApiError) -> Response {
    error_page(Some(s), e.status, &e.message)
}

/// A local path to come back to after signing in; anything else is the overview.
fn safe_next(next: &str) -> String {
    let ok = next.starts_with("/ui/")
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(|c| c.is_control());
    if ok {
        next.to_string()
    } else {
        "/ui/".into()
    }
}

fn no_users() -> Response {
    page(StatusCode::OK, "no_users.html", Value::from(()))
}

/// The session, or the answer to give instead (the no-users page, or the sign-in page).
// The error is the response itself, made once per request: boxing it buys nothing.
#[allow(clippy::result_large_err)]
fn session(c: &ConsoleState, headers: &HeaderMap, uri: &Uri) -> Result<Session, Response> {
    if !c.idp.has_users() {
        return Err(no_users());
    }
    match cookie_token(headers).and_then(|t| c.sessions.get(&t)) {
        Some(s) => Ok(s),
        None => {
            let here = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/ui/");
            Err(Redirect::to(&format!("/ui/login?next={}", enc(here))).into_response())
        }
    }
}

/// A browser request that changes state must come from our own pages: when the browser
/// names the page's origin, it must be this host.
pub(super) fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .unwrap_or("");
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

/// The session for a state change: signed in, same origin, the session's CSRF token sent.
#[allow(clippy::result_large_err)]
pub(super) fn session_for_change(
    c: &ConsoleState,
    headers: &HeaderMap,
    csrf: Option<&str>,
) -> Result<Session, Response> {
    let forbidden = |m: &str| error_page(None, StatusCode::FORBIDDEN, m);
    if !c.idp.has_users() {
        return Err(forbidden("the console has no users"));
    }
    let Some(s) = cookie_token(headers).and_then(|t| c.sessions.get(&t)) else {
        return Err(forbidden(
            "not signed in (or the session expired): sign in again",
        ));
    };
    if !same_origin(headers) {
        return Err(forbidden("the request came from another site"));
    }
    let sent = csrf
        .map(str::to_string)
        .or_else(|| {
            headers
                .get("x-csrf-token")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        })
        .unwrap_or_default();
    if sent.is_empty() || !secret_eq(&sent, &s.csrf) {
        return Err(forbidden(
            "missing or wrong CSRF token: reload the page and try again",
        ));
    }
    Ok(s)
}

// ---------------------------------------------------------------- sign-in

pub async fn login_form(State(c): State<ConsoleState>, Query(q): Params) -> Response {
    if !c.idp.has_users() {
        return no_users();
    }
    page(
        StatusCode::OK,
        "login.html",
        Value::from_serialize(json!({"next": safe_next(param(&q, "next"))})),
    )
}

pub async fn login(
    State(c): State<ConsoleState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    if !c.idp.has_users() {
        return no_users();
    }
    let user = param(&f, "user").to_string();
    let password = f.get("password").cloned().unwrap_or_default();
    let next = safe_next(param(&f, "next"));
    let again = |status: StatusCode, message: String| {
        page(
            status,
            "login.html",
            Value::from_serialize(json!({"next": next, "user": user, "error": message})),
        )
    };
    if !same_origin(&headers) {
        return again(
            StatusCode::FORBIDDEN,
            "the sign-in form was sent from another site".into(),
        );
    }
    let ip = peer.ip().to_string();
    if let Some(wait) = c.limiter.blocked(&ip, &user) {
        let mut r = again(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "too many failed sign-ins: try again in {} s",
                wait.as_secs().max(1)
            ),
        );
        r.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(wait.as_secs().max(1)),
        );
        return r;
    }
    let idp = c.idp.clone();
    let (u, p) = (user.clone(), password);
    let verified = tokio::task::spawn_blocking(move || idp.verify_password(&u, &p))
        .await
        .unwrap_or(Err(LoginError::Invalid));
    match verified {
        Ok(who) => {
            c.limiter.succeeded(&user);
            let (token, _) = c.sessions.create(&who);
            tracing::info!(user = %who.name, role = who.role.as_str(), %ip, "console sign-in");
            let mut r = Redirect::to(&next).into_response();
            if let Ok(v) = HeaderValue::from_str(&set_cookie(
                Some(&token),
                c.secure_cookies,
                c.sessions.absolute,
            )) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(e) => {
            c.limiter.failed(&ip, &user);
            tracing::warn!(%ip, "console sign-in failed");
            again(StatusCode::UNAUTHORIZED, e.to_string())
        }
    }
}

pub async fn logout(
    State(c): State<ConsoleState>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    if let Err(r) = session_for_change(&c, &headers, f.get("csrf").map(String::as_str)) {
        return r;
    }
    if let Some(t) = cookie_token(&headers) {
        c.sessions.remove(&t);
    }
    let mut r = Redirect::to("/ui/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&set_cookie(None, c.secure_cookies, Duration::ZERO)) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

// ---------------------------------------------------------------- overview

/// Windows offered on the overview: (parameter, label, seconds).
const WINDOWS: &[(&str, &str, i64)] = &[
    ("15m", "15 minutes", 900),
    ("1h", "1 hour", 3600),
    ("6h", "6 hours", 6 * 3600),
    ("24h", "24 hours", 24 * 3600),
    ("7d", "7 days", 7 * 24 * 3600),
];

/// Bars per chart.
const BARS: i64 = 60;

fn priority_class(p: Option<Priority>) -> &'static str {
    match p {
        Some(Priority::Emergency | Priority::Alert | Priority::Critical) => "critical",
        Some(Priority::Error) => "error",
        Some(Priority::Warning) => "warning",
        Some(Priority::Notice) => "notice",
        Some(Priority::Informational | Priority::Debug) => "info",
        None => "none",
    }
}

fn verdict_class(v: Option<VerdictKind>) -> &'static str {
    v.map(VerdictKind::as_str).unwrap_or("pending")
}

/// Sum of `falco_analyst_alerts_received_total` over its labels, from the metrics text.
fn alerts_received(metrics_text: &str) -> u64 {
    metrics_text
        .lines()
        .filter(|l| l.starts_with("falco_analyst_alerts_received_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

fn file_size(p: &std::path::Path) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

pub async fn overview(
    State(c): State<ConsoleState>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Params,
) -> Response {
    let s = match session(&c, &headers, &uri) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let win = WINDOWS
        .iter()
        .find(|w| w.0 == param(&q, "window"))
        .unwrap_or(&WINDOWS[1]);
    let now = to_nanos(chrono::Utc::now());
    let span = win.2 * 1_000_000_000;
    let bucket = span / BARS;
    let since = now - span;
    let analyzer = c.app.analyzer.clone();
    let read = c
        .app
        .read(move |st| {
            let o = st.console_overview(since, now, bucket, 10)?;
            let stats = st.stats()?;
            let last_dead = st
                .list_dead_letters(&PageRequest {
                    limit: 1,
                    cursor: None,
                })?
                .items
                .into_iter()
                .next();
            let mut noisy = Vec::new();
            for cl in &o.noisy_benign {
                noisy.push((cl.clone(), cluster_exception(st, &analyzer, cl)?));
            }
            Ok((o, stats, last_dead, noisy))
        })
        .await;
    let (o, stats, last_dead, noisy) = match read {
        Ok(v) => v,
        Err(e) => return api_error_page(&s, e),
    };
    // Charts: one bar per bucket, stacked by priority and by verdict.
    let n = BARS as usize;
    let prio_series: Vec<(&'static str, &'static str)> = vec![
        ("Critical or worse", "critical"),
        ("Error", "error"),
        ("Warning", "warning"),
        ("Notice", "notice"),
        ("Informational/Debug", "info"),
        ("No priority", "none"),
    ];
    let verdict_series: Vec<(&'static str, &'static str)> = vec![
        ("malicious", "malicious"),
        ("suspicious", "suspicious"),
        ("benign", "benign"),
        ("pending", "pending"),
    ];
    let mut by_prio: HashMap<&str, Vec<u64>> = HashMap::new();
    let mut by_verdict: HashMap<&str, Vec<u64>> = HashMap::new();
    let mut total = 0u64;
    for b in &o.buckets {
        let i = ((b.start - since) / bucket.max(1)).clamp(0, BARS - 1) as usize;
        by_prio
            .entry(priority_class(b.priority))
            .or_insert_with(|| vec![0; n])[i] += b.count;
        by_verdict
            .entry(verdict_class(b.verdict))
            .or_insert_with(|| vec![0; n])[i] += b.count;
        total += b.count;
    }
    let mk = |names: &[(&'static str, &'static str)], m: &HashMap<&str, Vec<u64>>| -> Vec<Series> {
        names
            .iter()
            .map(|&(name, class)| Series {
                name,
                class,
                counts: m.get(class).cloned().unwrap_or_else(|| vec![0; n]),
            })
            .collect()
    };
    let per = if bucket >= 60_000_000_000 {
        format!("{} min", bucket / 60_000_000_000)
    } else {
        format!("{} s", bucket / 1_000_000_000)
    };
    let labels = (when(from_nanos(since)), when(from_nanos(now)));
    let chart_p = stacked_bars(
        &format!("Alerts per {per} by priority"),
        &mk(&prio_series, &by_prio),
        (&labels.0, &labels.1),
    );
    let chart_v = stacked_bars(
        &format!("Alerts per {per} by verdict"),
        &mk(&verdict_series, &by_verdict),
        (&labels.0, &labels.1),
    );
    let metrics = &c.app.shared.metrics;
    let received = alerts_received(&metrics.encode());
    let rate = c.ingest_rate(received);
    let wal = {
        let mut p = c.db_path.clone().into_os_string();
        p.push("-wal");
        std::path::PathBuf::from(p)
    };
    let store_bytes = file_size(&c.db_path) + file_size(&wal);
    let open_total: u64 = o.open_incidents.iter().map(|(_, n)| n).sum();
    let open: Vec<serde_json::Value> = [
        VerdictKind::Malicious,
        VerdictKind::Suspicious,
        VerdictKind::Benign,
    ]
    .iter()
    .map(|v| {
        let n = o
            .open_incidents
            .iter()
            .find(|(k, _)| k == v)
            .map_or(0, |x| x.1);
        json!({"verdict": v.as_str(), "count": n,
               "href": format!("/ui/incidents{}", query(&[("verdict", v.as_str()), ("status", "new")]))})
    })
    .collect();
    let top_rules: Vec<serde_json::Value> = o
        .top_rules
        .iter()
        .map(|(r, n)| json!({"rule": r, "count": n, "href": format!("/ui/alerts{}", query(&[("rule", r)]))}))
        .collect();
    let noisy: Vec<serde_json::Value> = noisy
        .iter()
        .map(|(cl, exc)| {
            json!({"rule": cl.rule, "count": cl.count, "location": cl.location,
                   "activity": cl.activity, "exception": exc,
                   "href": format!("/ui/clusters/{}", enc(&cl.fingerprint))})
        })
        .collect();
    let ctx = with(
        me(&s, "overview"),
        json!({
            "window": win.0,
            "windows": WINDOWS.iter().map(|w| json!({"value": w.0, "label": w.1})).collect::<Vec<_>>(),
            "total": total,
            "open": open,
            "open_total": open_total,
            "top_rules": top_rules,
            "noisy": noisy,
            "health": {
                "queue_depth": c.app.shared.queue_depth(),
                "queue_capacity": c.app.shared.queue_capacity,
                "ingest_rate": format!("{rate:.1}"),
                "received": received,
                "store_size": human_bytes(store_bytes),
                "alerts": stats.alerts,
                "unanalyzed": stats.unanalyzed + c.app.in_flight.len() as u64,
                "clusters": stats.clusters,
                "incidents": stats.incidents,
                "dead_letters": stats.dead_letters,
                "store_errors": metrics.store_errors.get(),
                "analysis_errors": metrics.analysis_errors.get(),
                "notifications_dropped": metrics.notifications_dropped.get(),
                "last_rejection": last_dead.map(|d| json!({
                    "at": when(d.received_at), "reason": d.reason
                })),
            },
        }),
    );
    let ctx = context! {
        chart_priority => Value::from_safe_string(chart_p),
        chart_verdict => Value::from_safe_string(chart_v),
        ..ctx
    };
    page(StatusCode::OK, "overview.html", ctx)
}

// ---------------------------------------------------------------- incidents

/// Time filters offered on the lists: (parameter, label, seconds).
const SINCE: &[(&str, &str, i64)] = &[
    ("1h", "last hour", 3600),
    ("24h", "last 24 hours", 24 * 3600),
    ("7d", "last 7 days", 7 * 24 * 3600),
    ("30d", "last 30 days", 30 * 24 * 3600),
];

fn since_param(q: &HashMap<String, String>) -> Option<i64> {
    let w = SINCE.iter().find(|w| w.0 == param(q, "since"))?;
    Some(to_nanos(chrono::Utc::now()) - w.2 * 1_000_000_000)
}

fn choices() -> serde_json::Value {
    json!({
        "verdicts": ["malicious", "suspicious", "benign"],
        "statuses": TriageStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "since": SINCE.iter().map(|w| json!({"value": w.0, "label": w.1})).collect::<Vec<_>>(),
        "priorities": Priority::ALL.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
    })
}

/// The link to the next page: the same filters and the cursor.
fn next_link(
    path: &str,
    q: &HashMap<String, String>,
    keys: &[&str],
    cursor: Option<&str>,
) -> Option<String> {
    let cursor = cursor?;
    let mut pairs: Vec<(&str, &str)> = keys.iter().map(|k| (*k, param(q, k))).collect();
    pairs.push(("cursor", cursor));
    Some(format!("{path}{}", query(&pairs)))
}

fn filters_of(q: &HashMap<String, String>, keys: &[&str]) -> serde_json::Value {
    let m: serde_json::Map<String, serde_json::Value> = keys
        .iter()
        .map(|k| (k.to_string(), json!(param(q, k))))
        .collect();
    serde_json::Value::Object(m)
}

fn bad_filter(s: &Session, what: &str) -> Response {
    error_page(Some(s), StatusCode::BAD_REQUEST, what)
}

const INCIDENT_KEYS: &[&str] = &[
    "verdict",
    "status",
    "since",
    "namespace",
    "host",
    "rule",
    "tactic",
];

pub async fn incidents(
    State(c): State<ConsoleState>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Params,
) -> Response {
    let s = match session(&c, &headers, &uri) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let verdict = match opt(&q, "verdict")
        .map(|v| v.parse::<VerdictKind>())
        .transpose()
    {
        Ok(v) => v,
        Err(_) => return bad_filter(&s, "verdict: expected benign, suspicious or malicious"),
    };
    let status = match opt(&q, "status")
        .map(|v| v.parse::<TriageStatus>())
        .transpose()
    {
        Ok(v) => v,
        Err(e) => return bad_filter(&s, &e.to_string()),
    };
    let query_ = IncidentQuery {
        verdict,
        status,
        since: since_param(&q),
        until: None,
        namespace: opt(&q, "namespace"),
        hostname: opt(&q, "host"),
        rule: opt(&q, "rule"),
        tactic: opt(&q, "tactic"),
    };
    let p = PageRequest {
        limit: PAGE_SIZE,
        cursor: opt(&q, "cursor"),
    };
    let read = c
        .app
        .read(move |st| {
            let page = st.console_incidents(&query_, &p)?;
            let ids: Vec<String> = page.items.iter().map(|i| i.id.clone()).collect();
            let triage = st.triage_map(TriageKind::Incident, &ids)?;
            Ok((page, triage))
        })
        .await;
    let (pg, triage) = match read {
        Ok(v) => v,
        Err(e) => return api_error_page(&s, e),
    };
    let rows: Vec<serde_json::Value> = pg
        .items
        .iter()
        .map(|i| {
            let rep: Option<IncidentReport> = serde_json::from_str(&i.body).ok();
            let t = triage.get(&i.id).cloned().unwrap_or_default();
            json!({
                "id": i.id,
                "href": format!("/ui/incidents/{}", enc(&i.id)),
                "entity": i.entity,
                "verdict": i.verdict.as_str(),
                "alerts": i.alert_count,
                "first_seen": when_nanos(i.first_seen),
                "last_seen": when_nanos(i.last_seen),
                "tactics": rep.as_ref().map(|r| r.tactics.clone()).unwrap_or_default(),
                "summary": rep.as_ref().map(|r| r.summary.clone()).unwrap_or_default(),
                "status": t.status.as_str(),
                "assignee": t.assignee,
            })
        })
        .collect();
    let ctx = with(
        me(&s, "incidents"),
        json!({
            "rows": rows,
            "filters": filters_of(&q, INCIDENT_KEYS),
            "choices": choices(),
            "next": next_link("/ui/incidents", &q, INCIDENT_KEYS, pg.next_cursor.as_deref()),
            "first_page": opt(&q, "cursor").is_none(),
        }),
    );
    page(StatusCode::OK, "incidents.html", ctx)
}

fn audit_rows(items: &[fa_store::AuditEntry]) -> Vec<serde_json::Value> {
    items
        .iter()
        .map(|a| {
            json!({"at": when(a.at), "actor": a.actor, "field": a.field,
                   "old": a.old_value, "new": a.new_value})
        })
        .collect()
}

pub async fn incident(
    State(c): State<ConsoleState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    let s = match session(&c, &headers, &uri) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let key = id.clone();
    let read = c
        .app
        .read(move |st| {
            let Some(row) = st.get_incident(&key)? else {
                return Ok(None);
            };
            let t = st
                .triage_get(TriageKind::Incident, &key)?
                .unwrap_or_default();
            let audit = st.triage_audit(TriageKind::Incident, &key, &PageRequest::default())?;
            Ok(Some((row, t, audit)))
        })
        .await;
    let (row, t, audit) = match read {
        Ok(Some(v)) => v,
        Ok(None) => return error_page(Some(&s), StatusCode::NOT_FOUND, "no such incident"),
        Err(e) => return api_error_page(&s, e),
    };
    let rep: IncidentReport = match serde_json::from_str(&row.body) {
        Ok(r) => r,
        Err(e) => {
            return error_page(
                Some(&s),
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("stored incident unreadable: {e}"),
            )
        }
    };
    let timeline: Vec<serde_json::Value> = rep
        .timeline
        .iter()
        .map(|e| {
            json!({
                "time": when_opt(e.time),
                "last_time": e.last_time.map(when),
                "rule": e.rule,
                "priority": e.priority.map(|p| p.as_str()),
                "verdict": e.verdict.map(|v| v.as_str()),
                "summary": e.summary,
                "count": e.count,
                "report_href": format!("/ui/alerts/{}", enc(&e.report_id)),
                "cluster_href": e.cluster.as_ref().map(|f| format!("/ui/clusters/{}", enc(f))),
            })
        })
        .collect();
    let reasons: Vec<serde_json::Value> = rep
        .verdict
        .reasons
        .iter()
        .map(|r| json!({"text": r.text, "field": r.field, "weight": format!("{:+.1}", r.weight)}))
        .collect();
    let ctx = with(
        me(&s, "incidents"),
        json!({
            "id": rep.id,
            "action": format!("/ui/incidents/{}/triage", enc(&rep.id)),
            "alerts_href": format!("/ui/alerts{}", query(&[("incident", &rep.id)])),
            "summary": rep.summary,
            "entity": rep.entity,
            "first_seen": when_opt(rep.first_seen),
            "last_seen": when_opt(rep.last_seen),
            "alert_count": rep.alert_count,
            "verdict": rep.verdict.kind.as_str(),
            "confidence": format!("{:.0} %", rep.verdict.confidence.get() * 100.0),
            "score": format!("{:.1}", rep.verdict.score),
            "reasons": reasons,
            "tactics": rep.tactics,
            "entities": rep.entities,
            "timeline": timeline,
            "timeline_omitted": rep.timeline_omitted,
            "triage": t,
            "statuses": TriageStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            "audit": audit_rows(&audit.items),
        }),
    );
    page(StatusCode::OK, "incident.html", ctx)
}

/// A triage form: status, assignee, note and the CSRF token.
fn change_from_form(f: &HashMap<String, String>) -> Result<TriageChange, String> {
    let status = opt(f, "status")
        .map(|v| v.parse::<TriageStatus>())
        .transpose()
        .map_err(|e| e.to_string())?;
    Ok(TriageChange {
        status,
        assignee: f.get("assignee").map(|a| {
            let a = a.trim();
            (!a.is_empty()).then(|| a.to_string())
        }),
        note: opt(f, "note"),
    })
}

async fn triage_form(
    c: ConsoleState,
    headers: HeaderMap,
    kind: TriageKind,
    item: String,
    f: HashMap<String, String>,
) -> Response {
    let s = match session_for_change(&c, &headers, f.get("csrf").map(String::as_str)) {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !s.role.can_triage() {
        return error_page(
            Some(&s),
            StatusCode::FORBIDDEN,
            "your role (viewer) may read but not change triage",
        );
    }
    let change = match change_from_form(&f) {
        Ok(ch) => ch,
        Err(e) => return bad_filter(&s, &e),
    };
    let back = match kind {
        TriageKind::Incident => format!("/ui/incidents/{}", enc(&item)),
        TriageKind::Cluster => format!("/ui/clusters/{}", enc(&item)),
    };
    match apply(&c, kind, &item, change, &s.user).await {
        Ok(Some(_)) => Redirect::to(&back).into_response(),
        Ok(None) => error_page(Some(&s), StatusCode::NOT_FOUND, "no such item"),
        Err(e) => api_error_page(&s, e),
    }
}

pub async fn triage_incident_form(
    State(c): State<ConsoleState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    triage_form(c, headers, TriageKind::Incident, id, f).await
}

pub async fn triage_cluster_form(
    State(c): State<ConsoleState>,
    headers: HeaderMap,
    Path(fp): Path<String>,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    triage_form(c, headers, TriageKind::Cluster, fp, f).await
}

// ---------------------------------------------------------------- clusters

const CLUSTER_KEYS: &[&str] = &["verdict", "status", "since", "rule", "q"];

pub async fn clusters(
    State(c): State<ConsoleState>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Params,
) -> Response {
    let s = match session(&c, &headers, &uri) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let verdict = match opt(&q, "verdict")
        .map(|v| v.parse::<VerdictKind>())
        .transpose()
    {
        Ok(v) => v,
        Err(_) => return bad_filter(&s, "verdict: expected benign, suspicious or malicious"),
    };
    let status = match opt(&q, "status")
        .map(|v| v.parse::<TriageStatus>())
        .transpose()
    {
        Ok(v) => v,
        Err(e) => return bad_filter(&s, &e.to_string()),
    };
    let cq = ClusterQuery {
        verdict,
        status,
        rule: opt(&q, "rule"),
        since: since_param(&q),
        text: opt(&q, "q"),
    };
    let p = PageRequest {
        limit: PAGE_SIZE,
        cursor: opt(&q, "cursor"),
    };
    let read = c
        .app
        .read(move |st| {
            let page = st.console_clusters(&cq, &p)?;
            let fps: Vec<String> = page.items.iter().map(|i| i.fingerprint.clone()).collect();
            let triage = st.triage_map(TriageKind::Cluster, &fps)?;
            Ok((page, triage))
        })
        .await;
    let (pg, triage) = match read {
        Ok(v) => v,
        Err(e) => return api_error_page(&s, e),
    };
    let rows: Vec<serde_json::Value> = pg
        .items
        .iter()
        .map(|cl| {
            let t = triage.get(&cl.fingerprint).cloned().unwrap_or_default();
            json!({
                "href": format!("/ui/clusters/{}", enc(&cl.fingerprint)),
                "rule": cl.rule,
                "count": cl.count,
                "verdict": cl.verdict.as_str(),
                "location": cl.location,
                "activity": cl.activity,
                "last_seen": when(cl.last_seen),
                "status": t.status.as_str(),
                "assignee": t.assignee,
            })
        })
        .collect();
    let ctx = with(
        me(&s, "clusters"),
        json!({
            "rows": rows,
            "filters": filters_of(&q, CLUSTER_KEYS),
            "choices": choices(),
            "next": next_link("/ui/clusters", &q, CLUSTER_KEYS, pg.next_cursor.as_deref()),
            "first_page": opt(&q, "cursor").is_none(),
        }),
    );
    page(StatusCode::OK, "clusters.html", ctx)
}

pub async fn cluster(
    State(c): State<ConsoleState>,
    headers: HeaderMap,
    uri: Uri,
    Path(fp): Path<String>,
) -> Response {
    let s = match session(&c, &headers, &uri) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let key = fp.clone();
    let analyzer = c.app.analyzer.clone();
    let read = c
        .app
        .read(move |st| {
            let Some(cl) = st.get_cluster(&key)? else {
                return Ok(None);
            };
            let t = st
                .triage_get(TriageKind::Cluster, &key)?
                .unwrap_or_default();
            let audit = st.triage_audit(TriageKind::Cluster, &key, &PageRequest::default())?;
            let exc = cluster_exception(st, &analyzer, &cl)?;
            Ok(Some((cl, t, audit, exc)))
        })
        .await;
    let (cl, t, audit, exc) = match read {
        Ok(Some(v)) => v,
        Ok(None) => return error_page(Some(&s), StatusCode::NOT_FOUND, "no such cluster"),
        Err(e) => return api_error_page(&s, e),
    };
    let ctx = with(
        me(&s, "clusters"),
        json!({
            "fingerprint": cl.fingerprint,
            "action": format!("/ui/clusters/{}/triage", enc(&cl.fingerprint)),
            "rule": cl.rule,
            "count": cl.count,
            "verdict": cl.verdict.as_str(),
            "first_seen": when(cl.first_seen),
            "last_seen": when(cl.last_seen),
            "location": cl.location,
            "activity": cl.activity,
            "report_href": format!("/ui/alerts/{}", enc(&cl.representative_uuid)),
            "alerts_href": format!("/ui/alerts{}", query(&[("cluster", &cl.fingerprint)])),
            "exception": exc,
            "download_href": format!("/ui/tuning/falco-exceptions.yaml{}", query(&[("fp", &cl.fingerprint)])),
            "triage": t,
            "muted": t.status.mutes_notifications(),
            "statuses": TriageStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            "audit": audit_rows(&audit.items),
        }),
    );
    page(StatusCode::OK, "cluster.html", ctx)
}

// ---------------------------------------------------------------- alerts

const ALERT_KEYS: &[&str] = &[
    "verdict",
    "min_priority",
    "rule",
    "host",
    "namespace",
    "incident",
    "cluster",
    "since",
    "q",
];

pub async fn alerts(
    State(c): State<ConsoleState>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Params,
) -> Response {
    let s = match session(&c, &headers, &uri) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let verdict = match opt(&q, "verdict")
        .map(|v| v.parse::<VerdictKind>())
        .transpose()
    {
        Ok(v) => v,
        Err(_) => return bad_filter(&s, "verdict: expected benign, suspicious or malicious"),
    };
    let min_priority = match opt(&q, "min_priority")
        .map(|v| v.parse::<Priority>())
        .transpose()
    {
        Ok(v) => v,
        Err(_) => return bad_filter(&s, "min_priority: expected a Falco priority"),
    };
    let filter = AlertFilter {
        min_priority,
        verdict,
        rule: opt(&q, "rule"),
        hostname: opt(&q, "host"),
        namespace: opt(&q, "namespace"),
        incident_id: opt(&q, "incident"),
        fingerprint: opt(&q, "cluster"),
        since: since_param(&q),
        ..Default::default()
    };
    let text = opt(&q, "q");
    let p = PageRequest {
        limit: PAGE_SIZE,
        cursor: opt(&q, "cursor"),
    };
    let read = c
        .app
        .read(move |st| match text {
            Some(t) => {
                let r = st.search_alerts(&filter, &t, &p, SEARCH_SCAN)?;
                Ok((r.items, r.next_cursor, Some(r.scanned)))
            }
            None => {
                let r = st.list_alerts(&filter, &p)?;
                Ok((r.items, r.next_cursor, None))
            }
        })
        .await;
    let (items, next, scanned) = match read {
        Ok(v) => v,
        Err(e) => return api_error_page(&s, e),
    };
    let rows: Vec<serde_json::Value> = items
        .iter()
        .map(|a| {
            json!({
                "href": format!("/ui/alerts/{}", enc(&a.uuid)),
                "uuid": a.uuid,
                "time": when(a.time),
                "rule": a.rule,
                "priority": a.priority.map(|p| p.as_str()),
                "hostname": a.hostname,
                "namespace": a.namespace,
                "verdict": a.verdict.map(|v| v.as_str()).unwrap_or("pending"),
                "incident_href": a.incident_id.as_ref().map(|i| format!("/ui/incidents/{}", enc(i))),
            })
        })
        .collect();
    let ctx = with(
        me(&s, "alerts"),
        json!({
            "rows": rows,
            "filters": filters_of(&q, ALERT_KEYS),
            "choices": choices(),
            "scanned": scanned,
            "next": next_link("/ui/alerts", &q, ALERT_KEYS, next.as_deref()),
            "first_page": opt(&q, "cursor").is_none(),
        }),
    );
    page(StatusCode::OK, "alerts.html", ctx)
}

/// The stored alert, its cluster and the cluster's stored report (for a repeat).
async fn alert_record(
    c: &ConsoleState,
    uuid: String,
) -> Result<
    Option<(
        fa_store::AlertRecord,
        Option<fa_store::ClusterRow>,
        Option<String>,
    )>,
    ApiError,
> {
    c.app
        .read(move |st| {
            let Some(rec) = st.get_alert(&uuid)? else {
                return Ok(None);
            };
            let cluster = match &rec.row.fingerprint {
                Some(fp) => st.get_cluster(fp)?,
                None => None,
            };
            let cluster_report = match (&rec.report_json, &cluster) {
                (None, Some(cl)) if cl.representative_uuid != uuid => st
                    .get_alert(&cl.representative_uuid)?
                    .and_then(|r| r.report_json),
                _ => None,
            };
            Ok(Some((rec, cluster, cluster_report)))
        })
        .await
}

pub async fn alert(
    State(c): State<ConsoleState>,
    headers: HeaderMap,
    uri: Uri,
    Path(uuid): Path<String>,
) -> Response {
    let s = match session(&c, &headers, &uri) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (rec, cluster) = match alert_record(&c, uuid).await {
        Ok(Some((rec, cl, _))) => (rec, cl),
        Ok(None) => {
            return error_page(
                Some(&s),
                StatusCode::NOT_FOUND,
                "no such alert (or not analysed yet)",
            )
        }
        Err(e) => return api_error_page(&s, e),
    };
    let r = &rec.row;
    let ctx = with(
        me(&s, "alerts"),
        json!({
            "uuid": r.uuid,
            "rule": r.rule,
            "time": when(r.time),
            "received_at": when(r.received_at),
            "priority": r.priority.map(|p| p.as_str()),
            "source": r.source,
            "hostname": r.hostname,
            "namespace": r.namespace,
            "analyzed": r.analyzed,
            "verdict": r.verdict.map(|v| v.as_str()).unwrap_or("pending"),
            "score": r.score.map(|x| format!("{x:.1}")),
            "report_href": format!("/ui/alerts/{}/report", enc(&r.uuid)),
            "raw_href": format!("/ui/alerts/{}/raw", enc(&r.uuid)),
            "incident_href": r.incident_id.as_ref().map(|i| format!("/ui/incidents/{}", enc(i))),
            "cluster_href": cluster.as_ref().map(|cl| format!("/ui/clusters/{}", enc(&cl.fingerprint))),
            "cluster_count": cluster.as_ref().map(|cl| cl.count),
        }),
    );
    page(StatusCode::OK, "alert.html", ctx)
}

/// The full report, as `--format html` renders it, framed by the alert page: the report's
/// own policy (no script, its one hashed style) and framing by this site only.
pub async fn alert_report(
    State(c): State<ConsoleState>,
    headers: HeaderMap,
    uri: Uri,
    Path(uuid): Path<String>,
) -> Response {
    let s = match session(&c, &headers, &uri) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (rec, cluster, cluster_report) = match alert_record(&c, uuid).await {
        Ok(Some(v)) => v,
        Ok(None) => return error_page(Some(&s), StatusCode::NOT_FOUND, "no such alert"),
        Err(e) => return api_error_page(&s, e),
    };
    let info = cluster.map(|cl| ClusterInfo {
        fingerprint: cl.fingerprint,
        count: cl.count,
        first_seen: Some(cl.first_seen),
        last_seen: Some(cl.last_seen),
    });
    let analyzer = c.app.analyzer.clone();
    let rendered = tokio::task::spawn_blocking(move || {
        report_of(&analyzer, &rec, info, cluster_report.as_deref())
            .map(|r| r.map(|r| fa_report::render(&r, fa_report::Format::Html)))
    })
    .await;
    let html = match rendered {
        Ok(Ok(Some(h))) => h,
        Ok(Ok(None)) => {
            return error_page(
                Some(&s),
                StatusCode::ACCEPTED,
                "the alert is not analysed yet",
            )
        }
        Ok(Err(e)) => return api_error_page(&s, e),
        Err(e) => {
            return error_page(
                Some(&s),
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("report task failed: {e}"),
            )
        }
    };
    let csp = format!(
        "{}; frame-ancestors 'self'",
        fa_report::html_content_security_policy()
    );
    let mut r = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    r.headers_mut().insert(
        header::X_FRAME_OPTIONS,
        HeaderValue::from_static("SAMEORIGIN"),
    );
    r
}

/// The alert as stored (its canonical JSON), with its verdict.
pub async fn alert_raw(
    State(c): State<ConsoleState>,
    headers: HeaderMap,
    uri: Uri,
    Path(uuid): Path<String>,
) -> Response {
    let s = match session(&c, &headers, &uri) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let rec = match alert_record(&c, uuid).await {
        Ok(Some((rec, _, _))) => rec,
        Ok(None) => return error_page(Some(&s), StatusCode::NOT_FOUND, "no such alert"),
        Err(e) => return api_error_page(&s, e),
    };
    let alert: serde_json::Value =
        serde_json::from_str(&rec.body).unwrap_or(serde_json::Value::String(rec.body.clone()));
    let verdict: serde_json::Value = rec
        .verdict_json
        .as_deref()
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or(serde_json::Value::Null);
    let body = serde_json::to_string_pretty(&json!({"alert": alert, "verdict": verdict}))
        .unwrap_or_default();
    (
        [
            (header::CONTENT_TYPE, "application/json; charset=utf-8"),
            (header::CONTENT_DISPOSITION, "inline"),
        ],
        body,
    )
        .into_response()
}

// ---------------------------------------------------------------- tuning

/// Clusters with an exception to offer: benign ones, and any marked false positive.
async fn tuning_candidates(
    c: &ConsoleState,
    only: Option<Vec<String>>,
) -> Result<Vec<(fa_store::ClusterRow, String, TriageStatus)>, ApiError> {
    let analyzer = c.app.analyzer.clone();
    c.app
        .read(move |st| {
            let mut clusters = Vec::new();
            match only {
                Some(fps) => {
                    for fp in fps {
                        if let Some(cl) = st.get_cluster(&fp)? {
                            clusters.push(cl);
                        }
                    }
                }
                None => {
                    let limit = PageRequest {
                        limit: 200,
                        cursor: None,
                    };
                    let fp = ClusterQuery {
                        status: Some(TriageStatus::FalsePositive),
                        ..Default::default()
                    };
                    clusters.extend(st.console_clusters(&fp, &limit)?.items);
                    let benign = ClusterQuery {
                        verdict: Some(VerdictKind::Benign),
                        ..Default::default()
                    };
                    for cl in st.console_clusters(&benign, &limit)?.items {
                        if !clusters.iter().any(|x| x.fingerprint == cl.fingerprint) {
                            clusters.push(cl);
                        }
                    }
                }
            }
            let fps: Vec<String> = clusters.iter().map(|x| x.fingerprint.clone()).collect();
            let triage = st.triage_map(TriageKind::Cluster, &fps)?;
            let mut out = Vec::new();
            for cl in clusters {
                let status = triage
                    .get(&cl.fingerprint)
                    .map(|t| t.status)
                    .unwrap_or_default();
                if cl.verdict != VerdictKind::Benign && status != TriageStatus::FalsePositive {
                    continue;
                }
                if let Some(e) = cluster_exception(st, &analyzer, &cl)? {
                    out.push((cl, e, status));
                }
            }
            out.sort_by_key(|x| std::cmp::Reverse(x.0.count));
            Ok(out)
        })
        .await
}

pub async fn tuning(State(c): State<ConsoleState>, headers: HeaderMap, uri: Uri) -> Response {
    let s = match session(&c, &headers, &uri) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let list = match tuning_candidates(&c, None).await {
        Ok(v) => v,
        Err(e) => return api_error_page(&s, e),
    };
    let rows: Vec<serde_json::Value> = list
        .iter()
        .map(|(cl, exc, st)| {
            json!({"fingerprint": cl.fingerprint, "rule": cl.rule, "count": cl.count,
                   "verdict": cl.verdict.as_str(), "status": st.as_str(),
                   "location": cl.location, "activity": cl.activity, "exception": exc,
                   "href": format!("/ui/clusters/{}", enc(&cl.fingerprint))})
        })
        .collect();
    page(
        StatusCode::OK,
        "tuning.html",
        with(me(&s, "tuning"), json!({"rows": rows})),
    )
}

/// One Falco rules file with the exceptions of the chosen clusters (all offered when none is
/// chosen).
pub async fn tuning_download(
    State(c): State<ConsoleState>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<Vec<(String, String)>>,
) -> Response {
    let s = match session(&c, &headers, &uri) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let chosen: Vec<String> = q
        .into_iter()
        .filter(|(k, v)| k == "fp" && !v.trim().is_empty())
        .map(|(_, v)| v)
        .collect();
    let only = (!chosen.is_empty()).then_some(chosen);
    let list = match tuning_candidates(&c, only).await {
        Ok(v) => v,
        Err(e) => return api_error_page(&s, e),
    };
    let mut out = String::from(
        "# Falco exceptions chosen in the falco-analyst console, for benign clusters and clusters\n\
         # marked false positive. Each is appended to its rule (which stays enabled) and scoped to\n\
         # the exact values seen. Review, then load this file after the upstream rules files.\n",
    );
    for (cl, exc, st) in &list {
        let one_line = |t: &str| t.replace(['\n', '\r'], " ");
        out.push_str(&format!(
            "\n# cluster {} ({} alerts, {}, {}): {}\n",
            one_line(&cl.fingerprint),
            cl.count,
            cl.verdict.as_str(),
            st.as_str(),
            one_line(&cl.rule)
        ));
        out.push_str(exc.trim_end());
        out.push('\n');
    }
    (
        [
            (header::CONTENT_TYPE, "application/yaml; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"falco-analyst-exceptions.yaml\"",
            ),
        ],
        out,
    )
        .into_response()
}

// ---------------------------------------------------------------- dead letters

pub async fn dead_letters(
    State(c): State<ConsoleState>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Params,
) -> Response {
    let s = match session(&c, &headers, &uri) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let p = PageRequest {
        limit: PAGE_SIZE,
        cursor: opt(&q, "cursor"),
    };
    let pg = match c.app.read(move |st| st.list_dead_letters(&p)).await {
        Ok(v) => v,
        Err(e) => return api_error_page(&s, e),
    };
    let rows: Vec<serde_json::Value> = pg
        .items
        .iter()
        .map(|d| {
            json!({"id": d.id, "at": when(d.received_at), "origin": d.origin,
                   "kind": d.reason_kind, "reason": d.reason, "bytes": d.raw.len(),
                   "raw": visible_bytes(&d.raw[..d.raw.len().min(64 * 1024)]),
                   "truncated": d.raw.len() > 64 * 1024})
        })
        .collect();
    let ctx = with(
        me(&s, "dead-letters"),
        json!({
            "rows": rows,
            "next": pg.next_cursor.as_deref().map(|cur| format!("/ui/dead-letters{}", query(&[("cursor", cur)]))),
        }),
    );
    page(StatusCode::OK, "dead_letters.html", ctx)
}

// ---------------------------------------------------------------- live

/// How often the live stream looks for new or changed incidents and clusters.
const LIVE_EVERY: Duration = Duration::from_secs(2);

/// Server-Sent Events: `incident` and `cluster` events (JSON) for what was updated since the
/// stream opened. The page inserts them with `textContent`, never as HTML.
pub async fn live(State(c): State<ConsoleState>, headers: HeaderMap, uri: Uri) -> Response {
    if let Err(r) = session(&c, &headers, &uri) {
        return r;
    }
    let token = cookie_token(&headers).unwrap_or_default();
    let start = to_nanos(chrono::Utc::now());
    let state = (c, token, start, start, true);
    let stream = futures_util::stream::unfold(
        state,
        |(c, token, mut inc_mark, mut cl_mark, first)| async move {
            if !first {
                tokio::time::sleep(LIVE_EVERY).await;
            }
            // The session may have ended (logout, expiry): the stream ends with it.
            c.sessions.get(&token)?;
            let recent = PageRequest {
                limit: 20,
                cursor: None,
            };
            let read = c
                .app
                .read(move |st| {
                    Ok((
                        st.console_incidents(&IncidentQuery::default(), &recent)?,
                        st.console_clusters(&ClusterQuery::default(), &recent)?,
                    ))
                })
                .await;
            let mut events = Vec::new();
            if let Ok((incs, cls)) = read {
                for i in incs.items.iter().rev().filter(|i| i.updated_at > inc_mark) {
                    let data = json!({"id": i.id, "entity": i.entity, "verdict": i.verdict.as_str(),
                                  "alerts": i.alert_count, "last_seen": when_nanos(i.last_seen),
                                  "href": format!("/ui/incidents/{}", enc(&i.id))});
                    events.push(Event::default().event("incident").data(data.to_string()));
                }
                if let Some(i) = incs.items.first() {
                    inc_mark = inc_mark.max(i.updated_at);
                }
                for cl in cls
                    .items
                    .iter()
                    .rev()
                    .filter(|cl| to_nanos(cl.last_seen) > cl_mark)
                {
                    let data = json!({"fingerprint": cl.fingerprint, "rule": cl.rule, "verdict": cl.verdict.as_str(),
                                  "count": cl.count, "location": cl.location, "last_seen": when(cl.last_seen),
                                  "href": format!("/ui/clusters/{}", enc(&cl.fingerprint))});
                    events.push(Event::default().event("cluster").data(data.to_string()));
                }
                if let Some(cl) = cls.items.first() {
                    cl_mark = cl_mark.max(to_nanos(cl.last_seen));
                }
            }
            if events.is_empty() {
                events.push(Event::default().comment("tick"));
            }
            let batch = futures_util::stream::iter(events.into_iter().map(Ok::<_, Infallible>));
            Some((batch, (c, token, inc_mark, cl_mark, false)))
        },
    );
    use futures_util::StreamExt as _;
    Sse::new(stream.flatten())
        .keep_alive(KeepAlive::default())
        .into_response()
}
