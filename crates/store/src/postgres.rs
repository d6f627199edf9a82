//! PostgreSQL implementation of [`Store`], for several service replicas sharing one database.
//!
//! The trait is synchronous and is called from plain threads, the blocking pool and (when the
//! service opens its readers) from async code, where a driver that blocks on a runtime of its
//! own would panic. So each [`PgStore`] owns one connection on a thread of its own and sends it
//! jobs: the caller only waits on a channel, which is allowed anywhere.
//!
//! Bodies are stored as TEXT and compressed by PostgreSQL (TOAST), not by the zstd codec the
//! SQLite store uses. Schema changes are numbered SQL files (`migrations-pg/`), applied at open
//! in one transaction under an advisory lock, so replicas starting together never race.

use crate::console::{
    AuditEntry, ClusterQuery, IncidentQuery, Overview, SearchPage, Triage, TriageChange, TriageKind,
};
use crate::location::PgUrl;
use crate::rollup::{prio_key, prio_key_of_level, search_text, Rollup, NO_VERDICT};
use crate::sqlite::{
    cursor_int, keyset_page, limit_of, offset_page, priority_from_level, ClusterGroup,
};
use crate::types::*;
use crate::{Store, StoreError};
use fa_model::VerdictKind;
use postgres::types::ToSql;
use postgres::{Client, NoTls, Row, Transaction};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Versioned PostgreSQL migrations, applied in order at open. Never edit a released one.
pub const PG_MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations-pg/0001_init.sql")),
    (2, include_str!("../migrations-pg/0002_console.sql")),
];

mod console;

/// Advisory lock held while migrating (`fa-migr` in ASCII): one replica migrates, the others
/// wait and then find nothing left to do.
const MIGRATION_LOCK: i64 = 0x0066_612d_6d69_6772;
/// Advisory lock serialising id allocation for alerts stored unanalysed ([`WriteBatch::alerts`]).
const ID_LOCK: i64 = 0x0066_612d_6964_7321;
/// Times a batch aborted by a deadlock or a serialization failure is tried again.
const DEADLOCK_RETRIES: u32 = 3;

fn is_retryable(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    e.code().is_some_and(|c| {
        *c == SqlState::T_R_DEADLOCK_DETECTED || *c == SqlState::T_R_SERIALIZATION_FAILURE
    })
}

/// Each writer numbers its alerts within a block of 2^40 ids (see `alert_id_blocks`).
pub const ID_BLOCK_BITS: u32 = 40;

/// Connection settings beyond the URL.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// How long connecting may take (unless the URL sets `connect_timeout`).
    pub connect_timeout: Duration,
    /// Shown in `pg_stat_activity` (unless the URL sets `application_name`).
    pub application_name: String,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions {
            connect_timeout: Duration::from_secs(10),
            application_name: "falco-analyst".into(),
        }
    }
}

/// The message of a driver error: the database's own message when there is one (the error's
/// `Display` alone says only "db error").
pub(crate) fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {} ({})", db.severity(), db.message(), db.code().code()),
        None => e.to_string(),
    }
}

/// PostgreSQL text cannot hold NUL, which attacker-controlled alert fields may: it is stored,
/// and looked up, as U+FFFD so that such an alert is stored rather than failing its batch.
fn clean(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(s)
    }
}

fn clean_owned(s: &str) -> String {
    clean(s).into_owned()
}

fn clean_opt(s: Option<&str>) -> Option<String> {
    s.map(clean_owned)
}

type Job = Box<dyn FnOnce(&mut Session) + Send>;

/// The connection, owned by the worker thread; reconnected when the server closed it.
struct Session {
    config: postgres::Config,
    read_only: bool,
    client: Option<Client>,
}

impl Session {
    fn client(&mut self) -> Result<&mut Client, StoreError> {
        if self.client.as_ref().is_none_or(|c| c.is_closed()) {
            self.client = None;
            let mut c = self.config.connect(NoTls)?;
            if self.read_only {
                c.batch_execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")?;
            }
            self.client = Some(c);
        }
        self.client.as_mut().ok_or(StoreError::ConnectionLost)
    }
}

/// One connection on its own thread.
struct Worker {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    fn start(mut session: Session) -> Result<Worker, StoreError> {
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("fa-postgres".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    job(&mut session);
                }
            })?;
        let w = Worker {
            jobs: Some(tx),
            thread: Some(thread),
        };
        // Connect now: a wrong URL or password is a start-up error, not a later one.
        w.call(|s| s.client().map(|_| ()))?;
        Ok(w)
    }

    fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Session) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |s| {
            let _ = tx.send(f(s));
        });
        self.jobs
            .as_ref()
            .ok_or(StoreError::ConnectionLost)?
            .send(job)
            .map_err(|_| StoreError::ConnectionLost)?;
        rx.recv().map_err(|_| StoreError::ConnectionLost)?
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop; the connection closes with it.
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The PostgreSQL store. One instance is one connection: the service opens one writer
/// ([`PgStore::open`]) and a few readers ([`PgStore::open_reader`]) per replica.
pub struct PgStore {
    worker: Worker,
    url: PgUrl,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

fn config(url: &PgUrl, opts: &PgOptions) -> Result<postgres::Config, StoreError> {
    let mut c: postgres::Config =
        url.expose()
            .parse()
            .map_err(|e: postgres::Error| StoreError::PgConfig {
                url: url.to_string(),
                message: describe(&e),
            })?;
    if c.get_connect_timeout().is_none() {
        c.connect_timeout(opts.connect_timeout);
    }
    if c.get_application_name().is_none() {
        c.application_name(&opts.application_name);
    }
    Ok(c)
}

fn schema_version_of(c: &mut Client) -> Result<i64, StoreError> {
    let exists: bool = c
        .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])?
        .get(0);
    if !exists {
        return Ok(0);
    }
    Ok(c.query_one(
        "SELECT coalesce(max(version), 0)::BIGINT FROM schema_migrations",
        &[],
    )?
    .get(0))
}

fn known_version() -> i64 {
    PG_MIGRATIONS.last().map_or(0, |m| m.0)
}

/// Apply the pending migrations in one transaction, under [`MIGRATION_LOCK`].
fn migrate(c: &mut Client) -> Result<(), StoreError> {
    let mut tx = c.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    BIGINT PRIMARY KEY,
             applied_at BIGINT NOT NULL
         )",
    )?;
    let current: i64 = tx
        .query_one(
            "SELECT coalesce(max(version), 0)::BIGINT FROM schema_migrations",
            &[],
        )?
        .get(0);
    let known = known_version();
    if current > known {
        return Err(StoreError::SchemaTooNew {
            found: current,
            known,
        });
    }
    for (version, sql) in PG_MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        let failed = |source: postgres::Error| StoreError::PgMigration {
            version: *version,
            message: describe(&source),
        };
        tx.batch_execute(sql).map_err(failed)?;
        if *version == 2 {
            backfill_search_text(&mut tx).map_err(failed)?;
        }
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
            &[version, &to_nanos(chrono::Utc::now())],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// `alerts.search_text` for the alerts stored before schema 2, read through a cursor.
fn backfill_search_text(tx: &mut Transaction<'_>) -> Result<(), postgres::Error> {
    let portal = tx.bind("SELECT id, body FROM alerts WHERE search_text IS NULL", &[])?;
    loop {
        let chunk = tx.query_portal(&portal, 4096)?;
        if chunk.is_empty() {
            return Ok(());
        }
        let mut ids = Vec::with_capacity(chunk.len());
        let mut texts = Vec::with_capacity(chunk.len());
        for r in &chunk {
            ids.push(r.try_get::<_, i64>(0)?);
            texts.push(search_text(r.try_get::<_, &str>(1)?));
        }
        tx.execute(
            "UPDATE alerts AS a SET search_text = u.t
             FROM unnest($1::BIGINT[], $2::TEXT[]) AS u(id, t) WHERE a.id = u.id",
            &[&ids, &texts],
        )?;
    }
}

/// The trigram index of `alerts.search_text`, made once when pg_trgm is installed or can be
/// (it is a trusted extension from PostgreSQL 13: a database owner may create it). Without it
/// searches still work, reading alerts newest first; the reason is logged.
fn ensure_search_index(c: &mut Client) -> Result<(), StoreError> {
    let exists: bool = c
        .query_one("SELECT to_regclass('alerts_search') IS NOT NULL", &[])?
        .get(0);
    if exists {
        return Ok(());
    }
    let mut tx = c.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    let made = (|| -> Result<(), postgres::Error> {
        let mut sp = tx.savepoint("trgm")?;
        let schema = |sp: &mut Transaction<'_>| -> Result<Option<String>, postgres::Error> {
            sp.query_opt(
                "SELECT n.nspname::TEXT FROM pg_extension e
                 JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'",
                &[],
            )?
            .map(|r| r.try_get(0))
            .transpose()
        };
        let schema = match schema(&mut sp)? {
            Some(s) => s,
            None => {
                // In `public` where it usually lives (and where dropping one application
                // schema does not take it away), else in the current schema.
                let mut public = sp.savepoint("trgm_public")?;
                match public.batch_execute("CREATE EXTENSION IF NOT EXISTS pg_trgm SCHEMA public") {
                    Ok(()) => public.commit()?,
                    Err(_) => {
                        drop(public);
                        sp.batch_execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")?;
                    }
                }
                schema(&mut sp)?.unwrap_or_else(|| "public".into())
            }
        };
        let ident = format!("\"{}\"", schema.replace('"', "\"\""));
        sp.batch_execute(&format!(
            "CREATE INDEX IF NOT EXISTS alerts_search ON alerts
             USING gin (search_text {ident}.gin_trgm_ops)"
        ))?;
        sp.commit()
    })();
    if let Err(e) = made {
        tracing::warn!(
            error = %describe(&e),
            "no pg_trgm index for alert search; searches read the alerts instead"
        );
    }
    tx.commit()?;
    Ok(())
}

impl PgStore {
    /// Connect for writing and apply pending migrations.
    pub fn open(url: &PgUrl, opts: &PgOptions) -> Result<Self, StoreError> {
        let session = Session {
            config: config(url, opts)?,
            read_only: false,
            client: None,
        };
        let s = PgStore {
            worker: Worker::start(session)?,
            url: url.clone(),
        };
        s.worker.call(|s| migrate(s.client()?))?;
        s.worker.call(|s| ensure_search_index(s.client()?))?;
        Ok(s)
    }

    /// Connect for reading only (API queries); the schema must exist (call after [`open`]).
    ///
    /// [`open`]: PgStore::open
    pub fn open_reader(url: &PgUrl, opts: &PgOptions) -> Result<Self, StoreError> {
        let session = Session {
            config: config(url, opts)?,
            read_only: true,
            client: None,
        };
        let s = PgStore {
            worker: Worker::start(session)?,
            url: url.clone(),
        };
        let v = s.schema_version()?;
        let known = known_version();
        if v > known {
            return Err(StoreError::SchemaTooNew { found: v, known });
        }
        Ok(s)
    }

    /// The schema version applied (0 for an empty database).
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.worker.call(|s| schema_version_of(s.client()?))
    }

    /// The URL, password hidden.
    pub fn url(&self) -> &PgUrl {
        &self.url
    }

    fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        self.worker.call(move |s| f(s.client()?))
    }
}

fn verdict_of(s: Option<String>) -> Result<Option<VerdictKind>, StoreError> {
    s.map(|s| {
        s.parse::<VerdictKind>()
            .map_err(|e| StoreError::Corrupt(format!("stored verdict `{s}`: {e}")))
    })
    .transpose()
}

fn verdict_req(s: String) -> Result<VerdictKind, StoreError> {
    verdict_of(Some(s))?.ok_or_else(|| StoreError::Corrupt("missing verdict".into()))
}

const ALERT_COLUMNS: &str = "id, uuid, received_at, ts, rule, priority, source, hostname, \
                             namespace, analyzed, verdict, score, fingerprint, incident_id";

fn alert_row(r: &Row) -> Result<AlertRow, StoreError> {
    Ok(AlertRow {
        id: r.try_get(0)?,
        uuid: r.try_get(1)?,
        received_at: from_nanos(r.try_get(2)?),
        time: from_nanos(r.try_get(3)?),
        rule: r.try_get(4)?,
        priority: priority_from_level(r.try_get(5)?),
        source: r.try_get(6)?,
        hostname: r.try_get(7)?,
        namespace: r.try_get(8)?,
        analyzed: r.try_get(9)?,
        verdict: verdict_of(r.try_get(10)?)?,
        score: r.try_get::<_, Option<f64>>(11)?.map(|s| s as f32),
        fingerprint: r.try_get(12)?,
        incident_id: r.try_get(13)?,
    })
}

const CLUSTER_COLUMNS: &str = "fingerprint, rule, count, first_seen, last_seen, verdict, \
                               representative_uuid, location, activity";

fn cluster_row(r: &Row) -> Result<ClusterRow, StoreError> {
    Ok(ClusterRow {
        fingerprint: r.try_get(0)?,
        rule: r.try_get(1)?,
        count: r.try_get::<_, i64>(2)?.max(0) as u64,
        first_seen: from_nanos(r.try_get(3)?),
        last_seen: from_nanos(r.try_get(4)?),
        verdict: verdict_req(r.try_get(5)?)?,
        representative_uuid: r.try_get(6)?,
        location: r.try_get(7)?,
        activity: r.try_get(8)?,
    })
}

const INCIDENT_COLUMNS: &str =
    "id, entity, first_seen, last_seen, alert_count, verdict, updated_at, body";

fn incident_row(r: &Row) -> Result<IncidentRow, StoreError> {
    Ok(IncidentRow {
        id: r.try_get(0)?,
        entity: r.try_get(1)?,
        first_seen: r.try_get(2)?,
        last_seen: r.try_get(3)?,
        alert_count: r.try_get::<_, i64>(4)?.max(0) as u64,
        verdict: verdict_req(r.try_get(5)?)?,
        updated_at: r.try_get(6)?,
        body: r.try_get(7)?,
    })
}

fn rows<T>(
    rows: Vec<Row>,
    f: impl Fn(&Row) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    rows.iter().map(f).collect()
}

fn level(p: Option<fa_model::Priority>) -> Option<i64> {
    p.map(|p| i64::from(p.level()))
}

/// Alerts stored unanalysed, numbered after the largest id (under [`ID_LOCK`]).
fn insert_unanalysed(
    tx: &mut Transaction<'_>,
    alerts: &[NewAlert],
    roll: &mut Rollup,
) -> Result<Vec<Inserted>, StoreError> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&ID_LOCK])?;
    let mut last: i64 = tx
        .query_one("SELECT coalesce(max(id), 0)::BIGINT FROM alerts", &[])?
        .get(0);
    let ins = tx.prepare(
        "INSERT INTO alerts (id, uuid, received_at, ts, rule, priority, source, hostname, namespace,
                             body, search_text)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT DO NOTHING",
    )?;
    let mut out = Vec::with_capacity(alerts.len());
    for a in alerts {
        let id = last + 1;
        let n = tx.execute(
            &ins,
            &[
                &id,
                &clean(&a.uuid).as_ref(),
                &a.received_at,
                &a.time.unwrap_or(a.received_at),
                &clean(&a.rule).as_ref(),
                &level(a.priority),
                &clean_opt(a.source.as_deref()),
                &clean_opt(a.hostname.as_deref()),
                &clean_opt(a.namespace.as_deref()),
                &clean(&a.body).as_ref(),
                &clean_owned(&search_text(&a.body)),
            ],
        )?;
        if n == 0 {
            // The uuid is stored (before, or earlier in this batch).
            out.push(Inserted::Duplicate);
        } else {
            let ts = a.time.unwrap_or(a.received_at);
            roll.add(ts, prio_key(a.priority), NO_VERDICT, 1);
            roll.add_rule(ts, &clean(&a.rule), 1);
            last = id;
            out.push(Inserted::New(id));
        }
    }
    Ok(out)
}

/// Store the analyses: one statement for the alerts written with theirs (from the journal),
/// one for those already stored, then reports and one upsert per cluster. Returns the ids
/// counted now (an alert analysed or stored before is not counted again).
fn write_analyses(
    tx: &mut Transaction<'_>,
    list: &[Analysis],
    roll: &mut Rollup,
) -> Result<(), StoreError> {
    let mut new_ids = Vec::new();
    let mut new_uuid = Vec::new();
    let mut new_received = Vec::new();
    let mut new_ts = Vec::new();
    let mut new_rule = Vec::new();
    let mut new_prio = Vec::new();
    let mut new_source = Vec::new();
    let mut new_host = Vec::new();
    let mut new_ns = Vec::new();
    let mut new_body = Vec::new();
    let mut new_verdict = Vec::new();
    let mut new_score = Vec::new();
    let mut new_fp = Vec::new();
    let mut new_inc = Vec::new();
    let mut new_vjson = Vec::new();
    let mut new_text = Vec::new();
    let mut upd_ids = Vec::new();
    let mut upd_verdict = Vec::new();
    let mut upd_score = Vec::new();
    let mut upd_fp = Vec::new();
    let mut upd_inc = Vec::new();
    let mut upd_vjson = Vec::new();
    for a in list {
        match &a.row {
            Some(r) => {
                new_ids.push(a.alert_id);
                new_uuid.push(clean_owned(&r.uuid));
                new_received.push(r.received_at);
                new_ts.push(r.time.unwrap_or(r.received_at));
                new_rule.push(clean_owned(&r.rule));
                new_prio.push(level(r.priority));
                new_source.push(clean_opt(r.source.as_deref()));
                new_host.push(clean_opt(r.hostname.as_deref()));
                new_ns.push(clean_opt(r.namespace.as_deref()));
                new_body.push(clean_owned(&r.body));
                new_verdict.push(a.verdict.as_str().to_owned());
                new_score.push(f64::from(a.score));
                new_fp.push(clean_owned(&a.fingerprint));
                new_inc.push(clean_opt(a.incident_id.as_deref()));
                new_vjson.push(clean_owned(&a.verdict_json));
                new_text.push(clean_owned(&search_text(&r.body)));
            }
            None => {
                upd_ids.push(a.alert_id);
                upd_verdict.push(a.verdict.as_str().to_owned());
                upd_score.push(f64::from(a.score));
                upd_fp.push(clean_owned(&a.fingerprint));
                upd_inc.push(clean_opt(a.incident_id.as_deref()));
                upd_vjson.push(clean_owned(&a.verdict_json));
            }
        }
    }
    // Ids written now; each is counted once, by the first analysis that names it.
    let mut written: HashSet<i64> = HashSet::new();
    if !new_ids.is_empty() {
        // A uuid stored under another id (a redelivery, possibly through another replica) or
        // an id stored before (a replay) conflicts and is skipped. Rows go in uuid order: two
        // replicas inserting the same uuids then wait for each other in one order instead of
        // deadlocking.
        for r in tx.query(
            "INSERT INTO alerts (id, uuid, received_at, ts, rule, priority, source, hostname,
                                 namespace, body, analyzed, verdict, score, fingerprint,
                                 incident_id, verdict_json, search_text)
             SELECT id, uuid, received_at, ts, rule, priority, source, hostname, namespace,
                    body, TRUE, verdict, score, fingerprint, incident_id, verdict_json,
                    search_text
             FROM unnest($1::BIGINT[], $2::TEXT[], $3::BIGINT[], $4::BIGINT[], $5::TEXT[],
                         $6::BIGINT[], $7::TEXT[], $8::TEXT[], $9::TEXT[], $10::TEXT[],
                         $11::TEXT[], $12::FLOAT8[], $13::TEXT[], $14::TEXT[], $15::TEXT[],
                         $16::TEXT[])
                  AS n(id, uuid, received_at, ts, rule, priority, source, hostname, namespace,
                       body, verdict, score, fingerprint, incident_id, verdict_json,
                       search_text)
             ORDER BY uuid COLLATE \"C\"
             ON CONFLICT DO NOTHING
             RETURNING id",
            &[
                &new_ids,
                &new_uuid,
                &new_received,
                &new_ts,
                &new_rule,
                &new_prio,
                &new_source,
                &new_host,
                &new_ns,
                &new_body,
                &new_verdict,
                &new_score,
                &new_fp,
                &new_inc,
                &new_vjson,
                &new_text,
            ],
        )? {
            written.insert(r.try_get(0)?);
        }
    }
    // What the rollups need of the alerts analysed in place: (time, priority key, namespace).
    let mut updated: HashMap<i64, (i64, i64, Option<String>)> = HashMap::new();
    if !upd_ids.is_empty() {
        for r in tx.query(
            "UPDATE alerts AS a SET analyzed = TRUE, verdict = u.verdict, score = u.score,
                    fingerprint = u.fingerprint, incident_id = u.incident_id,
                    verdict_json = u.verdict_json
             FROM unnest($1::BIGINT[], $2::TEXT[], $3::FLOAT8[], $4::TEXT[], $5::TEXT[],
                         $6::TEXT[])
                  AS u(id, verdict, score, fingerprint, incident_id, verdict_json)
             WHERE a.id = u.id AND NOT a.analyzed
             RETURNING a.id, a.ts, a.priority, a.namespace",
            &[
                &upd_ids,
                &upd_verdict,
                &upd_score,
                &upd_fp,
                &upd_inc,
                &upd_vjson,
            ],
        )? {
            let id: i64 = r.try_get(0)?;
            written.insert(id);
            updated.insert(
                id,
                (
                    r.try_get(1)?,
                    prio_key_of_level(r.try_get(2)?),
                    r.try_get(3)?,
                ),
            );
        }
    }
    let mut rep_ids = Vec::new();
    let mut rep_at = Vec::new();
    let mut rep_body = Vec::new();
    let mut clusters: HashMap<&str, ClusterGroup<'_>> = HashMap::new();
    for a in list {
        // Already analysed or already stored (a repeated delivery to the analysers):
        // counting it again would inflate its cluster.
        if !written.remove(&a.alert_id) {
            continue;
        }
        let inc = clean_opt(a.incident_id.as_deref());
        match (&a.row, updated.get(&a.alert_id)) {
            (Some(r), _) => {
                let ts = r.time.unwrap_or(r.received_at);
                roll.add(ts, prio_key(r.priority), a.verdict.as_str(), 1);
                roll.add_rule(ts, &clean(&r.rule), 1);
                roll.incident_in(clean_opt(r.namespace.as_deref()).as_deref(), inc.as_deref());
            }
            (None, Some((ts, prio, ns))) => {
                roll.add(*ts, *prio, NO_VERDICT, -1);
                roll.add(*ts, *prio, a.verdict.as_str(), 1);
                roll.incident_in(ns.as_deref(), inc.as_deref());
            }
            (None, None) => {}
        }
        if let Some(r) = &a.report_json {
            rep_ids.push(a.alert_id);
            rep_at.push(a.analyzed_at);
            rep_body.push(clean_owned(r));
        }
        match clusters.get_mut(a.fingerprint.as_str()) {
            Some(g) => g.add(&a.cluster, a.analyzed_at),
            None => {
                clusters.insert(
                    a.fingerprint.as_str(),
                    ClusterGroup::new(&a.cluster, a.analyzed_at),
                );
            }
        }
    }
    if !rep_ids.is_empty() {
        tx.execute(
            "INSERT INTO reports (alert_id, created_at, body)
             SELECT * FROM unnest($1::BIGINT[], $2::BIGINT[], $3::TEXT[])
             ON CONFLICT (alert_id) DO UPDATE SET created_at = excluded.created_at,
                                                  body = excluded.body",
            &[&rep_ids, &rep_at, &rep_body],
        )?;
    }
    if !clusters.is_empty() {
        // In fingerprint order: replicas upserting the same clusters lock them in one order,
        // so they wait for each other instead of deadlocking.
        let mut groups: Vec<(&str, ClusterGroup<'_>)> = clusters.into_iter().collect();
        groups.sort_by(|a, b| a.0.cmp(b.0));
        let fp: Vec<String> = groups.iter().map(|(f, _)| clean_owned(f)).collect();
        let rule: Vec<String> = groups
            .iter()
            .map(|(_, g)| clean_owned(&g.first.rule))
            .collect();
        let count: Vec<i64> = groups.iter().map(|(_, g)| g.count).collect();
        let first: Vec<i64> = groups.iter().map(|(_, g)| g.first_seen).collect();
        let last: Vec<i64> = groups.iter().map(|(_, g)| g.last_seen).collect();
        let verdict: Vec<&str> = groups.iter().map(|(_, g)| g.worst.as_str()).collect();
        let rank: Vec<i64> = groups.iter().map(|(_, g)| verdict_rank(g.worst)).collect();
        let uuid: Vec<String> = groups
            .iter()
            .map(|(_, g)| clean_owned(&g.first.uuid))
            .collect();
        let loc: Vec<String> = groups
            .iter()
            .map(|(_, g)| clean_owned(&g.first.location))
            .collect();
        let act: Vec<String> = groups
            .iter()
            .map(|(_, g)| clean_owned(&g.first.activity))
            .collect();
        let updated: Vec<i64> = groups.iter().map(|(_, g)| g.updated_at).collect();
        tx.execute(
            "INSERT INTO clusters AS c (fingerprint, rule, count, first_seen, last_seen, verdict,
                                        verdict_rank, representative_uuid, location, activity,
                                        updated_at)
             SELECT * FROM unnest($1::TEXT[], $2::TEXT[], $3::BIGINT[], $4::BIGINT[],
                                  $5::BIGINT[], $6::TEXT[], $7::BIGINT[], $8::TEXT[],
                                  $9::TEXT[], $10::TEXT[], $11::BIGINT[])
             ON CONFLICT (fingerprint) DO UPDATE SET
                 count = c.count + excluded.count,
                 updated_at = GREATEST(c.updated_at, excluded.updated_at),
                 first_seen = LEAST(c.first_seen, excluded.first_seen),
                 last_seen = GREATEST(c.last_seen, excluded.last_seen),
                 verdict = CASE WHEN excluded.verdict_rank > c.verdict_rank
                                THEN excluded.verdict ELSE c.verdict END,
                 verdict_rank = GREATEST(c.verdict_rank, excluded.verdict_rank)",
            &[
                &fp, &rule, &count, &first, &last, &verdict, &rank, &uuid, &loc, &act, &updated,
            ],
        )?;
    }
    Ok(())
}

/// Apply a batch's rollup changes in key order; a count that falls to zero is deleted.
fn write_rollup(tx: &mut Transaction<'_>, r: &Rollup) -> Result<(), StoreError> {
    let (mut m, mut p, mut v, mut n) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for ((minute, prio, verdict), d) in r.minute_changes() {
        m.push(*minute);
        p.push(*prio);
        v.push(verdict.as_str());
        n.push(d);
    }
    if !m.is_empty() {
        tx.execute(
            "INSERT INTO alert_minutes AS m (minute, priority, verdict, count)
             SELECT * FROM unnest($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::BIGINT[])
             ON CONFLICT (minute, priority, verdict) DO UPDATE SET count = m.count + excluded.count",
            &[&m, &p, &v, &n],
        )?;
        if n.iter().any(|d| *d < 0) {
            tx.execute(
                "DELETE FROM alert_minutes WHERE minute = ANY($1) AND count <= 0",
                &[&m],
            )?;
        }
    }
    let (mut m, mut rule, mut n) = (Vec::new(), Vec::new(), Vec::new());
    for ((minute, r), d) in r.rule_changes() {
        m.push(*minute);
        rule.push(r.as_str());
        n.push(d);
    }
    if !m.is_empty() {
        // Sorted by the key itself (the md5), so replicas lock rows in one order.
        tx.execute(
            "INSERT INTO alert_rule_minutes AS m (minute, rule_md5, rule, count)
             SELECT minute, md5(rule), rule, n
             FROM unnest($1::BIGINT[], $2::TEXT[], $3::BIGINT[]) AS u(minute, rule, n)
             ORDER BY 1, 2
             ON CONFLICT (minute, rule_md5) DO UPDATE SET count = m.count + excluded.count",
            &[&m, &rule, &n],
        )?;
        if n.iter().any(|d| *d < 0) {
            tx.execute(
                "DELETE FROM alert_rule_minutes WHERE minute = ANY($1) AND count <= 0",
                &[&m],
            )?;
        }
    }
    if !r.incident_namespaces.is_empty() {
        let (ns, inc): (Vec<&str>, Vec<&str>) = r
            .incident_namespaces
            .iter()
            .map(|(n, i)| (n.as_str(), i.as_str()))
            .unzip();
        tx.execute(
            "INSERT INTO incident_namespaces (namespace, incident_id)
             SELECT * FROM unnest($1::TEXT[], $2::TEXT[]) ORDER BY 1, 2
             ON CONFLICT DO NOTHING",
            &[&ns, &inc],
        )?;
    }
    Ok(())
}

fn write_batch(c: &mut Client, b: &WriteBatch) -> Result<Vec<Inserted>, StoreError> {
    let mut tx = c.transaction()?;
    let mut roll = Rollup::default();
    let out = if b.alerts.is_empty() {
        Vec::new()
    } else {
        insert_unanalysed(&mut tx, &b.alerts, &mut roll)?
    };
    if !b.dead_letters.is_empty() {
        let at: Vec<i64> = b.dead_letters.iter().map(|d| d.received_at).collect();
        let origin: Vec<String> = b
            .dead_letters
            .iter()
            .map(|d| clean_owned(&d.origin))
            .collect();
        let kind: Vec<String> = b
            .dead_letters
            .iter()
            .map(|d| clean_owned(&d.reason_kind))
            .collect();
        let reason: Vec<String> = b
            .dead_letters
            .iter()
            .map(|d| clean_owned(&d.reason))
            .collect();
        let raw: Vec<&[u8]> = b.dead_letters.iter().map(|d| d.raw.as_slice()).collect();
        // WITH ORDINALITY keeps the batch's order in the ids.
        tx.execute(
            "INSERT INTO dead_letters (received_at, origin, reason_kind, reason, raw)
             SELECT received_at, origin, reason_kind, reason, raw
             FROM unnest($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::BYTEA[])
                  WITH ORDINALITY AS d(received_at, origin, reason_kind, reason, raw, n)
             ORDER BY n",
            &[&at, &origin, &kind, &reason, &raw],
        )?;
    }
    if !b.analyses.is_empty() {
        write_analyses(&mut tx, &b.analyses, &mut roll)?;
    }
    if !b.incidents.is_empty() {
        // The last state of each incident, in id order (one lock order for all replicas).
        let mut last: HashMap<&str, &IncidentRow> = HashMap::new();
        for i in &b.incidents {
            last.insert(i.id.as_str(), i);
        }
        let mut list: Vec<&IncidentRow> = last.into_values().collect();
        list.sort_by(|a, b| a.id.cmp(&b.id));
        let up = tx.prepare(
            "INSERT INTO incidents (id, entity, first_seen, last_seen, alert_count, verdict, updated_at, body)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (id) DO UPDATE SET
                 entity = excluded.entity, first_seen = excluded.first_seen,
                 last_seen = excluded.last_seen, alert_count = excluded.alert_count,
                 verdict = excluded.verdict, updated_at = excluded.updated_at,
                 body = excluded.body",
        )?;
        for i in list {
            tx.execute(
                &up,
                &[
                    &clean(&i.id).as_ref(),
                    &clean(&i.entity).as_ref(),
                    &i.first_seen,
                    &i.last_seen,
                    &i64::try_from(i.alert_count).unwrap_or(i64::MAX),
                    &i.verdict.as_str(),
                    &i.updated_at,
                    &clean(&i.body).as_ref(),
                ],
            )?;
        }
    }
    if !b.report_updates.is_empty() {
        let up = tx.prepare("UPDATE reports SET body = $2 WHERE alert_id = $1")?;
        for r in &b.report_updates {
            tx.execute(&up, &[&r.alert_id, &clean(&r.body).as_ref()])?;
        }
    }
    if !b.llm_cache.is_empty() {
        let put = tx.prepare(LLM_PUT)?;
        for e in &b.llm_cache {
            tx.execute(
                &put,
                &[
                    &clean(&e.key).as_ref(),
                    &e.created_at,
                    &clean(&e.value).as_ref(),
                ],
            )?;
        }
    }
    write_rollup(&mut tx, &roll)?;
    tx.commit()?;
    Ok(out)
}

const LLM_PUT: &str = "INSERT INTO llm_cache (key, created_at, value) VALUES ($1, $2, $3)
                       ON CONFLICT (key) DO UPDATE SET created_at = excluded.created_at,
                                                       value = excluded.value";

/// Delete at most `chunk` rows of `table` whose `time_col` is before `cut`, oldest keys first.
/// The names are this module's constants, never input.
fn delete_older(
    tx: &mut Transaction<'_>,
    table: &str,
    key: &str,
    time_col: &str,
    cut: i64,
    chunk: i64,
) -> Result<u64, StoreError> {
    Ok(tx.execute(
        &format!(
            "DELETE FROM {table} WHERE {key} IN
               (SELECT {key} FROM {table} WHERE {time_col} < $1 ORDER BY {key} LIMIT $2)"
        ),
        &[&cut, &chunk],
    )?)
}

fn retention(
    c: &mut Client,
    p: &RetentionPolicy,
    now: Nanos,
    chunk: usize,
) -> Result<RetentionOutcome, StoreError> {
    let chunk = chunk.max(1);
    let chunk_i = i64::try_from(chunk).unwrap_or(i64::MAX);
    let mut o = RetentionOutcome::default();
    let cutoff = p
        .max_age
        .and_then(|a| a.num_nanoseconds())
        .map(|a| now.saturating_sub(a));
    let mut tx = c.transaction()?;
    let mut ids: Vec<i64> = Vec::new();
    if let Some(cut) = cutoff {
        for r in tx.query(
            "SELECT id FROM alerts WHERE analyzed AND received_at < $1 ORDER BY id LIMIT $2",
            &[&cut, &chunk_i],
        )? {
            ids.push(r.try_get(0)?);
        }
    }
    if let Some(max) = p.max_alerts {
        // The newest `max` alerts stay; everything analysed below the boundary goes.
        let boundary = tx
            .query_opt(
                "SELECT id FROM alerts ORDER BY id DESC LIMIT 1 OFFSET $1",
                &[&i64::try_from(max).unwrap_or(i64::MAX)],
            )?
            .map(|r| r.try_get::<_, i64>(0))
            .transpose()?;
        if let (Some(b), true) = (boundary, ids.len() < chunk) {
            let after = ids.last().copied().unwrap_or(0);
            let left = i64::try_from(chunk - ids.len()).unwrap_or(i64::MAX);
            for r in tx.query(
                "SELECT id FROM alerts WHERE analyzed AND id <= $1 AND id > $2 ORDER BY id LIMIT $3",
                &[&b, &after, &left],
            )? {
                ids.push(r.try_get(0)?);
            }
        }
    }
    if !ids.is_empty() {
        // RETURNING what the rollups subtract.
        let mut roll = Rollup::default();
        for r in tx.query(
            "DELETE FROM alerts WHERE id = ANY($1) RETURNING ts, priority, verdict, rule",
            &[&ids],
        )? {
            let ts: i64 = r.try_get(0)?;
            let v: Option<&str> = r.try_get(2)?;
            roll.add(
                ts,
                prio_key_of_level(r.try_get(1)?),
                v.unwrap_or(NO_VERDICT),
                -1,
            );
            roll.add_rule(ts, r.try_get(3)?, -1);
            o.alerts_deleted += 1;
        }
        tx.execute("DELETE FROM reports WHERE alert_id = ANY($1)", &[&ids])?;
        write_rollup(&mut tx, &roll)?;
    }
    o.more |= ids.len() >= chunk;
    if let Some(cut) = cutoff {
        let n = delete_older(&mut tx, "dead_letters", "id", "received_at", cut, chunk_i)?;
        o.dead_letters_deleted += n;
        o.more |= n >= chunk as u64;
        let n = delete_older(
            &mut tx,
            "clusters",
            "fingerprint",
            "updated_at",
            cut,
            chunk_i,
        )?;
        o.clusters_deleted += n;
        o.more |= n >= chunk as u64;
        let n = delete_older(&mut tx, "incidents", "id", "updated_at", cut, chunk_i)?;
        o.incidents_deleted += n;
        o.more |= n >= chunk as u64;
        if o.clusters_deleted + o.incidents_deleted > 0 {
            // Their triage, audit trail and namespaces go with them.
            console::delete_orphans(&mut tx)?;
        }
        let n = delete_older(&mut tx, "llm_cache", "key", "created_at", cut, chunk_i)?;
        o.more |= n >= chunk as u64;
    }
    if let Some(max) = p.max_dead_letters {
        let boundary = tx
            .query_opt(
                "SELECT id FROM dead_letters ORDER BY id DESC LIMIT 1 OFFSET $1",
                &[&i64::try_from(max).unwrap_or(i64::MAX)],
            )?
            .map(|r| r.try_get::<_, i64>(0))
            .transpose()?;
        if let Some(b) = boundary {
            let n = tx.execute(
                "DELETE FROM dead_letters WHERE id IN
                   (SELECT id FROM dead_letters WHERE id <= $1 ORDER BY id LIMIT $2)",
                &[&b, &chunk_i],
            )?;
            o.dead_letters_deleted += n;
            o.more |= n >= chunk as u64;
        }
    }
    tx.commit()?;
    Ok(o)
}

/// A query's parameters, built alongside its text.
#[derive(Default)]
struct Args {
    sql: String,
    values: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Args {
    fn cond(&mut self, part: &str, v: Box<dyn ToSql + Sync + Send>) {
        self.values.push(v);
        self.sql
            .push_str(&format!(" AND {part} ${}", self.values.len()));
    }

    fn query(&self, c: &mut Client) -> Result<Vec<Row>, StoreError> {
        let refs: Vec<&(dyn ToSql + Sync)> = self
            .values
            .iter()
            .map(|v| v.as_ref() as &(dyn ToSql + Sync))
            .collect();
        Ok(c.query(self.sql.as_str(), &refs)?)
    }
}

fn list_alerts_sql(f: &AlertFilter, page: &PageRequest) -> (Args, usize) {
    let mut a = Args {
        sql: format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE TRUE"),
        values: Vec::new(),
    };
    if let Some(p) = f.priority {
        a.cond("priority =", Box::new(i64::from(p.level())));
    }
    if let Some(p) = f.min_priority {
        a.cond("priority >=", Box::new(i64::from(p.level())));
    }
    if let Some(v) = f.verdict {
        a.cond("verdict =", Box::new(v.as_str().to_owned()));
    }
    for (col, text) in [
        ("source", &f.source),
        ("rule", &f.rule),
        ("hostname", &f.hostname),
        ("namespace", &f.namespace),
        ("fingerprint", &f.fingerprint),
        ("incident_id", &f.incident_id),
    ] {
        if let Some(t) = text {
            a.cond(&format!("{col} ="), Box::new(clean_owned(t)));
        }
    }
    if let Some(v) = f.analyzed {
        a.cond("analyzed =", Box::new(v));
    }
    if let Some(t) = f.since {
        a.cond("ts >=", Box::new(t));
    }
    if let Some(t) = f.until {
        a.cond("ts <", Box::new(t));
    }
    if let Some(c) = cursor_int(&page.cursor) {
        a.cond("id <", Box::new(c));
    }
    let limit = limit_of(page);
    a.sql
        .push_str(&format!(" ORDER BY id DESC LIMIT {}", limit + 1));
    (a, limit)
}

/// Whether a uuid is stored: the md5 index finds it, the text confirms it.
const UUID_STORED: &str =
    "SELECT EXISTS (SELECT 1 FROM alerts WHERE md5(uuid) = md5($1) AND uuid = $1)";

impl Store for PgStore {
    fn write(&mut self, batch: &WriteBatch) -> Result<Vec<Inserted>, StoreError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let b = batch.clone();
        self.call(move |c| {
            // A deadlock PostgreSQL broke by aborting this transaction (replicas writing the
            // same rows in another order) is retried: the batch was rolled back whole.
            let mut attempt = 0;
            loop {
                match write_batch(c, &b) {
                    Err(StoreError::Postgres(e))
                        if attempt < DEADLOCK_RETRIES && is_retryable(&e) =>
                    {
                        attempt += 1;
                        tracing::warn!(attempt, error = %describe(&e), "store batch retried");
                    }
                    other => return other,
                }
            }
        })
    }

    /// The first id this writer's journal may give: the start of a block of ids claimed now,
    /// above every block claimed before (by this replica or another).
    fn claim_id_floor(&mut self) -> Result<i64, StoreError> {
        self.call(|c| {
            let mut tx = c.transaction()?;
            let block: i64 = tx
                .query_one("SELECT nextval('alert_id_blocks')", &[])?
                .get(0);
            let mut floor = block.checked_shl(ID_BLOCK_BITS).unwrap_or(i64::MAX);
            let max: i64 = tx
                .query_one("SELECT coalesce(max(id), 0)::BIGINT FROM alerts", &[])?
                .get(0);
            if max > floor {
                // Ids written outside the blocks (alerts stored unanalysed): move past them.
                let block = (max >> ID_BLOCK_BITS) + 1;
                tx.execute("SELECT setval('alert_id_blocks', $1)", &[&block])?;
                floor = block.checked_shl(ID_BLOCK_BITS).unwrap_or(i64::MAX);
            }
            tx.commit()?;
            Ok(floor)
        })
    }

    fn apply_retention(
        &mut self,
        policy: &RetentionPolicy,
        now: Nanos,
        chunk: usize,
    ) -> Result<RetentionOutcome, StoreError> {
        let p = policy.clone();
        self.call(move |c| retention(c, &p, now, chunk))
    }

    fn unanalyzed(
        &self,
        after: i64,
        up_to: i64,
        limit: usize,
    ) -> Result<Vec<UnanalyzedAlert>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.call(move |c| {
            let r = c.query(
                "SELECT id, uuid, body FROM alerts
                 WHERE NOT analyzed AND id > $1 AND id <= $2 ORDER BY id LIMIT $3",
                &[&after, &up_to, &limit],
            )?;
            rows(r, |r| {
                Ok(UnanalyzedAlert {
                    id: r.try_get(0)?,
                    uuid: r.try_get(1)?,
                    body: r.try_get(2)?,
                })
            })
        })
    }

    fn alert_exists(&self, uuid: &str) -> Result<bool, StoreError> {
        let uuid = clean_owned(uuid);
        self.call(move |c| Ok(c.query_one(UUID_STORED, &[&uuid])?.try_get(0)?))
    }

    fn for_each_uuid(&self, f: &mut dyn FnMut(&str)) -> Result<(), StoreError> {
        // The worker reads through a cursor (one statement, so one snapshot) and hands the
        // uuids over in chunks; the callback runs here, on the caller's thread.
        let (tx, rx) = mpsc::sync_channel::<Vec<String>>(2);
        let (done_tx, done_rx) = mpsc::sync_channel::<Result<(), StoreError>>(1);
        let job: Job = Box::new(move |s| {
            let r = (|| -> Result<(), StoreError> {
                let c = s.client()?;
                let mut t = c.transaction()?;
                let portal = t.bind("SELECT uuid FROM alerts", &[])?;
                loop {
                    let chunk = t.query_portal(&portal, 8192)?;
                    if chunk.is_empty() {
                        break;
                    }
                    let uuids = chunk
                        .iter()
                        .map(|r| r.try_get::<_, String>(0))
                        .collect::<Result<Vec<_>, _>>()?;
                    if tx.send(uuids).is_err() {
                        break;
                    }
                }
                t.commit()?;
                Ok(())
            })();
            drop(tx);
            let _ = done_tx.send(r);
        });
        self.worker
            .jobs
            .as_ref()
            .ok_or(StoreError::ConnectionLost)?
            .send(job)
            .map_err(|_| StoreError::ConnectionLost)?;
        for chunk in rx {
            for u in &chunk {
                f(u);
            }
        }
        done_rx.recv().map_err(|_| StoreError::ConnectionLost)?
    }

    fn alert_id_exists(&self, id: i64) -> Result<bool, StoreError> {
        self.call(move |c| {
            Ok(
                c.query_one("SELECT EXISTS (SELECT 1 FROM alerts WHERE id = $1)", &[&id])?
                    .try_get(0)?,
            )
        })
    }

    fn max_alert_id(&self) -> Result<i64, StoreError> {
        self.call(|c| {
            Ok(
                c.query_one("SELECT coalesce(max(id), 0)::BIGINT FROM alerts", &[])?
                    .try_get(0)?,
            )
        })
    }

    fn stats(&self) -> Result<StoreStats, StoreError> {
        self.call(|c| {
            let r = c.query_one(
                "SELECT (SELECT count(*) FROM alerts),
                        (SELECT count(*) FROM alerts WHERE NOT analyzed),
                        (SELECT count(*) FROM clusters),
                        (SELECT count(*) FROM incidents),
                        (SELECT count(*) FROM dead_letters)",
                &[],
            )?;
            let n =
                |i: usize| -> Result<u64, StoreError> { Ok(r.try_get::<_, i64>(i)?.max(0) as u64) };
            Ok(StoreStats {
                alerts: n(0)?,
                unanalyzed: n(1)?,
                clusters: n(2)?,
                incidents: n(3)?,
                dead_letters: n(4)?,
            })
        })
    }

    fn list_alerts(
        &self,
        filter: &AlertFilter,
        page: &PageRequest,
    ) -> Result<Page<AlertRow>, StoreError> {
        let (q, limit) = list_alerts_sql(filter, page);
        self.call(move |c| {
            let items = rows(q.query(c)?, alert_row)?;
            Ok(keyset_page(items, limit, |a| a.id))
        })
    }

    fn get_alert(&self, uuid: &str) -> Result<Option<AlertRecord>, StoreError> {
        let uuid = clean_owned(uuid);
        self.call(move |c| {
            let Some(r) = c.query_opt(
                &format!(
                    "SELECT {ALERT_COLUMNS}, body, verdict_json,
                            (SELECT body FROM reports WHERE alert_id = alerts.id)
                     FROM alerts WHERE md5(uuid) = md5($1) AND uuid = $1"
                ),
                &[&uuid],
            )?
            else {
                return Ok(None);
            };
            Ok(Some(AlertRecord {
                row: alert_row(&r)?,
                body: r.try_get(14)?,
                verdict_json: r.try_get(15)?,
                report_json: r.try_get(16)?,
            }))
        })
    }

    fn list_clusters(
        &self,
        f: &ClusterFilter,
        page: &PageRequest,
    ) -> Result<Page<ClusterRow>, StoreError> {
        let mut a = Args {
            sql: format!("SELECT {CLUSTER_COLUMNS} FROM clusters WHERE TRUE"),
            values: Vec::new(),
        };
        if let Some(r) = &f.rule {
            a.cond("rule =", Box::new(clean_owned(r)));
        }
        if let Some(v) = f.verdict {
            a.cond("verdict =", Box::new(v.as_str().to_owned()));
        }
        let limit = limit_of(page);
        let offset = cursor_int(&page.cursor).unwrap_or(0);
        a.sql.push_str(&format!(
            " ORDER BY last_seen DESC, fingerprint LIMIT {} OFFSET {offset}",
            limit + 1
        ));
        self.call(move |c| {
            let items = rows(a.query(c)?, cluster_row)?;
            Ok(offset_page(items, limit, offset))
        })
    }

    fn get_cluster(&self, fingerprint: &str) -> Result<Option<ClusterRow>, StoreError> {
        let fp = clean_owned(fingerprint);
        self.call(move |c| {
            c.query_opt(
                &format!("SELECT {CLUSTER_COLUMNS} FROM clusters WHERE fingerprint = $1"),
                &[&fp],
            )?
            .map(|r| cluster_row(&r))
            .transpose()
        })
    }

    fn activity_history(&self, fingerprint: &str) -> Result<Option<ActivityHistory>, StoreError> {
        let Some(c) = self.get_cluster(fingerprint)? else {
            return Ok(None);
        };
        let fp = clean_owned(fingerprint);
        let hosts = self.call(move |conn| {
            let rows = conn.query(
                "SELECT DISTINCT hostname FROM (SELECT hostname FROM alerts
                   WHERE fingerprint = $1 ORDER BY id DESC LIMIT $2) recent
                 WHERE hostname IS NOT NULL AND hostname <> '' LIMIT $3",
                &[&fp, &(HISTORY_SCAN as i64), &(HISTORY_HOSTS as i64)],
            )?;
            rows.iter()
                .map(|r| r.try_get::<_, String>(0).map_err(StoreError::from))
                .collect::<Result<Vec<_>, _>>()
        })?;
        Ok(Some(ActivityHistory {
            count: c.count,
            first_seen: c.first_seen,
            last_seen: c.last_seen,
            verdict: c.verdict,
            hosts,
        }))
    }

    fn first_alert_time(&self) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError> {
        self.call(|conn| {
            let r = conn.query_one("SELECT MIN(ts) FROM alerts", &[])?;
            Ok(r.try_get::<_, Option<i64>>(0)?.map(from_nanos))
        })
    }

    fn list_incidents(&self, page: &PageRequest) -> Result<Page<IncidentRow>, StoreError> {
        let limit = limit_of(page);
        let offset = cursor_int(&page.cursor).unwrap_or(0);
        self.call(move |c| {
            let r = c.query(
                &format!(
                    "SELECT {INCIDENT_COLUMNS} FROM incidents
                     ORDER BY updated_at DESC, id LIMIT $1 OFFSET $2"
                ),
                &[&((limit + 1) as i64), &offset],
            )?;
            Ok(offset_page(rows(r, incident_row)?, limit, offset))
        })
    }

    fn get_incident(&self, id: &str) -> Result<Option<IncidentRow>, StoreError> {
        let id = clean_owned(id);
        self.call(move |c| {
            c.query_opt(
                &format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1"),
                &[&id],
            )?
            .map(|r| incident_row(&r))
            .transpose()
        })
    }

    fn recent_incidents(&self, since: Nanos, limit: usize) -> Result<Vec<IncidentRow>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.call(move |c| {
            let r = c.query(
                &format!(
                    "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE updated_at >= $1
                     ORDER BY updated_at DESC, id LIMIT $2"
                ),
                &[&since, &limit],
            )?;
            rows(r, incident_row)
        })
    }

    fn list_dead_letters(&self, page: &PageRequest) -> Result<Page<DeadLetterRow>, StoreError> {
        let limit = limit_of(page);
        let before = cursor_int(&page.cursor).unwrap_or(i64::MAX);
        self.call(move |c| {
            let r = c.query(
                "SELECT id, received_at, origin, reason_kind, reason, raw FROM dead_letters
                 WHERE id < $1 ORDER BY id DESC LIMIT $2",
                &[&before, &((limit + 1) as i64)],
            )?;
            let items = rows(r, |r| {
                Ok(DeadLetterRow {
                    id: r.try_get(0)?,
                    received_at: from_nanos(r.try_get(1)?),
                    origin: r.try_get(2)?,
                    reason_kind: r.try_get(3)?,
                    reason: r.try_get(4)?,
                    raw: r.try_get(5)?,
                })
            })?;
            Ok(keyset_page(items, limit, |d| d.id))
        })
    }

    fn llm_cache_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let key = clean_owned(key);
        self.call(move |c| {
            c.query_opt("SELECT value FROM llm_cache WHERE key = $1", &[&key])?
                .map(|r| r.try_get(0).map_err(StoreError::from))
                .transpose()
        })
    }

    fn llm_cache_put(&mut self, key: &str, value: &str, now: Nanos) -> Result<(), StoreError> {
        let (key, value) = (clean_owned(key), clean_owned(value));
        self.call(move |c| {
            c.execute(LLM_PUT, &[&key, &now, &value])?;
            Ok(())
        })
    }

    fn triage_get(&self, kind: TriageKind, item: &str) -> Result<Option<Triage>, StoreError> {
        let item = item.to_string();
        self.call(move |c| console::triage_get(c, kind, &item))
    }

    fn triage_update(
        &mut self,
        kind: TriageKind,
        item: &str,
        change: &TriageChange,
        actor: &str,
        now: Nanos,
    ) -> Result<Option<Triage>, StoreError> {
        let (item, change, actor) = (item.to_string(), change.clone(), actor.to_string());
        self.call(move |c| console::triage_update(c, kind, &item, &change, &actor, now))
    }

    fn triage_audit(
        &self,
        kind: TriageKind,
        item: &str,
        page: &PageRequest,
    ) -> Result<Page<AuditEntry>, StoreError> {
        let (item, page) = (item.to_string(), page.clone());
        self.call(move |c| console::triage_audit(c, kind, &item, &page))
    }

    fn triage_map(
        &self,
        kind: TriageKind,
        items: &[String],
    ) -> Result<HashMap<String, Triage>, StoreError> {
        let items = items.to_vec();
        self.call(move |c| console::triage_map(c, kind, &items))
    }

    fn muted_clusters(&self) -> Result<Vec<String>, StoreError> {
        self.call(console::muted_clusters)
    }

    fn console_overview(
        &self,
        since: Nanos,
        until: Nanos,
        bucket: i64,
        top: usize,
    ) -> Result<Overview, StoreError> {
        self.call(move |c| console::overview(c, since, until, bucket, top))
    }

    fn console_incidents(
        &self,
        query: &IncidentQuery,
        page: &PageRequest,
    ) -> Result<Page<IncidentRow>, StoreError> {
        let (q, page) = (query.clone(), page.clone());
        self.call(move |c| console::incidents(c, &q, &page))
    }

    fn console_clusters(
        &self,
        query: &ClusterQuery,
        page: &PageRequest,
    ) -> Result<Page<ClusterRow>, StoreError> {
        let (q, page) = (query.clone(), page.clone());
        self.call(move |c| console::clusters(c, &q, &page))
    }

    fn search_alerts(
        &self,
        filter: &AlertFilter,
        text: &str,
        page: &PageRequest,
        max_scan: usize,
    ) -> Result<SearchPage<AlertRow>, StoreError> {
        let (f, t, page) = (filter.clone(), text.to_string(), page.clone());
        self.call(move |c| console::search_alerts(c, &f, &t, &page, max_scan))
    }
}
