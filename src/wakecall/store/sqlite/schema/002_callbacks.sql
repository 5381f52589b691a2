-- Version 2: callbacks, the deliveries of events to callback URLs and their signing secrets.

CREATE TABLE deliveries (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    task_id TEXT,
    event_cursor INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    url TEXT NOT NULL,
    body TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER,
    created_at INTEGER NOT NULL,
    last_status INTEGER,
    last_error TEXT,
    delivered_at INTEGER,
    claimed_by TEXT,
    lease_expires_at INTEGER
);
CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_owner ON deliveries(owner, id);

CREATE TABLE callback_secrets (
    task_id TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    retires_at INTEGER,
    PRIMARY KEY (task_id, secret)
) WITHOUT ROWID;
