"""The examples run, against a real server, and do what they say."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _load(name: str) -> ModuleType:
    """Import an example by path: examples/ is not a package."""
    spec = importlib.util.spec_from_file_location(f"wakecall_example_{name}", EXAMPLES / name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
async def test_the_agent_loop_example_creates_runs_changes_and_deletes_a_task(
    wakecall: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    agent_loop = _load("agent_loop.py")
    with anyio.fail_after(30):
        seen = await agent_loop.main(wakecall.stdio_params())

    assert seen["protocol_version"] == "2026-07-28"
    assert {"create_task", "run_now", "list_runs", "patch_schedule", "delete"} <= set(seen["tools"])
    created = seen["created"]
    assert created["created"] is True and created["timezone"] == "Europe/Paris"
    assert seen["event"]["type"] == "task.run.completed"
    assert seen["event"]["task_id"] == created["id"]
    [run] = seen["runs"]
    assert run["id"] == seen["event"]["run_id"]
    assert (run["status"], run["trigger"]) == ("success", "manual")
    assert run["output"]["reason"] == "look at the nightly build"
    patched = seen["patched"]
    assert patched["id"] == created["id"]
    assert patched["name"] == "check the build twice a week"
    assert patched["schedule"] != created["schedule"]
    assert (seen["deleted"]["deleted"], seen["deleted"]["id"]) == (True, created["id"])
    assert f"no task with id {created['id']!r}" in seen["after_delete"]
    assert seen["remaining"] == []
    # It tells a person what it does.
    printed = capsys.readouterr().out
    assert f"agent: created {created['id']}" in printed
    assert f"agent: deleted {created['id']}" in printed
