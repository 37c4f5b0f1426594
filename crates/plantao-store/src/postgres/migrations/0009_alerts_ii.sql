-- Alerting II. Notifications of one group (same channel, same grouping labels) are claimed
-- together and sent as one message; `notification_groups` says when each group last had one, for
-- `group_interval`. Silences are documents with their end beside them.
ALTER TABLE notifications ADD COLUMN group_key TEXT;
CREATE INDEX notifications_group ON notifications (group_key) WHERE group_key IS NOT NULL AND pending;

CREATE TABLE notification_groups (
    group_key TEXT PRIMARY KEY,
    last_sent TIMESTAMPTZ NOT NULL
);

CREATE TABLE silences (
    id      UUID PRIMARY KEY,
    ends_at TIMESTAMPTZ NOT NULL,
    doc     TEXT NOT NULL
);
CREATE INDEX silences_by_end ON silences (ends_at);
