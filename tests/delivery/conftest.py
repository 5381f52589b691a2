"""Fixtures of the delivery tests: a loopback receiver and an agent on a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from support.loopback import Loop, Receiver, open_loop, real_time_clock, serve_receiver


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serve_receiver() as rec:
        yield rec


@pytest.fixture
async def loop(tmp_path: Path) -> AsyncIterator[Loop]:
    with anyio.fail_after(30):
        async with open_loop(tmp_path, real_time_clock()) as agent:
            yield agent
