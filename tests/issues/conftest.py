"""Fixtures of the regression tests: the command-line ones are shared with `tests/cli`."""

from __future__ import annotations

from cli.conftest import any_cli, cli

__all__ = ["any_cli", "cli"]
