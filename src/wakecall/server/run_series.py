"""`FinishedRuns`: the `wakecall_runs_finished_total` series, by task and status, counted in
plain dictionaries and made into Prometheus samples only when scraped.

A burst finishes runs of thousands of tasks at once, most of them new to the counter. A
labelled child of a `prometheus_client.Counter` made for each, on the event loop, cost tens of
microseconds a run: during a burst of 10,000 no-op runs it took `create_task`'s p99 from
about 10 ms to about 20 ms (`benchmarks/analysis.md`, part 13). Counting here costs a
dictionary update; a scrape builds the series.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterator

from prometheus_client.metrics_core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["FinishedRuns"]

NAME = "wakecall_runs_finished"
DOCUMENTATION = (
    "Attempts that ended, by task and by the run's status after it: the final status, "
    "or 'retrying' when the run was queued again."
)


class FinishedRuns(Collector):
    """Counts of ended attempts by (task id, status), for at most `max_tasks` tasks: past the
    bound, the task that finished a run least recently loses its series (Prometheus reads the
    disappearance as the end of that series) and `on_forget` is told its id."""

    def __init__(self, max_tasks: int, on_forget: Callable[[str], None]) -> None:
        if max_tasks < 1:
            raise ValueError("max_tasks must be at least 1")
        self.max_tasks = max_tasks
        self._on_forget = on_forget
        #: task id -> status -> [count, created (Unix time of its first count)]; least
        #: recently counted task first.
        self._tasks: OrderedDict[str, dict[str, list[float]]] = OrderedDict()

    def inc(self, task_id: str, status: str) -> None:
        statuses = self._tasks.get(task_id)
        if statuses is None:
            statuses = self._tasks[task_id] = {}
            while len(self._tasks) > self.max_tasks:
                forgotten, _ = self._tasks.popitem(last=False)
                self._on_forget(forgotten)
        else:
            self._tasks.move_to_end(task_id)
        counted = statuses.get(status)
        if counted is None:
            statuses[status] = [1.0, time.time()]
        else:
            counted[0] += 1.0

    def collect(self) -> Iterator[Metric]:
        yield self.family()

    def family(self, task_ids: Collection[str] | None = None) -> CounterMetricFamily:
        """The series, of every task, or only of `task_ids` (an owner's scrape)."""
        family = CounterMetricFamily(NAME, DOCUMENTATION, labels=["task_id", "status"])
        for task_id, statuses in self._tasks.items():
            if task_ids is not None and task_id not in task_ids:
                continue
            for status, (count, created) in statuses.items():
                family.add_metric([task_id, status], count, created=created)
        return family
