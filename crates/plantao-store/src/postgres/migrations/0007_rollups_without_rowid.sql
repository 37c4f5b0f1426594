-- Schema version 7 rebuilt SQLite's rollup tables in key order (WITHOUT ROWID). PostgreSQL
-- reads a pipeline's buckets by its primary key index already: nothing to change here, and the
-- version stays the same on both backends.
SELECT 1;
