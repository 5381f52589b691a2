"""The operator's policy on what tasks may do: which kinds of action this server runs, which
outgoing URLs it calls (`--allow-outbound`) and which commands it runs (`--commands`).

`TaskService` applies it to every task it creates or changes, whoever asks (a tool, the command
line, a task file, a library user), so a task the server would refuse to run is never stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pydantic import BaseModel

from wakecall.actions.command import CommandPolicy, validate_command
from wakecall.actions.webhook import validate_webhook
from wakecall.errors import InvalidInput
from wakecall.models import CommandAction, ConditionSpec, TaskPatch, TaskSpec, WebhookAction
from wakecall.net import OutboundPolicy, check_url

__all__ = ["ACTION_TYPES", "ActionPolicy"]

#: Every kind of action wakecall knows.
ACTION_TYPES = frozenset({"wakeup", "noop", "webhook", "command"})


@dataclass(frozen=True)
class ActionPolicy:
    """What the operator allows. The default allows public URLs only and no commands."""

    outbound: OutboundPolicy = field(default_factory=OutboundPolicy)
    commands: CommandPolicy = field(default_factory=CommandPolicy)
    #: The kinds of action this server can run (those it has an executor for).
    runnable: frozenset[str] = ACTION_TYPES

    def with_runnable(self, kinds: Iterable[str]) -> ActionPolicy:
        return ActionPolicy(self.outbound, self.commands, frozenset(kinds))

    def check_action(self, action: BaseModel) -> str | None:
        """Refuse an action this server would not run; for a command, the executable it
        would run. Raises `InvalidInput` saying what the operator can allow."""
        kind = getattr(action, "type", None)
        if kind not in self.runnable:
            raise InvalidInput(
                f"this server cannot run {kind!r} actions; it runs: "
                f"{', '.join(sorted(self.runnable))}",
                field="action.type",
                example='{"type": "wakeup", "reason": "check the deploy"}',
            )
        if isinstance(action, WebhookAction):
            validate_webhook(action, self.outbound)
        elif isinstance(action, CommandAction):
            return validate_command(action, self.commands)
        return None

    def check_callback_url(self, url: str | None) -> None:
        if url is not None:
            check_url(url, self.outbound, field="callback_url")

    def check_condition(self, condition: ConditionSpec | None) -> None:
        if condition is not None:
            check_url(condition.url, self.outbound, field="condition.url")

    def check_spec(self, spec: TaskSpec) -> None:
        """Every part of a new task the policy governs."""
        self.check_action(spec.action)
        self.check_callback_url(spec.callback_url)
        self.check_condition(spec.condition)

    def check_patch(self, patch: TaskPatch) -> None:
        """Every part of a change the policy governs (fields not given are not checked)."""
        if patch.action is not None:
            self.check_action(patch.action)
        self.check_callback_url(patch.callback_url)
        self.check_condition(patch.condition)
