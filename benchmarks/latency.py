"""Part 4, agent-facing latency through the MCP SDK's own client, over three transports:
in memory (the server in this process), stdio (`wakecall serve` as a subprocess) and
Streamable HTTP (`wakecall serve --http --port 0`).

* the size of the tool list as a host sends it to the model (names, descriptions, input
  schemas: every session pays for it in context), so that a change that grows it shows up;
* `create_task` and `list_runs` round trips, p50/p99 (the client's default protocol mode);
* from a run's end (`finished_at` in the store) to its event reaching a `get_events` call
  already waiting (long poll), and to the push of the same event to a live session (the
  `notifications/claude/channel` message; pushes go to handshake-generation sessions, so this
  session connects with `mode="legacy"`).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from pydantic import BaseModel, Field

from benchmarks.common import check_text, from_us, sqlite_rows, summary_ms

SERVING = re.compile(r"serving MCP on (http://\S+/mcp)")
CHANNEL_METHOD = "notifications/claude/channel"
CALL_TIMEOUT = 30


class _ChannelParams(BaseModel):
    content: str
    meta: dict[str, str] = Field(default_factory=dict)


def _channel_observer(handler: Callable[[_ChannelParams], Awaitable[None]]) -> Any:
    """A client extension that hands the vendor channel notification to `handler` (the SDK
    drops notifications it does not know)."""
    from mcp.client import ClientExtension, NotificationBinding

    class ChannelObserver(ClientExtension):
        identifier = "dev.wakecall/bench-channel"

        def notifications(self) -> list[NotificationBinding[Any]]:
            return [
                NotificationBinding(
                    method=CHANNEL_METHOD, params_type=_ChannelParams, handler=handler
                )
            ]

    return ChannelObserver()


def _server_env(tmp: Path) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("WAKECALL_")}
    # the cases create hundreds of tasks in a few seconds: no per-minute creation limit
    return inherited | {
        "HOME": str(tmp),
        "XDG_DATA_HOME": str(tmp / "data"),
        "WAKECALL_TASKS_PER_MINUTE": str(UNLIMITED),
    }


SERVE_FLAGS = ["--log-level", "WARNING"]
UNLIMITED = 10_000_000
SERVE = [sys.executable, "-m", "wakecall", "serve", *SERVE_FLAGS]


@asynccontextmanager
async def _in_memory(path: Path) -> AsyncIterator[Callable[..., Any]]:
    from wakecall.server import build_server, open_runtime
    from wakecall.settings import Settings

    settings = Settings(store=str(path), log_level="WARNING", tasks_per_minute=UNLIMITED)
    async with open_runtime(settings) as rt:

        def client(**kwargs: Any) -> Any:
            from mcp import Client

            return Client(build_server(rt), **kwargs)

        yield client


@asynccontextmanager
async def _stdio(path: Path, tmp: Path) -> AsyncIterator[Callable[..., Any]]:
    from mcp import Client, StdioServerParameters

    errlog = (tmp / "stdio.stderr").open("a")
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "wakecall", "serve", "--store", str(path), *SERVE_FLAGS],
        env=_server_env(tmp),
        cwd=str(tmp),
    )

    def client(**kwargs: Any) -> Any:
        from mcp.client.stdio import stdio_client

        return Client(stdio_client(params, errlog=errlog), **kwargs)

    try:
        yield client
    finally:
        errlog.close()


def _spawn_http(path: Path, tmp: Path, errlog: Any) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*SERVE, "--http", "--host", "127.0.0.1", "--port", "0", "--store", str(path)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=errlog,
        env=_server_env(tmp),
        cwd=str(tmp),
    )


@asynccontextmanager
async def _http(path: Path, tmp: Path) -> AsyncIterator[Callable[..., Any]]:
    from mcp import Client

    errlog = (tmp / "http.stderr").open("w+")
    proc = _spawn_http(path, tmp, errlog)
    try:
        url = None
        with anyio.fail_after(30):
            while url is None:
                await anyio.sleep(0.05)
                found = SERVING.search((tmp / "http.stderr").read_text())
                if found:
                    url = found.group(1)
                elif proc.poll() is not None:
                    raise RuntimeError(
                        "the HTTP server exited: " + (tmp / "http.stderr").read_text()
                    )

        def client(**kwargs: Any) -> Any:
            return Client(url, **kwargs)

        yield client
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        errlog.close()


async def _call(client: Any, tool: str, args: dict[str, Any]) -> dict[str, Any]:
    with anyio.fail_after(CALL_TIMEOUT):
        result = await client.call_tool(tool, args)
    if result.is_error:
        raise RuntimeError(f"{tool} failed: {result.content}")
    return result.structured_content


async def _tool_list_bytes(client: Any) -> int:
    """The size of the tool list as a host sends it to the model (`model_facing_size`)."""
    from wakecall.server.tools.published import model_facing_size

    with anyio.fail_after(CALL_TIMEOUT):
        tools = (await client.list_tools()).tools
    return sum(model_facing_size(t.model_dump(by_alias=True, exclude_none=True)) for t in tools)


async def _round_trips(client: Any, calls: int, runs: int) -> dict[str, Any]:
    """`create_task` `calls` times, then `runs` manual runs, then `list_runs` `calls` times."""
    create: list[float] = []
    ids = []
    for i in range(calls):
        args = {"name": f"lat-{i}", "schedule": "0 0 1 1 *", "action": {"type": "noop"}}
        t0 = time.perf_counter()
        task = await _call(client, "create_task", args)
        create.append(time.perf_counter() - t0)
        ids.append(task["id"])
    for task_id in ids[:runs]:
        await _call(client, "run_now", {"task_id": task_id})
    with anyio.fail_after(CALL_TIMEOUT):
        done = 0
        while done < runs:
            page = await _call(client, "list_runs", {"status": "success", "limit": 100})
            done = len(page["runs"])
            await anyio.sleep(0.05)
    listing: list[float] = []
    shown = 0
    for _ in range(calls):
        t0 = time.perf_counter()
        page = await _call(client, "list_runs", {})
        listing.append(time.perf_counter() - t0)
        shown = len(page["runs"])
    return {
        "create": summary_ms(create),
        "list_runs": summary_ms(listing),
        "created": len(set(ids)),
        "listed": shown,
    }


async def _event_trials(client: Any, trials: int, pushes: dict[str, float]) -> dict[str, Any]:
    """`trials` times: park a `get_events` long poll, queue a manual run of a no-op task, note
    when the poll answers with its event (and when the push arrives, in `pushes`)."""
    task = await _call(
        client, "create_task", {"name": "ev", "schedule": "0 0 1 1 *", "action": {"type": "noop"}}
    )
    cursor = (await _call(client, "get_events", {}))["cursor"]
    polled: dict[str, float] = {}
    for _ in range(trials):
        answer: dict[str, Any] = {}

        async def poll(after: int = cursor, answer: dict[str, Any] = answer) -> None:
            answer.update(await _call(client, "get_events", {"after": after, "wait": 10}))
            answer["t"] = time.time()

        async with anyio.create_task_group() as tg:
            tg.start_soon(poll)
            await anyio.sleep(0.05)  # the poll is parked by now
            run = await _call(client, "run_now", {"task_id": task["id"]})
        events = [e for e in answer["events"] if e["run_id"] == run["id"]]
        if events:
            polled[run["id"]] = answer["t"]
        cursor = answer["cursor"]
        with anyio.move_on_after(5):
            while run["id"] not in pushes:  # noqa: ASYNC110 - filled by the client's handler
                await anyio.sleep(0.005)
        await anyio.sleep(0.02)
    return polled


def _finished(path: Path, run_ids: list[str]) -> dict[str, float]:
    if not run_ids:
        return {}
    marks = ", ".join("?" * len(run_ids))
    rows = sqlite_rows(path, f"SELECT id, finished_at FROM runs WHERE id IN ({marks})", run_ids)
    return {rid: from_us(fin).timestamp() for rid, fin in rows if fin is not None}


def latency(
    transport: str = "memory",
    calls: int = 300,
    runs: int = 50,
    trials: int = 50,
    mode: str = "auto",
) -> dict[str, Any]:
    """`mode` is the client's protocol mode for the round trips (the event trials always use
    "legacy", which pushes need)."""

    async def body(tmp: Path) -> dict[str, Any]:
        path = tmp / "latency.db"
        if transport == "memory":
            opener = _in_memory(path)
        elif transport == "stdio":
            opener = _stdio(path, tmp)
        else:
            opener = _http(path, tmp)
        pushes: dict[str, float] = {}

        async def on_channel(params: _ChannelParams) -> None:
            run_id = params.meta.get("run_id")
            if run_id and run_id not in pushes:
                pushes[run_id] = time.time()

        async with opener as make_client:
            async with make_client(mode=mode) as client:
                listed = await _tool_list_bytes(client)
                trips = await _round_trips(client, calls, runs)
            async with make_client(mode="legacy", extensions=[_channel_observer(on_channel)]) as c:
                polled = await _event_trials(c, trials, pushes)
        finished = _finished(path, list(polled) + list(pushes))
        to_poll = [polled[r] - finished[r] for r in polled if r in finished]
        to_push = [pushes[r] - finished[r] for r in pushes if r in finished]
        ((run_rows,),) = sqlite_rows(path, "SELECT count(*) FROM runs")
        ((events,),) = sqlite_rows(path, "SELECT count(*) FROM events")
        expected_runs = runs + trials
        good = (
            trips["created"] == calls
            and trips["listed"] == min(20, runs)
            and len(to_poll) == trials
            and len(to_push) == trials
            and run_rows == expected_runs
            and events == expected_runs
        )
        return {
            "tool_list_bytes": listed,
            "create_p50_ms": trips["create"]["p50_ms"],
            "create_p99_ms": trips["create"]["p99_ms"],
            "list_runs_p50_ms": trips["list_runs"]["p50_ms"],
            "list_runs_p99_ms": trips["list_runs"]["p99_ms"],
            "event_poll_p50_ms": summary_ms(to_poll)["p50_ms"],
            "event_poll_p99_ms": summary_ms(to_poll)["p99_ms"],
            "event_push_p50_ms": summary_ms(to_push)["p50_ms"],
            "event_push_p99_ms": summary_ms(to_push)["p99_ms"],
            "check": check_text(
                good,
                f"{trips['created']}/{calls} tasks created, list_runs showed {trips['listed']}; "
                f"{len(to_poll)}/{trials} events reached the waiting get_events, "
                f"{len(to_push)}/{trials} were pushed; {run_rows} runs, {events} events for "
                f"{expected_runs} manual runs" + (": each exactly once" if good else ": MISMATCH"),
            ),
        }

    with tempfile.TemporaryDirectory(prefix="wakecall-latency-") as tmp:
        try:
            return anyio.run(body, Path(tmp))
        except BaseException as exc:  # say what the server printed before it went away
            logs = sorted(Path(tmp).glob("*.stderr"))
            tail = " | ".join(line for log in logs for line in log.read_text().splitlines()[-5:])
            raise RuntimeError(f"{type(exc).__name__}: {exc}; server stderr: {tail}") from exc
