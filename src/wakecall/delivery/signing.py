"""Standard Webhooks signatures: `whsec_` secrets, `v1,` HMAC-SHA256 over `id.timestamp.body`.

A receiver verifies with any Standard Webhooks library (e.g. `standardwebhooks` on PyPI) and the
secret shown once when the task got its callback URL. During a rotation several secrets sign at
once; the header then carries one `v1,` signature per secret, separated by spaces.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence

__all__ = ["new_secret", "sign", "verify"]

#: How far a signed message's timestamp may be from now (replay protection), as the
#: Standard Webhooks libraries check it.
TOLERANCE_S = 5 * 60

PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh secret: `whsec_` and 32 random bytes in base64."""
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def sign(secrets_: Sequence[str], msg_id: str, timestamp: int, body: str) -> str:
    """The `webhook-signature` header value for `body`, signed by every secret given."""
    content = f"{msg_id}.{timestamp}.{body}".encode()
    parts = []
    for secret in secrets_:
        digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
        parts.append("v1," + base64.b64encode(digest).decode())
    return " ".join(parts)


def verify(secret: str, msg_id: str, timestamp: str, body: bytes, header: str, now: float) -> bool:
    """Whether `header` (a `webhook-signature` value) holds a valid `v1,` signature of `body`
    by `secret`, with a timestamp within `TOLERANCE_S` of `now` (Unix seconds)."""
    try:
        stamp = int(timestamp)
    except ValueError:
        return False
    if abs(now - stamp) > TOLERANCE_S:
        return False
    content = f"{msg_id}.{stamp}.".encode() + body
    expected = base64.b64encode(hmac.new(_key(secret), content, hashlib.sha256).digest())
    for part in header.split():
        version, _, signature = part.partition(",")
        if version == "v1" and hmac.compare_digest(signature.encode(), expected):
            return True
    return False
