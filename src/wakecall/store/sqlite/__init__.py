"""The embedded store: one SQLite file in WAL mode.

Each store method is one transaction, run as a single function directly on the event loop's
thread. SQLite on a local file answers a batch in microseconds to a few milliseconds, which is
less than handing the work to another thread and back costs (two thread switches and a fight
for the GIL per call), and a function that never awaits can never interleave with another
coroutine's transaction. The loop never waits inside SQLite for another process: the
connection's busy timeout is zero, and a write that finds the file locked by another process
(the CLI next to a server) gives the loop back and tries again with backoff, up to
`busy_timeout` seconds. Every claim check is done inside the writing transaction.

Instants are stored as integer microseconds since the Unix epoch (UTC).

The package, by what each module holds:

* `schema/NNN_*.sql`: the schema, one file per version (001 creates it, each later one
  migrates to its version); `migrations`: loading them, the application id, migrating a file;
* `rows`: the columns of each table and the records' rows (instants, JSON);
* `connection`: `StoreConnection`, the connection, its calls and transactions, checkpoints,
  opening and closing, watching, and the events a transaction appends;
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
