"""Refusing a loopback URL, `wakecall tasks add` told the user to pass `--allow-outbound`, which
only `wakecall serve` takes. The refusal now names the server setting, as a `serve` flag and as
an environment variable, and following that advice makes the same command work."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

WAKECALL = str(Path(sys.executable).with_name("wakecall"))


def _wakecall(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("WAKECALL_")}
    return subprocess.run(
        [WAKECALL, *args],
        capture_output=True,
        text=True,
        env={**inherited, "HOME": str(tmp_path), **env},
        cwd=tmp_path,
        timeout=60,
        check=False,
    )


def test_the_advice_in_a_refusal_works_for_the_command_that_was_refused(tmp_path: Path) -> None:
    add = ("tasks", "add", "ping", "@hourly", "--webhook", "http://127.0.0.1:9/x")
    store = ("--store", str(tmp_path / "w.db"))
    refused = _wakecall(tmp_path, *add, *store)
    assert refused.returncode == 2, refused.stderr
    assert "`wakecall serve --allow-outbound loopback`" in refused.stderr
    advice = re.search(r"(WAKECALL_ALLOW_OUTBOUND)=(\w+)", refused.stderr)
    assert advice is not None, refused.stderr

    flag = _wakecall(tmp_path, *add, *store, "--allow-outbound", "loopback")
    assert flag.returncode == 2 and "--allow-outbound" in flag.stderr  # not a flag of `tasks add`
    assert "--allow-outbound" in _wakecall(tmp_path, "serve", "--help").stdout

    allowed = _wakecall(tmp_path, *add, *store, **{advice[1]: advice[2]})
    assert allowed.returncode == 0, allowed.stderr
