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
