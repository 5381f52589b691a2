"""Runs one benchmark case in a fresh process and prints its result as one JSON line.

    python -m benchmarks.worker burst:wakecall_sqlite '{"n": 10000}'

The orchestrator (`benchmarks.run`) starts one worker per case and repeat, so each measurement
gets a clean interpreter (no warm caches, its own peak RSS) and can be killed on a timeout.
"""

from __future__ import annotations

import importlib
import json
import sys
import time
import traceback

MARK = "@@RESULT@@ "


def main(argv: list[str]) -> int:
    target, raw = argv[0], argv[1] if len(argv) > 1 else "{}"
    module_name, _, func_name = target.partition(":")
    kwargs = json.loads(raw)
    module = importlib.import_module(f"benchmarks.{module_name}")
    func = getattr(module, func_name)
    started = time.perf_counter()
    try:
        result = func(**kwargs)
    except BaseException as exc:  # report, do not hang
        traceback.print_exc()
        result = {"error": f"{type(exc).__name__}: {exc}"}
    result.setdefault("wall_s", round(time.perf_counter() - started, 3))
    sys.stdout.write(MARK + json.dumps(result, default=str) + "\n")
    sys.stdout.flush()
    return 0 if "error" not in result else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
