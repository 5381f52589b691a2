"""The PostgreSQL store's schema versions: the numbered `.sql` files in `schema/` (file N is
the migration to version N; see `wakecall.store.schema_files`), the `meta` table that marks a
wakecall schema and holds its version (created by the first file), and creating or upgrading
a schema."""

from __future__ import annotations

import logging

import asyncpg

from wakecall.errors import NotAWakecallDatabase, StoreError
from wakecall.store.postgres.locks import _lock_migration
from wakecall.store.schema_files import load_migrations

log = logging.getLogger(__name__)

#: The migration to each version, from `schema/NNN_*.sql` (1 creates the schema and `meta`).
_MIGRATIONS = load_migrations("wakecall.store.postgres")
SCHEMA_VERSION = max(_MIGRATIONS)


async def read_version(conn: asyncpg.Connection, schema: str, where: str) -> int:
    """The schema version, 0 for an empty or missing schema; `NotAWakecallDatabase` for
    a schema that holds tables of something else."""
    ident = f'"{schema}"'
    row = await conn.fetchrow(
        "SELECT to_regclass($1) IS NOT NULL AS has_meta, "
        "(SELECT count(*) FROM pg_tables WHERE schemaname = $2) AS tables",
        f"{ident}.meta",
        schema,
    )
    assert row is not None
    if not row["has_meta"]:
        if row["tables"]:
            raise NotAWakecallDatabase(
                where, f"it holds {row['tables']} tables of another application"
            )
        return 0
    try:
        meta = dict(await conn.fetch(f"SELECT key, value FROM {ident}.meta"))
    except asyncpg.UndefinedColumnError as exc:
        raise NotAWakecallDatabase(where, "its meta table is not wakecall's") from exc
    if meta.get("application") != "wakecall":
        raise NotAWakecallDatabase(where, "its meta table belongs to something else")
    return int(meta.get("schema_version", "0"))


async def prepare(conn: asyncpg.Connection, schema: str, where: str) -> None:
    """Create the schema, or upgrade it to `SCHEMA_VERSION`, under the migration lock."""
    ident = f'"{schema}"'
    version = await read_version(conn, schema, where)
    if version == SCHEMA_VERSION:
        return
    if version > SCHEMA_VERSION:
        raise StoreError(
            f"{where} has schema version {version}, newer than this wakecall "
            f"understands ({SCHEMA_VERSION}); upgrade wakecall"
        )
    async with conn.transaction():
        # Several nodes may start at once: one migrates, the others wait and re-read.
        await _lock_migration(conn, schema)
        version = await read_version(conn, schema, where)
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{where} has schema version {version}, newer than this wakecall "
                f"understands ({SCHEMA_VERSION}); upgrade wakecall"
            )
        if version == SCHEMA_VERSION:
            return
        await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {ident}")
        # The pool's search_path names the schema; it may not have existed at connect time.
        await conn.execute(f"SET LOCAL search_path TO {ident}")
        for target in range(version + 1, SCHEMA_VERSION + 1):
            await conn.execute(_MIGRATIONS[target])
            log.info("upgraded %s to schema version %d", where, target)
        await conn.execute(
            "UPDATE meta SET value = $1 WHERE key = 'schema_version'", str(SCHEMA_VERSION)
        )
