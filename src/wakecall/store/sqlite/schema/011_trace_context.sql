-- Version 11: the W3C trace context (traceparent, tracestate) of the call that created or last
-- changed a task, the one each of its runs carries, and the one each callback delivery of a
-- run's event sends.

ALTER TABLE tasks ADD COLUMN traceparent TEXT;
ALTER TABLE tasks ADD COLUMN tracestate TEXT;
ALTER TABLE runs ADD COLUMN traceparent TEXT;
ALTER TABLE runs ADD COLUMN tracestate TEXT;
ALTER TABLE deliveries ADD COLUMN traceparent TEXT;
ALTER TABLE deliveries ADD COLUMN tracestate TEXT;
