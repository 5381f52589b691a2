"""W3C trace context (https://www.w3.org/TR/trace-context/): the `traceparent` and `tracestate`
a client sends with a request, checked as the specification says, and the child contexts of
the runs a request starts.

A `traceparent` is `version-traceid-parentid-flags` in lowercase hex: `00-` then 32 digits of
trace id, 16 of parent id and 2 of flags. One that does not parse is ignored, never refused:
the request goes on without a trace context, as the specification asks of a receiver. A
`tracestate` is kept only beside a valid `traceparent`, and dropped whole when malformed.

No I/O and no dependency: the OpenTelemetry side is in `wakecall.spans`.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "TraceContext",
    "new_parent_id",
    "parse_trace",
    "stored_trace",
    "trace_columns",
    "trace_from_carrier",
]

_HEX = "[0-9a-f]"
#: Version 00 is exactly this; a later version starts so, and may go on after a dash.
_TRACEPARENT = re.compile(rf"({_HEX}{{2}})-({_HEX}{{32}})-({_HEX}{{16}})-({_HEX}{{2}})")
_INVALID_VERSION = "ff"
_ZERO_TRACE_ID = "0" * 32
_ZERO_PARENT_ID = "0" * 16
#: Flags a version above 00 may carry that version 00 knows: only `sampled`.
_SAMPLED = 0x01

_KEY_CHARS = r"[a-z0-9_\-*/]"
_TRACESTATE_KEY = re.compile(
    rf"[a-z]{_KEY_CHARS}{{0,255}}|[a-z0-9]{_KEY_CHARS}{{0,240}}@[a-z]{_KEY_CHARS}{{0,13}}"
)
_TRACESTATE_VALUE = re.compile(r"[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]")
_MAX_MEMBERS = 32
#: What is propagated of a longer tracestate (the least every vendor must pass on), cut as the
#: specification says: members over `_LONG_MEMBER` characters go first, then from the end.
_MAX_TRACESTATE = 512
_LONG_MEMBER = 128


@dataclass(frozen=True, slots=True)
class TraceContext:
    """A valid trace context: `traceparent` in version 00, `tracestate` as received (or None)."""

    traceparent: str
    tracestate: str | None = None

    @property
    def trace_id(self) -> str:
        return self.traceparent[3:35]

    @property
    def parent_id(self) -> str:
        return self.traceparent[36:52]

    @property
    def flags(self) -> int:
        return int(self.traceparent[53:55], 16)

    def child(self) -> TraceContext:
        """The same trace, flags and state under a new parent id: what one run of a task
        carries, so that each run is told apart in the task's trace."""
        return TraceContext(
            f"00-{self.trace_id}-{new_parent_id()}-{self.traceparent[53:55]}", self.tracestate
        )

    def headers(self) -> dict[str, str]:
        """The HTTP headers that carry it."""
        out = {"traceparent": self.traceparent}
        if self.tracestate:
            out["tracestate"] = self.tracestate
        return out


def new_parent_id() -> str:
    """A random parent (span) id: 16 lowercase hex digits, never all zeros."""
    while True:
        value = secrets.token_hex(8)
        if value != _ZERO_PARENT_ID:
            return value


def parse_trace(traceparent: object, tracestate: object = None) -> TraceContext | None:
    """The trace context of a `traceparent` and a `tracestate` as received; None when the
    `traceparent` is missing or malformed (a malformed `tracestate` alone is dropped)."""
    parent = _traceparent(traceparent)
    if parent is None:
        return None
    return TraceContext(parent, _tracestate(tracestate))


def trace_from_carrier(carrier: Mapping[str, Any] | None) -> TraceContext | None:
    """The trace context of a request's `_meta` (keys `traceparent`, `tracestate`)."""
    if not carrier:
        return None
    return parse_trace(carrier.get("traceparent"), carrier.get("tracestate"))


def stored_trace(traceparent: str | None, tracestate: str | None) -> TraceContext | None:
    """The trace context a record keeps (checked when it was received), or None."""
    return None if traceparent is None else TraceContext(traceparent, tracestate)


def trace_columns(trace: TraceContext | None) -> tuple[str | None, str | None]:
    """The two values a store keeps of a trace context: (traceparent, tracestate)."""
    return (None, None) if trace is None else (trace.traceparent, trace.tracestate)


def _traceparent(value: object) -> str | None:
    """`value` as a version-00 traceparent, or None when it is not a valid one. A later
    version is read as far as version 00 goes, keeping only the flags 00 knows."""
    if not isinstance(value, str):
        return None
    match = _TRACEPARENT.match(value)
    if match is None:
        return None
    version, trace_id, parent_id, flags = match.groups()
    if version == _INVALID_VERSION or trace_id == _ZERO_TRACE_ID or parent_id == _ZERO_PARENT_ID:
        return None
    if version == "00":
        return value if len(value) == 55 else None
    if len(value) > 55 and value[55] != "-":
        return None
    return f"00-{trace_id}-{parent_id}-{int(flags, 16) & _SAMPLED:02x}"


def _tracestate(value: object) -> str | None:
    """`value` as a tracestate to pass on (list members joined by commas, cut to 512
    characters), or None when it is absent, empty or malformed."""
    if not isinstance(value, str):
        return None
    members = [m.strip(" \t") for m in value.split(",")]
    members = [m for m in members if m]
    if not members or len(members) > _MAX_MEMBERS:
        return None
    keys = set()
    for member in members:
        key, sep, state = member.partition("=")
        if not sep or not _TRACESTATE_KEY.fullmatch(key) or not _TRACESTATE_VALUE.fullmatch(state):
            return None
        if key in keys:
            return None
        keys.add(key)
    return _cut(members)


def _cut(members: list[str]) -> str | None:
    """The members joined, at most `_MAX_TRACESTATE` characters: members longer than
    `_LONG_MEMBER` are dropped first, then the others, from the end."""
    kept = list(members)
    while len(",".join(kept)) > _MAX_TRACESTATE:
        long = [i for i, member in enumerate(kept) if len(member) > _LONG_MEMBER]
        kept.pop(long[-1] if long else -1)
    return ",".join(kept) or None
