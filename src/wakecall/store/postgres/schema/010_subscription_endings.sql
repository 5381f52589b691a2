-- Version 10: what ending a webhook subscription needs. `suspended_at` is when its delivery
-- was suspended (a delivery dead-lettered), so that one granted no expiry can be ended after
-- a while without a refresh. A delivery's own `secret` signs the `terminated` envelope queued
-- as its subscription is deleted (the subscription's secret goes with it).

ALTER TABLE event_subscriptions ADD COLUMN suspended_at timestamptz;
ALTER TABLE deliveries ADD COLUMN secret text;

-- Subscriptions suspended before the upgrade count as suspended from it.
UPDATE event_subscriptions SET suspended_at = now() WHERE NOT active;
