"""`wakecall apply` is all or nothing, and its dry run says what the apply will do.

Found: with `max_tasks = 2`, applying a file with tasks a and b, then a file that disables a
and b and adds c, the dry run said fine and the real apply paused a and b, then failed on the
task limit, leaving them paused (the task-file code counted active tasks, the service counted
active and paused ones)."""

from __future__ import annotations

from typing import Any

FIRST = """
[[tasks]]
id = "a"
schedule = "@every 1h"

[[tasks]]
id = "b"
schedule = "@every 1h"
"""

SECOND = """
[[tasks]]
id = "a"
schedule = "@every 1h"
enabled = false

[[tasks]]
id = "b"
schedule = "@every 1h"
enabled = false

[[tasks]]
id = "c"
schedule = "@every 1h"
"""

LIMIT = {"WAKECALL_MAX_TASKS": "2"}


def _statuses(cli: Any) -> dict[str, str]:
    return {t["id"]: t["status"] for t in cli.json("tasks", "list", env=LIMIT)["tasks"]}


def test_an_apply_over_the_task_limit_changes_nothing_and_its_dry_run_says_so(
    any_cli: Any,
) -> None:
    cli = any_cli
    cli.ok("apply", str(cli.write("first.toml", FIRST)), env=LIMIT)
    second = str(cli.write("second.toml", SECOND))
    dry = cli.fails(2, "apply", second, "--dry-run", env=LIMIT)
    real = cli.fails(2, "apply", second, env=LIMIT)
    assert "the most one owner may hold" in dry
    assert dry == real
    assert _statuses(cli) == {"a": "active", "b": "active"}


def test_an_apply_within_the_limit_makes_every_change_its_dry_run_listed(any_cli: Any) -> None:
    cli = any_cli
    cli.ok("apply", str(cli.write("first.toml", FIRST)), env=LIMIT)
    pruned = cli.write("pruned.toml", "\n".join(SECOND.split("\n\n")[1:]))
    planned = cli.json("apply", str(pruned), "--prune", "--dry-run", env=LIMIT)
    applied = cli.json("apply", str(pruned), "--prune", env=LIMIT)
    assert [(c["op"], c["id"]) for c in planned["changes"]] == [
        (c["op"], c["id"]) for c in applied["changes"]
    ]
    assert _statuses(cli) == {"b": "paused", "c": "active"}
