"""Deterministic jitter: spread fires that share an instant without any randomness to store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from hashlib import blake2b

from .base import Schedule
from .timeline import EPOCH

__all__ = ["jittered"]

_MICROSECOND = timedelta(microseconds=1)


def jittered(
    schedule: Schedule, task_id: str, fire: datetime, next_fire: datetime | None
) -> datetime:
    """The instant to run ``fire`` of task ``task_id``: ``fire`` plus an offset in
    ``[0, schedule.jitter)`` derived from a hash of the task id and the fire, so every node
    computes the same instant. Never earlier than ``fire``; strictly earlier than
    ``next_fire`` when there is one. Returned in UTC."""
    fire = fire.astimezone(UTC)
    span = schedule.jitter
    if not span:
        return fire
    if next_fire is not None:
        span = min(span, next_fire - fire)
    span_us = span // _MICROSECOND
    if span_us <= 1:
        return fire
    key = f"{task_id}\x00{(fire - EPOCH) // _MICROSECOND}".encode()
    digest = int.from_bytes(blake2b(key, digest_size=8).digest(), "big")
    return fire + timedelta(microseconds=(digest * span_us) >> 64)
