-- What the daemon needs: chained runs point at their parent, scheduled runs keep their lag,
-- a run can be asked to stop from another process, and a pipeline can be paused.
ALTER TABLE runs ADD COLUMN parent UUID;
ALTER TABLE runs ADD COLUMN lag_ms BIGINT;
ALTER TABLE runs ADD COLUMN cancel_requested BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE pipelines ADD COLUMN paused BOOLEAN NOT NULL DEFAULT FALSE;
