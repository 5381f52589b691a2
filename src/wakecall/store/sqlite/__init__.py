"""The embedded store: one SQLite file in WAL mode.

Each store method is one transaction (or a few, see below), run as a single function on the
store's own thread (`connection.StoreThread`), which owns the connection: the event loop only
waits for the answer, so tool calls, timers, lease renewals and pushes go on while SQLite
works. A function runs whole once handed over and never awaits, so two transactions never
interleave. Calls run one after the other, in the order they came: a call waits for at most
the one under way, so batches are sized to end within a few milliseconds (`budget`): the
fires of a pass, finished runs in chunks, the prune in slices. Reads go to a second
connection on a thread of its own (WAL readers take no lock): they never wait for the
engine's passes, only for the other writes handed over before them, so a task created and
then listed is listed. A write that finds the file
locked by another process (the CLI next to a server) is tried again after a pause, up to
`busy_timeout` seconds, never inside SQLite. Every claim check is done inside the writing
transaction.

Measured against aiosqlite (one thread hop per statement) and slicing the work on the loop's
thread, see `benchmarks/RESULTS.md`.

Instants are stored as integer microseconds since the Unix epoch (UTC).

The package, by what each module holds:

* `schema/NNN_*.sql`: the schema, one file per version (001 creates it, each later one
  migrates to its version); `migrations`: loading them, the application id, migrating a file;
* `rows`: the columns of each table and the records' rows (instants, JSON);
* `connection`: `StoreThread` and `StoreConnection`, the connection, its calls and
  transactions, checkpoints, opening and closing, watching, and the events a transaction
  appends; `budget`: the size of a batch;
* `tasks`, `runs`, `run_leases` (claims, starts, leases, reclaims), `finishes`, `fires`,
  `events`, `deliveries` (callbacks), `pruning`, `readers` (read positions, the pruned
  horizon) and `subscriptions` (Events webhook subscriptions, Tasks handles): the store's
  methods on each;
* `store`: `SQLiteStore`, which puts them together.

The methods are mixin classes rather than modules of functions: they share the connection
and the running transaction's state (`self._conn`, the events it appends), and call each
other's helpers (`_task_row`, `_append_event`, `_choose_runs`, …) as they did on one class,
so every call site reads as before. Each mixin derives from the ones whose helpers it calls
(`FireMethods` from `RunLeases` and `RunFinishes`, those from `RunMethods`, that from
`TaskMethods`, every one from `StoreConnection`): what a file may use is what its bases
name, and the type checker holds each file to it. Names with a leading underscore are
private to the package: its modules share them, nothing outside uses them.
"""

from __future__ import annotations

from wakecall.store.sqlite.migrations import APPLICATION_ID, SCHEMA_VERSION
from wakecall.store.sqlite.store import SQLiteStore

__all__ = ["APPLICATION_ID", "SCHEMA_VERSION", "SQLiteStore"]
