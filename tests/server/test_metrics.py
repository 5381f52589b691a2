"""Prometheus metrics from a real engine on SQLite, driven by a fake clock, read back by parsing
the exposition text; deliveries against a loopback receiver; the route over real HTTP."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import httpx2
import pytest
import uvicorn
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.types import ASGIApp

from support.loopback import Receiver, open_loop, real_time_clock, serve_receiver
from wakecall.engine import Engine, EngineConfig, TaskService
from wakecall.models import NoopAction, RetryPolicy, TaskSpec
from wakecall.server.metrics import Metrics, metrics_route
from wakecall.store import SQLiteStore
from wakecall.testing import (
    FakeClock,
    ScriptedExecutor,
    advance,
    run_until_idle,
    service_for,
    step_to,
)

START = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
OWNER = "alice"
CONFIG = EngineConfig(
    node_id="node-a", poll_interval=timedelta(hours=1), prune_every=timedelta(days=1)
)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(body: bytes) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def series(samples: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    return {labels: v for (n, labels), v in samples.items() if n == name}


def finished(samples: Samples) -> dict[tuple[str, str], float]:
    """`wakecall_runs_finished_total` as {(task_id, status): count}."""
    return {
        (dict(labels)["task_id"], dict(labels)["status"]): v
        for labels, v in series(samples, "wakecall_runs_finished_total").items()
    }


def errors(samples: Samples) -> dict[str, float]:
    return {
        dict(labels)["kind"]: v
        for labels, v in series(samples, "wakecall_attempt_errors_total").items()
    }


def spec(schedule: str, **kw: Any) -> TaskSpec:
    return TaskSpec(name="job", schedule=schedule, action=NoopAction(), **kw)


@dataclass
class Rig:
    engine: Engine
    clock: FakeClock
    action: ScriptedExecutor
    metrics: Metrics

    @property
    def tasks(self) -> TaskService:
        return service_for(self.engine)

    async def scrape(self) -> Samples:
        body, content_type = await self.metrics.render()
        assert content_type.startswith("text/plain")
        return parse(body)

    async def running(self, count: int, calls: int | None = None) -> None:
        """Wait until `count` attempts execute (`calls` started, when given) and the loop
        sleeps again."""
        with anyio.fail_after(5):
            await self.action.wait_for(
                lambda a: a.active == count and (calls is None or len(a.calls) == calls)
            )
            await anyio.lowlevel.checkpoint()
            await self.engine.wait_until(self.engine.is_settled)

    async def step_to(self, delta: timedelta) -> None:
        with anyio.fail_after(5):
            await step_to(self.engine, self.clock, START + delta)

    async def idle(self) -> None:
        with anyio.fail_after(5):
            await run_until_idle(self.engine)


@asynccontextmanager
async def open_rig(tmp_path: Path, metrics: Metrics) -> AsyncIterator[Rig]:
    store = SQLiteStore(tmp_path / "w.db")
    await store.open()
    clock = FakeClock(START)
    action = ScriptedExecutor()
    try:
        with anyio.fail_after(10):
            async with Engine(store, clock=clock, config=CONFIG, executors={"noop": action}) as e:
                metrics.attach(e)
                await run_until_idle(e)
                yield Rig(e, clock, action, metrics)
            # Detached once the engine has stopped (its last writes are counted), before the
            # store closes (a scrape reads it).
            metrics.detach(e)
    finally:
        await store.close()


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with open_rig(tmp_path, Metrics()) as r:
        yield r


async def test_successful_runs_are_counted_per_task_with_their_lateness(rig: Rig) -> None:
    task = (await rig.tasks.create(OWNER, spec("@every 1m"))).task
    # A jump of the clock is downtime to the engine: the 5-minute fire runs 2.5s late.
    with anyio.fail_after(5):
        await advance(rig.engine, rig.clock, timedelta(minutes=5, seconds=2.5))
    await rig.step_to(timedelta(minutes=7))  # the 6- and 7-minute fires, on time
    samples = await rig.scrape()
    assert finished(samples) == {(task.id, "success"): 3}
    assert value(samples, "wakecall_run_lateness_seconds_count") == 3
    assert value(samples, "wakecall_run_lateness_seconds_sum") == 2.5
    assert value(samples, "wakecall_run_lateness_seconds_bucket", le="0.001") == 2
    assert value(samples, "wakecall_run_lateness_seconds_bucket", le="1.0") == 2
    assert value(samples, "wakecall_run_lateness_seconds_bucket", le="2.5") == 3
    assert value(samples, "wakecall_run_duration_seconds_count") == 3
    assert value(samples, "wakecall_run_duration_seconds_sum") == 0  # the fake clock stood still
    assert set(errors(samples).values()) == {0}
    assert errors(samples).keys() == {"failure", "timeout", "cancelled", "interrupted"}
    assert value(samples, "wakecall_runs_running") == 0


async def test_failed_attempts_count_as_retrying_until_the_run_ends(rig: Rig) -> None:
    rig.action.script = ["boom", "boom", "ok", "bad gateway", "bad gateway"]
    recovers = (
        await rig.tasks.create(
            OWNER, spec("in 1m", retry=RetryPolicy(attempts=3, backoff="none", delay="10s"))
        )
    ).task
    await rig.step_to(timedelta(minutes=2))
    gives_up = (
        await rig.tasks.create(
            OWNER, spec("in 1m", retry=RetryPolicy(attempts=2, backoff="none", delay="10s"))
        )
    ).task
    await rig.step_to(timedelta(minutes=4))
    samples = await rig.scrape()
    assert finished(samples) == {
        (recovers.id, "retrying"): 2,
        (recovers.id, "success"): 1,
        (gives_up.id, "retrying"): 1,
        (gives_up.id, "failure"): 1,
    }
    assert errors(samples) == {"failure": 4, "timeout": 0, "cancelled": 0, "interrupted": 0}
    assert value(samples, "wakecall_run_duration_seconds_count") == 2  # final runs only
    # Retries start late on purpose: only first attempts measure lateness.
    assert value(samples, "wakecall_run_lateness_seconds_count") == 2


async def test_timeouts_and_cancellations_are_errors_of_their_kind(rig: Rig) -> None:
    rig.action.hold = True
    slow = (await rig.tasks.create(OWNER, spec("in 1m", timeout="5s"))).task
    rig.clock.advance(timedelta(minutes=1))
    await rig.running(1)
    assert value(await rig.scrape(), "wakecall_runs_running") == 1
    with anyio.fail_after(5):
        await advance(rig.engine, rig.clock, timedelta(seconds=5))
    replaced = (await rig.tasks.create(OWNER, spec("@every 1m", overlap="cancel_previous"))).task
    rig.clock.advance(timedelta(minutes=1))
    await rig.running(1, calls=2)
    rig.clock.advance(timedelta(minutes=1))  # the newer fire cancels the held one
    await rig.running(1, calls=3)
    rig.action.release()
    await rig.idle()
    samples = await rig.scrape()
    assert finished(samples) == {
        (slow.id, "timeout"): 1,
        (replaced.id, "cancelled"): 1,
        (replaced.id, "success"): 1,
    }
    assert errors(samples) == {"failure": 0, "timeout": 1, "cancelled": 1, "interrupted": 0}
    # 5s until the timeout, 60s until the cancel, 0s for the released one.
    assert value(samples, "wakecall_run_duration_seconds_count") == 3
    assert value(samples, "wakecall_run_duration_seconds_sum") == 65
    assert value(samples, "wakecall_run_duration_seconds_bucket", le="5.0") == 2
    assert value(samples, "wakecall_runs_running") == 0


async def test_a_run_stopped_by_shutdown_is_an_interrupted_attempt_queued_again(
    tmp_path: Path,
) -> None:
    metrics = Metrics()
    async with open_rig(tmp_path, metrics) as rig:
        rig.action.hold = True
        task = (await rig.tasks.create(OWNER, spec("in 1m", retry=RetryPolicy(attempts=2)))).task
        rig.clock.advance(timedelta(minutes=1))
        await rig.running(1)
    body, _ = await metrics.render()  # detached: counters only, no store read
    samples = parse(body)
    assert finished(samples) == {(task.id, "retrying"): 1}
    assert errors(samples)["interrupted"] == 1


async def test_skipped_and_missed_runs_are_counted_apart_from_executions(rig: Rig) -> None:
    rig.action.hold = True
    busy = (await rig.tasks.create(OWNER, spec("@every 1m", overlap="skip"))).task
    rig.clock.advance(timedelta(minutes=1))
    await rig.running(1)
    rig.clock.advance(timedelta(minutes=1))  # the next fire finds the first run still going
    await rig.running(1)
    rig.action.release()
    await rig.idle()
    await rig.tasks.pause(OWNER, busy.id)
    rig.action.hold = False
    late = (await rig.tasks.create(OWNER, spec("@every 1m", catchup_window="10m"))).task
    # Two hours down: fires older than the window are one missed run; the latest one runs.
    with anyio.fail_after(5):
        await advance(rig.engine, rig.clock, timedelta(hours=2))
    samples = await rig.scrape()
    assert value(samples, "wakecall_runs_skipped_total") == 1
    assert value(samples, "wakecall_runs_missed_total") == 1
    assert finished(samples) == {(busy.id, "success"): 1, (late.id, "success"): 1}


async def test_runs_silent_past_the_heartbeat_timeout_are_counted_stale(rig: Rig) -> None:
    rig.action.hold = True
    await rig.tasks.create(OWNER, spec("in 1m"))
    await rig.tasks.create(OWNER, spec("in 2m"))
    rig.clock.advance(timedelta(minutes=1))
    await rig.running(1)
    rig.clock.advance(timedelta(minutes=1))
    await rig.running(2)
    rig.clock.advance(timedelta(minutes=9))  # the default heartbeat timeout is 10 minutes
    await rig.running(2)
    assert value(await rig.scrape(), "wakecall_heartbeats_stale_total") == 1
    for _ in range(3):  # each silent run is reported once
        rig.clock.advance(timedelta(minutes=5))
        await rig.running(2)
    assert value(await rig.scrape(), "wakecall_heartbeats_stale_total") == 2
    rig.action.release()
    await rig.idle()


async def test_tasks_paused_after_failed_runs_are_counted(rig: Rig) -> None:
    rig.action.script = ["down"] * 4
    await rig.tasks.create(OWNER, spec("@every 1m", pause_after_failures=2))
    other = (await rig.tasks.create(OWNER, spec("@every 1m", pause_after_failures=3))).task
    await rig.step_to(timedelta(minutes=2))  # 2 failed runs each: the first task pauses
    assert value(await rig.scrape(), "wakecall_tasks_paused_after_failures_total") == 1
    await rig.tasks.pause(OWNER, other.id)  # by hand: not counted
    await rig.idle()
    assert value(await rig.scrape(), "wakecall_tasks_paused_after_failures_total") == 1


async def test_runs_are_counted_by_what_started_them_and_a_backfill_is_not_late(
    rig: Rig,
) -> None:
    task = (await rig.tasks.create(OWNER, spec("0 0 * * * *"))).task  # hourly
    await rig.step_to(timedelta(hours=2))  # two scheduled runs, started on time
    await rig.tasks.run_now(OWNER, task.id)
    await rig.idle()
    done = await rig.tasks.backfill(
        OWNER, task.id, start=START - timedelta(hours=6), end=START - timedelta(hours=1)
    )
    assert len(done.done.runs) == 5
    await rig.idle()
    samples = await rig.scrape()
    started = {
        dict(labels)["trigger"]: v
        for labels, v in series(samples, "wakecall_runs_started_total").items()
    }
    assert started == {
        "schedule": 2,
        "manual": 1,
        "backfill": 5,
        "catchup": 0,
        "wakeup": 0,
        "event": 0,
        "dependency": 0,
    }
    # Lateness counts the two scheduled runs, not the backfill's runs hours after their fires.
    assert value(samples, "wakecall_run_lateness_seconds_count") == 2
    assert value(samples, "wakecall_run_lateness_seconds_bucket", le="+Inf") == 2


async def test_the_due_backlog_is_read_from_the_store_when_scraped(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "w.db")
    await store.open()
    try:
        clock = FakeClock(START)
        # A scheduler that is not running: nothing due is taken.
        engine = Engine(store, clock=clock, config=CONFIG, executors={"noop": ScriptedExecutor()})
        metrics = Metrics()
        metrics.attach(engine)
        for schedule in ("in 1m", "in 2m", "in 1h"):
            await service_for(engine).create(OWNER, spec(schedule))
        manual = (await service_for(engine).create(OWNER, spec("in 1d"))).task
        await service_for(engine).run_now(OWNER, manual.id)
        clock.set(START + timedelta(minutes=5))
        samples = parse((await metrics.render())[0])
        assert value(samples, "wakecall_due_tasks") == 2
        assert value(samples, "wakecall_due_runs") == 1
        metrics.detach(engine)
    finally:
        await store.close()


async def test_tasks_beyond_the_series_bound_lose_their_oldest_series(tmp_path: Path) -> None:
    async with open_rig(tmp_path, Metrics(max_task_series=2)) as rig:
        first = (await rig.tasks.create(OWNER, spec("in 1m"))).task
        second = (await rig.tasks.create(OWNER, spec("in 2m"))).task
        await rig.step_to(timedelta(minutes=2))
        third = (await rig.tasks.create(OWNER, spec("in 1m"))).task
        await rig.step_to(timedelta(minutes=3))
        samples = await rig.scrape()
    assert finished(samples) == {(second.id, "success"): 1, (third.id, "success"): 1}
    assert first.id not in {task_id for task_id, _ in finished(samples)}


async def test_a_detached_metrics_hears_nothing_more(rig: Rig) -> None:
    await rig.tasks.create(OWNER, spec("in 1m"))
    await rig.step_to(timedelta(minutes=1))
    rig.metrics.detach(rig.engine)
    await rig.tasks.create(OWNER, spec("in 1m"))
    await rig.step_to(timedelta(minutes=3))
    rig.metrics.attach(rig.engine)  # again, for the scrape (and the fixture's detach)
    assert sum(finished(await rig.scrape()).values()) == 1


async def test_two_metrics_in_one_process_keep_separate_counts(tmp_path: Path) -> None:
    one, two = Metrics(), Metrics()
    async with open_rig(tmp_path, one) as rig:
        await rig.tasks.create(OWNER, spec("in 1m"))
        await rig.step_to(timedelta(minutes=1))
        samples_one = await rig.scrape()
    samples_two = parse((await two.render())[0])
    assert sum(finished(samples_one).values()) == 1
    assert finished(samples_two) == {}


# --- deliveries ------------------------------------------------------------------------------


async def test_webhook_deliveries_are_counted_by_their_status_after_each_attempt(
    tmp_path: Path,
) -> None:
    metrics = Metrics()
    async with serve_receiver() as receiver:
        with anyio.fail_after(30):
            async with open_loop(tmp_path, real_time_clock()) as loop:
                metrics.attach(loop.rt.engine, loop.rt.callbacks)
                receiver.script = [500, 410]
                task = await loop.call(
                    "create_task",
                    name="report",
                    schedule="in 1m",
                    action={"type": "noop"},
                    callback_url=receiver.url(),
                )
                receiver.secrets.append(task["callback_secret"])
                await loop.step(timedelta(minutes=1))
                await _attempts(receiver, loop, 1)
                await loop.step(timedelta(seconds=6))  # the first retry: 5s and some jitter
                await _attempts(receiver, loop, 2)
                (dead,) = (await loop.call("list_deliveries", status="failed"))["deliveries"]
                await loop.call("redeliver", delivery_id=dead["id"])
                await _attempts(receiver, loop, 3)
                samples = parse((await metrics.render())[0])
                metrics.detach(loop.rt.engine, loop.rt.callbacks)
    assert series(samples, "wakecall_deliveries_total") == {
        frozenset({("channel", "webhook"), ("status", "retrying")}): 1,
        frozenset({("channel", "webhook"), ("status", "failed")}): 1,
        frozenset({("channel", "webhook"), ("status", "delivered")}): 1,
    }
    assert finished(samples) == {(task["id"], "success"): 1}


async def _attempts(receiver: Receiver, loop: Any, count: int) -> None:
    with anyio.fail_after(10):
        await receiver.wait_for(lambda: len(receiver.attempts) == count)
        await loop.settle()


# --- over HTTP -------------------------------------------------------------------------------


@asynccontextmanager
async def serve(app: ASGIApp) -> AsyncIterator[str]:
    """`app` served by uvicorn on a free loopback port; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, [sock])
        with anyio.fail_after(5):
            while not server.started:  # noqa: ASYNC110 - uvicorn exposes only a flag
                await anyio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
        server.should_exit = True
    sock.close()


async def test_get_metrics_over_http_serves_the_text_format(rig: Rig) -> None:
    task = (await rig.tasks.create(OWNER, spec("in 1m"))).task
    await rig.step_to(timedelta(minutes=1))
    app = Starlette(routes=[metrics_route(rig.metrics)])
    async with serve(app) as base, httpx2.AsyncClient(base_url=base, timeout=5) as http:
        with anyio.fail_after(5):
            plain = await http.get("/metrics")
            open_metrics = await http.get(
                "/metrics", headers={"accept": "application/openmetrics-text; version=1.0.0"}
            )
            post = await http.post("/metrics")
    assert plain.status_code == 200
    assert plain.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples = parse(plain.content)
    assert finished(samples) == {(task.id, "success"): 1}
    assert value(samples, "wakecall_due_runs") == 0
    assert open_metrics.status_code == 200
    assert open_metrics.headers["content-type"].startswith("application/openmetrics-text")
    assert open_metrics.text.endswith("# EOF\n")
    assert post.status_code == 405


async def test_with_tokens_the_route_wants_one_of_them(rig: Rig) -> None:
    owners = {"s3cret": OWNER, "other": "bob"}
    app = Starlette(routes=[metrics_route(rig.metrics, owners=owners, operators=["ops"])])
    async with serve(app) as base, httpx2.AsyncClient(base_url=base, timeout=5) as http:
        with anyio.fail_after(5):
            none = await http.get("/metrics")
            wrong = await http.get("/metrics", headers={"authorization": "Bearer nope"})
            operator = await http.get("/metrics", headers={"authorization": "Bearer ops"})
    assert none.status_code == wrong.status_code == 401
    assert none.headers["www-authenticate"].startswith("Bearer")
    assert "wakecall_" not in wrong.text
    assert operator.status_code == 200 and "wakecall_runs_running 0.0" in operator.text


async def test_an_owner_s_token_shows_its_own_series_and_nothing_of_others(rig: Rig) -> None:
    mine = (await rig.tasks.create(OWNER, spec("in 1m"))).task
    theirs = (await rig.tasks.create("bob", spec("in 1m"))).task
    await rig.step_to(timedelta(minutes=1))
    owners = {"s3cret": OWNER, "other": "bob"}
    app = Starlette(routes=[metrics_route(rig.metrics, owners=owners, operators=["ops"])])
    async with serve(app) as base, httpx2.AsyncClient(base_url=base, timeout=5) as http:
        with anyio.fail_after(5):
            alice = await http.get("/metrics", headers={"authorization": "Bearer s3cret"})
            bob = await http.get("/metrics", headers={"authorization": "Bearer other"})
            operator = await http.get("/metrics", headers={"authorization": "Bearer ops"})
    assert alice.status_code == bob.status_code == 200
    assert finished(parse(alice.content)) == {(mine.id, "success"): 1}
    assert finished(parse(bob.content)) == {(theirs.id, "success"): 1}
    for owner_view in (alice.text, bob.text):  # no node-wide counts that tell of others
        assert "wakecall_runs_running" not in owner_view
        assert "wakecall_due_tasks" not in owner_view
        assert "process_" not in owner_view
    assert theirs.id not in alice.text and mine.id not in bob.text
    assert finished(parse(operator.content)) == {
        (mine.id, "success"): 1,
        (theirs.id, "success"): 1,
    }


async def test_runs_held_back_by_a_flow_key_are_a_gauge_by_limit_and_key(rig: Rig) -> None:
    rig.action.hold = True
    for _ in range(3):
        await rig.tasks.create(OWNER, spec("in 1m", concurrency={"key": "crm", "limit": 1}))
    rig.clock.advance(timedelta(minutes=1))
    await rig.running(1)
    samples = await rig.scrape()
    assert value(samples, "wakecall_runs_held_back", limit="concurrency", key="crm") == 2
    rig.action.hold = False
    rig.action.release()
    await rig.idle()
    assert series(await rig.scrape(), "wakecall_runs_held_back") == {}
