"""Start-up of a server process."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["loading_for_good"]


@contextmanager
def loading_for_good() -> Iterator[None]:
    """Around the imports of a server's start: no cyclic garbage collection meanwhile, and what
    exists afterwards is exempt from later collections (`gc.freeze`).

    Those imports make several hundred thousand objects (the SDK's and wakecall's models, their
    schemas and validators) that live as long as the process and little garbage: each pass of
    the collector over them would be spent in vain, at start-up and for ever after."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
