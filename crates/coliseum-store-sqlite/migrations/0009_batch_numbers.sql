-- Batches are numbered as the processor applies them (see PostgreSQL's
-- 0010). One node owns a SQLite database, so nothing follows a journal.
ALTER TABLE pipeline_state ADD COLUMN batches INTEGER NOT NULL DEFAULT 0;
