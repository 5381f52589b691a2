"""Identifiers: a prefix and 26 characters that sort by creation time.

`tsk_`, `run_`, `evt_`-style ids read well in an agent's transcript and sort in creation order
within one process (a counter breaks ties inside one millisecond), so they double as page cursors.
"""

from __future__ import annotations

import os
import random
import threading
import time

__all__ = ["new_id"]

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case
_lock = threading.Lock()
#: Random bits for uniqueness between processes, not secrecy: a generator seeded from the OS
#: costs a fraction of a system call per id.
_random = random.Random(os.urandom(32))
_last_ms = 0
_counter = 0


def _b32(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def new_id(prefix: str) -> str:
    """A new id such as ``run_01jq3m2x0c8v5k7hd2r9f4tn6b``: 48 bits of milliseconds, then a
    per-millisecond counter seeded at random, then random bits."""
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms <= _last_ms:
            ms = _last_ms
            _counter += 1
        else:
            _last_ms = ms
            _counter = _random.getrandbits(12)  # room to count up
        seq = _counter & 0xFFFFFF  # 24 bits
        rand = _random.getrandbits(54)
    return f"{prefix}_{_b32(ms, 10)}{_b32(seq, 5)}{_b32(rand, 11)}"
