"""Time, injected: the runtime carries one clock, so tests move time instead of sleeping.

``now()`` is aware UTC wall time (what is stored and compared with stored timestamps); ``time()``
is the same instant as epoch seconds (the engagement engine's unit); ``monotonic()`` measures
durations (cache ages, timeouts) and never jumps when the wall clock is corrected.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def is_time_zone(name: str) -> bool:
    """An IANA time zone ``ZoneInfo`` can load. It raises ZoneInfoNotFoundError for an unknown
    name, ValueError for a malformed one, and OSError (IsADirectoryError) for a tzdata folder
    such as "Europe"."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


class Clock(Protocol):
    def now(self) -> datetime: ...

    def time(self) -> float: ...

    def monotonic(self) -> float: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that moves only when told to (tests, backtests, replays)."""

    def __init__(self, start: datetime | float | None = None) -> None:
        if start is None:
            start = time.time()
        self._t = start.timestamp() if isinstance(start, datetime) else float(start)
        self._mono = 1_000.0

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._t, tz=timezone.utc)

    def time(self) -> float:
        return self._t

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float | timedelta) -> None:
        step = seconds.total_seconds() if isinstance(seconds, timedelta) else float(seconds)
        if step < 0:
            raise ValueError("a clock does not go backwards")
        self._t += step
        self._mono += step

    def set(self, moment: datetime | float) -> None:
        target = moment.timestamp() if isinstance(moment, datetime) else float(moment)
        self.advance(max(0.0, target - self._t))
