"""Output schemas are published in a form that is cheap to validate and means the same."""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel

from wakecall.server.schemas import compact_schema
from wakecall.server.views import DeliveryPage, RunPage, TaskView


def _valid(schema: dict[str, Any], instance: Any) -> bool:
    return jsonschema.Draft202012Validator(schema).is_valid(instance)


def test_a_nullable_field_becomes_a_type_list() -> None:
    schema = {
        "type": "object",
        "properties": {
            "at": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]},
            "n": {"anyOf": [{"type": "null"}, {"type": "integer"}], "default": None},
        },
    }
    out = compact_schema(schema)
    assert out["properties"]["at"] == {"type": ["string", "null"], "format": "date-time"}
    assert out["properties"]["n"] == {"type": ["integer", "null"], "default": None}


def test_a_nullable_enum_keeps_its_any_of_since_a_type_list_would_not_admit_null() -> None:
    field = {"anyOf": [{"enum": ["a", "b"], "type": "string"}, {"type": "null"}]}
    out = compact_schema({"type": "object", "properties": {"f": field}})
    assert out["properties"]["f"] == field
    assert _valid(out, {"f": None}) and not _valid(out, {"f": "c"})


def test_references_are_inlined_and_recursive_ones_kept() -> None:
    schema = {
        "$defs": {
            "Leaf": {"type": "object", "properties": {"x": {"type": "integer"}}},
            "Tree": {
                "type": "object",
                "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/Tree"}}},
            },
        },
        "type": "object",
        "properties": {
            "leaf": {"$ref": "#/$defs/Leaf", "description": "one leaf"},
            "tree": {"$ref": "#/$defs/Tree"},
        },
    }
    out = compact_schema(copy.deepcopy(schema))
    assert out["properties"]["leaf"] == {
        "type": "object",
        "properties": {"x": {"type": "integer"}},
        "description": "one leaf",
    }
    assert out["properties"]["tree"]["properties"]["kids"]["items"] == {"$ref": "#/$defs/Tree"}
    assert "Tree" in out["$defs"]
    for instance in ({"leaf": {"x": 1}}, {"leaf": {"x": "1"}}, {"tree": {"kids": [{"kids": [3]}]}}):
        assert _valid(out, instance) == _valid(schema, instance)


@pytest.mark.parametrize("model", [TaskView, RunPage, DeliveryPage])
def test_the_views_schemas_accept_and_refuse_the_same_instances(model: type[BaseModel]) -> None:
    original = model.model_json_schema()
    compact = compact_schema(copy.deepcopy(original))
    assert "$ref" not in str(compact)
    assert "{'type': 'null'}" not in str(compact)  # every nullable pair became a type list
    properties = original["properties"]
    good: dict[str, Any] = {}
    for name, prop in properties.items():
        good[name] = None if "anyOf" in prop else _sample(prop, original)
    instances = [good]
    for name in properties:  # each field wrong in turn: null, a number, missing
        for bad in (None, 12345, ...):
            variant = dict(good)
            if bad is ...:
                variant.pop(name)
            else:
                variant[name] = bad
            instances.append(variant)
    verdicts = [(_valid(original, i), _valid(compact, i)) for i in instances]
    assert all(a == b for a, b in verdicts)
    assert any(a for a, _ in verdicts) and not all(a for a, _ in verdicts)


def _sample(prop: dict[str, Any], root: dict[str, Any]) -> Any:
    if "$ref" in prop:
        return _sample(root["$defs"][prop["$ref"].rsplit("/", 1)[1]], root)
    kind = prop.get("type")
    if "enum" in prop:
        return prop["enum"][0]
    if kind == "object":
        return {
            name: _sample(p, root)
            for name, p in prop.get("properties", {}).items()
            if name in prop.get("required", ())
        }
    return {"string": "x", "integer": 1, "number": 1.5, "boolean": True, "array": []}[kind]
