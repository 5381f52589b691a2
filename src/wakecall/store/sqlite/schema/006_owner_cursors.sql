-- Version 6: event cursors counted per owner, so that an owner's cursors say nothing of other
-- owners' events. Events keep the cursors they had (a position read before still works);
-- every owner's new cursors start above the last cursor given before this version (the
-- floor), then count that owner's events only, one by one. `event_owners` holds each owner's
-- last cursor (an owner without a row starts at the floor), so pruned events never make a
-- cursor be given twice.

CREATE TABLE events_owned (
    owner TEXT NOT NULL,
    cursor INTEGER NOT NULL,
    type TEXT NOT NULL,
    task_id TEXT,
    run_id TEXT,
    created_at INTEGER NOT NULL,
    payload TEXT NOT NULL
);
INSERT INTO events_owned (rowid, owner, cursor, type, task_id, run_id, created_at, payload)
    SELECT cursor, owner, cursor, type, task_id, run_id, created_at, payload FROM events
    ORDER BY cursor;
CREATE TABLE event_cursor_floor (value INTEGER NOT NULL);
INSERT INTO event_cursor_floor (value)
    SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),
               coalesce((SELECT max(cursor) FROM events), 0));
DROP TABLE events;
ALTER TABLE events_owned RENAME TO events;
CREATE UNIQUE INDEX events_owner ON events(owner, cursor);
CREATE INDEX events_created ON events(created_at);
CREATE TABLE event_owners (
    owner TEXT PRIMARY KEY,
    last_cursor INTEGER NOT NULL
) WITHOUT ROWID;
