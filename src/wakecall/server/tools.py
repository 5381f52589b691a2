"""The agent-facing tools. Each is thin: check the arguments, call the engine or the store,
shape the answer. Expected failures become tool errors whose text says what was wrong and how
to fix it; nothing is stored when a call fails."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import wraps
from typing import TYPE_CHECKING, Annotated, Any, Literal, ParamSpec, TypeVar

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from wakecall.errors import InvalidInput, WakecallError
from wakecall.models import (
    Action,
    ClearableField,
    ConditionSpec,
    DeliveryStatus,
    RetryPolicy,
    RunStatus,
    TaskPatch,
    TaskSpec,
    TaskStatus,
    TriggerSpec,
    invalid_input_from,
)
from wakecall.schedules import parse_schedule, preview
from wakecall.server.schemas import compact_schema
from wakecall.server.views import (
    DeleteResult,
    DeliveryPage,
    DeliveryView,
    EventPage,
    FireTime,
    PreviewView,
    RunPage,
    RunView,
    TaskPage,
    TaskView,
    WakeupView,
    delivery_view,
    event_view,
    run_view,
    task_view,
)

if TYPE_CHECKING:
    from wakecall.server.app import Runtime

__all__ = ["register_tools"]

P = ParamSpec("P")
R = TypeVar("R")


# --- structured schedule forms (a plain string works too) ----------------------------------
class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CronIn(_In):
    type: Literal["cron"] = "cron"
    expression: str = Field(description="5 fields, or 6 with seconds first: '0 9 * * MON-FRI'")


class IntervalIn(_In):
    type: Literal["interval"] = "interval"
    every: str = Field(description="e.g. '30m', '1h30m'")
    start: datetime | None = Field(None, description="anchor instant; default: now")


class OnceIn(_In):
    type: Literal["once"] = "once"
    at: datetime | None = Field(None, description="ISO-8601 instant with offset")
    in_: str | None = Field(None, alias="in", description="or a delay such as '5m'")


class DailyIn(_In):
    type: Literal["daily"] = "daily"
    times: list[str] = Field(description="local times, e.g. ['09:00', '17:30']")
    weekdays: list[str] | None = Field(None, description="e.g. ['MON', 'FRI']; default every day")


ScheduleArg = Annotated[
    str | CronIn | IntervalIn | OnceIn | DailyIn,
    Field(
        description=(
            "A string: cron '0 9 * * MON-FRI', '@daily', '@every 30m', 'in 5m', an ISO-8601 "
            "instant, or 'on demand' (no clock fires: run_now, inbound events, depends_on); or "
            'an object such as {"type": "daily", "times": ["09:00"]}'
        )
    ),
]
DurationArg = str | float
ZoneArg = Annotated[str, Field(description="IANA time zone, e.g. 'Europe/Paris'")]


def _schedule_value(value: str | _In) -> str | dict[str, Any]:
    if isinstance(value, str):
        return value
    return value.model_dump(mode="json", by_alias=True, exclude_none=True)


def _tool_errors(fn: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Turn expected failures into tool errors with their message."""

    @wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if "in" in kwargs:  # the SDK passes arguments by their alias; `in` is a keyword
            kwargs["in_"] = kwargs.pop("in")
        try:
            return await fn(*args, **kwargs)
        except ValidationError as exc:
            raise ToolError(str(invalid_input_from(exc))) from exc
        except WakecallError as exc:
            raise ToolError(str(exc)) from exc

    return wrapper


def register_tools(mcp: MCPServer[Any], rt: Runtime) -> None:
    engine = rt.engine
    store = engine.store

    async def with_hint(owner: str, view: Any) -> Any:
        view.hint = await rt.inbox.hint(owner)
        return view

    @mcp.tool(
        title="Create a scheduled task",
        description=(
            "Create a task: a schedule plus an action, with retry, timeout, overlap and catch-up "
            "policies. The time zone defaults to UTC. Each run's result comes back as an event "
            "(get_events), a push to live sessions, and a signed callback to callback_url. "
            "A task may instead run after each success of another (depends_on, no schedule "
            "needed) or on inbound HTTP events (trigger). "
            'Example: {"name": "standup reminder", "schedule": "0 9 * * MON-FRI", '
            '"timezone": "America/New_York", "action": {"type": "wakeup", "reason": "post the '
            'standup summary"}}'
        ),
    )
    @_tool_errors
    async def create_task(
        name: Annotated[str, Field(description="a short label")],
        schedule: Annotated[
            ScheduleArg | None, Field(description="required unless depends_on is given")
        ] = None,
        timezone: ZoneArg = "UTC",
        action: Annotated[
            Action | None,
            Field(description="what a run does; default: wake the agent with the task's name"),
        ] = None,
        retry: RetryPolicy | None = None,
        timeout: Annotated[  # noqa: ASYNC109 - the task's per-attempt timeout, not ours
            DurationArg | None, Field(description="per attempt, e.g. '30s'")
        ] = None,
        overlap: Literal["skip", "queue", "cancel_previous", "allow"] = "skip",
        max_queued: int = 1,
        catchup: Literal["latest", "all", "skip"] = "latest",
        catchup_window: DurationArg = "1h",
        max_runs: int | None = None,
        expires_at: datetime | None = None,
        active: bool = True,
        callback_url: str | None = None,
        metadata: dict[str, Any] | None = None,
        idempotency_key: Annotated[
            str | None, Field(description="a retried call with the same key returns the task")
        ] = None,
        jitter: Annotated[
            DurationArg | None, Field(description="spread fires by up to this much, e.g. '30s'")
        ] = None,
        depends_on: Annotated[
            str | None,
            Field(
                description="run after each success of this task of yours (a chain), with its "
                "run's output as input"
            ),
        ] = None,
        trigger: Annotated[
            TriggerSpec | None,
            Field(
                description="accept inbound events at POST /triggers/{task_id} (the secret is "
                'shown once), e.g. {"per_minute": 60}'
            ),
        ] = None,
        condition: Annotated[
            ConditionSpec | None,
            Field(
                description="an HTTP check before each attempt; "
                '{"proceed": false, "reason": "..."} skips the run, e.g. '
                '{"url": "https://app.example.com/should-run"}'
            ),
        ] = None,
    ) -> TaskView:
        owner = rt.owner()
        if schedule is None and depends_on is None:
            raise InvalidInput(
                "give a schedule, or depends_on for a task that runs after another",
                field="schedule",
                example='"0 9 * * MON-FRI" or "on demand"',
            )
        fields: dict[str, Any] = {
            "name": name,
            "schedule": None if schedule is None else _schedule_value(schedule),
            "depends_on": depends_on,
            "trigger": trigger,
            "condition": condition,
            "timezone": timezone,
            "overlap": overlap,
            "max_queued": max_queued,
            "catchup": catchup,
            "catchup_window": catchup_window,
            "max_runs": max_runs,
            "expires_at": expires_at,
            "active": active,
            "callback_url": callback_url,
            "metadata": metadata or {},
            "idempotency_key": idempotency_key,
        }
        if action is not None:
            fields["action"] = action
        else:
            fields["action"] = {"type": "wakeup", "reason": name}
        for key, value in (("retry", retry), ("timeout", timeout), ("jitter", jitter)):
            if value is not None:
                fields[key] = value
        spec = TaskSpec.model_validate(fields)
        rt.check_action(spec.action)
        rt.check_callback_url(spec.callback_url)
        rt.check_condition(spec.condition)
        task, created = await engine.tasks.create(owner, spec)
        secret = None
        if created:
            if task.callback_url:
                secret = await rt.issue_secret(task.id, rotate=False)
            rt.pusher.changed(owner, task.id)
        trigger_secret = (task.trigger or {}).get("secret") if created else None
        view = task_view(
            task, created=created, callback_secret=secret, trigger_secret=trigger_secret
        )
        return await with_hint(owner, view)

    @mcp.tool(
        title="Get a task",
        description='Show one of your tasks with its next fires. Example: {"task_id": "tsk_01…"}',
    )
    @_tool_errors
    async def get_task(task_id: str) -> TaskView:
        owner = rt.owner()
        task = await engine.tasks.get(owner, task_id)
        return await with_hint(owner, task_view(task))

    @mcp.tool(
        title="List tasks",
        description=(
            "List your tasks, oldest first, 20 a page; filter by status (active, paused, "
            "completed, expired), name (substring), kind (task, wakeup) or metadata (all given "
            'keys equal). Example: {"status": "active", "metadata": {"team": "ops"}}'
        ),
    )
    @_tool_errors
    async def list_tasks(
        status: Literal["active", "paused", "completed", "expired"] | None = None,
        name: str | None = None,
        kind: Literal["task", "wakeup"] | None = None,
        metadata: dict[str, Any] | None = None,
        cursor: Annotated[str | None, Field(description="next_cursor of the previous page")] = None,
        limit: Annotated[int, Field(ge=1, le=100)] = 20,
    ) -> TaskPage:
        owner = rt.owner()
        tasks = await store.list_tasks(
            owner,
            status=None if status is None else TaskStatus(status),
            kind=kind,
            name_contains=name,
            metadata=metadata,
            after=cursor,
            limit=limit + 1,
        )
        page = tasks[:limit]
        nxt = page[-1].id if len(tasks) > limit else None
        return await with_hint(owner, TaskPage(tasks=[task_view(t) for t in page], next_cursor=nxt))

    @mcp.tool(
        title="Change a task",
        description=(
            "Change any mutable field of a task (not only its schedule); the next fire is "
            "recomputed at once. Give only what changes; `clear` resets fields to their "
            "defaults (e.g. ['max_runs', 'timeout']). Example: "
            '{"task_id": "tsk_01…", "schedule": "*/5 * * * *"}'
        ),
    )
    @_tool_errors
    async def patch_schedule(
        task_id: str,
        schedule: ScheduleArg | None = None,
        timezone: ZoneArg | None = None,
        name: str | None = None,
        action: Action | None = None,
        retry: RetryPolicy | None = None,
        timeout: DurationArg | None = None,  # noqa: ASYNC109 - the task's, not ours
        overlap: Literal["skip", "queue", "cancel_previous", "allow"] | None = None,
        max_queued: int | None = None,
        catchup: Literal["latest", "all", "skip"] | None = None,
        catchup_window: DurationArg | None = None,
        max_runs: int | None = None,
        expires_at: datetime | None = None,
        callback_url: str | None = None,
        metadata: dict[str, Any] | None = None,
        jitter: DurationArg | None = None,
        depends_on: Annotated[
            str | None, Field(description="run after each success of this task of yours")
        ] = None,
        trigger: Annotated[
            TriggerSpec | None,
            Field(description="turn inbound events on (or change the limit); a new secret"),
        ] = None,
        condition: Annotated[
            ConditionSpec | None, Field(description="an HTTP check before each attempt")
        ] = None,
        rotate_callback_secret: Annotated[
            bool,
            Field(
                description="issue a new signing secret (shown once); the old one keeps "
                "signing for a grace period"
            ),
        ] = False,
        clear: Annotated[
            list[ClearableField] | None,
            Field(description="fields to reset to their default (none/empty)"),
        ] = None,
    ) -> TaskView:
        owner = rt.owner()
        given: dict[str, Any] = {
            k: v
            for k, v in {
                "schedule": None if schedule is None else _schedule_value(schedule),
                "timezone": timezone,
                "name": name,
                "action": action,
                "retry": retry,
                "timeout": timeout,
                "overlap": overlap,
                "max_queued": max_queued,
                "catchup": catchup,
                "catchup_window": catchup_window,
                "max_runs": max_runs,
                "expires_at": expires_at,
                "callback_url": callback_url,
                "metadata": metadata,
                "jitter": jitter,
                "depends_on": depends_on,
                "trigger": trigger,
                "condition": condition,
            }.items()
            if v is not None
        }
        for name_ in clear or []:
            if name_ in given:
                raise InvalidInput(f"{name_} is both given and cleared; choose one")
            given[name_] = {} if name_ == "metadata" else None
        before = await engine.tasks.get(owner, task_id)
        if rotate_callback_secret and not given:
            given = {"name": before.name}  # a rotation alone changes no field
        patch = TaskPatch.model_validate(given)
        if patch.action is not None:
            rt.check_action(patch.action)
        rt.check_callback_url(patch.callback_url)
        rt.check_condition(patch.condition)
        task = await engine.tasks.patch(owner, task_id, patch)
        secret = None
        if task.callback_url and (rotate_callback_secret or not before.callback_url):
            secret = await rt.issue_secret(task.id, rotate=rotate_callback_secret)
        rt.pusher.changed(owner, task.id)
        trigger_secret = (task.trigger or {}).get("secret") if trigger is not None else None
        view = task_view(task, callback_secret=secret, trigger_secret=trigger_secret)
        return await with_hint(owner, view)

    @mcp.tool(
        title="Pause a task",
        description='Pause a task; no fires until resume. Example: {"task_id": "tsk_01…", '
        '"note": "vendor API down"}',
    )
    @_tool_errors
    async def pause(task_id: str, note: str | None = None) -> TaskView:
        owner = rt.owner()
        task = await engine.tasks.pause(owner, task_id, note)
        rt.pusher.changed(owner, task.id)
        return await with_hint(owner, task_view(task))

    @mcp.tool(
        title="Resume a task",
        description=(
            "Resume a paused task from now: fires missed while paused are not replayed. "
            'Example: {"task_id": "tsk_01…"}'
        ),
    )
    @_tool_errors
    async def resume(task_id: str) -> TaskView:
        owner = rt.owner()
        task = await engine.tasks.resume(owner, task_id)
        rt.pusher.changed(owner, task.id)
        return await with_hint(owner, task_view(task))

    @mcp.tool(
        title="Delete a task",
        description=(
            "Delete a task and its run history (its events stay readable); a running run is "
            'cancelled. Example: {"task_id": "tsk_01…"}'
        ),
    )
    @_tool_errors
    async def delete(task_id: str) -> DeleteResult:
        owner = rt.owner()
        await engine.tasks.delete(owner, task_id)
        rt.pusher.changed(owner, task_id)
        return await with_hint(owner, DeleteResult(deleted=True, id=task_id))

    @mcp.tool(
        title="Run a task now",
        description=(
            "Queue a manual run of a task at once (also when paused); it does not count toward "
            'max_runs. Example: {"task_id": "tsk_01…"}'
        ),
    )
    @_tool_errors
    async def run_now(task_id: str) -> RunView:
        owner = rt.owner()
        run = await engine.tasks.run_now(owner, task_id)
        return run_view(run)

    @mcp.tool(
        title="List runs",
        description=(
            "Runs newest first, 20 a page: all yours, or one task's; filter by status "
            "(queued, running, success, failure, timeout, cancelled, skipped, missed). "
            'Example: {"task_id": "tsk_01…", "status": "failure"}'
        ),
    )
    @_tool_errors
    async def list_runs(
        task_id: str | None = None,
        status: Literal[
            "queued", "running", "success", "failure", "timeout", "cancelled", "skipped", "missed"
        ]
        | None = None,
        cursor: Annotated[str | None, Field(description="next_cursor of the previous page")] = None,
        limit: Annotated[int, Field(ge=1, le=100)] = 20,
    ) -> RunPage:
        owner = rt.owner()
        runs = await store.list_runs(
            owner,
            task_id=task_id,
            status=None if status is None else RunStatus(status),
            before=cursor,
            limit=limit + 1,
        )
        page = runs[:limit]
        nxt = page[-1].id if len(runs) > limit else None
        return await with_hint(owner, RunPage(runs=[run_view(r) for r in page], next_cursor=nxt))

    @mcp.tool(
        title="Wake me later",
        description=(
            "Schedule a durable one-shot that wakes you: give `in` (a delay) or `at` (an "
            "instant), a reason, and any JSON context you want back at wake time. Delays are "
            "kept between the server's bounds (default 10s to 30d). "
            'Example: {"in": "15m", "reason": "check the deploy", "context": {"pr": 42}}'
        ),
    )
    @_tool_errors
    async def schedule_wakeup(
        in_: Annotated[DurationArg | None, Field(alias="in", description="e.g. '15m'")] = None,
        at: datetime | None = None,
        reason: Annotated[str, Field(max_length=2000)] = "",
        context: Annotated[Any, Field(description="any JSON, returned at wake time")] = None,
        dedupe_key: Annotated[
            str | None, Field(description="a second call with the same key returns the first")
        ] = None,
    ) -> WakeupView:
        owner = rt.owner()
        receipt = await engine.tasks.schedule_wakeup(
            owner, delay=in_, at=at, reason=reason, context=context, dedupe_key=dedupe_key
        )
        if receipt.created:
            rt.pusher.changed(owner, receipt.task.id)
        view = WakeupView(
            wakeup_id=receipt.task.id,
            scheduled_for=receipt.scheduled_for,
            scheduled_for_local=receipt.scheduled_for,
            timezone=receipt.task.timezone,
            clamped=receipt.clamped,
            requested_for=receipt.requested,
            reason=reason,
            created=receipt.created,
        )
        return await with_hint(owner, view)

    @mcp.tool(
        title="Cancel a wakeup",
        description='Cancel a pending wakeup. Example: {"wakeup_id": "tsk_01…"}',
    )
    @_tool_errors
    async def cancel_wakeup(wakeup_id: str) -> DeleteResult:
        owner = rt.owner()
        await engine.tasks.cancel_wakeup(owner, wakeup_id)
        rt.pusher.changed(owner, wakeup_id)
        return await with_hint(owner, DeleteResult(deleted=True, id=wakeup_id))

    @mcp.tool(
        title="Read events",
        description=(
            "Read your events (run completed/failed/missed, task expired, wakeup fired) after a "
            "cursor, oldest first. With `wait` (seconds), hold the call until the next event "
            "arrives or the wait ends (long poll). Without `after`, continues from the last "
            'cursor you read. Example: {"after": 41, "wait": 30}'
        ),
    )
    @_tool_errors
    async def get_events(
        after: Annotated[int | None, Field(ge=0)] = None,
        wait: Annotated[float, Field(ge=0, description="seconds to wait for an event")] = 0,
        limit: Annotated[int, Field(ge=1, le=500)] = 50,
    ) -> EventPage:
        owner = rt.owner()
        wait = min(wait, rt.settings.max_wait.total_seconds())
        page = await rt.inbox.read(owner, after=after, wait=wait, limit=limit)
        return EventPage(
            events=[event_view(e) for e in page.events], cursor=page.cursor, more=page.more
        )

    @mcp.tool(
        title="Preview a schedule",
        description=(
            "Show the next fires of a schedule in its time zone and in UTC, with a description, "
            'without creating anything. Example: {"schedule": "0 9 * * MON-FRI", '
            '"timezone": "America/New_York", "count": 5}'
        ),
    )
    @_tool_errors
    async def preview_schedule(
        schedule: ScheduleArg,
        timezone: ZoneArg = "UTC",
        count: Annotated[int, Field(ge=1, le=50)] = 5,
        jitter: DurationArg | None = None,
    ) -> PreviewView:
        now = engine.clock.now()
        parsed = parse_schedule(
            _schedule_value(schedule),
            timezone=timezone,
            now=now,
            jitter=jitter,
            min_interval=engine.config.min_interval,
        )
        shown = preview(parsed, count=count, after=now)
        return PreviewView(
            description=shown.description,
            timezone=shown.timezone,
            fires=[FireTime(local=f.local, utc=f.utc) for f in shown.fires],
        )

    @mcp.tool(
        title="List callback deliveries",
        description=(
            "Webhook callbacks of your tasks, newest first: pending (being retried), delivered, "
            'or failed (dead-lettered, see last_error). Example: {"status": "failed"}'
        ),
    )
    @_tool_errors
    async def list_deliveries(
        status: Literal["pending", "delivered", "failed"] | None = None,
        task_id: str | None = None,
        cursor: Annotated[str | None, Field(description="next_cursor of the previous page")] = None,
        limit: Annotated[int, Field(ge=1, le=100)] = 20,
    ) -> DeliveryPage:
        owner = rt.owner()
        found = await store.list_deliveries(
            owner,
            status=None if status is None else DeliveryStatus(status),
            task_id=task_id,
            before=cursor,
            limit=limit + 1,
        )
        page = found[:limit]
        nxt = page[-1].id if len(found) > limit else None
        view = DeliveryPage(deliveries=[delivery_view(d) for d in page], next_cursor=nxt)
        return await with_hint(owner, view)

    @mcp.tool(
        title="Send a callback again",
        description=(
            "Queue a callback delivery again now (for example a dead-lettered one after the "
            'receiver is fixed); same webhook-id. Example: {"delivery_id": "msg_01…"}'
        ),
    )
    @_tool_errors
    async def redeliver(delivery_id: str) -> DeliveryView:
        owner = rt.owner()
        delivery = await store.redeliver(owner, delivery_id, engine.clock.now())
        rt.callbacks.wake()
        return delivery_view(delivery)

    # Published output schemas in their cheap-to-validate form (see `schemas`). The SDK reads a
    # tool's `fn_metadata.output_schema` live, both to list it and to check results.
    for tool in mcp._tool_manager.list_tools():  # the SDK has no public accessor for this
        meta = tool.fn_metadata
        if meta.output_schema is not None:
            meta.output_schema = compact_schema(meta.output_schema)
