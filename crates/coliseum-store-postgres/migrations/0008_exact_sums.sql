-- Every revenue figure stays exact (PASSPORT.md): the processor refuses an
-- entry that would take the absolute revenue counted so far past what a
-- 64-bit integer holds, so no sum of counted entries can overflow. That
-- running total moves with the cursor, in the same transaction. For what
-- was counted before this migration it starts from the absolute sums of
-- the hour cells (saturated at the largest integer, so that nothing more is
-- counted until `coliseum rebuild` recomputes the total from the log). A
-- BIGINT column already refuses an overflowing write.
ALTER TABLE pipeline_state ADD COLUMN revenue_gross BIGINT NOT NULL DEFAULT 0;
UPDATE pipeline_state SET revenue_gross = LEAST(
    9223372036854775807,
    (SELECT COALESCE(SUM(ABS(revenue_minor::numeric)), 0) FROM kpi_cells WHERE grain = 0)
)::bigint WHERE id = 1;
