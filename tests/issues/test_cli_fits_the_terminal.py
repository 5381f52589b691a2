"""The command line as it was found in a 120-column terminal: tables wrapped (30-character ids
and whole error texts), `runs` named tasks by id, a mistyped flag got the top-level usage with
no suggestion, `serve --help` showed `0:00:30`, the server said "(1 bearer tokens)", "in 1m"
stood for 1m59s, `preview` had no `--json`, a one-shot's next fire showed microseconds, and
`@every 0s` was refused with a Python repr.

Every test runs the real entry point on a real SQLite file: `wakecall.cli.main` in this
process where the output goes to a pipe, the console script on a pseudo-terminal of a given
width where a person reads it, and a real `wakecall serve` process for its start line."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import shutil
import signal
import struct
import subprocess
import sys
import termios
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from wakecall.cli import build_parser, main
from wakecall.engine import Engine, EngineConfig
from wakecall.models import NoopAction, TaskSpec
from wakecall.store import SQLiteStore
from wakecall.testing import FakeClock, ScriptedExecutor, service_for, step_to

WAKECALL = shutil.which("wakecall", path=str(Path(sys.executable).parent))
ANSI = re.compile(r"\x1b\[[0-9;]*m")
#: An id wakecall made, whole (`tsk_` and 26 characters: 30 in all).
WHOLE_ID = re.compile(r"\b[a-z]+_[0-9a-z]{26}\b")
#: Bounds a command run as a process, on a loaded machine.
COMMAND_TIMEOUT = 60

LONG_NAMES = [
    "nightly export of every invoice, credit note and refund to the accounting system",
    "夜間レポート：すべての請求書と返金を会計システムへ送る長い名前のタスク",
    "hourly poll of the supplier's price list, compared with yesterday's and mailed",
]
LONG_ERROR = (
    "upstream refused the connection: the receiving service answered 503 Service "
    "Unavailable, retried twice on its own side, then closed the socket before any body "
    "was read; the load balancer in front of it reported every backend as draining"
)
CALLBACK_URL = "https://accounting.example.com/hooks/wakecall/deliveries/for-the-nightly-export"


@dataclass
class Ran:
    code: int
    out: str
    err: str


@pytest.fixture
def quiet_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No WAKECALL_* settings, colour or width from outside; a private HOME."""
    for name in list(os.environ):
        if name.startswith("WAKECALL_") or name in ("COLUMNS", "LINES", "NO_COLOR"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


@pytest.fixture
def db(tmp_path: Path, quiet_env: None) -> Path:
    return tmp_path / "wakecall.db"


def wakecall(capsys: pytest.CaptureFixture[str], *args: str) -> Ran:
    """`wakecall ARGS` through its entry point in this process, stdout and stderr captured."""
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse: usage errors and --help
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return Ran(code, out, err)


def on_terminal(db: Path, *args: str, columns: int | None, env_columns: str | None = None) -> str:
    """The console script with stdout on a pseudo-terminal `columns` wide (None: one that
    reports no size); what it showed there, colour codes left out."""
    assert WAKECALL is not None
    leader, follower = pty.openpty()
    if columns is not None:
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    env["TERM"] = "xterm"
    if env_columns is not None:
        env["COLUMNS"] = env_columns
    try:
        done = subprocess.run(
            [WAKECALL, *args, "--store", str(db)],
            stdout=follower,
            stderr=subprocess.PIPE,
            env=env,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
    finally:
        os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # closed and drained
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert done.returncode == 0, done.stderr
    return ANSI.sub("", b"".join(chunks).decode()).replace("\r\n", "\n")


def columns_taken(line: str) -> int:
    """How many terminal columns a line takes (East Asian wide characters take two)."""
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in line
    )


# --- a store with a history --------------------------------------------------------------
@dataclass
class History:
    task_ids: list[str]
    delivery_ids: list[str]


async def write_history(path: Path) -> History:
    """Three tasks with long names and generated ids ran twice each, ten minutes ago; their
    first runs failed with a long error. Each run left a callback delivery; one of them was
    dead-lettered with the same long error."""
    store = SQLiteStore(path)
    await store.open()
    try:
        clock = FakeClock(datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10))
        executor = ScriptedExecutor([LONG_ERROR] * 3)
        config = EngineConfig(poll_interval=timedelta(hours=1), prune_every=timedelta(days=1))
        executors: Any = {"noop": executor}
        task_ids = []
        with anyio.fail_after(10):
            async with Engine(store, clock=clock, config=config, executors=executors) as engine:
                for name in LONG_NAMES:
                    spec = TaskSpec(
                        name=name,
                        schedule="@every 1m",
                        action=NoopAction(),
                        callback_url=CALLBACK_URL,
                    )
                    task = (await service_for(engine).create("local", spec)).task
                    task_ids.append(task.id)
                await step_to(engine, clock, clock.now() + timedelta(minutes=2, seconds=1))
        claimed = await store.claim_deliveries("test", clock.now(), 1, timedelta(minutes=1))
        await store.finish_delivery(
            "test",
            claimed[0].id,
            clock.now(),
            delivered=False,
            retry_at=None,
            status_code=503,
            error=LONG_ERROR,
        )
        deliveries = await store.list_deliveries("local", limit=100)
    finally:
        await store.close()
    return History(task_ids, [d.id for d in deliveries])


@pytest.fixture
def history(db: Path) -> History:
    return anyio.run(write_history, db)


# --- tables as wide as the terminal --------------------------------------------------------
TABLES = [("tasks", "list"), ("runs",), ("deliveries", "--status", "all")]


@pytest.mark.slow
@pytest.mark.parametrize("width", [80, 120])
def test_no_table_line_is_wider_than_the_terminal(db: Path, history: History, width: int) -> None:
    prefix = unique_prefix(history.task_ids[0], history.task_ids)
    for args in [*TABLES, ("runs", prefix)]:
        shown = on_terminal(db, *args, columns=width)
        lines = shown.splitlines()
        assert all(columns_taken(line) <= width for line in lines), (args, shown)
        assert not WHOLE_ID.search(shown), (args, shown)  # ids abbreviated
        assert "…" in shown, (args, shown)  # long names, errors or URLs cut
        expected_rows = {"tasks": 3, "runs": 6 if len(args) == 1 else 2, "deliveries": 6}
        assert len(lines) == 1 + expected_rows[args[0]], (args, shown)


@pytest.mark.slow
def test_abbreviated_ids_are_unique_prefixes_that_commands_accept(
    db: Path, history: History, capsys: pytest.CaptureFixture[str]
) -> None:
    listed = on_terminal(db, "tasks", "list", columns=120).splitlines()[1:]
    shown = [line.split()[0] for line in listed]
    for short, task_id in zip(shown, history.task_ids, strict=True):
        assert 8 <= len(short) < len(task_id) and task_id.startswith(short)
        assert [t for t in history.task_ids if t.startswith(short)] == [task_id]
        assert wakecall(capsys, "tasks", "show", short, "--json", "--store", str(db)).out
    shown_json = json.loads(wakecall(capsys, "tasks", "show", shown[1], "--json",
                                     "--store", str(db)).out)  # fmt: skip
    assert shown_json["id"] == history.task_ids[1]


@pytest.mark.slow
def test_the_terminal_width_comes_from_columns_and_defaults_to_80(
    db: Path, history: History
) -> None:
    wide = on_terminal(db, "runs", columns=200, env_columns="100")
    assert max(columns_taken(line) for line in wide.splitlines()) <= 100
    unsized = on_terminal(db, "runs", columns=None)
    assert max(columns_taken(line) for line in unsized.splitlines()) <= 80


def test_runs_name_each_task_by_its_name(
    db: Path, history: History, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = wakecall(capsys, "runs", "--store", str(db)).out.splitlines()
    assert lines[0].split("\t")[:2] == ["run", "task"]
    assert {line.split("\t")[1] for line in lines[1:]} == set(LONG_NAMES)
    lines = wakecall(capsys, "deliveries", "--status", "all", "--store", str(db)).out.splitlines()
    assert {line.split("\t")[1] for line in lines[1:]} == set(LONG_NAMES)


# --- ids by a unique prefix ----------------------------------------------------------------
def shared_start(ids: list[str]) -> str:
    """The longest text every one of `ids` starts with."""
    first, *others = ids
    length = 0
    while length < len(first) and all(o[length : length + 1] == first[length] for o in others):
        length += 1
    return first[:length]


def unique_prefix(wanted: str, ids: list[str]) -> str:
    """The shortest start of `wanted` that no other of `ids` has (at least 8 characters)."""
    shared = max(len(shared_start([wanted, other])) for other in ids if other != wanted)
    prefix = wanted[: max(8, shared + 1)]
    assert len(prefix) < len(wanted) and [i for i in ids if i.startswith(prefix)] == [wanted]
    return prefix


def test_every_command_that_takes_an_id_takes_a_unique_prefix_of_one(
    db: Path, history: History, capsys: pytest.CaptureFixture[str]
) -> None:
    store = ("--store", str(db))
    task_id = history.task_ids[2]
    prefix = unique_prefix(task_id, history.task_ids)
    for args in (
        ("tasks", "show", prefix, "--json"),
        ("tasks", "pause", prefix, "--json"),
        ("tasks", "resume", prefix, "--json"),
        ("tasks", "patch", prefix, "--name", "renamed", "--json"),
        ("tasks", "run", prefix, "--dry-run", "--json"),
    ):
        ran = wakecall(capsys, *args, *store)
        assert ran.code == 0, (args, ran)
        data = json.loads(ran.out)
        assert task_id in (data.get("id"), data.get("task_id")), (args, data)
    runs = json.loads(wakecall(capsys, "runs", prefix, "--json", *store).out)["runs"]
    assert {r["task_id"] for r in runs} == {task_id} and len(runs) == 2
    delivery_id = history.delivery_ids[0]
    short = unique_prefix(delivery_id, history.delivery_ids)
    again = wakecall(capsys, "redeliver", short, "--json", *store)
    assert json.loads(again.out)["id"] == delivery_id
    added = wakecall(capsys, "tasks", "add", "after", "on demand", "--depends-on", prefix,
                     "--json", *store)  # fmt: skip
    assert json.loads(added.out)["depends_on"] == task_id
    deleted = wakecall(capsys, "tasks", "delete", prefix, "--json", *store)
    assert json.loads(deleted.out) == {"deleted": True, "id": task_id}


def test_a_prefix_of_several_ids_is_refused_naming_them_and_changes_nothing(
    db: Path, history: History, capsys: pytest.CaptureFixture[str]
) -> None:
    shared = shared_start(history.task_ids)
    assert len(shared) >= 8  # made within seconds: they share their first digits
    ran = wakecall(capsys, "tasks", "delete", shared, "--store", str(db))
    assert ran.code == 2 and ran.out == ""
    assert f"task id {shared!r} is ambiguous: 3 tasks start with it" in ran.err
    for task_id, name in zip(history.task_ids, LONG_NAMES, strict=True):
        assert f"{task_id} ({name})" in ran.err
    assert "give more of the id, as in " in ran.err
    listed = json.loads(wakecall(capsys, "tasks", "list", "--json", "--store", str(db)).out)
    assert len(listed["tasks"]) == 3
    too_short = wakecall(capsys, "tasks", "show", shared[:6], "--store", str(db))
    assert too_short.code == 3 and "no task with id" in too_short.err


# --- usage errors ----------------------------------------------------------------------------
USAGE_ERRORS = [
    (("tasks", "patch", "t", "--schedle", "@daily"), "wakecall tasks patch",
     "unknown flag --schedle; did you mean --schedule?"),
    (("tasks", "add", "t", "@daily", "--jiter", "5s"), "wakecall tasks add",
     "unknown flag --jiter; did you mean --jitter?"),
    (("tasks", "add", "--schedul", "0 9 * * *"), "wakecall tasks add",
     "unknown flag --schedul; SCHEDULE is given without a flag: wakecall tasks add NAME SCHEDULE"),
    (("runs", "--limt", "5"), "wakecall runs", "unknown flag --limt; did you mean --limit?"),
    (("tasks", "lst"), "wakecall tasks", "unknown command 'lst'; did you mean list?"),
    (("tasks", "add", "t", "@daily", "--overlap", "skp"), "wakecall tasks add",
     "--overlap cannot be 'skp'; did you mean skip?"),
    (("deliveries", "--status", "faild"), "wakecall deliveries",
     "--status cannot be 'faild'; did you mean failed?"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "command", "message"), USAGE_ERRORS)
def test_a_usage_error_shows_the_commands_usage_and_the_nearest_flag(
    db: Path, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], command: str, message: str
) -> None:
    ran = wakecall(capsys, *args, "--store", str(db))
    assert ran.code == 2 and ran.out == ""
    assert ran.err.startswith(f"usage: {command} "), ran.err
    assert f"{command}: error: {message}" in ran.err
    assert not db.exists()


# --- --json on every command that prints data ------------------------------------------------
def _hours_ago(hours: int) -> str:
    return (datetime.now(UTC) - timedelta(hours=hours)).isoformat()


def sample_arguments(history: History, task_file: Path) -> dict[str, list[str]]:
    """Arguments that make each command print data (the delete comes last)."""
    task = history.task_ids[0]
    return {
        "preview": ["@every 30m"],
        "tasks list": [],
        "tasks show": [task],
        "tasks add": ["one more", "@daily"],
        "tasks patch": [task, "--name", "renamed"],
        "tasks pause": [task],
        "tasks resume": [task],
        "tasks run": [task],
        "tasks backfill": [task, "--from", _hours_ago(48), "--to", _hours_ago(1), "--dry-run"],
        "runs": [],
        "deliveries": [],
        "redeliver": [history.delivery_ids[0]],
        "apply": [str(task_file)],
        "export": [],
        "tasks delete": [task],
    }


def test_every_command_that_prints_data_has_json(
    db: Path, history: History, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from wakecall.cli.parsing import leaf_commands, option_strings  # (not in the old code)

    task_file = tmp_path / "tasks.toml"
    task_file.write_text('[[tasks]]\nid = "filed"\nschedule = "@daily"\n')
    samples = sample_arguments(history, task_file)
    commands = {name: parser for name, parser in leaf_commands(build_parser())}
    assert set(commands) == {*samples, "serve"}  # serve prints no data: it serves
    for name, arguments in samples.items():
        assert "--json" in option_strings(commands[name]), name
        store = [] if name == "preview" else ["--store", str(db)]
        ran = wakecall(capsys, *name.split(), *arguments, "--json", *store)
        assert ran.code == 0, (name, ran)
        assert isinstance(json.loads(ran.out), dict), name


def test_preview_prints_its_fires_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    ran = wakecall(capsys, "preview", "0 9 * * MON-FRI", "--tz", "Europe/Paris", "--count", "3",
                   "--json")  # fmt: skip
    data = json.loads(ran.out)
    assert data["timezone"] == "Europe/Paris"
    assert "Monday through Friday" in data["description"]
    assert [f["local"][11:19] for f in data["fires"]] == ["09:00:00"] * 3
    assert all(f["utc"].endswith("Z") for f in data["fires"])


# --- durations and instants in human units -----------------------------------------------
def test_serve_help_shows_durations_as_they_are_written(
    quiet_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    ran = wakecall(capsys, "serve", "--help")
    assert ran.code == 0
    text = " ".join(ran.out.split())
    for shown in ("claim lease, e.g. 30s (default: 30s)", "(default: 2s)", "(default: 10m)",
                  "(default: 30d)", "(default: 1d)"):  # fmt: skip
        assert shown in text, shown
    assert not re.search(r"\d:\d\d:\d\d|days?,", text)


def test_relative_times_are_not_cut_to_a_misleading_unit(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    at = datetime.now(UTC) + timedelta(seconds=119.9)
    wakecall(capsys, "tasks", "add", "soon", at.isoformat(), "--store", str(db))
    row = wakecall(capsys, "tasks", "list", "--store", str(db)).out.splitlines()[1]
    next_run = row.split("\t")[6]
    # 1m59.9s less the time the command took: never "in 1m"
    assert re.fullmatch(r"in (1m[1-5]\ds|2m)", next_run), next_run


def test_a_one_shots_next_fire_is_shown_to_the_second(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    added = json.loads(wakecall(capsys, "tasks", "add", "once", "in 5m", "--json",
                                "--store", str(db)).out)  # fmt: skip
    shown = wakecall(capsys, "tasks", "show", added["id"], "--store", str(db)).out
    fires = next(line for line in shown.splitlines() if line.startswith("next fires:"))
    assert re.match(r"next fires:\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+00:00  \(", fires), fires
    preview = wakecall(capsys, "preview", "in 5m").out
    assert not re.search(r":\d\d\.\d", shown + preview), shown + preview


# --- messages ---------------------------------------------------------------------------------
def test_a_zero_interval_is_refused_in_our_words_with_an_example(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for args in (("tasks", "add", "t", "@every 0s", "--store", str(db)), ("preview", "@every 0s")):
        ran = wakecall(capsys, *args)
        assert ran.code == 2
        assert "an interval must be longer than zero, got 0s" in ran.err
        assert 'Example: "@every 30s"' in ran.err
        assert "timedelta" not in ran.err and "datetime" not in ran.err


@pytest.mark.slow
async def test_the_http_server_counts_its_bearer_tokens_in_words(db: Path) -> None:
    for tokens, said in [
        ("t1=alice", "(1 bearer token)"),
        ("t1=alice,t2=bob", "(2 bearer tokens)"),
    ]:
        start = await http_start_line(db, tokens)
        assert start.endswith(said), start


async def http_start_line(db: Path, tokens: str) -> str:
    """The line a `wakecall serve --http` with these bearer tokens starts with; then Ctrl-C."""
    assert WAKECALL is not None
    env = {**os.environ, "WAKECALL_TOKENS": tokens}
    command = [WAKECALL, "serve", "--http", "--port", "0", "--store", str(db)]
    seen = ""
    with anyio.fail_after(COMMAND_TIMEOUT):
        async with await anyio.open_process(command, env=env) as process:
            assert process.stderr is not None
            try:
                async for chunk in process.stderr:
                    seen += chunk.decode()
                    if "serving MCP on" in seen:
                        break
            finally:
                process.send_signal(signal.SIGINT)
                await process.wait()
    return next(line for line in seen.splitlines() if "serving MCP on" in line)
