"""The JSON text the stores keep: compact, the same values back, and what the fast codec
refuses still written and read."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from wakecall.store.json_text import decode, encode

VALUES = [
    {"task": {"id": "tsk_1", "metadata": {"team": "é", "n": 3}}, "late": None},
    [1, 2.5, -0.0, True, None, "a\u2028b", {"nested": [[]]}],
    123456789012345678901234567890,
    "",
    {},
]


@pytest.mark.parametrize("value", VALUES)
def test_a_value_comes_back_as_it_went(value: object) -> None:
    text = encode(value)
    assert decode(text) == value == json.loads(text)


def test_the_text_is_compact() -> None:
    assert encode({"a": [1, {"b": None}]}) == '{"a":[1,{"b":null}]}'


def test_what_json_has_no_form_for_is_written_as_its_text() -> None:
    class Opaque:
        def __str__(self) -> str:
            return "opaque"

    assert decode(encode({"x": Opaque()})) == {"x": "opaque"}
    assert decode(encode({"x": b"\xff"})) == {"x": "b'\\xff'"}  # not UTF-8: the fallback


def test_a_lone_surrogate_is_written_and_read_back() -> None:
    text = encode({"x": "a\ud800b"})
    assert text == '{"x": "a\\ud800b"}'  # the standard library's escape
    assert decode(text) == {"x": "a\ud800b"}


def test_text_written_before_is_read_as_before() -> None:
    stored = json.dumps({"when": str(datetime(2026, 1, 5, tzinfo=UTC)), "list": [1, 2]})
    assert decode(stored) == json.loads(stored)
    assert decode(stored.encode()) == json.loads(stored)
