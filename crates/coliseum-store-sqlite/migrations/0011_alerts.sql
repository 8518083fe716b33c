-- Alert rules: an admin's configuration and the evaluator's state, each the
-- JSON of the domain's types (absent: the defaults, not yet evaluated);
-- `version` grows with every write, so a stale evaluator's write is refused.
CREATE TABLE alert_rules (
    rule    TEXT PRIMARY KEY,
    config  TEXT,
    state   TEXT,
    version INTEGER NOT NULL DEFAULT 0
);

-- Every notification, claimed once by its key (in the transaction that
-- moves its rule's state) before it is sent.
CREATE TABLE alert_notifications (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    key      TEXT    NOT NULL UNIQUE,
    rule     TEXT    NOT NULL,
    kind     TEXT    NOT NULL,  -- 'firing', 'resolved', 'flapping' or 'repeat'
    route    TEXT    NOT NULL,  -- 'slack', 'email' or 'pagerduty'
    status   TEXT    NOT NULL,  -- 'sending', 'sent', 'failed' or 'silenced'
    attempts INTEGER NOT NULL DEFAULT 0,
    at_us    INTEGER NOT NULL,
    taken_us INTEGER NOT NULL,  -- when its current delivery began
    detail   TEXT    NOT NULL,
    error    TEXT
);
CREATE INDEX alert_notifications_sending ON alert_notifications (taken_us) WHERE status = 'sending';

-- Which node evaluates the rules, until when (one row).
CREATE TABLE alert_lease (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    owner       TEXT    NOT NULL,
    owner_leads BOOLEAN NOT NULL,
    until_us    INTEGER NOT NULL
);
