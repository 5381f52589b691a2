-- Version 12: flow control by key. A task may carry a concurrency limit and a rate limit, each
-- shared by the owner's tasks with the same key (JSON: {"key", "limit"} and
-- {"key", "limit", "period_s"}). `flow_starts` is the log of recent run starts per rate key
-- (the rolling window), read and written inside the transaction that starts runs, under the
-- key's advisory lock.

ALTER TABLE tasks ADD COLUMN concurrency jsonb;
ALTER TABLE tasks ADD COLUMN rate_limit jsonb;
CREATE TABLE flow_starts (
    owner text NOT NULL,
    key text NOT NULL,
    started_at timestamptz NOT NULL,
    run_id text NOT NULL
);
CREATE INDEX flow_starts_key ON flow_starts (owner, key, started_at);
