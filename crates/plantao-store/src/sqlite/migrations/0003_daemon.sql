-- What the daemon needs: chained runs point at their parent, scheduled runs keep their lag,
-- a run can be asked to stop from another process, and a pipeline can be paused.
ALTER TABLE runs ADD COLUMN parent TEXT;
ALTER TABLE runs ADD COLUMN lag_ms INTEGER;
ALTER TABLE runs ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0;
ALTER TABLE pipelines ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;
CREATE INDEX runs_ticks ON runs (pipeline, scheduled_for) WHERE scheduled_for IS NOT NULL;
