-- The derived tables: everything here is recomputed from the log by
-- `coliseum rebuild`. Empty strings stand for "none" in key columns, so that
-- a missing city or artist is one key like any other.

-- The processor's cursor and the operator's pause, in one row.
CREATE TABLE pipeline_state (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    processed_seq INTEGER NOT NULL,
    paused        INTEGER NOT NULL
);
INSERT INTO pipeline_state (id, processed_seq, paused) VALUES (1, 0, 0);

-- KPI rollups at hour (grain 0) and day (grain 1) buckets, numbered from
-- the Unix epoch in UTC.
CREATE TABLE kpi_cells (
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
) WITHOUT ROWID;

-- Per fan, artist, UTC day, city and genre: entry counts by tier and of
-- influence entries, from which the DNA scores are computed.
CREATE TABLE fan_days (
    day       INTEGER NOT NULL,
    artist    TEXT    NOT NULL,
    fan       TEXT    NOT NULL,
    city      TEXT    NOT NULL,
    genre     TEXT    NOT NULL,
    passive   INTEGER NOT NULL,
    light     INTEGER NOT NULL,
    active    INTEGER NOT NULL,
    committed INTEGER NOT NULL,
    patron    INTEGER NOT NULL,
    influence INTEGER NOT NULL,
    PRIMARY KEY (day, artist, fan, city, genre)
) WITHOUT ROWID;

CREATE TABLE dead_letters (
    seq             INTEGER PRIMARY KEY,
    event_id        TEXT    NOT NULL,
    reason          TEXT    NOT NULL,
    attempts        INTEGER NOT NULL,
    state           TEXT    NOT NULL,  -- retrying | dead | replayed
    first_failed_us INTEGER NOT NULL,
    last_failed_us  INTEGER NOT NULL,
    next_attempt_us INTEGER
);
CREATE INDEX dead_letters_due ON dead_letters (next_attempt_us) WHERE state = 'retrying';
