"""Raw MCP messages for the tests that speak the protocol without the SDK's client."""

from __future__ import annotations

#: The first request of a session, in the protocol generation both transports accept.
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "raw", "version": "0"},
    },
}
