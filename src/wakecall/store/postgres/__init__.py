"""The store for several nodes: PostgreSQL through an asyncpg pool.

Tables live in one PostgreSQL schema (`wakecall` unless told otherwise), reached through the
`search_path` of every pooled connection. `open()` creates or upgrades them under a
transaction-level advisory lock, so nodes starting together migrate once; the `meta` table holds
the schema version. Instants are `timestamptz`, JSON is `jsonb`, and event cursors count each
owner's events (`event_owners`).

Every method is one short transaction (or one statement), with batches sent as arrays through
`unnest`, so a method costs a handful of round trips however many rows it touches. The instants
the engine passes in (`now`) are the only clock the store uses. A server's engine reads time
through `OffsetClock` corrected by `clock_offset` (the database server's clock minus this
machine's, measured every few seconds), so every node's `now`, and with it every lease and fire
time, is on the database's clock.

Concurrency, method by method:

* Claims (`claim_due_tasks`, `claim_runs`, `claim_expired_runs`, `claim_deliveries`) select
  their rows `FOR UPDATE SKIP LOCKED`: two nodes never take the same row, and neither waits for
  the other. A row that another transaction holds for a moment (a task being finished, say) is
  left for the next claim.
* The overlap rule of `claim_runs` (one run per task that does not allow overlap, none while
  another is running or claimed) cannot be checked with row locks on runs alone: two nodes could
  each lock a different queued run of one task. So a claimant also takes a per-task advisory
  transaction lock for every such task (in key order, so two claimants cannot deadlock) and only
  then reads which tasks are busy, with a fresh snapshot that sees the other's committed claim.
  Task rows are not locked for this: `record_fires` holds task rows while it flags runs, and a
  claimant that locked runs first and then tasks could deadlock with it.
* Writers that touch both take task rows before run rows (`record_fires`, `finish_runs`,
  `write_tasks` deleting a task), and every write of several runs locks them in id order
  first, so writers may wait for each other but cannot deadlock. Claims skip locked rows
  instead of waiting, and the only thing `claim_runs` waits for is another claimant's per-task
  lock.
* `finish_runs` locks the tasks of the runs it finishes, so "this was the last unfinished run
  of an expired task" is decided by one transaction at a time: otherwise two nodes finishing
  the last two runs at once would each see the other's run unfinished, and `task.expired` would
  never be announced. The `end_announced` flag makes it exactly once.
* Every write after a claim checks the claimant (`claimed_by = node`) on a locked row.
  `finish_runs` of runs this object started checks it by row version instead: it locks the
  tasks and the runs, and writes the outcomes and their events in the same statement only if
  each row's `xmin` is still the one `start_due_runs` read (the run as started, claimed by this
  node; the task unchanged), so the outcomes and payloads computed from those rows are exact;
  otherwise it writes nothing and the rows are read again.

The hot paths are few statements each: `record_fires` of plain fires (no event to append) and
`finish_runs` as above are one statement; `start_due_runs` is three in one transaction
(candidates; the per-task locks; then the choice, the claim, the start and the attempts, with
each run's task). The plans of those statements are kept independent of table statistics
(see _PLANNER below).

Event cursors are counted per owner (each owner's last one is a row of `event_owners`), so an
owner's cursors say nothing of other owners' events. A cursor is taken when an event is
written, not when its transaction commits, so two concurrent writers could commit an owner's
cursors 8 and 7 in that order; a reader that already saw 8 would then never see 7. Here every
transaction that appends events first takes one transaction-level advisory lock (per schema)
and appends all its events, with the callback deliveries they create and the owners' counters,
in one statement at its very end. Event inserts are thus serialized and commit in cursor
order: a reader never skips an event. The other way out (reading only below the oldest
in-flight cursor) delays every reader behind the slowest writer and needs bookkeeping of
in-flight transactions; the lock costs one short critical section (the insert and the commit)
per event-writing transaction, taken after its row writes are done.

PostgreSQL text cannot hold the NUL character, nor `jsonb` NaN or infinities: in run output,
error messages and event payloads (written from whatever actions return) NUL is replaced by
U+FFFD and a non-finite number by null, so a result is never lost for its content; in task
fields they are refused as a `StoreError`.

The package, by what each module holds:

* `schema/NNN_*.sql`: the schema, one file per version (001 creates it with its `meta`
  table, each later one migrates to its version); `migrations`: loading them, reading a
  schema's version, creating or upgrading a schema;
* `sql`: the columns of each table, and the statements shared by several methods (the
  events' append, the claims and starts of runs, the finishes);
* `locks`: the advisory locks (migration, events, per task) and their keys;
* `rows`: records to rows and back, with the values PostgreSQL refuses made safe;
* `pending`: the events a transaction appends at its end; `started`: the runs this object
  started, as read;
* `connection`: `StoreConnection`, the pool, calls, writes and transactions, opening and
  closing, the clock offset; `hints`: NOTIFY and `watch`;
* `events`, `tasks`, `runs`, `run_leases` (claims, starts, leases, reclaims), `finishes`,
  `fires`, `deliveries` (callbacks), `pruning`, `readers` (read positions, the pruned
  horizon) and `subscriptions` (Events webhook subscriptions, Tasks handles): the store's
  methods on each;
* `store`: `PostgresStore`, which puts them together and runs `fire_and_start` in steps
  through its own methods.

The methods are mixin classes rather than modules of functions: they share the pool, the
schema's names and locks, and the runs this object started (`self._started`), and call each
other's helpers (`_append_events`, `_hint`, `_insert_run`, `_queue_dependents`, …) as they
did on one class, so every call site reads as before. Each mixin derives from the ones whose
helpers it calls (`FireMethods` from `RunFinishes`, that from `RunMethods`, then
`TaskMethods`, `EventMethods`, `Hints` and `StoreConnection`): what a file may use is what its
bases name, and the type checker holds each file to it. Names with a leading underscore are
private to the package: its modules share them, nothing outside uses them.
"""

from __future__ import annotations

from wakecall.store.postgres.migrations import SCHEMA_VERSION
from wakecall.store.postgres.store import PostgresStore

__all__ = ["SCHEMA_VERSION", "PostgresStore"]
