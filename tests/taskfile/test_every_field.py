"""Task files carry every field of a task: chains (`depends_on`, also on a task of the same
file), inbound-event triggers and conditions are applied, exported, and applied back unchanged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from wakecall.config import EngineConfig
from wakecall.engine import TaskService
from wakecall.store import SQLiteStore
from wakecall.taskfile import TaskFileError, apply_file, export_tasks
from wakecall.testing import LOOPBACK_POLICY, FakeClock

OWNER = "local"

FILE = """
[[tasks]]
id = "transform"
depends_on = "extract"

[tasks.condition]
url = "https://app.example.com/should-run"
method = "GET"
timeout = "5s"

[[tasks]]
id = "extract"
schedule = "0 2 * * *"
timezone = "Europe/Paris"

[tasks.trigger]
per_minute = 10
"""


@pytest.fixture
async def tasks(tmp_path: Path) -> AsyncIterator[TaskService]:
    store = SQLiteStore(tmp_path / "w.db")
    await store.open()
    try:
        yield TaskService(store, clock=FakeClock(), config=EngineConfig(), policy=LOOPBACK_POLICY)
    finally:
        await store.close()


async def test_chains_triggers_and_conditions_are_applied_and_exported_back_unchanged(
    tasks: TaskService, tmp_path: Path
) -> None:
    path = tmp_path / "tasks.toml"
    path.write_text(FILE)
    report = await apply_file(tasks, OWNER, path)
    assert [(c.op, c.id) for c in report.changes] == [
        ("create", "transform"),
        ("create", "extract"),
    ]
    transform = await tasks.get(OWNER, "transform")
    extract = await tasks.get(OWNER, "extract")
    assert transform.depends_on == "extract" and transform.schedule["type"] == "on_demand"
    assert transform.condition == {
        "url": "https://app.example.com/should-run",
        "method": "GET",
        "timeout": "5s",
    }
    assert extract.trigger is not None and extract.trigger["per_minute"] == 10
    (secret,) = [c.trigger_secret for c in report.changes if c.trigger_secret]
    assert secret == extract.trigger["secret"]  # shown once, in the report
    text, warnings = export_tasks(await tasks.list_all(OWNER))
    assert warnings == [] and "secret" not in text
    exported = tmp_path / "exported.toml"
    exported.write_text(text)
    again = await apply_file(tasks, OWNER, exported)
    assert [c.op for c in again.changes] == ["unchanged", "unchanged"]
    assert all(c.trigger_secret is None for c in again.changes)
    assert (await tasks.get(OWNER, "extract")).trigger == extract.trigger  # same secret


async def test_a_changed_trigger_issues_a_new_secret_and_a_removed_one_turns_it_off(
    tasks: TaskService, tmp_path: Path
) -> None:
    path = tmp_path / "tasks.toml"
    path.write_text(FILE)
    await apply_file(tasks, OWNER, path)
    before = (await tasks.get(OWNER, "extract")).trigger
    path.write_text(FILE.replace("per_minute = 10", "per_minute = 20"))
    changed = await apply_file(tasks, OWNER, path)
    (change,) = [c for c in changed.changes if c.id == "extract"]
    assert change.fields == ("trigger",) and change.trigger_secret
    assert change.trigger_secret != (before or {}).get("secret")
    path.write_text(FILE.split("[tasks.trigger]")[0])
    await apply_file(tasks, OWNER, path)
    assert (await tasks.get(OWNER, "extract")).trigger is None


async def test_a_chain_to_nowhere_or_around_in_a_circle_is_refused_with_its_line(
    tasks: TaskService, tmp_path: Path
) -> None:
    path = tmp_path / "tasks.toml"
    path.write_text('[[tasks]]\nid = "a"\ndepends_on = "missing"\n')
    with pytest.raises(TaskFileError) as nowhere:
        await apply_file(tasks, OWNER, path)
    assert "tasks.toml:3: task 'a': depends_on names 'missing'" in str(nowhere.value)
    path.write_text(
        '[[tasks]]\nid = "a"\ndepends_on = "b"\n\n[[tasks]]\nid = "b"\ndepends_on = "a"\n'
    )
    with pytest.raises(TaskFileError, match=r"cycle \(a -> b -> a\)"):
        await apply_file(tasks, OWNER, path)
    assert await tasks.list_all(OWNER) == []


FLOW_FILE = """
[[tasks]]
id = "sync"
schedule = "@hourly"

[tasks.concurrency]
key = "crm"
limit = 3

[tasks.rate_limit]
key = "crm"
limit = 10
period = "1m"
"""


async def test_flow_control_is_applied_exported_and_applied_back_unchanged(
    tasks: TaskService, tmp_path: Path
) -> None:
    path = tmp_path / "tasks.toml"
    path.write_text(FLOW_FILE)
    await apply_file(tasks, OWNER, path)
    sync = await tasks.get(OWNER, "sync")
    assert sync.concurrency == {"key": "crm", "limit": 3}
    assert sync.rate_limit == {"key": "crm", "limit": 10, "period_s": 60.0}
    text, warnings = export_tasks(await tasks.list_all(OWNER))
    assert warnings == [] and 'period = "1m"' in text
    exported = tmp_path / "exported.toml"
    exported.write_text(text)
    again = await apply_file(tasks, OWNER, exported)
    assert [c.op for c in again.changes] == ["unchanged"]
    path.write_text(FLOW_FILE.replace("limit = 3", "limit = 4").split("[tasks.rate_limit]")[0])
    changed = await apply_file(tasks, OWNER, path)
    assert changed.changes[0].fields == ("concurrency", "rate_limit")
    after = await tasks.get(OWNER, "sync")
    assert after.concurrency == {"key": "crm", "limit": 4} and after.rate_limit is None
