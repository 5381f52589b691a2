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
_MS_MASK = (1 << 50) - 1
_counter = 0


#: Every pair of digits, by the 10 bits they stand for.
_PAIRS = [high + low for high in _ALPHABET for low in _ALPHABET]
_SHIFTS = range(120, -1, -10)


def _b32(value: int) -> str:
    """`value` (under 2**130) as 26 base32 digits, most significant first."""
    return "".join([_PAIRS[(value >> shift) & 1023] for shift in _SHIFTS])


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
    # 10 digits of milliseconds, 5 of the counter, 11 random: 50 + 25 + 55 bits.
    return f"{prefix}_{_b32(((ms & _MS_MASK) << 80) | (seq << 55) | rand)}"
