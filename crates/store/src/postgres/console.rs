//! The console's queries and triage writes on PostgreSQL (schema 2): the same answers as the
//! SQLite ones (src/sqlite/console.rs), in PostgreSQL's SQL.

use super::{
    alert_row, clean, clean_owned, cluster_row, incident_row, rows, verdict_of, verdict_req,
    ALERT_COLUMNS, CLUSTER_COLUMNS, INCIDENT_COLUMNS,
};
use crate::console::*;
use crate::rollup::{minute_of, NO_VERDICT};
use crate::sqlite::{limit_of, priority_from_level};
use crate::types::*;
use crate::StoreError;
use postgres::types::ToSql;
use postgres::{Client, Row, Transaction};
use std::collections::HashMap;

type Value = Box<dyn ToSql + Sync + Send>;

/// A query whose `?` placeholders become `$n` as their values are added.
pub(super) struct Sql {
    pub(super) sql: String,
    values: Vec<Value>,
}

impl Sql {
    fn new(sql: impl Into<String>) -> Self {
        Sql {
            sql: sql.into(),
            values: Vec::new(),
        }
    }

    /// Append `part`, each `?` taking the next of `vals`.
    fn push(&mut self, part: &str, vals: Vec<Value>) {
        let mut vals = vals.into_iter();
        let mut rest = part;
        while let Some((a, b)) = rest.split_once('?') {
            self.sql.push_str(a);
            match vals.next() {
                Some(v) => {
                    self.values.push(v);
                    self.sql.push_str(&format!("${}", self.values.len()));
                }
                None => self.sql.push('?'),
            }
            rest = b;
        }
        self.sql.push_str(rest);
    }

    fn and(&mut self, part: &str, vals: Vec<Value>) {
        self.sql.push_str(" AND ");
        self.push(part, vals);
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

fn text(s: &str) -> Value {
    Box::new(clean_owned(s))
}

fn int(n: i64) -> Value {
    Box::new(n)
}

fn status_from(s: &str) -> Result<TriageStatus, StoreError> {
    s.parse::<TriageStatus>()
        .map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn triage_row(r: &Row) -> Result<Triage, StoreError> {
    Ok(Triage {
        status: status_from(r.try_get(0)?)?,
        assignee: r.try_get(1)?,
        updated_at: Some(from_nanos(r.try_get(2)?)),
        updated_by: Some(r.try_get(3)?),
    })
}

const TRIAGE_GET: &str =
    "SELECT status, assignee, updated_at, updated_by FROM triage WHERE kind = $1 AND item = $2";

pub(super) fn triage_get(
    c: &mut Client,
    kind: TriageKind,
    item: &str,
) -> Result<Option<Triage>, StoreError> {
    c.query_opt(TRIAGE_GET, &[&kind.as_str(), &clean(item).as_ref()])?
        .map(|r| triage_row(&r))
        .transpose()
}

/// Apply a change in one transaction, one audit entry per field that changed (and the note).
/// `None` when the item does not exist.
pub(super) fn triage_update(
    c: &mut Client,
    kind: TriageKind,
    item: &str,
    change: &TriageChange,
    actor: &str,
    now: Nanos,
) -> Result<Option<Triage>, StoreError> {
    let item = clean_owned(item);
    let actor = clean_owned(actor);
    let mut tx = c.transaction()?;
    // Locking the item serialises two people changing it at once (on any replica), so each
    // audit entry's old value is the one the other left.
    let lock = match kind {
        TriageKind::Incident => "SELECT 1 FROM incidents WHERE id = $1 FOR UPDATE",
        TriageKind::Cluster => "SELECT 1 FROM clusters WHERE fingerprint = $1 FOR UPDATE",
    };
    if tx.query_opt(lock, &[&item])?.is_none() {
        return Ok(None);
    }
    let before = tx
        .query_opt(TRIAGE_GET, &[&kind.as_str(), &item])?
        .map(|r| triage_row(&r))
        .transpose()?
        .unwrap_or_default();
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
            .map(clean_owned);
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
        audit.push(("note", None, Some(clean_owned(n))));
    }
    if audit.is_empty() {
        return Ok(Some(before));
    }
    after.updated_at = Some(from_nanos(now));
    after.updated_by = Some(actor.clone());
    tx.execute(
        "INSERT INTO triage (kind, item, status, assignee, updated_at, updated_by)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (kind, item) DO UPDATE SET status = excluded.status,
             assignee = excluded.assignee, updated_at = excluded.updated_at,
             updated_by = excluded.updated_by",
        &[
            &kind.as_str(),
            &item,
            &after.status.as_str(),
            &after.assignee,
            &now,
            &actor,
        ],
    )?;
    let ins = tx.prepare(
        "INSERT INTO triage_audit (kind, item, at, actor, field, old_value, new_value)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )?;
    for (field, old, new) in &audit {
        tx.execute(
            &ins,
            &[&kind.as_str(), &item, &now, &actor, field, old, new],
        )?;
    }
    tx.commit()?;
    Ok(Some(after))
}

pub(super) fn triage_audit(
    c: &mut Client,
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
    let r = c.query(
        "SELECT id, at, actor, field, old_value, new_value FROM triage_audit
         WHERE kind = $1 AND item = $2 AND id < $3 ORDER BY id DESC LIMIT $4",
        &[
            &kind.as_str(),
            &clean(item).as_ref(),
            &before,
            &((limit + 1) as i64),
        ],
    )?;
    let mut items = rows(r, |r| {
        Ok(AuditEntry {
            id: r.try_get(0)?,
            at: from_nanos(r.try_get(1)?),
            actor: r.try_get(2)?,
            field: r.try_get(3)?,
            old_value: r.try_get(4)?,
            new_value: r.try_get(5)?,
        })
    })?;
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
    c: &mut Client,
    kind: TriageKind,
    items: &[String],
) -> Result<HashMap<String, Triage>, StoreError> {
    let keys: Vec<String> = items.iter().map(|i| clean_owned(i)).collect();
    let r = c.query(
        "SELECT status, assignee, updated_at, updated_by, item FROM triage
         WHERE kind = $1 AND item = ANY($2)",
        &[&kind.as_str(), &keys],
    )?;
    let mut out = HashMap::new();
    for row in &r {
        let item: String = row.try_get(4)?;
        // Answer under the caller's spelling (a NUL was stored as U+FFFD).
        if let Some(i) = items.iter().find(|i| clean(i) == item.as_str()) {
            out.insert(i.clone(), triage_row(row)?);
        }
    }
    Ok(out)
}

pub(super) fn muted_clusters(c: &mut Client) -> Result<Vec<String>, StoreError> {
    let r = c.query(
        "SELECT item FROM triage WHERE kind = 'cluster'
         AND status IN ('acknowledged', 'false_positive')",
        &[],
    )?;
    rows(r, |r| Ok(r.try_get(0)?))
}

/// Triage and namespaces of items retention deleted go with them.
pub(super) fn delete_orphans(tx: &mut Transaction<'_>) -> Result<(), StoreError> {
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
                &[],
            )?;
        }
    }
    tx.execute(
        "DELETE FROM incident_namespaces WHERE NOT EXISTS
           (SELECT 1 FROM incidents WHERE incidents.id = incident_namespaces.incident_id)",
        &[],
    )?;
    Ok(())
}

/// The condition "the item's status is `status`" (an item without a triage row is new).
fn status_cond(kind: TriageKind, key_col: &str, status: TriageStatus) -> String {
    let k = kind.as_str();
    match status {
        TriageStatus::New => format!(
            "{key_col} NOT IN (SELECT item FROM triage WHERE kind = '{k}' AND status <> 'new')"
        ),
        s => format!(
            "{key_col} IN (SELECT item FROM triage WHERE kind = '{k}' AND status = '{}')",
            s.as_str()
        ),
    }
}

/// Keyset cursor `<integer>:<text>` (the text may hold colons).
fn pair_cursor(c: &Option<String>) -> Option<(i64, String)> {
    let (n, t) = c.as_deref()?.split_once(':')?;
    Some((n.parse().ok()?, t.to_string()))
}

fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

pub(super) fn overview(
    c: &mut Client,
    since: Nanos,
    until: Nanos,
    bucket: i64,
    top: usize,
) -> Result<Overview, StoreError> {
    let bucket = bucket.max(1);
    // From the per-minute rollups, as on SQLite: minutes starting in the window, the first
    // one whole (PostgreSQL's integer division also truncates towards zero).
    let first = minute_of(since);
    let r = c.query(
        "SELECT (minute - $1) / $3, priority, verdict, sum(count)::BIGINT FROM alert_minutes
         WHERE minute >= $4 AND minute < $2 GROUP BY 1, 2, 3 HAVING sum(count) > 0",
        &[&since, &until, &bucket, &first],
    )?;
    let buckets = rows(r, |r| {
        let v: String = r.try_get(2)?;
        Ok(HistogramBucket {
            start: since + r.try_get::<_, i64>(0)? * bucket,
            priority: priority_from_level(Some(r.try_get(1)?)),
            verdict: verdict_of(Some(v).filter(|v| v != NO_VERDICT))?,
            count: r.try_get::<_, i64>(3)?.max(0) as u64,
        })
    })?;
    let r = c.query(
        "SELECT min(rule), sum(count)::BIGINT FROM alert_rule_minutes
         WHERE minute >= $1 AND minute < $2
         GROUP BY rule_md5 HAVING sum(count) > 0 ORDER BY 2 DESC, 1 LIMIT $3",
        &[&first, &until, &(top as i64)],
    )?;
    let top_rules = rows(r, |r| {
        Ok((r.try_get(0)?, r.try_get::<_, i64>(1)?.max(0) as u64))
    })?;
    let r = c.query(
        "SELECT verdict, count(*) FILTER (WHERE id NOT IN
                    (SELECT item FROM triage WHERE kind = 'incident'
                     AND status IN ('resolved', 'false_positive')))
         FROM incidents GROUP BY verdict",
        &[],
    )?;
    let open_incidents = rows(r, |r| {
        Ok((verdict_req(r.try_get(0)?)?, r.try_get::<_, i64>(1)?))
    })?
    .into_iter()
    .filter(|(_, n)| *n > 0)
    .map(|(v, n)| (v, n as u64))
    .collect();
    let r = c.query(
        &format!(
            "SELECT {CLUSTER_COLUMNS} FROM clusters WHERE verdict = 'benign' AND last_seen >= $1
             ORDER BY count DESC, fingerprint LIMIT $2"
        ),
        &[&since, &(top as i64)],
    )?;
    let noisy_benign = rows(r, cluster_row)?;
    Ok(Overview {
        buckets,
        top_rules,
        open_incidents,
        noisy_benign,
    })
}

pub(super) fn incidents(
    c: &mut Client,
    f: &IncidentQuery,
    page: &PageRequest,
) -> Result<Page<IncidentRow>, StoreError> {
    let mut w = Sql::new(format!(
        "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE TRUE"
    ));
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
        w.and("coalesce(last_seen, updated_at) >= ?", vec![int(t)]);
    }
    if let Some(t) = f.until {
        w.and("coalesce(first_seen, updated_at) < ?", vec![int(t)]);
    }
    if let Some(r) = &f.rule {
        w.and(
            "EXISTS (SELECT 1 FROM jsonb_array_elements(
                         CASE WHEN jsonb_typeof(body::jsonb -> 'timeline') = 'array'
                              THEN body::jsonb -> 'timeline' END) e
                     WHERE e ->> 'rule' = ?)",
            vec![text(r)],
        );
    }
    if let Some(t) = &f.tactic {
        let t = t.trim().to_lowercase().replace([' ', '-'], "_");
        w.and(
            "EXISTS (SELECT 1 FROM jsonb_array_elements_text(
                         CASE WHEN jsonb_typeof(body::jsonb -> 'tactics') = 'array'
                              THEN body::jsonb -> 'tactics' END) v
                     WHERE replace(replace(lower(v), ' ', '_'), '-', '_') = ?)",
            vec![text(&t)],
        );
    }
    if let Some(h) = &f.hostname {
        let e = format!("host:{h}");
        w.and(
            "(entity = ? OR EXISTS (SELECT 1 FROM jsonb_array_elements_text(
                         CASE WHEN jsonb_typeof(body::jsonb -> 'entities') = 'array'
                              THEN body::jsonb -> 'entities' END) v
                     WHERE v = ?))",
            vec![text(&e), text(&e)],
        );
    }
    if let Some(ns) = &f.namespace {
        w.and(
            "(entity LIKE ? ESCAPE '\\' OR id IN (SELECT incident_id FROM incident_namespaces
                 WHERE md5(namespace) = md5(?) AND namespace = ?))",
            vec![
                text(&format!("pod:{}/%", like_escape(ns))),
                text(ns),
                text(ns),
            ],
        );
    }
    if let Some((t, id)) = pair_cursor(&page.cursor) {
        w.and(
            "updated_at <= ? AND (updated_at < ? OR id < ?)",
            vec![int(t), int(t), text(&id)],
        );
    }
    let limit = limit_of(page);
    w.sql.push_str(&format!(
        " ORDER BY updated_at DESC, id DESC LIMIT {}",
        limit + 1
    ));
    let mut items = rows(w.query(c)?, incident_row)?;
    let next_cursor = (items.len() > limit).then(|| {
        items.truncate(limit);
        items.last().map(|i| format!("{}:{}", i.updated_at, i.id))
    });
    Ok(Page {
        items,
        next_cursor: next_cursor.flatten(),
    })
}

pub(super) fn clusters(
    c: &mut Client,
    f: &ClusterQuery,
    page: &PageRequest,
) -> Result<Page<ClusterRow>, StoreError> {
    let mut w = Sql::new(format!("SELECT {CLUSTER_COLUMNS} FROM clusters WHERE TRUE"));
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
        w.and("last_seen >= ?", vec![int(t)]);
    }
    if let Some(t) = f.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        let t = t.to_lowercase();
        w.and(
            "(strpos(lower(rule), ?) > 0 OR strpos(lower(location), ?) > 0
              OR strpos(lower(activity), ?) > 0)",
            vec![text(&t), text(&t), text(&t)],
        );
    }
    if let Some((t, fp)) = pair_cursor(&page.cursor) {
        w.and(
            "last_seen <= ? AND (last_seen < ? OR fingerprint > ?)",
            vec![int(t), int(t), text(&fp)],
        );
    }
    let limit = limit_of(page);
    w.sql.push_str(&format!(
        " ORDER BY last_seen DESC, fingerprint LIMIT {}",
        limit + 1
    ));
    let mut items = rows(w.query(c)?, cluster_row)?;
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

/// The alert filter as one boolean expression (`TRUE` when empty), appended to `w`.
fn push_alert_filter(w: &mut Sql, f: &AlertFilter) {
    w.sql.push_str("(TRUE");
    if let Some(p) = f.priority {
        w.and("priority = ?", vec![int(i64::from(p.level()))]);
    }
    if let Some(p) = f.min_priority {
        w.and("priority >= ?", vec![int(i64::from(p.level()))]);
    }
    if let Some(v) = f.verdict {
        w.and("verdict = ?", vec![text(v.as_str())]);
    }
    for (col, t) in [
        ("source", &f.source),
        ("rule", &f.rule),
        ("hostname", &f.hostname),
        ("namespace", &f.namespace),
        ("fingerprint", &f.fingerprint),
        ("incident_id", &f.incident_id),
    ] {
        if let Some(t) = t {
            w.and(&format!("{col} = ?"), vec![text(t)]);
        }
    }
    if let Some(a) = f.analyzed {
        w.and("analyzed = ?", vec![Box::new(a)]);
    }
    if let Some(t) = f.since {
        w.and("ts >= ?", vec![int(t)]);
    }
    if let Some(t) = f.until {
        w.and("ts < ?", vec![int(t)]);
    }
    w.sql.push(')');
}

/// Alerts matching `filter` whose message or command line holds `text` (case-insensitive),
/// newest first, looking at no more than `max_scan` alerts per page, as on SQLite: the
/// candidates are the alerts whose `search_text` holds the text (the pg_trgm index finds them
/// when there is one), or every alert for text shorter than a trigram; each is then checked
/// against the filter. One statement finds the candidates (ids and whether each matches),
/// a second reads the rows of the page.
pub(super) fn search_alerts(
    c: &mut Client,
    filter: &AlertFilter,
    text_: &str,
    page: &PageRequest,
    max_scan: usize,
) -> Result<SearchPage<AlertRow>, StoreError> {
    let needle = text_.trim().to_lowercase();
    let limit = limit_of(page);
    let max_scan = max_scan.max(1);
    let pattern = format!("%{}%", like_escape(&needle));
    let indexed = needle.chars().count() >= 3;
    let before = page
        .cursor
        .as_deref()
        .and_then(|c| c.parse::<i64>().ok())
        .unwrap_or(i64::MAX);
    let mut w = Sql::new("SELECT id, ");
    push_alert_filter(&mut w, filter);
    if !indexed {
        w.and(
            "coalesce(search_text, '') ILIKE ? ESCAPE '\\'",
            vec![text(&pattern)],
        );
    }
    w.sql.push_str(" AS ok FROM alerts WHERE TRUE");
    if indexed {
        w.and("search_text ILIKE ? ESCAPE '\\'", vec![text(&pattern)]);
    }
    w.and("id < ?", vec![int(before)]);
    w.sql
        .push_str(&format!(" ORDER BY id DESC LIMIT {max_scan}"));
    let cands = w.query(c)?;
    let mut hits: Vec<i64> = Vec::new();
    let mut scanned = 0u64;
    let mut last = before;
    for r in &cands {
        scanned += 1;
        last = r.try_get(0)?;
        if r.try_get::<_, bool>(1)? {
            hits.push(last);
            if hits.len() >= limit {
                break;
            }
        }
    }
    let more = hits.len() >= limit || cands.len() >= max_scan;
    let items = if hits.is_empty() {
        Vec::new()
    } else {
        let r = c.query(
            &format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ANY($1) ORDER BY id DESC"),
            &[&hits],
        )?;
        rows(r, alert_row)?
    };
    Ok(SearchPage {
        items,
        next_cursor: more.then(|| last.to_string()),
        scanned,
    })
}
