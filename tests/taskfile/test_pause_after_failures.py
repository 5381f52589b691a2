"""Task files carry `pause_after_failures` (in the execution table): applied, exported, and
applied back unchanged, also for a task paused by its failures; changed and removed like any
other field; a bad value refused with its line."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from support.records import update_task
from wakecall.config import EngineConfig
from wakecall.engine import TaskService
from wakecall.models import TaskStatus
from wakecall.store import SQLiteStore
from wakecall.taskfile import TaskFileError, apply_file, export_tasks
from wakecall.testing import LOOPBACK_POLICY, FakeClock

OWNER = "local"
NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)

FILE = """
[[tasks]]
id = "sync"
schedule = "@every 5m"

[tasks.execution]
pause_after_failures = {limit}
"""


@pytest.fixture
async def tasks(tmp_path: Path) -> AsyncIterator[TaskService]:
    store = SQLiteStore(tmp_path / "w.db")
    await store.open()
    try:
        yield TaskService(
            store, clock=FakeClock(NOW), config=EngineConfig(), policy=LOOPBACK_POLICY
        )
    finally:
        await store.close()


async def test_the_limit_is_applied_exported_and_applied_back_unchanged(
    tasks: TaskService, tmp_path: Path
) -> None:
    path = tmp_path / "tasks.toml"
    path.write_text(FILE.format(limit=3))
    report = await apply_file(tasks, OWNER, path)
    assert [(c.op, c.id) for c in report.changes] == [("create", "sync")]
    assert (await tasks.get(OWNER, "sync")).pause_after_failures == 3
    text, warnings = export_tasks(await tasks.list_all(OWNER))
    assert warnings == [] and "pause_after_failures = 3" in text
    exported = tmp_path / "exported.toml"
    exported.write_text(text)
    again = await apply_file(tasks, OWNER, exported)
    assert [c.op for c in again.changes] == ["unchanged"]

    # Paused by its failures (as the finishing of its third failed run leaves it): exported as
    # disabled, and applied back unchanged, its streak kept.
    streak = ("run_a", "run_b", "run_c")
    await update_task(
        tasks.store,
        OWNER,
        "sync",
        {"status": TaskStatus.PAUSED, "pause_note": "paused after 3", "failure_streak": streak},
        NOW,
    )
    text, _ = export_tasks(await tasks.list_all(OWNER))
    assert "enabled = false" in text and "pause_after_failures = 3" in text
    exported.write_text(text)
    again = await apply_file(tasks, OWNER, exported)
    assert [c.op for c in again.changes] == ["unchanged"]
    assert (await tasks.get(OWNER, "sync")).failure_streak == streak


async def test_a_changed_limit_restarts_the_count_and_a_removed_one_turns_it_off(
    tasks: TaskService, tmp_path: Path
) -> None:
    path = tmp_path / "tasks.toml"
    path.write_text(FILE.format(limit=3))
    await apply_file(tasks, OWNER, path)
    await update_task(tasks.store, OWNER, "sync", {"failure_streak": ("run_a",)}, NOW)

    path.write_text(FILE.format(limit=5))
    report = await apply_file(tasks, OWNER, path)
    assert [(c.op, c.fields) for c in report.changes] == [("change", ("pause_after_failures",))]
    changed = await tasks.get(OWNER, "sync")
    assert changed.pause_after_failures == 5 and changed.failure_streak == ()

    path.write_text('[[tasks]]\nid = "sync"\nschedule = "@every 5m"\n')
    report = await apply_file(tasks, OWNER, path)
    assert [(c.op, c.fields) for c in report.changes] == [("change", ("pause_after_failures",))]
    assert (await tasks.get(OWNER, "sync")).pause_after_failures is None
    # 0 means never, as no limit does: nothing to change.
    path.write_text(FILE.format(limit=0))
    assert [c.op for c in (await apply_file(tasks, OWNER, path)).changes] == ["unchanged"]


@pytest.mark.parametrize("limit", ["101", "-2", "2.5"])
async def test_a_bad_limit_is_refused_with_its_line(
    tasks: TaskService, tmp_path: Path, limit: str
) -> None:
    path = tmp_path / "tasks.toml"
    path.write_text(FILE.format(limit=limit))
    with pytest.raises(TaskFileError, match="pause_after_failures") as refused:
        await apply_file(tasks, OWNER, path)
    assert "tasks.toml:" in str(refused.value)
    assert await tasks.list_all(OWNER) == []
