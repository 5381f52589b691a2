"""The command action: the allow-list, captured output, exit codes, and the process group
ended on cancellation."""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
from pathlib import Path

import anyio
import pytest
from pydantic import ValidationError

from wakecall.actions import ActionFailed
from wakecall.actions.command import CommandExecutor, CommandPolicy, validate_command
from wakecall.errors import InvalidInput
from wakecall.models import CommandAction

from .conftest import MakeContext

SH = shutil.which("sh") or "/bin/sh"
ALLOW_SH = CommandPolicy(enabled=True, allow=("sh",))

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX process groups")


def command(*argv: str, **fields: object) -> dict[str, object]:
    return CommandAction.model_validate(
        {"type": "command", "argv": list(argv), **fields}
    ).model_dump()


def live_members(pgid: int) -> list[int]:
    """Processes of the group that can still run (zombies, waiting for an init process to
    reap them, cannot)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return []
    alive = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, _ppid, group = stat[stat.rfind(")") + 2 :].split()[:3]
        if int(group) == pgid and state not in ("Z", "X"):
            alive.append(int(entry.name))
    return alive


def reaped(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False


async def started_pid(marker: Path) -> int:
    """The pid a command wrote to `marker` once it started."""
    path = anyio.Path(marker)
    while True:
        text = await path.read_text() if await path.exists() else ""
        if text.endswith("\n"):
            return int(text)
        await anyio.sleep(0.01)


async def test_a_command_that_exits_0_succeeds_with_its_output(
    make_context: MakeContext,
) -> None:
    action = command("sh", "-c", "printf 'out\\n'; printf 'err\\n' >&2")
    with anyio.fail_after(5):
        output = await CommandExecutor(ALLOW_SH).execute(make_context(action))
    assert output == {
        "exitCode": 0,
        "stdout": "out\n",
        "stderr": "err\n",
        "truncated": {"stdout": False, "stderr": False},
    }


async def test_long_output_keeps_the_tail_of_each_stream(make_context: MakeContext) -> None:
    policy = CommandPolicy(enabled=True, allow=("sh",), max_output_bytes=10)
    action = command("sh", "-c", "printf 0123456789abcdef; printf é0123456789 >&2; printf x >&2")
    with anyio.fail_after(5):
        output = await CommandExecutor(policy).execute(make_context(action))
    assert output["stdout"] == "6789abcdef"
    assert output["stderr"] == "123456789x"
    assert output["truncated"] == {"stdout": True, "stderr": True}


async def test_a_tail_never_starts_inside_a_character(make_context: MakeContext) -> None:
    policy = CommandPolicy(enabled=True, allow=("sh",), max_output_bytes=5)
    with anyio.fail_after(5):
        output = await CommandExecutor(policy).execute(
            make_context(command("sh", "-c", "printf aéééé"))
        )
    assert output["stdout"] == "éé"  # the 5 last bytes start in the middle of an é


async def test_a_nonzero_exit_fails_with_the_code_and_the_stderr_tail(
    make_context: MakeContext,
) -> None:
    action = command("sh", "-c", "echo partial; echo 'disk full' >&2; exit 3")
    with anyio.fail_after(5), pytest.raises(ActionFailed) as caught:
        await CommandExecutor(ALLOW_SH).execute(make_context(action))
    assert caught.value.message == "command 'sh' exited with code 3: disk full"
    assert caught.value.output == {
        "exitCode": 3,
        "stdout": "partial\n",
        "stderr": "disk full\n",
        "truncated": {"stdout": False, "stderr": False},
    }


async def test_a_command_killed_by_a_signal_says_which(make_context: MakeContext) -> None:
    with anyio.fail_after(5), pytest.raises(ActionFailed, match="killed by signal SIGKILL"):
        await CommandExecutor(ALLOW_SH).execute(make_context(command("sh", "-c", "kill -9 $$")))


async def test_commands_are_refused_while_disabled(make_context: MakeContext) -> None:
    with anyio.fail_after(5), pytest.raises(ActionFailed) as caught:
        await CommandExecutor(CommandPolicy()).execute(make_context(command("sh", "-c", "true")))
    assert "command actions are disabled" in caught.value.message
    assert "--commands NAME" in caught.value.message


async def test_a_program_off_the_allow_list_is_refused(make_context: MakeContext) -> None:
    policy = CommandPolicy(enabled=True, allow=("true",))
    with anyio.fail_after(5), pytest.raises(ActionFailed) as caught:
        await CommandExecutor(policy).execute(make_context(command("sh", "-c", "true")))
    assert "'sh' is not on this server's command allow-list (true)" in caught.value.message
    assert "adding sh to --commands" in caught.value.message


def test_validate_command_refuses_early_and_returns_the_executable() -> None:
    assert validate_command(CommandAction(argv=["sh"]), ALLOW_SH) == SH
    assert validate_command({"type": "command", "argv": [SH]}, ALLOW_SH) == SH
    assert validate_command({"argv": ["sh"]}, CommandPolicy(enabled=True, allow=(SH,))) == SH
    with pytest.raises(InvalidInput, match=r"^action\.argv: command actions are disabled"):
        validate_command({"argv": ["sh"]}, CommandPolicy())
    with pytest.raises(InvalidInput, match="not on this server's command allow-list"):
        validate_command({"argv": ["/tmp/sh"]}, ALLOW_SH)
    with pytest.raises(InvalidInput, match="relative path"):
        validate_command({"argv": ["./sh"]}, ALLOW_SH)
    with pytest.raises(InvalidInput, match="not an executable file"):
        validate_command(
            {"argv": ["no-such-program"]},
            CommandPolicy(enabled=True, allow=("no-such-program",)),
        )
    with pytest.raises(InvalidInput, match="argv"):
        validate_command({"argv": []}, ALLOW_SH)


async def test_the_program_is_found_on_the_servers_path_not_the_tasks(
    make_context: MakeContext, tmp_path: Path
) -> None:
    impostor = tmp_path / "sh"
    impostor.write_text("#!/bin/sh\necho impostor\n")
    impostor.chmod(0o755)
    action = command("sh", "-c", "echo real", env={"PATH": str(tmp_path)})
    with anyio.fail_after(5):
        output = await CommandExecutor(ALLOW_SH).execute(make_context(action))
    assert output["stdout"] == "real\n"


async def test_the_environment_is_minimal_plus_the_tasks_variables(
    make_context: MakeContext, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("WAKECALL_TEST_SECRET", "s3cret")
    script = 'echo "$WAKECALL_TEST_SECRET|$GREETING|${HOME:+home}|${PATH:+path}|$(pwd)"'
    action = command("sh", "-c", script, env={"GREETING": "hi"}, cwd=str(tmp_path))
    with anyio.fail_after(5):
        output = await CommandExecutor(ALLOW_SH).execute(make_context(action))
    assert output["stdout"] == f"|hi|home|path|{tmp_path}\n"


async def test_a_missing_working_directory_fails_to_start(
    make_context: MakeContext, tmp_path: Path
) -> None:
    action = command("sh", "-c", "true", cwd=str(tmp_path / "gone"))
    with anyio.fail_after(5), pytest.raises(ActionFailed, match=r"could not start 'sh' in .*gone"):
        await CommandExecutor(ALLOW_SH).execute(make_context(action))


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        ({"argv": []}, "argv"),
        ({"argv": [""]}, "argv\\[0\\] is empty"),
        ({"argv": ["sh", "a\0b"]}, "NUL"),
        ({"argv": ["sh"], "cwd": "relative/dir"}, "absolute directory"),
        ({"argv": ["sh"], "env": {"LD_PRELOAD": "/tmp/x.so"}}, "LD_PRELOAD cannot be set"),
        ({"argv": ["sh"], "env": {"A=B": "x"}}, "invalid"),
        ({"argv": "sh -c true"}, "list"),
        ({"argv": ["sh"], "shell": True}, "shell"),
    ],
)
def test_the_command_model_refuses_what_cannot_be_run(
    fields: dict[str, object], complaint: str
) -> None:
    with pytest.raises(ValidationError, match=complaint):
        CommandAction.model_validate({"type": "command", **fields})


async def test_cancelling_a_run_ends_the_whole_process_group(
    make_context: MakeContext, tmp_path: Path
) -> None:
    marker = tmp_path / "pid"
    action = command(
        "sh", "-c", 'echo $$ > "$MARKER"; sleep 30 & sleep 30', env={"MARKER": str(marker)}
    )
    executor = CommandExecutor(ALLOW_SH, kill_grace=2)
    finished = anyio.Event()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            scope = anyio.CancelScope()

            async def run() -> None:
                with scope:
                    await executor.execute(make_context(action))
                finished.set()

            tg.start_soon(run)
            pgid = await started_pid(marker)
            assert live_members(pgid)  # sh and both sleeps
            scope.cancel()
            await finished.wait()
    assert scope.cancelled_caught
    assert reaped(pgid)
    assert live_members(pgid) == []


async def test_a_timed_out_run_ends_a_group_that_ignores_sigterm(
    make_context: MakeContext, tmp_path: Path
) -> None:
    marker = tmp_path / "pid"
    script = 'trap "" TERM; echo $$ > "$MARKER"; sleep 30 & sleep 30'
    action = command("sh", "-c", script, env={"MARKER": str(marker)})
    executor = CommandExecutor(ALLOW_SH, kill_grace=0.2)
    timeout = anyio.move_on_after(30)  # shortened once the command has started

    async def run() -> None:
        with timeout:
            await executor.execute(make_context(action))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            pgid = await started_pid(marker)
            timeout.deadline = anyio.current_time() + 0.05
    assert timeout.cancelled_caught
    assert reaped(pgid)
    assert live_members(pgid) == []


async def test_processes_left_behind_by_a_finished_command_are_ended(
    make_context: MakeContext, tmp_path: Path
) -> None:
    marker = tmp_path / "pid"
    action = command(
        "sh", "-c", 'echo $$ > "$MARKER"; sleep 30 & echo done', env={"MARKER": str(marker)}
    )
    with anyio.fail_after(5):
        output = await CommandExecutor(ALLOW_SH).execute(make_context(action))
        pgid = await started_pid(marker)
    assert output["stdout"] == "done\n"
    assert live_members(pgid) == []


async def test_each_chunk_of_output_is_a_heartbeat(make_context: MakeContext) -> None:
    beats: list[int] = []
    # Three writes with pauses between them arrive as separate chunks.
    action = command("sh", "-c", "printf a; sleep 0.2; printf b >&2; sleep 0.2; printf c")
    ctx = dataclasses.replace(make_context(action), beat=lambda: beats.append(1))
    with anyio.fail_after(5):
        await CommandExecutor(ALLOW_SH).execute(ctx)
    assert len(beats) == 3
