-- Rollups: what finished runs add up to, per pipeline and hour (UTC) or day (the pipeline's
-- zone). Each finished run is added in the transaction that finishes it; pruning raw runs
-- leaves these alone. Buckets are the bucket's first instant, in microseconds.
ALTER TABLE pipelines ADD COLUMN timezone TEXT NOT NULL DEFAULT 'UTC';

CREATE TABLE rollup_runs (
    pipeline        TEXT NOT NULL,
    grain           TEXT NOT NULL,
    bucket          INTEGER NOT NULL,
    status          TEXT NOT NULL,
    triggered_by    TEXT NOT NULL,
    runs            INTEGER NOT NULL,
    timed_runs      INTEGER NOT NULL,
    duration_ms_sum INTEGER NOT NULL,
    duration_ms_max INTEGER,
    cpu_ms          INTEGER NOT NULL,
    PRIMARY KEY (pipeline, grain, bucket, status, triggered_by)
) STRICT;

-- Log-scale duration bins (see rollup.rs): they add up across buckets.
CREATE TABLE rollup_durations (
    pipeline TEXT NOT NULL,
    grain    TEXT NOT NULL,
    bucket   INTEGER NOT NULL,
    status   TEXT NOT NULL,
    bin      INTEGER NOT NULL,
    runs     INTEGER NOT NULL,
    PRIMARY KEY (pipeline, grain, bucket, status, bin)
) STRICT;

CREATE TABLE rollup_counters (
    pipeline TEXT NOT NULL,
    grain    TEXT NOT NULL,
    bucket   INTEGER NOT NULL,
    step     TEXT NOT NULL,
    name     TEXT NOT NULL,
    sum      REAL NOT NULL,
    runs     INTEGER NOT NULL,
    PRIMARY KEY (pipeline, grain, bucket, step, name)
) STRICT;

-- Periodic work done by one node at a time (pruning, later alert evaluation): the owner holds
-- the task until its lease expires.
CREATE TABLE owners (
    task       TEXT PRIMARY KEY,
    node       TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
