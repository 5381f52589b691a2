"""Part 3, scale: a SQLite store holding N cron tasks.

* bulk creation: Task records built (schedule parsed, first fire computed) and inserted with the
  store's own row encoder in one `executemany` per 50,000 rows;
* `TaskService.create` (every check, one transaction per task) on a sample, into the full
  store, extrapolated to N;
* `wakecall serve --store FILE` as a subprocess over stdio: time from spawn to the `initialize`
  answer, `tools/list` and a first `list_tasks` call, peak RSS (VmHWM), CPU seconds over an
  idle period;
* the cost of one scheduling step with N tasks: an idle pass, and a pass that fires a batch of
  due tasks.

The crons are yearly (`M H D Mon *`, random fields, distinct expressions) and none fires within
two days, so the server is idle while measured.
"""

from __future__ import annotations

import gc
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import anyio

from benchmarks.burst import engine_config
from benchmarks.common import bulk_insert_tasks, check_text, service, sqlite_rows, us, utcnow

CHUNK = 50_000


def _cron_expressions(count: int, now: datetime, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    soon = {(d.month, d.day) for d in (now, now + timedelta(days=1), now + timedelta(days=2))}
    out = []
    while len(out) < count:
        month, day = rng.randint(1, 12), rng.randint(1, 28)
        if (month, day) in soon:
            continue
        out.append(f"{rng.randint(0, 59)} {rng.randint(0, 23)} {day} {month} *")
    return out


@lru_cache(maxsize=200_000)
def _parsed(expression: str, now: datetime) -> tuple[dict[str, Any], datetime]:
    from wakecall.schedules import parse_schedule

    schedule = parse_schedule(expression, timezone="UTC", now=now)
    first = schedule.next_after(now)
    assert first is not None
    return schedule.to_spec(), first


async def _template(store: Any, now: datetime) -> Any:
    """One task created the way the service creates it; the bulk rows are copies of it."""
    from wakecall.engine import Engine
    from wakecall.models import NoopAction, TaskSpec

    engine = Engine(store, config=engine_config(8, 500))
    task = (
        await service(engine).create(
            "owner-template",
            TaskSpec(name="template", schedule="0 0 1 1 *", action=NoopAction()),
        )
    ).task
    return task


async def bulk_create(path: Path, n: int) -> dict[str, Any]:
    """Build and insert n cron tasks (owners of 10,000 tasks each); seconds spent on each."""
    from wakecall.ids import new_id
    from wakecall.store import SQLiteStore

    store = SQLiteStore(path)
    await store.open()
    try:
        now = utcnow()
        template = await _template(store, now)
        exprs = _cron_expressions(n - 1, now)
        build = insert = 0.0
        for start in range(0, n - 1, CHUNK):
            t0 = time.perf_counter()
            chunk = []
            for i in range(start, min(start + CHUNK, n - 1)):
                spec, first = _parsed(exprs[i], now)
                chunk.append(
                    template.replace(
                        id=new_id("tsk"),
                        owner=f"owner-{i // 10_000}",
                        name=f"cron-{i}",
                        schedule=spec,
                        next_fire_at=first,
                    )
                )
            t1 = time.perf_counter()
            await bulk_insert_tasks(store, chunk, chunk=CHUNK)
            insert += time.perf_counter() - t1
            build += t1 - t0
    finally:
        await store.close()
    return {"build_s": build, "insert_s": insert}


async def service_create_rate(path: Path, sample: int) -> dict[str, Any]:
    """`TaskService.create` `sample` times (distinct yearly crons, one new owner)."""
    from wakecall.engine import Engine
    from wakecall.models import NoopAction, TaskSpec
    from wakecall.store import SQLiteStore

    store = SQLiteStore(path)
    await store.open()
    try:
        engine = Engine(store, config=engine_config(8, 500))
        exprs = _cron_expressions(sample, utcnow(), seed=11)
        specs = [
            TaskSpec(name=f"sample-{i}", schedule=e, action=NoopAction())
            for i, e in enumerate(exprs)
        ]
        t0 = time.perf_counter()
        for spec in specs:
            await service(engine).create("owner-sample", spec)
        elapsed = time.perf_counter() - t0
    finally:
        await store.close()
    return {"create_per_s": sample / elapsed}


# --- the serving process ---------------------------------------------------------------------
def _proc_status(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            out[key] = int(value.split()[0]) * 1024
    return out


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


class _Rpc:
    """Newline-delimited JSON-RPC to a stdio server."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.next_id = 1

    def send(self, method: str, params: dict[str, Any] | None = None, notify: bool = False) -> int:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            message["params"] = params
        ident = 0
        if not notify:
            ident = self.next_id
            self.next_id += 1
            message["id"] = ident
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        self.proc.stdin.flush()
        return ident

    def answer(self, ident: int, timeout: float = 60) -> dict[str, Any]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("the server closed its stdout")
            message = json.loads(line)
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"JSON-RPC error: {message['error']}")
                return message["result"]
        raise TimeoutError(f"no answer to request {ident}")


def measure_serve(path: Path, idle_s: float, tmp: Path) -> dict[str, Any]:
    """Start `wakecall serve --store path`, talk to it over stdio, watch it idle."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("WAKECALL_")} | {
        "HOME": str(tmp),
        "XDG_DATA_HOME": str(tmp / "data"),
    }
    errlog = (tmp / "serve.stderr").open("wb")
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "wakecall", "serve", "--store", str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=errlog,
        env=env,
    )
    try:
        rpc = _Rpc(proc)
        init = rpc.send(
            "initialize",
            {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "bench", "version": "0"},
            },
        )
        rpc.answer(init)
        startup = time.perf_counter() - t0
        rpc.send("notifications/initialized", notify=True)
        t1 = time.perf_counter()
        tools = rpc.answer(rpc.send("tools/list", {}))
        tools_list = time.perf_counter() - t1
        t2 = time.perf_counter()
        listed = rpc.answer(rpc.send("tools/call", {"name": "list_tasks", "arguments": {}}))
        first_call = time.perf_counter() - t2
        time.sleep(1.0)  # let the first scheduler pass finish before watching idleness
        cpu0, w0 = _cpu_seconds(proc.pid), time.perf_counter()
        time.sleep(idle_s)
        cpu1, w1 = _cpu_seconds(proc.pid), time.perf_counter()
        mem = _proc_status(proc.pid)
        ok = len(tools.get("tools", [])) > 0 and not listed.get("isError")
        return {
            "startup_s": startup,
            "tools_list_ms": tools_list * 1000,
            "first_call_ms": first_call * 1000,
            "idle_cpu_s": cpu1 - cpu0,
            "idle_cpu_pct": (cpu1 - cpu0) / (w1 - w0) * 100,
            "peak_rss_mb": mem["VmHWM"] / 1e6,
            "serve_ok": ok,
        }
    finally:
        if proc.stdin:
            proc.stdin.close()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        errlog.close()


# --- one scheduling step ---------------------------------------------------------------------
async def step_costs(path: Path, due: int, repeats: int = 15) -> dict[str, Any]:
    """Time the engine's passes on the big store (its internal methods, called directly)."""
    from wakecall.engine import Engine
    from wakecall.store import SQLiteStore

    # The set-up's cache of 200,000 parsed expressions is no part of a serving process, and
    # the collector's full passes over it would be timed as part of the step.
    _parsed.cache_clear()
    gc.collect()
    store = SQLiteStore(path)
    await store.open()
    try:
        config = engine_config(8, 500)
        engine = Engine(store, config=config)
        now = utcnow()
        t0 = time.perf_counter()
        await store.prune(
            now,
            runs_per_task=config.runs_per_task,
            run_max_age=config.run_max_age,
            event_max_age=config.event_max_age,
        )
        prune = time.perf_counter() - t0
        engine._next_prune = now + timedelta(days=1)
        idle = []
        for _ in range(repeats):
            now = utcnow()
            t0 = time.perf_counter()
            more = await engine._step(now)
            await engine._next_deadline(now)
            idle.append(time.perf_counter() - t0)
            assert not more
        # make `due` random tasks due now, then firing passes claim and record them
        ids = [
            r[0]
            for r in sqlite_rows(path, "SELECT id FROM tasks ORDER BY random() LIMIT ?", (due,))
        ]
        past = us(utcnow() - timedelta(seconds=1))

        def mark(conn: Any) -> None:
            marks = ", ".join("?" * len(ids))
            conn.execute(f"UPDATE tasks SET next_fire_at = ? WHERE id IN ({marks})", (past, *ids))

        await store._call(mark)
        engine._stopping = True  # the engine is not running: the pass records, starts nothing
        # Passes are cut to a few milliseconds each (`store/sqlite/budget.py`): as many as
        # it takes to fire them all, as the running engine would make back to back.
        passes = 0
        t0 = time.perf_counter()
        while passes < 1_000:
            passes += 1
            if not await engine._fire_and_dispatch(utcnow()):
                break
        fire = time.perf_counter() - t0
        ((fired, ended, events),) = sqlite_rows(
            path,
            "SELECT count(*), sum(status = 'success'), "
            "(SELECT count(*) FROM events WHERE type = 'task.run.completed') FROM runs",
        )
    finally:
        await store.close()
    return {
        "idle_step_ms": statistics.median(idle) * 1000,
        "fire_step_ms": fire * 1000,
        "fire_step_per_task_us": fire / max(due, 1) * 1e6,
        "prune_ms": prune * 1000,
        "fired": fired,
        "ended": ended,
        "events": events,
        "fire_batch": due,
        "fire_passes": passes,
    }


def scale(n: int = 1_000_000, sample: int = 10_000, idle_s: float = 10.0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="wakecall-scale-") as tmpdir:
        tmp = Path(tmpdir)
        path = tmp / "scale.db"
        created = anyio.run(bulk_create, path, n)
        size_mb = path.stat().st_size / 1e6
        rate = anyio.run(service_create_rate, path, sample)
        serve = measure_serve(path, idle_s, tmp)
        steps = anyio.run(step_costs, path, 500)
        ((tasks, active),) = sqlite_rows(
            path, "SELECT count(*), sum(status = 'active' AND next_fire_at IS NOT NULL) FROM tasks"
        )
    total = n + sample
    good = (
        tasks == total
        and active == total
        and serve["serve_ok"]
        and steps["fired"] == steps["ended"] == steps["events"] == 500
    )
    return {
        "bulk_s": created["build_s"] + created["insert_s"],
        "bulk_build_s": created["build_s"],
        "bulk_insert_s": created["insert_s"],
        "bulk_per_s": n / (created["build_s"] + created["insert_s"]),
        "db_mb": size_mb,
        **rate,
        "create_extrapolated_s": n / rate["create_per_s"],
        **{k: v for k, v in serve.items() if k != "serve_ok"},
        **{k: v for k, v in steps.items() if k not in ("fired", "ended", "events", "fire_batch")},
        "check": check_text(
            good,
            f"{tasks} tasks stored ({n} bulk + {sample} via create), {active} active with a "
            f"next fire; the server answered initialize, tools/list and list_tasks; "
            f"{steps['fire_passes']} firing passes recorded {steps['fired']} runs for "
            f"{steps['fire_batch']} due tasks, "
            f"{steps['ended']} ended as fired (noop) with {steps['events']} events"
            + (": each exactly once" if good else ": MISMATCH"),
        ),
    }
