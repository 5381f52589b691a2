-- Version 8: backfills. A backfill run names the fire (slot) it re-runs in `scheduled_for`,
-- beside any run the schedule made for that fire, so a fire is unique among the runs the
-- schedule made and, apart, among backfill runs (a second backfill of a slot writes nothing).
-- `overlap` is the claim rule of a run that has its own (a backfill's), the task's when null.

ALTER TABLE runs ADD COLUMN overlap text;
ALTER TABLE runs DROP CONSTRAINT runs_task_id_scheduled_for_key;
CREATE UNIQUE INDEX runs_fire ON runs (task_id, scheduled_for) WHERE trigger <> 'backfill';
CREATE UNIQUE INDEX runs_backfill ON runs (task_id, scheduled_for) WHERE trigger = 'backfill';
