"""The README says what the code does: its Tools table names every tool, and its Layout names
every top-level module and package."""

from __future__ import annotations

import re
from pathlib import Path

from wakecall.server.tools import TOOLS
from wakecall.server.ui.view_tool import VIEW_TOOL

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else None]


def test_the_tools_table_names_every_tool() -> None:
    rows = [line for line in _section("Tools").splitlines() if line.startswith("| `")]
    named = {name for row in rows for name in re.findall(r"`(\w+)`", row.split("|")[1])}
    assert named == {tool.name for tool in (*TOOLS, VIEW_TOOL)}


def test_the_layout_names_every_module_and_package() -> None:
    layout = _section("Layout")
    source = ROOT / "src" / "wakecall"
    parts = {
        p.name
        for p in source.iterdir()
        if (p.is_dir() and (p / "__init__.py").exists())
        or (p.suffix == ".py" and p.name not in ("__init__.py", "__main__.py"))
    }
    missing = sorted(
        part
        for part in parts
        if f"{part.removesuffix('.py')}/" not in layout and part not in layout
    )
    assert missing == []
