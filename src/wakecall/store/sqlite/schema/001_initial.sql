-- wakecall's SQLite schema, version 1: tasks, their runs and attempts, and the event log.
-- Instants are integer microseconds since the Unix epoch (UTC), JSON is text.

CREATE TABLE tasks (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    schedule TEXT NOT NULL,
    timezone TEXT NOT NULL,
    action TEXT NOT NULL,
    retry TEXT NOT NULL,
    timeout_s REAL,
    overlap TEXT NOT NULL,
    max_queued INTEGER NOT NULL,
    catchup TEXT NOT NULL,
    catchup_window_s REAL NOT NULL,
    max_runs INTEGER,
    expires_at INTEGER,
    status TEXT NOT NULL,
    pause_note TEXT,
    callback_url TEXT,
    metadata TEXT NOT NULL,
    idempotency_key TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    next_fire_at INTEGER,
    last_fire_at INTEGER,
    run_count INTEGER NOT NULL DEFAULT 0,
    claimed_by TEXT,
    claim_expires_at INTEGER,
    end_reason TEXT,
    end_announced INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX tasks_idempotency ON tasks(owner, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX tasks_due ON tasks(next_fire_at)
    WHERE status = 'active' AND next_fire_at IS NOT NULL;
CREATE INDEX tasks_owner ON tasks(owner, id);

CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL,
    owner TEXT NOT NULL,
    trigger TEXT NOT NULL,
    scheduled_for INTEGER,
    due_at INTEGER NOT NULL,
    status TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    duration_ms INTEGER,
    output TEXT,
    error_message TEXT,
    claimed_by TEXT,
    lease_expires_at INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    counts INTEGER NOT NULL DEFAULT 1,
    UNIQUE (task_id, scheduled_for)
);
CREATE INDEX runs_queued ON runs(due_at) WHERE status = 'queued';
CREATE INDEX runs_running ON runs(lease_expires_at) WHERE status = 'running';
CREATE INDEX runs_task ON runs(task_id, id);
CREATE INDEX runs_owner ON runs(owner, id);
CREATE INDEX runs_finished ON runs(finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE attempts (
    run_id TEXT NOT NULL,
    number INTEGER NOT NULL,
    status TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    finished_at INTEGER,
    error_message TEXT,
    node TEXT,
    PRIMARY KEY (run_id, number)
) WITHOUT ROWID;

CREATE TABLE events (
    cursor INTEGER PRIMARY KEY AUTOINCREMENT,
    owner TEXT NOT NULL,
    type TEXT NOT NULL,
    task_id TEXT,
    run_id TEXT,
    created_at INTEGER NOT NULL,
    payload TEXT NOT NULL
);
CREATE INDEX events_owner ON events(owner, cursor);
CREATE INDEX events_created ON events(created_at);
