"""Render `results.json` as the Markdown results table (RESULTS.md)."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from benchmarks.common import QUIET_BUSY, QUIET_WAIT_S, median_min_max
from benchmarks.suite import (
    PARTS,
    PG_1,
    PG_3,
    PGQUEUER_1,
    PGQUEUER_3,
    SQLITE_INSTANT,
    SQLITE_WORKERS,
    Case,
    Metric,
    Part,
    Table,
)

PEERS = ("APScheduler", "SQLAlchemy")


def _fmt(metric: Metric, value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return metric.fmt.format(value)


def _values(entry: dict[str, Any], key: str) -> list[float]:
    out = []
    for run in entry["runs"]:
        value = run.get(key)
        if isinstance(value, int | float) and "error" not in run:
            out.append(float(value))
    return out


def _cell(metric: Metric, entry: dict[str, Any]) -> str:
    values = _values(entry, metric.key)
    if not values:
        return "–"
    med, low, high = median_min_max(values)
    if len(values) == 1:
        return f"**{_fmt(metric, med)}**"
    return f"**{_fmt(metric, med)}** ({_fmt(metric, low)}–{_fmt(metric, high)})"


def _check(entry: dict[str, Any]) -> str:
    runs = entry["runs"]
    if not runs:
        return "–"
    good = [r for r in runs if "error" not in r and r.get("check", {}).get("ok")]
    bad = [r for r in runs if r not in good]
    if not bad:
        return f"✓ {len(good)}/{len(runs)}: {good[len(good) // 2]['check']['text']}"
    first = bad[0]
    why = first.get("error") or first.get("check", {}).get("text", "")
    return f"✗ {len(good)}/{len(runs)} passed; {why}"


def _target(case: Case, table: Table, entry: dict[str, Any]) -> str:
    shown = {m.key for m in table.metrics}
    parts = []
    for target in case.targets:
        if target.key not in shown:
            continue
        values = _values(entry, target.key)
        if not values:
            parts.append(f"{target.text}: –")
            continue
        med = statistics.median(values)
        ok = target.met(med)
        if target.key == "runs_per_s" and "no duplicate" in target.text:
            ok = ok and all(r.get("check", {}).get("ok") for r in entry["runs"])
        parts.append(f"{target.text}: {'**met**' if ok else '**not met**'}")
    return "; ".join(parts) or "–"


def _table(
    part: Part, table: Table, cases: dict[str, Any], checked: set[str] | None = None
) -> list[str]:
    """One Markdown table; the correctness column is shown for the cases not in `checked`
    (a case shown in several tables gets it once)."""
    checked = set() if checked is None else checked
    labels = table.labels or tuple(c.label for c in part.cases)
    show_check = any(label not in checked for label in labels)
    by_label = {c.label: c for c in part.cases}
    has_targets = any(
        t.key in {m.key for m in table.metrics} for lbl in labels for t in by_label[lbl].targets
    )
    head = ["", *[m.title for m in table.metrics]]
    if show_check:
        head.append("each run exactly once?")
    if has_targets:
        head.append("target")
    lines = [f"### {table.title}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label in labels:
        entry = cases.get(label)
        if entry is None:
            continue
        if "skipped" in entry:
            row = [label, *(["skipped"] * len(table.metrics))]
            if show_check:
                row.append(entry["skipped"])
            if has_targets:
                row.append("–")
        else:
            row = [label, *[_cell(m, entry) for m in table.metrics]]
            if show_check:
                row.append(_check(entry))
            if has_targets:
                row.append(_target(by_label[label], table, entry))
        checked.add(label)
        lines.append("| " + " | ".join(row) + " |")
    lines.append("")
    if table.notes:
        lines += [table.notes, ""]
    return lines


def _paired_ratio(a: dict[str, Any], b: dict[str, Any], key: str) -> float | None:
    """Median over repeats of a[i] / b[i]: both measured in the same round."""
    ratios = [
        ra[key] / rb[key]
        for ra, rb in zip(a["runs"], b["runs"], strict=False)
        if isinstance(ra.get(key), int | float) and isinstance(rb.get(key), int | float) and rb[key]
    ]
    return statistics.median(ratios) if ratios else None


def _burst_ratios(cases: dict[str, Any]) -> list[str]:
    mem = cases.get("APScheduler 3.11, MemoryJobStore (not durable)")
    sql = cases.get("APScheduler 3.11, SQLAlchemyJobStore on a SQLite file")
    lines = []
    for label, aim in ((SQLITE_INSTANT, 0.4), (SQLITE_WORKERS, 0.2)):
        ours = cases.get(label)
        if not ours or not mem or not sql:
            continue
        r_mem = _paired_ratio(ours, mem, "runs_per_s")
        r_sql = _paired_ratio(ours, sql, "runs_per_s")
        if r_mem is None or r_sql is None:
            continue
        lines.append(
            f"- {label}: **{r_sql:.2f}×** APScheduler's SQLite job store and **{r_mem:.3f}×** "
            f"its in-memory store (target of issue 17: ≥ {aim}× of in-memory: "
            f"{'**met**' if r_mem >= aim else '**not met**'})."
        )
    for peer in (PGQUEUER_1, PGQUEUER_3):
        theirs = cases.get(peer)
        if not theirs:
            continue
        parts = [
            f"{label.removeprefix('wakecall, PostgreSQL, ').removesuffix(', noop action')} "
            f"**{ratio:.2f}×**"
            for label in (PG_1, PG_3)
            if (ours := cases.get(label)) and (ratio := _paired_ratio(ours, theirs, "runs_per_s"))
        ]
        if parts:
            lines.append(f"- wakecall on PostgreSQL against {peer}: {', '.join(parts)}.")
    if lines:
        lines = [
            "Ratios, median of the per-round ratios (each round runs every subject):",
            "",
            *lines,
            "",
        ]
    return lines


def _lateness_ratio(cases: dict[str, Any]) -> list[str]:
    ours = cases.get("wakecall, SQLite file, engine defaults")
    mem = cases.get("APScheduler 3.11, MemoryJobStore")
    if not ours or not mem:
        return []
    ratio = _paired_ratio(ours, mem, "p99_ms")
    if ratio is None:
        return []
    lines = [
        f"wakecall's p99 on SQLite is **{ratio:.1f}×** APScheduler's in memory (median of "
        f"the per-round ratios; target of issue 17: ≤ 2×, "
        f"{'**met**' if ratio <= 2 else '**not met**'}).",
    ]
    sql = cases.get("APScheduler 3.11, SQLAlchemyJobStore on a SQLite file")
    if sql:
        pairs = [
            (a.get("p99_ms"), b.get("p99_ms"))
            for a, b in zip(ours["runs"], sql["runs"], strict=False)
        ]
        below = sum(
            1
            for a, b in pairs
            if isinstance(a, int | float) and isinstance(b, int | float) and a < b
        )
        met = "**met**" if pairs and below == len(pairs) else "**not met**"
        lines.append(
            f"Below APScheduler's SQLite job store's p99 in {below} of {len(pairs)} rounds "
            f"(target: every round, {met})."
        )
    pg = cases.get("wakecall, PostgreSQL, 1 node, engine defaults")
    peer = cases.get("PgQueuer 1.6, PostgreSQL, 1 worker process")
    if pg and peer and (r := _paired_ratio(pg, peer, "p99_ms")) is not None:
        lines.append(f"On PostgreSQL, wakecall's p99 is **{r:.2f}×** PgQueuer's.")
    return [*lines, ""]


def _machine(info: dict[str, Any]) -> list[str]:
    versions = info["versions"]
    ours = ", ".join(f"{k} {v}" for k, v in versions.items() if not k.startswith(PEERS))
    peers = ", ".join(f"{k} {v}" for k, v in versions.items() if k.startswith(PEERS))
    source = info.get("source") or {}
    code = (
        f"- Code measured: commit `{source.get('commit')}` ({source.get('commit_subject', '')})"
        + (
            f" plus uncommitted changes in `src/` (snapshot digest `{source.get('digest')}`)"
            if source.get("modified")
            else ""
        )
        + "; every case of the run imported the same copy of `src/wakecall`"
        if source
        else "- Code measured: not recorded"
    )
    return [
        code,
        f"- CPU: {info['cpu']}, {info['cores']} cores; RAM {info['ram_gib']} GiB",
        f"- OS: {info['os']}; Python {info['python']}; SQLite {info['sqlite']}",
        f"- Peers: {peers}",
        f"- Libraries: {ours}",
        f"- Load average when the suite started: {', '.join(map(str, info['load_at_start']))}",
    ]


def _quiet(data: dict[str, Any]) -> list[str]:
    """How quiet the machine was before each case (`run.wait_quiet`)."""
    waits = [
        run["quiet_before"]
        for part in data.get("parts", {}).values()
        for entry in part.get("cases", {}).values()
        for run in entry.get("runs", [])
        if "quiet_before" in run
    ]
    if not waits:
        return []
    waited = sorted(w["waited_s"] for w in waits)
    busiest = max(w["busy_pct"] for w in waits)
    return [
        f"- Before each case the suite waited for the cores to be at most {QUIET_BUSY * 100:.0f} % "
        f"busy (at most {QUIET_WAIT_S:.0f} s): {len(waits)} cases, wait median "
        f"{waited[len(waited) // 2]:.1f} s, max {waited[-1]:.1f} s; busiest start {busiest:.0f} % "
        "of the cores"
    ]


def _summary(data: dict[str, Any]) -> list[str]:
    rows = []
    for name, part in PARTS.items():
        stored = data["parts"].get(name)
        if stored is None or not part.repeated:
            continue
        for case in part.cases:
            entry = stored["cases"].get(case.label)
            if entry is None or "skipped" in entry:
                continue
            for target in case.targets:
                values = _values(entry, target.key)
                if not values:
                    continue
                med = statistics.median(values)
                ok = target.met(med)
                if "no duplicate" in target.text:
                    ok = ok and all(r.get("check", {}).get("ok") for r in entry["runs"])
                metric = next(
                    (m for t in part.tables for m in t.metrics if m.key == target.key), None
                )
                shown = _fmt(metric, med) if metric else f"{med:.3g}"
                unit = metric.title if metric else target.key
                rows.append(
                    f"| {part.name} | {case.label} | {target.text} | "
                    f"{shown} ({unit}) | {'met' if ok else '**not met**'} |"
                )
    if not rows:
        return []
    return [
        "## Targets at a glance",
        "",
        "| part | subject | target | median | |",
        "|---|---|---|---|---|",
        *rows,
        "",
    ]


def _profile_section(stored: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    for label, entry in stored["cases"].items():
        run = next((r for r in entry["runs"] if "profile" in r or "store_calls" in r), None)
        if run is None:
            continue
        lines += [f"#### {label}", ""]
        prof = run.get("profile")
        if prof is None:
            lines += _store_calls(run)
            continue
        wall = prof["wall_s"]
        lines.append(
            f"Wall time profiled: {wall:.2f} s. CPU on the event-loop thread "
            f"{prof['loop_thread_cpu_s']:.2f} s ({100 * prof['loop_thread_cpu_s'] / wall:.0f} %; "
            "the SQLite store's work runs on that thread). The loop thread sat idle in "
            f"`epoll` (waiting for I/O or for time) "
            f"{prof['loop']['idle_s']:.2f} s of {prof['loop']['sampled_s']:.2f} s sampled."
        )
        lines.append("")
        lines += _store_calls(run)
        lines += [
            "Event-loop thread, most inclusive time in wakecall code (pyinstrument):",
            "",
            "| function | s | % of wall |",
            "|---|---|---|",
        ]
        lines += [
            f"| `{x['where']}` | {x['s']:.2f} | {x['pct']:.1f} |"
            for x in prof["loop"]["inclusive"][:12]
        ]
        lines += [
            "",
            "Event-loop thread, most own time (pyinstrument, idle excluded):",
            "",
            "| function | s | % of wall |",
            "|---|---|---|",
        ]
        lines += [
            f"| `{x['where']}` | {x['s']:.2f} | {x['pct']:.1f} |" for x in prof["loop"]["own"][:12]
        ]
        db = prof.get("db")  # the store's own thread, in runs before the store ran on the loop
        if db is not None:
            lines += [
                "",
                f"SQLite connection thread (cProfile, {db['traced_s']:.2f} s of work traced, "
                f"{db.get('waiting_s', 0):.2f} s waiting for calls), most inclusive time in "
                "wakecall code:",
                "",
                "| function | calls | s | % of traced |",
                "|---|---|---|---|",
            ]
            lines += [
                f"| `{x['where']}` | {x['calls']:,} | {x['s']:.2f} | {x['pct']:.1f} |"
                for x in db["inclusive"][:14]
            ]
            lines += [
                "",
                "SQLite connection thread, most own time:",
                "",
                "| function | calls | s | % of traced |",
                "|---|---|---|---|",
            ]
            lines += [
                f"| `{x['where']}` | {x['calls']:,} | {x['s']:.2f} | {x['pct']:.1f} |"
                for x in db["own"][:12]
            ]
        lines.append("")
    return lines


def _store_calls(run: dict[str, Any]) -> list[str]:
    calls = run.get("store_calls") or []
    if not calls:
        return []
    done = run.get("runs") or (
        int(run["runs_per_s"] * run["elapsed_s"]) if "runs_per_s" in run else None
    )
    lines = [
        "Store calls as their callers awaited them (wall time; for SQLite that is the work "
        'itself, done on the loop\'s thread); "per run" is per run (or delivery) measured:',
        "",
        "| method | calls | per run | total (s) | mean (ms) |",
        "|---|---|---|---|---|",
    ]
    for c in calls:
        per_run = f"{c['calls'] / done:.2f}" if done else "–"
        mean = 1000 * c["seconds"] / c["calls"] if c["calls"] else 0
        lines.append(
            f"| `{c['method']}` | {c['calls']:,} | {per_run} | {c['seconds']:.2f} | {mean:.2f} |"
        )
    return [*lines, ""]


def render(data: dict[str, Any], analysis: Path) -> str:
    parts = data["parts"]
    dates = sorted({p["date"][:10] for p in parts.values()})
    repeats = sorted({p["repeat"] for n, p in parts.items() if PARTS[n].repeated})
    quick = any(p.get("quick") for p in parts.values())
    lines = [
        "# wakecall benchmark results",
        "",
        f"Measured {', '.join(dates)} with `python -m benchmarks"
        f"{' --quick' if quick else ''}` (see `benchmarks/README.md`). Every figure is the "
        f"median of {' or '.join(map(str, repeats))} runs, min–max in brackets; every subject of "
        "a part ran in each round, taking turns, so ratios between them hold on a noisy machine. "
        "Each run also checks that every run it caused happened exactly once, shown beside it.",
        "",
    ]
    if quick:
        lines += [
            "**Quick sizes (a smoke check): these figures are not the issue's workloads.**",
            "",
        ]
    if "machine" in data:
        lines += ["## Machine", "", *_machine(data["machine"]), *_quiet(data), ""]
    durations = [f"{n} {p['minutes']} min" for n, p in parts.items() if "minutes" in p]
    if durations:
        lines += [f"Time taken per part: {', '.join(durations)}.", ""]
    lines += _summary(data)
    for name, part in PARTS.items():
        stored = parts.get(name)
        if stored is None or name == "profile":
            continue
        source = (stored.get("machine") or {}).get("source") or {}
        code = f", code `{source.get('commit')}`" if source else ""
        if source.get("modified"):
            code += f" + changes (`{source.get('digest')}`)"
        lines += [
            f"## {part.title}",
            "",
            f"_{stored['date']}, {stored['repeat']} runs per subject{code}._",
            "",
        ]
        checked: set[str] = set()
        for table in part.tables:
            lines += _table(part, table, stored["cases"], checked)
        if name == "burst":
            lines += _burst_ratios(stored["cases"])
        if name == "lateness":
            lines += _lateness_ratio(stored["cases"])
    lines += ["## Where the time goes", ""]
    if analysis.exists():
        lines += [analysis.read_text().strip(), ""]
    stored = parts.get("profile")
    if stored is not None:
        lines += [f"### Profiles ({stored['date']})", ""]
        for table in PARTS["profile"].tables:
            lines += _table(PARTS["profile"], table, stored["cases"])
        lines += _profile_section(stored)
    return "\n".join(lines).rstrip() + "\n"
