-- Version 2: callbacks, the deliveries of events to callback URLs and their signing secrets.

CREATE TABLE deliveries (
    id text PRIMARY KEY,
    owner text NOT NULL,
    task_id text,
    event_cursor bigint NOT NULL,
    event_type text NOT NULL,
    url text NOT NULL,
    body text NOT NULL,
    status text NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    created_at timestamptz NOT NULL,
    last_status integer,
    last_error text,
    delivered_at timestamptz,
    claimed_by text,
    lease_expires_at timestamptz
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX deliveries_owner ON deliveries (owner, id);

CREATE TABLE callback_secrets (
    task_id text NOT NULL,
    secret text NOT NULL,
    created_at timestamptz NOT NULL,
    retires_at timestamptz,
    PRIMARY KEY (task_id, secret)
);
