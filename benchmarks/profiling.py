"""Where a wakecall benchmark spends its time.

* The event-loop thread (scheduler loop, runs, listeners and, for the SQLite store, the
  database work itself, which runs on that thread) is sampled by pyinstrument (every 1 ms,
  whole stacks, idle waits included so that the share of idleness is visible).
* `benchmarks.common.TimedStore` times each store call as the engine awaits it.

`Profiler.stop()` returns plain data: the top functions by own time, the inclusive time of the
engine's and the store's main functions, and the loop thread's CPU seconds.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path
from typing import Any


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
        self.pyi: Any = None

    def start(self) -> None:
        from pyinstrument import Profiler as Pyi

        self.wall0 = time.perf_counter()
        self.main0 = time.thread_time()
        self.pyi = Pyi(interval=0.001, async_mode="disabled")
        self.pyi.start()

    def stop(self) -> dict[str, Any]:
        self.pyi.stop()
        wall = time.perf_counter() - self.wall0
        main_cpu = time.thread_time() - self.main0
        return {
            "wall_s": round(wall, 3),
            "loop_thread_cpu_s": round(main_cpu, 3),
            "loop": self._loop_report(),
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


def _idle(key: str) -> bool:
    """The loop waiting for I/O or for time."""
    return key.endswith(("epoll.poll", " select", " poll"))
