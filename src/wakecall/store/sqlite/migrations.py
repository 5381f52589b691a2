"""The SQLite store's schema versions: the numbered `.sql` files in `schema/` (file N is the
migration to version N; see `wakecall.store.schema_files`), the application id that marks a
wakecall file, and the migration of a file to the latest version."""

from __future__ import annotations

import logging
import sqlite3

from wakecall.store.schema_files import load_migrations

log = logging.getLogger(__name__)

#: PRAGMA application_id of a wakecall database ("WAKE").
APPLICATION_ID = 0x57414B45

#: The migration to each version, from `schema/NNN_*.sql` (1 creates the schema), run
#: statement by statement (see `statements`).
_MIGRATIONS = load_migrations("wakecall.store.sqlite")
SCHEMA_VERSION = max(_MIGRATIONS)


def migrate(conn: sqlite3.Connection, path: str) -> None:
    """Upgrade the file at `path` to `SCHEMA_VERSION`, in one write transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Re-read under the write lock: another process may have migrated meanwhile.
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        for target in range(version + 1, SCHEMA_VERSION + 1):
            for statement in statements(_MIGRATIONS[target]):
                conn.execute(statement)
            log.info("upgraded %s to schema version %d", path, target)
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def statements(script: str) -> list[str]:
    """The statements of a script, split where SQLite itself sees one end: a `;` inside a
    comment, a quoted string or a trigger's body ends none. (`executescript` would split them
    too, but it commits the transaction the migration runs in.)"""
    found: list[str] = []
    start = 0
    for position, char in enumerate(script):
        if char == ";" and sqlite3.complete_statement(script[start : position + 1]):
            found.append(script[start : position + 1])
            start = position + 1
    if script[start:].strip():  # a last statement without its `;`, or only comments
        found.append(script[start:])
    return found
