"""The SQLite store's schema: its version, the application id that marks a wakecall file, and
the migration to each version."""

from __future__ import annotations

import logging
import sqlite3

log = logging.getLogger(__name__)

#: PRAGMA application_id of a wakecall database ("WAKE").
APPLICATION_ID = 0x57414B45
SCHEMA_VERSION = 3

_MIGRATIONS: dict[int, str] = {
    1: """
    CREATE TABLE tasks (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        schedule TEXT NOT NULL,
        timezone TEXT NOT NULL,
        action TEXT NOT NULL,
        retry TEXT NOT NULL,
        timeout_s REAL,
        overlap TEXT NOT NULL,
        max_queued INTEGER NOT NULL,
        catchup TEXT NOT NULL,
        catchup_window_s REAL NOT NULL,
        max_runs INTEGER,
        expires_at INTEGER,
        status TEXT NOT NULL,
        pause_note TEXT,
        callback_url TEXT,
        metadata TEXT NOT NULL,
        idempotency_key TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        next_fire_at INTEGER,
        last_fire_at INTEGER,
        run_count INTEGER NOT NULL DEFAULT 0,
        claimed_by TEXT,
        claim_expires_at INTEGER,
        end_reason TEXT,
        end_announced INTEGER NOT NULL DEFAULT 0
    );
    CREATE UNIQUE INDEX tasks_idempotency ON tasks(owner, idempotency_key)
        WHERE idempotency_key IS NOT NULL;
    CREATE INDEX tasks_due ON tasks(next_fire_at)
        WHERE status = 'active' AND next_fire_at IS NOT NULL;
    CREATE INDEX tasks_owner ON tasks(owner, id);

    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        task_id TEXT NOT NULL,
        owner TEXT NOT NULL,
        trigger TEXT NOT NULL,
        scheduled_for INTEGER,
        due_at INTEGER NOT NULL,
        status TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        max_attempts INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        started_at INTEGER,
        finished_at INTEGER,
        duration_ms INTEGER,
        output TEXT,
        error_message TEXT,
        claimed_by TEXT,
        lease_expires_at INTEGER,
        cancel_requested INTEGER NOT NULL DEFAULT 0,
        counts INTEGER NOT NULL DEFAULT 1,
        UNIQUE (task_id, scheduled_for)
    );
    CREATE INDEX runs_queued ON runs(due_at) WHERE status = 'queued';
    CREATE INDEX runs_running ON runs(lease_expires_at) WHERE status = 'running';
    CREATE INDEX runs_task ON runs(task_id, id);
    CREATE INDEX runs_owner ON runs(owner, id);
    CREATE INDEX runs_finished ON runs(finished_at) WHERE finished_at IS NOT NULL;

    CREATE TABLE attempts (
        run_id TEXT NOT NULL,
        number INTEGER NOT NULL,
        status TEXT NOT NULL,
        started_at INTEGER NOT NULL,
        finished_at INTEGER,
        error_message TEXT,
        node TEXT,
        PRIMARY KEY (run_id, number)
    ) WITHOUT ROWID;

    CREATE TABLE events (
        cursor INTEGER PRIMARY KEY AUTOINCREMENT,
        owner TEXT NOT NULL,
        type TEXT NOT NULL,
        task_id TEXT,
        run_id TEXT,
        created_at INTEGER NOT NULL,
        payload TEXT NOT NULL
    );
    CREATE INDEX events_owner ON events(owner, cursor);
    CREATE INDEX events_created ON events(created_at);
    """,
    2: """
    CREATE TABLE deliveries (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        task_id TEXT,
        event_cursor INTEGER NOT NULL,
        event_type TEXT NOT NULL,
        url TEXT NOT NULL,
        body TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER,
        created_at INTEGER NOT NULL,
        last_status INTEGER,
        last_error TEXT,
        delivered_at INTEGER,
        claimed_by TEXT,
        lease_expires_at INTEGER
    );
    CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE status = 'pending';
    CREATE INDEX deliveries_owner ON deliveries(owner, id);

    CREATE TABLE callback_secrets (
        task_id TEXT NOT NULL,
        secret TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        retires_at INTEGER,
        PRIMARY KEY (task_id, secret)
    ) WITHOUT ROWID;
    """,
    3: """
    ALTER TABLE tasks ADD COLUMN depends_on TEXT;
    ALTER TABLE tasks ADD COLUMN trigger TEXT;
    ALTER TABLE tasks ADD COLUMN condition TEXT;
    CREATE INDEX tasks_depends_on ON tasks(depends_on) WHERE depends_on IS NOT NULL;
    ALTER TABLE runs ADD COLUMN input TEXT;
    CREATE TABLE trigger_events (
        task_id TEXT NOT NULL,
        event_id TEXT NOT NULL,
        run_id TEXT NOT NULL,
        received_at INTEGER NOT NULL,
        PRIMARY KEY (task_id, event_id)
    ) WITHOUT ROWID;
    CREATE INDEX trigger_events_received ON trigger_events(received_at);
    -- Claims take queued runs in (due_at, id) order: without the id, a burst of runs due at
    -- one instant is sorted whole on every claim.
    DROP INDEX runs_queued;
    CREATE INDEX runs_queued ON runs(due_at, id) WHERE status = 'queued';
    """,
}


def migrate(conn: sqlite3.Connection, path: str) -> None:
    """Upgrade the file at `path` to `SCHEMA_VERSION`, in one write transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Re-read under the write lock: another process may have migrated meanwhile.
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        for target in range(version + 1, SCHEMA_VERSION + 1):
            for statement in _MIGRATIONS[target].split(";"):
                if statement.strip():
                    conn.execute(statement)
            log.info("upgraded %s to schema version %d", path, target)
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
