"""`FinishedRuns`: counts by task and status, bounded in tasks, built into series at scrape."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import generate_latest

from wakecall.server.run_series import FinishedRuns


def samples(family_samples: list) -> dict[tuple[str, str], float]:  # type: ignore[type-arg]
    return {
        (s.labels["task_id"], s.labels["status"]): s.value
        for s in family_samples
        if s.name.endswith("_total")
    }


def test_counts_by_task_and_status_and_forgets_the_least_recent_task_past_the_bound() -> None:
    forgotten: list[str] = []
    runs = FinishedRuns(2, on_forget=forgotten.append)
    for task_id, status in [
        ("a", "success"),
        ("b", "failure"),
        ("a", "success"),
        ("c", "retrying"),
    ]:
        runs.inc(task_id, status)
    # "a" counted again after "b", so "b" was the least recent when "c" came.
    assert forgotten == ["b"]
    assert samples(runs.family().samples) == {("a", "success"): 2.0, ("c", "retrying"): 1.0}
    runs.inc("a", "failure")
    runs.inc("d", "success")
    assert forgotten == ["b", "c"]
    assert samples(runs.family().samples) == {
        ("a", "success"): 2.0,
        ("a", "failure"): 1.0,
        ("d", "success"): 1.0,
    }


def test_a_scrape_of_some_tasks_shows_only_theirs() -> None:
    runs = FinishedRuns(10, on_forget=lambda task_id: None)
    runs.inc("mine", "success")
    runs.inc("theirs", "success")
    assert samples(runs.family({"mine"}).samples) == {("mine", "success"): 1.0}
    assert samples(runs.family(set()).samples) == {}


def test_the_exposition_is_a_counter_with_its_created_time() -> None:
    registry = CollectorRegistry()
    runs = FinishedRuns(10, on_forget=lambda task_id: None)
    registry.register(runs)
    runs.inc("t1", "success")
    text = generate_latest(registry).decode()
    assert "# TYPE wakecall_runs_finished_total counter" in text
    assert 'wakecall_runs_finished_total{status="success",task_id="t1"} 1.0' in text
    assert 'wakecall_runs_finished_created{status="success",task_id="t1"}' in text


def test_a_bound_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_tasks must be at least 1"):
        FinishedRuns(0, on_forget=lambda task_id: None)
