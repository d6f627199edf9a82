-- Schema version 6. Triage: what people decided about an incident or a cluster (status,
-- assignee) and the audit trail of every change and note (who, what, when). Kept in tables
-- of their own, keyed by the item's id, so the analysis writer's upserts of incidents and
-- clusters never touch them; retention deletes an item's triage with the item.
CREATE TABLE triage (
    -- 'incident' or 'cluster'
    kind       TEXT NOT NULL,
    -- the incident id or the cluster fingerprint
    item       TEXT NOT NULL,
    -- new | acknowledged | resolved | false_positive
    status     TEXT NOT NULL,
    assignee   TEXT,
    updated_at INTEGER NOT NULL,
    updated_by TEXT NOT NULL,
    PRIMARY KEY (kind, item)
);
CREATE INDEX triage_status ON triage(kind, status);

CREATE TABLE triage_audit (
    id        INTEGER PRIMARY KEY,
    kind      TEXT NOT NULL,
    item      TEXT NOT NULL,
    at        INTEGER NOT NULL,
    actor     TEXT NOT NULL,
    -- 'status', 'assignee' or 'note'
    field     TEXT NOT NULL,
    old_value TEXT,
    new_value TEXT
);
CREATE INDEX triage_audit_item ON triage_audit(kind, item, id);
