-- Version 5: where each reader left off in the event log, how far each owner's log has been
-- pruned, the MCP Events webhook subscriptions (and which deliveries are theirs), and the
-- task handles of the MCP Tasks extension.

-- The newest cursor each reader (an owner and a client identity) was given.
CREATE TABLE read_positions (
    owner text NOT NULL,
    client text NOT NULL,
    cursor bigint NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (owner, client)
);

-- The newest cursor of an owner's events that retention deleted: older cursors are stale.
CREATE TABLE event_horizons (
    owner text PRIMARY KEY,
    pruned_through bigint NOT NULL
);

-- Webhook subscriptions: `cursor` is how far the log was fed to the subscription,
-- `acked_through` how far every event was delivered or given up (the watermark sent),
-- `pending_delivery` the delivery in flight, if any (one at a time, in log order).
CREATE TABLE event_subscriptions (
    id text PRIMARY KEY,
    owner text NOT NULL,
    url text NOT NULL,
    name text NOT NULL,
    arguments jsonb NOT NULL,
    secret text NOT NULL,
    old_secret text,
    old_secret_until timestamptz,
    cursor bigint NOT NULL,
    acked_through bigint NOT NULL,
    pending_delivery text,
    active boolean NOT NULL DEFAULT true,
    refresh_before timestamptz,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    verified_at timestamptz NOT NULL,
    last_delivery_at timestamptz,
    last_error text,
    failed_since timestamptz
);
CREATE INDEX event_subscriptions_owner ON event_subscriptions (owner, url);

-- A delivery made for a webhook subscription names it, and its `webhook-id` (the event's id).
ALTER TABLE deliveries ADD COLUMN subscription_id text;
ALTER TABLE deliveries ADD COLUMN message_id text;
CREATE INDEX deliveries_subscription ON deliveries (subscription_id)
    WHERE subscription_id IS NOT NULL;

-- Tasks extension handles: an unguessable id for a run, scoped to its owner.
CREATE TABLE tool_tasks (
    id text PRIMARY KEY,
    owner text NOT NULL,
    run_id text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE INDEX tool_tasks_expires ON tool_tasks (expires_at);
