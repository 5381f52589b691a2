"""Store URLs in messages: never with their password."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

__all__ = ["redact"]

_PASSWORD_PARAM = re.compile(r"(password\s*=\s*)[^\s&]+", re.IGNORECASE)


def redact(url: str) -> str:
    """The URL (or key=value DSN, or file path) without its password, for messages."""
    try:
        parts = urlsplit(url)
        if parts.password is not None:
            host = parts.netloc.rsplit("@", 1)[1]
            url = urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))
    except ValueError:
        return "<unparsable URL>"
    return _PASSWORD_PARAM.sub(r"\1***", url)
