-- Schema version 2. Clusters expire by when this service last counted an alert in them, not by
-- event time: replayed or late alerts carry old event times, and their clusters were deleted
-- by retention while their alerts (kept by receive time) stayed.
ALTER TABLE clusters ADD COLUMN updated_at INTEGER;
UPDATE clusters SET updated_at = last_seen;
CREATE INDEX clusters_updated ON clusters(updated_at);
