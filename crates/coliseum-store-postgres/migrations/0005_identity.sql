-- Identities beyond passwords (Supabase subjects, API keys), plans bought
-- through Stripe, and the audit log.

ALTER TABLE users ADD COLUMN external_id TEXT UNIQUE;  -- Supabase `sub`

CREATE TABLE api_keys (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id    BIGINT      NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       TEXT        NOT NULL,
    key_hash   BYTEA       NOT NULL UNIQUE,  -- SHA-256 of the key; the key itself is never stored
    prefix     TEXT        NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    revoked_at TIMESTAMPTZ
);
CREATE INDEX api_keys_user ON api_keys (user_id);

-- A Stripe customer's user and the order key of the last event applied.
CREATE TABLE stripe_customers (
    customer_id   TEXT   PRIMARY KEY,
    user_id       BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    applied_order BIGINT NOT NULL DEFAULT -1
);
-- Every Stripe event seen, by id (idempotency); not `applied` while its
-- customer has no user yet.
CREATE TABLE stripe_events (
    event_id    TEXT        PRIMARY KEY,
    customer_id TEXT        NOT NULL,
    event_order BIGINT      NOT NULL,
    plan        TEXT,
    applied     BOOLEAN     NOT NULL DEFAULT false,
    received_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX stripe_events_pending ON stripe_events (customer_id, event_order) WHERE NOT applied;

CREATE TABLE audit_log (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         TIMESTAMPTZ NOT NULL,
    actor      TEXT        NOT NULL,
    action     TEXT        NOT NULL,
    subject    TEXT        NOT NULL,
    request_id TEXT        NOT NULL,
    detail     JSONB       NOT NULL
);
CREATE INDEX audit_log_at ON audit_log (at);
