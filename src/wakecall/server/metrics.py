"""Prometheus metrics of one runtime, served at `/metrics` on the HTTP server.

`Metrics` keeps its own `CollectorRegistry` (never the process-wide default, so several
runtimes in one process do not clash) and is fed by the hooks the engine and the callback
dispatcher already have:

* `Engine.add_run_listener`: runs created (skipped, missed), started (lateness) and finished
  (executions by task and status, durations, errors by kind);
* the engine's `fanout`: events written (`task.run.stale`: a run silent past the heartbeat
  timeout; `task.paused` with reason `failures`: a task paused after failed runs);
* `CallbackDispatcher.add_listener`: each webhook attempt (deliveries by channel and status);
* `Pusher.on_pushed`: events pushed to live MCP sessions (channel `push`).

Those listeners run on the engine's loop for every batch, so they only bump counters in
memory; the runs finished by task are counted in plain dictionaries and made into series
when scraped (`run_series.FinishedRuns`). What is cheaper to read than to track (runs in
flight, the due backlog) is read when scraped, by `Metrics.render`.

Counts are this node's: with several nodes on one database, sum them in Prometheus.
"""

from __future__ import annotations

import hmac
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel
from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
)
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from wakecall.errors import StoreError
from wakecall.models import (
    PAUSED_BY_FAILURES,
    AttemptStatus,
    Delivery,
    DeliveryStatus,
    Event,
    EventType,
    RunStatus,
    Trigger,
)
from wakecall.server.run_series import FinishedRuns

if TYPE_CHECKING:
    from wakecall.delivery.callbacks import CallbackDispatcher
    from wakecall.engine.scheduler import Engine, RunNews

__all__ = [
    "DURATION_BUCKETS",
    "LATENESS_BUCKETS",
    "Metrics",
    "OwnerSeries",
    "metrics_endpoint",
    "metrics_route",
]

log = logging.getLogger(__name__)

#: Run durations: from a no-op (milliseconds) to an hour-long command.
DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600,
)  # fmt: skip
#: How late first attempts start after their fire: 1 ms to a couple of minutes.
LATENESS_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120,
)  # fmt: skip

#: Attempt endings that are not errors (a skip is the task's condition saying no).
_NOT_ERRORS = (AttemptStatus.SUCCESS, AttemptStatus.RUNNING, AttemptStatus.SKIPPED)

_DELIVERY_STATUS = {
    DeliveryStatus.DELIVERED: "delivered",
    DeliveryStatus.PENDING: "retrying",
    DeliveryStatus.FAILED: "failed",
}
_ERROR_KINDS = tuple(str(s) for s in AttemptStatus if s not in _NOT_ERRORS)

#: Runs counted per slice of `Metrics.fold` (a fraction of a millisecond since the runs
#: finished by task are counted in `run_series.FinishedRuns`), and the pause of `Metrics.run`
#: between folds.
_FOLD_SLICE = 50
_FOLD_PAUSE = 0.25


class Metrics:
    """The metrics of one runtime, in a registry of its own.

    `max_task_series` bounds the `task_id` label of `wakecall_runs_finished_total`: every
    wakeup is a task of its own, so a long-lived server would otherwise grow one series per
    wakeup forever. Past the bound, the task that finished a run least recently loses its
    series (Prometheus reads the disappearance as the end of that series).
    """

    def __init__(self, *, process_metrics: bool = True, max_task_series: int = 10_000) -> None:
        if max_task_series < 1:
            raise ValueError("max_task_series must be at least 1")
        self.registry = CollectorRegistry(auto_describe=True)
        self.max_task_series = max_task_series
        if process_metrics:
            for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
                self.registry.register(collector)
        r = self.registry
        #: The owner of each task with a series (an owner's scrape shows only its own).
        self._task_owners: dict[str, str] = {}
        self.runs_finished = FinishedRuns(max_task_series, on_forget=self._forget_task)
        r.register(self.runs_finished)
        self.runs_started = Counter(
            "wakecall_runs_started",
            "Runs whose first attempt started, by what started them: schedule, catchup, "
            "manual, wakeup, event, dependency or backfill.",
            ["trigger"],
            registry=r,
        )
        self.run_duration = Histogram(
            "wakecall_run_duration_seconds",
            "Duration of finished runs (their last attempt).",
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.run_lateness = Histogram(
            "wakecall_run_lateness_seconds",
            "Delay from a run's scheduled fire to the start of its first attempt.",
            buckets=LATENESS_BUCKETS,
            registry=r,
        )
        self.attempt_errors = Counter(
            "wakecall_attempt_errors",
            "Attempts that did not succeed, by how they ended.",
            ["kind"],
            registry=r,
        )
        self.runs_skipped = Counter(
            "wakecall_runs_skipped",
            "Runs recorded as skipped (overlap policy, or a condition that said no).",
            registry=r,
        )
        self.runs_missed = Counter(
            "wakecall_runs_missed",
            "Runs recorded as missed (fires beyond the catch-up window or cap).",
            registry=r,
        )
        self.runs_running = Gauge(
            "wakecall_runs_running", "Runs executing on this node.", registry=r
        )
        self.heartbeats_stale = Counter(
            "wakecall_heartbeats_stale",
            "Runs reported silent past the heartbeat timeout (task.run.stale events).",
            registry=r,
        )
        self.paused_after_failures = Counter(
            "wakecall_tasks_paused_after_failures",
            "Tasks paused after pause_after_failures failed runs in a row.",
            registry=r,
        )
        self.deliveries = Counter(
            "wakecall_deliveries",
            "Delivery attempts, by channel and by the delivery's status after the attempt.",
            ["channel", "status"],
            registry=r,
        )
        self.due_tasks = Gauge(
            "wakecall_due_tasks", "Active tasks whose fire has come, not yet fired.", registry=r
        )
        self.due_runs = Gauge(
            "wakecall_due_runs", "Queued runs whose due time has come, not yet started.", registry=r
        )
        self.runs_held_back = Gauge(
            "wakecall_runs_held_back",
            "Due runs flow control held back at this node's last claim, by limit and key.",
            ["limit", "key"],
            registry=r,
        )
        # Series that exist from the start, so rates and alerts see a 0 rather than nothing.
        for kind in _ERROR_KINDS:
            self.attempt_errors.labels(kind)
        for trigger in Trigger:
            self.runs_started.labels(str(trigger))
        for status in _DELIVERY_STATUS.values():
            self.deliveries.labels("webhook", status)
        # Their children, looked up once: a burst counts thousands of runs on the loop.
        self._started_by_trigger = {str(t): self.runs_started.labels(str(t)) for t in Trigger}
        self._errors_by_kind = {kind: self.attempt_errors.labels(kind) for kind in _ERROR_KINDS}
        self._engine: Engine | None = None
        #: What the engine told of runs and not yet counted (see `on_runs`).
        self._unread: deque[RunNews] = deque()
        self._unread_runs = 0
        self._has_unread = anyio.Event()

    # --- wiring ---------------------------------------------------------------------------
    def attach(self, engine: Engine, callbacks: CallbackDispatcher | None = None) -> None:
        """Listen to `engine` (and `callbacks`); scrapes then read the engine's store."""
        self._engine = engine
        engine.add_run_listener(self.on_runs)
        engine.fanout.add_listener(self.on_events)
        if callbacks is not None:
            callbacks.add_listener(self.on_delivery)

    def detach(self, engine: Engine, callbacks: CallbackDispatcher | None = None) -> None:
        """Stop listening. The counters keep their values."""
        engine.remove_run_listener(self.on_runs)
        engine.fanout.remove_listener(self.on_events)
        if callbacks is not None:
            callbacks.remove_listener(self.on_delivery)
        if self._engine is engine:
            self._engine = None

    # --- listeners (on the engine's loop: memory only) ------------------------------------
    def on_runs(self, news: RunNews) -> None:
        """Keep the news, counted later by `fold` a slice at a time: a burst tells of
        thousands of runs at once, and counting them there and then (two histograms and
        three counters a run) would hold the event loop for milliseconds."""
        self._unread.append(news)
        self._unread_runs += len(news.created) + len(news.started) + len(news.finished)
        self._has_unread.set()

    async def fold(self, slice_runs: int = _FOLD_SLICE) -> None:
        """Count the runs told of so far, `slice_runs` at a time, giving the loop back
        between slices."""
        counted = 0
        while self._unread:
            news = self._unread.popleft()
            size = len(news.created) + len(news.started) + len(news.finished)
            self._unread_runs -= size
            self._count(news)
            counted += size
            if counted >= slice_runs:
                counted = 0
                await anyio.lowlevel.checkpoint()
        self._has_unread = anyio.Event()

    async def run(self) -> None:
        """Until cancelled, count what the engine tells soon after it tells it."""
        while True:
            await self._has_unread.wait()
            await self.fold()
            await anyio.sleep(_FOLD_PAUSE)

    def _count(self, news: RunNews) -> None:
        for run in news.created:
            self._count_unexecuted(run.status)
        for run in news.started:
            if run.attempt != 1:
                continue
            self._started_by_trigger[str(run.trigger)].inc()
            # A backfill re-runs a past fire on purpose: its distance to it is not lateness.
            if run.trigger is Trigger.BACKFILL:
                continue
            if run.scheduled_for is not None and run.started_at is not None:
                late = (run.started_at - run.scheduled_for).total_seconds()
                self.run_lateness.observe(max(late, 0.0))
        for run, how in news.finished:
            final = run.status.is_terminal
            self._task_owners[run.task_id] = run.owner
            self.runs_finished.inc(run.task_id, str(run.status) if final else "retrying")
            if how not in _NOT_ERRORS:
                self._errors_by_kind[str(how)].inc()
            if final:
                if run.duration_ms is not None:
                    self.run_duration.observe(run.duration_ms / 1000)
                self._count_unexecuted(run.status)

    def on_events(self, events: Sequence[Event]) -> None:
        stale = paused = 0
        for event in events:
            if event.type == EventType.RUN_STALE:
                stale += 1
            elif event.type == EventType.TASK_PAUSED:
                paused += event.payload.get("reason") == PAUSED_BY_FAILURES
        if stale:
            self.heartbeats_stale.inc(stale)
        if paused:
            self.paused_after_failures.inc(paused)

    def on_delivery(self, delivery: Delivery) -> None:
        self.deliveries.labels("webhook", _DELIVERY_STATUS[delivery.status]).inc()

    def on_push(self, sent: int, failed: int) -> None:
        """Events pushed to live MCP sessions (`Pusher.on_pushed`): sent, or failed/timed out."""
        if sent:
            self.deliveries.labels("push", "delivered").inc(sent)
        if failed:
            self.deliveries.labels("push", "failed").inc(failed)

    def _count_unexecuted(self, status: RunStatus) -> None:
        if status == RunStatus.SKIPPED:
            self.runs_skipped.inc()
        elif status == RunStatus.MISSED:
            self.runs_missed.inc()

    def _forget_task(self, task_id: str) -> None:
        self._task_owners.pop(task_id, None)

    # --- scraping -------------------------------------------------------------------------
    async def refresh(self) -> None:
        """Read what is measured at scrape time: runs in flight and the due backlog. A store
        that cannot answer leaves the backlog gauges at NaN (and says so in the log)."""
        await self.fold()
        engine = self._engine
        if engine is None:
            return
        self.runs_running.set(len(engine.inflight))
        self.runs_held_back.clear()
        for (limit, key), count in engine.store.held_back().items():
            self.runs_held_back.labels(limit, key).set(count)
        due: tuple[float, float]
        try:
            due = await engine.store.backlog(engine.clock.now())
        except StoreError as exc:
            log.warning("metrics: reading the due backlog failed: %s", exc)
            due = (float("nan"), float("nan"))
        self.due_tasks.set(due[0])
        self.due_runs.set(due[1])

    async def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """`(body, content_type)` of a scrape of every series (for the operator), in the text
        format, or OpenMetrics when the `Accept` header asks for it."""
        await self.refresh()
        encode, content_type = choose_encoder(accept or "")
        return encode(self.registry), content_type

    async def render_for(self, owner: str, accept: str | None = None) -> tuple[bytes, str]:
        """A scrape of `owner`'s series only: its tasks' finished runs. Nothing of other
        owners, nor node-wide counts that would tell of them."""
        await self.fold()
        registry = CollectorRegistry(auto_describe=False)
        registry.register(OwnerSeries(self, owner))
        encode, content_type = choose_encoder(accept or "")
        return encode(registry), content_type

    def tasks_of(self, owner: str) -> set[str]:
        return {task_id for task_id, o in self._task_owners.items() if o == owner}


class OwnerSeries(Collector):
    """The series of one owner's tasks, from `Metrics` (a collector for a scrape of its own)."""

    def __init__(self, metrics: Metrics, owner: str) -> None:
        self.metrics = metrics
        self.owner = owner

    def collect(self) -> Iterator[Metric]:
        yield self.metrics.runs_finished.family(self.metrics.tasks_of(self.owner))


def metrics_endpoint(
    metrics: Metrics,
    *,
    owners: Mapping[str, str] | None = None,
    operators: Collection[str] = (),
) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint serving `metrics`. With bearer tokens (`owners`: token → owner,
    `operators`: operator tokens), a request needs one: an operator's sees every series, an
    owner's only that owner's (`Metrics.render_for`). Without any token configured (a server
    on loopback), every series is served: the loopback default is the operator."""
    owner_tokens = [(t.encode(), owner) for t, owner in (owners or {}).items()]
    operator_tokens = [t.encode() for t in operators]

    def holder(request: Request) -> tuple[bool, str | None]:
        """(is an operator, the owner) of the request's bearer token."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        given = token.strip().encode() if scheme.lower() == "bearer" else b""
        if given and any(hmac.compare_digest(given, t) for t in operator_tokens):
            return True, None
        for known, owner in owner_tokens:
            if given and hmac.compare_digest(given, known):
                return False, owner
        return False, None

    async def endpoint(request: Request) -> Response:
        accept = request.headers.get("accept")
        if not owner_tokens and not operator_tokens:
            body, content_type = await metrics.render(accept)
            return Response(body, headers={"content-type": content_type})
        operator, owner = holder(request)
        if operator:
            body, content_type = await metrics.render(accept)
        elif owner is not None:
            body, content_type = await metrics.render_for(owner, accept)
        else:
            return Response(
                "a bearer token is needed: an owner's (its own series) or the operator's "
                "(--metrics-token: every series)\n",
                status_code=401,
                media_type="text/plain",
                headers={"www-authenticate": 'Bearer realm="wakecall metrics"'},
            )
        return Response(body, headers={"content-type": content_type})

    return endpoint


def metrics_route(
    metrics: Metrics,
    *,
    path: str = "/metrics",
    owners: Mapping[str, str] | None = None,
    operators: Collection[str] = (),
) -> Route:
    """`GET path` (default `/metrics`) serving `metrics`; see `metrics_endpoint`."""
    return Route(
        path,
        metrics_endpoint(metrics, owners=owners, operators=operators),
        methods=["GET"],
        name="metrics",
        include_in_schema=False,
    )
