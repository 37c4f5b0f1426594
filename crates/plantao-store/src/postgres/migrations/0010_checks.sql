-- Checks (heartbeats and probes): what their pings and results say, one row per check, kept beside the runs the pings make (runs
-- are pruned; a check's last success must not be).
CREATE TABLE checks (
    name                TEXT PRIMARY KEY,
    pings               BIGINT NOT NULL,
    last_ping_at        TIMESTAMPTZ,
    last_ping           TEXT,
    last_start_at       TIMESTAMPTZ,
    last_success_at     TIMESTAMPTZ,
    previous_success_at TIMESTAMPTZ,
    last_failure_at     TIMESTAMPTZ,
    last_duration_ms    BIGINT,
    -- Probes: up or down, and how many results in a row were of the last kind.
    state               TEXT,
    streak              BIGINT
);

-- Each down period of a check, kept forever (a year of them is small): uptime and SLA come
-- from these. At most one is open (no end) per check.
CREATE TABLE incidents (
    id         BIGSERIAL PRIMARY KEY,
    check_name TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    ended_at   TIMESTAMPTZ,
    cause      TEXT
);
CREATE UNIQUE INDEX incidents_open ON incidents (check_name) WHERE ended_at IS NULL;
CREATE INDEX incidents_by_check ON incidents (check_name, started_at);
