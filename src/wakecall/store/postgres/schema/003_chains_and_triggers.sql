-- Version 3: chains (a task that depends on another), triggers and conditions, the input of
-- a run, the trigger events already seen, and the queue's index in claim order.

ALTER TABLE tasks ADD COLUMN depends_on text;
ALTER TABLE tasks ADD COLUMN trigger jsonb;
ALTER TABLE tasks ADD COLUMN condition jsonb;
CREATE INDEX tasks_depends_on ON tasks (depends_on) WHERE depends_on IS NOT NULL;
ALTER TABLE runs ADD COLUMN input jsonb;
CREATE TABLE trigger_events (
    task_id text NOT NULL,
    event_id text NOT NULL,
    run_id text NOT NULL,
    received_at timestamptz NOT NULL,
    PRIMARY KEY (task_id, event_id)
);
CREATE INDEX trigger_events_received ON trigger_events (received_at);
-- Claims take queued runs in (due_at, id) order: without the id, a burst of runs due at
-- one instant is sorted whole on every claim.
DROP INDEX runs_queued;
CREATE INDEX runs_queued ON runs (due_at, id) WHERE status = 'queued';
