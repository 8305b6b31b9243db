"""Request ids: UUIDv7 as 32 lowercase hex characters.

Time-ordered (the first 48 bits are the Unix time in milliseconds) so that an id alone says
which hour's prediction files hold it, and random in the other 74 bits so that ids from
different processes and machines never collide (no coordination needed between replicas).
"""

from __future__ import annotations

import os
import time

from triptych.errors import InvalidInput

_HEX = frozenset("0123456789abcdef")
_RAND_B = (1 << 62) - 1


def new_request_id(time_ms: int | None = None) -> str:
    """A fresh UUIDv7 (RFC 9562) as 32 lowercase hex characters, for now or ``time_ms``."""
    ms = time.time_ns() // 1_000_000 if time_ms is None else int(time_ms)
    rand = int.from_bytes(os.urandom(10), "big")  # 80 bits: 12 for rand_a, 62 for rand_b
    value = (ms << 80) | (0x7 << 76) | ((rand >> 68) << 64) | (0b10 << 62) | (rand & _RAND_B)
    return f"{value:032x}"


def normalise(request_id: str) -> str:
    """The canonical form of a request id given by a user: dashes and case are forgiven,
    anything that is not a UUIDv7 is refused with InvalidInput."""
    if not isinstance(request_id, str):
        raise InvalidInput(f"a request id is a string, not {type(request_id).__name__}")
    text = request_id.strip().lower().replace("-", "")
    if len(text) != 32 or not set(text) <= _HEX or text[12] != "7" or text[16] not in "89ab":
        raise InvalidInput(
            f"{request_id[:60]!r} is not a request id",
            hint="a request id is the 32 hex characters a prediction answer carries "
            "in request_id (a UUIDv7)",
        )
    return text


def time_of(request_id: str) -> int:
    """The Unix time in milliseconds encoded in ``request_id``; InvalidInput for anything
    that is not a request id."""
    return int(normalise(request_id)[:12], 16)
