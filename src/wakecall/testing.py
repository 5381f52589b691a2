"""Helpers for tests of wakecall and of code that uses it: a clock you drive, and ways to run
the engine until it has nothing left to do at the current instant.

    clock = FakeClock()
    async with Engine(store, clock=clock) as engine:
        await service_for(engine).create("me", TaskSpec(name="t", schedule="@every 1m"))
        await advance(engine, clock, timedelta(minutes=1))   # the first fire has run
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import anyio.lowlevel

from wakecall.actions import ActionContext, ActionFailed
from wakecall.actions.policy import ActionPolicy
from wakecall.engine.scheduler import Engine
from wakecall.engine.service import TaskService
from wakecall.net import OutboundPolicy

__all__ = [
    "LOOPBACK_POLICY",
    "FakeClock",
    "ScriptedExecutor",
    "advance",
    "advance_to",
    "run_until_idle",
    "service_for",
    "step_to",
]

DEFAULT_START = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


class FakeClock:
    """A clock that moves only when told. Sleepers wake when time passes their deadline.

    It keeps wall-clock time (`now`) and elapsed time (`monotonic`). Time passing moves both
    together (`advance`, `set`); `suspend` moves the wall clock alone, as a machine that slept
    (or an NTP step forward) sees it: what is due by the wall clock comes due, while elapsed
    time, and everything measured by it (attempt timeouts, heartbeats), stands still.
    """

    def __init__(self, start: datetime = DEFAULT_START) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware start time")
        self._now = start.astimezone(UTC)
        # Elapsed time is kept in microseconds, as the wall clock is, so that moving both by
        # one step keeps them exactly in step.
        self._elapsed = timedelta(0)
        self._sleepers: list[tuple[datetime, anyio.Event]] = []
        self._elapsed_sleepers: list[tuple[timedelta, anyio.Event]] = []

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        return self._elapsed.total_seconds()

    async def sleep_until(self, deadline: datetime) -> None:
        if deadline <= self._now:
            await anyio.lowlevel.checkpoint()
            return
        await self._wait(self._sleepers, (deadline, anyio.Event()))

    async def sleep(self, seconds: float) -> None:
        end = self._elapsed + timedelta(seconds=seconds)
        if end <= self._elapsed:
            await anyio.lowlevel.checkpoint()
            return
        await self._wait(self._elapsed_sleepers, (end, anyio.Event()))

    @staticmethod
    async def _wait(
        sleepers: list[tuple[Any, anyio.Event]], entry: tuple[Any, anyio.Event]
    ) -> None:
        sleepers.append(entry)
        try:
            await entry[1].wait()
        finally:
            if entry in sleepers:
                sleepers.remove(entry)

    def set(self, instant: datetime) -> None:
        """Move to `instant` (never backwards), elapsed time with it, and wake the sleepers
        it passes."""
        instant = instant.astimezone(UTC)
        if instant < self._now:
            raise ValueError(f"FakeClock cannot go back from {self._now} to {instant}")
        self._elapsed += instant - self._now
        self._now = instant
        self._wake_due()

    def advance(self, delta: timedelta | float) -> None:
        self.set(self._now + _as_delta(delta))

    def suspend(self, delta: timedelta | float) -> None:
        """Move the wall clock alone forward by `delta`, as after the machine slept that long
        (or an NTP step set it forward): wall-clock sleepers it passes wake, elapsed time and
        its sleepers do not move."""
        delta = _as_delta(delta)
        if delta < timedelta(0):
            raise ValueError(f"FakeClock.suspend needs a duration of 0 or more, not {delta}")
        self._now += delta
        self._wake_due()

    def _wake_due(self) -> None:
        for deadline, event in list(self._sleepers):
            if deadline <= self._now:
                event.set()
        for end, event in list(self._elapsed_sleepers):
            if end <= self._elapsed:
                event.set()

    @property
    def next_deadline(self) -> datetime | None:
        """The wall-clock instant at which the next sleeper wakes as time passes."""
        ends = [d for d, _ in self._sleepers]
        ends += [self._now + (e - self._elapsed) for e, _ in self._elapsed_sleepers]
        return min(ends, default=None)


def _as_delta(delta: timedelta | float) -> timedelta:
    return delta if isinstance(delta, timedelta) else timedelta(seconds=delta)


#: The operator's policy tests run under by default: servers on the loopback interface may be
#: called (tests serve their webhooks and callbacks there); commands stay off.
LOOPBACK_POLICY = ActionPolicy(OutboundPolicy(allow_loopback=True))


def service_for(engine: Engine, policy: ActionPolicy | None = None) -> TaskService:
    """The task operations on `engine`'s store, clock and config, waking `engine` as a server
    does; `policy` defaults to `LOOPBACK_POLICY`, limited to the engine's executors."""
    policy = (policy or LOOPBACK_POLICY).with_runnable(engine.executors)
    return TaskService(
        engine.store, clock=engine.clock, config=engine.config, policy=policy, scheduler=engine
    )


async def run_until_idle(engine: Engine) -> None:
    """Return once the engine sleeps until a future instant with nothing in flight."""
    await anyio.lowlevel.checkpoint()
    await engine.wait_idle()


async def advance(engine: Engine, clock: FakeClock, delta: timedelta | float) -> None:
    """Move the clock forward and let the engine do everything due by then."""
    clock.advance(delta)
    await run_until_idle(engine)


async def advance_to(engine: Engine, clock: FakeClock, instant: datetime) -> None:
    clock.set(instant)
    await run_until_idle(engine)


async def step_to(engine: Engine, clock: FakeClock, instant: datetime) -> None:
    """Move to `instant` one sleeper deadline at a time, letting the engine act at each, as
    real time would (a plain `advance_to` jumps, which the engine sees as downtime)."""
    await run_until_idle(engine)
    while True:
        deadline = clock.next_deadline
        if deadline is None or deadline > instant:
            break
        clock.set(deadline)
        await run_until_idle(engine)
    if clock.now() < instant:
        clock.set(instant)
    await run_until_idle(engine)


class ScriptedExecutor:
    """An executor whose attempts succeed or fail as scripted, and that can hold each attempt
    until released, so a test controls exactly when runs end.

    `script` is consumed one entry per attempt: "ok" succeeds, any other string fails with that
    message; when it runs out, attempts succeed. With `hold=True` every attempt waits for
    `release()` (or for cancellation) before finishing.
    """

    def __init__(self, script: list[str] | None = None, *, hold: bool = False) -> None:
        self.script = list(script or [])
        self.hold = hold
        self.calls: list[ActionContext] = []
        self.active = 0
        self.cancelled = 0
        self._gate = anyio.Event()
        self._changed = anyio.Event()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_for(self, predicate: Callable[[ScriptedExecutor], bool]) -> None:
        """Wait until `predicate(self)` holds (checked after each start and end of an attempt)."""
        while not predicate(self):
            await self._changed.wait()

    def release(self) -> None:
        """Let every held attempt (current ones) finish."""
        self._gate.set()
        self._gate = anyio.Event()

    async def execute(self, ctx: ActionContext) -> object:
        self.calls.append(ctx)
        self.active += 1
        self._notify()
        try:
            if self.hold:
                await self._gate.wait()
        except anyio.get_cancelled_exc_class():
            self.cancelled += 1
            raise
        finally:
            self.active -= 1
            self._notify()
        step = self.script.pop(0) if self.script else "ok"
        if step != "ok":
            raise ActionFailed(step, output={"call": len(self.calls)})
        return {"call": len(self.calls)}
