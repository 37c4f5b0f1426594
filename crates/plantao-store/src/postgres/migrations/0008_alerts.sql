-- Alerting: alerts with their lifecycle, the outbox of notifications, every delivery attempt,
-- and the thresholds an admin overrides at runtime. An alert or a notification is one JSON
-- document (`doc`); the columns beside it are what the queries filter on.
CREATE TABLE alerts (
    id          UUID PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    open        BOOLEAN NOT NULL,
    doc         TEXT NOT NULL
);
-- At most one open alert per fingerprint: two nodes seeing the same failure open one alert.
CREATE UNIQUE INDEX alerts_open_fingerprint ON alerts (fingerprint) WHERE open;

CREATE TABLE notifications (
    id            UUID PRIMARY KEY,
    pending       BOOLEAN NOT NULL,
    next_at       TIMESTAMPTZ NOT NULL,
    claimed_until TIMESTAMPTZ,
    doc           TEXT NOT NULL
);
CREATE INDEX notifications_due ON notifications (next_at) WHERE pending;

CREATE TABLE attempts (
    notification_id UUID NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    at              TIMESTAMPTZ NOT NULL,
    doc             TEXT NOT NULL
);
CREATE INDEX attempts_by_notification ON attempts (notification_id, at);

CREATE TABLE thresholds (
    rule       TEXT PRIMARY KEY,
    value      DOUBLE PRECISION NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
