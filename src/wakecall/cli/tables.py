"""Tables that fit the terminal: how wide a text shows, ids abbreviated as git abbreviates
hashes, and column widths that add up to the terminal's width, texts cut with an ellipsis.

Standard library only: `wakecall serve` loads the command line too.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, TextIO

__all__ = [
    "DEFAULT_WIDTH",
    "GENERATED_ID",
    "MIN_ID_PREFIX",
    "Column",
    "abbreviate_ids",
    "cut",
    "fit_widths",
    "plan_columns",
    "shorten_ids",
    "shown_width",
    "terminal_width",
]

#: Columns assumed when the terminal does not say (and COLUMNS is not set).
DEFAULT_WIDTH = 80
#: An abbreviated id keeps at least this many characters (and a prefix given for an id must
#: have as many): short enough to type, long enough that a stray word does not match an id.
MIN_ID_PREFIX = 8
#: Between two columns.
GAP = 2
#: An id wakecall made (`wakecall.ids.new_id`): a kind, `_`, 26 base32 digits. Ids a person
#: chose (`tasks add --id nightly`) read as names and are not abbreviated.
GENERATED_ID = re.compile(r"[a-z]+_[0-9a-z]{26}")

#: How a column gives way when the table is wider than the terminal:
#: `keep` shows its texts whole (statuses, counts, times), `cut` cuts its texts with `…`, `id`
#: shows each id wakecall made as its shortest prefix that no other row shares (never shorter
#: than `MIN_ID_PREFIX`) and cuts ids people chose down to that width.
Fit = Literal["keep", "id", "cut"]


@dataclass(frozen=True)
class Column:
    title: str
    fit: Fit = "keep"
    #: A `cut` column is made narrower than this only when leaving out the optional columns
    #: was not enough (never narrower than its widest text needs, when that is less).
    min_width: int = 8
    #: Left out when the table does not fit with every `cut` column at its `min_width`
    #: (the rightmost optional column first).
    optional: bool = False


def terminal_width(stream: TextIO) -> int:
    """Columns of the terminal `stream` shows on: `COLUMNS` when set to a positive number,
    else what the terminal reports, else `DEFAULT_WIDTH`."""
    columns = os.environ.get("COLUMNS", "").strip()
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    try:
        width = os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        width = 0
    return width if width > 0 else DEFAULT_WIDTH


def _char_width(char: str) -> int:
    if unicodedata.combining(char) or unicodedata.category(char) in ("Cc", "Cf", "Mn", "Me"):
        return 0
    return 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1


def shown_width(text: str) -> int:
    """How many columns `text` takes on a terminal (wide characters take two)."""
    if text.isascii():
        return len(text)
    return sum(_char_width(char) for char in text)


def cut(text: str, width: int) -> str:
    """`text` if it fits in `width` columns, else its start and `…` in exactly that room."""
    if shown_width(text) <= width:
        return text
    if width <= 0:
        return ""
    kept: list[str] = []
    used = 0
    for char in text:
        size = _char_width(char)
        if used + size > width - 1:
            break
        kept.append(char)
        used += size
    return "".join(kept) + "…"


def abbreviate_ids(ids: Iterable[str], minimum: int = MIN_ID_PREFIX) -> dict[str, str]:
    """Each id → its shortest prefix that no other of `ids` starts with, at least `minimum`
    characters long (the whole id when that is not shorter)."""
    ordered = sorted(set(ids))
    shortest: dict[str, str] = {}
    for i, current in enumerate(ordered):
        shared = 0
        for neighbour in (
            ordered[i - 1] if i else None,
            ordered[i + 1] if i + 1 < len(ordered) else None,
        ):
            if neighbour is not None:
                shared = max(shared, _common_prefix(current, neighbour))
        shortest[current] = current[: max(minimum, shared + 1)]
    return shortest


def shorten_ids(ids: Sequence[str]) -> tuple[list[str], int]:
    """An `id` column's texts as shown (generated ids abbreviated, unique among all of `ids`),
    and the width below which the column would cut them."""
    short = abbreviate_ids(ids)
    shown = [short[i] if GENERATED_ID.fullmatch(i) else i for i in ids]
    floor = max([MIN_ID_PREFIX + 1, *(len(s) for s, i in zip(shown, ids, strict=True) if s != i)])
    return shown, floor


def _common_prefix(a: str, b: str) -> int:
    length = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        length += 1
    return length


def plan_columns(natural: Sequence[int], columns: Sequence[Column], total: int) -> list[int | None]:
    """The width of each column (None: left out) from their `natural` widths, such that the
    table, gaps included, is at most `total` columns wide where it can be: optional columns are
    left out (the rightmost first) while the others do not fit at their minimum widths, then
    `fit_widths` shares the room."""
    shown = list(range(len(columns)))

    def needed(indexes: list[int]) -> int:
        floors = _floors(natural, columns)
        return sum(floors[i] for i in indexes) + GAP * (len(indexes) - 1)

    while needed(shown) > total and any(columns[i].optional for i in shown):
        shown.remove(max(i for i in shown if columns[i].optional))
    widths = fit_widths([natural[i] for i in shown], [columns[i] for i in shown], total)
    planned: list[int | None] = [None] * len(columns)
    for i, width in zip(shown, widths, strict=True):
        planned[i] = width
    return planned


def _floors(natural: Sequence[int], columns: Sequence[Column]) -> list[int]:
    return [
        n if c.fit == "keep" else min(n, c.min_width) for n, c in zip(natural, columns, strict=True)
    ]


def fit_widths(natural: Sequence[int], columns: Sequence[Column], total: int) -> list[int]:
    """Column widths from their `natural` ones whose sum, with the gaps, is at most `total`
    where it can be: the widest `cut` and `id` columns give way first, down to their
    `min_width`; then `cut` columns further; only when they are down to one character do the
    others give way. The widths are as large as the room allows."""
    room = total - GAP * (len(natural) - 1)
    if sum(natural) <= room:
        return list(natural)
    movable = [c.fit != "keep" for c in columns]
    floors = _floors(natural, columns)
    further = [
        min(n, 1) if c.fit == "cut" else f for n, c, f in zip(natural, columns, floors, strict=True)
    ]
    for floor in (floors, further):
        if sum(floor) <= room:
            return _level(natural, floor, movable, room)
    return _level(natural, [min(n, 1) for n in natural], [True] * len(natural), room)


def _level(
    natural: Sequence[int], floors: Sequence[int], movable: Sequence[bool], room: int
) -> list[int]:
    """Cap the `movable` columns at one level (never below their floor): the highest level
    at which everything fits, then single columns added back while room is left."""

    def widths(level: int) -> list[int]:
        return [
            max(floor, min(n, level)) if move else n
            for n, floor, move in zip(natural, floors, movable, strict=True)
        ]

    low, high = 0, max(natural, default=0)
    while low < high:
        middle = (low + high + 1) // 2
        if sum(widths(middle)) <= room:
            low = middle
        else:
            high = middle - 1
    chosen = widths(low)
    spare = room - sum(chosen)
    for i, width in enumerate(chosen):
        if spare <= 0:
            break
        if movable[i] and width < natural[i]:
            chosen[i] += 1
            spare -= 1
    return chosen
