-- The batches the processor applied, numbered, for the other nodes of a
-- cluster to apply to their own in-memory figures: every node then serves
-- the same figures as the one that processes. `batches` numbers them (and
-- is the cursor's companion: moved by the same statement). Kept an hour,
-- which is how far behind a following node may fall before it must
-- restart and load the figures afresh.
ALTER TABLE pipeline_state ADD COLUMN batches BIGINT NOT NULL DEFAULT 0;

CREATE TABLE applied_batches (
    number      BIGINT      PRIMARY KEY,
    as_of       TIMESTAMPTZ NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- The batch as JSON text: written once, read back whole, never queried.
    batch       TEXT        NOT NULL
);

-- Stored as written: compressing megabytes of JSON on every batch cost the
-- processing of a backlog a quarter of its speed, to save disk for an hour.
ALTER TABLE applied_batches ALTER COLUMN batch SET STORAGE EXTERNAL;

-- Per-artist figures: no row for any path but the engine's own (0006).
ALTER TABLE applied_batches ENABLE ROW LEVEL SECURITY;
