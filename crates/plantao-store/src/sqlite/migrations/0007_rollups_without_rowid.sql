-- The rollup tables kept in their primary key's order (WITHOUT ROWID): a pipeline's week of
-- buckets is a few neighbouring pages instead of a lookup per row through a separate key
-- index (measured with `plantao bench api` on 1,000,000 runs: /api/metrics/history).
CREATE TABLE rollup_runs_new (
    pipeline        TEXT NOT NULL,
    grain           TEXT NOT NULL,
    bucket          INTEGER NOT NULL,
    status          TEXT NOT NULL,
    triggered_by    TEXT NOT NULL,
    runs            INTEGER NOT NULL,
    timed_runs      INTEGER NOT NULL,
    duration_ms_sum INTEGER NOT NULL,
    duration_ms_max INTEGER,
    cpu_ms          INTEGER NOT NULL,
    PRIMARY KEY (pipeline, grain, bucket, status, triggered_by)
) STRICT, WITHOUT ROWID;
INSERT INTO rollup_runs_new SELECT pipeline, grain, bucket, status, triggered_by, runs,
    timed_runs, duration_ms_sum, duration_ms_max, cpu_ms FROM rollup_runs;
DROP TABLE rollup_runs;
ALTER TABLE rollup_runs_new RENAME TO rollup_runs;

CREATE TABLE rollup_durations_new (
    pipeline TEXT NOT NULL,
    grain    TEXT NOT NULL,
    bucket   INTEGER NOT NULL,
    status   TEXT NOT NULL,
    bin      INTEGER NOT NULL,
    runs     INTEGER NOT NULL,
    PRIMARY KEY (pipeline, grain, bucket, status, bin)
) STRICT, WITHOUT ROWID;
INSERT INTO rollup_durations_new SELECT pipeline, grain, bucket, status, bin, runs
    FROM rollup_durations;
DROP TABLE rollup_durations;
ALTER TABLE rollup_durations_new RENAME TO rollup_durations;

CREATE TABLE rollup_counters_new (
    pipeline TEXT NOT NULL,
    grain    TEXT NOT NULL,
    bucket   INTEGER NOT NULL,
    step     TEXT NOT NULL,
    name     TEXT NOT NULL,
    sum      REAL NOT NULL,
    runs     INTEGER NOT NULL,
    PRIMARY KEY (pipeline, grain, bucket, step, name)
) STRICT, WITHOUT ROWID;
INSERT INTO rollup_counters_new SELECT pipeline, grain, bucket, step, name, sum, runs
    FROM rollup_counters;
DROP TABLE rollup_counters;
ALTER TABLE rollup_counters_new RENAME TO rollup_counters;
