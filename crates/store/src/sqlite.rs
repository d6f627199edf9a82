//! SQLite implementation of [`Store`]: WAL mode, one writer, many readers.

use crate::console::{
    AuditEntry, ClusterQuery, IncidentQuery, Overview, SearchPage, Triage, TriageChange, TriageKind,
};
use crate::packed::Codec;
use crate::rollup::{prio_key, prio_key_of_level, search_text, Rollup, NO_VERDICT};
use crate::types::*;
use crate::{Store, StoreError};
use fa_model::{Priority, VerdictKind};
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OpenFlags, OptionalExtension, Row};
use std::path::Path;
use std::time::Duration;

mod console;

/// Versioned migrations, applied in order at open. Never edit a released one: add the next.
pub const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_init.sql")),
    (2, include_str!("../migrations/0002_cluster_updated_at.sql")),
    (3, include_str!("../migrations/0003_packed_text.sql")),
    (4, include_str!("../migrations/0004_text_keys.sql")),
    (5, include_str!("../migrations/0005_uuid_key.sql")),
    (6, include_str!("../migrations/0006_triage.sql")),
    (7, include_str!("../migrations/0007_console_rollups.sql")),
];

type Backfill = fn(&rusqlite::Transaction<'_>) -> Result<(), rusqlite::Error>;

/// Where a migration's SQL hands over to code that fills a new column before going on.
const BACKFILLS: &[(&str, Backfill)] = &[
    ("-- @backfill-text-keys", backfill_text_keys),
    ("-- @backfill-uuid-keys", backfill_uuid_keys),
];

/// The integer an indexed text column is looked up by (FNV-1a, 64 bits). Stored in the
/// database: it must never change.
pub fn text_key(text: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h as i64
}

/// Whether a uuid (?1, its key ?2) is stored: the key finds it, the text confirms it.
const UUID_STORED: &str = "SELECT 1 FROM alerts WHERE uuid_key = ?2 AND uuid = ?1";

/// Run [`UUID_STORED`] (prepared as `q`) for `uuid`.
fn uuid_stored(q: &mut rusqlite::Statement<'_>, uuid: &str) -> rusqlite::Result<bool> {
    q.exists(params![uuid, text_key(uuid)])
}

fn opt_key(text: Option<&str>) -> Option<i64> {
    text.map(text_key)
}

/// Keys for the rows stored before schema 4.
fn backfill_text_keys(tx: &rusqlite::Transaction<'_>) -> Result<(), rusqlite::Error> {
    let mut read =
        tx.prepare("SELECT id, rule, hostname, namespace, fingerprint, incident_id FROM alerts")?;
    let mut write = tx.prepare(
        "UPDATE alerts SET rule_key = ?2, hostname_key = ?3, namespace_key = ?4,
                           fingerprint_key = ?5, incident_key = ?6
         WHERE id = ?1",
    )?;
    let mut rows = read.query([])?;
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        let rule: String = r.get(1)?;
        let host: Option<String> = r.get(2)?;
        let ns: Option<String> = r.get(3)?;
        let fp: Option<String> = r.get(4)?;
        let inc: Option<String> = r.get(5)?;
        write.execute(params![
            id,
            text_key(&rule),
            opt_key(host.as_deref()),
            opt_key(ns.as_deref()),
            opt_key(fp.as_deref()),
            opt_key(inc.as_deref()),
        ])?;
    }
    Ok(())
}

/// Uuid keys for the rows stored before schema 5.
fn backfill_uuid_keys(tx: &rusqlite::Transaction<'_>) -> Result<(), rusqlite::Error> {
    let mut read = tx.prepare("SELECT id, uuid FROM alerts")?;
    let mut write = tx.prepare("UPDATE alerts SET uuid_key = ?2 WHERE id = ?1")?;
    let mut rows = read.query([])?;
    while let Some(r) = rows.next()? {
        let id: i64 = r.get(0)?;
        let uuid: String = r.get(1)?;
        write.execute(params![id, text_key(&uuid)])?;
    }
    Ok(())
}

/// Index an alert's searchable text under its id.
const ALERT_TEXT_INSERT: &str = "INSERT INTO alert_text (rowid, text) VALUES (?1, ?2)";

/// Every alert up to this id is in the search index (`search_state`, schema 7).
pub(crate) fn indexed_upto(conn: &Connection) -> Result<i64, rusqlite::Error> {
    conn.query_row(
        "SELECT indexed_upto FROM search_state WHERE id = 1",
        [],
        |r| r.get(0),
    )
    .optional()
    .map(Option::unwrap_or_default)
}

/// How hard a commit waits for the disk (SQLite's `synchronous` pragma in WAL mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Synchronous {
    /// A commit is durable against a crash of the process (`kill -9`) but the last
    /// transactions may roll back on power loss or an OS crash. The WAL is fsynced at
    /// checkpoints. Much faster.
    #[default]
    Normal,
    /// Every commit fsyncs the WAL: durable against power loss too.
    Full,
}

#[derive(Debug, Clone)]
pub struct SqliteOptions {
    pub synchronous: Synchronous,
    /// Page cache per connection, in KiB.
    pub cache_kib: u32,
    /// How long a connection waits for a lock before failing.
    pub busy_timeout: Duration,
    /// WAL pages after which the writing connection checkpoints by itself. The service runs
    /// passive checkpoints on another connection ([`SqliteStore::open_checkpointer`]), so this
    /// is only the backstop that bounds the WAL when those fall behind.
    pub wal_autocheckpoint_pages: u32,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            synchronous: Synchronous::Normal,
            cache_kib: 8 * 1024,
            busy_timeout: Duration::from_secs(5),
            wal_autocheckpoint_pages: 1000,
        }
    }
}

pub struct SqliteStore {
    conn: Connection,
    codec: Codec,
    /// `search_state.indexed_upto` as this writer last knew it: an alert stored at or below it
    /// (out of id order) is indexed in its own transaction, since the background indexing
    /// goes on above it.
    indexed_upto: i64,
}

/// WAL mode and the options every writing connection shares.
fn apply_pragmas(conn: &Connection, opts: &SqliteOptions) -> Result<(), StoreError> {
    conn.busy_timeout(opts.busy_timeout)?;
    // journal_mode returns a row, so it is queried rather than executed.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Corrupt(format!(
            "cannot switch the database to WAL mode (it stays in `{mode}` mode)"
        )));
    }
    let sync = match opts.synchronous {
        Synchronous::Normal => "NORMAL",
        Synchronous::Full => "FULL",
    };
    conn.execute_batch(&format!(
        "PRAGMA synchronous = {sync};
         PRAGMA cache_size = -{};
         PRAGMA temp_store = MEMORY;
         PRAGMA foreign_keys = OFF;
         PRAGMA wal_autocheckpoint = {};",
        opts.cache_kib, opts.wal_autocheckpoint_pages
    ))?;
    Ok(())
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Open (creating it if needed) the database for writing and apply pending migrations.
    pub fn open(path: &Path, opts: &SqliteOptions) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        apply_pragmas(&conn, opts)?;
        let mut s = SqliteStore {
            conn,
            codec: Codec::default(),
            indexed_upto: 0,
        };
        s.migrate()?;
        s.codec = Codec::for_writer(&s.conn)?;
        s.indexed_upto = indexed_upto(&s.conn)?;
        Ok(s)
    }

    /// Open an existing database for reading only (API queries). Call after [`open`] has
    /// created and migrated it.
    ///
    /// [`open`]: SqliteStore::open
    pub fn open_reader(path: &Path, opts: &SqliteOptions) -> Result<Self, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(opts.busy_timeout)?;
        conn.execute_batch(&format!(
            "PRAGMA query_only = ON; PRAGMA cache_size = -{};",
            (opts.cache_kib / 4).max(1024)
        ))?;
        let s = SqliteStore {
            conn,
            codec: Codec::default(),
            indexed_upto: 0,
        };
        let v = s.schema_version()?;
        let known = MIGRATIONS.last().map_or(0, |m| m.0);
        if v > known {
            return Err(StoreError::SchemaTooNew { found: v, known });
        }
        Ok(s)
    }

    /// The schema version applied (0 for a new database).
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        let exists: bool = self.conn.query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'",
            [],
            |r| r.get::<_, i64>(0).map(|n| n > 0),
        )?;
        if !exists {
            return Ok(0);
        }
        Ok(self.conn.query_row(
            "SELECT coalesce(max(version), 0) FROM schema_version",
            [],
            |r| r.get(0),
        )?)
    }

    fn migrate(&mut self) -> Result<(), StoreError> {
        self.conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_version (
                 version INTEGER PRIMARY KEY,
                 applied_at INTEGER NOT NULL
             )",
        )?;
        let current = self.schema_version()?;
        let known = MIGRATIONS.last().map_or(0, |m| m.0);
        if current > known {
            return Err(StoreError::SchemaTooNew {
                found: current,
                known,
            });
        }
        for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
            let tx = self.conn.transaction()?;
            let failed = |source| StoreError::Migration {
                version: *version,
                source,
            };
            let marked = BACKFILLS
                .iter()
                .find_map(|(mark, fill)| Some((sql.split_once(mark)?, fill)));
            match marked {
                Some(((before, after), fill)) => {
                    tx.execute_batch(before).map_err(failed)?;
                    fill(&tx).map_err(failed)?;
                    tx.execute_batch(after).map_err(failed)?;
                }
                None => tx.execute_batch(sql).map_err(failed)?,
            }
            tx.execute(
                "INSERT INTO schema_version (version, applied_at) VALUES (?1, ?2)",
                params![version, to_nanos(chrono::Utc::now())],
            )?;
            tx.commit()?;
        }
        Ok(())
    }

    /// Every alert up to this id is in the search index (the rest is indexed in the
    /// background, see [`Store::index_pending`]).
    pub fn search_indexed_upto(&self) -> Result<i64, StoreError> {
        Ok(indexed_upto(&self.conn)?)
    }

    /// A connection for background checkpoints only: copying the WAL into the database (and
    /// its fsyncs) then happens beside the writer instead of inside its commits.
    pub fn open_checkpointer(path: &Path, opts: &SqliteOptions) -> Result<Self, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(opts.busy_timeout)?;
        conn.execute_batch("PRAGMA wal_autocheckpoint = 0; PRAGMA cache_size = -1024;")?;
        Ok(SqliteStore {
            conn,
            codec: Codec::default(),
            indexed_upto: 0,
        })
    }

    /// Copy what the WAL holds into the database without waiting for readers or the writer
    /// (SQLite's PASSIVE mode). Returns (frames in the WAL, frames now checkpointed).
    pub fn checkpoint_passive(&self) -> Result<(i64, i64), StoreError> {
        Ok(self
            .conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
            })?)
    }

    /// Move the WAL's content into the database file and truncate it (at shutdown).
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
        Ok(())
    }
}

/// Delete at most `chunk` rows of `table` whose `time_col` is before `cut`, oldest keys first.
/// The names are this module's constants, never input.
fn delete_older(
    tx: &rusqlite::Transaction<'_>,
    table: &str,
    key: &str,
    time_col: &str,
    cut: i64,
    chunk: usize,
) -> Result<usize, StoreError> {
    Ok(tx.execute(
        &format!(
            "DELETE FROM {table} WHERE {key} IN
               (SELECT {key} FROM {table} WHERE {time_col} < ?1 ORDER BY {key} LIMIT ?2)"
        ),
        params![cut, chunk as i64],
    )?)
}

/// Apply a batch's rollup changes; a count that falls to zero (retention) is deleted.
fn write_rollup(tx: &rusqlite::Transaction<'_>, r: &Rollup) -> Result<(), rusqlite::Error> {
    let mut shrank = false;
    {
        let mut up = tx.prepare_cached(
            "INSERT INTO alert_minutes (minute, priority, verdict, count) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (minute, priority, verdict) DO UPDATE SET count = count + excluded.count",
        )?;
        for ((m, p, v), n) in r.minute_changes() {
            up.execute(params![m, p, v, n])?;
            shrank |= n < 0;
        }
        let mut up = tx.prepare_cached(
            "INSERT INTO alert_rule_minutes (minute, rule, count) VALUES (?1, ?2, ?3)
             ON CONFLICT (minute, rule) DO UPDATE SET count = count + excluded.count",
        )?;
        for ((m, rule), n) in r.rule_changes() {
            up.execute(params![m, rule, n])?;
            shrank |= n < 0;
        }
        let mut ins = tx.prepare_cached(
            "INSERT OR IGNORE INTO incident_namespaces (namespace, incident_id) VALUES (?1, ?2)",
        )?;
        for (ns, inc) in &r.incident_namespaces {
            ins.execute(params![ns, inc])?;
        }
    }
    if shrank {
        let mut del = tx.prepare_cached(
            "DELETE FROM alert_minutes WHERE minute = ?1 AND priority = ?2 AND verdict = ?3
             AND count <= 0",
        )?;
        for ((m, p, v), n) in r.minute_changes() {
            if n < 0 {
                del.execute(params![m, p, v])?;
            }
        }
        let mut del = tx.prepare_cached(
            "DELETE FROM alert_rule_minutes WHERE minute = ?1 AND rule = ?2 AND count <= 0",
        )?;
        for ((m, rule), n) in r.rule_changes() {
            if n < 0 {
                del.execute(params![m, rule])?;
            }
        }
    }
    Ok(())
}

/// The alerts of one cluster within a batch.
pub(crate) struct ClusterGroup<'a> {
    /// The first one: its uuid, rule and place stand for a new cluster.
    pub(crate) first: &'a ClusterUpdate,
    pub(crate) count: i64,
    pub(crate) first_seen: Nanos,
    pub(crate) last_seen: Nanos,
    pub(crate) worst: VerdictKind,
    /// When the last of them was analysed (what cluster retention goes by).
    pub(crate) updated_at: Nanos,
}

impl<'a> ClusterGroup<'a> {
    pub(crate) fn new(c: &'a ClusterUpdate, analyzed_at: Nanos) -> Self {
        ClusterGroup {
            first: c,
            count: 1,
            first_seen: c.time,
            last_seen: c.time,
            worst: c.verdict,
            updated_at: analyzed_at,
        }
    }

    pub(crate) fn add(&mut self, c: &ClusterUpdate, analyzed_at: Nanos) {
        self.count += 1;
        self.updated_at = self.updated_at.max(analyzed_at);
        self.first_seen = self.first_seen.min(c.time);
        self.last_seen = self.last_seen.max(c.time);
        self.worst = self.worst.max(c.verdict);
    }
}

pub(crate) fn priority_from_level(l: Option<i64>) -> Option<Priority> {
    let l = l?;
    Priority::ALL
        .into_iter()
        .find(|p| i64::from(p.level()) == l)
}

fn verdict_from(s: Option<String>) -> Result<Option<VerdictKind>, rusqlite::Error> {
    match s {
        None => Ok(None),
        Some(s) => s.parse::<VerdictKind>().map(Some).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
        }),
    }
}

fn verdict_required(s: String) -> Result<VerdictKind, rusqlite::Error> {
    verdict_from(Some(s))?.ok_or(rusqlite::Error::InvalidQuery)
}

/// Every verdict kind.
const VERDICTS: [VerdictKind; 3] = [
    VerdictKind::Benign,
    VerdictKind::Suspicious,
    VerdictKind::Malicious,
];

/// Fails to compile when a verdict kind is added and [`VERDICTS`] not told.
#[allow(dead_code)]
fn verdicts_are_all(v: VerdictKind) {
    match v {
        VerdictKind::Benign | VerdictKind::Suspicious | VerdictKind::Malicious => {}
    }
}

const ALERT_COLUMNS: &str =
    "id, uuid, received_at, ts, rule, priority, source, hostname, namespace, \
                             analyzed, verdict, score, fingerprint, incident_id";

fn alert_row(r: &Row<'_>) -> Result<AlertRow, rusqlite::Error> {
    Ok(AlertRow {
        id: r.get(0)?,
        uuid: r.get(1)?,
        received_at: from_nanos(r.get(2)?),
        time: from_nanos(r.get(3)?),
        rule: r.get(4)?,
        priority: priority_from_level(r.get(5)?),
        source: r.get(6)?,
        hostname: r.get(7)?,
        namespace: r.get(8)?,
        analyzed: r.get::<_, i64>(9)? != 0,
        verdict: verdict_from(r.get(10)?)?,
        score: r.get::<_, Option<f64>>(11)?.map(|s| s as f32),
        fingerprint: r.get(12)?,
        incident_id: r.get(13)?,
    })
}

const CLUSTER_COLUMNS: &str = "fingerprint, rule, count, first_seen, last_seen, verdict, \
                               representative_uuid, location, activity";

fn cluster_row(r: &Row<'_>) -> Result<ClusterRow, rusqlite::Error> {
    Ok(ClusterRow {
        fingerprint: r.get(0)?,
        rule: r.get(1)?,
        count: r.get::<_, i64>(2)?.max(0) as u64,
        first_seen: from_nanos(r.get(3)?),
        last_seen: from_nanos(r.get(4)?),
        verdict: verdict_required(r.get(5)?)?,
        representative_uuid: r.get(6)?,
        location: r.get(7)?,
        activity: r.get(8)?,
    })
}

const INCIDENT_COLUMNS: &str =
    "id, entity, first_seen, last_seen, alert_count, verdict, updated_at, body";

fn incident_row(r: &Row<'_>) -> Result<IncidentRow, rusqlite::Error> {
    Ok(IncidentRow {
        id: r.get(0)?,
        entity: r.get(1)?,
        first_seen: r.get(2)?,
        last_seen: r.get(3)?,
        alert_count: r.get::<_, i64>(4)?.max(0) as u64,
        verdict: verdict_required(r.get(5)?)?,
        updated_at: r.get(6)?,
        body: r.get(7)?,
    })
}

/// Cursors for keyset pages are row ids; for offset pages, offsets. Both are plain integers
/// the client passes back unchanged; anything else starts from the beginning.
pub(crate) fn cursor_int(c: &Option<String>) -> Option<i64> {
    c.as_deref()
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|n| *n >= 0)
}

/// A page from `limit + 1` rows fetched in key order: the cursor is the last key shown.
pub(crate) fn keyset_page<T>(mut items: Vec<T>, limit: usize, key: impl Fn(&T) -> i64) -> Page<T> {
    let next_cursor = (items.len() > limit).then(|| {
        items.truncate(limit);
        items.last().map(|i| key(i).to_string())
    });
    Page {
        items,
        next_cursor: next_cursor.flatten(),
    }
}

/// A page from `limit + 1` rows fetched at `offset`: the cursor is the next offset.
pub(crate) fn offset_page<T>(mut items: Vec<T>, limit: usize, offset: i64) -> Page<T> {
    let next_cursor = (items.len() > limit).then(|| (offset + limit as i64).to_string());
    items.truncate(limit);
    Page { items, next_cursor }
}

/// A text column's stored bytes (TEXT or BLOB), to unpack once the statement is done.
fn raw(r: &Row<'_>, i: usize) -> rusqlite::Result<Option<Vec<u8>>> {
    Ok(match r.get_ref(i)? {
        rusqlite::types::ValueRef::Text(b) | rusqlite::types::ValueRef::Blob(b) => Some(b.to_vec()),
        _ => None,
    })
}

pub(crate) fn limit_of(p: &PageRequest) -> usize {
    p.limit.clamp(1, 1000)
}

impl Store for SqliteStore {
    fn write(&mut self, b: &WriteBatch) -> Result<Vec<Inserted>, StoreError> {
        let mut out = Vec::with_capacity(b.alerts.len());
        let mut roll = Rollup::default();
        let tx = self.conn.transaction()?;
        {
            let mut text_ins = tx.prepare_cached(ALERT_TEXT_INSERT)?;
            if !b.alerts.is_empty() {
                let mut ins = tx.prepare_cached(
                    "INSERT INTO alerts (uuid, received_at, ts, rule, priority, source, hostname, namespace, body,
                                         rule_key, hostname_key, namespace_key, uuid_key)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
                )?;
                let mut stored = tx.prepare_cached(UUID_STORED)?;
                for a in &b.alerts {
                    if uuid_stored(&mut stored, &a.uuid)? {
                        out.push(Inserted::Duplicate);
                        continue;
                    }
                    // No conflict left to ignore: the id is new and the uuid was checked above
                    // (in this transaction, so a repeat within the batch is caught too).
                    let ts = a.time.unwrap_or(a.received_at);
                    ins.execute(params![
                        a.uuid,
                        a.received_at,
                        a.time.unwrap_or(a.received_at),
                        a.rule,
                        a.priority.map(|p| i64::from(p.level())),
                        a.source,
                        a.hostname,
                        a.namespace,
                        self.codec.pack(&a.body)?,
                        text_key(&a.rule),
                        opt_key(a.hostname.as_deref()),
                        opt_key(a.namespace.as_deref()),
                        text_key(&a.uuid),
                    ])?;
                    let id = tx.last_insert_rowid();
                    roll.add(ts, prio_key(a.priority), NO_VERDICT, 1);
                    roll.add_rule(ts, &a.rule, 1);
                    if id <= self.indexed_upto {
                        text_ins.execute(params![id, search_text(&a.body)])?;
                    }
                    out.push(Inserted::New(id));
                }
            }
            if !b.dead_letters.is_empty() {
                let mut ins = tx.prepare_cached(
                    "INSERT INTO dead_letters (received_at, origin, reason_kind, reason, raw)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                )?;
                for d in &b.dead_letters {
                    ins.execute(params![
                        d.received_at,
                        d.origin,
                        d.reason_kind,
                        d.reason,
                        d.raw
                    ])?;
                }
            }
            if !b.analyses.is_empty() {
                // RETURNING what the rollups need: the row's count moves from "not analysed"
                // to its verdict.
                let mut upd = tx.prepare_cached(
                    "UPDATE alerts SET analyzed = 1, verdict = ?2, score = ?3, fingerprint = ?4,
                            incident_id = ?5, verdict_json = ?6, fingerprint_key = ?7,
                            incident_key = ?8
                     WHERE id = ?1 AND analyzed = 0
                     RETURNING ts, priority, namespace",
                )?;
                let mut rep = tx.prepare_cached(
                    "INSERT OR REPLACE INTO reports (alert_id, created_at, body) VALUES (?1, ?2, ?3)",
                )?;
                // All SET expressions see the row as it was, so the rank comparison in the
                // verdict CASE uses the old rank.
                let mut clu = tx.prepare_cached(
                    "INSERT INTO clusters (fingerprint, rule, count, first_seen, last_seen, verdict,
                                           verdict_rank, representative_uuid, location, activity,
                                           updated_at)
                     VALUES (?1, ?2, ?10, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?11)
                     ON CONFLICT (fingerprint) DO UPDATE SET
                         count = count + excluded.count,
                         updated_at = max(coalesce(updated_at, 0), excluded.updated_at),
                         first_seen = min(first_seen, excluded.first_seen),
                         last_seen = max(last_seen, excluded.last_seen),
                         verdict = CASE WHEN excluded.verdict_rank > verdict_rank
                                        THEN excluded.verdict ELSE verdict END,
                         verdict_rank = max(verdict_rank, excluded.verdict_rank)",
                )?;
                let mut ins = tx.prepare_cached(
                    "INSERT INTO alerts (id, uuid, received_at, ts, rule, priority, source, hostname,
                                         namespace, body, analyzed, verdict, score, fingerprint,
                                         incident_id, verdict_json, rule_key, hostname_key,
                                         namespace_key, fingerprint_key, incident_key, uuid_key)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, 1, ?11, ?12, ?13, ?14, ?15,
                             ?16, ?17, ?18, ?19, ?20, ?21)
                     ON CONFLICT DO NOTHING",
                )?;
                let mut stored = tx.prepare_cached(UUID_STORED)?;
                let mut clusters: std::collections::HashMap<&str, ClusterGroup<'_>> =
                    std::collections::HashMap::new();
                let mut order: Vec<&str> = Vec::new();
                for a in &b.analyses {
                    let n = match &a.row {
                        // Its uuid stored under another id: a redelivery that reached the
                        // analysers (the ingest thread normally answers it as a duplicate).
                        Some(r) if uuid_stored(&mut stored, &r.uuid)? => 0,
                        Some(r) => {
                            let n = ins.execute(params![
                                a.alert_id,
                                r.uuid,
                                r.received_at,
                                r.time.unwrap_or(r.received_at),
                                r.rule,
                                r.priority.map(|p| i64::from(p.level())),
                                r.source,
                                r.hostname,
                                r.namespace,
                                self.codec.pack(&r.body)?,
                                a.verdict.as_str(),
                                f64::from(a.score),
                                a.fingerprint,
                                a.incident_id,
                                self.codec.pack(&a.verdict_json)?,
                                text_key(&r.rule),
                                opt_key(r.hostname.as_deref()),
                                opt_key(r.namespace.as_deref()),
                                text_key(&a.fingerprint),
                                opt_key(a.incident_id.as_deref()),
                                text_key(&r.uuid),
                            ])?;
                            if n > 0 {
                                let ts = r.time.unwrap_or(r.received_at);
                                roll.add(ts, prio_key(r.priority), a.verdict.as_str(), 1);
                                roll.add_rule(ts, &r.rule, 1);
                                roll.incident_in(r.namespace.as_deref(), a.incident_id.as_deref());
                                if a.alert_id <= self.indexed_upto {
                                    text_ins.execute(params![a.alert_id, search_text(&r.body)])?;
                                }
                            }
                            n
                        }
                        None => {
                            let mut rows = upd.query(params![
                                a.alert_id,
                                a.verdict.as_str(),
                                f64::from(a.score),
                                a.fingerprint,
                                a.incident_id,
                                self.codec.pack(&a.verdict_json)?,
                                text_key(&a.fingerprint),
                                opt_key(a.incident_id.as_deref()),
                            ])?;
                            match rows.next()? {
                                Some(row) => {
                                    let ts: i64 = row.get(0)?;
                                    let prio = prio_key_of_level(row.get(1)?);
                                    let ns: Option<String> = row.get(2)?;
                                    roll.add(ts, prio, NO_VERDICT, -1);
                                    roll.add(ts, prio, a.verdict.as_str(), 1);
                                    roll.incident_in(ns.as_deref(), a.incident_id.as_deref());
                                    1
                                }
                                None => 0,
                            }
                        }
                    };
                    // Already analysed or already stored (a repeated delivery to the
                    // analysers): counting it again would inflate its cluster.
                    if n == 0 {
                        continue;
                    }
                    if let Some(r) = &a.report_json {
                        rep.execute(params![a.alert_id, a.analyzed_at, self.codec.pack(r)?])?;
                    }
                    // One upsert per cluster per batch: a storm is thousands of alerts of a
                    // handful of clusters.
                    match clusters.get_mut(a.fingerprint.as_str()) {
                        Some(g) => g.add(&a.cluster, a.analyzed_at),
                        None => {
                            order.push(a.fingerprint.as_str());
                            clusters.insert(
                                a.fingerprint.as_str(),
                                ClusterGroup::new(&a.cluster, a.analyzed_at),
                            );
                        }
                    }
                }
                for fp in order {
                    let Some(g) = clusters.get(fp) else { continue };
                    let c = g.first;
                    clu.execute(params![
                        fp,
                        c.rule,
                        g.first_seen,
                        g.last_seen,
                        g.worst.as_str(),
                        verdict_rank(g.worst),
                        c.uuid,
                        c.location,
                        c.activity,
                        g.count,
                        g.updated_at,
                    ])?;
                }
            }
            if !b.incidents.is_empty() {
                let mut up = tx.prepare_cached(
                    "INSERT INTO incidents (id, entity, first_seen, last_seen, alert_count, verdict, updated_at, body)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                     ON CONFLICT (id) DO UPDATE SET
                         entity = excluded.entity, first_seen = excluded.first_seen,
                         last_seen = excluded.last_seen, alert_count = excluded.alert_count,
                         verdict = excluded.verdict, updated_at = excluded.updated_at,
                         body = excluded.body",
                )?;
                for i in &b.incidents {
                    up.execute(params![
                        i.id,
                        i.entity,
                        i.first_seen,
                        i.last_seen,
                        i.alert_count as i64,
                        i.verdict.as_str(),
                        i.updated_at,
                        i.body,
                    ])?;
                }
            }
            if !b.report_updates.is_empty() {
                let mut up =
                    tx.prepare_cached("UPDATE reports SET body = ?2 WHERE alert_id = ?1")?;
                for r in &b.report_updates {
                    up.execute(params![r.alert_id, self.codec.pack(&r.body)?])?;
                }
            }
            if !b.llm_cache.is_empty() {
                let mut put = tx.prepare_cached(
                    "INSERT OR REPLACE INTO llm_cache (key, created_at, value) VALUES (?1, ?2, ?3)",
                )?;
                for e in &b.llm_cache {
                    put.execute(params![e.key, e.created_at, e.value])?;
                }
            }
            write_rollup(&tx, &roll)?;
        }
        tx.commit()?;
        // After the commit and in a transaction of its own: a dictionary is used only once it
        // is stored, so a batch that fails can never leave rows packed with a lost dictionary.
        if let Err(e) = self
            .codec
            .train_if_ready(&self.conn, to_nanos(chrono::Utc::now()))
        {
            tracing::warn!(error = %e, "storing a compression dictionary; will try again");
        }
        Ok(out)
    }

    fn apply_retention(
        &mut self,
        p: &RetentionPolicy,
        now: Nanos,
        chunk: usize,
    ) -> Result<RetentionOutcome, StoreError> {
        let chunk = chunk.max(1);
        let mut o = RetentionOutcome::default();
        let cutoff = p
            .max_age
            .and_then(|a| a.num_nanoseconds())
            .map(|a| now.saturating_sub(a));
        let tx = self.conn.transaction()?;
        {
            let mut ids: Vec<i64> = Vec::new();
            if let Some(cut) = cutoff {
                let mut q = tx.prepare_cached(
                    "SELECT id FROM alerts WHERE analyzed = 1 AND received_at < ?1 ORDER BY id LIMIT ?2",
                )?;
                let rows = q.query_map(params![cut, chunk as i64], |r| r.get::<_, i64>(0))?;
                for id in rows {
                    ids.push(id?);
                }
            }
            if let Some(max) = p.max_alerts {
                // The newest `max` alerts stay; everything analysed below the boundary goes.
                let boundary: Option<i64> = tx
                    .query_row(
                        "SELECT id FROM alerts ORDER BY id DESC LIMIT 1 OFFSET ?1",
                        params![max as i64],
                        |r| r.get(0),
                    )
                    .optional()?;
                if let (Some(b), true) = (boundary, ids.len() < chunk) {
                    let after = ids.last().copied().unwrap_or(0);
                    let mut q = tx.prepare_cached(
                        "SELECT id FROM alerts WHERE analyzed = 1 AND id <= ?1 AND id > ?2 ORDER BY id LIMIT ?3",
                    )?;
                    let rows = q.query_map(params![b, after, (chunk - ids.len()) as i64], |r| {
                        r.get::<_, i64>(0)
                    })?;
                    for id in rows {
                        ids.push(id?);
                    }
                }
            }
            {
                // RETURNING what the rollups subtract.
                let mut da = tx.prepare_cached(
                    "DELETE FROM alerts WHERE id = ?1 RETURNING ts, priority, verdict, rule",
                )?;
                let mut dr = tx.prepare_cached("DELETE FROM reports WHERE alert_id = ?1")?;
                let mut dt = tx.prepare_cached("DELETE FROM alert_text WHERE rowid = ?1")?;
                let mut roll = Rollup::default();
                for id in &ids {
                    let mut rows = da.query([id])?;
                    if let Some(r) = rows.next()? {
                        let ts: i64 = r.get(0)?;
                        let v: Option<String> = r.get(2)?;
                        roll.add(
                            ts,
                            prio_key_of_level(r.get(1)?),
                            v.as_deref().unwrap_or(NO_VERDICT),
                            -1,
                        );
                        roll.add_rule(ts, &r.get::<_, String>(3)?, -1);
                        o.alerts_deleted += 1;
                    }
                    drop(rows);
                    dr.execute([id])?;
                    if *id <= self.indexed_upto {
                        dt.execute([id])?;
                    }
                }
                write_rollup(&tx, &roll)?;
            }
            o.more |= ids.len() >= chunk;

            if let Some(cut) = cutoff {
                let n = delete_older(&tx, "dead_letters", "id", "received_at", cut, chunk)?;
                o.dead_letters_deleted += n as u64;
                o.more |= n >= chunk;
                let n = delete_older(&tx, "clusters", "fingerprint", "updated_at", cut, chunk)?;
                o.clusters_deleted += n as u64;
                o.more |= n >= chunk;
                let n = delete_older(&tx, "incidents", "id", "updated_at", cut, chunk)?;
                o.incidents_deleted += n as u64;
                o.more |= n >= chunk;
                if o.clusters_deleted + o.incidents_deleted > 0 {
                    // Their triage and audit trail go with them.
                    console::delete_orphans(&tx)?;
                }
                // Cached narratives of activity not seen for that long (and of old prompt
                // versions) would otherwise stay for ever.
                let n = delete_older(&tx, "llm_cache", "key", "created_at", cut, chunk)?;
                o.more |= n >= chunk;
            }
            if let Some(max) = p.max_dead_letters {
                let boundary: Option<i64> = tx
                    .query_row(
                        "SELECT id FROM dead_letters ORDER BY id DESC LIMIT 1 OFFSET ?1",
                        params![max as i64],
                        |r| r.get(0),
                    )
                    .optional()?;
                if let Some(b) = boundary {
                    let n = tx.execute(
                        "DELETE FROM dead_letters WHERE id IN
                           (SELECT id FROM dead_letters WHERE id <= ?1 ORDER BY id LIMIT ?2)",
                        params![b, chunk as i64],
                    )?;
                    o.dead_letters_deleted += n as u64;
                    o.more |= n >= chunk;
                }
            }
        }
        tx.commit()?;
        Ok(o)
    }

    fn unanalyzed(
        &self,
        after: i64,
        up_to: i64,
        limit: usize,
    ) -> Result<Vec<UnanalyzedAlert>, StoreError> {
        let mut q = self.conn.prepare_cached(
            "SELECT id, uuid, body FROM alerts
             WHERE analyzed = 0 AND id > ?1 AND id <= ?2 ORDER BY id LIMIT ?3",
        )?;
        let rows = q
            .query_map(params![after, up_to, limit as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, raw(r, 2)?.unwrap_or_default()))
            })?
            .collect::<Result<Vec<(i64, String, Vec<u8>)>, _>>()?;
        rows.into_iter()
            .map(|(id, uuid, body)| {
                Ok(UnanalyzedAlert {
                    id,
                    uuid,
                    body: self.codec.unpack(&self.conn, &body)?,
                })
            })
            .collect()
    }

    fn alert_exists(&self, uuid: &str) -> Result<bool, StoreError> {
        let mut q = self.conn.prepare_cached(UUID_STORED)?;
        Ok(uuid_stored(&mut q, uuid)?)
    }

    fn for_each_uuid(&self, f: &mut dyn FnMut(&str)) -> Result<(), StoreError> {
        // One statement, so one snapshot (a scan of the table: the uuid index holds keys).
        let mut q = self.conn.prepare("SELECT uuid FROM alerts")?;
        let mut rows = q.query([])?;
        while let Some(r) = rows.next()? {
            if let rusqlite::types::ValueRef::Text(t) = r.get_ref(0)? {
                f(&String::from_utf8_lossy(t));
            }
        }
        Ok(())
    }

    fn alert_id_exists(&self, id: i64) -> Result<bool, StoreError> {
        let mut q = self
            .conn
            .prepare_cached("SELECT 1 FROM alerts WHERE id = ?1")?;
        Ok(q.exists([id])?)
    }

    fn max_alert_id(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT coalesce(max(id), 0) FROM alerts", [], |r| r.get(0))?)
    }

    fn stats(&self) -> Result<StoreStats, StoreError> {
        let count = |sql: &str| -> Result<u64, StoreError> {
            Ok(self.conn.query_row(sql, [], |r| r.get::<_, i64>(0))?.max(0) as u64)
        };
        Ok(StoreStats {
            alerts: count("SELECT count(*) FROM alerts")?,
            unanalyzed: count("SELECT count(*) FROM alerts WHERE analyzed = 0")?,
            clusters: count("SELECT count(*) FROM clusters")?,
            incidents: count("SELECT count(*) FROM incidents")?,
            dead_letters: count("SELECT count(*) FROM dead_letters")?,
        })
    }

    fn list_alerts(
        &self,
        f: &AlertFilter,
        page: &PageRequest,
    ) -> Result<Page<AlertRow>, StoreError> {
        let mut sql = format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE 1 = 1");
        let mut args: Vec<SqlValue> = Vec::new();
        let mut cond = |sql_part: &str, v: SqlValue| {
            args.push(v);
            sql.push_str(&format!(" AND {sql_part} ?{}", args.len()));
        };
        if let Some(p) = f.priority {
            cond("priority =", SqlValue::Integer(i64::from(p.level())));
        }
        if let Some(p) = f.min_priority {
            cond("priority >=", SqlValue::Integer(i64::from(p.level())));
        }
        if let Some(v) = f.verdict {
            cond("verdict =", SqlValue::Text(v.as_str().into()));
        }
        if let Some(s) = &f.source {
            cond("source =", SqlValue::Text(s.clone()));
        }
        // Indexed by key; the text check makes a key shared by two texts harmless.
        for (key_col, text_col, text) in [
            ("rule_key", "rule", &f.rule),
            ("hostname_key", "hostname", &f.hostname),
            ("namespace_key", "namespace", &f.namespace),
            ("fingerprint_key", "fingerprint", &f.fingerprint),
            ("incident_key", "incident_id", &f.incident_id),
        ] {
            if let Some(t) = text {
                cond(&format!("{key_col} ="), SqlValue::Integer(text_key(t)));
                cond(&format!("{text_col} ="), SqlValue::Text(t.clone()));
            }
        }
        if let Some(a) = f.analyzed {
            cond("analyzed =", SqlValue::Integer(i64::from(a)));
        }
        if let Some(t) = f.since {
            cond("ts >=", SqlValue::Integer(t));
        }
        if let Some(t) = f.until {
            cond("ts <", SqlValue::Integer(t));
        }
        if let Some(c) = cursor_int(&page.cursor) {
            cond("id <", SqlValue::Integer(c));
        }
        let limit = limit_of(page);
        let order = format!(" ORDER BY id DESC LIMIT {}", limit + 1);
        let keyed = f.rule.is_some() || f.hostname.is_some() || f.namespace.is_some();
        let sql = if keyed && f.verdict.is_none() {
            // The key indexes are (key, verdict) (schema 7): newest first within each verdict,
            // merged, instead of sorting every alert of the key.
            let parts: Vec<String> = std::iter::once("IS NULL".to_string())
                .chain(VERDICTS.iter().map(|v| format!("= '{}'", v.as_str())))
                .map(|v| format!("SELECT * FROM ({sql} AND verdict {v}{order})"))
                .collect();
            format!("SELECT * FROM ({}){order}", parts.join(" UNION ALL "))
        } else {
            sql + &order
        };
        let mut q = self.conn.prepare(&sql)?;
        let items = q
            .query_map(params_from_iter(args), alert_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(keyset_page(items, limit, |a| a.id))
    }

    fn get_alert(&self, uuid: &str) -> Result<Option<AlertRecord>, StoreError> {
        let mut q = self.conn.prepare_cached(&format!(
            "SELECT {ALERT_COLUMNS}, body, verdict_json,
                    (SELECT body FROM reports WHERE alert_id = alerts.id)
             FROM alerts WHERE uuid_key = ?2 AND uuid = ?1"
        ))?;
        let Some((row, body, verdict, report)) = q
            .query_row(params![uuid, text_key(uuid)], |r| {
                Ok((
                    alert_row(r)?,
                    raw(r, 14)?.unwrap_or_default(),
                    raw(r, 15)?,
                    raw(r, 16)?,
                ))
            })
            .optional()?
        else {
            return Ok(None);
        };
        let text = |b: Option<Vec<u8>>| b.map(|b| self.codec.unpack(&self.conn, &b)).transpose();
        Ok(Some(AlertRecord {
            row,
            body: self.codec.unpack(&self.conn, &body)?,
            verdict_json: text(verdict)?,
            report_json: text(report)?,
        }))
    }

    fn list_clusters(
        &self,
        f: &ClusterFilter,
        page: &PageRequest,
    ) -> Result<Page<ClusterRow>, StoreError> {
        let mut sql = format!("SELECT {CLUSTER_COLUMNS} FROM clusters WHERE 1 = 1");
        let mut args: Vec<SqlValue> = Vec::new();
        if let Some(r) = &f.rule {
            args.push(SqlValue::Text(r.clone()));
            sql.push_str(&format!(" AND rule = ?{}", args.len()));
        }
        if let Some(v) = f.verdict {
            args.push(SqlValue::Text(v.as_str().into()));
            sql.push_str(&format!(" AND verdict = ?{}", args.len()));
        }
        let limit = limit_of(page);
        let offset = cursor_int(&page.cursor).unwrap_or(0);
        sql.push_str(&format!(
            " ORDER BY last_seen DESC, fingerprint LIMIT {} OFFSET {offset}",
            limit + 1
        ));
        let mut q = self.conn.prepare(&sql)?;
        let items = q
            .query_map(params_from_iter(args), cluster_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(offset_page(items, limit, offset))
    }

    fn get_cluster(&self, fingerprint: &str) -> Result<Option<ClusterRow>, StoreError> {
        let mut q = self.conn.prepare_cached(&format!(
            "SELECT {CLUSTER_COLUMNS} FROM clusters WHERE fingerprint = ?1"
        ))?;
        Ok(q.query_row([fingerprint], cluster_row).optional()?)
    }

    fn activity_history(&self, fingerprint: &str) -> Result<Option<ActivityHistory>, StoreError> {
        let Some(c) = self.get_cluster(fingerprint)? else {
            return Ok(None);
        };
        let mut q = self.conn.prepare_cached(
            "SELECT DISTINCT hostname FROM (SELECT hostname FROM alerts
               WHERE fingerprint_key = ?1 AND fingerprint = ?2 ORDER BY id DESC LIMIT ?3)
             WHERE hostname IS NOT NULL AND hostname != '' LIMIT ?4",
        )?;
        let hosts = q
            .query_map(
                params![
                    text_key(fingerprint),
                    fingerprint,
                    HISTORY_SCAN as i64,
                    HISTORY_HOSTS as i64
                ],
                |r| r.get::<_, String>(0),
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Some(ActivityHistory {
            count: c.count,
            first_seen: c.first_seen,
            last_seen: c.last_seen,
            verdict: c.verdict,
            hosts,
        }))
    }

    fn first_alert_time(&self) -> Result<Option<chrono::DateTime<chrono::Utc>>, StoreError> {
        let mut q = self.conn.prepare_cached("SELECT MIN(ts) FROM alerts")?;
        let t: Option<i64> = q.query_row([], |r| r.get(0))?;
        Ok(t.map(from_nanos))
    }

    fn list_incidents(&self, page: &PageRequest) -> Result<Page<IncidentRow>, StoreError> {
        let limit = limit_of(page);
        let offset = cursor_int(&page.cursor).unwrap_or(0);
        let mut q = self.conn.prepare_cached(&format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents ORDER BY updated_at DESC, id LIMIT ?1 OFFSET ?2"
        ))?;
        let items = q
            .query_map(params![(limit + 1) as i64, offset], incident_row)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(offset_page(items, limit, offset))
    }

    fn get_incident(&self, id: &str) -> Result<Option<IncidentRow>, StoreError> {
        let mut q = self.conn.prepare_cached(&format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = ?1"
        ))?;
        Ok(q.query_row([id], incident_row).optional()?)
    }

    fn recent_incidents(&self, since: Nanos, limit: usize) -> Result<Vec<IncidentRow>, StoreError> {
        let mut q = self.conn.prepare_cached(&format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE updated_at >= ?1
             ORDER BY updated_at DESC, id LIMIT ?2"
        ))?;
        let rows = q
            .query_map(
                params![since, i64::try_from(limit).unwrap_or(i64::MAX)],
                incident_row,
            )?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    fn list_dead_letters(&self, page: &PageRequest) -> Result<Page<DeadLetterRow>, StoreError> {
        let limit = limit_of(page);
        let before = cursor_int(&page.cursor).unwrap_or(i64::MAX);
        let mut q = self.conn.prepare_cached(
            "SELECT id, received_at, origin, reason_kind, reason, raw FROM dead_letters
             WHERE id < ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let items = q
            .query_map(params![before, (limit + 1) as i64], |r| {
                Ok(DeadLetterRow {
                    id: r.get(0)?,
                    received_at: from_nanos(r.get(1)?),
                    origin: r.get(2)?,
                    reason_kind: r.get(3)?,
                    reason: r.get(4)?,
                    raw: r.get(5)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(keyset_page(items, limit, |d| d.id))
    }

    fn llm_cache_get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let mut q = self
            .conn
            .prepare_cached("SELECT value FROM llm_cache WHERE key = ?1")?;
        Ok(q.query_row([key], |r| r.get(0)).optional()?)
    }

    fn llm_cache_put(&mut self, key: &str, value: &str, now: Nanos) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO llm_cache (key, created_at, value) VALUES (?1, ?2, ?3)",
            params![key, now, value],
        )?;
        Ok(())
    }

    fn index_pending(&mut self, max: usize) -> Result<usize, StoreError> {
        let tx = self.conn.transaction()?;
        let upto = indexed_upto(&tx)?;
        let mut last = upto;
        let mut n = 0;
        {
            let mut read = tx
                .prepare_cached("SELECT id, body FROM alerts WHERE id > ?1 ORDER BY id LIMIT ?2")?;
            let mut ins = tx.prepare_cached(ALERT_TEXT_INSERT)?;
            let rows = read
                .query_map(params![upto, max as i64], |r| {
                    Ok((r.get::<_, i64>(0)?, raw(r, 1)?.unwrap_or_default()))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            for (id, body) in rows {
                let body = self.codec.unpack(&tx, &body)?;
                ins.execute(params![id, search_text(&body)])?;
                last = id;
                n += 1;
            }
        }
        if n > 0 {
            tx.execute(
                "UPDATE search_state SET indexed_upto = ?1 WHERE id = 1",
                [last],
            )?;
        }
        tx.commit()?;
        self.indexed_upto = last;
        Ok(n)
    }

    fn triage_get(&self, kind: TriageKind, item: &str) -> Result<Option<Triage>, StoreError> {
        console::triage_get(&self.conn, kind, item)
    }

    fn triage_update(
        &mut self,
        kind: TriageKind,
        item: &str,
        change: &TriageChange,
        actor: &str,
        now: Nanos,
    ) -> Result<Option<Triage>, StoreError> {
        console::triage_update(&mut self.conn, kind, item, change, actor, now)
    }

    fn triage_audit(
        &self,
        kind: TriageKind,
        item: &str,
        page: &PageRequest,
    ) -> Result<Page<AuditEntry>, StoreError> {
        console::triage_audit(&self.conn, kind, item, page)
    }

    fn triage_map(
        &self,
        kind: TriageKind,
        items: &[String],
    ) -> Result<std::collections::HashMap<String, Triage>, StoreError> {
        console::triage_map(&self.conn, kind, items)
    }

    fn muted_clusters(&self) -> Result<Vec<String>, StoreError> {
        console::muted_clusters(&self.conn)
    }

    fn console_overview(
        &self,
        since: Nanos,
        until: Nanos,
        bucket: i64,
        top: usize,
    ) -> Result<Overview, StoreError> {
        console::overview(&self.conn, since, until, bucket, top)
    }

    fn console_incidents(
        &self,
        query: &IncidentQuery,
        page: &PageRequest,
    ) -> Result<Page<IncidentRow>, StoreError> {
        console::incidents(&self.conn, query, page)
    }

    fn console_clusters(
        &self,
        query: &ClusterQuery,
        page: &PageRequest,
    ) -> Result<Page<ClusterRow>, StoreError> {
        console::clusters(&self.conn, query, page)
    }

    fn search_alerts(
        &self,
        filter: &AlertFilter,
        text: &str,
        page: &PageRequest,
        max_scan: usize,
    ) -> Result<SearchPage<AlertRow>, StoreError> {
        console::search_alerts(&self.conn, &self.codec, filter, text, page, max_scan)
    }
}

#[cfg(test)]
mod key_tests {
    use super::text_key;

    /// FNV-1a's published 64-bit values: the keys are in stored databases, so the function
    /// must stay exactly this one.
    #[test]
    fn text_keys_are_fnv_1a_64() {
        assert_eq!(text_key("") as u64, 0xcbf2_9ce4_8422_2325);
        assert_eq!(text_key("a") as u64, 0xaf63_dc4c_8601_ec8c);
        assert_eq!(text_key("foobar") as u64, 0x8594_4171_f739_67e8);
    }
}
