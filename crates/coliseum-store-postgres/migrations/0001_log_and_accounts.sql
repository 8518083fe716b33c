-- The Passport log, range-partitioned by month on the entry's timestamp so
-- that retention drops whole partitions. Partitions are created ahead by
-- coliseum_ensure_month(); there is deliberately no default partition (a
-- default partition would make every later CREATE PARTITION scan it).
CREATE SEQUENCE passport_seq AS BIGINT;

CREATE TABLE passport_entries (
    seq           BIGINT      NOT NULL,
    event_id      TEXT        NOT NULL,
    entry_type    TEXT        NOT NULL,
    recognized    BOOLEAN     NOT NULL,
    ts            TIMESTAMPTZ NOT NULL,
    received_at   TIMESTAMPTZ NOT NULL,
    user_id       TEXT,
    artist_id     TEXT,
    live_event_id TEXT,
    city          TEXT,        -- normalized key
    genre         TEXT,        -- normalized key
    envelope      TEXT        NOT NULL,  -- the envelope as received
    PRIMARY KEY (seq, ts)
) PARTITION BY RANGE (ts);

CREATE INDEX passport_entries_unrecognized ON passport_entries (seq) WHERE NOT recognized;

-- A unique index on a partitioned table must include the partition key, so
-- idempotency lives in this unpartitioned table, written in the same
-- transaction as the log. `month` lets retention prune it with the partition.
-- COLLATE "C": ids compare byte by byte, which is what an id means and is
-- several times cheaper than a linguistic collation on every index probe.
CREATE TABLE passport_event_ids (
    event_id TEXT COLLATE "C" PRIMARY KEY,
    month    DATE NOT NULL
);
CREATE INDEX passport_event_ids_month ON passport_event_ids (month);

CREATE FUNCTION coliseum_ensure_month(month_start DATE) RETURNS VOID
LANGUAGE plpgsql AS $$
DECLARE
    first_day DATE := date_trunc('month', month_start)::DATE;
BEGIN
    EXECUTE format(
        'CREATE TABLE IF NOT EXISTS %I PARTITION OF passport_entries FOR VALUES FROM (%L) TO (%L)',
        'passport_entries_' || to_char(first_day, 'YYYY_MM'),
        first_day::TEXT || ' 00:00:00+00',
        (first_day + INTERVAL '1 month')::DATE::TEXT || ' 00:00:00+00');
EXCEPTION
    -- Another node created it at the same moment.
    WHEN duplicate_table OR unique_violation THEN NULL;
END;
$$;

CREATE TABLE users (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email         TEXT        NOT NULL UNIQUE,  -- lower case
    password_hash TEXT        NOT NULL,
    role          TEXT        NOT NULL,
    plan          TEXT        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL
);
CREATE TABLE user_artists (
    user_id   BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    artist_id TEXT   NOT NULL,
    PRIMARY KEY (user_id, artist_id)
);
CREATE TABLE user_live_events (
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    live_event_id TEXT   NOT NULL,
    PRIMARY KEY (user_id, live_event_id)
);
CREATE TABLE sessions (
    token_hash BYTEA       PRIMARY KEY,  -- SHA-256 of the cookie's token
    user_id    BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
