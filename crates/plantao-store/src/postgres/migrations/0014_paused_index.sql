-- The paused pipelines, which the scheduler reads before each due instant (the same index as
-- SQLite's 0014_paused_index.sql, which says why).
CREATE INDEX pipelines_paused ON pipelines (name) WHERE paused;
