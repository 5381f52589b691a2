"""`wakecall runs`, `deliveries` and `redeliver`, and what the commands say about a task that
has ended, on a store whose history an engine (on a fake clock, in this process) wrote."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from wakecall.engine import Engine, EngineConfig
from wakecall.models import NoopAction, TaskSpec
from wakecall.store import SQLiteStore
from wakecall.testing import FakeClock, ScriptedExecutor, service_for, step_to

pytestmark = pytest.mark.slow


async def write_history(path: Path) -> None:
    """Task `report` (noop, every minute, at most 2 runs, with a callback URL) ran twice ten
    minutes ago: a failure ("disk full"), then a success, and so expired. Its three callbacks
    (two runs, the expiry) wait; one of them is dead-lettered. An agent's wakeup is pending."""
    store = SQLiteStore(path)
    await store.open()
    try:
        clock = FakeClock(datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10))
        executor = ScriptedExecutor(["disk full"])
        config = EngineConfig(poll_interval=timedelta(hours=1), prune_every=timedelta(days=1))
        executors: Any = {"noop": executor, "wakeup": executor}
        with anyio.fail_after(10):
            async with Engine(store, clock=clock, config=config, executors=executors) as engine:
                spec = TaskSpec(
                    name="report",
                    schedule="@every 1m",
                    action=NoopAction(),
                    callback_url="https://app.example/hook",
                    max_runs=2,
                )
                await service_for(engine).create("local", spec, task_id="report")
                await service_for(engine).schedule_wakeup("local", delay="1h", reason="check later")
                await step_to(engine, clock, clock.now() + timedelta(minutes=2, seconds=1))
        claimed = await store.claim_deliveries("test", clock.now(), 1, timedelta(minutes=1))
        await store.finish_delivery(
            "test",
            claimed[0].id,
            clock.now(),
            delivered=False,
            retry_at=None,
            status_code=500,
            error="HTTP 500 from the receiver",
        )
    finally:
        await store.close()


@pytest.fixture
def history(cli: Any) -> Any:
    anyio.run(write_history, Path(cli.store))
    return cli


def test_runs_lists_history_newest_first_with_status_attempt_and_output(history: Any) -> None:
    cli = history
    runs = cli.json("runs", "report")["runs"]
    assert [(r["status"], r["attempt"], r["trigger"]) for r in runs] == [
        ("success", 1, "schedule"),
        ("failure", 1, "schedule"),
    ]
    assert runs[0]["output"] == {"call": 2}
    assert runs[1]["error_message"] == "disk full"
    assert runs[0]["duration_ms"] is not None
    assert [r["id"] for r in cli.json("runs", "report", "--limit", "1")["runs"]] == [runs[0]["id"]]
    failed = cli.json("runs", "--status", "failure")["runs"]
    assert [r["id"] for r in failed] == [runs[1]["id"]]

    lines = cli.ok("runs", "report").stdout.splitlines()
    assert lines[0].split("\t") == [
        "run", "started", "duration", "status", "attempt", "trigger", "output",
    ]  # fmt: skip
    newest, oldest = (line.split("\t") for line in lines[1:])
    assert newest[0] == runs[0]["id"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", newest[1])
    assert re.fullmatch(r"\d+ms|\d+\.\ds", newest[2])
    assert newest[3:] == ["success", "1/1", "schedule", '{"call": 2}']
    assert oldest[3:] == ["failure", "1/1", "schedule", "disk full"]
    every = cli.ok("runs").stdout.splitlines()
    assert every[0].split("\t")[:2] == ["run", "task"] and every[1].split("\t")[1] == "report"
    assert "--limit must be from 1 to 1000" in cli.fails(2, "runs", "--limit", "0")


def test_deliveries_shows_pending_and_dead_lettered_callbacks_and_redeliver_requeues(
    history: Any,
) -> None:
    cli = history
    shown = cli.json("deliveries")["deliveries"]
    assert sorted(d["status"] for d in shown) == ["failed", "pending", "pending"]
    assert {d["event"] for d in shown} == {
        "task.run.failed",
        "task.run.completed",
        "task.expired",
    }
    (dead,) = cli.json("deliveries", "--status", "failed")["deliveries"]
    assert (dead["last_status"], dead["last_error"]) == (500, "HTTP 500 from the receiver")
    assert dead["url"] == "https://app.example/hook"
    lines = cli.ok("deliveries", "--status", "failed").stdout.splitlines()
    assert lines[0].split("\t") == [
        "id", "task", "event", "status", "attempts", "state", "last result", "url",
    ]  # fmt: skip
    assert lines[1].split("\t")[3:] == [
        "failed", "1", "dead-lettered", "HTTP 500 from the receiver", "https://app.example/hook",
    ]  # fmt: skip

    again = cli.json("redeliver", dead["id"])
    assert (again["id"], again["status"], again["attempts"]) == (dead["id"], "pending", 0)
    assert cli.json("deliveries", "--status", "failed")["deliveries"] == []
    assert len(cli.json("deliveries", "--status", "pending")["deliveries"]) == 3
    assert len(cli.json("deliveries", "--status", "all", "--task", "report")["deliveries"]) == 3
    assert "for owner 'bob'" in cli.fails(3, "redeliver", dead["id"], "--owner", "bob")


def test_a_task_that_has_ended_is_listed_as_such_and_cannot_run_again(history: Any) -> None:
    cli = history
    listed = cli.ok("tasks", "list", "--kind", "task").stdout
    rows = [line.split("\t") for line in listed.splitlines()]
    assert rows[1][0] == "report" and rows[1][4] == "expired"
    assert re.fullmatch(r"\d+m(\d+s)? ago success", rows[1][5]), rows[1][5]
    assert rows[1][6] == "-"
    assert "has ended (expired)" in cli.fails(1, "tasks", "resume", "report")
    assert "has ended (expired)" in cli.fails(1, "tasks", "run", "report")
    dry = cli.run("tasks", "run", "report", "--dry-run")
    assert dry.code == 1 and "no: task report has ended (expired)" in dry.stdout
    plan = cli.run("tasks", "run", "report", "--dry-run", "--json")
    assert plan.code == 1
    assert '"would_queue": false' in plan.stdout


def test_export_leaves_wakeups_out_and_marks_ended_tasks_which_apply_leaves_alone(
    history: Any,
) -> None:
    cli = history
    assert len(cli.json("tasks", "list")["tasks"]) == 2  # the task and the wakeup
    text = cli.ok("export").stdout
    assert "check later" not in text
    assert "# expired (max_runs_reached): this task will not run again\n[[tasks]]" in text
    path = cli.write("export.toml", text)
    assert cli.ok("apply", str(path)).stdout.splitlines()[0] == (
        "= report (report): unchanged [expired]"
    )
    pruned = cli.ok("apply", str(path), "--prune").stdout
    assert "deleted" not in pruned  # the wakeup is not the file's to prune
    changed = cli.write("changed.toml", text.replace('every = "1m"', 'every = "5m"'))
    error = cli.fails(2, "apply", str(changed))
    assert "task 'report': task report has ended (expired, max_runs_reached)" in error
    assert "not schedule" in error
