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


# --- CI guard: when PostgreSQL is required, its tests must have run -----------------------
_REQUIRE_POSTGRES = os.environ.get("WAKECALL_REQUIRE_POSTGRES") == "1"
_postgres_passed = 0
_postgres_skipped: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    if _REQUIRE_POSTGRES and not POSTGRES_URL:
        raise pytest.UsageError(
            "WAKECALL_REQUIRE_POSTGRES=1 but WAKECALL_TEST_POSTGRES_URL is not set: the "
            "PostgreSQL tests would be skipped"
        )


# --- CI guard: when Node is required, the third-party client tests must have run too -------
_REQUIRE_NODE = os.environ.get("WAKECALL_REQUIRE_NODE") == "1"
_node_passed = 0
_node_skipped: list[str] = []


def _count_node(report: pytest.TestReport) -> None:
    global _node_passed
    if "node" not in report.keywords:
        return
    if report.when == "call" and report.passed:
        _node_passed += 1
    elif report.skipped:
        _node_skipped.append(report.nodeid)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    global _postgres_passed
    _count_node(report)
    if "postgres" not in report.nodeid:
        return
    if report.when == "call" and report.passed:
        _postgres_passed += 1
    elif report.skipped:
        _postgres_skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _REQUIRE_NODE and exitstatus == 0:
        if _node_passed == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            print("\nerror: WAKECALL_REQUIRE_NODE=1 but no test of a Node client passed")
        elif _node_skipped:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            print("\nerror: WAKECALL_REQUIRE_NODE=1 but these Node client tests were skipped:")
            for nodeid in _node_skipped:
                print(f"  {nodeid}")
    if not _REQUIRE_POSTGRES or exitstatus != 0:
        return
    if _postgres_passed == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print("\nerror: WAKECALL_REQUIRE_POSTGRES=1 but no PostgreSQL test passed")
    elif _postgres_skipped:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print("\nerror: WAKECALL_REQUIRE_POSTGRES=1 but these PostgreSQL tests were skipped:")
        for nodeid in _postgres_skipped:
            print(f"  {nodeid}")
