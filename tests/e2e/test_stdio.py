"""wakecall over stdio, as a host runs it: a subprocess driven by the SDK's stdio client, in
both protocol generations (2026-07-28 by default, the handshake generation as "legacy")."""

from __future__ import annotations

import json
import sys
from typing import Any

import anyio
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from mcp import Client, types
from mcp.client.subscriptions import ResourceUpdated

import wakecall as wakecall_pkg
from support.protocol import INITIALIZE

pytestmark = pytest.mark.slow

TOOL_NAMES = {
    "create_task",
    "get_task",
    "list_tasks",
    "patch_schedule",
    "pause",
    "resume",
    "delete",
    "run_now",
    "list_runs",
    "schedule_wakeup",
    "cancel_wakeup",
    "get_events",
    "preview_schedule",
}
#: Bounds a whole test: process start-up, every call and shutdown.
TEST_TIMEOUT = 60
PROTOCOL = {"auto": "2026-07-28", "legacy": "2025-11-25"}
MODES = pytest.mark.parametrize("mode", ["auto", "legacy"])


@MODES
async def test_an_agent_creates_reads_changes_runs_and_deletes_a_task_and_hears_of_mistakes(
    wakecall: Any, mode: str
) -> None:
    with anyio.fail_after(TEST_TIMEOUT):
        async with Client(wakecall.stdio_params(), mode=mode) as client:
            assert client.protocol_version == PROTOCOL[mode]
            with anyio.fail_after(10):
                tools = await client.list_tools()
            by_name = {t.name: t for t in tools.tools}
            assert by_name.keys() >= TOOL_NAMES  # the core set; more tools may come
            assert all(by_name[n].description and by_name[n].output_schema for n in TOOL_NAMES)

            created = await wakecall.call(
                client,
                "create_task",
                {
                    "name": "nightly report",
                    "schedule": "0 2 * * *",
                    "timezone": "Europe/Paris",
                    "metadata": {"team": "ops"},
                },
            )
            task_id = created["id"]
            assert created["created"] is True
            assert created["status"] == "active"
            assert created["timezone"] == "Europe/Paris"
            assert len(created["next_fires"]) == 3
            assert created["next_fires"][0]["local"].endswith(("+01:00", "+02:00"))

            fetched = await wakecall.call(client, "get_task", {"task_id": task_id})
            assert fetched["name"] == "nightly report"
            assert fetched["metadata"] == {"team": "ops"}
            assert fetched["schedule"] == created["schedule"]

            listed = await wakecall.call(client, "list_tasks", {})
            assert [t["id"] for t in listed["tasks"]] == [task_id]

            patched = await wakecall.call(
                client,
                "patch_schedule",
                {"task_id": task_id, "schedule": "*/30 * * * *", "name": "half-hourly report"},
            )
            assert patched["name"] == "half-hourly report"
            assert patched["schedule"] != created["schedule"]
            assert patched["timezone"] == "Europe/Paris"  # unchanged fields stay
            assert patched["metadata"] == {"team": "ops"}
            assert (await wakecall.call(client, "get_task", {"task_id": task_id}))["name"] == (
                "half-hourly report"
            )

            assert (await wakecall.call(client, "list_runs", {"task_id": task_id}))["runs"] == []
            queued = await wakecall.call(client, "run_now", {"task_id": task_id})
            assert queued["task_id"] == task_id and queued["trigger"] == "manual"
            done = await wakecall.wait_for_event(client, "task.run.completed", task_id=task_id)
            assert done["run_id"] == queued["id"]
            runs = (await wakecall.call(client, "list_runs", {"task_id": task_id}))["runs"]
            assert [(r["id"], r["status"]) for r in runs] == [(queued["id"], "success")]

            # Mistakes come back as tool errors that say what was wrong and how to fix it, and
            # store nothing.
            bad_zone = await wakecall.call_error(
                client, "patch_schedule", {"task_id": task_id, "timezone": "Mars/Olympus"}
            )
            assert "unknown time zone 'Mars/Olympus'" in bad_zone
            assert "Europe/Paris" in bad_zone  # an example of a valid one
            bad_schedule = await wakecall.call_error(
                client, "create_task", {"name": "x", "schedule": "whenever you like"}
            )
            assert bad_schedule.startswith("schedule: ")  # in our words, no SDK prefix
            assert "'whenever you like'" in bad_schedule and "Example:" in bad_schedule
            assert (await wakecall.call(client, "get_task", {"task_id": task_id}))["timezone"] == (
                "Europe/Paris"
            )
            assert len((await wakecall.call(client, "list_tasks", {}))["tasks"]) == 1

            deleted = await wakecall.call(client, "delete", {"task_id": task_id})
            assert deleted["deleted"] is True and deleted["id"] == task_id
            gone = await wakecall.call_error(client, "get_task", {"task_id": task_id})
            assert gone == (f"no task with id {task_id!r}; list_tasks shows the ids of your tasks")
            assert (await wakecall.call(client, "list_tasks", {}))["tasks"] == []


async def test_a_wakeup_fires_and_a_listening_client_is_told(wakecall: Any) -> None:
    context = {"pr": 42, "checks": ["lint", "unit"]}
    with anyio.fail_after(TEST_TIMEOUT):
        async with Client(wakecall.stdio_params("--wakeup-min", "1s")) as client:
            assert client.protocol_version == "2026-07-28"
            receipt = await wakecall.call(
                client,
                "schedule_wakeup",
                {"in": "1s", "reason": "check the deploy", "context": context},
            )
            assert receipt["created"] is True and receipt["clamped"] is False
            uri = f"wakecall://tasks/{receipt['wakeup_id']}/runs"  # only a run changes this one
            with anyio.fail_after(10):
                async with client.listen(resource_subscriptions=[uri]) as updates:
                    assert await updates.__anext__() == ResourceUpdated(uri=uri)
            # The durable inbox has the event, with the context the agent left for itself.
            with anyio.fail_after(10):
                page = await wakecall.call(client, "get_events", {"after": 0, "wait": 8})
            [event] = page["events"]
            assert event["type"] == "wakeup.fired"
            assert event["task_id"] == receipt["wakeup_id"]
            assert event["payload"]["wakeup"] == {"reason": "check the deploy", "context": context}
            assert page["cursor"] == event["cursor"]
            # Read once, the event is not handed out again from that cursor.
            again = await wakecall.call(client, "get_events", {"after": page["cursor"]})
            assert again["events"] == []


async def test_a_wakeup_fires_and_a_legacy_session_gets_it_as_log_channel_and_update(
    wakecall: Any,
) -> None:
    rec = wakecall.recorder()
    transport = wakecall.stdio_transport("--wakeup-min", "1s", recorder=rec)
    context = {"ticket": "OPS-7"}
    with anyio.fail_after(TEST_TIMEOUT):
        async with wakecall.client(transport, mode="legacy", recorder=rec) as client:
            assert client.protocol_version == "2025-11-25"
            assert client.server_capabilities.experimental == {"claude/channel": {}}
            receipt = await wakecall.call(
                client, "schedule_wakeup", {"in": "1s", "reason": "follow up", "context": context}
            )
            wakeup_id = receipt["wakeup_id"]
            uri = f"wakecall://tasks/{wakeup_id}"
            await wakecall.subscribe(client, uri)

            # The long poll returns as soon as the wakeup fires.
            with anyio.fail_after(10):
                page = await wakecall.call(client, "get_events", {"after": 0, "wait": 8})
            [event] = page["events"]
            assert event["type"] == "wakeup.fired" and event["task_id"] == wakeup_id
            assert event["payload"]["wakeup"] == {"reason": "follow up", "context": context}

            with anyio.fail_after(10):
                await rec.wait_until(
                    lambda: bool(
                        rec.logs_of("wakeup.fired")
                        and rec.channel_of("wakeup.fired")
                        and rec.updated(uri)
                    )
                )

    [log] = rec.logs_of("wakeup.fired")
    assert log["wakeup"] == {"reason": "follow up", "context": context}
    assert log["task"]["id"] == wakeup_id
    assert log["cursor"] == event["cursor"]
    [channel] = rec.channel_of("wakeup.fired")
    assert channel.meta["task_id"] == wakeup_id
    assert channel.meta["cursor"] == str(event["cursor"])
    assert "follow up" in channel.content
    assert json.dumps(context) in channel.content
    # The same pushes, as they crossed the wire.
    assert {m["params"]["uri"] for m in rec.raw_of("notifications/resources/updated")} == {uri}
    [raw_log] = rec.raw_of("notifications/message")
    assert raw_log["params"]["level"] == "info" and raw_log["params"]["logger"] == "wakecall"
    [raw_channel] = rec.raw_of("notifications/claude/channel")
    assert raw_channel["params"]["content"] == channel.content
    # Nothing is pushed for resources the session did not subscribe to.
    assert not rec.updated("wakecall://tasks")


async def test_stdio_servers_sharing_a_store_keep_each_owner_to_their_own_tasks(
    wakecall: Any,
) -> None:
    store = wakecall.new_store()
    with anyio.fail_after(TEST_TIMEOUT):
        async with (
            Client(wakecall.stdio_params("--owner", "alice", store=store)) as alice,
            Client(wakecall.stdio_params("--owner", "bob", store=store), mode="legacy") as bob,
        ):
            task = await wakecall.call(alice, "create_task", {"name": "a", "schedule": "@daily"})
            assert (await wakecall.call(bob, "list_tasks", {}))["tasks"] == []
            error = await wakecall.call_error(bob, "get_task", {"task_id": task["id"]})
            assert f"no task with id {task['id']!r}" in error
            mine = (await wakecall.call(alice, "list_tasks", {}))["tasks"]
            assert [t["id"] for t in mine] == [task["id"]]


async def test_stdout_carries_nothing_but_json_rpc(wakecall: Any) -> None:
    store = wakecall.new_store()
    process = await anyio.open_process(
        [sys.executable, *wakecall.serve_args(store=store)],
        env=wakecall.full_env(),
        cwd=str(wakecall.tmp_path),
    )
    assert process.stdin is not None and process.stdout is not None
    assert process.stderr is not None
    stdout_lines: list[bytes] = []
    stderr = bytearray()
    answers: dict[int, dict[str, Any]] = {}
    initialized, answered = anyio.Event(), anyio.Event()

    async def send(message: dict[str, Any]) -> None:
        assert process.stdin is not None
        await process.stdin.send(json.dumps(message).encode() + b"\n")

    def check(line: bytes) -> None:
        stdout_lines.append(line)
        try:
            types.jsonrpc_message_adapter.validate_json(line)
        except ValueError as exc:
            raise AssertionError(f"stdout carried a non-JSON-RPC line: {line!r}") from exc

    async def read_stdout() -> None:
        assert process.stdout is not None
        lines = BufferedByteReceiveStream(process.stdout)
        try:
            while True:
                line = await lines.receive_until(b"\n", 1 << 20)
                check(line)
                message = json.loads(line)
                if "id" in message and "method" not in message:
                    answers[message["id"]] = message
                    if 1 in answers:
                        initialized.set()
                    if {2, 3, 4} <= answers.keys():
                        answered.set()
        except (anyio.EndOfStream, anyio.IncompleteRead):
            if lines.buffer:  # output without a final newline
                check(bytes(lines.buffer))

    async def read_stderr() -> None:
        assert process.stderr is not None
        async for chunk in process.stderr:
            stderr.extend(chunk)

    async with process:
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(read_stdout)
                tg.start_soon(read_stderr)
                with anyio.fail_after(15):
                    await send(INITIALIZE)
                    await initialized.wait()
                    await send({"jsonrpc": "2.0", "method": "notifications/initialized"})
                    await send(_tool_call(2, "preview_schedule", {"schedule": "0 9 * * MON-FRI"}))
                    await send(_tool_call(3, "get_task", {"task_id": "tsk_missing"}))
                    await send({"jsonrpc": "2.0", "id": 4, "method": "no/such/method"})
                    await answered.wait()
                    await process.stdin.aclose()  # end of input: the server exits
                    await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
        sys.stderr.write(stderr.decode(errors="replace"))

    assert process.returncode == 0
    assert answers[1]["result"]["serverInfo"]["name"] == "wakecall"
    preview = answers[2]["result"]
    assert preview["isError"] is False
    assert len(preview["structuredContent"]["fires"]) == 5
    missing = answers[3]["result"]
    assert missing["isError"] is True
    assert "no task with id 'tsk_missing'" in missing["content"][0]["text"]
    assert answers[4]["error"]["code"] == types.METHOD_NOT_FOUND
    # Every line on stdout was one JSON-RPC message (checked as it arrived); everything
    # else went to stderr.
    assert len(answers) == 4 and len(stdout_lines) >= 4
    startup = f"wakecall {wakecall_pkg.__version__}: store {store}"
    assert startup in stderr.decode()
    assert startup.encode() not in b"\n".join(stdout_lines)


def _tool_call(request_id: int, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }


async def _exchange(
    wakecall: Any, store: Any, messages: list[dict[str, Any]], expected: set[int]
) -> tuple[int | None, dict[int, dict[str, Any]], str]:
    """Send `messages` at once to a new stdio server, wait for the answers to `expected` (or
    for the server to end), close its input; its exit status, answers by id, and stderr."""
    process = await anyio.open_process(
        [sys.executable, *wakecall.serve_args(store=store)],
        env=wakecall.full_env(),
        cwd=str(wakecall.tmp_path),
    )
    answers: dict[int, dict[str, Any]] = {}
    stderr = bytearray()

    async def read_stdout(done: anyio.Event) -> None:
        assert process.stdout is not None
        lines = BufferedByteReceiveStream(process.stdout)
        try:
            while not expected <= answers.keys():
                message = json.loads(await lines.receive_until(b"\n", 1 << 20))
                if "id" in message and "method" not in message:
                    answers[message["id"]] = message
        except (anyio.EndOfStream, anyio.IncompleteRead):
            pass
        done.set()

    async def read_stderr() -> None:
        assert process.stderr is not None
        async for chunk in process.stderr:
            stderr.extend(chunk)

    async with process:
        try:
            async with anyio.create_task_group() as tg:
                done = anyio.Event()
                tg.start_soon(read_stdout, done)
                tg.start_soon(read_stderr)
                with anyio.fail_after(30):
                    assert process.stdin is not None
                    await process.stdin.send(
                        b"".join(json.dumps(m).encode() + b"\n" for m in messages)
                    )
                    await done.wait()
                    await process.stdin.aclose()
                    await process.wait()
        finally:
            if process.returncode is None:
                process.kill()
    return process.returncode, answers, stderr.decode(errors="replace")


async def test_requests_sent_with_the_handshake_are_answered_once_the_scheduler_runs(
    wakecall: Any,
) -> None:
    """The handshake is answered while the scheduler starts; what needs it waits for it."""
    code, answers, stderr = await _exchange(
        wakecall,
        wakecall.new_store(),
        [
            INITIALIZE,
            {"jsonrpc": "2.0", "id": 2, "method": "ping"},
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            {"jsonrpc": "2.0", "id": 3, "method": "tools/list"},
            _tool_call(4, "create_task", {"name": "a", "schedule": "@daily"}),
            _tool_call(5, "list_tasks", {}),
        ],
        {1, 2, 3, 4, 5},
    )
    assert code == 0, stderr
    caps = answers[1]["result"]["capabilities"]  # declared before the runtime has started
    assert caps["tools"]["listChanged"] is True
    assert "prompts" in caps and "completions" in caps
    assert answers[2]["result"] == {}
    assert {t["name"] for t in answers[3]["result"]["tools"]} >= TOOL_NAMES
    created = answers[4]["result"]["structuredContent"]
    listed = answers[5]["result"]["structuredContent"]
    assert [t["id"] for t in listed["tasks"]] == [created["id"]]


async def test_a_server_whose_store_cannot_open_ends_with_the_error(wakecall: Any) -> None:
    store = wakecall.tmp_path / "not-a-database.db"
    store.write_text("not a database")
    code, answers, stderr = await _exchange(
        wakecall,
        store,
        [
            INITIALIZE,
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        ],
        {1, 2},
    )
    assert code == 1
    assert f"wakecall: {store} is not a wakecall database" in stderr
    assert "result" not in answers.get(2, {})  # no tools from a server that did not start
