-- Version 7: finished tasks (completed or expired) are pruned some time after they ended. This
-- index finds them, oldest first, without reading the live ones.

CREATE INDEX tasks_finished ON tasks(updated_at) WHERE status IN ('completed', 'expired');
