-- Every revenue figure stays exact (PASSPORT.md): the processor refuses an
-- entry that would take the absolute revenue counted so far past what a
-- 64-bit integer holds, so no sum of counted entries can overflow. That
-- running total moves with the cursor, in the same transaction. For what
-- was counted before this migration it starts from the absolute sums of
-- the hour cells (saturated at the largest integer; a cell that already
-- overflowed fills it, so nothing more is counted until `coliseum
-- rebuild` recomputes the total, and the figures, from the log).
ALTER TABLE pipeline_state ADD COLUMN revenue_gross INTEGER NOT NULL DEFAULT 0;

-- A cell that would overflow must fail its write, not turn into a
-- floating-point number (SQLite's answer to an integer overflow in
-- `revenue_minor + excluded.revenue_minor`): a STRICT table refuses any
-- value of the wrong type. A cell made REAL before this migration is
-- brought back to an integer (saturated); `coliseum rebuild` recomputes it.
CREATE TABLE kpi_cells_strict (
    grain             INTEGER NOT NULL,
    bucket            INTEGER NOT NULL,
    artist            TEXT    NOT NULL,
    city              TEXT    NOT NULL,
    genre             TEXT    NOT NULL,
    live_event        TEXT    NOT NULL,
    plays             INTEGER NOT NULL,
    votes             INTEGER NOT NULL,
    attendance        INTEGER NOT NULL,
    revenue_minor     INTEGER NOT NULL,
    revenue_entries   INTEGER NOT NULL,
    engagement_tenths INTEGER NOT NULL,
    PRIMARY KEY (grain, bucket, artist, city, genre, live_event)
) STRICT, WITHOUT ROWID;
INSERT INTO kpi_cells_strict
SELECT grain, bucket, artist, city, genre, live_event,
       CAST(plays AS INTEGER), CAST(votes AS INTEGER), CAST(attendance AS INTEGER),
       CAST(revenue_minor AS INTEGER), CAST(revenue_entries AS INTEGER), CAST(engagement_tenths AS INTEGER)
FROM kpi_cells;
DROP TABLE kpi_cells;
ALTER TABLE kpi_cells_strict RENAME TO kpi_cells;
CREATE INDEX kpi_cells_by_live_event ON kpi_cells (live_event, grain, bucket) WHERE live_event <> '';
UPDATE pipeline_state SET revenue_gross = CAST(min(
    9223372036854775807.0,
    (SELECT total(abs(CAST(revenue_minor AS REAL))) FROM kpi_cells WHERE grain = 0)
) AS INTEGER) WHERE id = 1;
