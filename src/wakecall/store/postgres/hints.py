"""The PostgreSQL store's hints to other nodes: NOTIFY on the schema's channel, and `watch`,
which LISTENs on it with a connection of its own."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import anyio
import asyncpg

from wakecall.store.base import RESYNC, Hint, HintListener
from wakecall.store.postgres.connection import _CONNECTION_ERRORS, StoreConnection

log = logging.getLogger(__name__)

_MAX_HINT_BYTES = 7000


class Hints(StoreConnection):
    """The hints of `PostgresStore` to other nodes."""

    def _hint_payload(self, *, due: bool, owners: Sequence[str] = ()) -> str:
        body: dict[str, Any] = {"s": self._sender, "d": due, "o": sorted(set(owners))}
        text = json.dumps(body, separators=(",", ":"))
        if len(text.encode()) > _MAX_HINT_BYTES:  # NOTIFY payloads stop at 8000 bytes
            text = json.dumps({"s": self._sender, "d": due, "a": True}, separators=(",", ":"))
        return text

    async def _hint(
        self, conn: asyncpg.Connection, *, due: bool, owners: Sequence[str] = ()
    ) -> None:
        """NOTIFY the other nodes; inside a transaction, sent when (and if) it commits."""
        await conn.execute(
            "SELECT pg_notify($1, $2)", self.channel, self._hint_payload(due=due, owners=owners)
        )

    def _parse_hint(self, payload: str) -> Hint | None:
        try:
            body = json.loads(payload)
            if body.get("s") == self._sender:
                return None  # our own change: this process knows already
            return Hint(
                due=bool(body.get("d")),
                owners=frozenset(str(o) for o in body.get("o") or ()),
                all_owners=bool(body.get("a")),
            )
        except (ValueError, TypeError, AttributeError):
            log.warning("ignoring a malformed hint on %s: %.200r", self.channel, payload)
            return None

    async def watch(self, on_hint: HintListener) -> None:
        """LISTEN on the schema's channel with a connection of its own. A lost connection is
        made again (backing off up to 10 s), followed by `RESYNC`; the connection is checked
        every `listen_check` seconds, so a silently dead one is noticed too."""
        delay = 0.2
        resync = False
        while True:
            try:
                conn = await asyncpg.connect(
                    self.url,
                    timeout=self.connect_timeout,
                    server_settings={"application_name": "wakecall-listen"},
                )
            except (*_CONNECTION_ERRORS, asyncpg.PostgresError) as exc:
                log.warning("listening for hints: cannot connect (%s); again in %.1fs", exc, delay)
                await anyio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            delay = 0.2
            try:
                await self._listen(conn, on_hint, resync=resync)
            except (*_CONNECTION_ERRORS, asyncpg.PostgresError) as exc:
                log.warning("listening for hints on %s: connection lost (%s)", self._where, exc)
            finally:
                conn.terminate()
            resync = True

    async def _listen(
        self, conn: asyncpg.Connection, on_hint: HintListener, *, resync: bool
    ) -> None:
        """Hand hints to `on_hint` until `conn` is lost."""
        lost = anyio.Event()

        def received(_conn: object, _pid: int, _channel: str, payload: str) -> None:
            hint = self._parse_hint(payload)
            if hint is not None:
                on_hint(hint)

        conn.add_termination_listener(lambda _conn: lost.set())
        await conn.add_listener(self.channel, received)
        if resync:
            log.info("listening for hints on %s again", self._where)
            on_hint(RESYNC)
        while not lost.is_set():
            with anyio.move_on_after(self.listen_check):
                await lost.wait()
            if not lost.is_set():
                with anyio.fail_after(self.connect_timeout):
                    await self._measure_offset(conn)
        log.warning("listening for hints on %s: the connection closed", self._where)
