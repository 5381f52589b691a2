"""Event cursors were one sequence across owners: the gaps in an owner's own cursors counted
the events of every other owner. Each owner's cursors now count its own events only, on both
stores, and keep their promises: strictly increasing, every later event read after a cursor."""

from __future__ import annotations

from support.records import T0, make_task
from wakecall.models import EventType
from wakecall.store import NewEvent, Store
from wakecall.store.base import NewTask


async def test_an_owners_cursors_have_no_gaps_for_other_owners_events(store: Store) -> None:
    alice, bob = make_task("alice"), make_task("bob")
    for task in (alice, bob):
        await store.write_tasks(task.owner, [NewTask(task)], T0)
    seen: dict[str, list[int]] = {"alice": [], "bob": []}
    # Bob's busy day between each of alice's events.
    for round_ in range(3):
        (mine,) = await store.append_events(T0, [NewEvent(EventType.RUN_STALE, alice.id, None)])
        seen["alice"].append(mine.cursor)
        theirs = await store.append_events(
            T0, [NewEvent(EventType.RUN_STALE, bob.id, None, {"n": i}) for i in range(round_ + 5)]
        )
        seen["bob"] += [e.cursor for e in theirs]
    assert seen["alice"] == [1, 2, 3]
    assert seen["bob"] == list(range(1, 19))
    assert [e.cursor for e in await store.list_events("alice")] == [1, 2, 3]
    assert [e.cursor for e in await store.list_events("alice", after=1)] == [2, 3]
    assert await store.latest_cursor("alice") == 3
    assert await store.latest_cursor("bob") == 18
