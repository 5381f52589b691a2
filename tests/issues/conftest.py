"""Fixtures of the regression tests, shared with the tests of the command line (`tests/cli`)
and the end-to-end tests (`tests/e2e`)."""

from __future__ import annotations

from cli.conftest import any_cli, cli
from e2e.conftest import tokens, wakecall

__all__ = ["any_cli", "cli", "tokens", "wakecall"]
