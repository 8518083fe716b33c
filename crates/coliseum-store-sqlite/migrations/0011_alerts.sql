-- Alert rules: an admin's configuration and the evaluator's state, each the
-- JSON of the domain's types (absent: the defaults, not yet evaluated).
CREATE TABLE alert_rules (
    rule   TEXT PRIMARY KEY,
    config TEXT,
    state  TEXT
);

-- Every notification, claimed once by its key before it is sent.
CREATE TABLE alert_notifications (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    key      TEXT    NOT NULL UNIQUE,
    rule     TEXT    NOT NULL,
    kind     TEXT    NOT NULL,  -- 'firing', 'resolved', 'flapping' or 'repeat'
    route    TEXT    NOT NULL,  -- 'slack', 'email' or 'pagerduty'
    status   TEXT    NOT NULL,  -- 'sending', 'sent', 'failed' or 'silenced'
    attempts INTEGER NOT NULL DEFAULT 0,
    at_us    INTEGER NOT NULL,
    detail   TEXT    NOT NULL,
    error    TEXT
);
