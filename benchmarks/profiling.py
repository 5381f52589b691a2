"""Where a wakecall benchmark spends its time, on both of its threads.

* The event-loop thread (scheduler loop, runs, listeners) is sampled by pyinstrument (every
  1 ms, whole stacks, idle waits included so that the share of idleness is visible).
* The SQLite store's connection thread (aiosqlite) is traced by cProfile, switched on inside
  that thread; every store method is one function there, so its cost in the database is exact.
* `benchmarks.common.TimedStore` times each store call as the engine awaits it.

`Profiler.stop()` returns plain data: the top functions by own time on each thread, the
inclusive time of the engine's and the store's main functions, and CPU seconds per thread.
"""

from __future__ import annotations

import cProfile
import linecache
import pstats
import re
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

_DEF = re.compile(r"^(\s*)(?:async\s+)?def\s+(\w+)")


def _enclosing(path: str, line: int, name: str) -> str:
    """`method.fn` for a closure defined inside a method (the store's transaction bodies)."""
    if name not in ("fn", "body", "write", "<lambda>"):
        return name
    own = linecache.getline(path, line)
    own_indent = len(own) - len(own.lstrip())
    for number in range(line - 1, 0, -1):
        text = linecache.getline(path, number)
        found = _DEF.match(text)
        if found and len(found.group(1)) < own_indent:
            return f"{found.group(2)}.{name}"
    return name


def _short(path: str) -> str:
    p = Path(path)
    parts = p.parts
    for anchor in ("wakecall", "site-packages", "benchmarks"):
        if anchor in parts:
            i = len(parts) - 1 - parts[::-1].index(anchor)
            return "/".join(parts[i:])
    if "python3" in path:
        return "stdlib/" + p.name
    return p.name


class Profiler:
    def __init__(self, kind: str, store: Any) -> None:
        self.kind = kind
        self.store = store
        self.db_profile = cProfile.Profile()
        self.pyi: Any = None
        self.cpu: dict[str, float] = {}

    def start(self) -> None:
        from pyinstrument import Profiler as Pyi

        self.wall0 = time.perf_counter()
        self.main0 = time.thread_time()
        self.db0 = self._on_db_thread(time.thread_time)
        self._on_db_thread(self.db_profile.enable)
        self.pyi = Pyi(interval=0.001, async_mode="disabled")
        self.pyi.start()

    def _on_db_thread(self, fn: Any) -> Any:
        """Call `fn()` on the store's connection thread, synchronously (the loop is idle
        before and after the measured part)."""
        db = self.store._db
        box: list[Any] = []
        done = threading.Event()

        def call() -> Any:
            box.append(fn())
            done.set()

        db._tx.put_nowait((None, call))  # no future: nobody awaits it
        done.wait(10)
        return box[0] if box else None

    def stop(self) -> dict[str, Any]:
        self.pyi.stop()
        self._on_db_thread(self.db_profile.disable)
        wall = time.perf_counter() - self.wall0
        main_cpu = time.thread_time() - self.main0
        db_cpu = self._on_db_thread(time.thread_time) - self.db0
        return {
            "wall_s": round(wall, 3),
            "loop_thread_cpu_s": round(main_cpu, 3),
            "db_thread_cpu_s": round(db_cpu, 3),
            "loop": self._loop_report(),
            "db": self._db_report(),
        }

    # --- the event-loop thread -----------------------------------------------------------
    def _loop_report(self, top: int = 25) -> dict[str, Any]:
        session = self.pyi.last_session
        root = session.root_frame()
        total = session.duration
        own: dict[str, float] = defaultdict(float)
        inclusive: dict[str, float] = defaultdict(float)

        def key(frame: Any) -> str:
            path = frame.file_path or ""
            return f"{_short(path)}:{frame.line_no} {frame.function}"

        def walk(frame: Any, parent: str, seen: frozenset[str]) -> None:
            if frame.is_synthetic:  # pyinstrument's "[self]" / "[await]" leaves
                own[parent] += frame.time
                return
            k = key(frame)
            if not frame.children:
                own[k] += frame.time
            if k not in seen:
                inclusive[k] += frame.time
            for child in frame.children:
                walk(child, k, seen | {k})

        if root is not None:
            walk(root, "<root>", frozenset())
        idle = sum(t for k, t in own.items() if _idle(k))
        return {
            "sampled_s": round(total, 3),
            "idle_s": round(idle, 3),
            "own": [
                {"where": k, "s": round(t, 3), "pct": round(100 * t / total, 1)}
                for k, t in sorted(own.items(), key=lambda kv: -kv[1])
                if not _idle(k)
            ][:top],
            "inclusive": [
                {"where": k, "s": round(t, 3), "pct": round(100 * t / total, 1)}
                for k, t in sorted(inclusive.items(), key=lambda kv: -kv[1])
                if ("wakecall/" in k or "benchmarks/" in k) and not _idle(k)
            ][:top],
        }

    # --- the database thread -------------------------------------------------------------
    def _db_report(self, top: int = 25) -> dict[str, Any]:
        stats = pstats.Stats(self.db_profile)
        raw = stats.stats  # type: ignore[attr-defined]
        rows = []
        waiting = 0.0
        for (path, line, name), (_cc, calls, tottime, cumtime, _callers) in raw.items():
            label = f"{_short(path)}:{line} {_enclosing(path, line, name)}"
            if "SimpleQueue" in label:  # the thread waiting for the next call: idle
                waiting += tottime
                continue
            rows.append((label, calls, tottime, cumtime))
        total = sum(r[2] for r in rows) or 1.0
        return {
            "traced_s": round(total, 3),
            "waiting_s": round(waiting, 3),
            "own": [
                {
                    "where": r[0],
                    "calls": r[1],
                    "s": round(r[2], 3),
                    "pct": round(100 * r[2] / total, 1),
                }
                for r in sorted(rows, key=lambda r: -r[2])[:top]
            ],
            "inclusive": [
                {
                    "where": r[0],
                    "calls": r[1],
                    "s": round(r[3], 3),
                    "pct": round(100 * r[3] / total, 1),
                }
                for r in sorted(rows, key=lambda r: -r[3])
                if "wakecall/" in r[0]
            ][:top],
        }


def _idle(key: str) -> bool:
    """The loop waiting for I/O or for the database thread."""
    return key.endswith(("epoll.poll", " select", " poll"))
