"""The house rules that keep the layers of DESIGN.md a contract: imports point down, no two
modules import each other, no import hidden in a function to dodge a cycle, and no reach into
a dependency's private attributes outside the one module that pins them."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "src" / "wakecall"

#: Where wakecall reaches into the MCP SDK's private attributes (each reach pinned by a test).
SDK_REACHES = SOURCE / "server" / "sdk_reaches.py"
#: Underscore names that are public API: `os._exit`, a named tuple's `_replace`.
PUBLIC_UNDERSCORE = frozenset({"_exit", "_replace"})


def _functions_imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found += [n for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom)]
    return found


def _says_lazy(lines: list[str], index: int) -> bool:
    """The import at `lines[index]` carries a `lazy:` comment, on its line or on the comment
    above the run of imports it belongs to."""
    if "lazy:" in lines[index]:
        return True
    for line in reversed(lines[:index]):
        text = line.strip()
        if text.startswith("#"):
            return "lazy:" in text
        if not text or text.startswith(("from ", "import ", ")")) or text.endswith((",", "(")):
            continue
        return False
    return False


def _is_getattr_of_private(node: ast.AST) -> bool:
    """`getattr(x, "_name")` or `setattr(x, "_name", v)`: a reach spelled as a string."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
        return False
    if node.func.id not in ("getattr", "setattr", "hasattr") or len(node.args) < 2:
        return False
    name = node.args[1]
    return (
        isinstance(name, ast.Constant)
        and isinstance(name.value, str)
        and name.value.startswith("_")
        and not name.value.startswith("__")
    )


def test_the_import_contracts_of_pyproject_hold() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from importlinter.cli import lint_imports; "
            "raise SystemExit(lint_imports(no_cache=True, no_logo=True))",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 kept, 0 broken" in done.stdout


def test_an_import_inside_a_function_says_why_it_is_lazy() -> None:
    hidden = []
    for path in sorted(SOURCE.rglob("*.py")):
        lines = path.read_text().splitlines()
        for node in _functions_imports(ast.parse("\n".join(lines))):
            if not _says_lazy(lines, node.lineno - 1):
                hidden.append(f"{path.relative_to(ROOT)}:{node.lineno}: {lines[node.lineno - 1]}")
    assert hidden == [], "imports inside functions without a `# lazy: why` comment"


def test_private_attributes_of_other_objects_are_reached_only_in_the_pinned_module() -> None:
    own_classes = set()
    trees = {}
    for path in sorted(SOURCE.rglob("*.py")):
        trees[path] = tree = ast.parse(path.read_text())
        own_classes |= {n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)}
    reaches = []
    for path, tree in trees.items():
        if path == SDK_REACHES:
            continue
        for node in ast.walk(tree):
            if _is_getattr_of_private(node):
                reaches.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
                continue
            if not isinstance(node, ast.Attribute) or not node.attr.startswith("_"):
                continue
            if node.attr.startswith("__") or node.attr in PUBLIC_UNDERSCORE:
                continue
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in {"self", "cls", *own_classes}:
                continue
            reaches.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    assert reaches == []
