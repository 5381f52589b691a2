"""The schema files of a backend package: numbered migrations, loaded by version."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from wakecall.errors import StoreError
from wakecall.store.schema_files import load_migrations
from wakecall.store.sqlite.migrations import statements


def backend_package(root: Path, name: str, files: dict[str, str]) -> str:
    """A package `name` under `root` whose `schema/` folder holds `files`."""
    (root / name / "schema").mkdir(parents=True)
    (root / name / "__init__.py").write_text("")
    for file_name, text in files.items():
        (root / name / "schema" / file_name).write_text(text)
    return name


def test_migrations_load_by_the_version_each_leads_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    package = backend_package(
        tmp_path,
        "backend_in_order",
        {
            "002_more.sql": "CREATE TABLE b (x int);\n",
            "001_initial.sql": "CREATE TABLE a (x int);\n",
            "README.md": "not a migration",
        },
    )
    assert load_migrations(package) == {
        1: "CREATE TABLE a (x int);\n",
        2: "CREATE TABLE b (x int);\n",
    }


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"001_initial.sql": "", "003_more.sql": ""}, r"numbered \[1, 3\].*without a gap"),
        ({"002_more.sql": ""}, r"numbered \[2\].*001_initial.sql first"),
        ({"001_initial.sql": "", "001_again.sql": ""}, "two schema files are numbered 001"),
        ({"001_initial.sql": "", "2_more.sql": ""}, "'2_more.sql' is not named like"),
    ],
)
def test_schema_files_out_of_order_or_misnamed_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str], message: str
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    package = backend_package(tmp_path, f"backend_{abs(hash(tuple(files)))}", files)
    with pytest.raises(StoreError, match=message):
        load_migrations(package)


def test_sqlite_migrations_split_where_sqlite_ends_a_statement() -> None:
    script = """-- a comment; with a semicolon
CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT DEFAULT 'a;b');
/* a block; comment */ CREATE TRIGGER stamp AFTER INSERT ON notes BEGIN
  UPDATE notes SET body = body || ';' WHERE id = new.id;
END;
INSERT INTO notes (id) VALUES (1)
"""
    found = statements(script)
    assert len(found) == 3
    conn = sqlite3.connect(":memory:")
    for statement in found:
        conn.execute(statement)
    assert conn.execute("SELECT body FROM notes").fetchall() == [("a;b;",)]
    assert statements("CREATE TABLE t (a);\n-- nothing after\n") == [
        "CREATE TABLE t (a);",
        "\n-- nothing after\n",
    ]
