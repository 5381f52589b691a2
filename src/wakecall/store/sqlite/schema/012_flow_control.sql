-- Version 12: flow control by key. A task may carry a concurrency limit and a rate limit, each
-- shared by the owner's tasks with the same key (JSON: {"key", "limit"} and
-- {"key", "limit", "period_s"}). `flow_starts` is the log of recent run starts per rate key
-- (the rolling window), read and written inside the transaction that starts runs.

ALTER TABLE tasks ADD COLUMN concurrency TEXT;
ALTER TABLE tasks ADD COLUMN rate_limit TEXT;
CREATE TABLE flow_starts (
    owner TEXT NOT NULL,
    key TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    run_id TEXT NOT NULL
);
CREATE INDEX flow_starts_key ON flow_starts(owner, key, started_at);
