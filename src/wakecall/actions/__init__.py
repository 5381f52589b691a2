"""Actions: what a run does."""

from __future__ import annotations

from wakecall.actions.base import (
    ActionContext,
    ActionFailed,
    Executor,
    Executors,
    InstantExecutor,
)
from wakecall.actions.noop import NoopExecutor
from wakecall.actions.wakeup import WakeupExecutor

__all__ = [
    "ActionContext",
    "ActionFailed",
    "Executor",
    "Executors",
    "InstantExecutor",
    "NoopExecutor",
    "WakeupExecutor",
    "default_executors",
]


def default_executors() -> dict[str, Executor]:
    """The executors that need no outside resources."""
    return {"noop": NoopExecutor(), "wakeup": WakeupExecutor()}
