"""`--pause-after-failures` through the real console script: `tasks add`, `patch`, `show` (the
limit, the failed runs so far, the pause note), `resume`, and `apply`/`export` round trips."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest

from support.records import update_task
from wakecall.models import TaskStatus
from wakecall.store import SQLiteStore

pytestmark = pytest.mark.slow

NOTE = "paused after 2 failed runs in a row: run_a, run_b. Fix the cause, then resume."


async def _paused_by_failures(path: Path, task_id: str) -> None:
    """The task as the finishing of its second failed run leaves it."""
    store = SQLiteStore(path)
    await store.open()
    try:
        changes = {
            "status": TaskStatus.PAUSED,
            "pause_note": NOTE,
            "next_fire_at": None,
            "failure_streak": ("run_a", "run_b"),
        }
        await update_task(store, None, task_id, changes, datetime.now(UTC))
    finally:
        await store.close()


def test_add_show_patch_and_resume_carry_the_limit_and_the_count(cli: Any) -> None:
    created = cli.json("tasks", "add", "sync", "@hourly", "--id", "s", "--noop",
                       "--pause-after-failures", "2")  # fmt: skip
    assert created["pause_after_failures"] == 2 and created["failure_streak"] == []
    text = cli.ok("tasks", "show", "s").stdout
    assert "pause after:" in text and "2 failed runs in a row" in text

    anyio.run(_paused_by_failures, cli.tmp_path / "wakecall.db", "s")
    shown = cli.json("tasks", "show", "s")
    assert shown["status"] == "paused" and shown["failure_streak"] == ["run_a", "run_b"]
    text = cli.ok("tasks", "show", "s").stdout
    assert "2 failed runs in a row (2 so far: run_a, run_b)" in text
    assert "run_a, run_b. Fix the cause" in text  # the note, on the status line

    resumed = cli.json("tasks", "resume", "s")
    assert resumed["status"] == "active" and resumed["failure_streak"] == []
    patched = cli.json("tasks", "patch", "s", "--pause-after-failures", "5")
    assert patched["pause_after_failures"] == 5
    off = cli.json("tasks", "patch", "s", "--pause-after-failures", "0")
    assert off["pause_after_failures"] is None
    assert "never" in cli.ok("tasks", "show", "s").stdout
    assert "pause after" in cli.ok("tasks", "run", "s", "--dry-run").stdout


@pytest.mark.parametrize(("value", "bound"), [("101", "100"), ("-1", "0")])
def test_a_limit_out_of_range_exits_2_and_stores_nothing(cli: Any, value: str, bound: str) -> None:
    error = cli.fails(2, "tasks", "add", "sync", "@hourly", "--pause-after-failures", value)
    assert "pause_after_failures" in error and bound in error
    assert cli.task_ids() == []


def test_export_then_apply_changes_nothing(cli: Any) -> None:
    path = cli.write(
        "tasks.toml",
        '[[tasks]]\nid = "sync"\nschedule = "@hourly"\n\n'
        "[tasks.execution]\npause_after_failures = 4\n",
    )
    cli.ok("apply", str(path))
    assert cli.json("tasks", "show", "sync")["pause_after_failures"] == 4
    exported = cli.ok("export").stdout
    assert "pause_after_failures = 4" in exported
    again = cli.write("exported.toml", exported)
    report = cli.json("apply", str(again))
    assert [c["op"] for c in report["changes"]] == ["unchanged"]
