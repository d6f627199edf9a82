//! Notifiers: tell people about what matters. A Slack incoming webhook (Block Kit message) and
//! a generic JSON webhook, each with its own filter (minimum priority, verdict not benign,
//! incidents only), per-cluster rate limiting (one message per cluster per interval, carrying
//! the count of what was folded in) and retries with exponential back-off.
//!
//! Alert content is attacker-chosen: everything put in a Slack message is escaped (`&`, `<`,
//! `>`, so no `<!channel>` pings and no disguised links), stripped of control characters and
//! cut to Slack's limits.

use backon::{ExponentialBuilder, Retryable};
use chrono::{DateTime, Utc};
use fa_model::{Priority, VerdictKind};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// `[notify]` in the service configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    pub slack: Option<SinkConfig>,
    pub webhook: Option<SinkConfig>,
}

/// One notifier. For Slack, `url` is the incoming-webhook URL.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    pub url: String,
    /// Extra request headers (webhook only), e.g. an Authorization header.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(flatten)]
    pub filter: Filter,
    /// One message per cluster (or incident) per interval, e.g. `5m`.
    #[serde(default = "default_interval", with = "duration_str")]
    pub rate_limit: Duration,
    /// Attempts after the first one, for network errors, 429 and 5xx.
    #[serde(default = "default_retries")]
    pub retries: usize,
    #[serde(default = "default_timeout", with = "duration_str")]
    pub timeout: Duration,
}

impl SinkConfig {
    /// A sink posting to `url` with every other setting at its default.
    pub fn new(url: impl Into<String>) -> Self {
        SinkConfig {
            url: url.into(),
            headers: BTreeMap::new(),
            filter: Filter::default(),
            rate_limit: default_interval(),
            retries: default_retries(),
            timeout: default_timeout(),
        }
    }
}

fn default_interval() -> Duration {
    Duration::from_secs(300)
}
fn default_retries() -> usize {
    3
}
fn default_timeout() -> Duration {
    Duration::from_secs(10)
}

/// Which notifications a sink takes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Filter {
    /// Only alerts of this priority or more severe (incidents pass on their verdict).
    pub min_priority: Option<Priority>,
    /// Drop alerts and incidents judged benign.
    pub exclude_benign: bool,
    /// Only incidents (several alerts on one container, pod or host), no single alerts.
    pub incidents_only: bool,
}

impl Default for Filter {
    fn default() -> Self {
        Filter {
            min_priority: None,
            exclude_benign: true,
            incidents_only: false,
        }
    }
}

impl Filter {
    pub fn accepts(
        &self,
        kind: NotificationKind,
        priority: Option<Priority>,
        verdict: VerdictKind,
    ) -> bool {
        if self.exclude_benign && verdict == VerdictKind::Benign {
            return false;
        }
        match kind {
            NotificationKind::Incident => true,
            NotificationKind::Alert => {
                if self.incidents_only {
                    return false;
                }
                match (self.min_priority, priority) {
                    (Some(min), Some(p)) => p.level() >= min.level(),
                    (Some(_), None) => false,
                    (None, _) => true,
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NotificationKind {
    Alert,
    Incident,
}

/// What a notifier says about one alert or incident.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Notification {
    pub kind: NotificationKind,
    /// What rate limiting groups by: the cluster fingerprint, or the incident id.
    pub key: String,
    pub verdict: VerdictKind,
    pub confidence: f32,
    pub rule: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// Where it happened: `container:…`, `pod:ns/name`, `host:…`.
    pub location: String,
    pub summary: String,
    /// The strongest reasons behind the verdict, strongest first.
    pub reasons: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub time: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert_uuid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incident_id: Option<String>,
    /// A link to the full report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Notifications with the same key folded into this one since the previous message.
    pub folded: u64,
}

/// One message per key per interval. What arrives in between is folded: counted, and the
/// count goes out with the next message (or on its own when the interval ends).
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    slots: HashMap<String, Slot>,
}

#[derive(Debug)]
struct Slot {
    last_sent: Instant,
    folded: u64,
    latest: Option<Notification>,
}

/// Keys remembered at most; the stalest are forgotten first (a forgotten key just sends again).
const MAX_KEYS: usize = 50_000;

impl RateLimiter {
    pub fn new(interval: Duration) -> Self {
        RateLimiter {
            interval,
            slots: HashMap::new(),
        }
    }

    /// Either the notification to send now (with `folded` set) or `None` when it was folded.
    pub fn offer(&mut self, mut n: Notification, now: Instant) -> Option<Notification> {
        if let Some(slot) = self.slots.get_mut(&n.key) {
            if now.duration_since(slot.last_sent) < self.interval {
                slot.folded += 1;
                slot.latest = Some(n);
                return None;
            }
            n.folded = slot.folded;
            slot.folded = 0;
            slot.latest = None;
            slot.last_sent = now;
            return Some(n);
        }
        if self.slots.len() >= MAX_KEYS {
            self.forget_stalest();
        }
        self.slots.insert(
            n.key.clone(),
            Slot {
                last_sent: now,
                folded: 0,
                latest: None,
            },
        );
        n.folded = 0;
        Some(n)
    }

    /// Keys whose interval has ended with folded notifications waiting: one message each,
    /// the latest notification with the folded count (itself included).
    pub fn due(&mut self, now: Instant) -> Vec<Notification> {
        let mut out = Vec::new();
        for slot in self.slots.values_mut() {
            if slot.folded > 0 && now.duration_since(slot.last_sent) >= self.interval {
                if let Some(mut n) = slot.latest.take() {
                    // The latest is what the message shows; the rest were folded into it.
                    n.folded = slot.folded - 1;
                    out.push(n);
                }
                slot.folded = 0;
                slot.last_sent = now;
            }
        }
        out
    }

    fn forget_stalest(&mut self) {
        let mut by_age: Vec<(Instant, String)> = self
            .slots
            .iter()
            .map(|(k, s)| (s.last_sent, k.clone()))
            .collect();
        by_age.sort();
        for (_, k) in by_age.into_iter().take(MAX_KEYS / 10) {
            self.slots.remove(&k);
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("notifier {sink}: invalid URL `{url}`: it must start with http:// or https://")]
    BadUrl { sink: &'static str, url: String },
    #[error("notifier {sink}: invalid header `{name}`")]
    BadHeader { sink: &'static str, name: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// How one sink handled one notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent { attempts: usize },
    Folded,
    Filtered,
    Failed { attempts: usize, error: String },
}

impl Outcome {
    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Sent { .. } => "sent",
            Outcome::Folded => "folded",
            Outcome::Filtered => "filtered",
            Outcome::Failed { .. } => "failed",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkKind {
    Slack,
    Webhook,
}

impl SinkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SinkKind::Slack => "slack",
            SinkKind::Webhook => "webhook",
        }
    }
}

struct Sink {
    kind: SinkKind,
    url: String,
    headers: reqwest::header::HeaderMap,
    filter: Filter,
    limiter: Mutex<RateLimiter>,
    retries: usize,
    timeout: Duration,
}

/// Every configured sink with its filter and rate limiter.
pub struct Notifier {
    sinks: Vec<Sink>,
    client: reqwest::Client,
    /// The first retry waits this long (then doubles); small in tests.
    pub min_backoff: Duration,
}

#[derive(Debug)]
struct SendError {
    retryable: bool,
    retry_after: Option<Duration>,
    message: String,
}

impl Notifier {
    pub fn from_config(cfg: &NotifyConfig) -> Result<Self, NotifyError> {
        let mut sinks = Vec::new();
        for (kind, c) in [
            (SinkKind::Slack, &cfg.slack),
            (SinkKind::Webhook, &cfg.webhook),
        ] {
            let Some(c) = c else { continue };
            if !(c.url.starts_with("http://") || c.url.starts_with("https://")) {
                return Err(NotifyError::BadUrl {
                    sink: kind.as_str(),
                    url: c.url.clone(),
                });
            }
            let mut headers = reqwest::header::HeaderMap::new();
            for (k, v) in &c.headers {
                let bad = || NotifyError::BadHeader {
                    sink: kind.as_str(),
                    name: k.clone(),
                };
                let name =
                    reqwest::header::HeaderName::from_bytes(k.as_bytes()).map_err(|_| bad())?;
                let value = reqwest::header::HeaderValue::from_str(v).map_err(|_| bad())?;
                headers.insert(name, value);
            }
            sinks.push(Sink {
                kind,
                url: c.url.clone(),
                headers,
                filter: c.filter.clone(),
                limiter: Mutex::new(RateLimiter::new(c.rate_limit)),
                retries: c.retries,
                timeout: c.timeout,
            });
        }
        let client = reqwest::Client::builder()
            .user_agent(concat!("falco-analyst/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Notifier {
            sinks,
            client,
            min_backoff: Duration::from_millis(500),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }

    /// Whether any sink would take a notification like this (checked before building one).
    pub fn wants(
        &self,
        kind: NotificationKind,
        priority: Option<Priority>,
        verdict: VerdictKind,
    ) -> bool {
        self.sinks
            .iter()
            .any(|s| s.filter.accepts(kind, priority, verdict))
    }

    /// Offer a notification to every sink: filter, rate-limit, send with retries.
    pub async fn notify(&self, n: &Notification) -> Vec<(SinkKind, Outcome)> {
        let mut out = Vec::with_capacity(self.sinks.len());
        for s in &self.sinks {
            if !s.filter.accepts(n.kind, n.priority, n.verdict) {
                out.push((s.kind, Outcome::Filtered));
                continue;
            }
            let offered = match s.limiter.lock() {
                Ok(mut l) => l.offer(n.clone(), Instant::now()),
                Err(p) => p.into_inner().offer(n.clone(), Instant::now()),
            };
            let outcome = match offered {
                None => Outcome::Folded,
                Some(msg) => self.send(s, &msg).await,
            };
            out.push((s.kind, outcome));
        }
        out
    }

    /// Send the folded counts whose interval has ended (call every few seconds).
    pub async fn flush_due(&self) -> Vec<(SinkKind, Outcome)> {
        let mut out = Vec::new();
        for s in &self.sinks {
            let due = match s.limiter.lock() {
                Ok(mut l) => l.due(Instant::now()),
                Err(p) => p.into_inner().due(Instant::now()),
            };
            for msg in due {
                out.push((s.kind, self.send(s, &msg).await));
            }
        }
        out
    }

    async fn send(&self, s: &Sink, n: &Notification) -> Outcome {
        let body = match s.kind {
            SinkKind::Slack => slack_payload(n),
            SinkKind::Webhook => webhook_payload(n),
        };
        let attempts = std::sync::atomic::AtomicUsize::new(0);
        let attempt = || async {
            attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let resp = self
                .client
                .post(&s.url)
                .headers(s.headers.clone())
                .timeout(s.timeout)
                .json(&body)
                .send()
                .await
                .map_err(|e| SendError {
                    retryable: true,
                    retry_after: None,
                    message: e.to_string(),
                })?;
            let status = resp.status();
            if status.is_success() {
                return Ok(());
            }
            let retry_after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|s| Duration::from_secs(s.min(60)));
            Err(SendError {
                retryable: status.as_u16() == 429 || status.is_server_error(),
                retry_after,
                message: format!("HTTP {status}"),
            })
        };
        let policy = ExponentialBuilder::default()
            .with_min_delay(self.min_backoff)
            .with_max_delay(Duration::from_secs(30))
            .with_max_times(s.retries)
            .with_jitter();
        let result = attempt
            .retry(policy)
            .when(|e: &SendError| e.retryable)
            .adjust(|e: &SendError, d| e.retry_after.or(d))
            .await;
        let attempts = attempts.load(std::sync::atomic::Ordering::Relaxed);
        match result {
            Ok(()) => Outcome::Sent { attempts },
            Err(e) => Outcome::Failed {
                attempts,
                error: e.message,
            },
        }
    }
}

/// Slack's `mrkdwn` escaping plus control-character stripping and a length cap.
pub fn slack_escape(s: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max_chars) + 8);
    for (n, c) in s.chars().enumerate() {
        if n >= max_chars {
            out.push('…');
            break;
        }
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' | '\t' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

fn verdict_emoji(v: VerdictKind) -> &'static str {
    match v {
        VerdictKind::Malicious => ":rotating_light:",
        VerdictKind::Suspicious => ":warning:",
        VerdictKind::Benign => ":white_check_mark:",
    }
}

/// The Slack Block Kit message: verdict, rule, where, top reasons, link to the report.
pub fn slack_payload(n: &Notification) -> serde_json::Value {
    let verdict = n.verdict.as_str().to_uppercase();
    let what = match n.kind {
        NotificationKind::Alert => "alert",
        NotificationKind::Incident => "incident",
    };
    let headline = format!(
        "{} {verdict} {what}: {}",
        verdict_emoji(n.verdict),
        slack_escape(&n.rule, 150)
    );
    let mut fields = vec![
        serde_json::json!({"type": "mrkdwn", "text": format!("*Verdict*\n{} ({:.0}% confidence)", n.verdict, n.confidence * 100.0)}),
        serde_json::json!({"type": "mrkdwn", "text": format!("*Where*\n{}", slack_escape(&n.location, 200))}),
    ];
    if let Some(p) = n.priority {
        fields.push(serde_json::json!({"type": "mrkdwn", "text": format!("*Priority*\n{p}")}));
    }
    if let Some(t) = n.time {
        fields.push(
            serde_json::json!({"type": "mrkdwn", "text": format!("*Time*\n{}", t.to_rfc3339())}),
        );
    }
    let mut blocks = vec![
        serde_json::json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*{headline}*")}}),
        serde_json::json!({"type": "section", "fields": fields}),
        serde_json::json!({"type": "section", "text": {"type": "mrkdwn", "text": slack_escape(&n.summary, 2500)}}),
    ];
    if !n.reasons.is_empty() {
        let list: Vec<String> = n
            .reasons
            .iter()
            .take(5)
            .map(|r| format!("• {}", slack_escape(r, 300)))
            .collect();
        blocks.push(serde_json::json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*Top reasons*\n{}", list.join("\n"))}}));
    }
    let mut context = Vec::new();
    if n.folded > 0 {
        context.push(serde_json::json!({"type": "mrkdwn", "text": format!("+{} similar {what}(s) folded into this message since the last one", n.folded)}));
    }
    if let Some(link) = &n.link {
        // The link is ours (public URL + a uuid checked at ingest), but escape it anyway.
        context.push(serde_json::json!({"type": "mrkdwn", "text": format!("<{}|Full report>", slack_escape(link, 500))}));
    }
    if !context.is_empty() {
        blocks.push(serde_json::json!({"type": "context", "elements": context}));
    }
    serde_json::json!({
        // `text` is the fallback shown in notifications and by clients without Block Kit.
        "text": format!("{verdict} {what}: {} on {}", slack_escape(&n.rule, 150), slack_escape(&n.location, 200)),
        "blocks": blocks,
    })
}

/// The generic webhook body: the notification as JSON, with a type tag.
pub fn webhook_payload(n: &Notification) -> serde_json::Value {
    let mut v = serde_json::to_value(n).unwrap_or(serde_json::Value::Null);
    if let serde_json::Value::Object(m) = &mut v {
        m.insert(
            "type".into(),
            serde_json::Value::String("falco_analyst_notification".into()),
        );
    }
    v
}

/// `500ms`, `90s`, `10m`, `2h`, `30d`, or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 90s, 10m, 2h or 30d"))?;
    let secs = |k: u64| Duration::from_secs(n.saturating_mul(k));
    match unit.trim() {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => Ok(secs(1)),
        "m" => Ok(secs(60)),
        "h" => Ok(secs(3600)),
        "d" => Ok(secs(86_400)),
        u => Err(format!("`{s}`: unknown unit `{u}` (use ms, s, m, h or d)")),
    }
}

/// Serde adapter for durations written as `parse_duration` strings.
pub mod duration_str {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_duration(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample(key: &str, verdict: VerdictKind) -> Notification {
        Notification {
            kind: NotificationKind::Alert,
            key: key.into(),
            verdict,
            confidence: 0.9,
            rule: "Terminal shell in container".into(),
            priority: Some(Priority::Notice),
            location: "container:abc".into(),
            summary: "A shell was spawned".into(),
            reasons: vec!["an interactive terminal is attached".into()],
            time: None,
            alert_uuid: Some("u1".into()),
            incident_id: None,
            link: Some("http://127.0.0.1:2802/api/v1/alerts/u1?format=html".into()),
            folded: 0,
        }
    }

    #[test]
    fn filter_priority_verdict_and_incidents_only() {
        let f = Filter {
            min_priority: Some(Priority::Warning),
            exclude_benign: true,
            incidents_only: false,
        };
        assert!(f.accepts(
            NotificationKind::Alert,
            Some(Priority::Critical),
            VerdictKind::Suspicious
        ));
        assert!(!f.accepts(
            NotificationKind::Alert,
            Some(Priority::Notice),
            VerdictKind::Malicious
        ));
        assert!(!f.accepts(
            NotificationKind::Alert,
            Some(Priority::Critical),
            VerdictKind::Benign
        ));
        assert!(f.accepts(NotificationKind::Incident, None, VerdictKind::Suspicious));
        let inc = Filter {
            incidents_only: true,
            ..Filter::default()
        };
        assert!(!inc.accepts(
            NotificationKind::Alert,
            Some(Priority::Emergency),
            VerdictKind::Malicious
        ));
        assert!(inc.accepts(NotificationKind::Incident, None, VerdictKind::Malicious));
        let all = Filter {
            exclude_benign: false,
            ..Filter::default()
        };
        assert!(all.accepts(NotificationKind::Alert, None, VerdictKind::Benign));
    }

    #[test]
    fn rate_limiter_folds_within_the_interval_and_reports_the_count() {
        let mut l = RateLimiter::new(Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(
            l.offer(sample("fp", VerdictKind::Malicious), t0)
                .map(|n| n.folded),
            Some(0)
        );
        for i in 1..=4 {
            assert!(l
                .offer(
                    sample("fp", VerdictKind::Malicious),
                    t0 + Duration::from_secs(i)
                )
                .is_none());
        }
        // Another cluster is not held back.
        assert!(l
            .offer(sample("other", VerdictKind::Malicious), t0)
            .is_some());
        assert!(l.due(t0 + Duration::from_secs(30)).is_empty());
        // After the interval, the next one carries the 4 folded in.
        let next = l
            .offer(
                sample("fp", VerdictKind::Malicious),
                t0 + Duration::from_secs(61),
            )
            .unwrap();
        assert_eq!(next.folded, 4);
        assert!(l
            .offer(
                sample("fp", VerdictKind::Malicious),
                t0 + Duration::from_secs(62)
            )
            .is_none());
        assert!(l
            .offer(
                sample("fp", VerdictKind::Malicious),
                t0 + Duration::from_secs(63)
            )
            .is_none());
        // Nothing new arrives: the folded ones go out on their own when the interval ends.
        let due = l.due(t0 + Duration::from_secs(122));
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].folded, 1);
        assert!(l.due(t0 + Duration::from_secs(500)).is_empty());
    }

    #[test]
    fn slack_message_escapes_alert_content() {
        let mut n = sample("fp", VerdictKind::Malicious);
        n.rule = "<!channel> <http://evil|click> & co\u{1b}[31m".into();
        n.summary = "x".repeat(5000);
        n.folded = 7;
        let p = slack_payload(&n);
        let s = p.to_string();
        assert!(!s.contains("<!channel>"), "{s}");
        assert!(!s.contains("<http://evil"), "{s}");
        assert!(s.contains("&lt;!channel&gt;"));
        assert!(!s.contains('\u{1b}'));
        assert!(s.contains("+7 similar alert(s) folded"));
        assert!(s.contains("|Full report>"));
        let blocks = p["blocks"].as_array().unwrap();
        assert!(blocks.iter().all(|b| b.to_string().len() < 3500));
        assert_eq!(blocks[0]["type"], "section");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert!(parse_duration("5w").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn config_parses_with_defaults() {
        let c: NotifyConfig = toml::from_str(
            r#"
            [slack]
            url = "https://hooks.slack.com/services/T/B/X"
            min_priority = "Warning"
            rate_limit = "10m"
            [webhook]
            url = "http://127.0.0.1:9/hook"
            headers = { Authorization = "Bearer t" }
            incidents_only = true
            "#,
        )
        .unwrap();
        let s = c.slack.unwrap();
        assert_eq!(s.rate_limit, Duration::from_secs(600));
        assert_eq!(s.filter.min_priority, Some(Priority::Warning));
        assert!(s.filter.exclude_benign);
        let w = c.webhook.unwrap();
        assert!(w.filter.incidents_only);
        assert_eq!(w.retries, 3);
        assert!(Notifier::from_config(&NotifyConfig {
            slack: Some(SinkConfig {
                url: "ftp://x".into(),
                ..w.clone()
            }),
            webhook: None
        })
        .is_err());
    }
}
