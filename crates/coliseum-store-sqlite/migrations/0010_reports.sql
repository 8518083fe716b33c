-- Reports made (their files live in object storage), the links that share
-- them, and each opening of a link.

CREATE TABLE reports (
    id         TEXT    PRIMARY KEY,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    template   TEXT    NOT NULL,
    format     TEXT    NOT NULL,
    params     TEXT    NOT NULL,
    created_us INTEGER NOT NULL,
    size_bytes INTEGER,  -- NULL while being made
    watermark  INTEGER
);
-- A user's reports newest first; the month's count for the quota.
CREATE INDEX reports_user_created ON reports (user_id, created_us, id);

CREATE TABLE shares (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    -- A capability URL's secret, kept as is: its owner copies the link
    -- again from the dashboard, and whoever reads this table can read the
    -- report files as well.
    token         TEXT    NOT NULL UNIQUE,
    report_id     TEXT    NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    password_hash TEXT,
    created_us    INTEGER NOT NULL,
    expires_us    INTEGER,  -- NULL: never
    ended_us      INTEGER,
    ended_reason  TEXT,     -- 'revoked' or 'rotated'
    views         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX shares_user ON shares (user_id, id);

CREATE TABLE share_views (
    share_id     INTEGER NOT NULL REFERENCES shares (id) ON DELETE CASCADE,
    at_us        INTEGER NOT NULL,
    address_hash TEXT    NOT NULL,
    agent        TEXT    NOT NULL
);
CREATE INDEX share_views_share ON share_views (share_id, at_us);

-- An Enterprise account's own branding of its reports.
CREATE TABLE report_brands (
    user_id    INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    name       TEXT    NOT NULL,
    accent     TEXT    NOT NULL,  -- #rrggbb
    logo_png   BLOB,
    updated_us INTEGER NOT NULL
);

-- Reports made and mailed on a schedule, and every delivery attempt.
CREATE TABLE report_schedules (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id           INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    template          TEXT    NOT NULL,
    format            TEXT    NOT NULL,
    params            TEXT    NOT NULL,
    every             TEXT    NOT NULL,  -- 'week' or 'month'
    at_minute         INTEGER NOT NULL,  -- minutes after midnight UTC
    weekday           INTEGER,           -- 0 (Monday) to 6
    day               INTEGER,           -- 1 to 28
    recipients        TEXT    NOT NULL,  -- JSON array of addresses
    deliver           TEXT    NOT NULL,  -- 'attachment' or 'link'
    only_if_changed   INTEGER NOT NULL,
    created_us        INTEGER NOT NULL,
    next_us           INTEGER NOT NULL,  -- the next attempt (or a node's lease on it)
    attempts          INTEGER NOT NULL DEFAULT 0,
    pending_report_id TEXT,
    last_digest       TEXT
);
CREATE INDEX report_schedules_due ON report_schedules (next_us);
CREATE INDEX report_schedules_user ON report_schedules (user_id, id);

CREATE TABLE report_deliveries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    schedule_id INTEGER NOT NULL REFERENCES report_schedules (id) ON DELETE CASCADE,
    at_us       INTEGER NOT NULL,
    status      TEXT    NOT NULL,  -- 'sent', 'skipped', 'retrying' or 'failed'
    attempt     INTEGER NOT NULL,
    report_id   TEXT,
    detail      TEXT
);
CREATE INDEX report_deliveries_schedule ON report_deliveries (schedule_id, id);
