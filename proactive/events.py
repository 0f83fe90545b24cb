"""Behaviour event intake: the wire shape, per-event validation, and durable group-commit writes.

A batch is checked event by event: good events are kept and bad ones come back with a reason,
because one malformed event from a browser must not lose the rest. Events are appended to the
store before the response (a 2xx means durable); concurrent requests share one transaction (group
commit), so durability does not cost one fsync per request.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timezone
from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

import msgspec

from archive import db
from archive.limits import MAX_EPOCH_NUMBER, date_problem

EVENT_TYPES = (
    "pageview", "heartbeat", "scroll", "click", "idle", "exit_intent", "custom", "cart", "goal",
    "invitation_shown", "invitation_accepted", "invitation_dismissed", "chat_started", "chat_ended",
)
MAX_EVENTS = 50
MAX_PROPS_BYTES = 2048
MAX_PROPS_KEYS = 20
FUTURE_SKEW = 300.0
MAX_AGE = 86400.0
_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_BOTS = re.compile(r"bot|crawl|spider|slurp|bingpreview|facebookexternalhit|embedly|quora link preview|pinterest|wget|python-requests|go-http-client|java/|okhttp|lighthouse|pingdom|uptimerobot", re.I)


class EventIn(msgspec.Struct):
    type: str
    at: Any = None
    url: Any = None
    title: Any = None
    referrer: Any = None
    name: Any = None
    props: Any = None


class CollectIn(msgspec.Struct):
    visitor_id: str
    session_id: str
    events: Annotated[list[EventIn], msgspec.Meta(max_length=MAX_EVENTS)]
    site_key: str | None = None


def is_bot(user_agent: str) -> bool:
    return not user_agent or bool(_BOTS.search(user_agent))


def _timestamp(value: Any, now: float) -> float | str:
    if value is None:
        return now
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not -MAX_EPOCH_NUMBER < value < MAX_EPOCH_NUMBER:  # a 400-digit integer overflows a float
            return "at is out of range"
        return value / 1000.0 if value > 1e11 else float(value)  # epoch milliseconds or seconds
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return "at is not an RFC 3339 timestamp or epoch milliseconds"
        if parsed.tzinfo is None:
            return "at needs a time zone"
        if date_problem(parsed):
            return "at is out of range"
        return parsed.timestamp()
    return "at is not a timestamp"


def _text(value: Any, limit: int, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{what} is not text")
    if len(value) > limit:
        raise ValueError(f"{what} is longer than {limit} characters")
    return value


def check_event(event: EventIn, now: float) -> dict[str, Any] | str:
    """A normalised event, or the reason it is rejected."""
    if event.type not in EVENT_TYPES:
        return f"unknown type {str(event.type)[:40]!r}"
    at = _timestamp(event.at, now)
    if isinstance(at, str):
        return at
    if at > now + FUTURE_SKEW:
        return "at is in the future"
    if at < now - MAX_AGE:
        return "at is more than a day old"
    try:
        url = _text(event.url, 2048, "url")
        title = _text(event.title, 512, "title")
        referrer = _text(event.referrer, 2048, "referrer")
        name = _text(event.name, 64, "name")
    except ValueError as exc:
        return str(exc)
    props = event.props or {}
    if not isinstance(props, dict):
        return "props is not an object"
    if len(props) > MAX_PROPS_KEYS or len(msgspec.json.encode(props)) > MAX_PROPS_BYTES:
        return f"props is larger than {MAX_PROPS_KEYS} keys / {MAX_PROPS_BYTES} bytes"
    if any(not isinstance(v, (str, int, float, bool)) and v is not None for v in props.values()):
        return "props values must be text, numbers, booleans or null"
    if event.type in ("custom", "goal") and not (name or props.get("name")):
        return f"a {event.type} event needs a name"
    return {
        "type": event.type, "at_epoch": at, "url": url, "title": title, "referrer": referrer,
        "name": name or (props.get("name") if event.type in ("custom", "goal") else None), "props": props,
    }


def stored_url(url: str | None) -> str:
    """Query strings and fragments are dropped before storage: they carry e-mails and tokens."""
    if not url:
        return ""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))[:512]


class GroupCommitWriter:
    """Rows from concurrent requests, committed together; each caller waits for its commit."""

    def __init__(self, table: Any, max_wait: float = 0.005) -> None:
        self.table = table
        self.max_wait = max_wait
        self._rows: list[Any] = []
        self._waiters: list[asyncio.Future[None]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def write(self, rows: list[Any]) -> None:
        if not rows:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._rows.extend(rows)
        self._waiters.append(future)
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        while self._rows:
            await asyncio.sleep(self.max_wait)  # let concurrent requests join this commit
            rows, waiters = self._rows, self._waiters
            self._rows, self._waiters = [], []
            try:
                async with db.write_transaction():
                    for start in range(0, len(rows), 500):
                        await self.table.insert(*rows[start:start + 500])
            except Exception as exc:  # every caller of this commit learns it failed
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_exception(exc)
            else:
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(None)


def utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def valid_id(value: str) -> bool:
    return bool(_ID.match(value))
