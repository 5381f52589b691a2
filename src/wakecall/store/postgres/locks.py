"""The PostgreSQL store's advisory locks: their keys and the statements that take them.

All are transaction-level locks (released at commit or rollback), so a pooled connection
never keeps one:

* the migration lock (one per schema): nodes starting together create or upgrade the schema
  once (`_lock_migration`);
* the events lock (one per schema): transactions that append events take it just before their
  last statement, so event cursors commit in order (`_EVENTS_CTES` in `sql`, keyed by
  `_events_lock_key`);
* a lock per task: claimants of runs of a task that does not allow overlap take turns
  (`_lock_tasks`);
* a lock per flow-control key (per owner, kind and key, in the tasks' key space): claimants of
  runs with that key take turns, so the limit is judged on what every node committed.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable
from functools import lru_cache

import asyncpg

#: First key of wakecall's two-key advisory locks ("WAKE").
_LOCK_CLASS = 0x57414B45


def _lock_key(text: str) -> int:
    """A stable signed 32-bit key for a two-key advisory lock."""
    value = zlib.crc32(text.encode())
    return value - (1 << 32) if value >= 1 << 31 else value


def _events_lock_key(schema: str) -> int:
    """The second key of the events lock of `schema` (the first is `_LOCK_CLASS`)."""
    return _lock_key(f"{schema}:events")


@lru_cache(maxsize=16384)
def _task_lock_key(schema: str, task_id: str) -> int:
    """A stable signed 64-bit key for a one-key advisory lock on a task (a separate key space
    from the two-key locks)."""
    digest = hashlib.blake2b(f"{schema}:{task_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def _lock_migration(conn: asyncpg.Connection, schema: str) -> None:
    """Wait for, and take, the migration lock of `schema` (inside a transaction)."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock($1, $2)", _LOCK_CLASS, _lock_key(f"{schema}:migrate")
    )


async def _lock_tasks(
    conn: asyncpg.Connection, schema: str, task_ids: Iterable[str], names: Iterable[str] = ()
) -> None:
    """Wait for, and take, the locks of these tasks of `schema` (inside a transaction), and
    of these other `names` (flow-control keys), in key order, so two transactions taking some
    of the same locks cannot deadlock."""
    keys = sorted(
        {_task_lock_key(schema, t) for t in task_ids}
        | {_task_lock_key(schema, f"flow{n}") for n in names}
    )
    await conn.execute(
        "SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) "
        "WITH ORDINALITY AS u(k, n) ORDER BY n",
        keys,
    )
