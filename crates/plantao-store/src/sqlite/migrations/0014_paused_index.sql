-- The scheduler reads which pipelines are paused just before each due instant: with thousands
-- of pipelines a scan of the table stood between the instant and the run. Few pipelines are
-- paused at a time, so the index holds only those.
CREATE INDEX pipelines_paused ON pipelines (name) WHERE paused = 1;
