"""Logging to stderr (stdout carries the protocol over stdio), plain or JSON lines."""

from __future__ import annotations

import json
import logging
import sys

from wakecall.errors import InvalidInput

__all__ = ["configure_logging"]

_EXTRA_KEYS = ("action", "task_id", "run_id", "owner", "node")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        body = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in _EXTRA_KEYS:
            if hasattr(record, key):
                body[key] = getattr(record, key)
        if record.exc_info:
            body["error"] = self.formatException(record.exc_info)
        return json.dumps(body, default=str)


class PlainFormatter(logging.Formatter):
    """`time LEVEL logger: message [task=… run=…]`: the ids an operator greps for."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        ids = [
            f"{key.removesuffix('_id')}={getattr(record, key)}"
            for key in ("task_id", "run_id")
            if getattr(record, key, None)
        ]
        return f"{text} [{' '.join(ids)}]" if ids else text


def configure_logging(level: str = "INFO", fmt: str = "plain") -> None:
    """Log to stderr at `level`, as plain lines or JSON lines (`fmt` "plain" or "json"); the
    task and run ids a record carries (`extra={"task_id": …, "run_id": …}`) are in both."""
    if fmt not in ("plain", "json"):
        raise InvalidInput(f"log format must be 'plain' or 'json', got {fmt!r}", field="log_format")
    if level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise InvalidInput(
            f"log level must be DEBUG, INFO, WARNING or ERROR, got {level!r}", field="log_level"
        )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else PlainFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx2", "httpcore", "mcp", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
