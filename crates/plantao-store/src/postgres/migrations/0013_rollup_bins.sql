-- A rollup row's duration histogram as one value beside its counts instead of a row per bin
-- (the same change as SQLite's 0013_rollup_bins.sql, which says why): `bins` maps a bin (see
-- rollup.rs) to its runs.
ALTER TABLE rollup_runs ADD COLUMN bins JSONB NOT NULL DEFAULT '{}';
UPDATE rollup_runs r SET bins = d.bins
FROM (SELECT pipeline, grain, bucket, status, jsonb_object_agg(bin::text, runs) AS bins
      FROM rollup_durations GROUP BY pipeline, grain, bucket, status) d
WHERE d.pipeline = r.pipeline AND d.grain = r.grain AND d.bucket = r.bucket
  AND d.status = r.status
  AND r.triggered_by = (
    SELECT MIN(o.triggered_by) FROM rollup_runs o
    WHERE o.pipeline = r.pipeline AND o.grain = r.grain AND o.bucket = r.bucket
      AND o.status = r.status);
DROP TABLE rollup_durations;
