"""The `command` action: runs a program (argv, no shell) and captures its output.

Off unless the operator turns it on, and then only for the executables on the allow-list.
Each command runs in a process group of its own; when its run is cancelled or times out the
whole group is terminated (SIGTERM, then SIGKILL after a short grace), and any process the
command leaves behind when it exits is ended the same way.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
from pydantic import ValidationError

from wakecall.actions.base import ActionContext, ActionFailed
from wakecall.errors import InvalidInput, invalid_input_from
from wakecall.models import CommandAction

__all__ = [
    "CommandExecutor",
    "CommandPolicy",
    "minimal_environment",
    "validate_command",
]

log = logging.getLogger(__name__)

KILL_WAIT = 5.0  # seconds to wait for a SIGKILLed group to disappear
_ENABLE_HINT = (
    "the operator can enable them by listing the executables they may run with "
    "--commands NAME[,NAME...] (or WAKECALL_COMMANDS)"
)


@dataclass(frozen=True, slots=True)
class CommandPolicy:
    """What the operator allows. `allow` holds absolute paths (`/usr/local/bin/backup`),
    matched exactly, and bare names (`backup`), found on the server's PATH."""

    enabled: bool = False
    allow: tuple[str, ...] = ()
    max_output_bytes: int = 16 * 1024


def minimal_environment() -> dict[str, str]:
    """The environment every command starts from: the server's PATH, HOME and LANG."""
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": os.environ.get("HOME", "/"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
    }


def _refused(message: str) -> InvalidInput:
    return InvalidInput(message, field="action.argv")


def validate_command(action: CommandAction | Mapping[str, Any], policy: CommandPolicy) -> str:
    """Refuse a command the policy does not allow; return the executable it would run.

    The server calls this when a task is created or patched so that a disallowed command is
    refused at once; the executor calls it again before every run. Raises `InvalidInput`
    saying what the operator can do. Bare names are looked up on the server's PATH, never on
    a PATH the task sets.
    """
    if not isinstance(action, CommandAction):
        try:
            action = CommandAction.model_validate(action)
        except ValidationError as exc:
            raise invalid_input_from(exc) from None
    if not policy.enabled:
        raise _refused(f"command actions are disabled on this server; {_ENABLE_HINT}")
    program = action.argv[0]
    search_path = os.environ.get("PATH", os.defpath)
    allowed_paths = {os.path.normpath(a) for a in policy.allow if os.path.isabs(a)}
    for name in policy.allow:
        if "/" not in name and (found := shutil.which(name, path=search_path)):
            allowed_paths.add(found)
    if "/" in program:
        if not os.path.isabs(program):
            raise _refused(
                f"{program!r} is a relative path; use an absolute path or a bare name found on PATH"
            )
        executable: str | None = os.path.normpath(program)
        allowed = executable in allowed_paths
    else:
        executable = shutil.which(program, path=search_path)
        allowed = program in policy.allow or executable in allowed_paths
    if not allowed:
        listed = ", ".join(policy.allow) if policy.allow else "nothing yet"
        raise _refused(
            f"{program!r} is not on this server's command allow-list ({listed}); the operator "
            f"can allow it by adding {program} to --commands (or WAKECALL_COMMANDS)"
        )
    if executable is None or not os.access(executable, os.X_OK) or os.path.isdir(executable):
        raise _refused(f"{program!r} is allowed but is not an executable file on this server")
    return executable


class _Tail:
    """The last `limit` bytes of a stream, and whether anything before them was dropped."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.total = 0
        self._buffer = bytearray()

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self._buffer += chunk
        if len(self._buffer) > 2 * self.limit:
            del self._buffer[: -self.limit]

    @property
    def truncated(self) -> bool:
        return self.total > self.limit

    def text(self) -> str:
        data = bytes(self._buffer[-self.limit :]) if self.limit else b""
        if self.truncated:  # do not start in the middle of a UTF-8 sequence
            data = data.lstrip(bytes(range(0x80, 0xC0)))
        return data.decode("utf-8", errors="replace")


def _input_env(ctx: ActionContext) -> dict[str, str]:
    """The run's input (an event's body, an upstream run), as JSON in `WAKECALL_INPUT`."""
    if ctx.run.input is None:
        return {}
    return {"WAKECALL_INPUT": json.dumps(ctx.run.input, separators=(",", ":"))}


async def _drain(
    stream: anyio.abc.ByteReceiveStream | None,
    tail: _Tail,
    done: anyio.Event,
    beat: Callable[[], None],
) -> None:
    try:
        if stream is not None:
            async for chunk in stream:
                tail.add(chunk)
                beat()  # output is a sign of life
    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
        pass
    finally:
        done.set()


def _signal_group(pgid: int, signum: int) -> bool:
    """Send `signum` to the process group; False when the group no longer exists."""
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        return False
    except PermissionError:  # pragma: no cover - a reused id: not ours any more
        return False
    return True


def _group_has_live_members(pgid: int) -> bool:
    """Whether a process other than a zombie is left in the group. Zombies (orphans waiting
    for an init process that may never reap them) cannot run and do not count."""
    if not _signal_group(pgid, 0):
        return False
    proc = Path("/proc")
    if not proc.is_dir():  # pragma: no cover - not Linux: assume the worst
        return True
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


async def _group_gone(process: anyio.abc.Process, pgid: int) -> None:
    """Return once the command's process has exited and no live process is left in its group."""
    if process.returncode is None:
        await process.wait()
    # Nothing signals when the command's own children exit: poll the group.
    while _group_has_live_members(pgid):  # noqa: ASYNC110
        await anyio.sleep(0.02)


async def _end_group(process: anyio.abc.Process, pgid: int, grace: float) -> None:
    """Terminate every process in the group (SIGTERM, then SIGKILL after `grace` seconds),
    wait until they are gone, and reap the command's own process."""
    if _group_has_live_members(pgid):
        _signal_group(pgid, signal.SIGTERM)
        with anyio.move_on_after(grace):
            await _group_gone(process, pgid)
        if _group_has_live_members(pgid):
            log.info("process group %d outlived SIGTERM; sending SIGKILL", pgid)
            _signal_group(pgid, signal.SIGKILL)
            # SIGKILL cannot be caught, but it takes effect asynchronously.
            with anyio.move_on_after(KILL_WAIT):
                await _group_gone(process, pgid)
    if process.returncode is None:
        await process.wait()


class CommandExecutor:
    """Runs `command` actions under a `CommandPolicy`."""

    def __init__(
        self, policy: CommandPolicy, *, kill_grace: float = 2.0, drain_grace: float = 1.0
    ) -> None:
        self.policy = policy
        self.kill_grace = kill_grace
        self.drain_grace = drain_grace

    async def execute(self, ctx: ActionContext) -> Any:
        try:
            action = CommandAction.model_validate(ctx.task.action)
            executable = validate_command(action, self.policy)
        except ValidationError as exc:
            message = f"the task's command action is invalid: {invalid_input_from(exc)}"
            raise ActionFailed(message) from None
        except InvalidInput as exc:
            raise ActionFailed(str(exc)) from None
        program = action.argv[0]
        try:
            # Shielded: a cancellation arriving mid-spawn is handled below, once the process
            # group exists and can be ended as a whole.
            with anyio.CancelScope(shield=True):
                process = await anyio.open_process(
                    [executable, *action.argv[1:]],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    cwd=action.cwd,
                    env={**minimal_environment(), **action.env, **_input_env(ctx)},
                    start_new_session=True,
                )
        except OSError as exc:
            where = f" in {action.cwd}" if action.cwd else ""
            raise ActionFailed(
                f"could not start {program!r}{where}: {exc.strerror or exc}"
            ) from None
        pgid = process.pid  # a new session: the command leads its own process group
        log.debug("started %s as pid %d", program, pgid, extra={"action": "command"})
        limit = self.policy.max_output_bytes
        stdout, stderr = _Tail(limit), _Tail(limit)
        try:
            async with anyio.create_task_group() as tg:
                stdout_done, stderr_done = anyio.Event(), anyio.Event()
                tg.start_soon(_drain, process.stdout, stdout, stdout_done, ctx.beat)
                tg.start_soon(_drain, process.stderr, stderr, stderr_done, ctx.beat)
                code = await process.wait()
                # What the command left running in its group is ended with it.
                await _end_group(process, pgid, self.kill_grace)
                with anyio.move_on_after(self.drain_grace):
                    await stdout_done.wait()
                    await stderr_done.wait()
                tg.cancel_scope.cancel()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await _end_group(process, pgid, self.kill_grace)
            raise
        finally:
            with anyio.CancelScope(shield=True):
                await process.aclose()
        stderr_text = stderr.text()
        output = {
            "exitCode": code,
            "stdout": stdout.text(),
            "stderr": stderr_text,
            "truncated": {"stdout": stdout.truncated, "stderr": stderr.truncated},
        }
        if code == 0:
            return output
        if code < 0:
            try:
                how = f"was killed by signal {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
        else:
            how = f"exited with code {code}"
        excerpt = stderr_text.strip()[-500:]
        raise ActionFailed(
            f"command {program!r} {how}" + (f": {excerpt}" if excerpt else ""), output=output
        )
