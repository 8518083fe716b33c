-- Reports made (their files live in object storage), the links that share
-- them, and each opening of a link.

CREATE TABLE reports (
    id         TEXT        PRIMARY KEY,
    user_id    BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    template   TEXT        NOT NULL,
    format     TEXT        NOT NULL,
    params     TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    size_bytes BIGINT,  -- NULL while being made
    watermark  BIGINT
);
-- A user's reports newest first; the month's count for the quota.
CREATE INDEX reports_user_created ON reports (user_id, created_at, id);

CREATE TABLE shares (
    id            BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- A capability URL's secret, kept as is: its owner copies the link
    -- again from the dashboard, and whoever reads this table can read the
    -- report files as well.
    token         TEXT        NOT NULL UNIQUE,
    report_id     TEXT        NOT NULL REFERENCES reports (id) ON DELETE CASCADE,
    user_id       BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    password_hash TEXT,
    created_at    TIMESTAMPTZ NOT NULL,
    expires_at    TIMESTAMPTZ,  -- NULL: never
    ended_at      TIMESTAMPTZ,
    ended_reason  TEXT,         -- 'revoked' or 'rotated'
    views         BIGINT      NOT NULL DEFAULT 0
);
CREATE INDEX shares_user ON shares (user_id, id);

CREATE TABLE share_views (
    id           BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    share_id     BIGINT      NOT NULL REFERENCES shares (id) ON DELETE CASCADE,
    at           TIMESTAMPTZ NOT NULL,
    address_hash TEXT        NOT NULL,
    agent        TEXT        NOT NULL
);
CREATE INDEX share_views_share ON share_views (share_id, at);

-- An Enterprise account's own branding of its reports.
CREATE TABLE report_brands (
    user_id    BIGINT      PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    name       TEXT        NOT NULL,
    accent     TEXT        NOT NULL,  -- #rrggbb
    logo_png   BYTEA,
    updated_at TIMESTAMPTZ NOT NULL
);

-- Reports made and mailed on a schedule, and every delivery attempt.
CREATE TABLE report_schedules (
    id                BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id           BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    template          TEXT        NOT NULL,
    format            TEXT        NOT NULL,
    params            TEXT        NOT NULL,
    every             TEXT        NOT NULL,  -- 'week' or 'month'
    at_minute         INTEGER     NOT NULL,  -- minutes after midnight UTC
    weekday           INTEGER,               -- 0 (Monday) to 6
    day               INTEGER,               -- 1 to 28
    recipients        JSONB       NOT NULL,  -- array of addresses
    deliver           TEXT        NOT NULL,  -- 'attachment' or 'link'
    only_if_changed   BOOLEAN     NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    next_at           TIMESTAMPTZ NOT NULL,  -- the next attempt (or a node's lease on it)
    attempts          INTEGER     NOT NULL DEFAULT 0,
    pending_report_id TEXT,
    last_digest       TEXT
);
CREATE INDEX report_schedules_due ON report_schedules (next_at);
CREATE INDEX report_schedules_user ON report_schedules (user_id, id);

CREATE TABLE report_deliveries (
    id          BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    schedule_id BIGINT      NOT NULL REFERENCES report_schedules (id) ON DELETE CASCADE,
    at          TIMESTAMPTZ NOT NULL,
    status      TEXT        NOT NULL,  -- 'sent', 'skipped', 'retrying' or 'failed'
    attempt     INTEGER     NOT NULL,
    report_id   TEXT,
    detail      TEXT
);
CREATE INDEX report_deliveries_schedule ON report_deliveries (schedule_id, id);

-- Row-level security as for the other tables of personal data (0006):
-- one's own rows only.
ALTER TABLE reports ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON reports FOR SELECT TO coliseum_restricted USING (user_id = coliseum_acting_user());
ALTER TABLE shares ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON shares FOR SELECT TO coliseum_restricted USING (user_id = coliseum_acting_user());
ALTER TABLE share_views ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON share_views FOR SELECT TO coliseum_restricted
    USING (share_id IN (SELECT id FROM shares WHERE user_id = coliseum_acting_user()));
ALTER TABLE report_brands ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_row ON report_brands FOR SELECT TO coliseum_restricted USING (user_id = coliseum_acting_user());
ALTER TABLE report_schedules ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON report_schedules FOR SELECT TO coliseum_restricted USING (user_id = coliseum_acting_user());
ALTER TABLE report_deliveries ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON report_deliveries FOR SELECT TO coliseum_restricted
    USING (schedule_id IN (SELECT id FROM report_schedules WHERE user_id = coliseum_acting_user()));
GRANT SELECT ON reports, shares, share_views, report_brands, report_schedules, report_deliveries
    TO coliseum_restricted;
