-- Version 13: every task created counts its owner's live (active or paused) tasks against the
-- owner's limit. Through `tasks_owner` that read every task row the owner had, finished ones
-- included: 2 ms a creation at 10,000 tasks. `live_tasks` keeps each owner's count instead,
-- moved by the triggers below whatever writes the tasks (a migration that rebuilds `tasks`
-- must create them again).

CREATE TABLE live_tasks (
    owner TEXT PRIMARY KEY,
    live INTEGER NOT NULL
) WITHOUT ROWID;

INSERT INTO live_tasks (owner, live)
    SELECT owner, count(*) FROM tasks WHERE status IN ('active', 'paused') GROUP BY owner;

CREATE TRIGGER live_tasks_insert AFTER INSERT ON tasks
WHEN NEW.status IN ('active', 'paused')
BEGIN
    INSERT INTO live_tasks (owner, live) VALUES (NEW.owner, 1)
        ON CONFLICT (owner) DO UPDATE SET live = live + 1;
END;

CREATE TRIGGER live_tasks_delete AFTER DELETE ON tasks
WHEN OLD.status IN ('active', 'paused')
BEGIN
    UPDATE live_tasks SET live = live - 1 WHERE owner = OLD.owner;
END;

CREATE TRIGGER live_tasks_update AFTER UPDATE OF status, owner ON tasks
WHEN (OLD.status IN ('active', 'paused')) <> (NEW.status IN ('active', 'paused'))
    OR (OLD.owner <> NEW.owner AND NEW.status IN ('active', 'paused'))
BEGIN
    UPDATE live_tasks SET live = live - 1
        WHERE owner = OLD.owner AND OLD.status IN ('active', 'paused');
    INSERT INTO live_tasks (owner, live) SELECT NEW.owner, 1
        WHERE NEW.status IN ('active', 'paused')
        ON CONFLICT (owner) DO UPDATE SET live = live + 1;
END;
