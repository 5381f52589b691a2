"""Durations as people and agents write them: "30s", "5m", "1h30m", "250ms", "1.5s", 90."""

from __future__ import annotations

import math
import re
from datetime import timedelta

from wakecall.errors import InvalidInput

__all__ = ["MAX_DURATION_SECONDS", "format_duration", "parse_duration"]

DURATION_EXAMPLE = '"30s", "5m", "1h30m", "250ms" or a number of seconds such as 90'

_MAX_TEXT = 100

_UNIT_MICROSECONDS = {
    "us": 1,
    "µs": 1,
    "ms": 1_000,
    "s": 1_000_000,
    "sec": 1_000_000,
    "secs": 1_000_000,
    "second": 1_000_000,
    "seconds": 1_000_000,
    "m": 60_000_000,
    "min": 60_000_000,
    "mins": 60_000_000,
    "minute": 60_000_000,
    "minutes": 60_000_000,
    "h": 3_600_000_000,
    "hr": 3_600_000_000,
    "hrs": 3_600_000_000,
    "hour": 3_600_000_000,
    "hours": 3_600_000_000,
    "d": 86_400_000_000,
    "day": 86_400_000_000,
    "days": 86_400_000_000,
    "w": 604_800_000_000,
    "week": 604_800_000_000,
    "weeks": 604_800_000_000,
}

# One part is a number and a unit; parts may be separated by spaces ("1h 30m").
_PART = re.compile(r"\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-zµ]+)\s*")
_PLAIN_NUMBER = re.compile(r"\s*(\d+(?:\.\d+)?|\.\d+)\s*")

#: Largest duration accepted, 100 years (timedelta itself stops at 999,999,999 days).
MAX_DURATION_SECONDS = 100 * 365 * 86_400
_MAX_MICROSECONDS = MAX_DURATION_SECONDS * 1_000_000


def parse_duration(value: str | int | float | timedelta, *, field: str = "duration") -> timedelta:
    """Read a duration.

    Accepts a ``timedelta``, a number of seconds (int, float or numeric text), or text made of
    number+unit parts: ``us``, ``ms``, ``s``, ``m``, ``h``, ``d``, ``w`` (long names such as
    ``minutes`` work too), as in ``"1h30m"`` or ``"1.5s"``. Raises ``InvalidInput`` naming
    ``field`` for negative, empty, non-finite or unreadable values, and for durations above
    100 years.
    """
    return read_duration(value, field, InvalidInput)


#: Texts read so far, a few of which ("5m", "30s") come back again and again; refusals are
#: not kept (they name the field).
_TEXTS_READ: dict[str, timedelta] = {}


def read_duration(value: object, field: str, error: type[InvalidInput]) -> timedelta:
    """``parse_duration`` raising ``error`` (a subclass of ``InvalidInput``) instead."""
    if isinstance(value, timedelta):
        if value < timedelta(0):
            raise error(
                f"must not be negative, got {format_duration(value)}.",
                field=field,
                example=DURATION_EXAMPLE,
            )
        return _bounded(value // timedelta(microseconds=1), field, error)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise error(
            f"must be a duration, got {type(value).__name__}.",
            field=field,
            example=DURATION_EXAMPLE,
        )
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise error(
                f"must be a finite number of seconds, got {value!r}.",
                field=field,
                example=DURATION_EXAMPLE,
            )
        if value < 0:
            raise error(
                f"must not be negative, got {value!r}.", field=field, example=DURATION_EXAMPLE
            )
        if value > _MAX_MICROSECONDS // 1_000_000:
            return _bounded(_MAX_MICROSECONDS + 1, field, error)
        return _bounded(round(value * 1_000_000), field, error)
    found = _TEXTS_READ.get(value)
    if found is None:
        found = _parse_text(value, field, error)
        if len(_TEXTS_READ) < 1024:
            _TEXTS_READ[value] = found
    return found


def _parse_text(text: str, field: str, error: type[InvalidInput]) -> timedelta:
    if len(text) > _MAX_TEXT:
        raise error(
            f"is {len(text)} characters long; a duration is at most {_MAX_TEXT}.",
            field=field,
            example=DURATION_EXAMPLE,
        )
    stripped = text.strip()
    if not stripped:
        raise error("is empty.", field=field, example=DURATION_EXAMPLE)
    if stripped.startswith("-"):
        raise error(f"must not be negative, got {text!r}.", field=field, example=DURATION_EXAMPLE)
    plain = _PLAIN_NUMBER.fullmatch(stripped)
    if plain:
        return _bounded(round(float(plain.group(1)) * 1_000_000), field, error)
    total = 0
    position = 0
    lowered = stripped.lower()
    while position < len(lowered):
        part = _PART.match(lowered, position)
        if part is None or part.group(2) not in _UNIT_MICROSECONDS:
            raise error(
                f"could not read {text!r} as a duration.",
                field=field,
                example=DURATION_EXAMPLE,
            )
        number, unit = part.groups()
        total += round(float(number) * _UNIT_MICROSECONDS[unit])
        position = part.end()
    return _bounded(total, field, error)


def _bounded(microseconds: int, field: str, error: type[InvalidInput]) -> timedelta:
    if microseconds > _MAX_MICROSECONDS:
        raise error("is longer than 100 years.", field=field, example=DURATION_EXAMPLE)
    return timedelta(microseconds=microseconds)


_FORMAT_UNITS = (
    ("d", 86_400_000_000),
    ("h", 3_600_000_000),
    ("m", 60_000_000),
    ("s", 1_000_000),
    ("ms", 1_000),
    ("us", 1),
)


def format_duration(value: timedelta) -> str:
    """Write a duration compactly, as parse_duration reads it: "1h30m", "45s", "250ms"."""
    microseconds = value // timedelta(microseconds=1)
    if microseconds == 0:
        return "0s"
    sign = "-" if microseconds < 0 else ""
    remaining = abs(microseconds)
    parts = []
    for unit, size in _FORMAT_UNITS:
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return sign + "".join(parts)


def describe_duration(value: timedelta) -> str:
    """Words for a duration: "30 minutes", "hour", "1 hour 30 minutes" (used after "every")."""
    microseconds = value // timedelta(microseconds=1)
    names = (
        ("day", 86_400_000_000),
        ("hour", 3_600_000_000),
        ("minute", 60_000_000),
        ("second", 1_000_000),
        ("millisecond", 1_000),
        ("microsecond", 1),
    )
    parts = []
    remaining = abs(microseconds)
    for name, size in names:
        count, remaining = divmod(remaining, size)
        if count:
            parts.append((count, name))
    if not parts:
        return "0 seconds"
    if len(parts) == 1 and parts[0][0] == 1:
        return parts[0][1]
    return " ".join(f"{count} {name}{'' if count == 1 else 's'}" for count, name in parts)
