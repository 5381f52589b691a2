"""Run the benchmark suite and write the results table.

    python -m benchmarks                      # everything, 5 runs of each case, RESULTS.md
    python -m benchmarks --only burst,scale   # some parts (the others' results are kept)
    python -m benchmarks --quick              # small sizes, 2 runs: a smoke check
    python -m benchmarks --repeat 3

Each case runs in its own process (`benchmarks.worker`) with a timeout; within a part the
cases take turns (wakecall, then its peers, then wakecall again ...) so that a noisy machine
weighs on all of them alike. Raw results go to `results.json` beside the table, and the table
is rendered from it: a part run alone replaces only its own section.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.common import QUIET_BUSY, QUIET_WAIT_S, ROOT, machine
from benchmarks.report import render
from benchmarks.suite import PARTS, Case, Part, postgres_available
from benchmarks.worker import MARK

HERE = Path(__file__).resolve().parent


SNAPSHOT = HERE / ".snapshot"


def snapshot_source() -> dict[str, Any]:
    """Copy `src/wakecall` aside, so that every case of this run measures the same code even
    while the working tree changes; the workers import it first (PYTHONPATH)."""
    source = ROOT / "src" / "wakecall"
    if SNAPSHOT.exists():
        shutil.rmtree(SNAPSHOT)
    shutil.copytree(source, SNAPSHOT / "wakecall", ignore=shutil.ignore_patterns("__pycache__"))
    digest = hashlib.sha256()
    for path in sorted((SNAPSHOT / "wakecall").rglob("*.py")):
        digest.update(str(path.relative_to(SNAPSHOT)).encode())
        digest.update(path.read_bytes())

    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        except OSError:
            return ""
        return done.stdout.strip()

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "commit_subject": git("log", "-1", "--format=%s"),
        "modified": bool(git("status", "--porcelain", "--", "src")),
        "digest": digest.hexdigest()[:12],
    }


def _worker_env(snapshot: bool) -> dict[str, str]:
    env = dict(os.environ)
    if snapshot:
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(SNAPSHOT), env.get("PYTHONPATH", "")) if p
        )
    return env


def _cpu_times() -> tuple[int, int]:
    """(busy, total) jiffies of all cores since boot, from /proc/stat (Linux)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def wait_quiet(limit_s: float = QUIET_WAIT_S) -> dict[str, float]:
    """Wait until the cores are (nearly) idle, or `limit_s`; how long it took and how busy the
    machine was in the last window, recorded with the case's result."""
    if not Path("/proc/stat").exists():
        return {}
    started = time.perf_counter()
    busy_share = 1.0
    while True:
        busy0, total0 = _cpu_times()
        time.sleep(0.5)
        busy1, total1 = _cpu_times()
        busy_share = (busy1 - busy0) / max(total1 - total0, 1)
        waited = time.perf_counter() - started
        if busy_share <= QUIET_BUSY or waited >= limit_s:
            return {"waited_s": round(waited, 1), "busy_pct": round(100 * busy_share, 1)}


def _run_case(case: Case, quick: bool, log: Path, snapshot: bool = True) -> dict[str, Any]:
    quiet = wait_quiet()
    result = _run_case_now(case, quick, log, snapshot)
    if quiet:
        result["quiet_before"] = quiet
    return result


def _run_case_now(case: Case, quick: bool, log: Path, snapshot: bool) -> dict[str, Any]:
    args = case.quick if quick else case.args
    timeout = case.quick_timeout_s if quick else case.timeout_s
    cmd = [sys.executable, "-m", "benchmarks.worker", case.target_fn, json.dumps(args)]
    with log.open("a") as err:
        err.write(f"\n=== {datetime.now(UTC).isoformat()} {case.label}: {' '.join(cmd)}\n")
        err.flush()
        proc = subprocess.Popen(
            cmd,
            cwd=str(ROOT),
            env=_worker_env(snapshot),
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            start_new_session=True,  # its own process group: a timeout ends its children too
        )
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return {"error": f"timed out after {timeout:.0f} s"}
    for line in reversed(out.splitlines()):
        if line.startswith(MARK):
            return json.loads(line[len(MARK) :])
    return {"error": f"the worker printed no result (exit {proc.returncode}); see {log}"}


def _describe(result: dict[str, Any], part: Part) -> str:
    if "error" in result:
        return "ERROR " + result["error"]
    shown = []
    for table in part.tables:
        for metric in table.metrics[:2]:
            if metric.key in result and isinstance(result[metric.key], int | float):
                shown.append(f"{metric.key}={metric.fmt.format(result[metric.key])}")
    check = result.get("check", {})
    mark = "ok" if check.get("ok") else "CHECK FAILED"
    return f"{', '.join(dict.fromkeys(shown))} [{mark}: {check.get('text', '')}]"


def run_part(
    part: Part, repeat: int, quick: bool, log: Path, snapshot: bool = True
) -> dict[str, Any]:
    runs = repeat if part.repeated else 1
    cases: dict[str, dict[str, Any]] = {}
    for case in part.cases:
        entry: dict[str, Any] = {"runs": [], "args": case.quick if quick else case.args}
        if case.needs_postgres and not postgres_available():
            entry["skipped"] = "WAKECALL_TEST_POSTGRES_URL is not set"
        cases[case.label] = entry
    started = time.perf_counter()
    for r in range(runs):
        for case in part.cases:
            entry = cases[case.label]
            if "skipped" in entry:
                continue
            t0 = time.perf_counter()
            result = _run_case(case, quick, log, snapshot)
            entry["runs"].append(result)
            print(
                f"[{part.name} {r + 1}/{runs}] {case.label}: {_describe(result, part)} "
                f"({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "repeat": runs,
        "quick": quick,
        "minutes": round((time.perf_counter() - started) / 60, 1),
        "cases": cases,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help=f"parts to run, comma-separated: {', '.join(PARTS)}",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke check")
    parser.add_argument(
        "--repeat", type=int, default=None, help="runs per case (default 5; 2 with --quick)"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results table (default benchmarks/RESULTS.md; with --quick "
        "benchmarks/.quick/RESULTS.md)",
    )
    parser.add_argument("--list", action="store_true", help="list the parts and their cases")
    parser.add_argument(
        "--live",
        action="store_true",
        help="measure the working tree as it is at each case (default: a copy of src/ taken "
        "when the run starts, so that edits during the run do not mix versions)",
    )
    parser.add_argument(
        "--render",
        action="store_true",
        help="only rewrite the results table from results.json (e.g. after editing analysis.md)",
    )
    args = parser.parse_args(argv)
    if args.list:
        for part in PARTS.values():
            print(f"{part.name}: {part.title}")
            for case in part.cases:
                print(f"    {case.label}")
        return 0
    names = [n.strip() for group in args.only for n in group.split(",") if n.strip()]
    unknown = [n for n in names if n not in PARTS]
    if unknown:
        parser.error(f"unknown parts {unknown}; known: {', '.join(PARTS)}")
    names = names or list(PARTS)
    repeat = args.repeat or (2 if args.quick else 5)
    out: Path = args.out or (HERE / ".quick" / "RESULTS.md" if args.quick else HERE / "RESULTS.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    raw_path = out.with_name("results.json")
    log = out.with_name("benchmarks.log")
    data: dict[str, Any] = json.loads(raw_path.read_text()) if raw_path.exists() else {}
    data.setdefault("parts", {})
    if args.render:
        out.write_text(render(data, HERE / "analysis.md"))
        print(f"wrote {out}")
        return 0
    info = machine()
    info["source"] = (
        {"commit": "working tree, live", "modified": True, "digest": ""}
        if args.live
        else snapshot_source()
    )
    data["machine"] = info
    print(
        f"{info['cpu']}, {info['cores']} cores, {info['ram_gib']} GiB, Python {info['python']}; "
        f"repeat {repeat}{', quick sizes' if args.quick else ''}; worker logs in {log}",
        flush=True,
    )
    if not postgres_available():
        print("WAKECALL_TEST_POSTGRES_URL is not set: the PostgreSQL cases are skipped", flush=True)
    for name in names:
        data["parts"][name] = run_part(PARTS[name], repeat, args.quick, log, not args.live)
        data["parts"][name]["machine"] = info
        raw_path.write_text(json.dumps(data, indent=1, default=str))
        out.write_text(render(data, HERE / "analysis.md"))
    print(f"wrote {out} and {raw_path}", flush=True)
    failed = [
        (name, label)
        for name in names
        for label, entry in data["parts"][name]["cases"].items()
        for r in entry["runs"]
        if "error" in r or not r.get("check", {}).get("ok")
    ]
    if failed:
        print(f"{len(failed)} runs failed or failed their check: {sorted(set(failed))}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
