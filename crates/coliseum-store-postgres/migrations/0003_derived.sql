-- The derived tables: everything here is recomputed from the log by
-- `coliseum rebuild`. Empty strings stand for "none" in key columns, so that
-- a missing city or artist is one key like any other. Keys compare byte-wise
-- (COLLATE "C"): they are identifiers, and it is the cheapest comparison.

-- The processor's cursor and the operator's pause, in one row.
CREATE TABLE pipeline_state (
    id            SMALLINT PRIMARY KEY CHECK (id = 1),
    processed_seq BIGINT   NOT NULL,
    paused        BOOLEAN  NOT NULL
);
INSERT INTO pipeline_state (id, processed_seq, paused) VALUES (1, 0, false);

-- KPI rollups at hour (grain 0) and day (grain 1) buckets, numbered from
-- the Unix epoch in UTC.
CREATE TABLE kpi_cells (
    grain             SMALLINT NOT NULL,
    bucket            BIGINT   NOT NULL,
    artist            TEXT COLLATE "C" NOT NULL,
    city              TEXT COLLATE "C" NOT NULL,
    genre             TEXT COLLATE "C" NOT NULL,
    live_event        TEXT COLLATE "C" NOT NULL,
    plays             BIGINT   NOT NULL,
    votes             BIGINT   NOT NULL,
    attendance        BIGINT   NOT NULL,
    revenue_minor     BIGINT   NOT NULL,
    revenue_entries   BIGINT   NOT NULL,
    engagement_tenths BIGINT   NOT NULL,
    PRIMARY KEY (grain, bucket, artist, city, genre, live_event)
);

-- Per fan, artist, UTC day, city and genre: entry counts by tier and of
-- influence entries, from which the DNA scores are computed.
CREATE TABLE fan_days (
    day       BIGINT NOT NULL,
    artist    TEXT COLLATE "C" NOT NULL,
    fan       TEXT COLLATE "C" NOT NULL,
    city      TEXT COLLATE "C" NOT NULL,
    genre     TEXT COLLATE "C" NOT NULL,
    passive   BIGINT NOT NULL,
    light     BIGINT NOT NULL,
    active    BIGINT NOT NULL,
    committed BIGINT NOT NULL,
    patron    BIGINT NOT NULL,
    influence BIGINT NOT NULL,
    PRIMARY KEY (day, artist, fan, city, genre)
);

CREATE TABLE dead_letters (
    seq             BIGINT      PRIMARY KEY,
    event_id        TEXT        NOT NULL,
    reason          TEXT        NOT NULL,
    attempts        INTEGER     NOT NULL,
    state           TEXT        NOT NULL,  -- retrying | dead | replayed
    first_failed_at TIMESTAMPTZ NOT NULL,
    last_failed_at  TIMESTAMPTZ NOT NULL,
    next_attempt_at TIMESTAMPTZ
);
CREATE INDEX dead_letters_due ON dead_letters (next_attempt_at) WHERE state = 'retrying';
