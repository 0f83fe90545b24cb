"""The generic connector: Parley's own conversation shape, signed the way Stripe signs webhooks.

Any platform (or a script) can push a finished conversation as the body of ``POST
/v1/connectors/{id}/events`` — exactly the shape ``POST /v1/transcripts`` takes for one
conversation (docs/archive.md), including the optional fields in docs/connectors.md — with

    X-Parley-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>

More than one ``v1=`` may be given (a sender rotating its secret signs with both); one match is
enough. Pushes whose ``t`` is more than 5 minutes from Parley's clock are refused. An optional
``X-Parley-Delivery`` header names the delivery; without it a retried body is recognised as
itself. Timestamp fields may also be Unix epoch numbers (seconds, milliseconds or
microseconds), which are converted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from archive.connectors.adapter import Adapter, body_key
from archive.connectors.assemble import to_conversation
from archive.connectors.errors import SignatureRejected
from archive.connectors.outcomes import Finished, Outcome
from archive.connectors.push import ConnectorConfig, Push
from archive.connectors.signatures import check_fresh, hmac_hex, required_header, same, signed_at
from archive.connectors.timestamps import BadTimestamp, parse_time

SIGNATURE_HEADER = "X-Parley-Signature"
DELIVERY_HEADER = "X-Parley-Delivery"
_TIME_FIELDS = ("started_at", "ended_at")
_MESSAGE_TIME_FIELDS = ("at", "edited_at")


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The header value a sender computes (also what the tests and docs use)."""
    return f"t={timestamp},v1={hmac_hex(secret, str(timestamp).encode() + b'.' + body)}"


def verify(push: Push, config: ConnectorConfig, now: datetime) -> None:
    header = required_header(push, SIGNATURE_HEADER)
    timestamp: str | None = None
    signatures: list[str] = []
    for element in header.split(","):
        key, _, value = element.strip().partition("=")
        if key == "t":
            timestamp = value
        elif key == "v1":
            signatures.append(value)
    if timestamp is None or not signatures:
        raise SignatureRejected("bad_signature", f"the {SIGNATURE_HEADER} header must be 't=<unix seconds>,v1=<hex>'")
    check_fresh(signed_at(timestamp, SIGNATURE_HEADER), now, config.tolerance_seconds, SIGNATURE_HEADER)
    expected = hmac_hex(config.secret, timestamp.encode() + b"." + push.body)
    # Every candidate is compared, so the time taken does not say which one matched.
    matches = [same(expected, presented) for presented in signatures]
    if not any(matches):
        raise SignatureRejected("bad_signature", f"the {SIGNATURE_HEADER} signature does not match this connector's secret")


def delivery_key(push: Push, config: ConnectorConfig) -> str:
    delivery = push.header(DELIVERY_HEADER)
    return f"generic:delivery:{delivery[:200]}" if delivery else body_key(push, config)


def parse(push: Push, config: ConnectorConfig) -> Outcome:
    raw = push.json_object()
    for field in _TIME_FIELDS:
        if field in raw:
            raw[field] = _epoch_to_iso(raw[field])
    messages = raw.get("messages")
    for message in messages if isinstance(messages, list) else []:  # another type is named by to_conversation
        if isinstance(message, dict):
            for field in _MESSAGE_TIME_FIELDS:
                if field in message:
                    message[field] = _epoch_to_iso(message[field])
    return Finished(to_conversation(raw))


def _epoch_to_iso(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return parse_time(value).isoformat()
        except BadTimestamp:
            return value
    return value


ADAPTER = Adapter(platform="generic", verify=verify, delivery_key=delivery_key, parse=parse)
