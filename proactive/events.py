"""Behaviour event intake: the wire shape, per-event validation, and what is stored of an event.

A batch is checked event by event: good events are kept and bad ones come back with a reason,
because one malformed event from a browser must not lose the rest.

The browser's clock is never trusted for time: ``at`` only orders the events of a batch (and tells a
late pageview from the page a tab shows now); durations run on the server's receive time. So ``at``
is checked for being a timestamp at all, not for being close to the server's clock — a device
whose clock is off by minutes (or days) loses nothing.

What is stored is redacted in one place (``as_stored``), and the engine applies exactly that, so
its memory holds nothing the event store would not: query strings and fragments go (they carry
e-mails and tokens) except the UTM parameters rules read; user names and passwords in URLs go;
``props`` keep only the keys the engine reads (``ENGINE_PROPS``: no rule can read any other);
and every text that is left — custom event names, titles, URL paths and hosts, UTM values,
referrers, prop values — passes through the same detectors as transcripts, with the tenant's
redaction settings (cards, IBANs, national ids, phone numbers, e-mail addresses).
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import msgspec

from archive.limits import MAX_EPOCH_NUMBER, date_problem
from archive.redaction import Redactor
from archive.redaction.detectors import MIN_PHONE_DIGITS
from archive.redaction.text import fold

EVENT_TYPES = (
    "pageview", "heartbeat", "scroll", "click", "idle", "exit_intent", "custom", "cart", "goal",
    "invitation_shown", "invitation_accepted", "invitation_dismissed", "chat_started", "chat_ended", "visibility",
    "identify", "trigger",  # parley.identify({...}) (props: the attributes), parley.trigger("name")
)
MAX_EVENTS = 50
MAX_PROPS_BYTES = 2048
MAX_PROPS_KEYS = 20
MAX_URL = 2048  # a url or referrer is cut to this (after its query and fragment, see _kept)
MAX_TITLE = 512  # what is stored of a title (as_stored); a longer one is cut, not refused
EARLIEST = 946684800.0  # 2000-01-01: an ``at`` before this (or after 2100) is not a clock reading
LATEST = 4102444800.0
KEPT_QUERY = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
# The props anything reads: the engine (proactive.state.VisitorState.apply, engine.py's invitation
# events) and the invitation funnel (proactive.funnel: ``rule``, ``variant`` of invitation events).
# Rules read fields the engine derives, never props themselves, so any other key is dropped at
# intake: what nothing can read is not kept. A new prop something reads is added here.
ENGINE_PROPS = frozenset({"product", "product_id", "device", "language", "state", "depth", "value", "items", "currency", "invitation_id",
                          "rule", "variant", "page_language", "viewport", "search"})
# ``country`` and ``region`` are not ENGINE_PROPS on purpose: a browser's are dropped; the server
# adds its own to pageviews from the client's address (proactive.geo.located).
# ``identify`` events carry the visitor's attributes as props: the site declared each of them
# (proactive.visitors.check_attributes ran first), and rules read them, so they are all kept.
_INVITATION_ID = re.compile(r"^[0-9a-f]{32}$")
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
    session_id: str  # the browser tab's id (its sessionStorage); visits are formed by the server
    events: Annotated[list[EventIn], msgspec.Meta(max_length=MAX_EVENTS)]
    site_key: str | None = None
    tab_id: str | None = None  # wins over session_id as the tab's id when given
    batch_id: str | None = None  # a batch sent again with the same id is applied once


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
        if date_problem(parsed):  # year 1 at +01:00 overflows timestamp()
            return "at is out of range"
        return parsed.timestamp()
    return "at is not a timestamp"


_OUT_OF_RANGE = object()
_DECIMAL = re.compile(r"^\s*[-+]?\d{1,15}(\.\d{1,6})?\s*$")  # "79.50": a cart amount sent as text
MAX_SAFE_INTEGER = 2**53 - 1  # a browser's numbers are doubles: a larger integer is one already


def _number(value: Any) -> Any:
    """A prop value with integers beyond what a browser's numbers hold exactly as the double it
    was (the visitor's memory and the event store keep 64-bit integers; a 20-digit integer would
    fail to be written), or ``_OUT_OF_RANGE`` for one beyond any double."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SAFE_INTEGER:
        try:
            return float(value)
        except OverflowError:
            return _OUT_OF_RANGE
    return value


def _text(value: Any, limit: int | None, what: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{what} is not text")
    if limit is not None and len(value) > limit:
        raise ValueError(f"{what} is longer than {limit} characters")
    return value


def _kept(url: str | None, query: tuple[str, ...]) -> str | None:
    """An address longer than MAX_URL is cut to what storage keeps (stored_url, stored_referrer:
    scheme, host, path and the ``query`` parameters named) and then to MAX_URL: faceted search,
    ad click ids and single-page-app state make addresses of many kilobytes, and the event is
    not lost for what would not be stored anyway."""
    if url is None or len(url) <= MAX_URL:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url[:MAX_URL]  # refused as "not a URL" below, as a short one would be
    kept = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k in query])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, kept, ""))[:MAX_URL]


def check_event(event: EventIn, now: float) -> dict[str, Any] | str:
    """A normalised event, or the reason it is rejected. ``now`` stands in for a missing ``at``."""
    if event.type not in EVENT_TYPES:
        return f"unknown type {str(event.type)[:40]!r}"
    at = _timestamp(event.at, now)
    if isinstance(at, str):
        return at
    if not EARLIEST <= at <= LATEST:
        return "at is not a plausible time (epoch milliseconds or RFC 3339 between 2000 and 2100)"
    try:
        url = _kept(_text(event.url, None, "url"), KEPT_QUERY)
        title = _text(event.title, None, "title")
        referrer = _kept(_text(event.referrer, None, "referrer"), ())
        name = _text(event.name, 64, "name")
    except ValueError as exc:
        return str(exc)
    title = title[:MAX_TITLE] if title is not None else None
    for what, value in (("url", url), ("referrer", referrer)):
        try:
            urlsplit(value or "").port  # noqa: B018  (raises on a malformed host or port, as storing it would)
        except ValueError:
            return f"{what} is not a URL"
    props = event.props or {}
    if not isinstance(props, dict):
        return "props is not an object"
    if len(props) > MAX_PROPS_KEYS or len(msgspec.json.encode(props)) > MAX_PROPS_BYTES:
        return f"props is larger than {MAX_PROPS_KEYS} keys / {MAX_PROPS_BYTES} bytes"
    if any(not isinstance(v, (str, int, float, bool)) and v is not None for v in props.values()):
        return "props values must be text, numbers, booleans or null"
    props = {k: _number(v) for k, v in props.items()}
    if any(v is _OUT_OF_RANGE for v in props.values()):
        return "props numbers must be within ±1.7e308"
    if event.type == "cart":
        for key in ("value", "items"):
            amount = props.get(key)
            if isinstance(amount, str):
                # Data layers and shop templates often hand prices over as text ("79.50"): read a
                # plain decimal as the number it is; anything else is named, not silently ignored
                # (the cart would keep its old value and a rule on cart.value would never hold).
                if _DECIMAL.match(amount) is None:
                    return f"props.{key} is not a number: send {key} as a number such as 79.5 (a decimal point, no currency or thousands separators)"
                props[key] = float(amount)
    if event.type in ("custom", "goal", "trigger") and not (name or props.get("name")):
        return f"a {event.type} event needs a name"
    return {
        "type": event.type, "at_epoch": at, "url": url, "title": title, "referrer": referrer,
        "name": name or (props.get("name") if event.type in ("custom", "goal", "trigger") else None), "props": props,
    }


def _worth_redacting(text: str) -> bool:
    """Intake's fast path (most URLs, titles and names hold a few digits at most): a text whose
    folded form (what the detectors read: digits and at-signs of every script made ASCII) has no
    at-sign and fewer digits than the shortest number any detector reads (a phone number; cards,
    IBANs and identity numbers are longer) holds nothing to redact."""
    folded = fold(text)
    return "@" in folded or sum(map(str.isdigit, folded)) >= MIN_PHONE_DIGITS


def _clean(redactor: Redactor, text: str) -> str:
    return redactor.redact(text) if text and _worth_redacting(text) else text


def _clean_quoted(redactor: Redactor, text: str) -> str:
    """A percent-encoded part is read decoded (``%20`` hides a card number from a detector); it is
    kept as sent unless something in it was redacted."""
    if not text:
        return text
    plain = unquote(text)
    if not _worth_redacting(plain):
        return text
    redacted = redactor.redact(plain)
    return text if redacted == plain else quote(redacted, safe="/")


def _host(netloc: str) -> str:
    """Host and port; ``user:password@`` is never kept. Not read by the detectors: an IP address
    would pass for a phone number, and a host name holds neither cards nor e-mail addresses."""
    return netloc.rpartition("@")[2]


def stored_url(url: str | None, redactor: Redactor) -> str:
    """Query strings and fragments are dropped before storage (they carry e-mails and tokens),
    except the UTM parameters: rules read them, and backtests must see what live rules saw."""
    if not url:
        return ""
    parts = urlsplit(url)
    kept = [(k, _clean(redactor, v)) for k, v in parse_qsl(parts.query, keep_blank_values=False) if k in KEPT_QUERY]
    path = _clean_quoted(redactor, parts.path)
    return urlunsplit((parts.scheme, _host(parts.netloc), path, urlencode(kept), ""))[:512]


def stored_referrer(referrer: str | None, redactor: Redactor) -> str:
    """Where the visitor came from, without query or fragment (a search page's query is personal)."""
    if not referrer:
        return ""
    parts = urlsplit(referrer)
    return urlunsplit((parts.scheme, _host(parts.netloc), _clean_quoted(redactor, parts.path), "", ""))[:512]


def _prop(redactor: Redactor, key: str, value: Any) -> Any:
    if key == "invitation_id":
        # The server's own id echoed back (32 hex digits) is kept as is: its digit runs would read
        # as phone numbers. Any other value is kept only if it is an id and nothing in it is sensitive.
        if not isinstance(value, str) or not (_INVITATION_ID.match(value) or (_ID.match(value) and redactor.redact(value) == value)):
            return None
        return value
    if isinstance(value, str):
        return _clean(redactor, value)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and abs(value) >= 1e7:
        # A number long enough to be a card or phone number is read as text; if anything in it is
        # sensitive, the value is not kept (a masked number is not a number any more).
        text = str(value)
        return value if redactor.redact(text) == text else None
    return value


def stored_props(props: dict[str, Any], redactor: Redactor, declared: bool = False) -> dict[str, Any]:
    return {k: _prop(redactor, k, v) for k, v in props.items() if declared or k in ENGINE_PROPS}


def as_stored(event: dict[str, Any], redactor: Redactor) -> dict[str, Any]:
    """A checked event as it is stored *and* as the engine applies it: one redaction for both, so a
    backtest reads exactly what live rules read, and the engine's memory holds nothing the event
    store would not. ``redactor``: one per request, with the tenant's redaction settings."""
    name = event["name"]
    return {**event, "url": stored_url(event["url"], redactor) or None, "referrer": stored_referrer(event["referrer"], redactor) or None,
            "title": _clean(redactor, event["title"] or "")[:512] or None, "name": _clean(redactor, name)[:64] if name else name,
            "props": stored_props(event["props"], redactor, declared=event["type"] == "identify")}


def utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def valid_id(value: str) -> bool:
    return bool(_ID.match(value))
