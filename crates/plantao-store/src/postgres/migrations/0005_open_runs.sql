-- Counting open runs per pipeline (before every claim) walks this small index in pipeline
-- order instead of sorting the open runs each time.
CREATE INDEX runs_open_pipeline ON runs (pipeline, status) WHERE status IN ('queued', 'running');
