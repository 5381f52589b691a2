"""A store backend's schema as numbered `.sql` files shipped in its package.

A backend package holds `schema/001_initial.sql`, `schema/002_callbacks.sql`, …: file N is the
migration from version N-1 to version N (001 creates the schema), and the schema's version is
the highest number. They are read with `importlib.resources`, so they load from a wheel, a zip
or a source checkout alike.
"""

from __future__ import annotations

import re
from importlib import resources

from wakecall.errors import StoreError

_FILE_NAME = re.compile(r"(\d{3})_[a-z0-9_]+\.sql")


def load_migrations(package: str) -> dict[int, str]:
    """The migrations in `package`'s `schema/` folder by the version each leads to, from 1 on:
    {1: SQL text, 2: …}. A `.sql` file not named `NNN_words.sql`, two files of one number, or
    numbers that do not run from 1 without a gap, are a `StoreError` (the package was built
    wrong)."""
    found: dict[int, str] = {}
    for entry in resources.files(package).joinpath("schema").iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILE_NAME.fullmatch(entry.name)
        if match is None:
            raise StoreError(
                f"{package}: schema file {entry.name!r} is not named like 004_what_it_adds.sql"
            )
        version = int(match.group(1))
        if version in found:
            raise StoreError(f"{package}: two schema files are numbered {match.group(1)}")
        found[version] = entry.read_text(encoding="utf-8")
    if sorted(found) != list(range(1, len(found) + 1)):
        raise StoreError(
            f"{package}: schema files are numbered {sorted(found)}; they must run 1, 2, 3, … "
            "without a gap (001_initial.sql first)"
        )
    return found
