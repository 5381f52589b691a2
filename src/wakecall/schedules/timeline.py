"""Time zones as a timeline of UTC offsets, and the DST policy that turns wall times into fires.

Everything here counts whole seconds: an *instant* is seconds since 1970-01-01 UTC, a *wall*
time is the same count on a zone's local clock (instant + UTC offset). A *pattern* (a compiled
cron expression or a daily time list) answers "first matching wall time at or after w" and
"last matching wall time at or before w"; this module turns those into instants under one of
two policies:

- **fixed** (a job at a fixed local time): each matching wall time fires once, at its first
  occurrence (``fold=0``) when clocks go back; a wall time skipped because clocks jump forward
  fires at the first valid instant after the gap (the transition itself).
- **real** (a job with ``*`` in its hour or minute): fires at every instant whose local wall
  time matches, so a repeated hour fires twice and a skipped one not at all.

UTC offsets come from ``zoneinfo``. To know where they change, the offsets of each stretch of
2**25 seconds (~388 days) are sampled once a day and the changes located to the second by
bisection, then cached per zone. Two changes within the same day that cancel each other out
would be missed; the tz database has no such pair in modern times.
"""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from wakecall.errors import UnknownTimeZone

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
ONE_SECOND = timedelta(seconds=1)
DAY = 86_400

# Searches give up this far from their starting point (cronsim gives up after 50 years too);
# a pattern with no match that far out is reported as never firing.
HORIZON = 50 * 366 * DAY
# datetime stops at years 1 and 9999; fires are found between these, clear of the edges.
MIN_INSTANT = (date(3, 1, 1).toordinal() - EPOCH_ORDINAL) * DAY
MAX_INSTANT = (date(9997, 1, 1).toordinal() - EPOCH_ORDINAL) * DAY

_CHUNK_BITS = 25
_CHUNK = 1 << _CHUNK_BITS


class Pattern(Protocol):
    """Matching wall times, counted in whole seconds on the local clock."""

    def next_match(self, wall: int, limit: int) -> int | None:
        """The first matching wall time ``t`` with ``wall <= t < limit``, else None."""
        ...

    def prev_match(self, wall: int, limit: int) -> int | None:
        """The last matching wall time ``t`` with ``limit <= t <= wall``, else None."""
        ...


def load_zone(name: str) -> ZoneInfo:
    """The ``ZoneInfo`` for an IANA name; ``UnknownTimeZone`` when there is none."""
    if not isinstance(name, str) or not name or len(name) > 64:
        raise UnknownTimeZone(str(name)[:80])
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError, TypeError):
        raise UnknownTimeZone(name) from None


def to_instant(moment: datetime) -> int:
    """Whole seconds since the epoch, rounded down; ``moment`` must be aware."""
    return (moment - EPOCH) // ONE_SECOND


def from_instant(instant: int) -> datetime:
    return EPOCH + timedelta(seconds=instant)


class Timeline:
    """The UTC offsets of one zone over time, with the instants where they change."""

    def __init__(self, zone: ZoneInfo):
        self.zone = zone
        # chunk index -> (offset at chunk start, ((transition instant, new offset), ...))
        self._chunks: dict[int, tuple[int, tuple[tuple[int, int], ...]]] = {}

    def _offset(self, instant: int) -> int:
        offset = datetime.fromtimestamp(instant, self.zone).utcoffset()
        assert offset is not None
        return offset // ONE_SECOND

    def _chunk(self, index: int) -> tuple[int, tuple[tuple[int, int], ...]]:
        cached = self._chunks.get(index)
        if cached is not None:
            return cached
        offset_at = self._offset
        start = index << _CHUNK_BITS
        first = offset_at(start)
        changes: list[tuple[int, int]] = []
        if offset_at(start - 1) != first:
            changes.append((start, first))
        # probe once a day, then bisect each probe interval whose offsets differ
        probes = [*range(start + DAY, start + _CHUNK, DAY), start + _CHUNK - 1]
        previous, previous_offset = start, first
        for probe in probes:
            probe_offset = offset_at(probe)
            while probe_offset != previous_offset:
                low, high = previous, probe  # offset_at(low) == previous_offset != at high
                while high - low > 1:
                    middle = (low + high) // 2
                    if offset_at(middle) == previous_offset:
                        low = middle
                    else:
                        high = middle
                previous, previous_offset = high, offset_at(high)
                changes.append((previous, previous_offset))
            previous = probe
        chunk = (first, tuple(changes))
        self._chunks[index] = chunk
        return chunk

    def offset_at(self, instant: int) -> int:
        first, changes = self._chunk(instant >> _CHUNK_BITS)
        offset = first
        for at, new in changes:
            if at > instant:
                break
            offset = new
        return offset

    def segment_forward(self, instant: int) -> tuple[int, int]:
        """``(offset, end)``: the offset at ``instant``, constant until ``end`` (exclusive).

        ``end`` is the next change or the end of the cached stretch, whichever comes first.
        """
        index = instant >> _CHUNK_BITS
        offset, changes = self._chunk(index)
        for at, new in changes:
            if at > instant:
                return offset, at
            offset = new
        return offset, (index + 1) << _CHUNK_BITS

    def segment_back(self, instant: int) -> tuple[int, int]:
        """``(offset, start)``: the offset at ``instant``, constant since ``start`` (inclusive)."""
        index = instant >> _CHUNK_BITS
        offset, changes = self._chunk(index)
        start = index << _CHUNK_BITS
        for at, new in changes:
            if at > instant:
                break
            offset, start = new, at
        return offset, start

    def changes_between(self, low: int, high: int) -> tuple[int, list[tuple[int, int]]]:
        """The offset at ``low`` and every change in ``(low, high]``."""
        offset = self.offset_at(low)
        found: list[tuple[int, int]] = []
        for index in range(low >> _CHUNK_BITS, (high >> _CHUNK_BITS) + 1):
            for at, new in self._chunk(index)[1]:
                if low < at <= high:
                    found.append((at, new))
        return offset, found

    def last_change(self, instant: int) -> tuple[int, int, int] | None:
        """``(at, offset before, offset after)`` of the last change at or before ``instant``,
        looking back at least one stretch (~388 days); None when there is none that recent."""
        index = instant >> _CHUNK_BITS
        first, changes = self._chunk(index)
        found = None
        before = None
        for at, new in changes:
            if at > instant:
                break
            found, before = (at, new), first if found is None else found[1]
        if found is None:
            previous_first, previous = self._chunk(index - 1)
            if not previous:
                return None
            found = previous[-1]
            before = previous[-2][1] if len(previous) > 1 else previous_first
            if found[0] == (index - 1) << _CHUNK_BITS:
                before = self._offset(found[0] - 1)
        elif found == changes[0] and found[0] == index << _CHUNK_BITS:
            before = self._offset(found[0] - 1)
        assert before is not None
        return found[0], before, found[1]

    def fold0_instant(self, wall: int) -> int:
        """The instant a fixed-time job set for ``wall`` fires: the first instant showing that
        wall time, or, when clocks skip over it, the instant the clocks jump."""
        low = wall - 2 * DAY
        offset, changes = self.changes_between(low, wall + 2 * DAY)
        if not changes:
            return wall - offset
        start = low
        for at, new in changes:
            # segment [start, at) with `offset`
            if wall < start + offset:
                return start
            if wall < at + offset:
                return wall - offset
            start, offset = at, new
        if wall < start + offset:
            return start
        return wall - offset


_timelines: dict[str, Timeline] = {}
_timelines_lock = threading.Lock()


def timeline_for(name: str) -> Timeline | None:
    """The offset timeline of a zone, or None for UTC (where wall time is the instant)."""
    if name == "UTC":
        return None
    if not isinstance(name, str):
        raise UnknownTimeZone(repr(name)[:80])
    timeline = _timelines.get(name)
    if timeline is None:
        zone = load_zone(name)
        with _timelines_lock:
            timeline = _timelines.setdefault(name, Timeline(zone))
    return timeline


def _repeat_end(change: tuple[int, int, int] | None, instant: int) -> int | None:
    """The wall time ending the repeated stretch ``instant`` is the second pass of, or None."""
    if change is None:
        return None
    at, before, after = change
    if before > after and instant < at + (before - after):
        return at + before
    return None


def next_fire(pattern: Pattern, timeline: Timeline | None, fixed: bool, after: int) -> int | None:
    """The first fire instant strictly after the instant ``after``, or None within the horizon."""
    after = max(after, MIN_INSTANT - 1)
    start = after + 1
    horizon = min(start + HORIZON, MAX_INSTANT)
    if start >= horizon:
        return None
    if timeline is None:
        return pattern.next_match(start, horizon)
    if fixed:
        offset, end = timeline.segment_forward(after)
        repeat_end = _repeat_end(timeline.last_change(after), after)
        low = repeat_end if repeat_end is not None else start + offset
        wall = pattern.next_match(low, horizon + DAY)
        if wall is None:
            return None
        if wall - offset < end:
            # same offset as `after`, past any repeated stretch: the wall time's only instant
            return wall - offset
        return timeline.fold0_instant(wall)
    low = start
    while low < horizon:
        offset, end = timeline.segment_forward(low)
        end = min(end, horizon)
        wall = pattern.next_match(low + offset, end + offset)
        if wall is not None:
            return wall - offset
        low = end
    return None


def latest_fire(pattern: Pattern, timeline: Timeline | None, fixed: bool, at: int) -> int | None:
    """The last fire instant at or before the instant ``at``, or None within the horizon."""
    at = min(at, MAX_INSTANT)
    floor = max(at - HORIZON, MIN_INSTANT)
    if at < floor:
        return None
    if timeline is None:
        return pattern.prev_match(at, floor)
    if fixed:
        change = timeline.last_change(at)
        offset = change[2] if change is not None else timeline.offset_at(at)
        repeat_end = _repeat_end(change, at)
        high = repeat_end - 1 if repeat_end is not None else at + offset
        wall = pattern.prev_match(high, floor - DAY)
        if wall is None:
            return None
        instant = wall - offset
        # without a recent change the offset has held since at least the previous stretch
        since = change[0] if change is not None else ((at >> _CHUNK_BITS) - 1) << _CHUNK_BITS
        if instant >= since and _repeat_end(change, instant) is None:
            # same offset as `at`, and not the second pass of a repeated stretch
            return instant
        return timeline.fold0_instant(wall)
    high = at
    while high >= floor:
        offset, start = timeline.segment_back(high)
        start = max(start, floor)
        wall = pattern.prev_match(high + offset, start + offset)
        if wall is not None:
            return wall - offset
        high = start - 1
    return None


def local_instant(timeline: Timeline | None, wall: int) -> int:
    """A naive local wall time read in a zone: first occurrence, or the end of a gap."""
    if timeline is None:
        return wall
    return timeline.fold0_instant(wall)
