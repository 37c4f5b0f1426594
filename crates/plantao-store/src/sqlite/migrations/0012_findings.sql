-- Lines of stages' logs that matched a [[patterns]] entry, kept (and pruned) with their run;
-- the finding itself is one JSON document.
CREATE TABLE findings (
    run_id  TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    step    TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    line    INTEGER NOT NULL,
    pattern TEXT NOT NULL,
    doc     TEXT NOT NULL,
    PRIMARY KEY (run_id, step, attempt, line, pattern)
) STRICT, WITHOUT ROWID;
