-- Version 13: every task created counts its owner's live (active or paused) tasks against the
-- owner's limit. Through `tasks_owner` that visited every task row of the owner, finished
-- ones included. This index holds only live tasks and only their owner, so the count is an
-- index-only scan of it.

CREATE INDEX tasks_live ON tasks (owner) WHERE status IN ('active', 'paused');
