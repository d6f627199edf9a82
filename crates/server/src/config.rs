//! Service configuration: a TOML file, then `FALCO_ANALYST_*` environment overrides, then
//! command-line flags (applied by the caller).

use fa_sinks::notify::{duration_str, parse_duration, NotifyConfig};
use fa_store::Synchronous;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:2802";
/// Shortest token, and shortest HMAC secret off loopback.
pub const MIN_SECRET_LEN: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("environment variable {var}: {message}")]
    Env { var: &'static str, message: String },
    #[error("{0}")]
    Invalid(String),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub auth: AuthConfig,
    pub store: StoreConfig,
    pub analysis: AnalysisConfig,
    pub retention: RetentionConfig,
    pub notify: NotifyConfig,
    pub log: LogConfig,
    /// Budgets of one ingest request and of ingest as a whole (see docs/service.md "Limits").
    pub ingest: IngestConfig,
    /// The optional LLM narrative: the same settings as `analyze`'s `--llm*` flags (`model`,
    /// `base_url`, `timeout`, `redaction`, `max_requests`, `max_tokens`, `concurrency`,
    /// `rate`, `cache`). Without `model` nothing leaves the machine.
    pub llm: fa_llm::LlmArgs,
    /// The web console: its users (`[[ui.users]]`) and session limits.
    pub ui: crate::ui::UiConfig,
    /// NATS JetStream as the durable queue shared by several replicas (`--nats URL`).
    pub nats: NatsConfig,
}

/// `[nats]`: with `url` set, JetStream replaces the local journal and replicas share the work
/// (docs/deploy.md, ARCHITECTURE.md "Scaled out").
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatsConfig {
    /// NATS server URL (`nats://host:4222`), JetStream enabled.
    pub url: Option<String>,
    /// Prefix of every name used: subjects `PREFIX.alerts.N`, stream `PREFIX_ALERTS`, lease
    /// bucket `PREFIX_leases`, consumers `PREFIX_pN`. Letters, digits, `-` and `_`.
    pub prefix: String,
    /// Partitions of the alert subjects; alerts of one container, pod, cloud actor or host
    /// always go to the same one. Every replica must use the same number.
    pub partitions: u32,
    /// A replica that stops renewing its partition leases loses them after this long.
    #[serde(with = "duration_str")]
    pub lease_ttl: Duration,
    /// Subjects Falcosidekick's NATS output publishes to (`falco.>`): kept by the stream
    /// `PREFIX_FALCO` and routed to the partitions. None: not consumed.
    pub falco_subjects: Option<String>,
    /// This replica's name in the lease bucket (default: host name, process id and a random
    /// suffix).
    pub replica: Option<String>,
    /// Consume only: no HTTP listener (ingest then comes only through NATS).
    pub no_listen: bool,
}

impl Default for NatsConfig {
    fn default() -> Self {
        NatsConfig {
            url: None,
            prefix: "fa".into(),
            partitions: 16,
            lease_ttl: Duration::from_secs(6),
            falco_subjects: None,
            replica: None,
            no_listen: false,
        }
    }
}

impl NatsConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 32
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if !name_ok(&self.prefix) {
            return Err(ConfigError::Invalid(format!(
                "nats.prefix `{}`: 1-32 letters, digits, `-` or `_`",
                self.prefix
            )));
        }
        if let Some(r) = &self.replica {
            if !name_ok(r) {
                return Err(ConfigError::Invalid(format!(
                    "nats.replica `{r}`: 1-32 letters, digits, `-` or `_`"
                )));
            }
        }
        if !(1..=1024).contains(&self.partitions) {
            return Err(ConfigError::Invalid(
                "nats.partitions must be between 1 and 1024".into(),
            ));
        }
        if self.lease_ttl < Duration::from_secs(1) {
            return Err(ConfigError::Invalid(
                "nats.lease_ttl must be at least 1s".into(),
            ));
        }
        if self.url.is_none() && (self.no_listen || self.falco_subjects.is_some()) {
            return Err(ConfigError::Invalid(
                "--no-listen and nats.falco_subjects need a NATS URL (--nats)".into(),
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: String,
    /// How people reach this service, for links in notifications (e.g. `https://falco-analyst.example`).
    pub public_url: Option<String>,
    /// Largest request body accepted, before and after gzip decoding.
    pub max_body_bytes: usize,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Run without authentication. Refused unless `listen` is a loopback address.
    pub insecure_no_auth: bool,
    /// How long shutdown waits for in-flight requests and queued analysis.
    #[serde(with = "duration_str")]
    pub shutdown_timeout: Duration,
    /// A request's headers must arrive within this (slow-header clients are cut off). An idle
    /// keep-alive connection waits for the next request's headers, so this also bounds it.
    #[serde(with = "duration_str")]
    pub header_read_timeout: Duration,
    /// A connection with no bytes in either direction and no request in progress for this
    /// long is closed.
    #[serde(with = "duration_str")]
    pub idle_timeout: Duration,
    /// A request body may take this long, plus one second per `min_body_rate` bytes received.
    #[serde(with = "duration_str")]
    pub body_timeout: Duration,
    /// Bytes per second a body must keep up after `body_timeout`.
    pub min_body_rate: u64,
    /// Open connections at most (also capped by the file-descriptor limit less what the
    /// store and journal need). Beyond it the oldest idle connection is closed to make room,
    /// or, when every connection is busy, the new one gets a 503 at once.
    pub max_connections: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: DEFAULT_LISTEN.into(),
            public_url: None,
            max_body_bytes: 4 * 1024 * 1024,
            tls_cert: None,
            tls_key: None,
            insecure_no_auth: false,
            shutdown_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(10),
            min_body_rate: 16 * 1024,
            max_connections: 1024,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Bearer token (`Authorization: Bearer TOKEN`, or HTTP Basic auth with TOKEN as the password).
    pub token: Option<String>,
    /// Secret for `X-Falco-Analyst-Signature: sha256=<hex HMAC-SHA256 of the raw body>` on ingest.
    pub hmac_secret: Option<String>,
}

/// A number of bytes: an integer, or a string with a unit (`512MiB`, `1GB`, `64k`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub u64);

impl ByteSize {
    pub fn parse(s: &str) -> Result<ByteSize, String> {
        let t = s.trim();
        let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
        let (num, unit) = t.split_at(digits);
        let n: u64 = num
            .parse()
            .map_err(|_| format!("`{s}` is not a size like 512MiB"))?;
        let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "k" | "kb" => 1000,
            "kib" => 1 << 10,
            "m" | "mb" => 1000 * 1000,
            "mib" => 1 << 20,
            "g" | "gb" => 1000 * 1000 * 1000,
            "gib" => 1 << 30,
            other => {
                return Err(format!(
                    "`{s}`: unknown unit `{other}` (B, KiB, MiB, GiB, kB, MB, GB)"
                ))
            }
        };
        n.checked_mul(mult)
            .map(ByteSize)
            .ok_or_else(|| format!("`{s}` is too large"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Int(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Int(n) => Ok(ByteSize(n)),
            Raw::Text(s) => ByteSize::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// Rejected records kept as dead letters per request; the rest are counted, not kept.
    pub max_dead_letters_per_request: usize,
    /// Alerts in one request at most (413 beyond, found while parsing).
    pub max_alerts_per_request: usize,
    /// Memory for request bodies being read and decoded, all requests together; a request
    /// that finds none free within a second gets a 503.
    pub max_body_memory: ByteSize,
    /// Bodies read before their HMAC signature is verified, at once; more get a 503 at once.
    pub max_unauthenticated_bodies: usize,
    /// Free space kept on the database's file system: below it ingest answers 503 (nothing
    /// written) and /readyz is not ready; the store writer still has this room to finish.
    pub min_free_disk: ByteSize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_dead_letters_per_request: 100,
            max_alerts_per_request: 10_000,
            max_body_memory: ByteSize(64 << 20),
            max_unauthenticated_bodies: 8,
            min_free_disk: ByteSize(64 << 20),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// The SQLite database file; with `url`, where the ingest journal lives (`PATH.journal`).
    pub path: PathBuf,
    /// A PostgreSQL database (`postgres://...`) shared by several replicas, instead of the
    /// SQLite file. Shown with its password hidden.
    pub url: Option<fa_store::PgUrl>,
    /// `normal` (durable against a process crash; WAL fsynced at checkpoints) or `full`
    /// (every commit fsynced: durable against power loss, slower).
    pub synchronous: Synchronous,
    /// Alerts committed in one transaction at most.
    pub max_batch: usize,
    /// Write requests waiting for the writer at most; beyond it ingest answers 503.
    pub write_queue: usize,
    /// Read connections kept open for the API.
    pub readers: usize,
}

impl StoreConfig {
    /// Apply `--db` or `FALCO_ANALYST_DB`: a `postgres://` URL selects PostgreSQL, a path (or
    /// `sqlite:PATH`) the SQLite file.
    pub fn set_db(&mut self, db: &str) -> Result<(), fa_store::LocationError> {
        match fa_store::DbLocation::parse(db)? {
            fa_store::DbLocation::Sqlite(p) => {
                self.path = p;
                self.url = None;
            }
            fa_store::DbLocation::Postgres(u) => self.url = Some(u),
        }
        Ok(())
    }

    /// Where the store is, for logs (a password hidden).
    pub fn location(&self) -> fa_store::DbLocation {
        match &self.url {
            Some(u) => fa_store::DbLocation::Postgres(u.clone()),
            None => fa_store::DbLocation::Sqlite(self.path.clone()),
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: PathBuf::from("falco-analyst.db"),
            url: None,
            synchronous: Synchronous::Normal,
            max_batch: 4096,
            write_queue: 4096,
            readers: 4,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalysisConfig {
    /// Alerts stored and waiting for analysis at most; beyond it ingest answers 429.
    pub queue_capacity: usize,
    /// Extra knowledge-base directories.
    pub kb_dirs: Vec<PathBuf>,
    /// Falco rules files loaded on top of the built-in upstream rules, in order.
    pub rules_files: Vec<PathBuf>,
    /// Incident correlation window.
    #[serde(with = "duration_str")]
    pub incident_window: Duration,
    /// Open incidents tracked at most.
    pub max_open_incidents: usize,
    /// Analyses are committed to the store this often (or sooner when a quarter of the queue
    /// waits): fewer, larger commits rewrite fewer index pages per alert. Nobody waits for
    /// them (the alerts are acknowledged once journalled); the API shows an alert as
    /// pending (202) until then.
    #[serde(with = "duration_str")]
    pub store_interval: Duration,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        AnalysisConfig {
            queue_capacity: 100_000,
            kb_dirs: Vec::new(),
            rules_files: Vec::new(),
            incident_window: Duration::from_secs(600),
            max_open_incidents: 10_000,
            store_interval: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Analysed alerts older than this are deleted (e.g. `30d`); empty keeps them forever.
    pub max_age: Option<String>,
    pub max_alerts: Option<u64>,
    pub max_dead_letters: Option<u64>,
    #[serde(with = "duration_str")]
    pub interval: Duration,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            max_age: Some("30d".into()),
            max_alerts: Some(10_000_000),
            max_dead_letters: Some(100_000),
            interval: Duration::from_secs(60),
        }
    }
}

impl RetentionConfig {
    pub fn policy(&self) -> Result<fa_store::RetentionPolicy, ConfigError> {
        let max_age = match self.max_age.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(s) => {
                let d = parse_duration(s)
                    .map_err(|e| ConfigError::Invalid(format!("retention.max_age: {e}")))?;
                Some(
                    chrono::Duration::from_std(d)
                        .map_err(|e| ConfigError::Invalid(format!("retention.max_age: {e}")))?,
                )
            }
        };
        Ok(fa_store::RetentionPolicy {
            max_age,
            max_alerts: self.max_alerts,
            max_dead_letters: self.max_dead_letters,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter (`info`, `fa_server=debug`...); `RUST_LOG` wins when set.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// Environment variables that override the file, and the key each sets.
pub const ENV_OVERRIDES: &[(&str, &str)] = &[
    ("FALCO_ANALYST_LISTEN", "server.listen"),
    ("FALCO_ANALYST_PUBLIC_URL", "server.public_url"),
    ("FALCO_ANALYST_MAX_BODY_BYTES", "server.max_body_bytes"),
    ("FALCO_ANALYST_TLS_CERT", "server.tls_cert"),
    ("FALCO_ANALYST_TLS_KEY", "server.tls_key"),
    ("FALCO_ANALYST_TOKEN", "auth.token"),
    ("FALCO_ANALYST_HMAC_SECRET", "auth.hmac_secret"),
    ("FALCO_ANALYST_DB", "store.path"),
    ("FALCO_ANALYST_SYNCHRONOUS", "store.synchronous"),
    ("FALCO_ANALYST_QUEUE_CAPACITY", "analysis.queue_capacity"),
    ("FALCO_ANALYST_RETENTION_MAX_AGE", "retention.max_age"),
    ("FALCO_ANALYST_RETENTION_MAX_ALERTS", "retention.max_alerts"),
    ("FALCO_ANALYST_SLACK_WEBHOOK_URL", "notify.slack.url"),
    ("FALCO_ANALYST_WEBHOOK_URL", "notify.webhook.url"),
    ("FALCO_ANALYST_LOG_FORMAT", "log.format"),
    ("FALCO_ANALYST_LOG_LEVEL", "log.level"),
    ("FALCO_ANALYST_LLM", "llm.model"),
    ("FALCO_ANALYST_LLM_BASE_URL", "llm.base_url"),
    ("FALCO_ANALYST_MAX_CONNECTIONS", "server.max_connections"),
    ("FALCO_ANALYST_MIN_FREE_DISK", "ingest.min_free_disk"),
    ("FALCO_ANALYST_NATS_URL", "nats.url"),
];

fn parse_num<T: std::str::FromStr>(var: &'static str, v: &str) -> Result<T, ConfigError> {
    v.trim().parse().map_err(|_| ConfigError::Env {
        var,
        message: format!("`{v}` is not a number"),
    })
}

impl Config {
    pub fn from_toml(text: &str, path: &str) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: path.into(),
            message: e.to_string(),
        })
    }

    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::from_toml(&text, &path.display().to_string())
    }

    /// Apply `FALCO_ANALYST_*` overrides; `get` reads a variable (the process environment in
    /// production, a map in tests). Empty values are ignored.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        for (var, _) in ENV_OVERRIDES {
            let Some(v) = get(var).filter(|v| !v.trim().is_empty()) else {
                continue;
            };
            match *var {
                "FALCO_ANALYST_LISTEN" => self.server.listen = v,
                "FALCO_ANALYST_PUBLIC_URL" => self.server.public_url = Some(v),
                "FALCO_ANALYST_MAX_BODY_BYTES" => self.server.max_body_bytes = parse_num(var, &v)?,
                "FALCO_ANALYST_TLS_CERT" => self.server.tls_cert = Some(v.into()),
                "FALCO_ANALYST_TLS_KEY" => self.server.tls_key = Some(v.into()),
                "FALCO_ANALYST_TOKEN" => self.auth.token = Some(v),
                "FALCO_ANALYST_HMAC_SECRET" => self.auth.hmac_secret = Some(v),
                "FALCO_ANALYST_DB" => self.store.set_db(&v).map_err(|e| ConfigError::Env {
                    var,
                    message: e.to_string(),
                })?,
                "FALCO_ANALYST_SYNCHRONOUS" => {
                    self.store.synchronous = match v.trim().to_ascii_lowercase().as_str() {
                        "normal" => Synchronous::Normal,
                        "full" => Synchronous::Full,
                        _ => {
                            return Err(ConfigError::Env {
                                var,
                                message: format!("`{v}`: expected normal or full"),
                            })
                        }
                    }
                }
                "FALCO_ANALYST_QUEUE_CAPACITY" => {
                    self.analysis.queue_capacity = parse_num(var, &v)?
                }
                "FALCO_ANALYST_RETENTION_MAX_AGE" => self.retention.max_age = Some(v),
                "FALCO_ANALYST_RETENTION_MAX_ALERTS" => {
                    self.retention.max_alerts = Some(parse_num(var, &v)?)
                }
                "FALCO_ANALYST_SLACK_WEBHOOK_URL" => match &mut self.notify.slack {
                    Some(s) => s.url = v,
                    None => self.notify.slack = Some(sink_with_url(v)),
                },
                "FALCO_ANALYST_WEBHOOK_URL" => match &mut self.notify.webhook {
                    Some(s) => s.url = v,
                    None => self.notify.webhook = Some(sink_with_url(v)),
                },
                "FALCO_ANALYST_LOG_FORMAT" => {
                    self.log.format = match v.trim().to_ascii_lowercase().as_str() {
                        "text" => LogFormat::Text,
                        "json" => LogFormat::Json,
                        _ => {
                            return Err(ConfigError::Env {
                                var,
                                message: format!("`{v}`: expected text or json"),
                            })
                        }
                    }
                }
                "FALCO_ANALYST_LOG_LEVEL" => self.log.level = v,
                "FALCO_ANALYST_LLM" => self.llm.llm = Some(v),
                "FALCO_ANALYST_LLM_BASE_URL" => self.llm.llm_base_url = Some(v),
                "FALCO_ANALYST_MAX_CONNECTIONS" => {
                    self.server.max_connections = parse_num(var, &v)?
                }
                "FALCO_ANALYST_NATS_URL" => self.nats.url = Some(v),
                "FALCO_ANALYST_MIN_FREE_DISK" => {
                    self.ingest.min_free_disk =
                        ByteSize::parse(&v).map_err(|message| ConfigError::Env { var, message })?
                }
                _ => {}
            }
        }
        Ok(())
    }

    pub fn listen_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.server.listen.trim().parse().map_err(|_| {
            ConfigError::Invalid(format!(
                "server.listen `{}` is not an address like 127.0.0.1:2802 or [::]:2802",
                self.server.listen
            ))
        })
    }

    /// Refuse what would be unsafe or cannot work: no authentication off loopback, half a
    /// TLS configuration, zero-sized queues.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let addr = self.listen_addr()?;
        let has_auth = self.auth.token.as_deref().is_some_and(|t| !t.is_empty())
            || self
                .auth
                .hmac_secret
                .as_deref()
                .is_some_and(|t| !t.is_empty());
        if !has_auth {
            if !self.server.insecure_no_auth {
                return Err(ConfigError::Invalid(
                    "no authentication configured: set a token (--token, FALCO_ANALYST_TOKEN or auth.token) \
                     or an HMAC secret (auth.hmac_secret); for local testing only, --insecure-no-auth on a loopback address"
                        .into(),
                ));
            }
            if !addr.ip().is_loopback() {
                return Err(ConfigError::Invalid(format!(
                    "--insecure-no-auth is only allowed on a loopback address, not {addr}"
                )));
            }
        }
        if let Some(t) = &self.auth.token {
            if !t.is_empty() && t.len() < MIN_SECRET_LEN {
                return Err(ConfigError::Invalid(format!(
                    "the token must be at least {MIN_SECRET_LEN} characters"
                )));
            }
        }
        // A signature is as good as its secret: off loopback it needs a token's length.
        if let Some(s) = &self.auth.hmac_secret {
            if !s.is_empty() && s.len() < MIN_SECRET_LEN && !addr.ip().is_loopback() {
                return Err(ConfigError::Invalid(format!(
                    "the HMAC secret (auth.hmac_secret) must be at least {MIN_SECRET_LEN} characters off loopback"
                )));
            }
        }
        if self.server.max_connections == 0
            || self.ingest.max_alerts_per_request == 0
            || self.ingest.max_unauthenticated_bodies == 0
        {
            return Err(ConfigError::Invalid(
                "server.max_connections, ingest.max_alerts_per_request and ingest.max_unauthenticated_bodies must be positive".into(),
            ));
        }
        if self.ingest.max_body_memory.0 < self.server.max_body_bytes as u64 {
            return Err(ConfigError::Invalid(format!(
                "ingest.max_body_memory ({} bytes) must hold at least one body of server.max_body_bytes ({})",
                self.ingest.max_body_memory.0, self.server.max_body_bytes
            )));
        }
        if self.server.min_body_rate == 0 {
            return Err(ConfigError::Invalid(
                "server.min_body_rate must be positive (bytes per second)".into(),
            ));
        }
        if self.server.tls_cert.is_some() != self.server.tls_key.is_some() {
            return Err(ConfigError::Invalid(
                "TLS needs both a certificate and a key (server.tls_cert, server.tls_key)".into(),
            ));
        }
        if self.analysis.queue_capacity == 0
            || self.store.write_queue == 0
            || self.store.max_batch == 0
        {
            return Err(ConfigError::Invalid(
                "queue sizes and store.max_batch must be positive".into(),
            ));
        }
        if self.server.max_body_bytes < 1024 {
            return Err(ConfigError::Invalid(
                "server.max_body_bytes must be at least 1024".into(),
            ));
        }
        self.retention.policy()?;
        self.nats.validate()?;
        if self.llm.llm_dry_run {
            // A dry run prints each request on stdout; a service has no one reading it.
            return Err(ConfigError::Invalid(
                "--llm-dry-run (llm.dry_run) is for `falco-analyst analyze`, which prints the requests; \
                 serve has no terminal to print them to. To see what would be sent, run \
                 `falco-analyst analyze --llm PROVIDER:MODEL --llm-dry-run` on a sample of your alerts"
                    .into(),
            ));
        }
        Ok(())
    }
}

fn sink_with_url(url: String) -> fa_sinks::notify::SinkConfig {
    fa_sinks::notify::SinkConfig::new(url)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn file_then_environment() {
        let mut c = Config::from_toml(
            r#"
            [server]
            listen = "0.0.0.0:9000"
            [auth]
            token = "from-the-file-0123456789"
            [store]
            path = "/var/lib/fa.db"
            synchronous = "full"
            [retention]
            max_age = "7d"
            [notify.slack]
            url = "https://hooks.slack.com/services/x"
            min_priority = "Error"
            "#,
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.store.synchronous, Synchronous::Full);
        let env: HashMap<&str, &str> = HashMap::from([
            ("FALCO_ANALYST_TOKEN", "from-the-environment-42"),
            ("FALCO_ANALYST_DB", "/tmp/x.db"),
            ("FALCO_ANALYST_LOG_FORMAT", "json"),
            ("FALCO_ANALYST_WEBHOOK_URL", "http://127.0.0.1:9/hook"),
            ("FALCO_ANALYST_LISTEN", ""),
        ]);
        c.apply_env(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(c.auth.token.as_deref(), Some("from-the-environment-42"));
        assert_eq!(c.store.path, PathBuf::from("/tmp/x.db"));
        assert_eq!(c.server.listen, "0.0.0.0:9000");
        assert_eq!(c.log.format, LogFormat::Json);
        assert_eq!(
            c.notify.webhook.as_ref().unwrap().url,
            "http://127.0.0.1:9/hook"
        );
        assert_eq!(
            c.notify.slack.as_ref().unwrap().filter.min_priority,
            Some(fa_model::Priority::Error)
        );
        assert_eq!(
            c.retention.policy().unwrap().max_age,
            Some(chrono::Duration::days(7))
        );
        c.validate().unwrap();
    }

    #[test]
    fn llm_table_then_environment_and_no_dry_run() {
        let mut c = Config::from_toml(
            r#"
            [auth]
            token = "from-the-file-0123456789"
            [llm]
            model = "ollama:llama3.1:8b"
            base_url = "http://127.0.0.1:11434"
            timeout = 120
            redaction = "strict"
            max_requests = 200
            max_tokens = 500000
            concurrency = 2
            rate = 1.0
            cache = "/var/cache/falco-analyst/llm"
            "#,
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.llm.llm.as_deref(), Some("ollama:llama3.1:8b"));
        assert_eq!(c.llm.llm_timeout, Some(120.0));
        assert_eq!(c.llm.llm_redaction, Some(fa_llm::RedactionLevel::Strict));
        assert_eq!(c.llm.llm_max_requests, Some(200));
        let env: HashMap<&str, &str> = HashMap::from([
            ("FALCO_ANALYST_LLM", "openai:qwen2.5"),
            ("FALCO_ANALYST_LLM_BASE_URL", "http://127.0.0.1:8000/v1"),
        ]);
        c.apply_env(|k| env.get(k).map(|v| v.to_string())).unwrap();
        assert_eq!(c.llm.llm.as_deref(), Some("openai:qwen2.5"));
        assert_eq!(
            c.llm.llm_base_url.as_deref(),
            Some("http://127.0.0.1:8000/v1")
        );
        c.validate().unwrap();
        assert!(Config::from_toml("[llm]\nmodle = \"x\"", "t").is_err());
        c.llm.llm_dry_run = true;
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("--llm-dry-run") && e.contains("analyze"), "{e}");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        assert!(Config::from_toml("[server]\nlisten_on = \"x\"", "t").is_err());
        let mut c = Config::default();
        let e = c.apply_env(|k| (k == "FALCO_ANALYST_QUEUE_CAPACITY").then(|| "lots".to_string()));
        assert!(e
            .unwrap_err()
            .to_string()
            .contains("FALCO_ANALYST_QUEUE_CAPACITY"));
    }

    #[test]
    fn refuses_to_run_without_auth_except_on_loopback_when_asked() {
        let mut c = Config::default();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("no authentication"));
        c.server.insecure_no_auth = true;
        c.validate().unwrap();
        c.server.listen = "0.0.0.0:2802".into();
        assert!(c.validate().unwrap_err().to_string().contains("loopback"));
        c.auth.token = Some("short".into());
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("16 characters"));
        c.auth.token = Some("a-long-enough-token".into());
        c.validate().unwrap();
        c.server.tls_cert = Some("cert.pem".into());
        assert!(c.validate().unwrap_err().to_string().contains("TLS"));
    }

    #[test]
    fn an_hmac_secret_needs_a_tokens_length_off_loopback() {
        let mut c = Config::default();
        c.auth.hmac_secret = Some("x".into());
        // On loopback a short secret is a local test's business.
        c.validate().unwrap();
        c.server.listen = "0.0.0.0:2802".into();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("HMAC secret") && e.contains("16"), "{e}");
        c.auth.hmac_secret = Some("sixteen-chars-ok".into());
        c.validate().unwrap();
    }

    #[test]
    fn limits_from_the_file_and_sizes_with_units() {
        let c = Config::from_toml(
            "[server]\nheader_read_timeout = \"3s\"\nmax_connections = 50\n[ingest]\nmin_free_disk = \"512MiB\"\nmax_body_memory = 8388608\nmax_dead_letters_per_request = 7\n",
            "t",
        )
        .unwrap();
        assert_eq!(c.server.header_read_timeout, Duration::from_secs(3));
        assert_eq!(c.server.max_connections, 50);
        assert_eq!(c.ingest.min_free_disk, ByteSize(512 << 20));
        assert_eq!(c.ingest.max_body_memory, ByteSize(8 << 20));
        assert_eq!(c.ingest.max_dead_letters_per_request, 7);
        assert_eq!(ByteSize::parse("2GB"), Ok(ByteSize(2_000_000_000)));
        assert!(ByteSize::parse("12 parsecs").is_err());
        assert!(Config::from_toml("[ingest]\nmin_free_disk = \"lots\"", "t").is_err());
        let mut small = Config::default();
        small.ingest.max_body_memory = ByteSize(1024);
        assert!(small.validate().is_err());
    }

    #[test]
    fn nats_settings_from_the_file_the_environment_and_their_checks() {
        let mut c = Config::from_toml(
            r#"
            [server]
            insecure_no_auth = true
            [nats]
            prefix = "fa-prod"
            partitions = 32
            lease_ttl = "10s"
            falco_subjects = "falco.>"
            "#,
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.nats.partitions, 32);
        assert_eq!(c.nats.lease_ttl, Duration::from_secs(10));
        // Subjects without a URL cannot work.
        assert!(c.validate().is_err());
        c.apply_env(|k| (k == "FALCO_ANALYST_NATS_URL").then(|| "nats://127.0.0.1:4222".into()))
            .unwrap();
        assert_eq!(c.nats.url.as_deref(), Some("nats://127.0.0.1:4222"));
        c.validate().unwrap();
        // Names end up in subjects and stream names: no dots, wildcards or spaces.
        for bad in ["fa.x", "fa>", "", "a b"] {
            let mut b = c.clone();
            b.nats.prefix = bad.into();
            assert!(b.validate().is_err(), "{bad:?}");
        }
        let mut b = c.clone();
        b.nats.partitions = 0;
        assert!(b.validate().is_err());
        let mut b = Config::default();
        b.server.insecure_no_auth = true;
        b.nats.no_listen = true;
        assert!(b.validate().is_err(), "--no-listen without NATS");
    }
}
