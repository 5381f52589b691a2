"""`wakecall tasks ...` through the real console script: every command, its JSON, its table,
its errors and exit codes, and the settings it resolves as `wakecall serve` does."""

from __future__ import annotations

import os
import pty
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_add_stores_every_field_given_by_flags_and_show_echoes_them(any_cli: Any) -> None:
    cli = any_cli
    created = cli.json(
        "tasks", "add", "nightly report", "0 2 * * *",
        "--id", "nightly",
        "--tz", "Europe/Paris",
        "--jitter", "30s",
        "--webhook", "https://reports.example.com/run",
        "--method", "put",
        "--header", "Authorization: Bearer abc",
        "--body", '{"kind": "nightly", "pages": [1, 2]}',
        "--request-timeout", "15s",
        "--timeout", "10m",
        "--retries", "2",
        "--retry-delay", "30s",
        "--retry-backoff", "linear",
        "--retry-max-delay", "5m",
        "--no-retry-jitter",
        "--overlap", "queue",
        "--max-queued", "3",
        "--catchup", "all",
        "--catchup-window", "2h",
        "--max-runs", "50",
        "--expires-at", "2031-01-01T00:00:00Z",
        "--metadata", '{"team": "ops"}',
        "--meta", "tier=gold",
        "--paused",
    )  # fmt: skip
    assert created["id"] == "nightly"
    assert created["created"] is True
    assert created["status"] == "paused"
    assert created["timezone"] == "Europe/Paris"
    assert created["schedule"]["jitter"] == "30s"
    assert created["action"] == {
        "type": "webhook",
        "url": "https://reports.example.com/run",
        "method": "PUT",
        "headers": {"Authorization": "Bearer abc"},
        "body": {"kind": "nightly", "pages": [1, 2]},
        "timeout": 15.0,
    }
    assert created["retry"] == {
        "attempts": 3,
        "backoff": "linear",
        "delay": "30s",
        "max_delay": "5m",
        "jitter": False,
    }
    assert created["timeout"] == "10m"
    assert (created["overlap"], created["max_queued"]) == ("queue", 3)
    assert (created["catchup"], created["catchup_window"]) == ("all", "2h")
    assert created["max_runs"] == 50
    assert created["expires_at"] == "2031-01-01T00:00:00Z"
    assert created["metadata"] == {"team": "ops", "tier": "gold"}

    shown = cli.json("tasks", "show", "nightly")
    assert {k: v for k, v in shown.items() if k not in ("created", "last_run")} == {
        k: v for k, v in created.items() if k not in ("created", "last_run")
    }
    assert shown["last_run"] is None

    text = cli.ok("tasks", "show", "nightly").stdout
    assert "status:" in text and "paused (created paused)" in text
    assert "webhook PUT https://reports.example.com/run" in text
    assert "2 retries (3 attempts), linear backoff from 30s up to 5m" in text


def test_each_action_kind_can_be_given_by_its_flags(cli: Any) -> None:
    noop = cli.json("tasks", "add", "n", "@hourly", "--noop")
    assert noop["action"] == {"type": "noop"}
    wakeup = cli.json("tasks", "add", "w", "@hourly", "--wakeup", "check it", "--context", "[1]")
    assert wakeup["action"] == {"type": "wakeup", "reason": "check it", "context": [1]}
    default = cli.json("tasks", "add", "standup", "0 9 * * MON-FRI")
    assert default["action"] == {"type": "wakeup", "reason": "standup", "context": None}
    whole = cli.json("tasks", "add", "j", "@hourly", "--action", '{"type": "noop"}')
    assert whole["action"] == {"type": "noop"}
    allowed = {"WAKECALL_COMMANDS": "echo"}
    command = cli.json(
        "tasks", "add", "c", "@hourly",
        "--command", "echo 'hello world' --flag",
        "--cwd", "/tmp",
        "--env", "GREETING=hi",
        env=allowed,
    )  # fmt: skip
    assert command["action"] == {
        "type": "command",
        "argv": ["echo", "hello world", "--flag"],
        "cwd": "/tmp",
        "env": {"GREETING": "hi"},
    }
    daily = cli.json("tasks", "add", "d", '{"type": "daily", "times": ["09:00", "17:30"]}')
    assert daily["schedule"]["times"] == ["09:00", "17:30"]
    assert len(cli.task_ids()) == 6


def test_an_action_the_settings_do_not_allow_is_refused_as_the_server_refuses_it(cli: Any) -> None:
    error = cli.fails(2, "tasks", "add", "c", "@hourly", "--command", "echo hi")
    assert "command actions are disabled" in error and "--commands" in error
    error = cli.fails(2, "tasks", "add", "w", "@hourly", "--webhook", "http://127.0.0.1:9/x")
    assert "loopback" in error and "--allow-outbound" in error
    error = cli.fails(2, "tasks", "add", "cb", "@hourly", "--callback-url", "http://10.0.0.5/hook")
    assert "callback_url" in error
    assert cli.task_ids() == []
    cli.ok("tasks", "add", "w", "@hourly", "--webhook", "http://127.0.0.1:9/x",
           env={"WAKECALL_ALLOW_OUTBOUND": "loopback"})  # fmt: skip
    assert len(cli.task_ids()) == 1


INVALID = [
    (("0 25 * * *",), "hour field '25' is out of range"),
    (("@daily", "--tz", "Mars/Olympus"), "unknown time zone 'Mars/Olympus'"),
    (("@daily", "--timeout", "soon"), "timeout"),
    (("@daily", "--retries", "40"), "--retries must be from 0 to 19"),
    (("@daily", "--webhook", "https://x.example", "--body", "{oops"), "--body is not valid"),
    (("@daily", "--method", "GET"), "--method sets a detail of a webhook action"),
    (("@daily", "--noop", "--context", "1"), "--context applies to wakeup actions"),
    (("@daily", "--expires-at", "2020-01-01T00:00:00Z"), "expires_at is in the past"),
    (("@daily", "--id", "no/slash"), "is not a valid task id"),
    (("@every 100ms",), "more often than the minimum interval"),
    (("@daily", "--meta", "novalue"), "--meta 'novalue' is not KEY=VALUE"),
]


def test_invalid_input_exits_2_with_the_reason_and_stores_nothing(cli: Any) -> None:
    cli.ok("tasks", "add", "first", "@daily", "--id", "first")
    for args, message in INVALID:
        error = cli.fails(2, "tasks", "add", "t", *args)
        assert message in error, (args, error)
        assert error.startswith("wakecall: "), error
    assert cli.task_ids() == ["first"]


def test_a_flag_argparse_cannot_read_exits_2_with_usage(cli: Any) -> None:
    error = cli.fails(2, "tasks", "add", "t", "@daily", "--overlap", "sometimes")
    assert error.startswith("usage: wakecall tasks add NAME SCHEDULE [options]\n")
    assert "--overlap cannot be 'sometimes'; use one of: skip, queue" in error
    error = cli.fails(2, "tasks", "frobnicate")
    assert error.startswith("usage: wakecall tasks ")
    assert "unknown command 'frobnicate'; use one of: list, show, add" in error


def test_an_unknown_id_exits_3_for_every_command(cli: Any) -> None:
    cli.ok("tasks", "add", "real", "@daily", "--id", "real")
    for args in (
        ("tasks", "show", "ghost"),
        ("tasks", "pause", "ghost"),
        ("tasks", "resume", "ghost"),
        ("tasks", "delete", "ghost"),
        ("tasks", "run", "ghost"),
        ("tasks", "run", "ghost", "--dry-run"),
        ("tasks", "patch", "ghost", "--name", "x"),
        ("runs", "ghost"),
        ("redeliver", "msg_ghost"),
    ):
        error = cli.fails(3, *args)
        assert "ghost" in error and "for owner 'local'" in error, args
    assert cli.task_ids() == ["real"]


def test_an_owner_sees_only_its_own_tasks(cli: Any) -> None:
    cli.ok("tasks", "add", "hers", "@daily", "--id", "hers", "--owner", "alice")
    assert cli.task_ids() == []
    assert cli.task_ids(env={"WAKECALL_OWNER": "alice"}) == ["hers"]
    assert "for owner 'local'" in cli.fails(3, "tasks", "show", "hers")
    error = cli.fails(1, "tasks", "add", "mine", "@daily", "--id", "hers")
    assert "a task with id 'hers' exists already" in error


def test_the_store_is_resolved_as_serve_resolves_it(cli: Any, tmp_path: Path) -> None:
    from_env = str(tmp_path / "from-env.db")
    cli.ok("tasks", "add", "a", "@daily", "--id", "a", store=None,
           env={"WAKECALL_STORE": from_env})  # fmt: skip
    assert cli.task_ids(store=from_env) == ["a"]
    config = cli.write("wakecall.toml", f'store = "{tmp_path / "from-config.db"}"\nowner = "ops"\n')
    cli.ok("tasks", "add", "b", "@daily", "--id", "b", "--config", str(config), store=None)
    listed = cli.json("tasks", "list", store=None, env={"WAKECALL_CONFIG": str(config)})
    assert [t["id"] for t in listed["tasks"]] == ["b"]
    assert listed["owner"] == "ops"
    default = tmp_path / "home" / ".local" / "share" / "wakecall" / "wakecall.db"
    cli.ok("tasks", "add", "c", "@daily", "--id", "c", store=None)
    assert default.exists()
    assert cli.task_ids(store=str(default)) == ["c"]


def test_a_store_file_that_does_not_exist_is_reported_not_created(cli: Any, tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"
    for args in (("tasks", "list"), ("runs",), ("deliveries",), ("export",)):
        error = cli.fails(1, *args, store=str(missing))
        assert f"no wakecall database at {missing}" in error
    assert not missing.exists()


def test_patch_changes_the_given_fields_and_clear_resets_others(cli: Any) -> None:
    cli.ok(
        "tasks", "add", "report", "@daily", "--id", "r",
        "--webhook", "https://x.example/run", "--header", "A: 1",
        "--timeout", "1m", "--retries", "1", "--retry-delay", "10s", "--meta", "team=ops",
    )  # fmt: skip
    patched = cli.json(
        "tasks", "patch", "r",
        "--schedule", "0 6 * * *", "--tz", "Asia/Tokyo",
        "--retries", "4",
        "--method", "GET", "--header", "B: 2",
        "--meta", "tier=gold",
        "--clear", "timeout",
    )  # fmt: skip
    assert patched["schedule"]["expression"] == "0 6 * * *"
    assert patched["timezone"] == "Asia/Tokyo"
    assert patched["next_fires"][0]["local"].endswith("06:00:00+09:00")
    assert patched["retry"]["attempts"] == 5 and patched["retry"]["delay"] == "10s"
    assert patched["action"]["method"] == "GET"
    assert patched["action"]["headers"] == {"A": "1", "B": "2"}
    assert patched["action"]["url"] == "https://x.example/run"
    assert patched["metadata"] == {"team": "ops", "tier": "gold"}
    assert patched["timeout"] is None
    assert cli.ok("tasks", "patch", "r", "--name", "morning report").stdout.startswith(
        "changed r (morning report): name"
    )
    assert "nothing to change" in cli.fails(2, "tasks", "patch", "r")
    assert "both given and cleared" in cli.fails(
        2, "tasks", "patch", "r", "--timeout", "5s", "--clear", "timeout"
    )
    error = cli.fails(2, "tasks", "patch", "r", "--rotate-callback-secret")
    assert "no callback_url" in error
    assert cli.json("tasks", "show", "r")["schedule"]["expression"] == "0 6 * * *"


def test_a_callback_url_gets_a_secret_shown_once_and_rotated_on_request(cli: Any) -> None:
    created = cli.json(
        "tasks", "add", "cb", "@daily", "--id", "cb", "--callback-url", "https://app.example/h"
    )
    assert created["callback_secret"].startswith("whsec_")
    assert cli.json("tasks", "show", "cb")["callback_secret"] is None
    rotated = cli.json("tasks", "patch", "cb", "--rotate-callback-secret")
    assert rotated["callback_secret"].startswith("whsec_")
    assert rotated["callback_secret"] != created["callback_secret"]
    plain = cli.json("tasks", "add", "plain", "@daily", "--id", "plain")
    assert plain["callback_secret"] is None
    added = cli.json("tasks", "patch", "plain", "--callback-url", "https://app.example/h")
    assert added["callback_secret"].startswith("whsec_")


def test_pause_resume_and_delete(any_cli: Any) -> None:
    cli = any_cli
    cli.ok("tasks", "add", "t", "@every 1h", "--id", "t")
    paused = cli.ok("tasks", "pause", "t", "--note", "vendor down").stdout
    assert paused.strip() == "paused t (t)"
    shown = cli.json("tasks", "show", "t")
    assert shown["status"] == "paused" and shown["pause_note"] == "vendor down"
    assert shown["next_fires"] == []
    resumed = cli.ok("tasks", "resume", "t").stdout
    assert resumed.startswith("resumed t (t); next fire in ")
    assert cli.json("tasks", "resume", "t")["status"] == "active"
    assert cli.json("tasks", "delete", "t") == {"deleted": True, "id": "t"}
    assert cli.task_ids() == []


def test_run_queues_a_manual_run_and_dry_run_shows_it_without_queuing(any_cli: Any) -> None:
    cli = any_cli
    cli.ok(
        "tasks", "add", "t", "@daily", "--id", "t", "--webhook", "https://x.example/run",
        "--retries", "2", "--timeout", "30s", "--max-runs", "5",
    )  # fmt: skip
    plan = cli.json("tasks", "run", "t", "--dry-run")
    assert plan["dry_run"] is True and plan["would_queue"] is True
    assert plan["action"]["url"] == "https://x.example/run"
    assert plan["action_refused"] is None
    assert plan["policies"]["retry"]["attempts"] == 3
    assert plan["policies"]["timeout_s"] == 30.0
    assert plan["policies"]["max_runs"] == 5
    assert len(plan["next_fires"]) == 5
    text = cli.ok("tasks", "run", "t", "--dry-run").stdout
    assert "dry run: nothing was queued" in text
    assert "a manual run does not count" in text
    assert cli.json("runs", "t")["runs"] == []

    run = cli.json("tasks", "run", "t")
    assert run["status"] == "queued" and run["trigger"] == "manual" and run["task_id"] == "t"
    runs = cli.json("runs", "t")["runs"]
    assert [r["id"] for r in runs] == [run["id"]]
    assert cli.json("tasks", "show", "t")["run_count"] == 0


def test_list_shows_status_schedule_zone_and_next_run_in_json_and_as_text(cli: Any) -> None:
    cli.ok("tasks", "add", "nightly", "0 2 * * *", "--id", "a", "--tz", "Europe/Paris")
    cli.ok("tasks", "add", "poll", "@every 15m", "--id", "b", "--paused")
    listed = cli.json("tasks", "list")
    assert [(t["id"], t["status"], t["timezone"]) for t in listed["tasks"]] == [
        ("a", "active", "Europe/Paris"),
        ("b", "paused", "UTC"),
    ]
    assert all(t["last_run"] is None for t in listed["tasks"])
    assert [t["id"] for t in cli.json("tasks", "list", "--status", "paused")["tasks"]] == ["b"]
    assert [t["id"] for t in cli.json("tasks", "list", "--name", "NIGHT")["tasks"]] == ["a"]

    lines = cli.ok("tasks", "list").stdout.splitlines()
    assert lines[0].split("\t") == [
        "id", "name", "schedule", "zone", "status", "last run", "next run",
    ]  # fmt: skip
    first, second = (line.split("\t") for line in lines[1:])
    assert first[:6] == ["a", "nightly", "0 2 * * *", "Europe/Paris", "active", "-"]
    assert re.fullmatch(r"in \d+(h\d*m?|m)", first[6]), first[6]
    assert second == ["b", "poll", "every 15m", "UTC", "paused", "-", "-"]
    assert not ANSI.search("\n".join(lines))


def _on_a_terminal(cli: Any, *args: str, **env: str) -> str:
    """Run with stdout on a pseudo-terminal; what it printed there."""
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            cli.argv(args, cli.store),
            stdout=follower,
            stderr=subprocess.PIPE,
            env=cli.env(TERM="xterm", **env),
            timeout=60,
            check=False,
        )
    finally:
        os.close(follower)
    assert done.returncode == 0, done.stderr
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal is closed and drained
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    return b"".join(chunks).decode()


def test_tables_and_colour_appear_only_on_a_terminal(cli: Any) -> None:
    cli.ok("tasks", "add", "nightly report", "0 2 * * *", "--id", "a")
    shown = _on_a_terminal(cli, "tasks", "list")
    assert "\x1b[32mactive\x1b[0m" in shown  # status in colour
    header, row = (ANSI.sub("", line) for line in shown.splitlines()[:2])
    assert "\t" not in header and "\t" not in row
    assert header.index("NAME") == row.index("nightly report")
    assert header.index("STATUS") == row.index("active")
    plain = _on_a_terminal(cli, "tasks", "list", NO_COLOR="1")
    assert not ANSI.search(plain) and "nightly report" in plain
    piped = cli.ok("tasks", "list").stdout
    assert not ANSI.search(piped) and "\t" in piped


def test_help_documents_the_exit_codes_and_preview_still_works(cli: Any) -> None:
    text = cli.ok("--help").stdout
    for line in ("0  success", "1  the command failed", "2  invalid usage", "3  not found"):
        assert line in text
    for command in ("tasks", "runs", "deliveries", "redeliver", "apply", "export", "serve"):
        assert command in text
    preview = cli.ok("preview", "0 9 * * MON-FRI", "--tz", "America/New_York", "--count", "3")
    lines = preview.stdout.splitlines()
    assert "Monday through Friday" in lines[0]
    assert len(lines) == 4 and all("09:00:00-0" in line for line in lines[1:])
    assert "unknown time zone" in cli.fails(2, "preview", "@daily", "--tz", "Nowhere/City")


def test_chains_inbound_events_and_conditions_have_flags(cli: Any) -> None:
    cli.ok("tasks", "add", "extract", "@daily", "--id", "extract", "--noop")
    added = cli.json(
        "tasks", "add", "transform", "on demand", "--id", "transform", "--noop",
        "--depends-on", "extract", "--trigger-per-minute", "10",
        "--condition-url", "https://example.com/ok", "--condition-timeout", "3s",
    )  # fmt: skip
    assert added["depends_on"] == "extract" and added["schedule"]["type"] == "on_demand"
    assert added["trigger"] == {"path": "/triggers/transform", "per_minute": 10}
    assert added["trigger_secret"].startswith("whsec_")
    condition = {"url": "https://example.com/ok", "method": "POST", "timeout": "3s"}
    assert added["condition"] == condition
    shown = cli.json("tasks", "show", "transform")
    assert shown["trigger_secret"] is None  # shown once only
    # A cycle is refused and changes nothing; so is a condition the guard refuses.
    error = cli.fails(2, "tasks", "patch", "extract", "--depends-on", "transform")
    assert "cycle (extract -> transform -> extract)" in error
    assert cli.json("tasks", "show", "extract")["depends_on"] is None
    error = cli.fails(2, "tasks", "patch", "transform", "--condition-url", "http://10.1.2.3/x")
    assert "10.1.2.3" in error
    cleared = cli.json("tasks", "patch", "transform", "--clear", "trigger", "--clear", "condition")
    assert cleared["trigger"] is None and cleared["condition"] is None


def test_backfill_queues_past_fires_once_and_refuses_a_future_to(cli: Any) -> None:
    cli.ok("tasks", "add", "report", "0 9 * * *", "--id", "report", "--tz", "Europe/Paris")
    window = ("--from", "2026-01-01T00:00:00Z", "--to", "2026-01-04T00:00:00Z")
    preview = cli.json("tasks", "backfill", "report", *window, "--dry-run")
    assert (preview["fires"], preview["queued"]) == (3, 3)
    assert preview["slots"][0] == "2026-01-01T09:00:00+01:00"
    text = cli.ok("tasks", "backfill", "report", *window).stdout
    assert "3 fires in the range; queued 3, skipped 0, 0 backfilled before" in text
    again = cli.json("tasks", "backfill", "report", *window, "--overlap", "allow")
    assert (again["queued"], again["already_backfilled"]) == (0, 3)
    error = cli.fails(
        2,
        "tasks",
        "backfill",
        "report",
        "--from",
        "2026-01-01T00:00:00Z",
        "--to",
        "2999-01-01T00:00:00Z",
    )
    assert "is in the future" in error and error.startswith("wakecall: "), error
    error = cli.fails(2, "tasks", "backfill", "report", "--from", "yesterday", "--to", "now")
    assert "not an instant with a UTC offset" in error, error
    runs = cli.json("runs", "report")["runs"]
    assert [r["trigger"] for r in runs] == ["backfill"] * 3


def test_flow_control_has_flags_and_bad_ones_are_refused(cli: Any) -> None:
    added = cli.json(
        "tasks", "add", "sync", "@hourly", "--id", "sync", "--noop",
        "--concurrency", "crm=3", "--rate-limit", "crm=10/1m",
    )  # fmt: skip
    assert added["concurrency"] == {"key": "crm", "limit": 3}
    assert added["rate_limit"] == {"key": "crm", "limit": 10, "period": "1m"}
    for args, message in [
        (["--concurrency", "crm"], "is not KEY=VALUE"),
        (["--concurrency", "crm=many"], "is not a whole number"),
        (["--concurrency", "crm=0"], "greater than or equal to 1"),
        (["--rate-limit", "crm=10"], "needs a period after a '/'"),
        (["--rate-limit", "crm=10/0.5s"], "between 1s and 24h"),
    ]:
        error = cli.fails(2, "tasks", "patch", "sync", *args)
        assert message in error, (args, error)
    assert cli.json("tasks", "show", "sync")["concurrency"] == {"key": "crm", "limit": 3}
    patched = cli.json("tasks", "patch", "sync", "--concurrency", "crm=5", "--clear", "rate_limit")
    assert patched["concurrency"] == {"key": "crm", "limit": 5} and patched["rate_limit"] is None
