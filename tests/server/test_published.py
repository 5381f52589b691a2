"""The tool list a model reads: its size, and the published input schemas held to the tools'
real parameters (same names, same required set, same ranges)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.server import MCPServer

from wakecall.schedules import MAX_DURATION_SECONDS
from wakecall.server import build_server, open_runtime
from wakecall.server.sdk_reaches import argument_model
from wakecall.server.tools import TOOLS
from wakecall.server.tools.published import INPUT_SCHEMAS, model_facing_size
from wakecall.server.tools.refusals import resolved_schema
from wakecall.settings import Settings
from wakecall.testing import FakeClock

#: What the tool list may cost, in bytes of JSON, all tools together.
BUDGET = 12_700  # raised for flow control; the lead trims at merge


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[MCPServer[Any]]:
    with anyio.fail_after(20):
        async with open_runtime(Settings(store=str(tmp_path / "w.db")), clock=FakeClock()) as rt:
            yield build_server(rt)


async def test_the_tool_list_a_model_reads_fits_its_budget(server: MCPServer[Any]) -> None:
    """Measured as `model_facing_size` says: each tool's name, description and input schema
    as `tools/list` returns them, as JSON, in bytes."""
    with anyio.fail_after(10):
        async with Client(server) as client:
            listed = (await client.list_tools()).tools
    sizes = {
        t.name: model_facing_size(t.model_dump(by_alias=True, exclude_none=True)) for t in listed
    }
    total = sum(sizes.values())
    table = "\n".join(
        f"  {name:18} {size:6,} B  {size / total:5.1%}"
        for name, size in sorted(sizes.items(), key=lambda item: -item[1])
    )
    print(f"\nthe tool list as the model reads it: {total:,} B (budget {BUDGET:,} B)\n{table}")
    assert len(sizes) == len(TOOLS) + 1  # and the MCP App's show_tasks
    assert total <= BUDGET, f"the tool list is {total:,} B, over {BUDGET:,} B:\n{table}"


async def test_published_schemas_name_the_parameters_and_their_required_set(
    server: MCPServer[Any],
) -> None:
    for entry in TOOLS:
        real = argument_model(server, entry.name).model_json_schema(by_alias=True)
        published = INPUT_SCHEMAS[entry.name]
        assert list(published["properties"]) == list(real["properties"]), entry.name
        assert set(published.get("required", [])) == set(real.get("required", [])), entry.name
        assert published["additionalProperties"] is False, entry.name


async def test_published_ranges_are_the_parameters_ranges(server: MCPServer[Any]) -> None:
    for entry in TOOLS:
        real = argument_model(server, entry.name).model_json_schema(by_alias=True)
        published = dict(_ranges(resolved_schema(entry.name), {}))
        enforced = dict(_ranges(real, real.get("$defs", {})))
        assert published == enforced, entry.name


def test_every_number_has_a_range_and_every_object_refuses_unknown_fields() -> None:
    for name in INPUT_SCHEMAS:
        for path, node in _nodes(resolved_schema(name), ()):
            if node.get("type") in ("integer", "number"):
                assert "maximum" in node, (name, path)
                assert "minimum" in node or "exclusiveMinimum" in node, (name, path)
            if "properties" in node:
                assert node.get("additionalProperties") is False, (name, path)


def test_every_schema_keeps_to_what_every_host_passes_on() -> None:
    """Gemini's function declarations take one `type` per node (a list is refused with "Proto
    field is not repeating"), `enum` only on strings, and arrays with typed items."""
    for name, schema in INPUT_SCHEMAS.items():
        for path, node in _nodes(schema, ()):
            assert not isinstance(node.get("type"), list), (name, path)
            if "enum" in node:
                assert node.get("type") == "string", (name, path)
            if node.get("type") == "array":
                assert "type" in node.get("items", {}), (name, path)
            assert "const" not in node and "oneOf" not in node, (name, path)


def _nodes(node: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    if not isinstance(node, dict):
        return
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from _nodes(child, (*path, name))
    if isinstance(node.get("items"), dict):
        yield from _nodes(node["items"], (*path, "[]"))
    if isinstance(node.get("additionalProperties"), dict):
        yield from _nodes(node["additionalProperties"], (*path, "{}"))
    for branch in node.get("anyOf", []):
        yield from _nodes(branch, path)


def _ranges(
    node: Any, defs: dict[str, Any], path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], tuple[Any, ...]]]:
    """(path, (minimum, exclusiveMinimum, maximum)) of every number a schema bounds, through
    references and unions (the branches of a union share the path). A duration (pydantic's
    `format: duration`) is bounded by the parser: 0 to 100 years."""
    if not isinstance(node, dict):
        return
    ref = node.get("$ref")
    if isinstance(ref, str):
        yield from _ranges(defs[ref.rsplit("/", 1)[-1]], defs, path)
        return
    for key in ("anyOf", "oneOf", "allOf"):
        for branch in node.get(key, []):
            yield from _ranges(branch, defs, path)
    kinds = node.get("type", [])
    kinds = [kinds] if isinstance(kinds, str) else kinds
    if node.get("format") == "duration":
        yield path, (0, None, MAX_DURATION_SECONDS)
    elif {"integer", "number"} & set(kinds):
        bounds = (node.get("minimum"), node.get("exclusiveMinimum"), node.get("maximum"))
        yield path, bounds
    for name, child in node.get("properties", {}).items():
        yield from _ranges(child, defs, (*path, name))
    if isinstance(node.get("items"), dict):
        yield from _ranges(node["items"], defs, (*path, "[]"))
