-- Version 4: when each owner created tasks and wakeups, for the per-owner rate limits (rows
-- older than a minute are dropped as new ones are written).

CREATE TABLE task_creations (
    owner text NOT NULL,
    kind text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE INDEX task_creations_by_owner ON task_creations (owner, kind, created_at);
