"""The operator's limits on what one owner may store and how fast, each at its edge: sizes of
metadata, a wakeup's context, a webhook's body and headers, a run's stored output; task and
wakeup creations per minute; the refusal names the setting and changes nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from wakecall.config import EngineConfig
from wakecall.engine import Engine, TaskService
from wakecall.engine.checks import json_size
from wakecall.engine.outputs import bounded_output
from wakecall.errors import InvalidInput, LimitReached
from wakecall.models import NoopAction, TaskSpec, WebhookAction
from wakecall.store import SQLiteStore
from wakecall.testing import LOOPBACK_POLICY, FakeClock, ScriptedExecutor, advance

OWNER = "alice"
LIMITS = EngineConfig(
    node_id="n",
    tasks_per_minute=3,
    wakeups_per_minute=2,
    max_metadata_bytes=100,
    max_context_bytes=100,
    max_body_bytes=100,
    max_headers_bytes=50,
    max_output_bytes=200,
    poll_interval=timedelta(hours=1),
    prune_every=timedelta(days=1),
)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SQLiteStore]:
    opened = SQLiteStore(tmp_path / "w.db")
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def tasks(store: SQLiteStore, clock: FakeClock) -> TaskService:
    return TaskService(store, clock=clock, config=LIMITS, policy=LOOPBACK_POLICY)


def sized(target: int, key: str = "k") -> dict[str, Any]:
    """A JSON object of exactly `target` bytes."""
    value = {key: ""}
    value[key] = "x" * (target - json_size(value))
    assert json_size(value) == target
    return value


async def test_metadata_up_to_the_limit_is_kept_one_byte_more_is_refused(
    tasks: TaskService, store: SQLiteStore
) -> None:
    await tasks.create(OWNER, TaskSpec(name="a", schedule="@daily", metadata=sized(100)))
    with pytest.raises(InvalidInput, match=r"metadata is 101 bytes .* at most 100 .*max_metadata"):
        await tasks.create(OWNER, TaskSpec(name="b", schedule="@daily", metadata=sized(101)))
    assert [t.name for t in await store.list_tasks(OWNER)] == ["a"]


async def test_a_wakeup_context_up_to_the_limit_is_kept_one_byte_more_is_refused(
    tasks: TaskService, clock: FakeClock
) -> None:
    await tasks.schedule_wakeup(OWNER, delay="1m", context=sized(100))
    with pytest.raises(InvalidInput, match=r"action\.context is 101 bytes.*max_context_bytes"):
        await tasks.schedule_wakeup(OWNER, delay="1m", context=sized(101))


async def test_a_webhook_body_and_headers_are_held_to_their_limits(tasks: TaskService) -> None:
    url = "http://127.0.0.1:9/hook"
    ok = WebhookAction(url=url, body=sized(100), headers={"X-Key": "v" * 45})
    await tasks.create(OWNER, TaskSpec(name="a", schedule="@daily", action=ok))
    with pytest.raises(InvalidInput, match="max_body_bytes"):
        big = WebhookAction(url=url, body=sized(101))
        await tasks.create(OWNER, TaskSpec(name="b", schedule="@daily", action=big))
    with pytest.raises(InvalidInput, match=r"action\.headers are 51 bytes.*max_headers_bytes"):
        many = WebhookAction(url=url, headers={"X-Key": "v" * 46})
        await tasks.create(OWNER, TaskSpec(name="c", schedule="@daily", action=many))


async def test_task_creations_per_minute_are_limited_and_the_window_slides(
    tasks: TaskService, store: SQLiteStore, clock: FakeClock
) -> None:
    for i in range(3):
        await tasks.create(OWNER, TaskSpec(name=f"t{i}", schedule="@daily"))
    with pytest.raises(LimitReached, match=r"created 3 tasks in the last minute.*tasks_per_minute"):
        await tasks.create(OWNER, TaskSpec(name="t3", schedule="@daily"))
    await tasks.create("bob", TaskSpec(name="theirs", schedule="@daily"))  # per owner
    clock.advance(timedelta(seconds=61))
    await tasks.create(OWNER, TaskSpec(name="t4", schedule="@daily"))
    assert len(await store.list_tasks(OWNER)) == 4


async def test_wakeups_per_minute_are_limited_apart_from_tasks(
    tasks: TaskService, store: SQLiteStore, clock: FakeClock
) -> None:
    await tasks.schedule_wakeup(OWNER, delay="1m")
    await tasks.schedule_wakeup(OWNER, delay="1m")
    with pytest.raises(LimitReached, match="created 2 wakeups in the last minute"):
        await tasks.schedule_wakeup(OWNER, delay="1m")
    await tasks.create(OWNER, TaskSpec(name="not a wakeup", schedule="@daily"))
    deleted = (await store.list_tasks(OWNER, kind="wakeup"))[0]
    await tasks.cancel_wakeup(OWNER, deleted.id)  # a deletion does not give a creation back
    with pytest.raises(LimitReached):
        await tasks.schedule_wakeup(OWNER, delay="1m")
    clock.advance(timedelta(seconds=61))
    await tasks.schedule_wakeup(OWNER, delay="1m")


async def test_a_run_s_output_beyond_the_limit_is_stored_cut_with_its_size(
    store: SQLiteStore, clock: FakeClock
) -> None:
    class Talkative(ScriptedExecutor):
        async def execute(self, ctx: Any) -> object:
            await super().execute(ctx)
            return {"report": "y" * 1000}

    executors = {"noop": Talkative()}
    with anyio.fail_after(10):
        async with Engine(store, clock=clock, config=LIMITS, executors=executors) as engine:
            tasks = TaskService(store, clock=clock, config=LIMITS, scheduler=engine)
            made = await tasks.create(
                OWNER, TaskSpec(name="t", schedule="in 1m", action=NoopAction())
            )
            await advance(engine, clock, timedelta(minutes=1))
    (run,) = await store.list_runs(OWNER, task_id=made.task.id)
    size = json_size({"report": "y" * 1000})
    assert run.output["truncated"] is True and run.output["bytes"] == size
    assert run.output["limit"] == 200 and run.output["excerpt"].startswith('{"report":"yyy')
    assert json_size(run.output) < 400


def test_an_output_within_the_limit_is_kept_whole() -> None:
    output = {"status": 200, "body": {"ok": True}}
    assert bounded_output(output, json_size(output)) == output
    assert bounded_output(None, 0) is None
    cut = bounded_output(output, json_size(output) - 1)
    assert cut["truncated"] and cut["bytes"] == json_size(output)
    assert json.dumps(output, separators=(",", ":")).startswith(cut["excerpt"])


async def test_a_task_file_is_not_held_to_the_creation_rate(
    tasks: TaskService, store: SQLiteStore, tmp_path: Path
) -> None:
    from wakecall.taskfile import apply_file

    path = tmp_path / "tasks.toml"
    path.write_text("".join(f'[[tasks]]\nid = "t{i}"\nschedule = "@daily"\n\n' for i in range(5)))
    await apply_file(tasks, OWNER, path)
    assert len(await store.list_tasks(OWNER)) == 5
    # nor do its creations count against the owner's own, made just after
    for i in range(3):
        await tasks.create(OWNER, TaskSpec(name=f"own-{i}", schedule="@daily"))
    with pytest.raises(LimitReached, match="created 3 tasks in the last minute"):
        await tasks.create(OWNER, TaskSpec(name="one too many", schedule="@daily"))
