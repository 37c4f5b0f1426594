-- Alerting: alerts with their lifecycle, the outbox of notifications, every delivery attempt,
-- and the thresholds an admin overrides at runtime. An alert or a notification is one JSON
-- document (`doc`); the columns beside it are what the queries filter on.
CREATE TABLE alerts (
    id          TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    open        INTEGER NOT NULL,
    doc         TEXT NOT NULL
) STRICT, WITHOUT ROWID;
-- At most one open alert per fingerprint: a condition that keeps holding is one alert.
CREATE UNIQUE INDEX alerts_open_fingerprint ON alerts (fingerprint) WHERE open = 1;

CREATE TABLE notifications (
    id            TEXT PRIMARY KEY,
    pending       INTEGER NOT NULL,
    next_at       INTEGER NOT NULL,
    claimed_until INTEGER,
    doc           TEXT NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX notifications_due ON notifications (next_at) WHERE pending = 1;

CREATE TABLE attempts (
    notification_id TEXT NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    at              INTEGER NOT NULL,
    doc             TEXT NOT NULL
) STRICT;
CREATE INDEX attempts_by_notification ON attempts (notification_id, at);

CREATE TABLE thresholds (
    rule       TEXT PRIMARY KEY,
    value      REAL NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
