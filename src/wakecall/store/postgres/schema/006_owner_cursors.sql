-- Version 6: event cursors counted per owner, so that an owner's cursors say nothing of other
-- owners' events. Events keep the cursors they had (a position read before still works);
-- every owner's new cursors start above the last cursor given before this version (the
-- floor, kept in `meta`), then count that owner's events only, one by one. `event_owners`
-- holds each owner's last cursor (an owner without a row starts at the floor), so pruned
-- events never make a cursor be given twice. Appends still take the events lock, so an
-- owner's cursors commit in order.

CREATE TABLE event_owners (
    owner text PRIMARY KEY,
    last_cursor bigint NOT NULL
);
INSERT INTO meta (key, value)
    SELECT 'event_cursor_floor', greatest(
        coalesce(pg_sequence_last_value(pg_get_serial_sequence('events', 'cursor')::regclass), 0),
        coalesce((SELECT max(cursor) FROM events), 0))::text;
ALTER TABLE events ALTER COLUMN cursor DROP DEFAULT;
DROP SEQUENCE events_cursor_seq;
ALTER TABLE events DROP CONSTRAINT events_pkey;
DROP INDEX events_owner;
ALTER TABLE events ADD PRIMARY KEY (owner, cursor);
