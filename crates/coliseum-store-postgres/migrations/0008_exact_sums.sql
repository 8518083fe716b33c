-- Every revenue figure stays exact (PASSPORT.md): the processor refuses an
-- entry that would take the absolute revenue counted so far past what a
-- 64-bit integer holds, so no sum of counted entries can overflow. That
-- running total moves with the cursor, in the same transaction. It starts
-- at 0 here; `coliseum rebuild` recomputes it from the log. (A BIGINT
-- column already refuses an overflowing write.)
ALTER TABLE pipeline_state ADD COLUMN revenue_gross BIGINT NOT NULL DEFAULT 0;
