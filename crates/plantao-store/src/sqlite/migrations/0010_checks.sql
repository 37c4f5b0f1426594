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

-- Each down period of a check, kept forever (a year of them is small): uptime and SLA come
-- from these. At most one is open (no end) per check.
CREATE TABLE incidents (
    id         INTEGER PRIMARY KEY,
    check_name TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at   INTEGER,
    cause      TEXT
) STRICT;
CREATE UNIQUE INDEX incidents_open ON incidents (check_name) WHERE ended_at IS NULL;
CREATE INDEX incidents_by_check ON incidents (check_name, started_at);
