-- Alert rules: an admin's configuration and the evaluator's state, each the
-- JSON of the domain's types (absent: the defaults, not yet evaluated);
-- `version` grows with every write, so a stale evaluator's write is refused.
CREATE TABLE alert_rules (
    rule    TEXT PRIMARY KEY,
    config  TEXT,
    state   TEXT,
    version BIGINT NOT NULL DEFAULT 0
);

-- Every notification, claimed once by its key (in the transaction that
-- moves its rule's state) before it is sent: two nodes that owe the same
-- notification record and send it once.
CREATE TABLE alert_notifications (
    id       BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key      TEXT        NOT NULL UNIQUE,
    rule     TEXT        NOT NULL,
    kind     TEXT        NOT NULL,  -- 'firing', 'resolved', 'flapping' or 'repeat'
    route    TEXT        NOT NULL,  -- 'slack', 'email' or 'pagerduty'
    status   TEXT        NOT NULL,  -- 'sending', 'sent', 'failed' or 'silenced'
    attempts INTEGER     NOT NULL DEFAULT 0,
    at       TIMESTAMPTZ NOT NULL,
    taken_at TIMESTAMPTZ NOT NULL,  -- when its current delivery began
    detail   TEXT        NOT NULL,
    error    TEXT
);
CREATE INDEX alert_notifications_sending ON alert_notifications (taken_at) WHERE status = 'sending';

-- Which node evaluates the rules, until when (one row): the processing
-- node takes it from any other; the others only once it lapsed.
CREATE TABLE alert_lease (
    id          INTEGER     PRIMARY KEY CHECK (id = 1),
    owner       TEXT        NOT NULL,
    owner_leads BOOLEAN     NOT NULL,
    until_at    TIMESTAMPTZ NOT NULL
);

-- Operators' data, for the admin only: row-level security without a policy
-- and no grant to the restricted role (as the log's partitions, 0006).
ALTER TABLE alert_rules ENABLE ROW LEVEL SECURITY;
ALTER TABLE alert_notifications ENABLE ROW LEVEL SECURITY;
ALTER TABLE alert_lease ENABLE ROW LEVEL SECURITY;
