"""Shared fixtures: the anyio backend, and a store parametrized over every backend."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from wakecall.store import SQLiteStore, Store

POSTGRES_URL = os.environ.get("WAKECALL_TEST_POSTGRES_URL")

STORE_KINDS = ["sqlite"] + (["postgres"] if POSTGRES_URL else [])


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=STORE_KINDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """An empty, open store of each kind."""
    if request.param == "sqlite":
        s: Store = SQLiteStore(tmp_path / "wakecall.db")
    else:  # pragma: no cover - exercised when a PostgreSQL server is configured
        from wakecall.store.postgres import PostgresStore

        s = PostgresStore(POSTGRES_URL or "", schema=f"t_{os.getpid()}_{id(request)}")
    await s.open()
    try:
        yield s
    finally:
        if request.param != "sqlite":
            await s.drop_schema()  # type: ignore[attr-defined]
        await s.close()


# --- CI guards: when PostgreSQL or the conformance suite is required, its tests must run ----
_REQUIRE_POSTGRES = os.environ.get("WAKECALL_REQUIRE_POSTGRES") == "1"
#: Set by .ci/run once it has installed the conformance suite (npm ci --prefix tests/conformance).
_REQUIRE_CONFORMANCE = os.environ.get("WAKECALL_REQUIRE_CONFORMANCE") == "1"
_passed = {"postgres": 0, "conformance": 0}
_skipped: dict[str, list[str]] = {"postgres": [], "conformance": []}


def pytest_configure(config: pytest.Config) -> None:
    if _REQUIRE_POSTGRES and not POSTGRES_URL:
        raise pytest.UsageError(
            "WAKECALL_REQUIRE_POSTGRES=1 but WAKECALL_TEST_POSTGRES_URL is not set: the "
            "PostgreSQL tests would be skipped"
        )


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for kind in _passed:
        if kind not in report.nodeid:
            continue
        if report.when == "call" and report.passed:
            _passed[kind] += 1
        elif report.skipped:
            _skipped[kind].append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if exitstatus != 0:
        return
    required = {"postgres": _REQUIRE_POSTGRES, "conformance": _REQUIRE_CONFORMANCE}
    for kind, flag in (("postgres", "POSTGRES"), ("conformance", "CONFORMANCE")):
        if not required[kind]:
            continue
        if _passed[kind] == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            print(f"\nerror: WAKECALL_REQUIRE_{flag}=1 but no {kind} test passed")
        elif _skipped[kind]:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            print(f"\nerror: WAKECALL_REQUIRE_{flag}=1 but these {kind} tests were skipped:")
            for nodeid in _skipped[kind]:
                print(f"  {nodeid}")
