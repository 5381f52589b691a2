"""The engine: the scheduler loop, the runner, and the task operations built on them."""

from __future__ import annotations

from wakecall.engine.config import EngineConfig
from wakecall.engine.scheduler import Engine, EventListener, RunListener, RunNews, schedule_of
from wakecall.engine.service import TaskService, WakeupReceipt

__all__ = [
    "Engine",
    "EngineConfig",
    "EventListener",
    "RunListener",
    "RunNews",
    "TaskService",
    "WakeupReceipt",
    "schedule_of",
]
