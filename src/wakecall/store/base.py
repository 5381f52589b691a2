"""The `Store` protocol: what every backend promises, method by method.

The protocol is built for several scheduler nodes sharing one database:

* Due tasks are *claimed* with a lease (`claim_due_tasks`), their fires recorded by the claimant
  (`record_fires`, which checks the claim), or given back (`release_tasks`). An expired claim is
  simply claimable again, which is how a dead node's claims are reaped.
* Queued runs are claimed the same way (`claim_runs`), started and finished by the claimant only
  (`start_attempts`, `finish_runs`), kept alive with `extend_leases`; a run whose lease expired
  is taken over by `claim_expired_runs` and finished as interrupted (retried if it can be).
* `(task_id, scheduled_for)` is unique: recording the same fire twice creates one run (and,
  apart, backfilling it twice: `store.backfills`).
* A run's final state and its event are written in one transaction.

Every read and write that an agent can cause is scoped by `owner`; `owner=None` means "any
owner" and is for operators and the engine only.

Several processes may share one store (scheduler nodes on PostgreSQL; the `wakecall` command
line next to a server on SQLite). `watch` tells a process about the others' changes, as hints:
a hint may be late or lost, so whoever acts on hints also polls now and then.

All datetimes are aware UTC. Methods raise `TaskNotFound`/`RunNotFound` for unknown ids (and
for ids of another owner), `StoreError` subclasses when the database cannot be used.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from wakecall.models import (
    AttemptStatus,
    Delivery,
    DeliveryStatus,
    Event,
    Run,
    RunStatus,
    Task,
    TaskStatus,
    Trigger,
)
from wakecall.models.subscriptions import Subscription, SubscriptionRoute, ToolTask
from wakecall.store.backfills import Backfill, Backfilled
from wakecall.store.fire_plans import (
    DueTask,
    FirePlan,
    FireResult,
    Instant,
    NewEvent,
    NewRun,
    PassResult,
    Planner,
    TaskEnd,
    dependency_run,
    new_run_record,
)
from wakecall.store.task_writes import (
    NewTask,
    OwnerLimits,
    TaskDeletion,
    TaskUpdate,
    TaskWrite,
    TaskWritten,
    live_tasks_added,
    live_tasks_removed,
    over_limits,
    rated_creations,
)

__all__ = [
    "RESYNC",
    "DeliveryOutcome",
    "DueTask",
    "FirePlan",
    "FireResult",
    "Hint",
    "HintListener",
    "Instant",
    "NewEvent",
    "NewRun",
    "NewSubscriptionDelivery",
    "NewTask",
    "OwnerLimits",
    "PassResult",
    "Planner",
    "PruneCounts",
    "RunOutcome",
    "Store",
    "TaskDeletion",
    "TaskEnd",
    "TaskUpdate",
    "TaskWrite",
    "TaskWritten",
    "Upcoming",
    "dependency_run",
    "fire_and_start_in_steps",
    "live_tasks_added",
    "live_tasks_removed",
    "new_run_record",
    "over_limits",
    "rated_creations",
]


async def fire_and_start_in_steps(
    store: Store,
    node: str,
    now: datetime,
    *,
    limit: int,
    lease: timedelta,
    plan: Planner,
    start_limit: int,
    horizon: datetime | None = None,
) -> PassResult:
    """`Store.fire_and_start` from the store's other methods, one call after the other, for a
    store that has no single transaction for it. It starts no run ahead of its instant: runs
    due by `horizon` but after `now` stay queued for a pass at their instant."""
    reach = now if horizon is None else max(now, horizon)
    due = await store.claim_due_tasks(node, now, limit, lease, due_by=reach) if limit > 0 else []
    plans: list[FirePlan] = []
    unplanned: list[str] = []
    for item in due:
        made = plan(item)
        if made is None:
            unplanned.append(item.task.id)
        else:
            plans.append(made)
    if unplanned:
        await store.release_tasks(node, unplanned)
    fired = await store.record_fires(node, now, plans) if plans else FireResult([], [], [])
    started = await store.start_due_runs(node, now, start_limit, lease) if start_limit > 0 else []
    return PassResult(fired, plans, len(due), started, more=len(due) == limit)


@dataclass(frozen=True, slots=True)
class RunOutcome:
    """How one attempt ended, and what happens to its run next."""

    run_id: str
    attempt_status: AttemptStatus
    finished_at: datetime
    output: Any = None
    error_message: str | None = None
    retry_at: datetime | None = None  # set: the run is queued again for this instant
    duration_ms: int | None = None


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """How one attempt to send a callback ended: delivered; or pending again at `retry_at`; or
    failed (dead-lettered) when neither."""

    delivery_id: str
    at: datetime  # when the attempt ended (`delivered_at` when delivered)
    delivered: bool
    retry_at: datetime | None = None
    status_code: int | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Upcoming:
    """When the scheduler has something to do next (None: nothing of that kind)."""

    fire_at: datetime | None  # the earliest next fire of an active task
    run_due_at: datetime | None  # the earliest due time of a queued run
    lease_expiry: datetime | None  # the earliest lease expiry of a running run
    #: The earliest instant a run held back by a rate limit may start (as last judged here).
    flow_open_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class PruneCounts:
    runs: int
    events: int
    tasks: int = 0  # finished tasks, with their runs (not counted in `runs`)


@dataclass(frozen=True, slots=True)
class Hint:
    """Another process changed the store.

    `due`: something may be due sooner than this process thinks (a task created, patched or
    resumed, a run queued, a claim given back): the scheduler should look again. `owners`:
    these owners have new events. `all_owners`: anyone may have new events (sent after hints
    may have been lost, e.g. when the listening connection came back)."""

    due: bool = False
    owners: frozenset[str] = frozenset()
    all_owners: bool = False


@dataclass(frozen=True, slots=True)
class NewSubscriptionDelivery:
    """A delivery of one event (or a control envelope) to a webhook subscription: `id` names
    the row, `message_id` is its `webhook-id` (the event's id: the same for every subscription
    and every retry; `msg_<type>_<random>` for an envelope). `secret`, for the `terminated`
    envelope queued as its subscription is deleted: the secret that signs it then."""

    id: str
    message_id: str
    event_cursor: int
    event_type: str
    task_id: str | None
    body: str
    secret: str | None = None


#: Look at everything again: hints may have been lost.
RESYNC = Hint(due=True, all_owners=True)

#: Called with each hint, on the event loop. Must not block.
HintListener = Callable[[Hint], None]


class Store(Protocol):
    # --- life cycle -----------------------------------------------------------------------
    async def open(self) -> None:
        """Connect, create the schema on a new database or upgrade an older one.
        Raises `NotAWakecallDatabase` for a file that is not ours, `StoreError` otherwise."""
        ...

    async def close(self) -> None:
        """Release connections. Idempotent."""
        ...

    async def watch(self, on_hint: HintListener) -> None:
        """Until cancelled, call `on_hint` when another process (not this store object) commits
        a change. Never returns otherwise and never raises for a lost connection: it reconnects
        and then sends `RESYNC`, since hints may have been lost meanwhile."""
        ...

    # --- tasks ----------------------------------------------------------------------------
    async def get_task(self, owner: str | None, task_id: str) -> Task:
        """The task, or `TaskNotFound` (also when it belongs to another owner)."""
        ...

    async def list_tasks(
        self,
        owner: str | None,
        *,
        status: TaskStatus | None = None,
        kind: str | None = None,
        name_contains: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        after: str | None = None,
        limit: int = 50,
    ) -> list[Task]:
        """Tasks in id (= creation) order, those with id > `after`, at most `limit`.
        `name_contains` matches case-insensitively; `metadata` keeps tasks whose metadata
        holds every given key with an equal value."""
        ...

    async def write_tasks(
        self,
        owner: str,
        writes: Sequence[TaskWrite],
        now: datetime,
        *,
        limits: OwnerLimits | None = None,
        events: Sequence[NewEvent] = (),
        dry_run: bool = False,
    ) -> list[TaskWritten]:
        """Make `writes` to the owner's tasks, in order, and append `events`, in one
        transaction: all of them or none. One `TaskWritten` per write, in order.

        Raises (and writes nothing) `TaskNotFound` for an update or deletion of a task that is
        not the owner's, `Conflict` for a new task whose id is taken or an update whose
        `seen_status` is not the task's status, and `LimitReached` (naming the limit) when the
        writes break one of `limits`: they would leave the owner holding more live (active or
        paused) tasks than `max_tasks`, and more than before; or make the owner's new tasks
        (or wakeups) in the last 60 seconds more than `tasks_per_minute` (or
        `wakeups_per_minute`). Limits are judged inside the transaction, so concurrent callers
        (other processes, other nodes) can never take the owner past one together.
        With `dry_run` every check is made and everything is rolled back. A task set to
        `expired` with no unfinished run announces its end (`task.expired`) in the same
        transaction."""
        ...

    # --- fires ----------------------------------------------------------------------------
    async def claim_due_tasks(
        self,
        node: str,
        now: datetime,
        limit: int,
        lease: timedelta,
        *,
        due_by: datetime | None = None,
    ) -> list[DueTask]:
        """Claim up to `limit` active tasks with `next_fire_at <= due_by` (default `now`) that
        are unclaimed or whose claim expired by `now`, earliest first, for `node` until
        `now + lease`."""
        ...

    async def record_fires(self, node: str, now: datetime, plans: Sequence[FirePlan]) -> FireResult:
        """In one transaction, for each plan whose task `node` still claims: insert its runs
        (a run whose `(task_id, scheduled_for)` exists already is not inserted), add the counted
        ones to `run_count`, set `next_fire_at`/`last_fire_at`, apply `end`, mark
        `cancel_run_ids` as cancel-requested, append the plan's events, and release the claim.
        Plans for tasks no longer claimed by `node` change nothing and are listed in
        `lost_task_ids`.

        A plan with `instant` has its new queued runs due by `now` written finished (see
        `FirePlan`), each with an attempt row and its event as `finish_runs` would write them
        (callback delivery, the runs queued for dependent tasks, and `task.expired` after the
        last run of a task that ended as expired included); they are listed in `settled`.
        Events come in plan order: a plan's missed run, its settled runs, its own events, then
        the announcement of its end."""
        ...

    async def fire_and_start(
        self,
        node: str,
        now: datetime,
        *,
        limit: int,
        lease: timedelta,
        plan: Planner,
        start_limit: int,
        horizon: datetime | None = None,
    ) -> PassResult:
        """The engine's pass over due work: `claim_due_tasks(limit)`, `plan` each claimed task,
        `record_fires` of the plans (tasks left unplanned are released unchanged), then
        `start_due_runs(start_limit)`, which may start the runs just recorded (not those
        settled at birth, which take no slot).

        With `horizon` (a little after `now`), tasks due by `horizon` are claimed, not only
        those due by `now`; everything is still written at `now`. A store may then start a
        run just recorded that is due by `horizon`, unless its task has a flow control, with
        its start (the run's and its attempt's `started_at`) at its due instant; the engine
        holds its action until then. A store that cannot leaves such runs queued. A store may do
        it all in one transaction (claims then need no marks, since nothing else can see the
        tasks in between); `fire_and_start_in_steps` does it with the other methods. A store
        may also claim fewer than `limit` tasks, to keep the pass short (SQLite sizes it to a
        few milliseconds): `PassResult.more` says whether the batch it took was full, i.e.
        whether more may be due."""
        ...

    async def release_tasks(self, node: str, task_ids: Sequence[str]) -> None:
        """Drop `node`'s claims on these tasks without other changes."""
        ...

    # --- runs -----------------------------------------------------------------------------
    async def create_run(self, owner: str | None, task_id: str, run: NewRun, now: datetime) -> Run:
        """Insert one run for a task outside the schedule (a manual run). `TaskNotFound` if the
        task is absent."""
        ...

    async def backfill_runs(self, owner: str, request: Backfill, now: datetime) -> Backfilled:
        """Write the runs of `request` for the owner's task in one transaction (see
        `store.backfills`); `TaskNotFound` (nothing written) for a task not the owner's."""
        ...

    async def create_event_run(
        self, task_id: str, event_id: str, run: NewRun, now: datetime
    ) -> tuple[str, bool]:
        """Queue `run` for an inbound event, once per `(task_id, event_id)`: the id of the run
        and True, or, for an event seen before, the id of the run it made and False.
        `TaskNotFound` if the task is unknown."""
        ...

    async def event_run_id(self, task_id: str, event_id: str) -> str | None:
        """The id of the run an event with this id made for the task, if it came before."""
        ...

    async def count_runs_since(self, task_id: str, trigger: Trigger, since: datetime) -> int:
        """Runs of the task with this trigger created at or after `since`."""
        ...

    async def claim_runs(self, node: str, now: datetime, limit: int, lease: timedelta) -> list[Run]:
        """Claim up to `limit` queued runs due at or before `now` (unclaimed or with an expired
        claim), earliest due first, for `node` until `now + lease`. A task whose overlap policy
        is not `allow` yields at most one run, and none while another of its runs is running."""
        ...

    async def start_attempts(self, node: str, now: datetime, run_ids: Sequence[str]) -> list[Run]:
        """Mark claimed runs running with their next attempt number and record each attempt.
        Runs not claimed by `node` (or gone) are left out of the result."""
        ...

    async def start_due_runs(
        self, node: str, now: datetime, limit: int, lease: timedelta
    ) -> list[tuple[Run, Task]]:
        """`claim_runs` then `start_attempts` of the claimed runs, in one transaction, with
        each started run's task: the engine's one round trip to start a batch."""
        ...

    async def extend_leases(
        self, node: str, run_ids: Sequence[str], until: datetime
    ) -> tuple[set[str], set[str]]:
        """Extend `node`'s leases on these runs. Returns (ids still held, ids of those whose
        cancellation was requested)."""
        ...

    async def finish_runs(
        self, node: str, outcomes: Sequence[RunOutcome]
    ) -> tuple[list[Run], list[Event]]:
        """For each outcome whose run `node` still claims, in one transaction (or, for a long
        list, in several, each holding whole outcomes, in order): close the attempt;
        with `retry_at` queue the run again (unclaimed, due then), otherwise write its terminal
        status (success, failure, timeout, cancelled; interrupted ends as failure), output,
        error and duration, and append its event (`task.run.completed`, `task.run.failed`, or
        `wakeup.fired` for a wakeup's success). When the run was the last unfinished run of a
        task that has ended as expired, `task.expired` is appended too. Returns the runs as
        written and the events appended; runs no longer claimed by `node` are skipped.
        A task that `depends_on` the task of a run finished successfully (active, of the same
        owner) gets a queued run in the same transaction, with trigger `dependency` and the
        upstream run as its input: `{"task": {id, name}, "run": {id, output, ...}}`."""
        ...

    async def release_runs(self, node: str, run_ids: Sequence[str]) -> None:
        """Give back claimed, not yet started runs."""
        ...

    async def claim_expired_runs(
        self, node: str, now: datetime, limit: int, lease: timedelta
    ) -> list[Run]:
        """Claim running runs whose lease expired before `now` (their node died), for `node`.
        The caller finishes each as `interrupted` through `finish_runs`."""
        ...

    async def backlog(self, now: datetime) -> tuple[int, int]:
        """What is due at `now` and not yet taken: (active tasks whose next fire has come,
        queued runs whose due time has come)."""
        ...

    async def upcoming(self) -> Upcoming:
        """In one read: the earliest `next_fire_at` of an active task, the earliest `due_at`
        of a queued run, and the earliest lease expiry of a running run (None when none);
        with, as this object last judged it, the earliest instant a run held back by a rate
        limit may start."""
        ...

    async def flow_usage(
        self, owner: str, concurrency_key: str | None, rate_key: str | None, since: datetime
    ) -> tuple[int, list[datetime]]:
        """For flow control: how many runs of the owner's tasks with `concurrency_key` run
        now (0 when None), and the logged starts of `rate_key` after `since`, oldest first
        ([] when None)."""
        ...

    def held_back(self) -> dict[tuple[str, str], int]:
        """Runs flow control held back at this object's last claim, by ("concurrency" or
        "rate_limit", key)."""
        ...

    async def request_cancel(self, owner: str | None, run_ids: Sequence[str]) -> None:
        """Flag runs for cancellation; their claimant sees it at its next lease extension."""
        ...

    async def get_run(self, owner: str | None, run_id: str) -> Run:
        """The run, or `RunNotFound`."""
        ...

    async def list_runs(
        self,
        owner: str | None,
        *,
        task_id: str | None = None,
        status: RunStatus | None = None,
        before: str | None = None,
        limit: int = 50,
    ) -> list[Run]:
        """Runs newest first (by id), those with id < `before`, at most `limit`.
        `TaskNotFound` if `task_id` is given and unknown to this owner."""
        ...

    async def list_attempts(self, owner: str | None, run_id: str) -> list[Any]:
        """The attempts of a run, first first. `RunNotFound` if unknown."""
        ...

    # --- events ---------------------------------------------------------------------------
    async def list_events(self, owner: str, *, after: int = 0, limit: int = 100) -> list[Event]:
        """The owner's events with cursor > `after`, oldest first, at most `limit`.

        Cursors count each owner's events only (they say nothing of other owners'): strictly
        increasing per owner, never given twice, and an event committed after a read never
        has a cursor at or below one that read returned, so reading on from the last cursor
        returned misses nothing. Cursors given before per-owner counting (schema version 6)
        keep their values and stay valid positions to read after."""
        ...

    async def append_events(self, now: datetime, events: Sequence[NewEvent]) -> list[Event]:
        """Append events about tasks (each to its task's owner; an event of an unknown task is
        dropped) at `now`, in order, with their callback deliveries as for any event."""
        ...

    async def latest_cursor(self, owner: str) -> int:
        """The owner's newest event cursor, 0 when there is none."""
        ...

    # --- callbacks ------------------------------------------------------------------------
    # Every event appended for a task that has a `callback_url` (of the types in
    # `CALLBACK_EVENTS`) creates a pending `Delivery` in the same transaction, with the body
    # `{"event", "timestamp", **payload}` fixed once.

    async def add_callback_secret(
        self, task_id: str, secret: str, now: datetime, retire_others_at: datetime | None
    ) -> None:
        """Store a new signing secret for the task; the task's other live secrets stop signing
        at `retire_others_at` (now when None)."""
        ...

    async def callback_secrets(self, task_id: str, now: datetime) -> list[str]:
        """The task's secrets that still sign at `now`, newest first."""
        ...

    async def callback_secrets_of(
        self, task_ids: Sequence[str], now: datetime
    ) -> dict[str, list[str]]:
        """`callback_secrets` of several tasks in one read: each task id that has secrets
        still signing at `now` maps to them, newest first (a task without any is left out)."""
        ...

    async def claim_deliveries(
        self, node: str, now: datetime, limit: int, lease: timedelta
    ) -> list[Delivery]:
        """Claim up to `limit` pending deliveries due at or before `now` (unclaimed or with an
        expired claim), earliest first, for `node` until `now + lease`."""
        ...

    async def finish_delivery(
        self,
        node: str,
        delivery_id: str,
        now: datetime,
        *,
        delivered: bool,
        retry_at: datetime | None,
        status_code: int | None,
        error: str | None,
    ) -> Delivery | None:
        """Record one attempt by its claimant: delivered; or pending again at `retry_at`; or
        failed (dead-lettered) when neither. None when `node` no longer holds it."""
        ...

    async def finish_deliveries(
        self, node: str, outcomes: Sequence[DeliveryOutcome]
    ) -> list[Delivery | None]:
        """`finish_delivery` for several attempts in one transaction: the delivery as each
        outcome left it, in the order given; None where `node` no longer held it (also for a
        delivery given a second time in the same call: only its first outcome counts)."""
        ...

    async def list_deliveries(
        self,
        owner: str | None,
        *,
        status: DeliveryStatus | None = None,
        task_id: str | None = None,
        before: str | None = None,
        limit: int = 50,
    ) -> list[Delivery]:
        """Deliveries newest first (by id), those with id < `before`."""
        ...

    async def redeliver(self, owner: str | None, delivery_id: str, now: datetime) -> Delivery:
        """Make a delivery pending again, due now, with a fresh attempt count. Raises
        `NotFound` for an unknown id."""
        ...

    async def next_delivery_due_at(self) -> datetime | None:
        """The earliest `next_attempt_at` of a pending delivery, or None."""
        ...

    # --- retention ------------------------------------------------------------------------
    async def prune(
        self,
        now: datetime,
        *,
        runs_per_task: int,
        run_max_age: timedelta,
        event_max_age: timedelta,
        task_max_age: timedelta | None = None,
    ) -> PruneCounts:
        """Delete finished runs beyond the newest `runs_per_task` of each task or older than
        `run_max_age`, and events older than `event_max_age` (moving each owner's
        `event_horizon` to the newest of them). Unfinished runs are kept.

        With `task_max_age`, finished tasks (completed or expired) that ended longer ago go
        too, with their runs, in bounded chunks: those with no run unfinished or finished
        within `task_max_age`, and on which no task depends (a chain keeps its upstream)."""
        ...

    # --- readers: read positions and the pruned horizon --------------------------------------
    # A reader is an owner and a client identity (see `delivery.inbox`). Positions are cursors
    # of the owner's log.

    async def read_position(self, owner: str, client: str) -> int:
        """The position saved for the reader `(owner, client)`, 0 when none was."""
        ...

    async def reader_news(self, owner: str, client: str) -> tuple[int, int]:
        """`(latest_cursor(owner), read_position(owner, client))` in one read: what every
        tool answer's hint compares."""
        ...

    async def save_read_position(self, owner: str, client: str, cursor: int, now: datetime) -> int:
        """Keep `cursor` as the reader's position when it is newer than the one saved (a
        position never moves back); the position as saved."""
        ...

    async def count_events(self, owner: str, *, after: int, limit: int) -> int:
        """How many of the owner's events have a cursor > `after`, counting up to `limit`."""
        ...

    async def event_horizon(self, owner: str) -> int:
        """The newest cursor among the owner's events that `prune` deleted, 0 when none was:
        reading after an older position may have skipped events."""
        ...

    # --- MCP Events webhook subscriptions ------------------------------------------------------
    async def save_subscription(
        self,
        sub: Subscription,
        now: datetime,
        *,
        secret_grace: timedelta,
        max_per_owner: int,
    ) -> tuple[Subscription, bool]:
        """Create `sub` (dropping what is still pending for an ended subscription of that id:
        its `terminated` envelope would tell of the new one); or, when the owner has a
        subscription of that id, refresh it: its secret (the one it had keeps signing for
        `secret_grace` when it changed), `refresh_before` and `updated_at`, and make it active
        again (no `suspended_at`); where it was fed to and its delivery in flight stay. Returns
        the subscription as stored and whether it was created. `LimitReached` (nothing
        written) for a new subscription when the owner holds `max_per_owner` already."""
        ...

    async def get_subscription(self, owner: str, subscription_id: str) -> Subscription | None:
        """The owner's subscription of that id, or None (also for another owner's)."""
        ...

    async def endpoint_verified(self, owner: str, url: str) -> bool:
        """Whether the owner has a subscription to `url` (one is stored only once its
        endpoint passed the challenge), so a new one to it needs no challenge."""
        ...

    async def delete_subscription(self, owner: str | None, subscription_id: str) -> bool:
        """Delete the subscription (of `owner`; of anyone with None) and its pending
        deliveries; whether it existed."""
        ...

    async def subscriptions_to_feed(
        self, now: datetime, limit: int
    ) -> list[tuple[Subscription, Delivery | None]]:
        """Up to `limit` active subscriptions not expired at `now` with no delivery pending,
        in id order, each with the delivery it was last given when that one has ended since
        (delivered or failed; None when it had none in flight)."""
        ...

    async def advance_subscription(
        self,
        before: Subscription,
        after: Subscription,
        delivery: NewSubscriptionDelivery | None = None,
        *,
        now: datetime,
    ) -> bool:
        """When the subscription is still as `before` (same `cursor` and `pending_delivery`):
        write the feeding state of `after` (`cursor`, `acked_through`, `pending_delivery`,
        `active`, `last_delivery_at`, `last_error`, `failed_since`, `suspended_at`) and insert
        `delivery`
        (pending, due `now`, to the subscription's URL), in one transaction; True. False, and
        nothing written, when another process moved it on first."""
        ...

    async def subscriptions_to_end(
        self, now: datetime, suspended_before: datetime, limit: int
    ) -> list[Subscription]:
        """Up to `limit` subscriptions, in id order, that are over: those whose
        `refresh_before` has passed at `now`, and those granted no expiry whose delivery was
        suspended at or before `suspended_before` (and not resumed since)."""
        ...

    async def end_subscription(
        self, sub: Subscription, farewell: NewSubscriptionDelivery | None, *, now: datetime
    ) -> bool:
        """When the subscription is still as `sub` (same `updated_at`, `active` and
        `refresh_before`: no refresh came since it was read): delete it with its pending
        deliveries and insert `farewell` (pending, due `now`, to its URL, naming it; signed
        with the farewell's own `secret`), in one transaction; True. False, and nothing
        written, when it changed or is gone."""
        ...

    async def subscription_routes(
        self, delivery_ids: Sequence[str], now: datetime
    ) -> dict[str, SubscriptionRoute]:
        """For those of `delivery_ids` made for a subscription: how each is sent (its
        `webhook-id`, the subscription, the secrets that sign at `now`: the farewell's own for
        a farewell, else the subscription's, none once it is gone). Other ids are left out."""
        ...

    # --- MCP Tasks extension handles -------------------------------------------------------
    async def create_tool_task(self, task: ToolTask) -> None:
        """Store a handle (and delete those of the owner that expired by its `created_at`)."""
        ...

    async def get_tool_task(self, owner: str, task_id: str, now: datetime) -> ToolTask | None:
        """The owner's handle of that id not expired at `now`, or None."""
        ...
