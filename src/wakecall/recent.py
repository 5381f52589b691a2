"""`Recent`: a mapping that keeps only its most recently added keys, for the caches on hot paths.

A plain dict evicting its oldest key with ``del d[next(iter(d))]`` slows down as it goes: the
deleted slots stay at the front of the dict's entry table until its next resize, and every
``iter`` walks past them, so each eviction costs time in proportion to the evictions before it.
`OrderedDict.popitem(last=False)` takes the oldest key at once.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TypeVar

__all__ = ["Recent"]

K = TypeVar("K")
V = TypeVar("V")


class Recent(OrderedDict[K, V]):
    """An ordered mapping of at most `size` keys: adding one past that forgets the oldest."""

    def __init__(self, size: int) -> None:
        super().__init__()
        if size < 1:
            raise ValueError("a Recent mapping holds at least one key")
        self.size = size

    def keep(self, key: K, value: V) -> V:
        """Add (or replace) `key`, forgetting the oldest key when there are too many; returns
        `value`."""
        self[key] = value
        if len(self) > self.size:
            self.popitem(last=False)
        return value
