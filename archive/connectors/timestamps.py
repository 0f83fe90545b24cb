"""Platform timestamps into aware UTC datetimes.

Platforms disagree: Chatwoot sends ISO strings in webhooks and epoch seconds from its API
(sometimes with a fraction), Crisp and Rocket.Chat exports epoch milliseconds, LiveChat RFC 3339
with microseconds, Ruby's ``Time#to_s`` ends in `` UTC``, MongoDB Extended JSON wraps a date in
``{"$date": ...}``. The unit of a bare number is told by its size: no chat happened before 1973 in
milliseconds or after 5138 in seconds, so the ranges cannot be confused.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Any

_SECONDS_BELOW = 1e11  # 5138-11-16 in seconds; 1973-03-03 in milliseconds
_MILLIS_BELOW = 1e14
_MICROS_BELOW = 1e17
_RUBY_UTC = re.compile(r"^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}:\d{2}(?:\.\d+)?) ?(UTC|[+-]\d{2}:?\d{2})$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


class BadTimestamp(ValueError):
    pass


def epoch_seconds(value: float) -> float:
    """Seconds from a number in seconds, milliseconds, microseconds or nanoseconds."""
    magnitude = abs(value)
    if magnitude < _SECONDS_BELOW:
        return value
    if magnitude < _MILLIS_BELOW:
        return value / 1e3
    if magnitude < _MICROS_BELOW:
        return value / 1e6
    return value / 1e9


def parse_time(value: Any) -> datetime:
    """Any timestamp shape a supported platform sends; naive ISO strings are taken as UTC."""
    if isinstance(value, dict) and "$date" in value:
        return parse_time(value["$date"])
    if isinstance(value, bool):
        raise BadTimestamp(f"not a timestamp: {value!r}")
    if isinstance(value, (int, float)):
        return _from_epoch(float(value))
    if isinstance(value, str):
        text = value.strip()
        if "-" in text[1:] or ":" in text:  # the common case, ISO 8601 (Python 3.11 reads "Z")
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError:
                pass
            else:
                return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
        if _NUMBER.match(text):  # a bare number is epoch; never ISO's basic "20261014"
            return _from_epoch(float(text))
        ruby = _RUBY_UTC.match(text)
        if ruby:
            zone = "+00:00" if ruby.group(3) == "UTC" else ruby.group(3)
            text = f"{ruby.group(1)}T{ruby.group(2)}{zone}"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise BadTimestamp(f"not a timestamp: {value!r}") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.astimezone(timezone.utc)
    raise BadTimestamp(f"not a timestamp: {value!r}")


def maybe_time(value: Any) -> datetime | None:
    """``parse_time`` for optional fields: missing, zero or unreadable gives None."""
    if value in (None, "", 0):
        return None
    try:
        return parse_time(value)
    except BadTimestamp:
        return None


def _from_epoch(value: float) -> datetime:
    try:
        return datetime.fromtimestamp(epoch_seconds(value), timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise BadTimestamp(f"timestamp out of range: {value!r}") from None
