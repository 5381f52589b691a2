"""What is kept of a run's output: all of it up to the operator's `max_output_bytes`, beyond
that a note of its size and the start of its JSON text (an action that answers a megabyte per
run would otherwise fill the store)."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["EXCERPT_CHARS", "bounded_output"]

#: Characters of a cut output's JSON text kept as its excerpt.
EXCERPT_CHARS = 1000


def bounded_output(output: Any, limit: int) -> Any:
    """`output` when its JSON is at most `limit` bytes; else `{"truncated": true, "bytes": n,
    "limit": limit, "excerpt": "<the start of its JSON text>"}`."""
    if output is None:
        return None
    text = json.dumps(output, separators=(",", ":"), default=str)
    size = len(text.encode())
    if size <= limit:
        return output
    excerpt = text[: min(EXCERPT_CHARS, max(limit // 2, 0))]
    return {"truncated": True, "bytes": size, "limit": limit, "excerpt": excerpt}
