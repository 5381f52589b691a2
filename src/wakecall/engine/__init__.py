"""The engine: the scheduler loop and the runner (`Engine`), and the task operations
(`TaskService`) with every check they make (`checks`)."""

from __future__ import annotations

from wakecall.config import EngineConfig
from wakecall.engine.schedule_cache import schedule_of
from wakecall.engine.scheduler import Engine, RunListener, RunNews
from wakecall.engine.service import Changed, Created, SchedulerLink, TaskService, WakeupReceipt

__all__ = [
    "Changed",
    "Created",
    "Engine",
    "EngineConfig",
    "RunListener",
    "RunNews",
    "SchedulerLink",
    "TaskService",
    "WakeupReceipt",
    "schedule_of",
]
