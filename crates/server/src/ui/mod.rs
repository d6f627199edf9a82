//! The web console under `/ui/`: server-rendered pages (minijinja, autoescape), one small
//! embedded script and stylesheet, a strict Content-Security-Policy, sessions for people from
//! the configuration file, and stored triage with its REST API
//! (`PATCH /api/v1/{incidents,clusters}/{id}/triage`, `GET .../audit`).
//!
//! Nothing here is loaded from the internet: templates and assets are compiled in.

pub mod chart;
pub mod identity;
mod pages;
pub mod session;
mod triage;
mod view;

pub use identity::{hash_password, IdentityProvider, Role, UserConfig};

use crate::app::AppState;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, patch, post};
use axum::Router;
use fa_sinks::notify::duration_str;
use fa_store::Store;
use serde::Deserialize;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// The console's Content-Security-Policy: our own script and stylesheet, nothing inline,
/// nothing from elsewhere, no framing.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                       connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// `[ui]` in the configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UiConfig {
    /// People who may sign in; none means the console only explains how to add one.
    pub users: Vec<UserConfig>,
    /// A session ends after this long without a request.
    #[serde(with = "duration_str")]
    pub session_idle: Duration,
    /// ... and this long after sign-in, whatever happens.
    #[serde(with = "duration_str")]
    pub session_max: Duration,
    /// Failed sign-ins allowed per client address and per user name within `login_window`.
    pub login_failures: usize,
    #[serde(with = "duration_str")]
    pub login_window: Duration,
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig {
            users: Vec::new(),
            session_idle: Duration::from_secs(30 * 60),
            session_max: Duration::from_secs(12 * 3600),
            login_failures: 5,
            login_window: Duration::from_secs(5 * 60),
        }
    }
}

/// Clusters whose notifications are muted (acknowledged or false positive), shared with
/// the notifier task.
#[derive(Debug, Default)]
pub struct Muted(RwLock<HashSet<String>>);

impl Muted {
    /// The muted clusters stored (none when the store cannot say).
    pub fn load(store: &dyn Store) -> Self {
        let set = match store.muted_clusters() {
            Ok(v) => v.into_iter().collect(),
            Err(e) => {
                tracing::warn!(error = %e, "reading muted clusters; all clusters notify");
                HashSet::new()
            }
        };
        Muted(RwLock::new(set))
    }

    pub fn is_muted(&self, fingerprint: &str) -> bool {
        match self.0.read() {
            Ok(s) => s.contains(fingerprint),
            Err(p) => p.into_inner().contains(fingerprint),
        }
    }

    /// Whether a notification must be held back: an alert of a muted cluster.
    pub fn holds(&self, note: &fa_sinks::notify::Notification) -> bool {
        note.kind == fa_sinks::notify::NotificationKind::Alert && self.is_muted(&note.key)
    }

    pub fn set(&self, fingerprint: &str, muted: bool) {
        let mut s = match self.0.write() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        if muted {
            s.insert(fingerprint.to_string());
        } else {
            s.remove(fingerprint);
        }
    }
}

/// Alerts received so far and when, to turn the counter into a rate.
#[derive(Debug)]
struct RateSample {
    at: Instant,
    total: u64,
    rate: f64,
}

/// Everything the console needs besides the API's state.
pub struct Console {
    pub app: AppState,
    pub idp: Arc<dyn IdentityProvider>,
    pub sessions: session::SessionStore,
    pub limiter: session::LoginLimiter,
    /// A writing connection for triage: short IMMEDIATE transactions beside the analysis
    /// writer.
    pub triage_store: Arc<Mutex<Box<dyn Store>>>,
    pub muted: Arc<Muted>,
    /// Cookies get `Secure` (the service runs TLS).
    pub secure_cookies: bool,
    pub db_path: PathBuf,
    rate: Mutex<Option<RateSample>>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console").finish_non_exhaustive()
    }
}

impl Console {
    pub fn new(
        app: AppState,
        cfg: &UiConfig,
        triage_store: Box<dyn Store>,
        muted: Arc<Muted>,
        secure_cookies: bool,
        db_path: PathBuf,
    ) -> Result<Self, identity::UserConfigError> {
        Ok(Console {
            app,
            idp: Arc::new(identity::ConfigUsers::new(&cfg.users)?),
            sessions: session::SessionStore::new(cfg.session_idle, cfg.session_max),
            limiter: session::LoginLimiter::new(cfg.login_failures, cfg.login_window),
            triage_store: Arc::new(Mutex::new(triage_store)),
            muted,
            secure_cookies,
            db_path,
            rate: Mutex::new(None),
        })
    }

    /// Alerts received per second since the previous call (at least a second apart).
    fn ingest_rate(&self, total: u64) -> f64 {
        let mut g = match self.rate.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let now = Instant::now();
        match g.as_mut() {
            None => {
                *g = Some(RateSample {
                    at: now,
                    total,
                    rate: 0.0,
                });
                0.0
            }
            Some(s) => {
                let dt = now.duration_since(s.at).as_secs_f64();
                if dt >= 1.0 {
                    s.rate = total.saturating_sub(s.total) as f64 / dt;
                    s.at = now;
                    s.total = total;
                }
                s.rate
            }
        }
    }
}

pub type ConsoleState = Arc<Console>;

/// The console's routes and the triage API; merged beside the API router.
pub fn router(c: ConsoleState) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(pages::overview))
        .route("/ui/login", get(pages::login_form).post(pages::login))
        .route("/ui/logout", post(pages::logout))
        .route("/ui/incidents", get(pages::incidents))
        .route("/ui/incidents/{id}", get(pages::incident))
        .route(
            "/ui/incidents/{id}/triage",
            post(pages::triage_incident_form),
        )
        .route("/ui/clusters", get(pages::clusters))
        .route("/ui/clusters/{fp}", get(pages::cluster))
        .route("/ui/clusters/{fp}/triage", post(pages::triage_cluster_form))
        .route("/ui/alerts", get(pages::alerts))
        .route("/ui/alerts/{uuid}", get(pages::alert))
        .route("/ui/alerts/{uuid}/report", get(pages::alert_report))
        .route("/ui/alerts/{uuid}/raw", get(pages::alert_raw))
        .route("/ui/tuning", get(pages::tuning))
        .route(
            "/ui/tuning/falco-exceptions.yaml",
            get(pages::tuning_download),
        )
        .route("/ui/dead-letters", get(pages::dead_letters))
        .route("/ui/live", get(pages::live))
        .route("/ui/assets/console.css", get(css))
        .route("/ui/assets/console.js", get(js))
        .route(
            "/api/v1/incidents/{id}/triage",
            patch(triage::patch_incident).get(triage::get_incident),
        )
        .route("/api/v1/incidents/{id}/audit", get(triage::incident_audit))
        .route(
            "/api/v1/clusters/{fp}/triage",
            patch(triage::patch_cluster).get(triage::get_cluster),
        )
        .route("/api/v1/clusters/{fp}/audit", get(triage::cluster_audit))
        .layer(middleware::from_fn(headers))
        .with_state(c)
}

/// Security headers for every console answer. The report page framed inside the alert page
/// sets its own policy first; it is kept.
async fn headers(mut req: Request, next: Next) -> Response {
    // HTTP/2 names the host in the URI, not in a Host header: the same-origin check of state
    // changes compares the Origin header with it.
    if !req.headers().contains_key(header::HOST) {
        if let Some(v) = req
            .uri()
            .authority()
            .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        {
            req.headers_mut().insert(header::HOST, v);
        }
    }
    let is_get = req.method() == Method::GET;
    let mut r = next.run(req).await;
    let h = r.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if is_get && !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

const CSS: &str = include_str!("../../assets/console.css");
const JS: &str = include_str!("../../assets/console.js");

async fn css() -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        CSS,
    )
        .into_response()
}

async fn js() -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=300"),
        ],
        JS,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use fa_sinks::notify::{Notification, NotificationKind};

    fn note(kind: NotificationKind, key: &str) -> Notification {
        Notification {
            kind,
            key: key.into(),
            verdict: fa_model::VerdictKind::Malicious,
            confidence: 0.9,
            rule: "Terminal shell in container".into(),
            priority: None,
            location: "pod:shop/web".into(),
            summary: "s".into(),
            reasons: Vec::new(),
            time: None,
            alert_uuid: None,
            incident_id: None,
            link: None,
            folded: 0,
        }
    }

    #[test]
    fn muted_clusters_hold_their_alert_notifications_only() {
        let m = Muted::default();
        m.set("fp-1", true);
        assert!(m.holds(&note(NotificationKind::Alert, "fp-1")));
        assert!(!m.holds(&note(NotificationKind::Alert, "fp-2")));
        // An incident's notification is keyed by the incident, never muted by a cluster.
        assert!(!m.holds(&note(NotificationKind::Incident, "fp-1")));
        m.set("fp-1", false);
        assert!(!m.holds(&note(NotificationKind::Alert, "fp-1")));
    }
}
