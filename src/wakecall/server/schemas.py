"""Output schemas that are cheap to check.

Clients built on the MCP SDK validate every structured tool result against the tool's output
schema. pydantic writes an optional field as `anyOf: [{type: X}, {type: null}]` and a nested
model as a `$ref` into `$defs`; a validator walks each `anyOf` branch and resolves each
reference on every call, which made validating one `create_task` answer cost the client more
than the server spent creating the task. `compact_schema` rewrites both into the equivalent
plain forms (`type: [X, "null"]`, the definition inline); every instance valid under one schema
is valid under the other.
"""

from __future__ import annotations

from typing import Any

__all__ = ["compact_schema"]

_DEFS = "#/$defs/"
#: Keywords that would reject `null` (or change meaning) if merged with a `type` list.
_NOT_MERGEABLE = frozenset({"enum", "const", "anyOf", "oneOf", "allOf", "not", "$ref", "if"})


def compact_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with non-recursive `$defs` inlined and nullable `anyOf` pairs as type lists."""
    defs: dict[str, Any] = schema.get("$defs", {})
    out = _compact(schema, defs, ())
    still_referenced = _refs(out)
    if still_referenced:
        out["$defs"] = {name: _compact(defs[name], defs, (name,)) for name in defs}
    else:
        out.pop("$defs", None)
    return out


def _compact(node: Any, defs: dict[str, Any], inlining: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_compact(item, defs, inlining) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith(_DEFS):
        name = ref.removeprefix(_DEFS)
        if name in defs and name not in inlining:
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            inlined = _compact(defs[name], defs, (*inlining, name))
            return {**inlined, **_compact(siblings, defs, inlining)}
    out = {
        key: (value if key in ("$defs", "properties") else _compact(value, defs, inlining))
        for key, value in node.items()
        if key != "$defs"
    }
    if isinstance(node.get("properties"), dict):
        out["properties"] = {
            name: _compact(value, defs, inlining) for name, value in node["properties"].items()
        }
    branches = out.get("anyOf")
    if isinstance(branches, list) and len(branches) == 2 and {"type": "null"} in branches:
        other = branches[0] if branches[1] == {"type": "null"} else branches[1]
        if (
            isinstance(other, dict)
            and isinstance(other.get("type"), str)
            and not (other.keys() & _NOT_MERGEABLE)
            and not (other.keys() & (out.keys() - {"anyOf"}))
        ):
            del out["anyOf"]
            out.update(other)
            out["type"] = [other["type"], "null"]
    return out


def _refs(node: Any) -> bool:
    if isinstance(node, list):
        return any(_refs(item) for item in node)
    if isinstance(node, dict):
        return "$ref" in node or any(_refs(value) for value in node.values())
    return False
