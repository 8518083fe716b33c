-- The Passport log. AUTOINCREMENT: a seq is never reused, even after
-- retention deletes the newest rows, so a cursor can never see an old number again.
CREATE TABLE passport_entries (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id      TEXT    NOT NULL UNIQUE,
    entry_type    TEXT    NOT NULL,
    recognized    INTEGER NOT NULL,
    ts_us         INTEGER NOT NULL,  -- entry timestamp, µs since the Unix epoch (UTC)
    received_us   INTEGER NOT NULL,
    user_id       TEXT,
    artist_id     TEXT,
    live_event_id TEXT,
    city          TEXT,              -- normalized key
    genre         TEXT,              -- normalized key
    envelope      TEXT    NOT NULL   -- the envelope as received
);
CREATE INDEX passport_entries_unrecognized ON passport_entries (seq) WHERE recognized = 0;

CREATE TABLE users (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    email         TEXT    NOT NULL UNIQUE,  -- lower case
    password_hash TEXT    NOT NULL,
    role          TEXT    NOT NULL,
    plan          TEXT    NOT NULL,
    created_us    INTEGER NOT NULL,
    updated_us    INTEGER NOT NULL
);
CREATE TABLE user_artists (
    user_id   INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    artist_id TEXT    NOT NULL,
    PRIMARY KEY (user_id, artist_id)
);
CREATE TABLE user_live_events (
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    live_event_id TEXT    NOT NULL,
    PRIMARY KEY (user_id, live_event_id)
);
CREATE TABLE sessions (
    token_hash BLOB    PRIMARY KEY,  -- SHA-256 of the cookie's token
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_us INTEGER NOT NULL,
    expires_us INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
