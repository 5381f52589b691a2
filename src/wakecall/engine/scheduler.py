"""The engine: one scheduler loop and the runs it executes, inside one task group.

The loop, each time it wakes:

1. takes over runs whose lease expired (their node died) and finishes them as interrupted,
   retried when they have attempts left;
2. claims due tasks in batches, plans their fires (`policies.plan_fires`) and records the runs
   and the tasks' next fires in one transaction per batch; a run whose action calls nothing
   outside (a wakeup, a noop: `actions.InstantExecutor`) and that no overlap rule holds back
   ends in that same transaction, with its attempt and event, and takes no slot;
3. claims queued runs up to the free concurrency and starts them;
4. renews the leases of the runs in flight and cancels those whose cancellation was asked;
5. now and then, prunes old history beside the loop;

then sleeps until the earliest of: the next fire, the next queued run, the next lease renewal,
the polling fallback (changes made by other processes), or a wake-up from this process
(create, patch, resume, a finished run). It never polls in a tight loop: a due instant that
cannot be acted on yet (a run blocked by its task's overlap policy) does not shorten the sleep;
the finish of the blocking run wakes the loop instead.

Finished runs are written in batches by one writer task, so a burst of short runs costs one
transaction per batch, not several per run. `Engine.stop` ends it all, within a bound.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from types import TracebackType

import anyio
import anyio.abc
import anyio.lowlevel

from wakecall.actions import Executor, default_executors
from wakecall.actions.condition import ConditionChecker
from wakecall.clock import Clock, SystemClock
from wakecall.config import EngineConfig
from wakecall.delivery.fanout import EventFanout
from wakecall.engine.attempts import Attempts
from wakecall.engine.flights import Flight
from wakecall.engine.handoff import Handoff
from wakecall.engine.listeners import RunListener, RunNews
from wakecall.engine.outputs import bounded_output
from wakecall.engine.policies import plan_fires, retry_at
from wakecall.engine.run_spans import run_span
from wakecall.engine.schedule_cache import schedule_of
from wakecall.errors import StoreError
from wakecall.models import AttemptStatus, EventType, Run, RunStatus, Task, run_event_payload
from wakecall.store.base import (
    DueTask,
    FirePlan,
    Hint,
    Instant,
    NewEvent,
    RunOutcome,
    Store,
)

__all__ = ["Engine", "RunListener", "RunNews", "schedule_of"]

log = logging.getLogger(__name__)

#: After a stop's grace period, how long the attempts cut short have to end and what ended has
#: to be written before the engine gives up on it.
STOP_FLUSH_SECONDS = 3.0


class Engine:
    """Schedules and runs tasks from one `Store`. Use as an async context manager::

    async with Engine(store) as engine:
        tasks = TaskService(store, clock=engine.clock, config=engine.config, scheduler=engine)
        await tasks.create("me", TaskSpec(name="x", schedule="@every 1m"))

    Events it writes are published to `fanout` (the inbox, pushes and callbacks listen there).
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock | None = None,
        config: EngineConfig | None = None,
        executors: Mapping[str, Executor] | None = None,
        conditions: ConditionChecker | None = None,
        fanout: EventFanout | None = None,
    ) -> None:
        self.store = store
        self.fanout = fanout or EventFanout()
        self.clock: Clock = clock or SystemClock()
        self.config = config or EngineConfig()
        self.node = self.config.node_id
        self.executors: dict[str, Executor] = dict(
            default_executors() if executors is None else executors
        )
        #: Runs each attempt; `conditions` checks the tasks that have a `condition` (None:
        #: such runs fail).
        self._attempts = Attempts(self.executors, conditions, self.clock)
        self._run_listeners: list[RunListener] = []
        self._wake = anyio.Event()
        self._changed: anyio.Event | None = None
        self._sleep_deadline: datetime | None = None
        self._must_claim = True
        self._known_fire: datetime | None = None
        #: How far ahead the last pass claimed fires (`EngineConfig.fire_lead`).
        self._claimed_to: datetime | None = None
        self._inflight: dict[str, Flight] = {}
        self._to_workers: Handoff[Flight] = Handoff()
        self._outcomes: list[RunOutcome] = []
        self._outcome_ready = anyio.Event()
        self._writing = False
        self._tg: anyio.abc.TaskGroup | None = None
        self._next_reap: datetime | None = None
        self._next_extend: datetime | None = None
        self._next_prune: datetime | None = None
        self._pruning = False
        self._stopping = False
        self._stopped: anyio.Event | None = None
        self._abandon_writes = anyio.Event()
        self.started = anyio.Event()

    # --- life cycle -----------------------------------------------------------------------
    async def __aenter__(self) -> Engine:
        self._to_workers = Handoff()
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        self._tg.start_soon(self._loop, name="wakecall-scheduler")
        self._tg.start_soon(self._writer, name="wakecall-run-writer")
        self._tg.start_soon(self.store.watch, self._on_hint, name="wakecall-watch")
        self.started.set()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._tg is not None
        await self.stop()  # at once, unless a stop with a grace period is under way
        self._tg.cancel_scope.cancel()
        try:
            return await self._tg.__aexit__(exc_type, exc, tb)
        finally:
            self._to_workers.close()

    async def stop(self, grace: float = 0.0) -> None:
        """Within `grace` + `STOP_FLUSH_SECONDS` seconds (unless a store call under way hangs):
        claim nothing more at once (runs in flight keep their leases); let attempts in flight
        end for `grace` seconds; cancel the rest, recorded as interrupted (retried per their
        policy); write what ended, giving up on what the store keeps refusing (logged; those
        runs are reaped when their leases expire). The exit, or another call, waits for it."""
        with anyio.CancelScope(shield=True):
            if self._stopped is not None:
                await self._stopped.wait()
                return
            self._stopped = anyio.Event()
            self._stopping = True
            try:
                await self._drain(grace)
            finally:
                self._stopped.set()

    async def _drain(self, grace: float) -> None:
        if self._inflight:
            log.info("stopping: %d runs in flight have %gs to end", len(self._inflight), grace)
        with anyio.move_on_after(grace):
            await self.wait_until(lambda: all(f.outcome_queued for f in self._inflight.values()))
        for flight in list(self._inflight.values()):
            if not flight.outcome_queued:
                flight.cancel(AttemptStatus.INTERRUPTED, "the scheduler stopped")
        with anyio.move_on_after(STOP_FLUSH_SECONDS):
            await self.wait_until(lambda: not self._inflight)
        self._abandon_writes.set()  # the writer gives up on what it could not write (logged)
        executing = [f for f in self._inflight.values() if not f.outcome_queued]
        if executing:
            log.error(
                "stopping: %d runs did not end within %gs of being cancelled; they are "
                "recorded interrupted when their leases expire",
                len(executing),
                STOP_FLUSH_SECONDS,
            )

    # --- hooks for the layers above -------------------------------------------------------
    def add_run_listener(self, listener: RunListener) -> None:
        """Hear of runs this node creates, starts and finishes."""
        self._run_listeners.append(listener)

    def remove_run_listener(self, listener: RunListener) -> None:
        if listener in self._run_listeners:
            self._run_listeners.remove(listener)

    def _tell_runs(self, news: RunNews) -> None:
        for listener in list(self._run_listeners):
            try:
                listener(news)
            except Exception:  # a listener's bug must not stop the engine
                log.exception("run listener %r failed", listener)

    def _on_hint(self, hint: Hint) -> None:
        if hint.due:
            self.wake()
        self.fanout.hint(hint)

    def wake(self, *, earliest: datetime | None = None) -> None:
        """Make the loop recompute its deadline now (after a create, patch or resume).
        `earliest`: nothing changed can be due before it; a loop asleep until no later
        sleeps on (it looks at everything when it wakes). A loop not asleep is always woken:
        it may have read the next fires before the change."""
        deadline = self._sleep_deadline
        reach = None if earliest is None else earliest - self.config.fire_lead
        if reach is not None and deadline is not None and deadline <= reach:
            return
        self._must_claim = True  # tasks may have become due
        self._wake.set()
        self._notify()

    def _wake_for_runs(self) -> None:
        """Runs finished: start queued ones in the freed slots. Due tasks did not change, so
        the loop claims them only when its last look says one is due."""
        self._wake.set()
        self._notify()

    def cancel_local(self, run_ids: Sequence[str], message: str) -> None:
        """Cancel runs of this node now (a delete or `cancel_previous`)."""
        for run_id in run_ids:
            flight = self._inflight.get(run_id)
            if flight is not None:
                flight.cancel(AttemptStatus.CANCELLED, message)

    @property
    def inflight(self) -> list[Run]:
        return [f.run for f in self._inflight.values()]

    # --- idleness (for tests and the testing helpers) -------------------------------------
    def is_idle(self) -> bool:
        """True when the loop sleeps until a future instant with nothing in flight (but runs
        started ahead, waiting for their instant: they too wait for the clock)."""
        deadline = self._sleep_deadline
        return (
            deadline is not None
            and deadline > self.clock.now()
            and not self._wake.is_set()
            and all(f.held for f in self._inflight.values())
            and not self._outcomes
            and not self._writing
            and not self._pruning
        )

    def is_settled(self) -> bool:
        """Like `is_idle`, but runs may still be executing (held by their actions)."""
        deadline = self._sleep_deadline
        return (
            deadline is not None
            and deadline > self.clock.now()
            and not self._wake.is_set()
            and not self._outcomes
            and not self._writing
            and not self._pruning
        )

    async def wait_until(self, predicate: Callable[[], bool]) -> None:
        """Wait (without polling time) until `predicate()` holds after some engine change."""
        while not predicate():
            await self._wait_changed()

    async def wait_idle(self) -> None:
        await self.wait_until(self.is_idle)

    def _notify(self) -> None:
        # An event is made only for someone waiting: this runs several times per run.
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()

    async def _wait_changed(self) -> None:
        if self._changed is None:
            self._changed = anyio.Event()
        await self._changed.wait()

    # --- the loop -------------------------------------------------------------------------
    async def _loop(self) -> None:
        while True:
            self._wake = anyio.Event()
            now = self.clock.now()
            try:
                more = await self._step(now)
                deadline = None if more else await self._next_deadline(now)
            except StoreError as exc:
                log.error("scheduler step failed, retrying in 1s: %s", exc)
                more, deadline = False, now + timedelta(seconds=1)
            if more:
                await anyio.lowlevel.checkpoint()
                continue
            assert deadline is not None
            await self._sleep(deadline)

    async def _step(self, now: datetime) -> bool:
        """One pass. True when a batch was full and the loop should go again at once."""
        cfg = self.config
        more = False
        # Renew our own leases first, so that a stall of this process (or a jump of the clock)
        # never makes it reap its own live runs.
        if self._inflight and (self._next_extend is None or now >= self._next_extend):
            await self._extend(now)
        if self._inflight and cfg.heartbeat_timeout is not None:
            await self._check_heartbeats(now, cfg.heartbeat_timeout)
        if self._stopping:
            return False  # claiming nothing more (see `stop`)
        if self._next_reap is None or now > self._next_reap:
            more |= await self._reap(now)
        # Claiming due tasks when none can be due costs a round trip per pass: skip it after
        # a wake-up for finished runs when the last look put the next fire beyond the lead.
        if self._must_claim or self._fire_in_reach(now):
            self._must_claim = False
            more |= await self._fire_and_dispatch(now)
        else:
            await self._dispatch(now)
        if self._next_prune is None or now >= self._next_prune:
            # Due again even while the last prune still runs: that round is skipped, and the
            # deadline moves on (a deadline left in the past would make the loop spin).
            self._next_prune = now + cfg.prune_every
            if not self._pruning:
                self._pruning = True
                assert self._tg is not None
                self._tg.start_soon(self._prune, now, name="wakecall-prune")
        return more

    async def _prune(self, now: datetime) -> None:
        """Trim old history, beside the loop: a prune of a long history takes many slices,
        and fires and starts go on meanwhile."""
        cfg = self.config
        try:
            counts = await self.store.prune(
                now,
                runs_per_task=cfg.runs_per_task,
                run_max_age=cfg.run_max_age,
                event_max_age=cfg.event_max_age,
                task_max_age=cfg.task_max_age,
            )
        except StoreError as exc:
            log.error("pruning old history failed (tried again later): %s", exc)
            return
        finally:
            self._pruning = False
            self._notify()
        if counts.runs or counts.events or counts.tasks:
            log.info(
                "pruned %d finished tasks, %d runs and %d events",
                counts.tasks,
                counts.runs,
                counts.events,
            )

    async def _next_deadline(self, now: datetime) -> datetime:
        cfg = self.config
        if self._stopping:  # only the leases of runs in flight are still kept
            renewal = self._next_extend or now + self.config.poll_interval
            return max(renewal, now + timedelta(microseconds=1))
        candidates = [now + self.config.poll_interval]
        if self._next_prune is not None:
            candidates.append(self._next_prune)
        upcoming = await self.store.upcoming()
        self._known_fire = upcoming.fire_at
        # A lease that expires is a node that died: wake just after it to take its runs over.
        expiry = upcoming.lease_expiry
        self._next_reap = expiry or datetime.max.replace(tzinfo=now.tzinfo)
        if expiry is not None and expiry >= now:
            candidates.append(expiry + timedelta(microseconds=1))
        if self._inflight and self._next_extend is not None:
            candidates.append(self._next_extend)
        timeout = self.config.heartbeat_timeout
        if timeout is not None:
            silences = [f.silence(self.clock) for f in self._inflight.values() if not f.stale]
            if silences:
                candidates.append(now + timeout - max(silences))
        fire = upcoming.fire_at
        if fire is not None and fire > now:
            # A fire a pass has already reached is waited for at its instant: what that pass
            # left is a task whose runs end as they are written.
            candidates.append(fire if self._reached(fire) else fire - cfg.fire_lead)
        due = upcoming.run_due_at
        free = len(self._inflight) < self.config.concurrency
        if free and due is not None and due > now:
            candidates.append(due)
        # A run a rate limit holds back may start when its window lets it (a run held by a
        # concurrency limit starts when a run with its key ends: that end wakes the loop).
        opens = upcoming.flow_open_at
        if free and opens is not None and opens > now:
            candidates.append(opens)
        return max(min(candidates), now + timedelta(microseconds=1))

    async def _sleep(self, deadline: datetime) -> None:
        if self._wake.is_set():
            return
        try:
            async with anyio.create_task_group() as tg:

                async def sleeper() -> None:
                    # Marked asleep only now: a fake clock registers the sleeper before its
                    # first checkpoint, so whoever sees the mark also sees the sleeper.
                    self._sleep_deadline = deadline
                    self._notify()
                    await self.clock.sleep_until(deadline)
                    self._must_claim = True  # a deadline or the poll: look at everything
                    tg.cancel_scope.cancel()

                async def waiter() -> None:
                    await self._wake.wait()
                    tg.cancel_scope.cancel()

                tg.start_soon(sleeper)
                tg.start_soon(waiter)
        finally:
            self._sleep_deadline = None
            self._notify()

    async def _reap(self, now: datetime) -> bool:
        cfg = self.config
        runs = await self.store.claim_expired_runs(self.node, now, cfg.batch_size, cfg.lease)
        if not runs:
            return False
        outcomes = []
        for run in runs:
            log.warning(
                "run %s of task %s lost its node (lease expired); recording it as interrupted",
                run.id,
                run.task_id,
                extra={"action": "reap", "run_id": run.id, "task_id": run.task_id},
            )
            outcomes.append(self._outcome_for_interrupted(run, now, "lease expired"))
        await self._write(outcomes)
        return len(runs) == cfg.batch_size

    def _outcome_for_interrupted(self, run: Run, now: datetime, why: str) -> RunOutcome:
        retry = None
        message = f"interrupted: {why} (the node running attempt {run.attempt} stopped)"
        if run.attempt < run.max_attempts:
            retry = now
            message += "; retrying"
        return RunOutcome(
            run_id=run.id,
            attempt_status=AttemptStatus.INTERRUPTED,
            finished_at=now,
            error_message=message,
            retry_at=retry,
        )

    def _fire_in_reach(self, now: datetime) -> bool:
        """Whether the next fire, as last read, is due or comes within the lead unclaimed."""
        fire = self._known_fire
        if fire is None or fire <= now:
            return True
        return fire <= now + self.config.fire_lead and not self._reached(fire)

    def _reached(self, fire: datetime) -> bool:
        """Whether a pass has already claimed fires as far as `fire`."""
        return self._claimed_to is not None and fire <= self._claimed_to

    async def _fire_and_dispatch(self, now: datetime) -> bool:
        """Record the fires of due tasks and start due runs (in one transaction where the
        store can), reaching `fire_lead` ahead: a run due within it is written running, and
        its worker waits for its instant. A task whose runs end as they are written is left
        to a pass at its instant (its event must not come early). True when the batch of due
        tasks was full (and no task was left so)."""
        cfg = self.config
        horizon = now + cfg.fire_lead
        self._claimed_to = horizon
        left_early = False

        def plan(item: DueTask) -> FirePlan | None:
            nonlocal left_early
            try:
                task = item.task
                instant = self._instant(task)
                if instant is None:
                    return plan_fires(item, schedule_of(task), now, cfg, reach=horizon)
                assert task.next_fire_at is not None
                if task.next_fire_at > now:
                    left_early = True
                    return None
                return plan_fires(item, schedule_of(task), now, cfg, instant=instant)
            except Exception:
                log.exception("cannot plan task %s; leaving it for later", item.task.id)
                return None

        done = await self.store.fire_and_start(
            self.node,
            now,
            limit=cfg.batch_size,
            lease=cfg.lease,
            plan=plan,
            start_limit=self._free_slots(),
            horizon=horizon,
        )
        for made in done.plans:
            if made.cancel_run_ids:
                self.cancel_local(
                    made.cancel_run_ids, "cancelled: a newer fire replaced it (cancel_previous)"
                )
        self.fanout.publish(done.fired.events)
        settled = done.fired.settled
        if settled:
            self._log_finished(settled)
        if done.fired.runs and self._run_listeners:
            self._tell_runs(
                RunNews(
                    created=done.fired.runs,
                    started=settled,
                    finished=[(run, AttemptStatus.SUCCESS) for run in settled],
                )
            )
        self._start_flights(now, done.started)
        return done.more and not left_early

    def _instant(self, task: Task) -> Instant | None:
        """The instant end of the task's runs, when its action has one (`InstantExecutor`),
        no condition has to be checked first, no failure streak is to be ended (an instant run
        ends with its fire, which writes no streak: a worker's run does) and no flow control
        applies (its runs start, and count, like any other)."""
        if task.condition is not None or task.failure_streak:
            return None
        if task.flow_controlled:
            return None
        executor = self.executors.get(str(task.action.get("type")))
        output_of = getattr(executor, "instant_output", None)
        return None if output_of is None else Instant(output_of(task))

    def _free_slots(self) -> int:
        return 0 if self._stopping else max(self.config.concurrency - len(self._inflight), 0)

    async def _dispatch(self, now: datetime) -> None:
        free = self._free_slots()
        if free <= 0:
            return
        self._start_flights(
            now, await self.store.start_due_runs(self.node, now, free, self.config.lease)
        )

    def _start_flights(self, now: datetime, started: Sequence[tuple[Run, Task]]) -> None:
        if not started:
            return
        self._next_extend = self._next_extend or now + self.config.lease / 3
        assert self._tg is not None
        flights = []
        for run, task in started:
            # A run started ahead of its instant (`fire_lead`) is written starting then.
            start = max(now, run.started_at or now)
            flight = Flight(run, task, last_beat=start, last_beat_elapsed=self.clock.monotonic())
            flight.held = start > now
            flights.append(flight)
        if self._run_listeners:  # a held run is told when its hold ends (`_hold`)
            self._tell_runs(RunNews(started=[f.run for f in flights if not f.held]))
        for flight in flights:
            run = flight.run
            self._inflight[run.id] = flight
            if run.cancel_requested:
                flight.cancel(AttemptStatus.CANCELLED, "cancelled on request")
            if not self._to_workers.put(flight):  # no worker waits: one more
                self._tg.start_soon(self._worker, name="wakecall-run-worker")
        self._notify()

    async def _worker(self) -> None:
        """Executes runs, one after another, as the dispatcher hands them over. Workers are
        kept, not a task spawned per run (handing a run to a waiting worker costs a tenth of a
        spawn); there are never more than the most runs ever in flight at once."""
        runs = self._to_workers
        while (flight := await runs.take()) is not None:
            await self._execute(flight)

    async def _extend(self, now: datetime) -> None:
        cfg = self.config
        self._next_extend = now + cfg.lease / 3
        ids = [rid for rid, f in self._inflight.items() if not f.outcome_queued]
        if not ids:
            return
        held, cancel = await self.store.extend_leases(self.node, ids, now + cfg.lease)
        for run_id in ids:
            flight = self._inflight.get(run_id)
            if flight is None:
                continue
            if run_id not in held:
                flight.cancel(
                    AttemptStatus.CANCELLED, "cancelled: the run was deleted or taken over"
                )
            elif run_id in cancel:
                flight.cancel(AttemptStatus.CANCELLED, "cancelled on request")

    async def _check_heartbeats(self, now: datetime, threshold: timedelta) -> None:
        """Report (and, with `kill_stale`, cancel) runs with no beat for `threshold` of elapsed
        time: logged with the task and run ids, and a `task.run.stale` event."""
        clock = self.clock
        stale = [
            f
            for f in self._inflight.values()
            if not f.stale and not f.outcome_queued and f.silence(clock) >= threshold
        ]
        if not stale:
            return
        kill = self.config.kill_stale
        events = []
        for flight in stale:
            flight.stale = True
            silent = flight.silence(clock).total_seconds()
            log.warning(
                "run %s of task %s has given no sign of life for %.0fs%s",
                flight.run.id,
                flight.task.id,
                silent,
                "; cancelling it" if kill else "",
                extra={"action": "stale", "run_id": flight.run.id, "task_id": flight.task.id},
            )
            payload = run_event_payload(flight.task, flight.run)
            payload["heartbeat"] = {
                "lastBeat": flight.last_beat.isoformat().replace("+00:00", "Z"),
                "silentS": round(silent, 3),
                "thresholdS": threshold.total_seconds(),
                "killed": kill,
            }
            events.append(NewEvent(EventType.RUN_STALE, flight.task.id, flight.run.id, payload))
            if kill:
                flight.cancel(
                    AttemptStatus.TIMEOUT,
                    f"timeout: no sign of life for {silent:.0f}s (heartbeat timeout "
                    f"{threshold.total_seconds():g}s)",
                )
        self.fanout.publish(await self.store.append_events(now, events))

    # --- executing one run ----------------------------------------------------------------
    async def _execute(self, flight: Flight) -> None:
        run, task = flight.run, flight.task
        clock = self.clock
        await self._hold(flight)
        started = clock.monotonic()
        assert self._tg is not None
        status, output, error = await self._attempts.run(flight, self._tg)
        finished = clock.now()
        if status == AttemptStatus.INTERRUPTED:
            outcome = self._outcome_for_interrupted(run, finished, flight.cancel_message)
        else:
            retry = None
            failed = status in (AttemptStatus.FAILURE, AttemptStatus.TIMEOUT)
            if failed and run.attempt < run.max_attempts:
                retry = retry_at(task.retry, run.id, run.attempt + 1, finished)
            outcome = RunOutcome(
                run_id=run.id,
                attempt_status=status,
                finished_at=finished,
                output=bounded_output(output, self.config.max_output_bytes),
                error_message=error,
                retry_at=retry,
                duration_ms=int((clock.monotonic() - started) * 1000),
            )
        run_span(task, run, outcome)
        flight.outcome_queued = True
        self._outcomes.append(outcome)
        self._outcome_ready.set()
        self._notify()

    async def _hold(self, flight: Flight) -> None:
        """Wait for the instant of a run started ahead of it (`EngineConfig.fire_lead`). A
        cancel ends the wait, and the attempt then ends at once."""
        if flight.held:
            with anyio.CancelScope() as scope:
                flight.scope = scope
                if flight.cancel_reason is None:
                    await self.clock.sleep_until(flight.last_beat)  # its start, until it beats
            flight.scope = None
            flight.held = False
            flight.last_beat_elapsed = self.clock.monotonic()
            if self._run_listeners:  # started now, as late as the wake came
                begun = max(self.clock.now(), flight.last_beat)
                self._tell_runs(RunNews(started=[flight.run.replace(started_at=begun)]))
            self._notify()

    # --- writing finished runs ------------------------------------------------------------
    async def _writer(self) -> None:
        while True:
            await self._outcome_ready.wait()
            self._outcome_ready = anyio.Event()
            batch = self._outcomes[: self.config.batch_size]
            del self._outcomes[: len(batch)]
            if self._outcomes:
                self._outcome_ready.set()
            self._writing = True
            try:
                with anyio.CancelScope(shield=True):
                    await self._write_with_retry(batch)
                for outcome in batch:
                    self._inflight.pop(outcome.run_id, None)
            finally:
                self._writing = False
            if not self._inflight:
                self._next_extend = None
            self._wake_for_runs()

    async def _write_with_retry(self, outcomes: list[RunOutcome]) -> None:
        """Write `outcomes`, retried while the store refuses them, until a stop gives up."""
        delay = 0.1
        while True:
            try:
                await self._write(outcomes)
                return
            except StoreError as exc:
                error = exc
            if not self._abandon_writes.is_set():
                log.error("writing %d finished runs failed, retrying: %s", len(outcomes), error)
                with anyio.move_on_after(delay):
                    await self._abandon_writes.wait()
                delay = min(delay * 2, 5.0)
            if self._abandon_writes.is_set():
                log.error(
                    "stopping: gave up recording how %d runs ended (%s); they stay claimed by "
                    "this node until their leases expire (within %gs), then the next node to "
                    "look records them as interrupted and retries them per their policy",
                    len(outcomes),
                    error,
                    self.config.lease.total_seconds(),
                )
                return

    async def _write(self, outcomes: list[RunOutcome]) -> None:
        written, events = await self.store.finish_runs(self.node, outcomes)
        self.fanout.publish(events)
        self._log_finished(written)
        if written and self._run_listeners:
            how = {o.run_id: o.attempt_status for o in outcomes}
            self._tell_runs(RunNews(finished=[(run, how[run.id]) for run in written]))

    @staticmethod
    def _log_finished(runs: Sequence[Run]) -> None:
        """Log finished runs: failures at INFO, successes and skips at DEBUG."""
        for run in runs:
            ok = run.status in (RunStatus.SUCCESS, RunStatus.SKIPPED)
            level = logging.DEBUG if ok else logging.INFO
            if not log.isEnabledFor(level):
                continue  # a burst of successes builds no log records
            log.log(
                level,
                "run %s of task %s: %s (attempt %d)%s",
                run.id,
                run.task_id,
                run.status,
                run.attempt,
                f": {run.error_message}" if run.error_message else "",
                extra={"action": "finish", "run_id": run.id, "task_id": run.task_id},
            )
