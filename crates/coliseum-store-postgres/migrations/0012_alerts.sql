-- Alert rules: an admin's configuration and the evaluator's state, each the
-- JSON of the domain's types (absent: the defaults, not yet evaluated).
CREATE TABLE alert_rules (
    rule   TEXT PRIMARY KEY,
    config TEXT,
    state  TEXT
);

-- Every notification, claimed once by its key before it is sent: two nodes
-- that owe the same notification record (and send) it once.
CREATE TABLE alert_notifications (
    id       BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key      TEXT        NOT NULL UNIQUE,
    rule     TEXT        NOT NULL,
    kind     TEXT        NOT NULL,  -- 'firing', 'resolved', 'flapping' or 'repeat'
    route    TEXT        NOT NULL,  -- 'slack', 'email' or 'pagerduty'
    status   TEXT        NOT NULL,  -- 'sending', 'sent', 'failed' or 'silenced'
    attempts INTEGER     NOT NULL DEFAULT 0,
    at       TIMESTAMPTZ NOT NULL,
    detail   TEXT        NOT NULL,
    error    TEXT
);

-- Operators' data, for the admin only: row-level security without a policy
-- and no grant to the restricted role (as the log's partitions, 0006).
ALTER TABLE alert_rules ENABLE ROW LEVEL SECURITY;
ALTER TABLE alert_notifications ENABLE ROW LEVEL SECURITY;
