"""The PostgreSQL store's schema: its version, the `meta` table that marks a wakecall schema,
and the migration to each version."""

from __future__ import annotations

import logging

import asyncpg

from wakecall.errors import NotAWakecallDatabase, StoreError
from wakecall.store.postgres.locks import _lock_migration

log = logging.getLogger(__name__)

SCHEMA_VERSION = 3

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE tasks (
        id text PRIMARY KEY,
        owner text NOT NULL,
        name text NOT NULL,
        kind text NOT NULL,
        schedule jsonb NOT NULL,
        timezone text NOT NULL,
        action jsonb NOT NULL,
        retry jsonb NOT NULL,
        timeout_s double precision,
        overlap text NOT NULL,
        max_queued integer NOT NULL,
        catchup text NOT NULL,
        catchup_window_s double precision NOT NULL,
        max_runs bigint,
        expires_at timestamptz,
        status text NOT NULL,
        pause_note text,
        callback_url text,
        metadata jsonb NOT NULL,
        idempotency_key text,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        next_fire_at timestamptz,
        last_fire_at timestamptz,
        run_count bigint NOT NULL DEFAULT 0,
        claimed_by text,
        claim_expires_at timestamptz,
        end_reason text,
        end_announced boolean NOT NULL DEFAULT false
    );
    CREATE UNIQUE INDEX tasks_idempotency ON tasks (owner, idempotency_key)
        WHERE idempotency_key IS NOT NULL;
    CREATE INDEX tasks_due ON tasks (next_fire_at)
        WHERE status = 'active' AND next_fire_at IS NOT NULL;
    CREATE INDEX tasks_owner ON tasks (owner, id);

    CREATE TABLE runs (
        id text PRIMARY KEY,
        task_id text NOT NULL,
        owner text NOT NULL,
        trigger text NOT NULL,
        scheduled_for timestamptz,
        due_at timestamptz NOT NULL,
        status text NOT NULL,
        attempt integer NOT NULL,
        max_attempts integer NOT NULL,
        created_at timestamptz NOT NULL,
        started_at timestamptz,
        finished_at timestamptz,
        duration_ms bigint,
        output jsonb,
        error_message text,
        claimed_by text,
        lease_expires_at timestamptz,
        cancel_requested boolean NOT NULL DEFAULT false,
        counts boolean NOT NULL DEFAULT true,
        -- NULLs are distinct: manual runs (no scheduled_for) never collide.
        UNIQUE (task_id, scheduled_for)
    );
    CREATE INDEX runs_queued ON runs (due_at) WHERE status = 'queued';
    CREATE INDEX runs_running ON runs (lease_expires_at) WHERE status = 'running';
    CREATE INDEX runs_task ON runs (task_id, id);
    CREATE INDEX runs_owner ON runs (owner, id);
    CREATE INDEX runs_finished ON runs (finished_at) WHERE finished_at IS NOT NULL;

    CREATE TABLE attempts (
        run_id text NOT NULL,
        number integer NOT NULL,
        status text NOT NULL,
        started_at timestamptz NOT NULL,
        finished_at timestamptz,
        error_message text,
        node text,
        PRIMARY KEY (run_id, number)
    );

    CREATE TABLE events (
        cursor bigserial PRIMARY KEY,
        owner text NOT NULL,
        type text NOT NULL,
        task_id text,
        run_id text,
        created_at timestamptz NOT NULL,
        payload jsonb NOT NULL
    );
    CREATE INDEX events_owner ON events (owner, cursor);
    CREATE INDEX events_created ON events (created_at);
    """,
    2: """
    CREATE TABLE deliveries (
        id text PRIMARY KEY,
        owner text NOT NULL,
        task_id text,
        event_cursor bigint NOT NULL,
        event_type text NOT NULL,
        url text NOT NULL,
        body text NOT NULL,
        status text NOT NULL,
        attempts integer NOT NULL DEFAULT 0,
        next_attempt_at timestamptz,
        created_at timestamptz NOT NULL,
        last_status integer,
        last_error text,
        delivered_at timestamptz,
        claimed_by text,
        lease_expires_at timestamptz
    );
    CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
    CREATE INDEX deliveries_owner ON deliveries (owner, id);

    CREATE TABLE callback_secrets (
        task_id text NOT NULL,
        secret text NOT NULL,
        created_at timestamptz NOT NULL,
        retires_at timestamptz,
        PRIMARY KEY (task_id, secret)
    );
    """,
    3: """
    ALTER TABLE tasks ADD COLUMN depends_on text;
    ALTER TABLE tasks ADD COLUMN trigger jsonb;
    ALTER TABLE tasks ADD COLUMN condition jsonb;
    CREATE INDEX tasks_depends_on ON tasks (depends_on) WHERE depends_on IS NOT NULL;
    ALTER TABLE runs ADD COLUMN input jsonb;
    CREATE TABLE trigger_events (
        task_id text NOT NULL,
        event_id text NOT NULL,
        run_id text NOT NULL,
        received_at timestamptz NOT NULL,
        PRIMARY KEY (task_id, event_id)
    );
    CREATE INDEX trigger_events_received ON trigger_events (received_at);
    -- Claims take queued runs in (due_at, id) order: without the id, a burst of runs due at
    -- one instant is sorted whole on every claim.
    DROP INDEX runs_queued;
    CREATE INDEX runs_queued ON runs (due_at, id) WHERE status = 'queued';
    """,
}

_META = "CREATE TABLE meta (key text PRIMARY KEY, value text NOT NULL)"


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
        if version == 0:
            await conn.execute(_META)
            await conn.execute(
                "INSERT INTO meta (key, value) VALUES ('application', 'wakecall'), "
                "('schema_version', '0')"
            )
        for target in range(version + 1, SCHEMA_VERSION + 1):
            await conn.execute(_MIGRATIONS[target])
            log.info("upgraded %s to schema version %d", where, target)
        await conn.execute(
            "UPDATE meta SET value = $1 WHERE key = 'schema_version'", str(SCHEMA_VERSION)
        )
