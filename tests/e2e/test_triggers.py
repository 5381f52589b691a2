"""Inbound events through a real `wakecall serve --http`: signed or bearer, idempotent by event
id, bad requests refused, and a circuit breaker that pauses a task triggered too often."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import anyio
import httpx2
import pytest
from standardwebhooks import Webhook

pytestmark = pytest.mark.slow

TEST_TIMEOUT = 60


def _signed(secret: str, msg_id: str, body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body)
    signature = Webhook(secret).sign(msg_id, datetime.now(UTC), raw)
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(datetime.now(UTC).timestamp())),
        "webhook-signature": signature,
    }
    return raw.encode(), headers


async def test_inbound_events_start_runs_once_each_and_trip_the_breaker(wakecall: Any) -> None:
    with anyio.fail_after(TEST_TIMEOUT):
        async with wakecall.http_server(tokens={}) as server:
            base = server.url.removesuffix("/mcp")
            async with (
                wakecall.client(wakecall.http_transport(server.url, None)) as client,
                httpx2.AsyncClient(timeout=10) as http,
            ):
                task = await wakecall.call(
                    client,
                    "create_task",
                    {
                        "name": "on order",
                        "schedule": "on demand",
                        "action": {"type": "noop"},
                        "trigger": {"per_minute": 3},
                    },
                )
                secret = task["trigger_secret"]
                assert secret.startswith("whsec_") and task["trigger"]["per_minute"] == 3
                url = base + task["trigger"]["path"]
                shown = await wakecall.call(client, "get_task", {"task_id": task["id"]})
                assert shown["trigger_secret"] is None  # shown once only

                # A signed event starts a run; the same event id again does not.
                body, headers = _signed(secret, "msg_1", {"order": 1})
                first = await http.post(url, content=body, headers=headers)
                assert first.status_code == 202, first.text
                again = await http.post(url, content=body, headers=headers)
                assert again.status_code == 200
                assert again.json() == {**first.json(), "duplicate": True}
                # A bearer secret with an Idempotency-Key works too.
                bearer = {"authorization": f"Bearer {secret}", "idempotency-key": "k-2"}
                second = await http.post(url, json={"order": 2}, headers=bearer)
                assert second.status_code == 202 and not second.json()["duplicate"]

                # Refused: wrong or missing credentials, unknown task (the same answer), bad
                # bodies. None of them makes a run.
                _, forged = _signed("whsec_" + "A" * 44, "msg_3", {"order": 3})
                for status, response in [
                    (401, await http.post(url, content=body, headers={**forged})),
                    (401, await http.post(url, json={"order": 3})),
                    (401, await http.post(base + "/triggers/tsk_nope", json={}, headers=bearer)),
                    (415, await http.post(url, content=b"order=3", headers={
                        **bearer, "content-type": "application/x-www-form-urlencoded"})),
                    (413, await http.post(url, content=b"[" + b"1," * 200_000 + b"1]",
                                          headers={**bearer, "content-type": "application/json"})),
                    (400, await http.post(url, content=b"{", headers={
                        **bearer, "content-type": "application/json"})),
                ]:  # fmt: skip
                    assert response.status_code == status, (status, response.text)
                    assert response.json()["error"]

                # The runs ran with the events' bodies as input, and say how they started.
                runs: list[dict[str, Any]] = []
                while len([r for r in runs if r["status"] == "success"]) < 2:
                    page = await wakecall.call(client, "list_runs", {"task_id": task["id"]})
                    runs = page["runs"]
                    await anyio.sleep(0.05)
                assert sorted(r["trigger"] for r in runs) == ["event", "event"]
                completed = []
                after = 0
                while len(completed) < 2:
                    page = await wakecall.call(client, "get_events", {"after": after, "wait": 5})
                    completed += [e for e in page["events"] if e["type"] == "task.run.completed"]
                    after = page["cursor"]
                assert sorted(e["payload"]["run"]["input"]["order"] for e in completed) == [1, 2]

                # Over the limit of 3 a minute: the breaker pauses the task and says why.
                third = await http.post(
                    url, json={"order": 4}, headers={"authorization": bearer["authorization"]}
                )
                assert third.status_code == 202
                # A sender's retry of an event already taken is a duplicate, not over the limit.
                retried = await http.post(url, json={"order": 2}, headers=bearer)
                assert retried.status_code == 200 and retried.json()["duplicate"]
                tripped = await http.post(
                    url, json={"order": 5}, headers={"authorization": bearer["authorization"]}
                )
                assert tripped.status_code == 429 and "circuit breaker" in tripped.json()["error"]
                paused = await wakecall.call(client, "get_task", {"task_id": task["id"]})
                assert paused["status"] == "paused" and "circuit breaker" in paused["pause_note"]
                refused = await http.post(
                    url, json={"order": 6}, headers={"authorization": bearer["authorization"]}
                )
                assert refused.status_code == 409
                event = await wakecall.wait_for_event(client, "task.paused", task_id=task["id"])
                assert "circuit breaker" in event["payload"]["note"]
