-- Version 8: backfills. A backfill run names the fire (slot) it re-runs in `scheduled_for`,
-- beside any run the schedule made for that fire, so a fire is unique among the runs the
-- schedule made and, apart, among backfill runs (a second backfill of a slot writes nothing).
-- `overlap` is the claim rule of a run that has its own (a backfill's), the task's when null.
-- SQLite cannot drop a table's UNIQUE constraint, so `runs` is copied into a new table.

CREATE TABLE runs_new (
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
    input TEXT,
    overlap TEXT
);
INSERT INTO runs_new (id, task_id, owner, trigger, scheduled_for, due_at, status, attempt,
    max_attempts, created_at, started_at, finished_at, duration_ms, output, error_message,
    claimed_by, lease_expires_at, cancel_requested, counts, input)
    SELECT id, task_id, owner, trigger, scheduled_for, due_at, status, attempt,
    max_attempts, created_at, started_at, finished_at, duration_ms, output, error_message,
    claimed_by, lease_expires_at, cancel_requested, counts, input FROM runs;
DROP TABLE runs;
ALTER TABLE runs_new RENAME TO runs;
CREATE UNIQUE INDEX runs_fire ON runs(task_id, scheduled_for) WHERE trigger <> 'backfill';
CREATE UNIQUE INDEX runs_backfill ON runs(task_id, scheduled_for) WHERE trigger = 'backfill';
CREATE INDEX runs_queued ON runs(due_at, id) WHERE status = 'queued';
CREATE INDEX runs_running ON runs(lease_expires_at) WHERE status = 'running';
CREATE INDEX runs_task ON runs(task_id, id);
CREATE INDEX runs_owner ON runs(owner, id);
CREATE INDEX runs_finished ON runs(finished_at) WHERE finished_at IS NOT NULL;
