"""The pieces every platform's signature scheme is made of.

All comparisons are constant-time (``hmac.compare_digest``). A scheme with a signed timestamp
also refuses a push whose timestamp is more than ``tolerance`` away from ``now`` in either
direction: a captured delivery cannot be replayed later, and a clock far ahead is as suspect as
one far behind. ``now`` is always passed in, so tests (and the route) decide what time it is.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timezone

from archive.connectors.errors import SignatureRejected
from archive.connectors.push import Push
from archive.connectors.timestamps import epoch_seconds


def required_header(push: Push, name: str) -> str:
    value = push.header(name)
    if not value:
        raise SignatureRejected("missing_signature", f"the {name} header is missing")
    return value


def hmac_hex(secret: str, message: bytes, algorithm: str = "sha256") -> str:
    return hmac.new(secret.encode(), message, getattr(hashlib, algorithm)).hexdigest()


def same(expected: str, presented: str) -> bool:
    return hmac.compare_digest(expected.encode(), presented.strip().lower().encode())


def check_hex_signature(expected_hex: str, presented: str, header: str, prefix: str = "") -> None:
    """``presented`` is ``<prefix><hex>`` (e.g. ``sha256=…``); anything else is refused."""
    if prefix:
        if not presented.lower().startswith(prefix):
            raise SignatureRejected("bad_signature", f"the {header} header must start with {prefix!r}")
        presented = presented[len(prefix) :]
    if not same(expected_hex, presented):
        raise SignatureRejected("bad_signature", f"the {header} signature does not match this connector's secret")


def check_token(expected: str, presented: str | None, where: str) -> None:
    if not presented:
        raise SignatureRejected("missing_signature", f"{where} is missing")
    if not hmac.compare_digest(expected.encode(), presented.encode()):
        raise SignatureRejected("bad_signature", f"{where} does not match this connector's secret")


def signed_at(raw: str, header: str) -> datetime:
    """A signed timestamp header: Unix time in seconds (or milliseconds, which Crisp may send)."""
    try:
        value = float(raw)
    except ValueError:
        raise SignatureRejected("bad_timestamp", f"the {header} header is not a Unix timestamp") from None
    return datetime.fromtimestamp(epoch_seconds(value), timezone.utc)


def check_fresh(at: datetime, now: datetime, tolerance_seconds: int, header: str) -> None:
    age = (now - at).total_seconds()
    if abs(age) > tolerance_seconds:
        direction = "old" if age > 0 else "far in the future"
        raise SignatureRejected(
            "stale", f"the {header} timestamp is {abs(int(age))} s {direction}; pushes are accepted within {tolerance_seconds} s"
        )
