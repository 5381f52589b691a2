"""A write of many tasks at once (`wakecall apply` of a large file) runs with a larger page
cache, which the store's connection gives back when the transaction ends, committed or not;
the retry policies it writes, each encoded once per distinct policy, read back as written."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from support.records import T0, make_task
from wakecall.models import RetryPolicy, retry_policy_to_json
from wakecall.store import SQLiteStore
from wakecall.store.base import NewTask

POLICIES = [
    RetryPolicy(),
    RetryPolicy(attempts=3, backoff="linear", delay=timedelta(seconds=30)),
    RetryPolicy(attempts=5, max_delay=timedelta(minutes=10), jitter=False),
    RetryPolicy(attempts=2, backoff="none", delay=timedelta(milliseconds=250)),
]


def test_a_policy_is_stored_as_pydantic_writes_it_and_equal_ones_share_the_text() -> None:
    for policy in POLICIES:
        assert retry_policy_to_json(policy) == policy.model_dump_json()
        assert RetryPolicy.model_validate_json(retry_policy_to_json(policy)) == policy
    again = RetryPolicy(attempts=3, backoff="linear", delay=timedelta(seconds=30))
    assert retry_policy_to_json(again) is retry_policy_to_json(POLICIES[1])


async def cache_size(store: SQLiteStore) -> int:
    return int(await store._call(lambda c: c.execute("PRAGMA cache_size").fetchone()[0]))


async def test_a_large_write_gives_its_page_cache_back(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "bulk.db")
    await store.open()
    try:
        before = await cache_size(store)
        tasks = [make_task(retry=POLICIES[i % len(POLICIES)]) for i in range(1_500)]
        await store.write_tasks("alice", [NewTask(t) for t in tasks], T0, dry_run=True)
        assert await cache_size(store) == before
        assert await store.list_tasks("alice", limit=10) == []
        await store.write_tasks("alice", [NewTask(t) for t in tasks], T0)
        assert await cache_size(store) == before
        stored: dict[str, RetryPolicy] = {}
        after: str | None = None
        while page := await store.list_tasks("alice", after=after, limit=500):
            stored |= {t.id: t.retry for t in page}
            after = page[-1].id
        assert stored == {t.id: t.retry for t in tasks}
    finally:
        await store.close()


async def test_the_writer_keeps_its_temporary_journals_in_memory(tmp_path: Path) -> None:
    # Each row a trigger-firing write inserts (the count of live tasks) gets a statement
    # journal; in a temporary file it cost 14 µs a row, in memory 4.
    store = SQLiteStore(tmp_path / "temp.db")
    await store.open()
    try:
        memory = 2  # PRAGMA temp_store: 0 default, 1 file, 2 memory
        assert await store._call(lambda c: c.execute("PRAGMA temp_store").fetchone()[0]) == memory
    finally:
        await store.close()
