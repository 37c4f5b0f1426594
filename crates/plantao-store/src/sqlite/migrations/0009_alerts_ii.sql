-- Alerting II. Notifications of one group (same channel, same grouping labels) are claimed
-- together and sent as one message; `notification_groups` says when each group last had one, for
-- `group_interval`. Silences are documents with their end beside them.
ALTER TABLE notifications ADD COLUMN group_key TEXT;
CREATE INDEX notifications_group ON notifications (group_key) WHERE group_key IS NOT NULL AND pending = 1;

CREATE TABLE notification_groups (
    group_key TEXT PRIMARY KEY,
    last_sent INTEGER NOT NULL
) STRICT;

CREATE TABLE silences (
    id      TEXT PRIMARY KEY,
    ends_at INTEGER NOT NULL,
    doc     TEXT NOT NULL
) STRICT;
CREATE INDEX silences_by_end ON silences (ends_at);
