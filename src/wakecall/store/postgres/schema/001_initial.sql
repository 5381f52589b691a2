-- wakecall's PostgreSQL schema, version 1: tasks, their runs and attempts, and the event log.

-- The mark of a wakecall schema and its version (raised to the latest once every migration
-- has run).
CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL);
INSERT INTO meta (key, value) VALUES ('application', 'wakecall'), ('schema_version', '1');

CREATE TABLE tasks (
    id text PRIMARY KEY,
    owner text NOT NULL,
    name text NOT NULL,
    kind text NOT NULL,
    schedule jsonb NOT NULL,
    timezone text NOT NULL,
    action jsonb NOT NULL,
    retry jsonb NOT NULL,
    timeout_s double precision,
    overlap text NOT NULL,
    max_queued integer NOT NULL,
    catchup text NOT NULL,
    catchup_window_s double precision NOT NULL,
    max_runs bigint,
    expires_at timestamptz,
    status text NOT NULL,
    pause_note text,
    callback_url text,
    metadata jsonb NOT NULL,
    idempotency_key text,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    next_fire_at timestamptz,
    last_fire_at timestamptz,
    run_count bigint NOT NULL DEFAULT 0,
    claimed_by text,
    claim_expires_at timestamptz,
    end_reason text,
    end_announced boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX tasks_idempotency ON tasks (owner, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX tasks_due ON tasks (next_fire_at)
    WHERE status = 'active' AND next_fire_at IS NOT NULL;
CREATE INDEX tasks_owner ON tasks (owner, id);

CREATE TABLE runs (
    id text PRIMARY KEY,
    task_id text NOT NULL,
    owner text NOT NULL,
    trigger text NOT NULL,
    scheduled_for timestamptz,
    due_at timestamptz NOT NULL,
    status text NOT NULL,
    attempt integer NOT NULL,
    max_attempts integer NOT NULL,
    created_at timestamptz NOT NULL,
    started_at timestamptz,
    finished_at timestamptz,
    duration_ms bigint,
    output jsonb,
    error_message text,
    claimed_by text,
    lease_expires_at timestamptz,
    cancel_requested boolean NOT NULL DEFAULT false,
    counts boolean NOT NULL DEFAULT true,
    -- NULLs are distinct: manual runs (no scheduled_for) never collide.
    UNIQUE (task_id, scheduled_for)
);
CREATE INDEX runs_queued ON runs (due_at) WHERE status = 'queued';
CREATE INDEX runs_running ON runs (lease_expires_at) WHERE status = 'running';
CREATE INDEX runs_task ON runs (task_id, id);
CREATE INDEX runs_owner ON runs (owner, id);
CREATE INDEX runs_finished ON runs (finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE attempts (
    run_id text NOT NULL,
    number integer NOT NULL,
    status text NOT NULL,
    started_at timestamptz NOT NULL,
    finished_at timestamptz,
    error_message text,
    node text,
    PRIMARY KEY (run_id, number)
);

CREATE TABLE events (
    cursor bigserial PRIMARY KEY,
    owner text NOT NULL,
    type text NOT NULL,
    task_id text,
    run_id text,
    created_at timestamptz NOT NULL,
    payload jsonb NOT NULL
);
CREATE INDEX events_owner ON events (owner, cursor);
CREATE INDEX events_created ON events (created_at);
