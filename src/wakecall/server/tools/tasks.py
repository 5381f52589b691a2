"""The tools on tasks: create, read, change, pause, resume, delete, run now. Each checks its
arguments, calls the task service and shapes the answer."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AwareDatetime, Field

from wakecall.errors import InvalidInput
from wakecall.models import (
    Action,
    ClearableField,
    ConcurrencySpec,
    ConditionSpec,
    RateLimitSpec,
    RetryPolicy,
    TaskPatch,
    TaskSpec,
    TaskStatus,
    TriggerSpec,
)
from wakecall.server.call_trace import call_trace
from wakecall.server.tools.args import (
    DurationArg,
    MaxQueued,
    MaxRuns,
    PageCursor,
    PageLimit,
    PauseAfterFailures,
    ScheduleArg,
    ZoneArg,
    tool_errors,
)
from wakecall.server.tools.group import ToolGroup, one_page
from wakecall.server.views import (
    BackfillView,
    DeleteResult,
    RunView,
    TaskPage,
    TaskView,
    backfill_view,
    run_view,
    task_view,
)

if TYPE_CHECKING:
    pass

__all__ = ["TaskTools"]

Overlap = Literal["skip", "queue", "cancel_previous", "allow"]
CatchUp = Literal["latest", "all", "skip"]
BackfillOverlapArg = Literal["skip", "queue", "allow"]


class TaskTools(ToolGroup):
    @tool_errors
    async def create_task(
        self,
        name: str,
        schedule: ScheduleArg | None = None,
        timezone: ZoneArg | None = None,
        action: Action | None = None,
        retry: RetryPolicy | None = None,
        timeout: DurationArg | None = None,  # noqa: ASYNC109 - the task's, not ours
        overlap: Overlap = "skip",
        max_queued: MaxQueued = 1,
        catchup: CatchUp = "latest",
        catchup_window: DurationArg = "1h",
        max_runs: MaxRuns | None = None,
        expires_at: AwareDatetime | None = None,
        pause_after_failures: PauseAfterFailures | None = None,
        active: bool = True,
        callback_url: str | None = None,
        metadata: dict[str, Any] | None = None,
        idempotency_key: str | None = None,
        jitter: DurationArg | None = None,
        depends_on: str | None = None,
        trigger: TriggerSpec | None = None,
        condition: ConditionSpec | None = None,
        concurrency: ConcurrencySpec | None = None,
        rate_limit: RateLimitSpec | None = None,
    ) -> TaskView:
        if schedule is None and depends_on is None:
            raise InvalidInput(
                "give a schedule, or depends_on for a task that runs after another",
                field="schedule",
                example='"0 9 * * MON-FRI" or "on demand"',
            )
        fields: dict[str, Any] = {
            "name": name,
            "schedule": schedule,
            "depends_on": depends_on,
            "trigger": trigger,
            "condition": condition,
            "concurrency": concurrency,
            "rate_limit": rate_limit,
            "overlap": overlap,
            "max_queued": max_queued,
            "catchup": catchup,
            "catchup_window": catchup_window,
            "max_runs": max_runs,
            "expires_at": expires_at,
            "pause_after_failures": pause_after_failures,
            "active": active,
            "callback_url": callback_url,
            "metadata": metadata or {},
            "idempotency_key": idempotency_key,
            "action": action if action is not None else {"type": "wakeup", "reason": name},
        }
        # Not given, the zone is the one a calendar rule names (DTSTART;TZID=...), else UTC.
        optional = (("timezone", timezone), ("retry", retry), ("timeout", timeout))
        for key, value in (*optional, ("jitter", jitter)):
            if value is not None:
                fields[key] = value
        owner = self.rt.owner()
        spec = TaskSpec.model_validate(fields)
        made = await self.rt.tasks.create(owner, spec, trace=call_trace())
        if made.created:
            self.rt.pusher.changed(owner, made.task.id)
        view = task_view(
            made.task,
            created=made.created,
            callback_secret=made.callback_secret,
            trigger_secret=made.trigger_secret,
        )
        return await self.hinted(owner, view)

    @tool_errors
    async def get_task(self, task_id: str) -> TaskView:
        owner = self.rt.owner()
        task = await self.rt.tasks.get(owner, task_id)
        waiting = await self.rt.tasks.flow_wait(owner, task_id)
        return await self.hinted(owner, task_view(task, waiting=waiting))

    @tool_errors
    async def list_tasks(
        self,
        status: Literal["active", "paused", "completed", "expired"] | None = None,
        name: str | None = None,
        kind: Literal["task", "wakeup"] | None = None,
        metadata: dict[str, Any] | None = None,
        cursor: PageCursor = None,
        limit: PageLimit = 20,
    ) -> TaskPage:
        owner = self.rt.owner()
        tasks = await self.rt.tasks.list_tasks(
            owner,
            status=None if status is None else TaskStatus(status),
            kind=kind,
            name_contains=name,
            metadata=metadata,
            after=cursor,
            limit=limit + 1,
        )
        page, nxt = one_page(tasks, limit)
        view = TaskPage(tasks=[task_view(t) for t in page], next_cursor=nxt)
        return await self.hinted(owner, view)

    @tool_errors
    async def patch_schedule(
        self,
        task_id: str,
        schedule: ScheduleArg | None = None,
        timezone: ZoneArg | None = None,
        name: str | None = None,
        action: Action | None = None,
        retry: RetryPolicy | None = None,
        timeout: DurationArg | None = None,  # noqa: ASYNC109 - the task's, not ours
        overlap: Overlap | None = None,
        max_queued: MaxQueued | None = None,
        catchup: CatchUp | None = None,
        catchup_window: DurationArg | None = None,
        max_runs: MaxRuns | None = None,
        expires_at: AwareDatetime | None = None,
        pause_after_failures: PauseAfterFailures | None = None,
        callback_url: str | None = None,
        metadata: dict[str, Any] | None = None,
        jitter: DurationArg | None = None,
        depends_on: str | None = None,
        trigger: TriggerSpec | None = None,
        condition: ConditionSpec | None = None,
        concurrency: ConcurrencySpec | None = None,
        rate_limit: RateLimitSpec | None = None,
        rotate_callback_secret: bool = False,
        clear: list[ClearableField] | None = None,
    ) -> TaskView:
        given: dict[str, Any] = {
            "schedule": schedule,
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
            "pause_after_failures": pause_after_failures,
            "callback_url": callback_url,
            "metadata": metadata,
            "jitter": jitter,
            "depends_on": depends_on,
            "trigger": trigger,
            "condition": condition,
            "concurrency": concurrency,
            "rate_limit": rate_limit,
        }
        given = {k: v for k, v in given.items() if v is not None}
        for cleared in clear or []:
            if cleared in given:
                raise InvalidInput(
                    f"{cleared} is both given and cleared; choose one",
                    field=cleared,
                    example=f'{{"clear": ["{cleared}"]}}',
                )
            given[cleared] = {} if cleared == "metadata" else None
        owner = self.rt.owner()
        changed = await self.rt.tasks.patch(
            owner,
            task_id,
            TaskPatch.model_validate(given),
            rotate_callback_secret=rotate_callback_secret,
        )
        self.rt.pusher.changed(owner, changed.task.id)
        view = task_view(
            changed.task,
            callback_secret=changed.callback_secret,
            trigger_secret=changed.trigger_secret,
        )
        return await self.hinted(owner, view)

    @tool_errors
    async def pause(self, task_id: str, note: str | None = None) -> TaskView:
        owner = self.rt.owner()
        task = await self.rt.tasks.pause(owner, task_id, note)
        self.rt.pusher.changed(owner, task.id)
        return await self.hinted(owner, task_view(task))

    @tool_errors
    async def resume(self, task_id: str) -> TaskView:
        owner = self.rt.owner()
        task = await self.rt.tasks.resume(owner, task_id)
        self.rt.pusher.changed(owner, task.id)
        return await self.hinted(owner, task_view(task))

    @tool_errors
    async def delete(self, task_id: str) -> DeleteResult:
        owner = self.rt.owner()
        await self.rt.tasks.delete(owner, task_id)
        self.rt.pusher.changed(owner, task_id)
        return await self.hinted(owner, DeleteResult(deleted=True, id=task_id))

    @tool_errors
    async def backfill(
        self,
        task_id: str,
        from_: Annotated[AwareDatetime, Field(alias="from")],
        to: AwareDatetime,
        overlap: BackfillOverlapArg = "queue",
        dry_run: bool = False,
    ) -> BackfillView:
        owner = self.rt.owner()
        receipt = await self.rt.tasks.backfill(
            owner,
            task_id,
            start=from_,
            end=to,
            overlap=overlap,
            dry_run=dry_run,
            trace=call_trace(),
        )
        return await self.hinted(owner, backfill_view(receipt))

    @tool_errors
    async def run_now(self, task_id: str) -> RunView:
        run = await self.rt.tasks.run_now(self.rt.owner(), task_id, trace=call_trace())
        return run_view(run)
