-- Version 11: the W3C trace context (traceparent, tracestate) of the call that created or last
-- changed a task, the one each of its runs carries, and the one each callback delivery of a
-- run's event sends.

ALTER TABLE tasks ADD COLUMN traceparent text;
ALTER TABLE tasks ADD COLUMN tracestate text;
ALTER TABLE runs ADD COLUMN traceparent text;
ALTER TABLE runs ADD COLUMN tracestate text;
ALTER TABLE deliveries ADD COLUMN traceparent text;
ALTER TABLE deliveries ADD COLUMN tracestate text;
