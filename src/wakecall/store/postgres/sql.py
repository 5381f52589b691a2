"""The PostgreSQL store's SQL texts: the columns of each table, and the statements (or parts of
statements) shared by several methods or too long to read inside one."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_TASK_COLUMNS = (
    "id, owner, name, kind, schedule, timezone, action, retry, timeout_s, overlap, max_queued, "
    "catchup, catchup_window_s, max_runs, expires_at, status, pause_note, callback_url, "
    "metadata, idempotency_key, created_at, updated_at, next_fire_at, last_fire_at, run_count, "
    "claimed_by, claim_expires_at, end_reason, depends_on, trigger, condition, "
    "pause_after_failures, failure_streak, traceparent, tracestate, concurrency, rate_limit"
)
_RUN_COLUMNS = (
    "id, task_id, owner, trigger, scheduled_for, due_at, status, attempt, max_attempts, "
    "created_at, started_at, finished_at, duration_ms, output, error_message, claimed_by, "
    "lease_expires_at, cancel_requested, input, traceparent, tracestate"
)
_EVENT_COLUMNS = "cursor, owner, type, task_id, run_id, created_at, payload"
_DELIVERY_COLUMNS = (
    "id, owner, task_id, event_cursor, event_type, url, body, status, attempts, "
    "next_attempt_at, created_at, last_status, last_error, delivered_at, claimed_by, traceparent, "
    "tracestate"
)
_UNFINISHED = "status IN ('queued', 'running')"
_RUN_WIDTH = len(_RUN_COLUMNS.split(","))


def _cols(columns: str) -> list[str]:
    return [c.strip() for c in columns.split(",")]


# _PLANNER: the plans of the store's statements must not hinge on table statistics. The
# tables change faster than autovacuum analyzes them (a burst queues thousands of runs within
# a second), and asyncpg prepares each statement once per connection, so PostgreSQL keeps the
# generic plan it made while a table was nearly empty. Measured on such plans: every write of
# finished runs read all of `runs` and `attempts` (a sequential scan each, O(n) per batch); a
# claim read the whole queue through a bitmap of `runs_queued` and sorted it to take 256 runs;
# and, taking `status = 'queued'` to match a few rows, a lookup of one task's runs scanned
# that partial index in full. Every statement here is meant to be served by an index (by
# primary key, or in key order for the claims), so pooled connections run with sequential and
# bitmap scans off: the planner then uses an index wherever one applies, however small or
# stale it believes the table. Lookups of a task's, or of a list of runs', unfinished runs
# say `status IN ('queued', 'running')`, which no partial index matches, rather than one
# status; per-task probes are written as `LATERAL (… LIMIT 1)`, which is never turned into a
# join over the whole table.


def _shift(sql: str, by: int) -> str:
    """`sql` with its parameters renumbered from $1+`by` (to follow another statement's)."""
    return re.sub(r"\$(\d+)", lambda m: f"${int(m.group(1)) + by}", sql)


#: The runs `ins` inserted that count toward `max_runs`, as one object {task id: how many}:
#: looked up by key for each task moved on. (A join of the two, both of unknown size to the
#: planner, is a nested loop: 250,000 comparisons for 500 tasks.)
_COUNTED = (
    "  SELECT coalesce(jsonb_object_agg(task_id, n), '{}') AS n FROM ("
    "    SELECT task_id, count(*) AS n FROM ins WHERE counts GROUP BY task_id) c"
)


def _newest_first(
    columns: str, table: str, filters: Mapping[str, Any], before: str | None, limit: int
) -> tuple[str, list[Any]]:
    """A page query: rows whose columns equal every non-None filter, with id < `before`,
    newest (highest id) first."""
    args: list[Any] = []
    where = []
    for column, value in filters.items():
        if value is not None:
            args.append(value)
            where.append(f"{column} = ${len(args)}")
    if before is not None:
        args.append(before)
        where.append(f"id < ${len(args)}")
    sql = f"SELECT {columns} FROM {table}"
    if where:
        sql += " WHERE " + " AND ".join(where)
    args.append(limit)
    return sql + f" ORDER BY id DESC LIMIT ${len(args)}", args


#: The events of `_append_events` as CTEs after a statement's own, with `_events_args` as
#: $1..$16: the events lock, the events ($3 of them), then each owner's cursors counted on
#: from its last one in `event_owners` (from the floor for an owner new to it), the
#: deliveries (with their trace context, $15 and $16), the hint and the events; `s` holds
#: each event with its cursor (`n`: its place).
#: The lock is taken when {guard} (a FROM … WHERE) lets it.
_EVENTS_CTES = (
    "l AS MATERIALIZED (SELECT pg_advisory_xact_lock($1, $2){guard}), "
    "u AS (SELECT * FROM unnest($4::text[], $5::text[], $6::text[], $7::text[],"
    "  $8::timestamptz[], $9::text[], $10::text[], $11::text[], $12::text[], $15::text[],"
    "  $16::text[])"
    "  WITH ORDINALITY AS u(owner, type, task_id, run_id, created_at, payload,"
    "  delivery_id, url, body, traceparent, tracestate, n) LIMIT $3), "
    "k AS MATERIALIZED (SELECT u.owner, count(*) AS k FROM u, l GROUP BY u.owner), "
    "o AS MATERIALIZED ("
    "  INSERT INTO event_owners AS e (owner, last_cursor)"
    "  SELECT k.owner, coalesce((SELECT value::bigint FROM meta"
    "    WHERE key = 'event_cursor_floor'), 0) + k.k FROM k ORDER BY k.owner"
    "  ON CONFLICT (owner) DO UPDATE"
    "  SET last_cursor = e.last_cursor + (SELECT k.k FROM k WHERE k.owner = e.owner)"
    "  RETURNING e.owner, e.last_cursor"
    "), "
    # Each event with its cursor, in one pass (no join back on `n`: a generic plan of a
    # join of two CTEs of unknown size can be a nested loop over both, see _PLANNER).
    "s AS MATERIALIZED (SELECT u.*, o.last_cursor"
    "  - count(*) OVER (PARTITION BY u.owner)"
    "  + row_number() OVER (PARTITION BY u.owner ORDER BY u.n) AS cursor"
    "  FROM u JOIN o ON o.owner = u.owner), "
    "delivered AS ("
    "  INSERT INTO deliveries (id, owner, task_id, event_cursor, event_type, url, body,"
    "    status, attempts, next_attempt_at, created_at, traceparent, tracestate)"
    "  SELECT s.delivery_id, s.owner, s.task_id, s.cursor, s.type, s.url, s.body,"
    "    'pending', 0, s.created_at, s.created_at, s.traceparent, s.tracestate"
    "  FROM s WHERE s.delivery_id IS NOT NULL"
    "), "
    "hint AS MATERIALIZED (SELECT pg_notify($13, $14) FROM l), "
    "ev AS ("
    "  INSERT INTO events (cursor, owner, type, task_id, run_id, created_at, payload)"
    "  SELECT s.cursor, s.owner, s.type, s.task_id, s.run_id, s.created_at,"
    "  s.payload::jsonb FROM s CROSS JOIN hint"
    ")"
)
_APPEND_EVENTS_SQL = "WITH " + _EVENTS_CTES.format(guard="") + " SELECT cursor FROM s ORDER BY n"

#: Of the candidates ($5 ids, $6 task ids, $7 whether the task is exclusive, in due order),
#: the first run of each exclusive task that is not busy (none of the tasks in $8 with a
#: run running or claimed) and every run of the others, at most $4, claimed for $2 until
#: $3. {start} sets them running at $1 and records their attempts.
_CHOOSE_AND_CLAIM = (
    "WITH cand AS ("
    "  SELECT * FROM unnest($5::text[], $6::text[], $7::bool[]) WITH ORDINALITY"
    "    AS u(id, task_id, excl, n)"
    "), busy AS ("
    # A probe of `runs_task` per task (a LATERAL … LIMIT is never turned into a scan
    # of the whole table).
    "  SELECT x.task_id FROM unnest($8::text[]) AS x(task_id), LATERAL ("
    "    SELECT FROM runs r"
    f"    WHERE r.task_id = x.task_id AND r.{_UNFINISHED} AND (r.status = 'running'"
    "    OR (r.claimed_by IS NOT NULL AND r.lease_expires_at >= $1)) LIMIT 1) b"
    "), chosen AS ("
    "  SELECT id, n FROM ("
    "    SELECT id, n, row_number() OVER (PARTITION BY"
    "      CASE WHEN excl THEN task_id ELSE id END ORDER BY n) AS k"
    "    FROM cand WHERE NOT (excl AND task_id IN (SELECT task_id FROM busy))"
    "  ) ranked WHERE k = 1 ORDER BY n LIMIT $4"
    "), claimed AS ("
    "  UPDATE runs r SET claimed_by = $2, lease_expires_at = $3{start}"
    "  FROM chosen WHERE r.id = chosen.id"
    f"  RETURNING {', '.join('r.' + c for c in _cols(_RUN_COLUMNS))}, chosen.n, r.xmin"
    "){recorded} "
)
_CLAIM_SQL = (
    _CHOOSE_AND_CLAIM.format(start="", recorded="")
    + f"SELECT {_RUN_COLUMNS} FROM claimed ORDER BY n"
)
_START_DUE_SQL = _CHOOSE_AND_CLAIM.format(
    start=(
        ", status = 'running', attempt = r.attempt + 1, started_at = coalesce(r.started_at, $1)"
    ),
    recorded=(
        ", recorded AS ("
        "  INSERT INTO attempts (run_id, number, status, started_at, node)"
        "  SELECT id, attempt, 'running', $1, $2 FROM claimed"
        "  ON CONFLICT (run_id, number) DO UPDATE SET status = 'running',"
        "    started_at = excluded.started_at, finished_at = NULL, error_message = NULL,"
        "    node = excluded.node"
        ")"
    ),
) + (
    f"SELECT {', '.join('c.' + c for c in _cols(_RUN_COLUMNS))}, "
    f"{', '.join('t.' + c for c in _cols(_TASK_COLUMNS))}, c.xmin::text, t.xmin::text "
    "FROM claimed c JOIN tasks t ON t.id = c.task_id ORDER BY c.n"
)

#: Start the next attempt of runs claimed by $2 ($3: their ids) at $1; the running rows.
_START_SQL = (
    "WITH l AS ("
    "  SELECT id, status FROM runs"
    f"  WHERE id = ANY($3::text[]) AND {_UNFINISHED} AND claimed_by = $2"
    "  ORDER BY id FOR UPDATE"
    "), started AS ("
    "  UPDATE runs r SET status = 'running', attempt = r.attempt + 1,"
    "    started_at = coalesce(r.started_at, $1)"
    "  FROM l WHERE r.id = l.id AND l.status = 'queued'"
    f"  RETURNING {', '.join('r.' + c for c in _cols(_RUN_COLUMNS))}"
    "), live AS ("
    "  SELECT * FROM started UNION ALL"
    f"  SELECT {_RUN_COLUMNS} FROM runs"
    "  WHERE claimed_by = $2 AND status = 'running' AND id = ANY($3::text[])"
    "), recorded AS ("
    "  INSERT INTO attempts (run_id, number, status, started_at, node)"
    "  SELECT id, attempt, 'running', $1, $2 FROM live"
    "  ON CONFLICT (run_id, number) DO UPDATE SET status = 'running',"
    "    started_at = excluded.started_at, finished_at = NULL, error_message = NULL,"
    "    node = excluded.node"
    ") "
    "SELECT * FROM live"
)

#: The runs of $1 (`_RUN_COLUMNS`, then nulls) and their tasks (nulls, `_TASK_COLUMNS`,
#: whether an active task depends on it), all locked: tasks first, then runs (the
#: runs' lock waits on the count of the tasks'), the order every writer locks them in.
_FINISH_LOCK_SQL = (
    "WITH t AS MATERIALIZED ("
    f"  SELECT {_TASK_COLUMNS} FROM tasks"
    "  WHERE id IN (SELECT task_id FROM runs WHERE id = ANY($1::text[]))"
    "  ORDER BY id FOR UPDATE"
    "), r AS MATERIALIZED ("
    f"  SELECT {_RUN_COLUMNS} FROM runs"
    "  WHERE id = ANY($1::text[]) AND (SELECT count(*) FROM t) >= 0"
    "  ORDER BY id FOR UPDATE"
    ") "
    f"SELECT r.*, {', '.join('(NULL::tasks).' + c for c in _cols(_TASK_COLUMNS))},"
    " NULL::boolean FROM r "
    "UNION ALL "
    f"SELECT {', '.join('(NULL::runs).' + c for c in _cols(_RUN_COLUMNS))}, t.*,"
    " d.found IS NOT NULL FROM t LEFT JOIN LATERAL ("
    "  SELECT true AS found FROM tasks d WHERE d.depends_on = t.id AND d.status = 'active'"
    "  LIMIT 1) d ON true"
)

#: The failure streaks finished runs changed ($1 task ids, $2 streaks as JSON or null), with
#: the pauses they caused ($3 notes, $4 instants; null where none).
_STREAKS_SQL = (
    "UPDATE tasks t SET failure_streak = u.streak::jsonb,"
    "  status = CASE WHEN u.at IS NULL THEN t.status ELSE 'paused' END,"
    "  pause_note = CASE WHEN u.at IS NULL THEN t.pause_note ELSE u.note END,"
    "  next_fire_at = CASE WHEN u.at IS NULL THEN t.next_fire_at END,"
    "  updated_at = coalesce(u.at, t.updated_at)"
    "  FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[])"
    "    AS u(id, streak, note, at)"
    "  WHERE t.id = ANY($1::text[]) AND t.id = u.id"
)

#: Close the attempts and write the runs (queued again or final), with `_outcome_args`
#: as $1..$10, where {guard} (a condition) holds.
_OUTCOME_CTES = (
    "closed AS ("
    "  UPDATE attempts a SET status = u.status, finished_at = u.finished_at,"
    "    error_message = u.error_message"
    "  FROM unnest($1::text[], $2::int[], $3::text[], $4::timestamptz[], $5::text[])"
    "    AS u(run_id, number, status, finished_at, error_message)"
    # The ANY reads the attempts by primary key whatever the statistics (see _PLANNER).
    "  WHERE a.run_id = ANY($1::text[]) AND a.run_id = u.run_id AND a.number = u.number"
    "{guard}"
    "), finished AS ("
    "  UPDATE runs r SET status = u.status, due_at = coalesce(u.due_at, r.due_at),"
    "    finished_at = CASE WHEN u.final THEN u.finished_at ELSE r.finished_at END,"
    "    duration_ms = CASE WHEN u.final THEN u.duration_ms ELSE r.duration_ms END,"
    "    output = u.output::jsonb, error_message = u.error_message,"
    "    claimed_by = NULL, lease_expires_at = NULL"
    "  FROM unnest($1::text[], $6::text[], $7::timestamptz[], $4::timestamptz[],"
    "    $8::bigint[], $9::text[], $5::text[], $10::bool[])"
    "    AS u(id, status, due_at, finished_at, duration_ms, output, error_message, final)"
    "  WHERE r.id = u.id{guard}"
    ")"
)
#: `finish_runs` after reading the rows: the outcomes, then the events.
_FINISH_SQL = (
    "WITH "
    + _OUTCOME_CTES.format(guard="")
    + ", "
    + _shift(_EVENTS_CTES.format(guard=""), 10)
    + " SELECT cursor FROM s ORDER BY n"
)
#: `finish_runs` of runs this object started, in one statement (see `_finish_started`):
#: the tasks ($27) then the runs ($29) locked, in the order every writer takes them;
#: both as read when started ($28, $30: sorted 'id:xmin'), and no active task depends
#: on the tasks of the runs that succeeded ($31)? Only then the outcomes and the
#: events are written.
_FINISH_STARTED_SQL = (
    "WITH locked_tasks AS MATERIALIZED ("
    "  SELECT id, xmin FROM tasks WHERE id = ANY($27::text[]) ORDER BY id FOR UPDATE"
    "), locked_runs AS MATERIALIZED ("
    "  SELECT id, xmin FROM runs"
    "  WHERE id = ANY($29::text[]) AND (SELECT count(*) FROM locked_tasks) >= 0"
    "  ORDER BY id FOR UPDATE"
    "), ok AS MATERIALIZED ("
    "  SELECT (SELECT coalesce(array_agg(v ORDER BY v COLLATE \"C\"), '{{}}')"
    "    FROM (SELECT id || ':' || xmin AS v FROM locked_tasks) x) = $28::text[]"
    "  AND (SELECT coalesce(array_agg(v ORDER BY v COLLATE \"C\"), '{{}}')"
    "    FROM (SELECT id || ':' || xmin AS v FROM locked_runs) x) = $30::text[]"
    "  AND NOT EXISTS (SELECT FROM tasks d"
    "    WHERE d.depends_on = ANY($31::text[]) AND d.status = 'active') AS ok"
    "), "
    + _OUTCOME_CTES.format(guard=" AND (SELECT ok FROM ok)")
    + ", "
    + _shift(_EVENTS_CTES.format(guard=" FROM ok WHERE ok.ok"), 10)
    + " SELECT (SELECT ok FROM ok), (SELECT coalesce(array_agg(cursor ORDER BY n), '{}') FROM s)"
).replace("{{}}", "{}")
