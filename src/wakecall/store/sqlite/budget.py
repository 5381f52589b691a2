"""How much work one call of the SQLite store may take on: every call waits for the one
before it on the store's thread (and a write for the file's write lock), so a tool call that
arrives during a burst or a prune waits for at most one batch. Batches are sized to end
within `BATCH_SECONDS`, from what batches of the same kind cost so far."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

__all__ = ["BATCH_SECONDS", "Budget"]

T = TypeVar("T")

#: About how long one batch may hold the store's thread and the write lock.
BATCH_SECONDS = 0.004


class Budget:
    """The cost of one item of a kind of batch (a fired task, a finished run), learnt as
    batches are written, and the batch size that fits in `seconds`."""

    def __init__(self, seconds: float = BATCH_SECONDS, *, floor: int = 16) -> None:
        self.seconds = seconds
        self.floor = floor
        #: Seconds per item, a moving average (None until a batch was measured).
        self.per_item: float | None = None

    def limit(self, wanted: int) -> int:
        """How many of `wanted` items the next batch takes (at least `floor`, or `wanted`)."""
        if self.per_item is None:
            return min(wanted, self.floor)
        return min(wanted, max(self.floor, int(self.seconds / self.per_item)))

    def note(self, items: int, seconds: float) -> None:
        """A batch of `items` took `seconds`."""
        if items <= 0:
            return
        cost = seconds / items
        self.per_item = cost if self.per_item is None else 0.7 * self.per_item + 0.3 * cost

    def chunks(self, items: Sequence[T]) -> list[Sequence[T]]:
        """`items` cut into batches of the size `limit` gives now."""
        size = max(self.limit(len(items)), 1)
        return [items[i : i + size] for i in range(0, len(items), size)]
