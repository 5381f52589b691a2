"""Ids: a prefix, then 26 Crockford base32 digits that sort by creation time."""

from __future__ import annotations

import time

from wakecall.ids import new_id

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def digits_value(text: str) -> int:
    value = 0
    for char in text:
        value = value * 32 + ALPHABET.index(char)
    return value


def test_an_id_is_its_prefix_and_26_base32_digits() -> None:
    for prefix in ("run", "tsk", "msg"):
        made = new_id(prefix)
        head, _, digits = made.partition("_")
        assert head == prefix and len(digits) == 26
        assert set(digits) <= set(ALPHABET)


def test_the_first_ten_digits_are_the_creation_millisecond() -> None:
    before = time.time_ns() // 1_000_000
    made = new_id("run")
    after = time.time_ns() // 1_000_000
    value = digits_value(made[4:])
    assert before <= value >> 80 <= after
    assert digits_value(made[4:14]) == value >> 80


def test_ids_sort_in_creation_order_and_never_repeat() -> None:
    made = [new_id("run") for _ in range(20_000)]
    assert made == sorted(made)
    assert len(set(made)) == len(made)
