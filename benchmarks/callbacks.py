"""Part 5, callbacks: signed webhook deliveries to a receiver on 127.0.0.1 (its own process,
`benchmarks.receiver`), the server allowed to reach loopback (`allow_outbound=loopback`).

* throughput: N no-op runs of N tasks with a `callback_url` are finished first (the engine
  alone, so N deliveries wait in the store's queue), then the server is opened and its callback
  dispatcher drains the queue: deliveries per second from opening to the last one recorded as
  delivered, and the CPU time the server's process spent meanwhile per delivery (all its
  threads; less sensitive than the rate to other work on a shared machine);
* steady rate: tasks every second, their starts spread evenly (R runs per second in all), the
  whole server running: time from each run's end (`finished_at`) to its callback's arrival at
  the receiver, p50/p99/max.

Afterwards every request's Standard Webhooks signature is verified with its task's secret and
each run must have been delivered exactly once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio

from benchmarks.burst import OWNER, _Completion, engine_config
from benchmarks.common import (
    ROOT,
    TimedStore,
    bulk_insert_tasks,
    check_text,
    clone_tasks,
    from_us,
    sqlite_rows,
    summary_ms,
    utcnow,
)


class ReceiverProcess:
    def __enter__(self) -> ReceiverProcess:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.receiver"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=str(ROOT),
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("port "):
            raise RuntimeError(f"the receiver did not start: {line!r}")
        self.port = int(line.split()[1])
        return self

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def records(self) -> list[dict[str, Any]]:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/dump", timeout=30) as r:
            return json.loads(r.read())

    def __exit__(self, *exc: object) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def _verify(records: list[dict[str, Any]], secret_of: dict[str, str]) -> tuple[int, dict[str, int]]:
    """How many requests carry a valid signature; how many times each run id arrived."""
    from standardwebhooks import Webhook, WebhookVerificationError

    valid = 0
    per_run: dict[str, int] = {}
    hooks: dict[str, Any] = {}
    for record in records:
        body = json.loads(record["body"])
        task_id = (body.get("task") or {}).get("id")
        run_id = (body.get("run") or {}).get("id")
        secret = secret_of.get(task_id or "")
        if secret is None:
            continue
        hook = hooks.setdefault(secret, Webhook(secret))
        try:
            hook.verify(record["body"], record["headers"])
        except WebhookVerificationError:
            continue
        valid += 1
        if run_id:
            per_run[run_id] = per_run.get(run_id, 0) + 1
    return valid, per_run


def _settings(path: Path) -> Any:
    from wakecall.settings import Settings

    return Settings(store=str(path), allow_outbound=("loopback",), log_level="WARNING")


def throughput(n: int = 2000, timeout_s: float = 300, profile: bool = False) -> dict[str, Any]:
    """With `profile`, the server's store calls are timed (`TimedStore`) while it drains."""

    async def body(tmp: Path) -> dict[str, Any]:
        from wakecall.delivery.signing import new_secret
        from wakecall.engine import Engine
        from wakecall.models import NoopAction, TaskSpec
        from wakecall.server import open_runtime
        from wakecall.store import SQLiteStore
        from wakecall.testing import service_for

        path = tmp / "callbacks.db"
        with ReceiverProcess() as receiver:
            store = SQLiteStore(path)
            await store.open()
            try:
                engine = Engine(store, config=engine_config(64, 500))
                due = utcnow() + timedelta(seconds=2 + n / 2000)
                spec = TaskSpec(
                    name="cb",
                    schedule={"type": "once", "at": due.isoformat()},
                    action=NoopAction(),
                    callback_url=receiver.url(),
                )
                template = (await service_for(engine).create(OWNER, spec)).task
                tasks = [template, *clone_tasks(template, n - 1, "cb")]
                await bulk_insert_tasks(store, tasks[1:])
                secret_of = {}
                now = utcnow()
                for task in tasks:
                    secret_of[task.id] = new_secret()
                    await store.add_callback_secret(task.id, secret_of[task.id], now, None)
                done = _Completion(n)
                engine.fanout.add_listener(done)
                async with engine:
                    with anyio.fail_after(timeout_s):
                        await done.done.wait()
            finally:
                await store.close()
            ((pending,),) = sqlite_rows(
                path, "SELECT count(*) FROM deliveries WHERE status = 'pending'"
            )
            timed = TimedStore(SQLiteStore(path)) if profile else None
            opened = time.time()
            cpu_opened = time.process_time()
            async with open_runtime(_settings(path), store=timed):
                with anyio.fail_after(timeout_s):
                    while True:
                        await anyio.sleep(0.1)
                        ((delivered,),) = sqlite_rows(
                            path, "SELECT count(*) FROM deliveries WHERE status = 'delivered'"
                        )
                        if delivered >= n:
                            break
                cpu_s = time.process_time() - cpu_opened
            records = receiver.records()
        ((delivered, last_us, failed),) = sqlite_rows(
            path,
            "SELECT sum(status = 'delivered'), max(delivered_at), sum(status = 'failed') "
            "FROM deliveries",
        )
        valid, per_run = _verify(records, secret_of)
        once = sum(1 for c in per_run.values() if c == 1)
        good = pending == n and delivered == n and len(records) == n and valid == n and once == n
        elapsed = from_us(last_us).timestamp() - opened
        if timed is not None:
            await timed.inner.close()
        return {
            **({"store_calls": timed.report(), "runs": n} if timed is not None else {}),
            "deliveries_per_s": n / elapsed,
            "elapsed_s": elapsed,
            "server_cpu_ms_per_delivery": 1000 * cpu_s / n,
            "check": check_text(
                good,
                f"{pending} queued, {delivered} delivered, {failed or 0} failed; the receiver got "
                f"{len(records)} requests, {valid} validly signed, {once}/{n} runs exactly once"
                + ("" if good else ": MISMATCH"),
            ),
        }

    with tempfile.TemporaryDirectory(prefix="wakecall-callbacks-") as tmp:
        return anyio.run(body, Path(tmp))


def steady(rate: int = 100, duration_s: float = 10, grace_s: float = 10) -> dict[str, Any]:
    async def body(tmp: Path) -> dict[str, Any]:
        from wakecall.models import NoopAction, TaskSpec
        from wakecall.server import open_runtime

        path = tmp / "steady.db"
        with ReceiverProcess() as receiver:
            async with open_runtime(_settings(path)) as rt:
                start = utcnow() + timedelta(seconds=2 + rate * 0.005)
                secret_of = {}
                for i in range(rate):
                    anchor = start + timedelta(seconds=i / rate)
                    created = await rt.tasks.create(
                        OWNER,
                        TaskSpec(
                            name=f"steady-{i}",
                            schedule={
                                "type": "interval",
                                "every": "1s",
                                "start": anchor.isoformat(),
                            },
                            action=NoopAction(),
                            callback_url=receiver.url(),
                        ),
                    )
                    secret_of[created.task.id] = created.callback_secret
                if utcnow() > start:
                    raise RuntimeError("creating the tasks overran the start")
                end = start + timedelta(seconds=duration_s)
                expected = rate * int(duration_s)
                await anyio.sleep((end - utcnow()).total_seconds())
                with anyio.move_on_after(grace_s):
                    while True:
                        ((got,),) = sqlite_rows(
                            path,
                            "SELECT count(*) FROM deliveries d JOIN events e "
                            "ON e.cursor = d.event_cursor JOIN runs r ON r.id = e.run_id "
                            "WHERE d.status = 'delivered' AND r.scheduled_for < ?",
                            (int(end.timestamp() * 1_000_000),),
                        )
                        if got >= expected:
                            break
                        await anyio.sleep(0.1)
            records = receiver.records()
        runs = {
            rid: (from_us(sched), from_us(fin).timestamp() if fin else None)
            for rid, sched, fin in sqlite_rows(
                path,
                "SELECT id, scheduled_for, finished_at FROM runs WHERE scheduled_for < ?",
                (int(end.timestamp() * 1_000_000),),
            )
        }
        valid, per_run = _verify(records, secret_of)
        arrivals: dict[str, float] = {}
        for record in records:
            run_id = (json.loads(record["body"]).get("run") or {}).get("id")
            if run_id in runs:
                arrivals.setdefault(run_id, record["t"])
        lags = [arrivals[r] - runs[r][1] for r in arrivals if runs[r][1] is not None]
        in_window = [r for r, (sched, _) in runs.items() if start <= sched < end]
        once = sum(1 for r in in_window if per_run.get(r) == 1)
        # Runs keep firing until the server stops: their callbacks arrive too, and are not
        # counted as the window's. A webhook-id seen twice would be a delivery sent twice.
        window = set(in_window)
        ids = [
            record["headers"].get("webhook-id")
            for record in records
            if (json.loads(record["body"]).get("run") or {}).get("id") in window
        ]
        repeated = len(ids) - len(set(ids))
        good = once == expected and len(in_window) == expected and repeated == 0
        return {
            **summary_ms(lags),
            "rate": rate,
            "check": check_text(
                good,
                f"{len(in_window)} of {expected} fires ran; {once} delivered exactly once, "
                f"validly signed ({len(ids)} requests for them, {repeated} webhook-id repeated; "
                f"{len(records) - len(ids)} more for fires after the window; {valid} valid in all)"
                + ("" if good else ": MISMATCH"),
            ),
        }

    with tempfile.TemporaryDirectory(prefix="wakecall-steady-") as tmp:
        return anyio.run(body, Path(tmp))
