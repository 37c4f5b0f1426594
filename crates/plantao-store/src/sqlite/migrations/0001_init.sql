-- Times are microseconds since the Unix epoch, UTC. Ids are UUIDv7 text, which sorts by time.

CREATE TABLE pipelines (
    name            TEXT PRIMARY KEY,
    definition_hash TEXT NOT NULL,
    description     TEXT,
    active          INTEGER NOT NULL DEFAULT 1,
    first_seen      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT;

CREATE TABLE runs (
    id            TEXT PRIMARY KEY,
    pipeline      TEXT NOT NULL,
    triggered_by  TEXT NOT NULL,
    scheduled_for INTEGER,
    params        TEXT NOT NULL DEFAULT '{}',
    status        TEXT NOT NULL,
    reason        TEXT,
    queued_at     INTEGER NOT NULL,
    started_at    INTEGER,
    finished_at   INTEGER,
    duration_ms   INTEGER,
    error_stage   TEXT,
    error_message TEXT,
    node          TEXT
) STRICT;

-- Exactly one run per tick: the scheduler relies on this.
CREATE UNIQUE INDEX runs_tick ON runs (pipeline, scheduled_for) WHERE scheduled_for IS NOT NULL;
CREATE INDEX runs_pipeline ON runs (pipeline, id);
CREATE INDEX runs_open ON runs (status, id) WHERE status IN ('queued', 'running');

CREATE TABLE stages (
    run_id        TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step          TEXT NOT NULL,
    attempt       INTEGER NOT NULL,
    status        TEXT NOT NULL,
    started_at    INTEGER NOT NULL,
    finished_at   INTEGER,
    duration_ms   INTEGER,
    exit_code     INTEGER,
    error         TEXT,
    log           TEXT NOT NULL DEFAULT '',
    cpu_user_ms   INTEGER,
    cpu_system_ms INTEGER,
    peak_rss_kb   INTEGER,
    PRIMARY KEY (run_id, step, attempt)
) STRICT;

CREATE TABLE counters (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step   TEXT NOT NULL,
    name   TEXT NOT NULL,
    value  REAL NOT NULL,
    PRIMARY KEY (run_id, step, name)
) STRICT;

CREATE TABLE outputs (
    run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step   TEXT NOT NULL,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (run_id, step, key)
) STRICT;
