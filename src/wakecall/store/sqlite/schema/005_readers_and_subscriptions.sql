-- Version 5: where each reader left off in the event log, how far each owner's log has been
-- pruned, the MCP Events webhook subscriptions (and which deliveries are theirs), and the
-- task handles of the MCP Tasks extension.

-- The newest cursor each reader (an owner and a client identity) was given.
CREATE TABLE read_positions (
    owner TEXT NOT NULL,
    client TEXT NOT NULL,
    cursor INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (owner, client)
) WITHOUT ROWID;

-- The newest cursor of an owner's events that retention deleted: older cursors are stale.
CREATE TABLE event_horizons (
    owner TEXT PRIMARY KEY,
    pruned_through INTEGER NOT NULL
) WITHOUT ROWID;

-- Webhook subscriptions: `cursor` is how far the log was fed to the subscription,
-- `acked_through` how far every event was delivered or given up (the watermark sent),
-- `pending_delivery` the delivery in flight, if any (one at a time, in log order).
CREATE TABLE event_subscriptions (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    url TEXT NOT NULL,
    name TEXT NOT NULL,
    arguments TEXT NOT NULL,
    secret TEXT NOT NULL,
    old_secret TEXT,
    old_secret_until INTEGER,
    cursor INTEGER NOT NULL,
    acked_through INTEGER NOT NULL,
    pending_delivery TEXT,
    active INTEGER NOT NULL DEFAULT 1,
    refresh_before INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    verified_at INTEGER NOT NULL,
    last_delivery_at INTEGER,
    last_error TEXT,
    failed_since INTEGER
);
CREATE INDEX event_subscriptions_owner ON event_subscriptions(owner, url);

-- A delivery made for a webhook subscription names it, and its `webhook-id` (the event's id).
ALTER TABLE deliveries ADD COLUMN subscription_id TEXT;
ALTER TABLE deliveries ADD COLUMN message_id TEXT;
CREATE INDEX deliveries_subscription ON deliveries(subscription_id)
    WHERE subscription_id IS NOT NULL;

-- Tasks extension handles: an unguessable id for a run, scoped to its owner.
CREATE TABLE tool_tasks (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    run_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX tool_tasks_expires ON tool_tasks(expires_at);
