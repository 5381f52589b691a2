"""Shared fixtures: the anyio backend, and a store parametrized over every backend."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
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


# --- CI guards: a kind of test that CI requires must have run, none of it skipped -----------
@dataclass
class RequiredKind:
    """Tests CI requires when `variable` is 1: those marked `marker` (PostgreSQL's: whose id
    names postgres, as the store fixture's parameter does)."""

    variable: str
    marker: str
    what: str
    passed: int = 0
    skipped: list[str] = field(default_factory=list)

    @property
    def required(self) -> bool:
        return os.environ.get(self.variable) == "1"

    def is_one(self, report: pytest.TestReport) -> bool:
        if self.marker == "postgres":
            return "postgres" in report.nodeid
        return self.marker in report.keywords

    def count(self, report: pytest.TestReport) -> None:
        if not self.is_one(report):
            return
        if report.when == "call" and report.passed:
            self.passed += 1
        elif report.skipped:
            self.skipped.append(report.nodeid)

    def failure(self) -> str | None:
        if not self.required:
            return None
        if self.passed == 0:
            return f"{self.variable}=1 but no {self.what} test passed"
        if self.skipped:
            listed = "\n".join(f"  {nodeid}" for nodeid in self.skipped)
            return f"{self.variable}=1 but these {self.what} tests were skipped:\n{listed}"
        return None


REQUIRED = (
    RequiredKind("WAKECALL_REQUIRE_POSTGRES", "postgres", "PostgreSQL"),
    RequiredKind("WAKECALL_REQUIRE_NODE", "node", "Node client"),
    RequiredKind("WAKECALL_REQUIRE_BROWSER", "browser", "browser"),
    RequiredKind("WAKECALL_REQUIRE_CONFORMANCE", "conformance", "MCP conformance"),
)


def pytest_configure(config: pytest.Config) -> None:
    if REQUIRED[0].required and not POSTGRES_URL:
        raise pytest.UsageError(
            "WAKECALL_REQUIRE_POSTGRES=1 but WAKECALL_TEST_POSTGRES_URL is not set: the "
            "PostgreSQL tests would be skipped"
        )


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    for kind in REQUIRED:
        kind.count(report)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if exitstatus != 0:
        return
    for kind in REQUIRED:
        failure = kind.failure()
        if failure is not None:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
            print(f"\nerror: {failure}")
