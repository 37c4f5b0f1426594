-- A rollup row's duration histogram as one value beside its counts instead of a row per bin:
-- a week of one pipeline's daily buckets was over a thousand rows to read, now a few
-- (measured with `plantao bench api` on 1,000,000 runs: /api/metrics/history). `bins` maps a
-- bin (see rollup.rs) to its runs, as a JSON object. The bins were kept per status; they move
-- to one row of that status in the bucket (the first trigger's): histograms are only ever
-- added up, so which row holds them changes no answer.
ALTER TABLE rollup_runs ADD COLUMN bins TEXT NOT NULL DEFAULT '{}';
UPDATE rollup_runs SET bins = (
    SELECT json_group_object(d.bin, d.runs) FROM rollup_durations d
    WHERE d.pipeline = rollup_runs.pipeline AND d.grain = rollup_runs.grain
      AND d.bucket = rollup_runs.bucket AND d.status = rollup_runs.status)
WHERE triggered_by = (
    SELECT MIN(r.triggered_by) FROM rollup_runs r
    WHERE r.pipeline = rollup_runs.pipeline AND r.grain = rollup_runs.grain
      AND r.bucket = rollup_runs.bucket AND r.status = rollup_runs.status)
  AND EXISTS (
    SELECT 1 FROM rollup_durations d
    WHERE d.pipeline = rollup_runs.pipeline AND d.grain = rollup_runs.grain
      AND d.bucket = rollup_runs.bucket AND d.status = rollup_runs.status);
DROP TABLE rollup_durations;
