-- Schema version 3. alerts.body, alerts.verdict_json and reports.body may hold zstd frames
-- (BLOBs) instead of TEXT (see src/packed.rs); rows written before stay TEXT and read as they
-- are. A frame packed with a dictionary names it by id; the dictionaries, trained from the
-- store's own alerts, are kept here and never deleted (32 KiB each, a few per million alerts).
CREATE TABLE zstd_dicts (
    id         INTEGER PRIMARY KEY,
    created_at INTEGER NOT NULL,
    dict       BLOB NOT NULL
);
