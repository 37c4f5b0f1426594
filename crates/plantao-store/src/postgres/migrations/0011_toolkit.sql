-- Per-pipeline state (watermarks and the like): steps read it from the environment and change
-- it through $PLANTAO_OUTPUT; a run's changes are written only when it succeeds. Kept when runs
-- are pruned.
CREATE TABLE pipeline_state (
    pipeline   TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    -- The run whose success set it; none when set by hand.
    run_id     UUID,
    PRIMARY KEY (pipeline, key)
);

-- The input files each run found, as shown with the run; pruned with it.
CREATE TABLE run_inputs (
    run_id UUID NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    path   TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    bytes  BIGINT NOT NULL,
    PRIMARY KEY (run_id, path)
);

-- The inputs of each pipeline's last successful run, what the next runs compare theirs with;
-- kept when that run is pruned.
CREATE TABLE pipeline_inputs (
    pipeline TEXT NOT NULL,
    path     TEXT NOT NULL,
    sha256   TEXT NOT NULL,
    bytes    BIGINT NOT NULL,
    run_id   UUID NOT NULL,
    PRIMARY KEY (pipeline, path)
);

-- Backfill periods finished successfully (first and last day); kept forever.
CREATE TABLE checkpoints (
    pipeline     TEXT NOT NULL,
    period_start DATE NOT NULL,
    period_end   DATE NOT NULL,
    run_id       UUID NOT NULL,
    at           TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (pipeline, period_start, period_end)
);

-- Backfills asked for through the API, driven by the node that owns the `backfills` task:
-- the request and its progress as one JSON record.
CREATE TABLE backfills (
    id         UUID PRIMARY KEY,
    pipeline   TEXT NOT NULL,
    state      TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    record     JSONB NOT NULL
);
CREATE INDEX backfills_running ON backfills (state) WHERE state = 'running';

-- When each pipeline last succeeded, read before every run (PLANTAO_LAST_SUCCESS_AT): without
-- it, the newest-first scan passes every queued run first.
CREATE INDEX runs_succeeded ON runs (pipeline, finished_at) WHERE status = 'succeeded';
