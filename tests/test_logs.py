"""Logs on stderr, plain or JSON, with the task and run ids an operator looks for."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from wakecall.errors import InvalidInput
from wakecall.logs import configure_logging


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_the_task_and_run_ids(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", "json")
    log = logging.getLogger("wakecall.engine.scheduler")
    log.info("run finished", extra={"task_id": "tsk_1", "run_id": "run_1", "action": "finish"})
    log.debug("not shown at INFO")
    captured = capsys.readouterr()
    assert captured.out == ""  # stdout carries the protocol only
    (line,) = captured.err.splitlines()
    record = json.loads(line)
    assert record["level"] == "info" and record["message"] == "run finished"
    assert (record["task_id"], record["run_id"], record["action"]) == ("tsk_1", "run_1", "finish")


def test_plain_lines_end_with_the_ids(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("DEBUG", "plain")
    logging.getLogger("wakecall.x").warning("stale", extra={"task_id": "tsk_1", "run_id": "r"})
    logging.getLogger("wakecall.x").warning("no ids")
    first, second = capsys.readouterr().err.splitlines()
    assert first.endswith("WARNING wakecall.x: stale [task=tsk_1 run=r]")
    assert second.endswith("WARNING wakecall.x: no ids")


def test_an_unknown_format_or_level_is_refused() -> None:
    with pytest.raises(InvalidInput, match="plain' or 'json'"):
        configure_logging("INFO", "xml")
    with pytest.raises(InvalidInput, match="DEBUG, INFO, WARNING or ERROR"):
        configure_logging("LOUD", "plain")
