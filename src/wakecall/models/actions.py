"""What a run does, as an agent or operator writes it: the action specs. Executing them is the
job of `wakecall.actions`; these only validate what is given."""

from __future__ import annotations

import json
import os
import re
from ipaddress import ip_network
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from wakecall.net import MAX_URL_LENGTH, OutboundPolicy, check_url

__all__ = [
    "MAX_ARGS",
    "MAX_ARG_LENGTH",
    "MAX_ENV_VARS",
    "MAX_HEADERS",
    "MAX_HEADER_VALUE",
    "MAX_TIMEOUT_S",
    "Action",
    "CommandAction",
    "NoopAction",
    "WakeupAction",
    "WebhookAction",
]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoopAction(_Spec):
    """Does nothing and succeeds: useful for tests and for tasks that only produce events."""

    type: Literal["noop"] = "noop"


class WakeupAction(_Spec):
    """Calls nothing outside: the run's result is the event that wakes the agent."""

    type: Literal["wakeup"] = "wakeup"
    reason: str = Field("", max_length=2000, description="what the agent should do when woken")
    context: Any = Field(None, description="any JSON, handed back at wake time")


# --- webhook ---------------------------------------------------------------------------
MAX_HEADERS = 50
MAX_HEADER_VALUE = 8192
MAX_TIMEOUT_S = 3600.0

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$")
#: Headers wakecall sets itself or that would break the request's framing.
_RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
_OWN_PREFIX = "x-wakecall-"

# Syntax only: literal addresses are judged against the operator's policy by
# `validate_webhook` and, whatever the URL says, at connect time.
_SYNTAX_ONLY = OutboundPolicy(
    allow_loopback=True, allow_cidrs=(ip_network("0.0.0.0/0"), ip_network("::/0"))
)

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]


class WebhookAction(BaseModel):
    """Calls `url` with `method`, `headers` and, when set, `body` sent as JSON (without a body,
    the run's input is sent, when it has one)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["webhook"] = "webhook"
    url: str = Field(max_length=MAX_URL_LENGTH, description="http:// or https://")
    method: Method = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = Field(None, description="any JSON, sent as the request body")
    timeout: float | None = Field(
        None, gt=0, le=MAX_TIMEOUT_S, description="seconds the HTTP request may take per attempt"
    )

    @field_validator("url")
    @classmethod
    def _valid_url(cls, url: str) -> str:
        check_url(url, _SYNTAX_ONLY)
        return url

    @field_validator("method", mode="before")
    @classmethod
    def _upper_method(cls, method: Any) -> Any:
        return method.upper() if isinstance(method, str) else method

    @field_validator("headers")
    @classmethod
    def _valid_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        if len(headers) > MAX_HEADERS:
            raise ValueError(f"{len(headers)} headers; at most {MAX_HEADERS}")
        for name, value in headers.items():
            if not _TOKEN.match(name):
                raise ValueError(f"header name {name!r} is not a valid HTTP header name")
            lowered = name.lower()
            if lowered in _RESERVED_HEADERS or lowered.startswith(_OWN_PREFIX):
                raise ValueError(f"header {name} is set by wakecall and cannot be given")
            if len(value) > MAX_HEADER_VALUE:
                raise ValueError(f"header {name} is {len(value)} characters; at most 8192")
            if any(c in value for c in "\r\n\0"):
                raise ValueError(f"header {name} contains a line break or NUL")
        return headers

    @field_validator("body")
    @classmethod
    def _json_body(cls, body: Any) -> Any:
        if body is None:
            return body
        try:
            json.dumps(body, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"body must be JSON ({exc})") from None
        return body


# --- command ---------------------------------------------------------------------------
MAX_ARGS = 256
MAX_ARG_LENGTH = 8192
MAX_ENV_VARS = 100
#: Variables that would let a task load code into an allowed executable.
_REFUSED_ENV_PREFIXES = ("LD_", "DYLD_")


class CommandAction(BaseModel):
    """Runs `argv` (no shell) in `cwd`, with `env` over a minimal environment
    (PATH, HOME, LANG). Only for executables the operator allowed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["command"] = "command"
    argv: list[str] = Field(
        min_length=1,
        max_length=MAX_ARGS,
        description="the program (an absolute path or a name found on PATH) and its arguments",
    )
    cwd: str | None = Field(None, max_length=4096, description="an absolute directory")
    env: dict[str, str] = Field(
        default_factory=dict, description="variables set over PATH, HOME and LANG"
    )

    @field_validator("argv")
    @classmethod
    def _valid_argv(cls, argv: list[str]) -> list[str]:
        if not argv[0]:
            raise ValueError("argv[0] is empty; name the program to run, e.g. ['backup']")
        for i, arg in enumerate(argv):
            if "\0" in arg:
                raise ValueError(f"argv[{i}] contains a NUL character")
            if len(arg) > MAX_ARG_LENGTH:
                raise ValueError(f"argv[{i}] is {len(arg)} characters; at most {MAX_ARG_LENGTH}")
        return argv

    @field_validator("cwd")
    @classmethod
    def _absolute_cwd(cls, cwd: str | None) -> str | None:
        if cwd is not None and ("\0" in cwd or not os.path.isabs(cwd)):
            raise ValueError(f"cwd must be an absolute directory such as '/srv/data', not {cwd!r}")
        return cwd

    @field_validator("env")
    @classmethod
    def _valid_env(cls, env: dict[str, str]) -> dict[str, str]:
        if len(env) > MAX_ENV_VARS:
            raise ValueError(f"env has {len(env)} variables; at most {MAX_ENV_VARS}")
        for name, value in env.items():
            if not name or "=" in name or "\0" in name or "\0" in value:
                raise ValueError(f"env name {name!r} is invalid (empty, or contains '=' or NUL)")
            if name.upper().startswith(_REFUSED_ENV_PREFIXES):
                raise ValueError(f"env {name} cannot be set: it changes how programs load code")
            if len(value) > MAX_ARG_LENGTH:
                raise ValueError(f"env {name} is {len(value)} characters; at most {MAX_ARG_LENGTH}")
        return env


Action = Annotated[
    NoopAction | WakeupAction | WebhookAction | CommandAction, Field(discriminator="type")
]
