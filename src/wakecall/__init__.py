"""wakecall: a scheduler for LLM agents, served over MCP, that tells them how each run went."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
