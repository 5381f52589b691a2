"""The official MCP conformance suite (`@modelcontextprotocol/conformance`) against a real
`wakecall serve --http` process, for every server scenario that applies to wakecall.

The suite and the Node.js 22 it needs are npm packages installed into
`tests/conformance/node_modules` (`npm ci --prefix tests/conformance`, which `.ci/run` does).
Without them this test is skipped, except where `WAKECALL_REQUIRE_CONFORMANCE=1` (CI) makes
that skip a failure. The scenarios that do not apply are listed in the README, with why.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import anyio
import pytest

SUITE = Path(__file__).parents[1] / "conformance"
BIN = SUITE / "node_modules" / ".bin"

#: Every server scenario of the suite that applies to a server like wakecall: the others call
#: the reference server's own test tools, resources and prompts (see the README).
SCENARIOS = (
    "server-initialize",
    "ping",
    "logging-set-level",
    "completion-complete",
    "tools-list",
    "resources-list",
    "resources-subscribe",
    "resources-unsubscribe",
    "prompts-list",
    "dns-rebinding-protection",
    "server-sse-multiple-streams",
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.conformance,
    pytest.mark.skipif(
        not (BIN / "conformance").exists() or not (BIN / "node").exists(),
        reason="needs the conformance suite: npm ci --prefix tests/conformance",
    ),
]


async def test_every_applicable_conformance_scenario_passes(wakecall: Any, tmp_path: Path) -> None:
    with anyio.fail_after(60):
        listing = await anyio.run_process([str(BIN / "node"), str(BIN / "conformance"), "list"])
    listed = listing.stdout.decode()
    for scenario in SCENARIOS:
        assert f"- {scenario} " in listed, f"the suite no longer has {scenario}"
    async with wakecall.http_server(tokens={}) as server:
        for scenario in SCENARIOS:
            checks = await run_scenario(server.url, scenario, tmp_path / scenario)
            failed = [c for c in checks if c["status"] not in ("SUCCESS", "INFO")]
            assert not failed, json.dumps(failed, indent=2)[:4000]
            assert any(c["status"] == "SUCCESS" for c in checks), scenario


async def run_scenario(url: str, scenario: str, out: Path) -> list[dict[str, Any]]:
    """The checks of one scenario, as the suite wrote them."""
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    command = [
        str(BIN / "node"),
        str(BIN / "conformance"),
        "server",
        "--url",
        url,
        "--scenario",
        scenario,
        "-o",
        str(out),
    ]
    with anyio.fail_after(120):
        done = await anyio.run_process(command, env=env, check=False)
    output = (done.stdout + done.stderr).decode(errors="replace")
    checks = read_checks(out, scenario, output)
    assert done.returncode == 0 or any(c["status"] == "FAILURE" for c in checks), output
    return checks


def read_checks(out: Path, scenario: str, output: str) -> list[dict[str, Any]]:
    results = list(out.glob("*/checks.json"))
    assert len(results) == 1, f"{scenario} wrote no results:\n{output[-4000:]}"
    checks: list[dict[str, Any]] = json.loads(results[0].read_text())
    return checks
