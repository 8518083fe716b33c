-- Identities beyond passwords (Supabase subjects, API keys), plans bought
-- through Stripe, and the audit log.

ALTER TABLE users ADD COLUMN external_id TEXT;  -- Supabase `sub`
CREATE UNIQUE INDEX users_external_id ON users (external_id) WHERE external_id IS NOT NULL;

CREATE TABLE api_keys (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       TEXT    NOT NULL,
    key_hash   BLOB    NOT NULL UNIQUE,  -- SHA-256 of the key; the key itself is never stored
    prefix     TEXT    NOT NULL,
    created_us INTEGER NOT NULL,
    revoked_us INTEGER
);
CREATE INDEX api_keys_user ON api_keys (user_id);

-- A Stripe customer's user and the order key of the last event applied.
CREATE TABLE stripe_customers (
    customer_id   TEXT    PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    applied_order INTEGER NOT NULL DEFAULT -1
);
-- Every Stripe event seen, by id (idempotency); `applied` = 0 while its
-- customer has no user yet.
CREATE TABLE stripe_events (
    event_id    TEXT    PRIMARY KEY,
    customer_id TEXT    NOT NULL,
    event_order INTEGER NOT NULL,
    plan        TEXT,
    applied     INTEGER NOT NULL DEFAULT 0,
    received_us INTEGER NOT NULL
);
CREATE INDEX stripe_events_pending ON stripe_events (customer_id, event_order) WHERE applied = 0;

CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at_us      INTEGER NOT NULL,
    actor      TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    request_id TEXT    NOT NULL,
    detail     TEXT    NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at_us);
