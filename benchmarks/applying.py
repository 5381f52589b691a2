"""Part 7, apply: creating many tasks through a public path, `wakecall apply` of a task file.

The file holds N tasks in a mix an operator would write: crons in a time zone with a webhook
and retries, daily times that wake the agent, intervals with a callback URL and metadata. Each
apply is the command a user runs (`python -m wakecall apply FILE --store DB`), timed from spawn
to exit, so the interpreter's start and the file's reading are in it; every check a task passes
when created by `create_task` is made. The same file is then applied again (every task
unchanged: read, compared with the store, nothing written).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from benchmarks.common import check_text

OWNER = "fleet"
ZONES = ("UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo")


def task_file(n: int, seed: int = 5) -> str:
    """The text of a task file of `n` tasks (see the module docstring)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        kind = i % 4
        lines = ["[[tasks]]", f'id = "job-{i:06d}"']
        if kind in (0, 1):
            minute, hour = rng.randrange(60), rng.randrange(24)
            lines += [f'schedule = "{minute} {hour} * * *"', f'timezone = "{ZONES[i % 4]}"']
            lines += ["", "[tasks.action]", 'type = "webhook"']
            lines += [f'url = "https://hooks.example.com/jobs/{i}"']
            lines += ["", "[tasks.execution]", 'timeout = "5m"', "retries = 2"]
        elif kind == 2:
            hour = rng.randrange(8, 18)
            lines += [f'schedule = {{type = "daily", times = ["{hour:02d}:00", "{hour:02d}:30"]}}']
            lines += [f'timezone = "{ZONES[(i // 4) % 4]}"']
        else:
            every = rng.choice(("5m", "15m", "1h", "6h"))
            lines += [f'schedule = {{type = "interval", every = "{every}"}}']
            lines += [f'callback_url = "https://agents.example.com/news/{i}"']
            lines += [f'metadata = {{team = "t{i % 50}", tier = {i % 3}}}']
        out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


def _apply(path: Path, store: Path, config: Path) -> tuple[float, str]:
    command = [sys.executable, "-m", "wakecall", "apply", str(path)]
    command += ["--store", str(store), "--owner", OWNER, "--config", str(config)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"wakecall apply failed ({done.returncode}): {done.stderr[-2000:]}")
    return elapsed, done.stdout.strip().splitlines()[-1]


async def _stored(store_path: Path) -> tuple[int, int]:
    """The owner's tasks in the store, and how many have a next fire."""
    from wakecall.store import SQLiteStore

    store = SQLiteStore(store_path)
    await store.open()
    count = scheduled = 0
    after: str | None = None
    try:
        while True:
            page = await store.list_tasks(OWNER, after=after, limit=500)
            count += len(page)
            scheduled += sum(1 for t in page if t.next_fire_at is not None)
            if len(page) < 500:
                return count, scheduled
            after = page[-1].id
    finally:
        await store.close()


def apply(n: int = 100_000) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path, store, config = folder / "tasks.toml", folder / "apply.db", folder / "wakecall.toml"
        path.write_text(task_file(n))
        config.write_text(f"max_tasks = {n}\n")
        first_s, first_summary = _apply(path, store, config)
        again_s, again_summary = _apply(path, store, config)
        count, scheduled = anyio.run(_stored, store)
        file_mb = path.stat().st_size / 1e6
    ok = (
        count == n
        and scheduled == n
        and first_summary.startswith(f"{n} created, 0 changed, 0 unchanged")
        and again_summary.startswith(f"0 created, 0 changed, {n} unchanged")
    )
    text = (
        f"{count} tasks stored for {n} in the file, {scheduled} with a next fire; "
        f"first apply: {first_summary!r}; again: {again_summary!r}"
    )
    return {
        "apply_s": first_s,
        "apply_per_s": n / first_s,
        "reapply_s": again_s,
        "reapply_per_s": n / again_s,
        "file_mb": file_mb,
        "check": check_text(ok, text),
    }


if __name__ == "__main__":
    print(json.dumps(apply(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)))
