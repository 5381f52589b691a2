"""The W3C trace context as a receiver must read it: a valid `traceparent` is kept, anything
else is ignored; `tracestate` is kept beside a valid one, dropped when malformed, cut when
long; a child keeps the trace id and flags under a new parent id."""

from __future__ import annotations

import pytest

from wakecall.tracecontext import TraceContext, parse_trace, trace_from_carrier

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
VALID = f"00-{TRACE_ID}-{PARENT}-01"


def test_a_valid_traceparent_is_kept_with_its_parts() -> None:
    trace = parse_trace(VALID, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
    assert trace == TraceContext(VALID, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
    assert (trace.trace_id, trace.parent_id, trace.flags) == (TRACE_ID, PARENT, 1)


@pytest.mark.parametrize(
    "value",
    [
        None,
        7,
        "",
        VALID.upper(),
        f"00-{'0' * 32}-{PARENT}-01",
        f"00-{TRACE_ID}-{'0' * 16}-01",
        f"ff-{TRACE_ID}-{PARENT}-01",
        f"00-{TRACE_ID}-{PARENT}-01-more",
        f"00-{TRACE_ID}-{PARENT}-1",
        f"00-{TRACE_ID[:-1]}-{PARENT}-01",
        f"00_{TRACE_ID}_{PARENT}_01",
        f"01-{TRACE_ID}-{PARENT}-01x",
    ],
)
def test_a_malformed_traceparent_gives_no_trace(value: object) -> None:
    assert parse_trace(value, "rojo=1") is None


def test_a_later_version_is_read_as_version_00_keeping_only_the_sampled_flag() -> None:
    trace = parse_trace(f"cc-{TRACE_ID}-{PARENT}-09-what-comes-next")
    assert trace is not None and trace.traceparent == f"00-{TRACE_ID}-{PARENT}-01"


@pytest.mark.parametrize(
    "state",
    ["no-equals", "Upper=1", "a=1,a=2", "a=bad,value", "a=", 5],
)
def test_a_malformed_tracestate_is_dropped_and_the_traceparent_kept(state: object) -> None:
    trace = parse_trace(VALID, state)
    assert trace is not None and trace.traceparent == VALID and trace.tracestate is None


def test_a_tracestate_keeps_its_members_without_blanks() -> None:
    trace = parse_trace(VALID, " a=1 ,,\tvendor@tenant=x ")
    assert trace is not None and trace.tracestate == "a=1,vendor@tenant=x"


def test_a_long_tracestate_is_cut_to_512_characters_long_members_first() -> None:
    long = "big=" + "x" * 200
    members = [f"k{i}=" + "v" * 40 for i in range(11)]  # 11 x 44 characters
    trace = parse_trace(VALID, ",".join([members[0], long, *members[1:]]))
    assert trace is not None and trace.tracestate is not None
    assert len(trace.tracestate) <= 512
    assert "big=" not in trace.tracestate
    assert trace.tracestate == ",".join(members)


def test_a_child_has_the_same_trace_and_flags_under_a_new_parent() -> None:
    trace = TraceContext(VALID, "a=1")
    children = {trace.child() for _ in range(20)}
    assert len({c.parent_id for c in children}) == 20
    for child in children:
        assert (child.trace_id, child.flags, child.tracestate) == (TRACE_ID, 1, "a=1")
        assert child.parent_id != PARENT
        assert parse_trace(child.traceparent) == TraceContext(child.traceparent)
    assert trace.headers() == {"traceparent": VALID, "tracestate": "a=1"}
    assert TraceContext(VALID).headers() == {"traceparent": VALID}


def test_a_request_meta_without_a_traceparent_gives_no_trace() -> None:
    assert trace_from_carrier(None) is None
    assert trace_from_carrier({"progressToken": 3}) is None
    assert trace_from_carrier({"traceparent": VALID}) == TraceContext(VALID)
