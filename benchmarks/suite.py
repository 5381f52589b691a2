"""What the suite runs: each part's cases (subject, worker function, arguments for full and
quick sizes), the figures shown for them, and the targets they are held to."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.common import POSTGRES_ENV


@dataclass(frozen=True)
class Metric:
    key: str
    title: str
    fmt: str = "{:,.0f}"
    higher_is_better: bool = True


@dataclass(frozen=True)
class Target:
    """A target of the issue for one figure (judged on the median)."""

    key: str
    text: str
    met: Callable[[float], bool]


@dataclass(frozen=True)
class Case:
    label: str
    target_fn: str  # "module:function" run by the worker
    args: dict[str, Any]
    quick: dict[str, Any]
    timeout_s: float
    quick_timeout_s: float = 180
    needs_postgres: bool = False
    targets: tuple[Target, ...] = ()


@dataclass(frozen=True)
class Table:
    """Some figures of some of a part's cases (all of them when `labels` is empty)."""

    title: str
    metrics: tuple[Metric, ...]
    labels: tuple[str, ...] = ()
    notes: str = ""


@dataclass(frozen=True)
class Part:
    name: str
    title: str
    cases: tuple[Case, ...]
    tables: tuple[Table, ...]
    repeated: bool = True


def _ge(limit: float) -> Callable[[float], bool]:
    return lambda v: v >= limit


def _le(limit: float) -> Callable[[float], bool]:
    return lambda v: v <= limit


def _lt(limit: float) -> Callable[[float], bool]:
    return lambda v: v < limit


BURST_N = 10_000
BURST_QUICK = {"n": 2_000}
SQLITE_BURST_TARGET = Target("runs_per_s", "≥ 10,000 runs/s", _ge(10_000))
#: The burst's wakecall subjects on SQLite: the `noop` action as shipped, whose runs end in
#: the pass that fires them, and an async no-op without that, whose runs go through workers.
SQLITE_INSTANT = "wakecall, SQLite file, noop action"
SQLITE_WORKERS = "wakecall, SQLite file, async action through workers, concurrency 64"

#: The PostgreSQL peer (issue 17): PgQueuer's deferred jobs on the same server.
PGQUEUER_1 = "PgQueuer 1.6, PostgreSQL, 1 worker process"
PGQUEUER_3 = "PgQueuer 1.6, PostgreSQL, 3 worker processes"
PG_1 = "wakecall, PostgreSQL, 1 node, noop action"
PG_3 = "wakecall, PostgreSQL, 3 node processes, noop action"

BURST = Part(
    "burst",
    "1. Burst: 10,000 one-shot no-op tasks due at the same instant",
    (
        Case(
            SQLITE_INSTANT,
            "burst:wakecall_sqlite",
            {"n": BURST_N},
            BURST_QUICK,
            timeout_s=600,
            targets=(SQLITE_BURST_TARGET,),
        ),
        Case(
            SQLITE_WORKERS,
            "burst:wakecall_sqlite",
            {"n": BURST_N, "concurrency": 64, "path": "worker"},
            {**BURST_QUICK, "concurrency": 64, "path": "worker"},
            timeout_s=600,
        ),
        Case(
            PG_1,
            "burst:wakecall_postgres",
            {"n": BURST_N, "nodes": 1},
            {**BURST_QUICK, "nodes": 1},
            timeout_s=900,
            needs_postgres=True,
        ),
        Case(
            PG_3,
            "burst:wakecall_postgres",
            {"n": BURST_N, "nodes": 3},
            {**BURST_QUICK, "nodes": 3},
            timeout_s=900,
            needs_postgres=True,
            targets=(Target("runs_per_s", "≥ 5,000 runs/s, no duplicate", _ge(5_000)),),
        ),
        Case(
            "wakecall, PostgreSQL, 3 node processes, async action through workers, "
            "concurrency 64 each",
            "burst:wakecall_postgres",
            {"n": BURST_N, "nodes": 3, "concurrency": 64, "path": "worker"},
            {**BURST_QUICK, "nodes": 3, "concurrency": 64, "path": "worker"},
            timeout_s=900,
            needs_postgres=True,
        ),
        Case(
            PGQUEUER_1,
            "pgqueuer_peer:burst",
            {"n": BURST_N, "nodes": 1},
            {**BURST_QUICK, "nodes": 1},
            timeout_s=900,
            needs_postgres=True,
        ),
        Case(
            PGQUEUER_3,
            "pgqueuer_peer:burst",
            {"n": BURST_N, "nodes": 3},
            {**BURST_QUICK, "nodes": 3},
            timeout_s=900,
            needs_postgres=True,
        ),
        Case(
            "APScheduler 3.11, MemoryJobStore (not durable)",
            "burst:apscheduler",
            {"n": BURST_N, "store": "memory"},
            {**BURST_QUICK, "store": "memory"},
            timeout_s=300,
        ),
        Case(
            "APScheduler 3.11, SQLAlchemyJobStore on a SQLite file",
            "burst:apscheduler",
            {"n": BURST_N, "store": "sqlalchemy"},
            {**BURST_QUICK, "store": "sqlalchemy"},
            timeout_s=600,
        ),
    ),
    (
        Table(
            "Runs per second from the due instant to the last run completed",
            (
                Metric("runs_per_s", "runs/s"),
                Metric("elapsed_s", "due → last done (s)", "{:.2f}", False),
            ),
            notes=(
                "wakecall: each run is a row in `runs` with its attempt and its "
                "`task.run.completed` event, written before it counts as done (the figure ends "
                "when the engine has published the last run's event, i.e. after its transaction "
                "committed). Two paths: the `noop` action as shipped calls nothing outside, so "
                "its runs end in the pass that fires them (run, attempt and event written with "
                'the fire, as wakeups are; no concurrency slot); "async action through '
                'workers" registers a coroutine no-op without that instant end, so each run '
                "takes the path of a webhook or command action: written queued, started by a "
                "worker under the concurrency limit (queued → running), finished by the run "
                "writer (→ success). Tasks: 1 created through `TaskService.create`, the "
                "other 9,999 bulk-inserted copies (set-up, not timed); the engine starts before "
                "the due instant and sleeps until it. Engine defaults otherwise (batch size 500); "
                "the engine's own default concurrency is recorded with each run in "
                "`results.json`. PostgreSQL: "
                "a fresh schema per run, the server of `scripts/start-postgres` (local, fsync "
                "off); with 3 nodes the figure ends at the latest last-publish of the three. "
                "APScheduler: `AsyncIOScheduler` with its default `AsyncIOExecutor`, a coroutine "
                "no-op, `date` trigger jobs, `misfire_grace_time=None` so that every job runs "
                "(jobs for the SQLite store are inserted in one bulk INSERT of the rows its "
                "`add_job` writes, to shorten the set-up); the figure ends at the last "
                "`EVENT_JOB_EXECUTED`. Its SQLite job store deletes each job row as it runs it "
                "and keeps no run record. PgQueuer (the PostgreSQL peer): the jobs enqueued in one "
                "statement with `execute_after` set to the due instant, a coroutine no-op "
                "entrypoint, its `QueueManager` with its defaults but a dequeue batch of 100, "
                "in 1 or 3 worker processes on the same server as wakecall's PostgreSQL cases; "
                "each job counted by its id; it deletes a job when done (a row in its log "
                "instead, no run record)."
            ),
        ),
    ),
)

LATENESS_ARGS = {"tasks": 1000, "duration_s": 20}
LATENESS_QUICK = {"tasks": 200, "duration_s": 5}
LATENESS = Part(
    "lateness",
    "2. Lateness: 1,000 interval tasks every second for 20 s (1,000 fires/s)",
    (
        Case(
            "wakecall, SQLite file, engine defaults",
            "lateness:wakecall_lateness",
            LATENESS_ARGS,
            LATENESS_QUICK,
            timeout_s=300,
            targets=(
                Target("p99_ms", "p99 ≤ 10 ms", _le(10)),
                Target("never_ran", "no run lost", _le(0)),
            ),
        ),
        Case(
            "wakecall, PostgreSQL, 1 node, engine defaults",
            "lateness:wakecall_lateness",
            {**LATENESS_ARGS, "store": "postgres"},
            {**LATENESS_QUICK, "store": "postgres"},
            timeout_s=300,
            needs_postgres=True,
        ),
        Case(
            "PgQueuer 1.6, PostgreSQL, 1 worker process",
            "pgqueuer_peer:lateness",
            LATENESS_ARGS,
            LATENESS_QUICK,
            timeout_s=300,
            needs_postgres=True,
        ),
        Case(
            "APScheduler 3.11, MemoryJobStore",
            "lateness:apscheduler",
            {**LATENESS_ARGS, "store": "memory"},
            {**LATENESS_QUICK, "store": "memory"},
            timeout_s=300,
        ),
        Case(
            "APScheduler 3.11, SQLAlchemyJobStore on a SQLite file",
            "lateness:apscheduler",
            {**LATENESS_ARGS, "store": "sqlalchemy"},
            {**LATENESS_QUICK, "store": "sqlalchemy"},
            timeout_s=300,
        ),
    ),
    (
        Table(
            "Actual start minus nominal fire time",
            (
                Metric("p50_ms", "p50 (ms)", "{:.1f}", False),
                Metric("p99_ms", "p99 (ms)", "{:.1f}", False),
                Metric("max_ms", "max (ms)", "{:.1f}", False),
                Metric("never_ran", "fires never run", "{:,.0f}", False),
            ),
            notes=(
                "Task i starts at T0 + i ms and fires every second after (so the fires arrive "
                "evenly, 1,000 per second); 20,000 nominal fires in the window. wakecall: the "
                "no-op executor notes `now - run.scheduled_for` as each attempt starts (a "
                "SystemClock); the engine's defaults (its concurrency is recorded with each run), "
                "task defaults (overlap `skip`, catch-up `latest`). A fire "
                "that never ran is one of the 20,000 with no execution within 5 s after the "
                "window (skipped, missed or still queued). APScheduler: `AsyncIOScheduler`, "
                "`interval` jobs, its default job settings (`misfire_grace_time` 1 s, "
                "`coalesce`, `max_instances` 1); the job returns `time.time()` and the "
                "`EVENT_JOB_EXECUTED` listener subtracts `scheduled_run_time`. PgQueuer: one job "
                "per nominal fire (20,000), each enqueued up front with `execute_after` at its "
                "fire; the entrypoint subtracts the fire time from `time.time()`."
            ),
        ),
    ),
)

SCALE = Part(
    "scale",
    "3. Scale: 1,000,000 cron tasks in a SQLite store",
    (
        Case(
            "wakecall, SQLite file",
            "scale:scale",
            {"n": 1_000_000, "sample": 10_000, "idle_s": 10},
            {"n": 20_000, "sample": 1_000, "idle_s": 3},
            timeout_s=1200,
            quick_timeout_s=240,
            targets=(
                Target("peak_rss_mb", "RSS < 200 MB", _lt(200)),
                Target("startup_s", "start-up < 1 s", _lt(1)),
                Target("idle_cpu_pct", "idle CPU near zero (< 1 %)", _lt(1)),
            ),
        ),
    ),
    (
        Table(
            "Creating them",
            (
                Metric("bulk_s", "bulk, total (s)", "{:.1f}", False),
                Metric("bulk_build_s", "building records (s)", "{:.1f}", False),
                Metric("bulk_insert_s", "inserting (s)", "{:.1f}", False),
                Metric("bulk_per_s", "bulk tasks/s"),
                Metric("create_per_s", "`TaskService.create`/s"),
                Metric(
                    "create_extrapolated_s", "1M via create, extrapolated (s)", "{:,.0f}", False
                ),
                Metric("db_mb", "file (MB)", "{:,.0f}", False),
            ),
        ),
        Table(
            "Serving them: `wakecall serve --store FILE` over stdio",
            (
                Metric("startup_s", "spawn → `initialize` answer (s)", "{:.2f}", False),
                Metric("tools_list_ms", "`tools/list` (ms)", "{:.1f}", False),
                Metric("first_call_ms", "first `list_tasks` (ms)", "{:.1f}", False),
                Metric("peak_rss_mb", "peak RSS (MB)", "{:.0f}", False),
                Metric("idle_cpu_s", "CPU in 10 s idle (s)", "{:.2f}", False),
                Metric("idle_cpu_pct", "idle CPU (%)", "{:.2f}", False),
            ),
        ),
        Table(
            "One scheduling step with the store full",
            (
                Metric("idle_step_ms", "idle pass (ms)", "{:.2f}", False),
                Metric("fire_step_ms", "firing 500 due tasks (ms)", "{:.0f}", False),
                Metric("fire_step_per_task_us", "per fired task (µs)", "{:.0f}", False),
                Metric("prune_ms", "retention prune (ms)", "{:.1f}", False),
            ),
            notes=(
                "Crons `M H D Mon *` with random fields (none firing within two days), owners "
                "of 10,000 tasks each, a no-op action. Bulk: Task records built from one task "
                "made by `TaskService.create` (schedule parsed and first fire computed per "
                "task) and inserted with the SQLite store's own row encoder, one `executemany` "
                "transaction per 50,000 rows. `TaskService.create`: 10,000 more tasks (one new "
                "owner) into the full store, every check included, one transaction each; the 1M "
                "figure is that rate extrapolated. Serving: `python -m wakecall serve --store "
                "FILE`, raw JSON-RPC lines on its stdin; start-up includes the interpreter and "
                "its imports; peak RSS is `VmHWM`; idle CPU is utime+stime from `/proc` over "
                "10 s after a 1 s settle. Step: the engine's own pass methods called directly "
                "on the full store: an idle pass (`_step` + `_next_deadline`, nothing due, "
                "median of 15) and the passes after 500 random tasks were made due, back to "
                "back until all fired (`_fire_and_dispatch`: claim, plan, record the runs, "
                "which end as they are recorded since the action is a no-op, with their "
                "attempts and events; each pass cut to a few milliseconds)."
            ),
        ),
    ),
)

LATENCY_ARGS = {"calls": 300, "runs": 50, "trials": 50}
LATENCY_QUICK = {"calls": 30, "runs": 10, "trials": 10}
GET_EVENTS_TARGET = Target("event_poll_p50_ms", "event → `get_events` < 10 ms", _lt(10))
LATENCY = Part(
    "latency",
    "4. Agent-facing latency through the MCP SDK client",
    (
        Case(
            "in memory",
            "latency:latency",
            {**LATENCY_ARGS, "transport": "memory"},
            {**LATENCY_QUICK, "transport": "memory"},
            timeout_s=300,
            targets=(
                Target("tool_list_bytes", "tool list ≤ 12,000 B", _le(12_000)),
                Target("create_p50_ms", "p50 < 2 ms", _lt(2)),
                GET_EVENTS_TARGET,
            ),
        ),
        Case(
            "stdio",
            "latency:latency",
            {**LATENCY_ARGS, "transport": "stdio"},
            {**LATENCY_QUICK, "transport": "stdio"},
            timeout_s=300,
            targets=(Target("create_p50_ms", "p50 < 5 ms", _lt(5)), GET_EVENTS_TARGET),
        ),
        Case(
            "Streamable HTTP",
            "latency:latency",
            {**LATENCY_ARGS, "transport": "http"},
            {**LATENCY_QUICK, "transport": "http"},
            timeout_s=300,
            targets=(GET_EVENTS_TARGET,),
        ),
        Case(
            "Streamable HTTP, round trips in legacy mode",
            "latency:latency",
            {**LATENCY_ARGS, "transport": "http", "mode": "legacy"},
            {**LATENCY_QUICK, "transport": "http", "mode": "legacy"},
            timeout_s=300,
        ),
    ),
    (
        Table(
            "Tool round trips",
            (
                Metric("tool_list_bytes", "tool list (bytes)", "{:,.0f}", False),
                Metric("create_p50_ms", "`create_task` p50 (ms)", "{:.2f}", False),
                Metric("create_p99_ms", "`create_task` p99 (ms)", "{:.2f}", False),
                Metric("list_runs_p50_ms", "`list_runs` p50 (ms)", "{:.2f}", False),
                Metric("list_runs_p99_ms", "`list_runs` p99 (ms)", "{:.2f}", False),
            ),
        ),
        Table(
            "From a run's end to the agent",
            (
                Metric("event_poll_p50_ms", "→ waiting `get_events` p50 (ms)", "{:.2f}", False),
                Metric("event_poll_p99_ms", "p99 (ms)", "{:.2f}", False),
                Metric("event_push_p50_ms", "→ session push p50 (ms)", "{:.2f}", False),
                Metric("event_push_p99_ms", "p99 (ms)", "{:.2f}", False),
            ),
            notes=(
                "Tool list: the bytes of every tool's name, description and input schema as "
                "`tools/list` returns them, as JSON: what a host sends the model, which every "
                "session pays for in context (31,071 B before the input schemas were shaped by "
                "hand). In memory: `Client(build_server(runtime))` in the server's process; stdio: "
                "`wakecall serve` as a subprocess (`StdioServerParameters`); HTTP: `wakecall "
                "serve --http --port 0` and `Client(url)`. Round trips: 300 calls each "
                "(`create_task`: a yearly cron with a no-op action; `list_runs`: the first page "
                "of 20 with 50 finished runs stored), in the client's default mode (`auto`: "
                "2026-07-28 over stdio and HTTP, the direct in-process dispatcher in memory), "
                "and over HTTP once more in `legacy` mode (the initialize handshake). "
                "Events, 50 trials: a `get_events` call with `wait` is parked, then `run_now` "
                "queues a manual run of a no-op task; the lag is the arrival of the answer (and "
                "of the `notifications/claude/channel` push) minus the run's `finished_at` in "
                "the store. Pushes go to handshake-generation sessions, so this second session "
                'connects with `mode="legacy"`.'
            ),
        ),
    ),
)

CALLBACKS = Part(
    "callbacks",
    "5. Callbacks: signed webhooks to a loopback receiver",
    (
        Case(
            "throughput, wakecall, SQLite file",
            "callbacks:throughput",
            {"n": 2000},
            {"n": 300},
            timeout_s=300,
            targets=(Target("deliveries_per_s", "≥ 1,000 deliveries/s", _ge(1000)),),
        ),
        Case(
            "steady 100 runs/s, wakecall, SQLite file",
            "callbacks:steady",
            {"rate": 100, "duration_s": 10},
            {"rate": 100, "duration_s": 3},
            timeout_s=300,
            targets=(Target("p99_ms", "p99 < 50 ms", _lt(50)),),
        ),
    ),
    (
        Table(
            "Throughput: draining 2,000 queued deliveries",
            (
                Metric("deliveries_per_s", "deliveries/s"),
                Metric("elapsed_s", "server open → last delivered (s)", "{:.2f}", False),
            ),
            labels=("throughput, wakecall, SQLite file",),
        ),
        Table(
            "Steady 100 runs/s for 10 s: run end → callback received",
            (
                Metric("p50_ms", "p50 (ms)", "{:.1f}", False),
                Metric("p99_ms", "p99 (ms)", "{:.1f}", False),
                Metric("max_ms", "max (ms)", "{:.1f}", False),
            ),
            labels=("steady 100 runs/s, wakecall, SQLite file",),
            notes=(
                "The receiver is its own process (`benchmarks/receiver.py`: asyncio, HTTP/1.1 "
                "keep-alive, answers 200 at once, verifies nothing while measured); afterwards "
                "every request's Standard Webhooks signature is verified with its task's secret. "
                "The server runs with `allow_outbound=loopback` and its callback dispatcher's "
                "default of 16 sends at once. Throughput: 2,000 one-shot tasks with a "
                "`callback_url` run first with the engine alone (so 2,000 deliveries wait in "
                "the store's queue), then `open_runtime` starts the dispatcher; the figure is "
                "2,000 / (last `delivered_at` − opening). Steady: 100 interval tasks every "
                "second, starts spread 10 ms apart, the whole runtime (engine, dispatcher, "
                "pushes) running; lag = arrival at the receiver − run `finished_at`."
            ),
        ),
    ),
)

PROFILE = Part(
    "profile",
    "Profiled runs",
    (
        Case(
            "burst, wakecall, SQLite, noop action",
            "burst:wakecall_sqlite",
            {"n": BURST_N, "profile": "full"},
            {"n": 2000, "profile": "full"},
            timeout_s=600,
        ),
        Case(
            "burst, wakecall, SQLite, async action through workers",
            "burst:wakecall_sqlite",
            {"n": BURST_N, "profile": "full", "path": "worker"},
            {"n": 2000, "profile": "full", "path": "worker"},
            timeout_s=600,
        ),
        Case(
            "lateness, wakecall, SQLite, engine defaults",
            "lateness:wakecall_lateness",
            {**LATENESS_ARGS, "profile": "full"},
            {**LATENESS_QUICK, "profile": "full"},
            timeout_s=300,
        ),
        Case(
            "callbacks throughput, store calls timed",
            "callbacks:throughput",
            {"n": 2000, "profile": True},
            {"n": 300, "profile": True},
            timeout_s=300,
        ),
    ),
    (
        Table(
            "The same workloads under the profilers (slower than unprofiled)",
            (
                Metric("runs_per_s", "burst runs/s"),
                Metric("p99_ms", "lateness p99 (ms)", "{:.1f}", False),
                Metric("deliveries_per_s", "deliveries/s"),
            ),
        ),
    ),
    repeated=False,
)

RESPONSIVE_TARGETS = (
    Target("create_p99_ms", "tool p99 ≤ 10 ms", _le(10)),
    Target("list_runs_p99_ms", "tool p99 ≤ 10 ms", _le(10)),
    Target("lag_p99_ms", "loop lag p99 ≤ 5 ms", _le(5)),
)
RESPONSIVE = Part(
    "responsive",
    "6. Responsiveness: tool calls and the event loop's lag under load (SQLite)",
    (
        Case(
            "during a burst of 10,000 no-op runs",
            "responsive:burst",
            {"n": BURST_N},
            {"n": 2_000},
            timeout_s=600,
            targets=RESPONSIVE_TARGETS,
        ),
        Case(
            "during a prune of 1,000,000 finished runs",
            "responsive:prune",
            {"tasks": 1_000, "per_task": 1_000},
            {"tasks": 200, "per_task": 500},
            timeout_s=900,
            quick_timeout_s=300,
            targets=RESPONSIVE_TARGETS,
        ),
    ),
    (
        Table(
            "Tool round trips and the loop's lag while the engine works",
            (
                Metric("create_p50_ms", "`create_task` p50 (ms)", "{:.1f}", False),
                Metric("create_p99_ms", "`create_task` p99 (ms)", "{:.1f}", False),
                Metric("list_runs_p50_ms", "`list_runs` p50 (ms)", "{:.1f}", False),
                Metric("list_runs_p99_ms", "`list_runs` p99 (ms)", "{:.1f}", False),
                Metric("lag_p99_ms", "loop lag p99 (ms)", "{:.1f}", False),
                Metric("lag_max_ms", "loop lag max (ms)", "{:.1f}", False),
                Metric("runs_per_s", "burst runs/s"),
                Metric("prune_s", "prune (s)", "{:.1f}", False),
            ),
            notes=(
                "The server in memory (`Client(build_server(runtime))`: the client, the server "
                "and the engine on one event loop, one process, as when served), a SQLite "
                "file, warmed with 20 calls of each tool, then `gc.freeze()` as `wakecall "
                "serve` does once started. While the load lasts, one client calls "
                "`create_task` (a yearly cron, no-op action) and `list_runs` (a page of 20) in "
                "turn, one call at a time; a probe sleeps 1 ms again and again and notes how "
                "late it wakes. Burst: the burst of part 1 (10,000 one-shot no-op tasks due "
                "at one instant), measured from shortly before the instant to the last run's "
                "event. Prune: 1,000 tasks with 1,000 finished runs each (and their attempts), "
                "finished over the last 40 days, trimmed by the engine's first prune (runs "
                "past 30 days, then all but the newest 100 of each task: 900,000 go); "
                "measured from the prune's start to its end."
            ),
        ),
    ),
)

APPLY = Part(
    "apply",
    "7. Apply: a file of 100,000 tasks through `wakecall apply`",
    (
        Case(
            "wakecall apply, SQLite file",
            "applying:apply",
            {"n": 100_000},
            {"n": 10_000},
            timeout_s=900,
            targets=(Target("apply_per_s", "≥ 20,000 tasks/s", _ge(20_000)),),
        ),
    ),
    (
        Table(
            "From spawn to exit",
            (
                Metric("apply_s", "apply (s)", "{:.1f}", False),
                Metric("apply_per_s", "tasks/s"),
                Metric("reapply_s", "again, all unchanged (s)", "{:.1f}", False),
                Metric("reapply_per_s", "again, tasks/s"),
                Metric("file_mb", "file (MB)", "{:.1f}", False),
            ),
            notes=(
                "`python -m wakecall apply FILE --store DB --owner fleet` into a new SQLite "
                "file, the command a user runs, timed from spawn to exit (interpreter start, "
                "reading and checking the file, planning, one transaction); then the same "
                "file again, every task unchanged. The file: a quarter each of crons in one "
                "of four zones with a webhook, 2 retries and a timeout; the same with another "
                "zone; daily times that wake the agent; intervals with a callback URL (a "
                "secret made for each) and metadata. Its schedules repeat (1,440 minutes of "
                "the day times four zones), as a fleet's do; each distinct one is parsed once "
                "per apply. Every check `create_task` makes is made, the owner's task limit "
                "raised to N in the config file."
            ),
        ),
    ),
)

PARTS: dict[str, Part] = {
    p.name: p for p in (BURST, LATENESS, SCALE, LATENCY, CALLBACKS, RESPONSIVE, APPLY, PROFILE)
}


def postgres_available() -> bool:
    return bool(os.environ.get(POSTGRES_ENV))
