"""Tables that fit the terminal: widths of texts, cutting, id abbreviation, and how columns
share the room (`wakecall.cli.tables`), and `Output.table` drawing them on a terminal."""

from __future__ import annotations

import io
import os
import pty
import re

import pytest

from wakecall.cli.output import Column, Output
from wakecall.cli.tables import (
    DEFAULT_WIDTH,
    GENERATED_ID,
    MIN_ID_PREFIX,
    abbreviate_ids,
    cut,
    fit_widths,
    plan_columns,
    shorten_ids,
    shown_width,
    terminal_width,
)
from wakecall.ids import new_id

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_a_text_takes_one_column_a_character_and_two_for_wide_ones() -> None:
    assert shown_width("report") == 6
    assert shown_width("夜間レポート") == 12
    assert shown_width("cafe\u0301") == 4  # a combining accent takes no column
    assert shown_width("") == 0


@pytest.mark.parametrize(
    ("text", "width", "shown"),
    [
        ("nightly report", 20, "nightly report"),
        ("nightly report", 14, "nightly report"),
        ("nightly report", 13, "nightly repo…"),
        ("nightly report", 1, "…"),
        ("nightly report", 0, ""),
        ("夜間レポート", 7, "夜間レ…"),  # 6 columns and the ellipsis
        ("夜間レポート", 6, "夜間…"),  # a wide character never straddles the edge
    ],
)
def test_cut_keeps_the_start_of_a_text_and_an_ellipsis_in_exactly_the_room(
    text: str, width: int, shown: str
) -> None:
    assert cut(text, width) == shown
    assert shown_width(cut(text, width)) <= max(width, 0)


def test_ids_are_abbreviated_to_their_shortest_unique_prefix_of_at_least_eight() -> None:
    ids = [
        "tsk_01jq3m2x0c8v5k7hd2r9f4tn6b",
        "tsk_01jq3m2x0c8v5k7hd2r9f4tn6c",
        "tsk_01jq3m9aaaaaaaaaaaaaaaaaaa",
        "tsk_01kz0000000000000000000000",
    ]
    short = abbreviate_ids(ids)
    assert short == {
        ids[0]: "tsk_01jq3m2x0c8v5k7hd2r9f4tn6b",
        ids[1]: "tsk_01jq3m2x0c8v5k7hd2r9f4tn6c",
        ids[2]: "tsk_01jq3m9",
        ids[3]: "tsk_01kz",
    }
    for full, prefix in short.items():
        assert [i for i in ids if i.startswith(prefix)] == [full]
    assert abbreviate_ids(["tsk_01kz0000000000000000000000"]) == {
        "tsk_01kz0000000000000000000000": "tsk_01kz"
    }
    assert abbreviate_ids(["ab", "abc"]) == {"ab": "ab", "abc": "abc"}


def test_only_ids_wakecall_made_are_abbreviated() -> None:
    made = [new_id(kind) for kind in ("tsk", "run", "msg", "evt")]
    assert all(GENERATED_ID.fullmatch(i) for i in made)
    chosen = "nightly-report-for-the-finance-team"
    shown, floor = shorten_ids([*made, chosen])
    assert shown[-1] == chosen
    assert all(
        made_id.startswith(s) and len(s) < 30 for made_id, s in zip(made, shown, strict=False)
    )
    assert floor == max(MIN_ID_PREFIX + 1, *(len(s) for s in shown[:-1]))


def test_columns_that_fit_keep_their_widths() -> None:
    columns = [Column("A", "cut"), Column("B")]
    assert fit_widths([10, 10], columns, 22) == [10, 10]


def test_the_widest_cut_columns_give_way_first_and_the_others_keep_theirs() -> None:
    columns = [Column("ID", "id", min_width=10), Column("NAME", "cut"), Column("STATUS"),
               Column("OUTPUT", "cut")]  # fmt: skip
    widths = fit_widths([12, 60, 7, 100], columns, 80)
    assert sum(widths) + 2 * 3 == 80
    assert widths[0] == 12 and widths[2] == 7  # whole while the cut columns can give way
    assert abs(widths[1] - widths[3]) <= 1  # levelled


def test_short_cut_columns_stay_whole_while_long_ones_give_way() -> None:
    columns = [Column("NAME", "cut"), Column("ZONE", "cut"), Column("ERROR", "cut")]
    widths = fit_widths([70, 12, 200], columns, 100)
    assert widths[1] == 12 and sum(widths) + 4 == 100


def test_below_their_minimum_cut_columns_give_way_before_ids_and_kept_columns() -> None:
    columns = [Column("ID", "id", min_width=13), Column("NAME", "cut", min_width=10),
               Column("STATUS"), Column("OUTPUT", "cut", min_width=12)]  # fmt: skip
    widths = fit_widths([19, 60, 7, 100], columns, 40)
    assert widths[0] == 13 and widths[2] == 7  # ids cut to their abbreviation only
    assert sum(widths) + 6 <= 40


def test_a_terminal_too_narrow_for_anything_whole_cuts_every_column() -> None:
    columns = [Column("ID", "id", min_width=13), Column("STATUS"), Column("NAME", "cut")]
    widths = fit_widths([19, 9, 40], columns, 16)
    assert sum(widths) + 4 <= 16 and all(w >= 1 for w in widths)


def test_optional_columns_are_left_out_rightmost_first_before_texts_are_cut_short() -> None:
    columns = [Column("RUN", "id", min_width=13), Column("STATUS"),
               Column("ATTEMPT", optional=True), Column("TRIGGER", optional=True),
               Column("OUTPUT", "cut", min_width=12)]  # fmt: skip
    assert plan_columns([13, 7, 7, 8, 100], columns, 200) == [13, 7, 7, 8, 100]
    assert plan_columns([13, 7, 7, 8, 100], columns, 55) == [13, 7, 7, 8, 12]
    assert plan_columns([13, 7, 7, 8, 100], columns, 50) == [13, 7, 7, None, 17]
    assert plan_columns([13, 7, 7, 8, 100], columns, 40) == [13, 7, None, None, 16]


def test_the_width_is_columns_then_the_terminals_then_80(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "132")
    assert terminal_width(io.StringIO()) == 132
    monkeypatch.setenv("COLUMNS", "wide")
    assert terminal_width(io.StringIO()) == DEFAULT_WIDTH
    monkeypatch.delenv("COLUMNS")
    assert terminal_width(io.StringIO()) == DEFAULT_WIDTH  # no terminal at all
    leader, follower = pty.openpty()
    try:
        with open(follower, "w", closefd=False) as stream:
            assert terminal_width(stream) == DEFAULT_WIDTH  # a terminal that reports no size
    finally:
        os.close(leader)
        os.close(follower)


def test_a_table_on_a_terminal_is_no_wider_than_it_and_keeps_colour_outside_the_cut(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    leader, follower = pty.openpty()
    try:
        with open(follower, "w", closefd=False) as stream:
            out = Output(stream)
            assert out.tty and out.width == 60
            out.stream = io.StringIO()  # read back what was drawn for the terminal
            ids = [new_id("run") for _ in range(3)]
            rows = [[i, Output.status("failure"), ("x" * 200, "red")] for i in ids]
            out.table([Column("RUN", "id"), "STATUS", Column("OUTPUT", "cut")], rows)
            drawn = out.stream.getvalue()
    finally:
        os.close(leader)
        os.close(follower)
    lines = drawn.splitlines()
    assert all(shown_width(ANSI.sub("", line)) <= 60 for line in lines)
    assert all(line.endswith("…\x1b[0m") for line in lines[1:])  # cut inside the colour
    assert "\x1b[31mfailure\x1b[0m" in drawn
    firsts = [ANSI.sub("", line).split()[0] for line in lines[1:]]
    assert all(
        full.startswith(short) and short != full for short, full in zip(firsts, ids, strict=True)
    )
