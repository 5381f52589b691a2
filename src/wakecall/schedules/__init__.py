"""Pure schedule math: parse and validate every schedule kind, find the next and the previous
fire, apply the DST policy and deterministic jitter, describe a schedule in words.

No I/O and no clock: ``now`` is always a parameter.

Cron arithmetic is our own rather than croniter wrapped. Cron expressions compile once into
per-field lookup tables (cached by text), and a match is found by jumping field by field, never
tick by tick. DST is handled on a timeline of UTC offsets per zone (``timeline.py``): fixed-time
jobs keep their local time (once when clocks go back, at the end of the gap when they jump
forward), jobs with ``*`` in the hour or minute follow real time. croniter alone fires some daily
jobs twice on a fall-back day, and a fixing wrapper around it would re-derive most of this
anyway; owning the matcher makes the policy exact, makes ``latest_at_or_before`` one step back,
and is faster: measured on a 2-core machine with Python 3.11, ``next_after`` runs at about
{SPEED} calls/s for typical expressions in a DST zone. cronsim serves as the independent
oracle in the tests.
"""

from __future__ import annotations

from .base import Schedule
from .durations import format_duration, parse_duration
from .jitter import jittered
from .kinds import CronSchedule, DailySchedule, IntervalSchedule, OnceSchedule
from .parse import parse_schedule, schedule_from_spec
from .preview import Preview, PreviewFire, preview

__all__ = [
    "CronSchedule",
    "DailySchedule",
    "IntervalSchedule",
    "OnceSchedule",
    "Preview",
    "PreviewFire",
    "Schedule",
    "format_duration",
    "jittered",
    "parse_duration",
    "parse_schedule",
    "preview",
    "schedule_from_spec",
]
