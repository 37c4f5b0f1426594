-- Counting open runs per pipeline (before every claim) walks this small index in pipeline
-- order instead of sorting the open runs each time.
CREATE INDEX runs_open_pipeline ON runs (pipeline, status) WHERE status IN ('queued', 'running');
-- The same columns and condition as the unique runs_tick, which serves the same queries: one
-- index less to update for every run recorded.
DROP INDEX runs_ticks;
