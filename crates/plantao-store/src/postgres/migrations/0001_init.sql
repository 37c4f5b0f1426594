CREATE TABLE pipelines (
    name            TEXT PRIMARY KEY,
    definition_hash TEXT NOT NULL,
    description     TEXT,
    active          BOOLEAN NOT NULL DEFAULT TRUE,
    first_seen      TIMESTAMPTZ NOT NULL,
    updated_at      TIMESTAMPTZ NOT NULL
);

CREATE TABLE runs (
    id            UUID PRIMARY KEY,
    pipeline      TEXT NOT NULL,
    triggered_by  TEXT NOT NULL,
    scheduled_for TIMESTAMPTZ,
    params        JSONB NOT NULL DEFAULT '{}',
    status        TEXT NOT NULL,
    reason        TEXT,
    queued_at     TIMESTAMPTZ NOT NULL,
    started_at    TIMESTAMPTZ,
    finished_at   TIMESTAMPTZ,
    duration_ms   BIGINT,
    error_stage   TEXT,
    error_message TEXT,
    node          TEXT
);

-- Exactly one run per tick, across every node: the scheduler relies on this.
CREATE UNIQUE INDEX runs_tick ON runs (pipeline, scheduled_for) WHERE scheduled_for IS NOT NULL;
CREATE INDEX runs_pipeline ON runs (pipeline, id);
CREATE INDEX runs_open ON runs (status, id) WHERE status IN ('queued', 'running');

CREATE TABLE stages (
    run_id        UUID NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step          TEXT NOT NULL,
    attempt       INTEGER NOT NULL,
    status        TEXT NOT NULL,
    started_at    TIMESTAMPTZ NOT NULL,
    finished_at   TIMESTAMPTZ,
    duration_ms   BIGINT,
    exit_code     INTEGER,
    error         TEXT,
    log           TEXT NOT NULL DEFAULT '',
    cpu_user_ms   BIGINT,
    cpu_system_ms BIGINT,
    peak_rss_kb   BIGINT,
    PRIMARY KEY (run_id, step, attempt)
);

CREATE TABLE counters (
    run_id UUID NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step   TEXT NOT NULL,
    name   TEXT NOT NULL,
    value  DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (run_id, step, name)
);

CREATE TABLE outputs (
    run_id UUID NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step   TEXT NOT NULL,
    key    TEXT NOT NULL,
    value  TEXT NOT NULL,
    PRIMARY KEY (run_id, step, key)
);
