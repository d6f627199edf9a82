-- Schema version 7. What keeps the console's pages fast on a million alerts, written by the
-- store in the same transaction as the alerts (src/rollup.rs sums a batch's changes first):
--
-- * alert_minutes: alerts per minute of their time (`ts`) by priority and verdict, for the
--   overview's charts. The priority is its level or -1, the verdict '' until the alert is
--   analysed (key columns, so never NULL). Retention subtracts what it deletes.
-- * alert_rule_minutes: alerts per minute by rule, for the overview's top rules.
-- * incident_namespaces: the namespaces of each incident's alerts, for the incident list's
--   namespace filter (which otherwise reads every alert of the namespace). Rows go with their
--   incident.
-- * alert_text: a full-text index (FTS5, trigram tokenizer) of each alert's message and
--   command lines under the alert's id: a search takes the alerts holding every trigram of its
--   text and checks those. Contentless (the text is in the compressed body) and detail=none
--   (rowids only, a quarter of the size and half the work of positions). Filled in the
--   background by `Store::index_pending` in id order up to search_state.indexed_upto, when the
--   store writer is idle, not in the alerts' own transaction: at about 100 us per alert of
--   real Falco output it would halve the writer's throughput in a storm. Alerts above the mark
--   are searched by reading them, newest first.
CREATE TABLE alert_minutes (
    minute   INTEGER NOT NULL,
    priority INTEGER NOT NULL,
    verdict  TEXT NOT NULL,
    count    INTEGER NOT NULL,
    PRIMARY KEY (minute, priority, verdict)
) WITHOUT ROWID;
INSERT INTO alert_minutes (minute, priority, verdict, count)
SELECT ts - ((ts % 60000000000) + 60000000000) % 60000000000, coalesce(priority, -1),
       coalesce(verdict, ''), count(*)
FROM alerts GROUP BY 1, 2, 3;

CREATE TABLE alert_rule_minutes (
    minute INTEGER NOT NULL,
    rule   TEXT NOT NULL,
    count  INTEGER NOT NULL,
    PRIMARY KEY (minute, rule)
) WITHOUT ROWID;
INSERT INTO alert_rule_minutes (minute, rule, count)
SELECT ts - ((ts % 60000000000) + 60000000000) % 60000000000, rule, count(*)
FROM alerts GROUP BY 1, 2;

CREATE TABLE incident_namespaces (
    namespace   TEXT NOT NULL,
    incident_id TEXT NOT NULL,
    PRIMARY KEY (namespace, incident_id)
) WITHOUT ROWID;
INSERT OR IGNORE INTO incident_namespaces (namespace, incident_id)
SELECT DISTINCT namespace, incident_id FROM alerts
WHERE namespace IS NOT NULL AND incident_id IS NOT NULL;

-- The incident list filtered by verdict, newest first, and the open incidents by verdict.
CREATE INDEX incidents_verdict ON incidents(verdict, updated_at);

CREATE VIRTUAL TABLE alert_text USING fts5(
    text, content = '', contentless_delete = 1, detail = none, tokenize = 'trigram'
);
CREATE TABLE search_state (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    -- every alert with an id up to this one is in alert_text
    indexed_upto INTEGER NOT NULL
);
INSERT INTO search_state (id, indexed_upto) VALUES (1, 0);

-- The alert filters on rule, host and namespace are usually combined with a verdict: keyed by
-- both, a page of "rule R, malicious" is an index seek instead of a walk through every alert of
-- the rule. A filter without a verdict reads each verdict's part of the index newest first
-- and merges them (src/sqlite.rs, `list_alerts`).
DROP INDEX alerts_rule_key;
DROP INDEX alerts_hostname_key;
DROP INDEX alerts_namespace_key;
CREATE INDEX alerts_rule_key ON alerts(rule_key, verdict);
CREATE INDEX alerts_hostname_key ON alerts(hostname_key, verdict);
CREATE INDEX alerts_namespace_key ON alerts(namespace_key, verdict);
