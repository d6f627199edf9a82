//! The console's queries and triage writes on SQLite (schema 6: `triage`, `triage_audit`).

use super::{
    alert_row, cluster_row, incident_row, limit_of, priority_from_level, raw, text_key,
    verdict_from, verdict_required, ALERT_COLUMNS, CLUSTER_COLUMNS, INCIDENT_COLUMNS,
};
use crate::console::*;
use crate::packed::Codec;
use crate::rollup::{minute_of, search_text, NO_VERDICT};
use crate::types::*;
use crate::StoreError;
use fa_model::VerdictKind;
use rusqlite::types::Value as SqlValue;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension};
use std::collections::HashMap;

/// The condition "the item's status is `status`" (an item without a triage row is new),
/// written so SQLite reads the small triage table once instead of once per item.
fn status_cond(kind: TriageKind, key_col: &str, status: TriageStatus) -> String {
    let k = kind.as_str();
    match status {
        TriageStatus::New => format!(
            "{key_col} NOT IN (SELECT item FROM triage WHERE kind = '{k}' AND status != 'new')"
        ),
        s => format!(
            "{key_col} IN (SELECT item FROM triage WHERE kind = '{k}' AND status = '{}')",
            s.as_str()
        ),
    }
}

fn status_from(s: &str) -> Result<TriageStatus, rusqlite::Error> {
    s.parse::<TriageStatus>().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.into())
    })
}

fn triage_row(r: &rusqlite::Row<'_>) -> Result<Triage, rusqlite::Error> {
    Ok(Triage {
        status: status_from(&r.get::<_, String>(0)?)?,
        assignee: r.get(1)?,
        updated_at: Some(from_nanos(r.get(2)?)),
        updated_by: Some(r.get(3)?),
    })
}

pub(super) fn triage_get(
    conn: &Connection,
    kind: TriageKind,
    item: &str,
) -> Result<Option<Triage>, StoreError> {
    let mut q = conn.prepare_cached(
        "SELECT status, assignee, updated_at, updated_by FROM triage WHERE kind = ?1 AND item = ?2",
    )?;
    Ok(q.query_row(params![kind.as_str(), item], triage_row)
        .optional()?)
}

fn item_exists(conn: &Connection, kind: TriageKind, item: &str) -> Result<bool, StoreError> {
    let sql = match kind {
        TriageKind::Incident => "SELECT 1 FROM incidents WHERE id = ?1",
        TriageKind::Cluster => "SELECT 1 FROM clusters WHERE fingerprint = ?1",
    };
    Ok(conn.prepare_cached(sql)?.exists([item])?)
}

/// Apply a change in one transaction, one audit entry per field that changed (and the note).
/// `None` when the item does not exist.
pub(super) fn triage_update(
    conn: &mut Connection,
    kind: TriageKind,
    item: &str,
    change: &TriageChange,
    actor: &str,
    now: Nanos,
) -> Result<Option<Triage>, StoreError> {
    // IMMEDIATE: take the write lock first, so the analysis writer waits for this short
    // transaction instead of finding its snapshot outdated.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    if !item_exists(&tx, kind, item)? {
        return Ok(None);
    }
    let before = triage_get(&tx, kind, item)?.unwrap_or_default();
    let mut after = before.clone();
    let mut audit: Vec<(&str, Option<String>, Option<String>)> = Vec::new();
    if let Some(s) = change.status {
        if s != before.status {
            audit.push((
                "status",
                Some(before.status.as_str().into()),
                Some(s.as_str().into()),
            ));
            after.status = s;
        }
    }
    if let Some(a) = &change.assignee {
        let a = a
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        if a != before.assignee {
            audit.push(("assignee", before.assignee.clone(), a.clone()));
            after.assignee = a;
        }
    }
    if let Some(n) = change
        .note
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        audit.push(("note", None, Some(n.to_string())));
    }
    if audit.is_empty() {
        return Ok(Some(before));
    }
    after.updated_at = Some(from_nanos(now));
    after.updated_by = Some(actor.to_string());
    tx.execute(
        "INSERT INTO triage (kind, item, status, assignee, updated_at, updated_by)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (kind, item) DO UPDATE SET status = excluded.status,
             assignee = excluded.assignee, updated_at = excluded.updated_at,
             updated_by = excluded.updated_by",
        params![
            kind.as_str(),
            item,
            after.status.as_str(),
            after.assignee,
            now,
            actor
        ],
    )?;
    {
        let mut ins = tx.prepare_cached(
            "INSERT INTO triage_audit (kind, item, at, actor, field, old_value, new_value)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for (field, old, new) in &audit {
            ins.execute(params![kind.as_str(), item, now, actor, field, old, new])?;
        }
    }
    tx.commit()?;
    Ok(Some(after))
}

pub(super) fn triage_audit(
    conn: &Connection,
    kind: TriageKind,
    item: &str,
    page: &PageRequest,
) -> Result<Page<AuditEntry>, StoreError> {
    let limit = limit_of(page);
    let before = page
        .cursor
        .as_deref()
        .and_then(|c| c.parse::<i64>().ok())
        .unwrap_or(i64::MAX);
    let mut q = conn.prepare_cached(
        "SELECT id, at, actor, field, old_value, new_value FROM triage_audit
         WHERE kind = ?1 AND item = ?2 AND id < ?3 ORDER BY id DESC LIMIT ?4",
    )?;
    let mut items = q
        .query_map(
            params![kind.as_str(), item, before, (limit + 1) as i64],
            |r| {
                Ok(AuditEntry {
                    id: r.get(0)?,
                    at: from_nanos(r.get(1)?),
                    actor: r.get(2)?,
                    field: r.get(3)?,
                    old_value: r.get(4)?,
                    new_value: r.get(5)?,
                })
            },
        )?
        .collect::<Result<Vec<_>, _>>()?;
    let next_cursor = (items.len() > limit).then(|| {
        items.truncate(limit);
        items.last().map(|a| a.id.to_string())
    });
    Ok(Page {
        items,
        next_cursor: next_cursor.flatten(),
    })
}

pub(super) fn triage_map(
    conn: &Connection,
    kind: TriageKind,
    items: &[String],
) -> Result<HashMap<String, Triage>, StoreError> {
    let mut out = HashMap::new();
    let mut q = conn.prepare_cached(
        "SELECT status, assignee, updated_at, updated_by FROM triage WHERE kind = ?1 AND item = ?2",
    )?;
    for i in items {
        if let Some(t) = q
            .query_row(params![kind.as_str(), i], triage_row)
            .optional()?
        {
            out.insert(i.clone(), t);
        }
    }
    Ok(out)
}

pub(super) fn muted_clusters(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut q = conn.prepare_cached(
        "SELECT item FROM triage WHERE kind = 'cluster' AND status IN ('acknowledged', 'false_positive')",
    )?;
    let rows = q
        .query_map([], |r| r.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Triage of items retention deleted goes with them.
pub(super) fn delete_orphans(tx: &rusqlite::Transaction<'_>) -> Result<(), rusqlite::Error> {
    for (kind, table, col) in [
        ("incident", "incidents", "id"),
        ("cluster", "clusters", "fingerprint"),
    ] {
        for t in ["triage", "triage_audit"] {
            tx.execute(
                &format!(
                    "DELETE FROM {t} WHERE kind = '{kind}'
                     AND NOT EXISTS (SELECT 1 FROM {table} WHERE {table}.{col} = {t}.item)"
                ),
                [],
            )?;
        }
    }
    tx.execute(
        "DELETE FROM incident_namespaces WHERE NOT EXISTS
           (SELECT 1 FROM incidents WHERE incidents.id = incident_namespaces.incident_id)",
        [],
    )?;
    Ok(())
}

/// A WHERE clause built from fragments whose `?` are numbered as their values are added.
struct Where {
    sql: String,
    args: Vec<SqlValue>,
}

impl Where {
    fn new(select: String) -> Self {
        Where {
            sql: select + " WHERE 1 = 1",
            args: Vec::new(),
        }
    }

    fn and(&mut self, part: &str, vals: Vec<SqlValue>) {
        let mut part = part.to_string();
        let mut out = String::new();
        for v in vals {
            self.args.push(v);
            match part.split_once('?') {
                Some((a, b)) => {
                    out.push_str(a);
                    out.push_str(&format!("?{}", self.args.len()));
                    part = b.to_string();
                }
                None => break,
            }
        }
        out.push_str(&part);
        self.sql.push_str(" AND ");
        self.sql.push_str(&out);
    }
}

fn text(s: &str) -> SqlValue {
    SqlValue::Text(s.to_string())
}

/// Keyset cursor `<integer>:<text>` (the text may hold colons).
fn pair_cursor(c: &Option<String>) -> Option<(i64, String)> {
    let (n, t) = c.as_deref()?.split_once(':')?;
    Some((n.parse().ok()?, t.to_string()))
}

pub(super) fn overview(
    conn: &Connection,
    since: Nanos,
    until: Nanos,
    bucket: i64,
    top: usize,
) -> Result<Overview, StoreError> {
    let bucket = bucket.max(1);
    // From the per-minute rollups (schema 7): minutes starting in the window, so the window's
    // first minute counts whole (its part before `since` goes to the first bucket). Integer
    // division truncates towards zero, which puts that part in bucket 0.
    let first = minute_of(since);
    let mut q = conn.prepare_cached(
        "SELECT (minute - ?1) / ?3, priority, verdict, sum(count) FROM alert_minutes
         WHERE minute >= ?4 AND minute < ?2 GROUP BY 1, 2, 3 HAVING sum(count) > 0",
    )?;
    let buckets = q
        .query_map(params![since, until, bucket, first], |r| {
            let v: String = r.get(2)?;
            Ok(HistogramBucket {
                start: since + r.get::<_, i64>(0)? * bucket,
                priority: priority_from_level(Some(r.get(1)?)),
                verdict: verdict_from(Some(v).filter(|v| v != NO_VERDICT))?,
                count: r.get::<_, i64>(3)?.max(0) as u64,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut q = conn.prepare_cached(
        "SELECT rule, sum(count) FROM alert_rule_minutes WHERE minute >= ?1 AND minute < ?2
         GROUP BY rule HAVING sum(count) > 0 ORDER BY 2 DESC, 1 LIMIT ?3",
    )?;
    let top_rules = q
        .query_map(params![first, until, top as i64], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?.max(0) as u64))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    // All incidents by verdict (the verdict index) less those triaged resolved or false
    // positive.
    let mut q = conn.prepare_cached("SELECT verdict, count(*) FROM incidents GROUP BY verdict")?;
    let mut open: Vec<(VerdictKind, i64)> = q
        .query_map([], |r| {
            Ok((verdict_required(r.get(0)?)?, r.get::<_, i64>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let mut q = conn.prepare_cached(
        "SELECT i.verdict, count(*) FROM triage t JOIN incidents i ON i.id = t.item
         WHERE t.kind = 'incident' AND t.status IN ('resolved', 'false_positive')
         GROUP BY i.verdict",
    )?;
    let closed = q
        .query_map([], |r| {
            Ok((verdict_required(r.get(0)?)?, r.get::<_, i64>(1)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    for (v, n) in closed {
        if let Some(o) = open.iter_mut().find(|o| o.0 == v) {
            o.1 -= n;
        }
    }
    let open_incidents = open
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|(v, n)| (v, n as u64))
        .collect();
    let mut q = conn.prepare_cached(&format!(
        "SELECT {CLUSTER_COLUMNS} FROM clusters WHERE verdict = 'benign' AND last_seen >= ?1
         ORDER BY count DESC, fingerprint LIMIT ?2"
    ))?;
    let noisy_benign = q
        .query_map(params![since, top as i64], cluster_row)?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Overview {
        buckets,
        top_rules,
        open_incidents,
        noisy_benign,
    })
}

pub(super) fn incidents(
    conn: &Connection,
    f: &IncidentQuery,
    page: &PageRequest,
) -> Result<Page<IncidentRow>, StoreError> {
    let mut w = Where::new(format!("SELECT {INCIDENT_COLUMNS} FROM incidents"));
    if let Some(v) = f.verdict {
        w.and("verdict = ?", vec![text(v.as_str())]);
    }
    if let Some(s) = f.status {
        w.and(
            &status_cond(TriageKind::Incident, "incidents.id", s),
            vec![],
        );
    }
    if let Some(t) = f.since {
        w.and(
            "coalesce(last_seen, updated_at) >= ?",
            vec![SqlValue::Integer(t)],
        );
    }
    if let Some(t) = f.until {
        w.and(
            "coalesce(first_seen, updated_at) < ?",
            vec![SqlValue::Integer(t)],
        );
    }
    if let Some(r) = &f.rule {
        w.and(
            "EXISTS (SELECT 1 FROM json_each(incidents.body, '$.timeline') WHERE json_extract(value, '$.rule') = ?)",
            vec![text(r)],
        );
    }
    if let Some(t) = &f.tactic {
        // Reports name tactics ("Credential Access"); a slug (`credential_access`,
        // `credential-access`) or the name in any case finds them.
        let t = t.trim().to_lowercase().replace([' ', '-'], "_");
        w.and(
            "EXISTS (SELECT 1 FROM json_each(incidents.body, '$.tactics')
                     WHERE replace(replace(lower(value), ' ', '_'), '-', '_') = ?)",
            vec![text(&t)],
        );
    }
    if let Some(h) = &f.hostname {
        let e = format!("host:{h}");
        w.and(
            "(entity = ? OR EXISTS (SELECT 1 FROM json_each(incidents.body, '$.entities') WHERE value = ?))",
            vec![text(&e), text(&e)],
        );
    }
    if let Some(ns) = &f.namespace {
        // incident_namespaces (schema 7) holds the namespaces of each incident's alerts.
        w.and(
            "(entity LIKE ? ESCAPE '\\' OR id IN (SELECT incident_id FROM incident_namespaces
                 WHERE namespace = ?))",
            vec![text(&format!("pod:{}/%", like_escape(ns))), text(ns)],
        );
    }
    if let Some((t, id)) = pair_cursor(&page.cursor) {
        w.and(
            // The bare `updated_at <= ?` lets SQLite seek the index instead of scanning it.
            "updated_at <= ? AND (updated_at < ? OR id < ?)",
            vec![SqlValue::Integer(t), SqlValue::Integer(t), text(&id)],
        );
    }
    let limit = limit_of(page);
    w.sql.push_str(&format!(
        " ORDER BY updated_at DESC, id DESC LIMIT {}",
        limit + 1
    ));
    let mut q = conn.prepare(&w.sql)?;
    let mut items = q
        .query_map(params_from_iter(w.args), incident_row)?
        .collect::<Result<Vec<_>, _>>()?;
    let next_cursor = (items.len() > limit).then(|| {
        items.truncate(limit);
        items.last().map(|i| format!("{}:{}", i.updated_at, i.id))
    });
    Ok(Page {
        items,
        next_cursor: next_cursor.flatten(),
    })
}

fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

pub(super) fn clusters(
    conn: &Connection,
    f: &ClusterQuery,
    page: &PageRequest,
) -> Result<Page<ClusterRow>, StoreError> {
    let mut w = Where::new(format!("SELECT {CLUSTER_COLUMNS} FROM clusters"));
    if let Some(v) = f.verdict {
        w.and("verdict = ?", vec![text(v.as_str())]);
    }
    if let Some(s) = f.status {
        w.and(
            &status_cond(TriageKind::Cluster, "clusters.fingerprint", s),
            vec![],
        );
    }
    if let Some(r) = &f.rule {
        w.and("rule = ?", vec![text(r)]);
    }
    if let Some(t) = f.since {
        w.and("last_seen >= ?", vec![SqlValue::Integer(t)]);
    }
    if let Some(t) = f.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        let t = t.to_lowercase();
        w.and(
            "(instr(lower(rule), ?) > 0 OR instr(lower(location), ?) > 0 OR instr(lower(activity), ?) > 0)",
            vec![text(&t), text(&t), text(&t)],
        );
    }
    if let Some((t, fp)) = pair_cursor(&page.cursor) {
        w.and(
            "last_seen <= ? AND (last_seen < ? OR fingerprint > ?)",
            vec![SqlValue::Integer(t), SqlValue::Integer(t), text(&fp)],
        );
    }
    let limit = limit_of(page);
    w.sql.push_str(&format!(
        " ORDER BY last_seen DESC, fingerprint LIMIT {}",
        limit + 1
    ));
    let mut q = conn.prepare(&w.sql)?;
    let mut items = q
        .query_map(params_from_iter(w.args), cluster_row)?
        .collect::<Result<Vec<_>, _>>()?;
    let next_cursor = (items.len() > limit).then(|| {
        items.truncate(limit);
        items
            .last()
            .map(|c| format!("{}:{}", to_nanos(c.last_seen), c.fingerprint))
    });
    Ok(Page {
        items,
        next_cursor: next_cursor.flatten(),
    })
}

/// `select` restricted to the alerts matching `f`.
fn alert_where(select: String, f: &AlertFilter) -> Where {
    let mut w = Where::new(select);
    if let Some(p) = f.priority {
        w.and(
            "priority = ?",
            vec![SqlValue::Integer(i64::from(p.level()))],
        );
    }
    if let Some(p) = f.min_priority {
        w.and(
            "priority >= ?",
            vec![SqlValue::Integer(i64::from(p.level()))],
        );
    }
    if let Some(v) = f.verdict {
        w.and("verdict = ?", vec![text(v.as_str())]);
    }
    if let Some(s) = &f.source {
        w.and("source = ?", vec![text(s)]);
    }
    for (key_col, text_col, t) in [
        ("rule_key", "rule", &f.rule),
        ("hostname_key", "hostname", &f.hostname),
        ("namespace_key", "namespace", &f.namespace),
        ("fingerprint_key", "fingerprint", &f.fingerprint),
        ("incident_key", "incident_id", &f.incident_id),
    ] {
        if let Some(t) = t {
            w.and(
                &format!("{key_col} = ? AND {text_col} = ?"),
                vec![SqlValue::Integer(text_key(t)), text(t)],
            );
        }
    }
    if let Some(a) = f.analyzed {
        w.and("analyzed = ?", vec![SqlValue::Integer(i64::from(a))]);
    }
    if let Some(t) = f.since {
        w.and("ts >= ?", vec![SqlValue::Integer(t)]);
    }
    if let Some(t) = f.until {
        w.and("ts < ?", vec![SqlValue::Integer(t)]);
    }
    w
}

/// Up to `n` alerts matching `f` with their stored (maybe packed) bodies, newest first,
/// with `above < id < below`.
fn alert_rows_with_body(
    conn: &Connection,
    f: &AlertFilter,
    above: i64,
    below: i64,
    n: usize,
) -> Result<Vec<(AlertRow, Vec<u8>)>, StoreError> {
    let mut w = alert_where(format!("SELECT {ALERT_COLUMNS}, body FROM alerts"), f);
    w.and(
        "id < ? AND id > ?",
        vec![SqlValue::Integer(below), SqlValue::Integer(above)],
    );
    w.sql.push_str(&format!(" ORDER BY id DESC LIMIT {n}"));
    let mut q = conn.prepare(&w.sql)?;
    let rows = q
        .query_map(params_from_iter(w.args), |r| {
            Ok((alert_row(r)?, raw(r, 14)?.unwrap_or_default()))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Whether the alert's message or command line holds `needle` (already lower case).
fn body_matches(body: &str, needle: &str) -> bool {
    search_text(body).to_lowercase().contains(needle)
}

/// An FTS5 query for the alerts holding every trigram of `needle` (at most 24 of them, spread
/// over it: the matches are checked anyway).
fn trigram_query(needle: &str) -> String {
    let chars: Vec<char> = needle.chars().collect();
    let mut grams: Vec<String> = chars.windows(3).map(|w| w.iter().collect()).collect();
    grams.dedup();
    let step = grams.len().div_ceil(24).max(1);
    let mut picked: Vec<String> = grams.iter().step_by(step).cloned().collect();
    if let Some(last) = grams.last() {
        if picked.last() != Some(last) {
            picked.push(last.clone());
        }
    }
    picked
        .iter()
        .map(|g| format!("\"{}\"", g.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" AND ")
}

/// A search page being filled: stops at `limit` matches or `max_scan` alerts looked at.
struct Hunt {
    items: Vec<AlertRow>,
    scanned: u64,
    /// The id below which the search goes on.
    before: i64,
    limit: usize,
    max_scan: usize,
    /// Chunks in a row that found nothing: the next one is larger (a rare match, or a filter
    /// that rejects most candidates, costs fewer round trips).
    misses: u32,
}

impl Hunt {
    /// Look at one more alert (`hit`: it matches); true when the page is done.
    fn look(&mut self, id: i64, hit: Option<AlertRow>) -> bool {
        self.scanned += 1;
        self.before = id;
        if let Some(r) = hit {
            self.items.push(r);
        }
        self.items.len() >= self.limit || self.scanned as usize >= self.max_scan
    }

    fn chunk(&self) -> usize {
        (256usize << self.misses.min(5)).min(self.max_scan - self.scanned as usize)
    }

    /// After a chunk: `found` is whether it added a match.
    fn chunk_done(&mut self, found: bool) {
        self.misses = if found { 0 } else { self.misses + 1 };
    }

    fn page(self, more: bool) -> SearchPage<AlertRow> {
        SearchPage {
            items: self.items,
            next_cursor: more.then(|| self.before.to_string()),
            scanned: self.scanned,
        }
    }
}

/// Alerts matching `filter` whose message or command line holds `text` (case-insensitive),
/// newest first, looking at no more than `max_scan` alerts per page; the cursor continues
/// where the page stopped. Alerts the search index holds (ids up to
/// `search_state.indexed_upto`) are found through it when the text has three characters or
/// more; newer ones, and every one for shorter text, are read newest first.
pub(super) fn search_alerts(
    conn: &Connection,
    codec: &Codec,
    filter: &AlertFilter,
    text: &str,
    page: &PageRequest,
    max_scan: usize,
) -> Result<SearchPage<AlertRow>, StoreError> {
    let needle = text.trim().to_lowercase();
    let indexed = if needle.chars().count() >= 3 {
        super::indexed_upto(conn)?
    } else {
        0
    };
    let mut h = Hunt {
        items: Vec::new(),
        scanned: 0,
        before: page
            .cursor
            .as_deref()
            .and_then(|c| c.parse::<i64>().ok())
            .unwrap_or(i64::MAX),
        limit: limit_of(page),
        max_scan: max_scan.max(1),
        misses: 0,
    };
    // Above the index: read the alerts.
    while h.before > indexed + 1 {
        let chunk = h.chunk();
        let rows = alert_rows_with_body(conn, filter, indexed, h.before, chunk)?;
        let exhausted = rows.len() < chunk;
        let had = h.items.len();
        for (row, body) in rows {
            let id = row.id;
            let hit = (needle.is_empty() || body_matches(&codec.unpack(conn, &body)?, &needle))
                .then_some(row);
            if h.look(id, hit) {
                return Ok(h.page(true));
            }
        }
        h.chunk_done(h.items.len() > had);
        if exhausted {
            h.before = h.before.min(indexed + 1);
        }
    }
    if indexed == 0 {
        return Ok(h.page(false));
    }
    // Within the index: the alerts holding every trigram, checked.
    let query = trigram_query(&needle);
    let mut cands = conn.prepare_cached(
        "SELECT rowid FROM alert_text WHERE alert_text MATCH ?1 AND rowid < ?2
         ORDER BY rowid DESC LIMIT ?3",
    )?;
    loop {
        let chunk = h.chunk();
        let ids = cands
            .query_map(params![query, h.before, chunk as i64], |r| {
                r.get::<_, i64>(0)
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let exhausted = ids.len() < chunk;
        let had = h.items.len();
        let mut rows: HashMap<i64, (AlertRow, Vec<u8>)> = HashMap::new();
        if !ids.is_empty() {
            let mut w = alert_where(format!("SELECT {ALERT_COLUMNS}, body FROM alerts"), filter);
            let marks = vec!["?"; ids.len()].join(", ");
            w.and(
                &format!("id IN ({marks})"),
                ids.iter().map(|i| SqlValue::Integer(*i)).collect(),
            );
            let mut q = conn.prepare(&w.sql)?;
            for r in q.query_map(params_from_iter(w.args), |r| {
                Ok((alert_row(r)?, raw(r, 14)?.unwrap_or_default()))
            })? {
                let (row, body) = r?;
                rows.insert(row.id, (row, body));
            }
        }
        for id in ids {
            let hit = match rows.remove(&id) {
                Some((row, body)) if body_matches(&codec.unpack(conn, &body)?, &needle) => {
                    Some(row)
                }
                _ => None,
            };
            if h.look(id, hit) {
                return Ok(h.page(true));
            }
        }
        h.chunk_done(h.items.len() > had);
        if exhausted {
            return Ok(h.page(false));
        }
    }
}
