"""The JSON text the stores keep (task definitions, outputs, event payloads and callback
bodies), written and read by pydantic-core, which pydantic brings: three to five times faster
than the standard library on these small documents, and compact (no spaces). What it refuses
(a lone surrogate, bytes that are not UTF-8) goes through the standard library as before."""

from __future__ import annotations

import json
from typing import Any

from pydantic_core import from_json, to_json

__all__ = ["decode", "encode"]

#: The standard library's encoder, values it cannot encode written as `str(value)`.
_fallback_encode = json.JSONEncoder(default=str).encode


def encode(value: Any) -> str:
    """`value` as JSON text; a value JSON has no form for is written as `str(value)`."""
    try:
        return to_json(value, fallback=str).decode()
    except ValueError:
        return _fallback_encode(value)


def decode(text: str | bytes) -> Any:
    """The value of a JSON text."""
    try:
        return from_json(text)
    except ValueError:
        return json.loads(text)
