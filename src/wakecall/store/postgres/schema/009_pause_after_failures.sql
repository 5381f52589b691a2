-- Version 9: a task may be paused after a number of failed runs in a row
-- (pause_after_failures, NULL for never). The task keeps the ids of the runs that failed in a
-- row since its last success (failure_streak: a JSON array, oldest first, NULL when empty),
-- so that finishing a run judges the streak from the task as read.

ALTER TABLE tasks ADD COLUMN pause_after_failures integer;
ALTER TABLE tasks ADD COLUMN failure_streak jsonb;
