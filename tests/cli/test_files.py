"""Task files: `wakecall apply` (idempotent by id, --prune, --dry-run, refused whole with
line numbers) and `wakecall export` (applying an export changes nothing), through the real
console script; and `apply_file`, the function a server calls to load a file at start."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from wakecall.clock import SystemClock
from wakecall.settings import Settings
from wakecall.store import SQLiteStore
from wakecall.taskfile import TaskFileError, apply_file

pytestmark = pytest.mark.slow

TASKS = """\
# what the ops team schedules
[[tasks]]
id = "nightly-report"
name = "nightly report"
schedule = "0 2 * * *"
timezone = "Europe/Paris"
enabled = true
metadata = { team = "ops" }

[tasks.action]
type = "webhook"
url = "https://reports.example.com/run"
method = "POST"
headers = { Authorization = "Bearer abc" }
body = { kind = "nightly", pages = [1, 2] }

[tasks.execution]
timeout = "10m"
retries = 2
retry_delay = "30s"
overlap = "queue"

[[tasks]]
id = "poll"
schedule = { type = "interval", every = "15m" }

[[tasks]]
id = "office-hours"
name = "office hours"
schedule = { type = "daily", times = ["09:00", "17:30"], weekdays = ["MON", "FRI"] }
timezone = "America/New_York"
jitter = "30s"
max_runs = 100
expires_at = 2031-01-01T00:00:00Z
action = { type = "noop" }
"""


def lines_of(result: Any) -> list[str]:
    return result.stdout.splitlines()


def test_applying_a_file_twice_creates_then_leaves_each_task(any_cli: Any) -> None:
    cli = any_cli
    path = cli.write("tasks.toml", TASKS)
    first = lines_of(cli.ok("apply", str(path)))
    assert first == [
        "+ nightly-report (nightly report): created",
        "+ poll (poll): created",
        "+ office-hours (office hours): created",
        "3 created, 0 changed, 0 unchanged",
    ]
    second = lines_of(cli.ok("apply", str(path)))
    assert second == [
        "= nightly-report (nightly report): unchanged",
        "= poll (poll): unchanged",
        "= office-hours (office hours): unchanged",
        "0 created, 0 changed, 3 unchanged",
    ]
    nightly = cli.json("tasks", "show", "nightly-report")
    assert nightly["timezone"] == "Europe/Paris"
    assert nightly["action"]["headers"] == {"Authorization": "Bearer abc"}
    assert nightly["retry"]["attempts"] == 3 and nightly["retry"]["delay"] == "30s"
    assert (nightly["timeout"], nightly["overlap"]) == ("10m", "queue")
    assert nightly["metadata"] == {"team": "ops"}
    poll = cli.json("tasks", "show", "poll")
    assert poll["action"] == {"type": "wakeup", "reason": "poll", "context": None}
    hours = cli.json("tasks", "show", "office-hours")
    assert hours["schedule"]["weekdays"] == ["MON", "FRI"]
    assert (hours["max_runs"], hours["expires_at"]) == (100, "2031-01-01T00:00:00Z")
    report = cli.json("apply", str(path))
    assert report["counts"] == {"create": 0, "change": 0, "unchanged": 3, "delete": 0}
    assert [c["line"] for c in report["changes"]] == [2, 23, 27]


def test_a_changed_file_changes_only_what_differs_and_says_which_fields(cli: Any) -> None:
    path = cli.write("tasks.toml", TASKS)
    cli.ok("apply", str(path))
    changed = TASKS.replace('schedule = "0 2 * * *"', 'schedule = "0 3 * * *"')
    changed = changed.replace('timeout = "10m"', 'timeout = "20m"')
    changed = changed.replace('id = "poll"\n', 'id = "poll"\nenabled = false\n')
    changed = changed.replace('jitter = "30s"\n', "")
    path.write_text(changed)
    plan = lines_of(cli.ok("apply", str(path), "--dry-run"))
    assert plan == [
        "~ nightly-report (nightly report): would change (schedule, timeout)",
        "~ poll (poll): would change (enabled)",
        "~ office-hours (office hours): would change (jitter)",
        "0 to create, 3 to change, 0 unchanged; dry run: nothing was changed",
    ]
    assert cli.json("tasks", "show", "nightly-report")["schedule"]["expression"] == "0 2 * * *"
    done = lines_of(cli.ok("apply", str(path)))
    assert done[0] == "~ nightly-report (nightly report): changed (schedule, timeout)"
    nightly = cli.json("tasks", "show", "nightly-report")
    assert (nightly["schedule"]["expression"], nightly["timeout"]) == ("0 3 * * *", "20m")
    assert nightly["next_fires"][0]["local"].endswith(("03:00:00+01:00", "03:00:00+02:00"))
    poll = cli.json("tasks", "show", "poll")
    assert poll["status"] == "paused" and "tasks.toml" in poll["pause_note"]
    assert "jitter" not in cli.json("tasks", "show", "office-hours")["schedule"]
    assert lines_of(cli.ok("apply", str(path)))[-1] == "0 created, 0 changed, 3 unchanged"
    path.write_text(TASKS)
    assert "~ poll (poll): changed (enabled)" in lines_of(cli.ok("apply", str(path)))
    assert cli.json("tasks", "show", "poll")["status"] == "active"


def test_prune_deletes_the_owners_tasks_the_file_does_not_name(any_cli: Any) -> None:
    cli = any_cli
    path = cli.write("tasks.toml", TASKS)
    cli.ok("apply", str(path))
    cli.ok("tasks", "add", "by hand", "@daily", "--id", "by-hand")
    cli.ok("tasks", "add", "another owner's", "@daily", "--id", "theirs", "--owner", "bob")
    kept = lines_of(cli.ok("apply", str(path)))
    assert kept[-1] == (
        "0 created, 0 changed, 3 unchanged; 1 task not in the file left as they are "
        "(--prune deletes them)"
    )
    plan = lines_of(cli.ok("apply", str(path), "--prune", "--dry-run"))
    assert "- by-hand (by hand): would be deleted" in plan
    assert "by-hand" in cli.task_ids()
    pruned = lines_of(cli.ok("apply", str(path), "--prune"))
    assert "- by-hand (by hand): deleted" in pruned
    assert pruned[-1] == "0 created, 0 changed, 3 unchanged, 1 deleted"
    assert sorted(cli.task_ids()) == ["nightly-report", "office-hours", "poll"]
    assert cli.task_ids(env={"WAKECALL_OWNER": "bob"}) == ["theirs"]


def test_applying_an_export_changes_nothing_and_recreates_the_tasks_elsewhere(
    cli: Any, tmp_path: Path
) -> None:
    cli.ok("apply", str(cli.write("tasks.toml", TASKS)))
    cli.ok(
        "tasks", "add", 'odd "name"\twith\nescapes ✓', "in 2h", "--id", "once",
        "--wakeup", "look", "--context", '{"pr": 42, "tags": ["a", "b"], "ratio": 0.5}',
        "--metadata", '{"path": "C:\\\\x", "nested": {"deep": [1, {"k": true}]}}',
        "--callback-url", "https://app.example/hook", "--paused",
    )  # fmt: skip
    cli.ok("tasks", "add", "every 90s", "@every 90s", "--noop", "--catchup", "skip",
           "--catchup-window", "10m", "--retries", "3", "--retry-backoff", "none",
           "--retry-max-delay", "2m", "--no-retry-jitter", "--max-queued", "2",
           "--overlap", "queue")  # fmt: skip
    cli.ok("tasks", "add", "agent wakeup", "in 1h", "--wakeup", "x")
    cli.ok("tasks", "pause", "poll")
    exported = tmp_path / "export.toml"
    assert cli.ok("export", "-o", str(exported)).stdout.strip() == (
        f"exported 6 tasks to {exported}"
    )
    text = exported.read_text()
    assert text.splitlines()[1:] == cli.ok("export").stdout.splitlines()[1:]  # [0]: the time
    data = tomllib.loads(text)
    assert len(data["tasks"]) == 6
    again = cli.json("apply", str(exported))
    assert again["counts"] == {"create": 0, "change": 0, "unchanged": 6, "delete": 0}

    before = {t["id"]: t for t in cli.json("tasks", "list")["tasks"]}
    elsewhere = str(tmp_path / "elsewhere.db")
    created = cli.json("apply", str(exported), store=elsewhere)
    assert created["counts"]["create"] == 6
    after = {t["id"]: t for t in cli.json("tasks", "list", store=elsewhere)["tasks"]}
    assert after.keys() == before.keys()
    same = ("name", "status", "schedule", "timezone", "action", "retry", "timeout", "overlap",
            "max_queued", "catchup", "catchup_window", "max_runs", "expires_at",
            "callback_url", "metadata", "next_fires")  # fmt: skip
    for task_id, task in before.items():
        assert {k: after[task_id][k] for k in same} == {k: task[k] for k in same}, task_id
    assert cli.json("apply", str(exported), store=elsewhere)["counts"]["unchanged"] == 6


INVALID = """\
[[tasks]]
id = "fine"
schedule = "@daily"

[[tasks]]
id = "nightly"
schedule = "0 25 * * *"

[[tasks]]
id = "typo"
schedule = "@daily"
colour = "blue"

[tasks.execution]
timeout = "-5s"
overlap = "sometimes"

[[tasks]]
id = "fine"
schedule = "@hourly"

[[tasks]]
id = "local"
schedule = "@daily"
[tasks.action]
type = "webhook"
url = "http://127.0.0.1:9/x"
"""


def test_an_invalid_file_is_refused_whole_with_a_line_for_each_problem(any_cli: Any) -> None:
    cli = any_cli
    path = cli.write("tasks.toml", INVALID)
    error = cli.fails(2, "apply", str(path))
    assert error.splitlines() == [
        f"{path}:7: task 'nightly': schedule: hour field '25' is out of range 0-23. Example: "
        '"0 9 * * MON-FRI" (09:00 on weekdays) or "*/15 * * * *" (every 15 minutes)',
        f"{path}:12: task 'typo': unknown key 'colour'; a task takes id, name, schedule, "
        "timezone, jitter, enabled, action, execution, max_runs, expires_at, callback_url, "
        "metadata, depends_on, trigger, condition, concurrency, rate_limit",
        f"{path}:15: task 'typo': execution.timeout: duration: must not be negative, got '-5s'. "
        'Example: "30s", "5m", "1h30m", "250ms" or a number of seconds such as 90',
        f"{path}:16: task 'typo': execution.overlap: Input should be 'skip', 'queue', "
        "'cancel_previous' or 'allow'",
        f"{path}:19: task 'fine': id 'fine' is used twice (first by task #1); ids must be "
        "unique within a file",
        f"{path}:27: task 'local': action.url: refusing to connect to 127.0.0.1: a loopback "
        "address (this machine), not a public internet address; the operator can allow it "
        "with the server setting allow_outbound (`wakecall serve --allow-outbound loopback`, "
        "or WAKECALL_ALLOW_OUTBOUND=loopback). Example: https://example.com/hooks/wakecall",
        f"wakecall: {path}: 6 problems; nothing was applied",
    ]
    assert cli.task_ids() == []  # "fine" was valid, and still was not applied
    assert cli.fails(2, "apply", str(path), "--dry-run") == error


def test_a_toml_syntax_error_names_its_line_and_a_missing_file_is_an_input_error(
    cli: Any, tmp_path: Path
) -> None:
    path = cli.write("broken.toml", '[[tasks]]\nid = "x"\nschedule = \n')
    error = cli.fails(2, "apply", str(path))
    assert error.splitlines()[0] == f"{path}:3: not valid TOML: Invalid value (column 12)"
    error = cli.fails(2, "apply", str(tmp_path / "absent.toml"))
    assert "cannot read task file" in error and "No such file" in error
    odd = cli.write("odd.toml", '[settings]\nx = 1\n[[tasks]]\nschedule = "@daily"\n')
    lines = cli.fails(2, "apply", str(odd)).splitlines()
    assert (
        lines[0] == f"{odd}:1: unknown top-level key 'settings'; a task file holds [[tasks]] tables"
    )
    assert lines[1].startswith(f"{odd}:3: task #1: id: missing")


def test_an_id_of_another_owners_task_is_refused(cli: Any) -> None:
    cli.ok("tasks", "add", "bob's", "@daily", "--id", "shared", "--owner", "bob")
    path = cli.write("tasks.toml", '[[tasks]]\nid = "shared"\nschedule = "@daily"\n')
    error = cli.fails(2, "apply", str(path))
    assert "tasks.toml:1: task 'shared': id 'shared' belongs to a task of another owner" in error


def test_a_new_callback_url_gets_a_secret_shown_once(cli: Any) -> None:
    path = cli.write(
        "tasks.toml",
        '[[tasks]]\nid = "cb"\nschedule = "@daily"\ncallback_url = "https://app.example/h"\n',
    )
    report = cli.json("apply", str(path))
    assert report["changes"][0]["callback_secret"].startswith("whsec_")
    text = cli.ok("apply", str(path)).stdout
    assert "whsec_" not in text and "= cb (cb): unchanged" in text


async def test_apply_file_loads_a_file_into_a_store_as_a_server_would_at_start(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tasks.toml"
    path.write_text(TASKS)
    store = SQLiteStore(tmp_path / "wakecall.db")
    await store.open()
    try:
        settings = Settings()
        service = settings.task_service(store, SystemClock(), settings.engine_config())
        report = await apply_file(service, "local", path)
        assert [(c.op, c.id) for c in report.changes] == [
            ("create", "nightly-report"),
            ("create", "poll"),
            ("create", "office-hours"),
        ]
        again = await apply_file(service, "local", path)
        assert [c.op for c in again.changes] == ["unchanged"] * 3
        path.write_text(TASKS.replace("https://reports.example.com", "http://10.1.2.3"))
        with pytest.raises(TaskFileError) as refused:
            await apply_file(service, "local", path)
        assert refused.value.problems == [
            f"{path}:12: task 'nightly-report': action.url: refusing to connect to 10.1.2.3: "
            "a private address, not a public internet address; the operator can allow it with "
            "the server setting allow_outbound (`wakecall serve --allow-outbound 10.0.0.0/8`, "
            "or WAKECALL_ALLOW_OUTBOUND=10.0.0.0/8). Example: https://example.com/hooks/wakecall"
        ]
        private = Settings(allow_outbound=("10.0.0.0/8",))
        allowed = private.task_service(store, SystemClock(), private.engine_config())
        changed = await apply_file(allowed, "local", path)
        assert [(c.op, c.fields) for c in changed.changes] == [
            ("change", ("action",)),
            ("unchanged", ()),
            ("unchanged", ()),
        ]
    finally:
        await store.close()
