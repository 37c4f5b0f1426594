-- Checks (heartbeats and probes): what their pings and results say, one row per check, kept beside the runs the pings make (runs
-- are pruned; a check's last success must not be). Times in microseconds since 1970 UTC.
CREATE TABLE checks (
    name                TEXT PRIMARY KEY,
    pings               INTEGER NOT NULL,
    last_ping_at        INTEGER,
    last_ping           TEXT,
    last_start_at       INTEGER,
    last_success_at     INTEGER,
    previous_success_at INTEGER,
    last_failure_at     INTEGER,
    last_duration_ms    INTEGER,
    -- Probes: up or down, and how many results in a row were of the last kind.
    state               TEXT,
    streak              INTEGER
) STRICT;
