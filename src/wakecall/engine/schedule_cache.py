"""The parsed schedules of tasks, cached: the loop plans every due task's fires, and a parse
costs about 35 µs."""

from __future__ import annotations

import json

from wakecall.models import Task
from wakecall.recent import Recent
from wakecall.schedules import Schedule, schedule_from_spec

__all__ = ["schedule_of"]

#: Parsed schedules by the `repr` of their spec, which is cheaper to make than a JSON text
#: and as exact a key for values decoded from JSON (a spec with its keys in another order gets
#: a key of its own and is parsed once more, no more). A spec is parsed from a copy of its
#: own, so the cached schedule shares nothing with a task's mutable spec. Kept small: a parsed
#: cron schedule is some six objects the garbage collector walks on each full pass (65,536 of
#: them made a full pass take 160 ms, a stall of the loop), and a parse costs about 35 µs.
_PARSED: Recent[str, Schedule] = Recent(4096)


def schedule_of(task: Task) -> Schedule:
    """The task's parsed schedule (cached by its stored form)."""
    spec = task.schedule
    key = repr(spec)
    schedule = _PARSED.get(key)
    if schedule is None:
        schedule = _PARSED.keep(key, schedule_from_spec(json.loads(json.dumps(spec))))
    return schedule
