-- Schema version 1. Times are integers: nanoseconds since the Unix epoch (UTC).

CREATE TABLE alerts (
    id           INTEGER PRIMARY KEY,
    uuid         TEXT NOT NULL UNIQUE,
    received_at  INTEGER NOT NULL,
    -- the event time, or the receive time when the alert had none: what time filters use
    ts           INTEGER NOT NULL,
    rule         TEXT NOT NULL,
    -- Falco priority as a level: 7 Emergency ... 0 Debug
    priority     INTEGER,
    source       TEXT,
    hostname     TEXT,
    namespace    TEXT,
    -- the alert as received, in its canonical JSON form
    body         TEXT NOT NULL,
    analyzed     INTEGER NOT NULL DEFAULT 0,
    verdict      TEXT,
    score        REAL,
    fingerprint  TEXT,
    incident_id  TEXT,
    verdict_json TEXT
);
-- The start-up scan for alerts stored but not analysed reads only this small index.
CREATE INDEX alerts_unanalyzed ON alerts(id) WHERE analyzed = 0;
CREATE INDEX alerts_ts ON alerts(ts);
CREATE INDEX alerts_rule ON alerts(rule);
CREATE INDEX alerts_hostname ON alerts(hostname);
CREATE INDEX alerts_namespace ON alerts(namespace);
CREATE INDEX alerts_fingerprint ON alerts(fingerprint);
CREATE INDEX alerts_incident ON alerts(incident_id);

-- Full reports kept for a cluster's first alert and every alert that is not benign; the
-- others are rebuilt on demand from the stored alert and verdict.
CREATE TABLE reports (
    alert_id   INTEGER PRIMARY KEY,
    created_at INTEGER NOT NULL,
    body       TEXT NOT NULL
);

CREATE TABLE clusters (
    fingerprint         TEXT PRIMARY KEY,
    rule                TEXT NOT NULL,
    count               INTEGER NOT NULL,
    first_seen          INTEGER NOT NULL,
    last_seen           INTEGER NOT NULL,
    verdict             TEXT NOT NULL,
    verdict_rank        INTEGER NOT NULL,
    representative_uuid TEXT NOT NULL,
    location            TEXT NOT NULL,
    activity            TEXT NOT NULL
);
CREATE INDEX clusters_last_seen ON clusters(last_seen);

CREATE TABLE incidents (
    id          TEXT PRIMARY KEY,
    entity      TEXT NOT NULL,
    first_seen  INTEGER,
    last_seen   INTEGER,
    alert_count INTEGER NOT NULL,
    verdict     TEXT NOT NULL,
    updated_at  INTEGER NOT NULL,
    -- the IncidentReport JSON, timeline included
    body        TEXT NOT NULL
);
CREATE INDEX incidents_updated ON incidents(updated_at);

CREATE TABLE dead_letters (
    id          INTEGER PRIMARY KEY,
    received_at INTEGER NOT NULL,
    origin      TEXT NOT NULL,
    reason_kind TEXT NOT NULL,
    reason      TEXT NOT NULL,
    raw         BLOB NOT NULL
);

CREATE TABLE llm_cache (
    key        TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    value      TEXT NOT NULL
);
