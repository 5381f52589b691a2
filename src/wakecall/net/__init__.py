"""Outgoing HTTP: the one shared client and the outgoing-URL guard, on public httpx2 and
httpcore2 API only.

Webhook actions and callbacks go to URLs that agents choose, so wakecall must not become a way
to reach what sits behind it (the loopback interface, the private network, the cloud metadata
address). The guard works at two moments:

- `check_url` when a URL is accepted (`guard`): syntax, and hosts written as IP literals in
  every form a resolver accepts, judged as the address they stand for.
- At connect time (`backend`): every connection of the shared client is made by
  `GuardedBackend`, which resolves the host itself, judges every address, and connects to a
  vetted one. A name rebound to 127.0.0.1 after it was checked (DNS rebinding) is refused
  then. TLS still verifies the certificate against the original host name, and the `Host`
  header keeps it too.

`transport` holds the client's transport (`GuardedTransport`: an `httpx2.AsyncBaseTransport`
around an `httpcore2.AsyncConnectionPool` with that backend); `client` the shared client
(`build_http_client`).

The operator opens exceptions with an `OutboundPolicy` (the server setting `allow_outbound`:
`--allow-outbound 10.0.0.0/8`, `--allow-outbound loopback`, `WAKECALL_ALLOW_OUTBOUND`).
"""

from .backend import MAX_HELD_WRITE, GuardedBackend, OneWritePerRequestStream
from .client import DEFAULT_TIMEOUT, GuardedClient, build_http_client, user_agent
from .guard import (
    EXAMPLE_URL,
    MAX_URL_LENGTH,
    IPAddress,
    IPNetwork,
    OutboundPolicy,
    Resolver,
    check_address,
    check_host,
    check_url,
    operator_remedy,
    parse_ipv4_literal,
    resolve_host,
)
from .transport import DEFAULT_LIMITS, GuardedTransport, httpx_error_for

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_TIMEOUT",
    "EXAMPLE_URL",
    "MAX_HELD_WRITE",
    "MAX_URL_LENGTH",
    "GuardedBackend",
    "GuardedClient",
    "GuardedTransport",
    "IPAddress",
    "IPNetwork",
    "OneWritePerRequestStream",
    "OutboundPolicy",
    "Resolver",
    "build_http_client",
    "check_address",
    "check_host",
    "check_url",
    "httpx_error_for",
    "operator_remedy",
    "parse_ipv4_literal",
    "resolve_host",
    "user_agent",
]
