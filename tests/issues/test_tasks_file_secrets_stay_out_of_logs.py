"""`wakecall serve --tasks-file` keeps the callback secrets it issues out of its log.

Found: the server printed each new task's callback secret on stderr, which process supervisors
keep in their logs. Now the secrets go to a file only the operator can read (mode 0600, beside
the task file or where `--secrets-file` says), and stderr names the file."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import tomllib
from pathlib import Path
from typing import Any

TASKS_FILE = """
[[tasks]]
id = "nightly"
schedule = "0 2 * * *"
callback_url = "https://app.example.com/hooks/wakecall"
"""

SERVING = re.compile(r"serving MCP on http://\S+/mcp")


def _serve_once(cli: Any, *flags: str) -> str:
    """Start `wakecall serve --http` with `flags`, wait until it serves, stop it; its stderr."""
    argv = [cli.executable, "serve", "--http", "--port", "0", "--store", cli.store, *flags]
    with subprocess.Popen(
        argv,
        env=cli.env(),
        cwd=cli.tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as server:
        assert server.stderr is not None and server.stdout is not None
        seen = []
        for line in server.stderr:
            seen.append(line)
            if SERVING.search(line):
                break
        server.send_signal(signal.SIGTERM)
        rest, _ = server.communicate(timeout=30)  # stdout: nothing but the protocol
        assert rest == ""
        seen.append(server.stderr.read() if not server.stderr.closed else "")
    return "".join(seen)


def test_new_callback_secrets_go_to_a_private_file_and_only_its_name_to_the_log(
    cli: Any,
) -> None:
    tasks = cli.write("tasks.toml", TASKS_FILE)
    log = _serve_once(cli, "--tasks-file", str(tasks))
    secrets_file = tasks.with_name("tasks.secrets.toml")
    secret = tomllib.loads(secrets_file.read_text())["callback_secrets"]["nightly"]
    assert secret.startswith("whsec_")
    assert stat.S_IMODE(os.stat(secrets_file).st_mode) == 0o600
    assert "whsec_" not in log
    assert f"its callback secret is in {secrets_file}" in log
    again = _serve_once(cli, "--tasks-file", str(tasks))  # unchanged: no new secret
    assert "whsec_" not in again and "callback secret is in" not in again
    assert tomllib.loads(secrets_file.read_text())["callback_secrets"] == {"nightly": secret}


def test_the_secrets_file_can_be_named(cli: Any, tmp_path: Path) -> None:
    tasks = cli.write("tasks.toml", TASKS_FILE)
    chosen = tmp_path / "private" / "wakecall-secrets.toml"
    chosen.parent.mkdir()
    log = _serve_once(cli, "--tasks-file", str(tasks), "--secrets-file", str(chosen))
    assert "whsec_" not in log and str(chosen) in log
    assert stat.S_IMODE(os.stat(chosen).st_mode) == 0o600
    assert not tasks.with_name("tasks.secrets.toml").exists()
