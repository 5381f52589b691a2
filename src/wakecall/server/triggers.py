"""Inbound events: `POST /triggers/{task_id}` on the HTTP server starts a run of the task.

The sender proves it holds the task's trigger secret (issued when triggers were turned on,
shown once) in one of two ways: a Standard Webhooks signature (`webhook-id`,
`webhook-timestamp`, `webhook-signature`), or `Authorization: Bearer <secret>`. The JSON body
(at most `MAX_BODY` bytes) becomes the run's input. An event id (`webhook-id`, or an
`Idempotency-Key` header) makes delivery idempotent: the same id twice runs the task once, and
the second answer says it was a duplicate.

Answers: 202 with the new run's id; 200 for a duplicate; 401 for an unknown task or wrong
credentials (the same answer, so task ids cannot be probed); 409 for a task that is not active;
413, 415 or 400 for a body that is too large, not JSON, or malformed; 429 when the event tripped
the task's circuit breaker (the task is now paused).
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from wakecall.delivery.signing import verify
from wakecall.engine import TaskService
from wakecall.errors import Conflict, LimitReached, TaskNotFound
from wakecall.models import Task

__all__ = ["MAX_BODY", "trigger_route"]

log = logging.getLogger(__name__)

#: The largest event body accepted, in bytes.
MAX_BODY = 256 * 1024


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _authentic(task: Task, request: Request, body: bytes) -> bool:
    secret = (task.trigger or {}).get("secret")
    if not isinstance(secret, str):
        return False
    headers = request.headers
    authorization = headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        offered = authorization[7:].strip().encode()
        return hmac.compare_digest(offered, secret.encode())
    msg_id, stamp, signature = (
        headers.get("webhook-id"),
        headers.get("webhook-timestamp"),
        headers.get("webhook-signature"),
    )
    if not (msg_id and stamp and signature):
        return False
    return verify(secret, msg_id, stamp, body, signature, time.time())


def trigger_route(service: TaskService) -> Route:
    """The `POST /triggers/{task_id}` route over `service`."""

    async def receive(request: Request) -> JSONResponse:
        task_id = request.path_params["task_id"]
        denied = _error(401, "unknown task, or missing or wrong credentials")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
            return _error(413, f"the body is over {MAX_BODY} bytes")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return _error(413, f"the body is over {MAX_BODY} bytes")
        try:
            task = await service.get(None, task_id)
        except TaskNotFound:
            return denied
        if not _authentic(task, request, body):
            return denied
        kind = request.headers.get("content-type", "application/json").split(";")[0].strip()
        if body and kind != "application/json" and not kind.endswith("+json"):
            return _error(415, f"send the event as JSON (application/json), not {kind}")
        try:
            payload: Any = json.loads(body) if body else None
        except ValueError as exc:
            return _error(400, f"the body is not valid JSON: {exc}")
        event_id = request.headers.get("webhook-id") or request.headers.get("idempotency-key")
        if event_id is not None and len(event_id) > 200:
            return _error(400, "the event id (webhook-id, Idempotency-Key) is over 200 characters")
        try:
            run_id, created = await service.trigger(task, event_id, payload)
        except LimitReached as exc:
            return _error(429, str(exc))
        except Conflict as exc:
            return _error(409, str(exc))
        log.info(
            "inbound event for task %s: run %s%s",
            task.id,
            run_id,
            "" if created else " (duplicate)",
            extra={"action": "trigger", "task_id": task.id, "run_id": run_id},
        )
        answer = {"task_id": task.id, "run_id": run_id, "duplicate": not created}
        return JSONResponse(answer, status_code=202 if created else 200)

    return Route("/triggers/{task_id}", receive, methods=["POST"])
