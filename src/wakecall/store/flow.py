"""Flow control by key: which queued runs may start now, for both stores.

A task may carry `concurrency` ({"key", "limit"}: at most `limit` runs running at once across
the owner's tasks with that key) and `rate_limit` ({"key", "limit", "period_s"}: at most
`limit` run starts in any rolling window of `period_s` across those tasks; every attempt's
start counts). A run the limits hold back stays queued; it is never skipped.

Each store reads, in the transaction that starts runs (PostgreSQL: under an advisory lock per
key, taken before reading), how many runs of each key run and the recent starts of each rate
key; `choose` then decides, in due order, exactly as the overlap rule does; the store writes
the starts it allowed to `flow_starts` in the same transaction.

`FlowGates` is what a store remembers between passes: the rate gates found closed (and until
when), so the next claim does not read the runs they hold (a queue of held runs would
otherwise hide the runs behind it), and the earliest instant one opens, at which the engine
looks again. A gate closed until T stays closed until T whatever other nodes do (their starts
only fill the window more), so skipping it until then loses nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

__all__ = [
    "MAX_PERIOD",
    "SEP",
    "Candidate",
    "Choice",
    "FlowGates",
    "candidate",
    "choose",
    "concurrency_keys",
    "key_name",
    "next_start",
    "rate_keys",
    "waiting_reason",
]

#: The longest rate period: starts older than this are forgotten.
MAX_PERIOD = timedelta(hours=24)
#: Joins an owner and a key into one name (a control character no key may hold).
SEP = "\x1f"


def key_name(owner: str, key: str) -> str:
    """The (owner, key) pair as one string, as the stores' SQL builds it."""
    return f"{owner}{SEP}{key}"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A queued run that may start, with what its task says about flow control."""

    run_id: str
    task_id: str
    owner: str
    #: The task does not allow overlap: one run of it at a time.
    exclusive: bool
    concurrency: Mapping[str, Any] | None = None
    rate_limit: Mapping[str, Any] | None = None
    #: The rate limit's text as stored: with the owner, the name of its gate.
    rate_text: str | None = None

    @property
    def gate(self) -> str | None:
        return None if self.rate_text is None else key_name(self.owner, self.rate_text)

    @property
    def flows(self) -> bool:
        return self.concurrency is not None or self.rate_limit is not None


def candidate(
    run_id: str,
    task_id: str,
    owner: str,
    exclusive: bool,
    concurrency: str | None,
    rate_limit: str | None,
) -> Candidate:
    """A candidate from a row's values (the limits as their stored JSON text)."""
    return Candidate(
        run_id,
        task_id,
        owner,
        exclusive,
        None if concurrency is None else json.loads(concurrency),
        None if rate_limit is None else json.loads(rate_limit),
        rate_limit,
    )


@dataclass
class Choice:
    """What `choose` decided."""

    #: The runs to start, in due order.
    chosen: list[Candidate] = field(default_factory=list)
    #: Rate gates found closed: gate name -> the instant the window lets the next start.
    closed: dict[str, datetime] = field(default_factory=dict)
    #: Runs held back, by the key that held them: ("concurrency" | "rate_limit", key) -> count.
    held: dict[tuple[str, str], int] = field(default_factory=dict)

    def starts(self) -> list[tuple[str, str, str]]:
        """The starts to log, as (owner, rate key, run id): the chosen runs with a rate limit."""
        return [
            (c.owner, str(c.rate_limit["key"]), c.run_id)
            for c in self.chosen
            if c.rate_limit is not None
        ]


def rate_keys(candidates: Iterable[Candidate]) -> dict[tuple[str, str], timedelta]:
    """The (owner, rate key) pairs of `candidates`, each with the longest period asked."""
    out: dict[tuple[str, str], timedelta] = {}
    for c in candidates:
        if c.rate_limit is not None:
            pair = (c.owner, str(c.rate_limit["key"]))
            period = timedelta(seconds=float(c.rate_limit["period_s"]))
            out[pair] = max(out.get(pair, period), period)
    return out


def concurrency_keys(candidates: Iterable[Candidate]) -> set[tuple[str, str]]:
    return {(c.owner, str(c.concurrency["key"])) for c in candidates if c.concurrency is not None}


def next_start(
    starts: Sequence[datetime], limit: int, period: timedelta, now: datetime
) -> datetime:
    """When the rolling window lets the next start, given the key's `starts` (ascending): now
    if fewer than `limit` fall in (now - period, now], else when the `limit`-th latest leaves."""
    window = [s for s in starts if s > now - period]
    if len(window) < limit:
        return now
    return window[-limit] + period


def choose(
    candidates: Sequence[Candidate],
    limit: int,
    busy: set[str],
    running: Mapping[tuple[str, str], int],
    starts: Mapping[tuple[str, str], Sequence[datetime]],
    now: datetime,
) -> Choice:
    """Up to `limit` of `candidates` (in due order) to start at `now`: a task that does not
    allow overlap starts one run, none while it is in `busy` (task ids); a run with a
    concurrency key starts while fewer than its limit of the key's runs run (`running`, by
    (owner, key)); a run with a rate limit starts while its window has room (`starts`, by
    (owner, key), ascending). Each run chosen counts toward the runs after it."""
    out = Choice()
    busy = set(busy)
    running = dict(running)
    logged = {pair: list(times) for pair, times in starts.items()}
    for c in candidates:
        if len(out.chosen) >= limit:
            break
        if c.exclusive and c.task_id in busy:
            continue
        if c.concurrency is not None:
            pair = (c.owner, str(c.concurrency["key"]))
            if running.get(pair, 0) >= int(c.concurrency["limit"]):
                _count(out.held, "concurrency", pair[1])
                continue
        if c.rate_limit is not None:
            pair = (c.owner, str(c.rate_limit["key"]))
            period = timedelta(seconds=float(c.rate_limit["period_s"]))
            at = next_start(logged.get(pair, ()), int(c.rate_limit["limit"]), period, now)
            if at > now:
                gate = c.gate
                assert gate is not None
                out.closed[gate] = at
                _count(out.held, "rate_limit", pair[1])
                continue
            logged.setdefault(pair, []).append(now)
        if c.exclusive:
            busy.add(c.task_id)
        if c.concurrency is not None:
            pair = (c.owner, str(c.concurrency["key"]))
            running[pair] = running.get(pair, 0) + 1
        out.chosen.append(c)
    return out


def _count(held: dict[tuple[str, str], int], kind: str, key: str) -> None:
    held[(kind, key)] = held.get((kind, key), 0) + 1


class FlowGates:
    """The rate gates a store found closed, remembered between its passes (see the module)."""

    def __init__(self) -> None:
        self._closed: dict[str, datetime] = {}
        #: Runs held back at the last look, by ("concurrency" | "rate_limit", key).
        self.held: dict[tuple[str, str], int] = {}

    def closed(self, now: datetime) -> list[str]:
        """The gates still closed at `now` (their runs need not be read)."""
        self._closed = {gate: at for gate, at in self._closed.items() if at > now}
        return list(self._closed)

    def note(self, choice: Choice, examined: Iterable[Candidate]) -> None:
        """Remember what a pass found: the gates of the runs it examined are replaced by what
        it decided (open, or closed until an instant)."""
        for c in examined:
            if c.gate is not None:
                self._closed.pop(c.gate, None)
        self._closed.update(choice.closed)
        self.held = dict(choice.held)

    def opens_at(self) -> datetime | None:
        """The earliest instant a closed gate opens (the engine looks again then)."""
        return min(self._closed.values(), default=None)


def waiting_reason(
    concurrency: Mapping[str, Any] | None,
    rate_limit: Mapping[str, Any] | None,
    running: int,
    next_at: datetime | None,
    now: datetime,
) -> str | None:
    """Why a task's due queued runs wait, in words (None: nothing of flow control holds them):
    "waiting for concurrency key crm (3/3 running)"."""
    if concurrency is not None and running >= int(concurrency["limit"]):
        key, limit = concurrency["key"], concurrency["limit"]
        return f"waiting for concurrency key {key} ({running}/{limit} running)"
    if rate_limit is not None and next_at is not None and next_at > now:
        stamp = next_at.isoformat().replace("+00:00", "Z")
        return (
            f"waiting for rate limit key {rate_limit['key']} ({rate_limit['limit']} starts per "
            f"{_period_words(float(rate_limit['period_s']))}); next start at {stamp}"
        )
    return None


def _period_words(seconds: float) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
