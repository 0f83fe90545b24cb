"""Per-visitor state, kept in memory for active visitors (idle ones expire), compact on purpose:
the engine holds tens of thousands of these, so ``__slots__`` and small fixed-size histories."""

from __future__ import annotations

from array import array
from collections import deque
from typing import Any, Iterator
from urllib.parse import parse_qs, urlsplit

RECENT_EVENTS = 48  # history kept for windowed counts ("3 product views in 10 minutes")
OTHER = 255


class EventCodes:
    """Event names as one-byte codes, shared by all visitors of one engine."""

    def __init__(self) -> None:
        self._codes: dict[str, int] = {}

    def code(self, kind: str) -> int:
        code = self._codes.get(kind)
        if code is None:
            if len(self._codes) >= OTHER:
                return OTHER  # beyond 255 distinct event names, the rare ones share one code
            code = self._codes[kind] = len(self._codes)
        return code

    def known(self, kind: str) -> int | None:
        return self._codes.get(kind)


class Recent:
    """A small ring of (time, event) for windowed counts: 9 bytes an entry instead of ~80 for tuples."""

    __slots__ = ("times", "kinds")

    def __init__(self) -> None:
        self.times = array("d")
        self.kinds = bytearray()

    def append(self, at: float, code: int) -> None:
        if len(self.kinds) >= RECENT_EVENTS:
            del self.times[0]
            del self.kinds[0]
        self.times.append(at)
        self.kinds.append(code)

    def matching(self, code: int | None) -> Iterator[float]:
        if code is None:
            return iter(())
        return (t for t, k in zip(self.times, self.kinds) if k == code)


class Session:
    __slots__ = (
        "id", "started", "last_activity", "url", "path", "title", "page_started", "scroll_depth", "pageviews",
        "product_views", "exit_intent", "referrer", "utm", "landing_url", "custom", "recent", "invited",
    )

    def __init__(self, session_id: str, now: float) -> None:
        self.id = session_id
        self.started = now
        self.last_activity = now
        self.url: str | None = None
        self.path: str | None = None
        self.title: str | None = None
        self.page_started = now
        self.scroll_depth = 0.0
        self.pageviews = 0
        self.product_views = 0
        self.exit_intent = False
        self.referrer: str | None = None
        self.utm: tuple[str | None, str | None, str | None] = (None, None, None)
        self.landing_url: str | None = None
        self.custom: dict[str, int] | None = None
        self.recent = Recent()
        self.invited: dict[str, int] | None = None  # rule id → invitations this session


class VisitorState:
    __slots__ = (
        "tenant", "site", "visitor_id", "visitor_hash", "session", "visits", "device", "language", "cart_value",
        "cart_items", "cart_currency", "goals", "chat_active", "last_seen", "matched", "history", "outstanding", "codes",
    )

    def __init__(self, tenant: Any, site: Any, visitor_id: str, visitor_hash: str, now: float, codes: EventCodes) -> None:
        self.codes = codes
        self.tenant = tenant
        self.site = site
        self.visitor_id = visitor_id
        self.visitor_hash = visitor_hash
        self.session: Session | None = None
        self.visits = 0
        self.device: str | None = None
        self.language: str | None = None
        self.cart_value = 0.0
        self.cart_items = 0
        self.cart_currency: str | None = None
        self.goals: set[str] | None = None
        self.chat_active = False
        self.last_seen = now
        self.matched: set[str] | None = None  # rule ids whose condition held at the last evaluation
        # (rule id, event, at, variant): sends, dismissals, holdout exposures — for caps and goal
        # attribution. Created on first use: most visitors are never invited.
        self.history: deque[tuple[str, str, float, str]] | None = None
        self.outstanding: str | None = None  # the open invitation's id

    def remember(self, rule_id: str, what: str, at: float, variant: str) -> None:
        if self.history is None:
            self.history = deque(maxlen=32)
        self.history.append((rule_id, what, at, variant))

    # --- applying events ---------------------------------------------------------------------

    def touch(self, session_id: str, now: float) -> Session:
        if self.session is None or self.session.id != session_id:
            self.session = Session(session_id, now)
            self.visits += 1
        return self.session

    def apply(self, event: dict[str, Any], at: float) -> None:
        session = self.touch(event["session_id"], at)
        kind = event["type"]
        props = event.get("props") or {}
        self.last_seen = max(self.last_seen, at)
        if kind not in ("heartbeat", "idle", "exit_intent", "invitation_shown"):
            session.last_activity = max(session.last_activity, at)
        name = event.get("name") or kind
        session.recent.append(at, self.codes.code(kind))
        if name != kind:
            session.recent.append(at, self.codes.code(name))
        if kind == "pageview":
            url = event.get("url")
            if url and url != session.url:
                session.page_started = at
                session.scroll_depth = 0.0
                session.exit_intent = False
            session.url = url
            session.path = urlsplit(url).path if url else None
            session.title = event.get("title")
            session.pageviews += 1
            if session.landing_url is None:
                session.landing_url = url
                session.referrer = event.get("referrer") or None
                query = parse_qs(urlsplit(url or "").query)
                first: list[str | None] = [(query.get(k) or [None])[0] for k in ("utm_source", "utm_medium", "utm_campaign")]  # type: ignore[list-item]
                session.utm = (first[0], first[1], first[2])
            if props.get("product") or props.get("product_id"):
                session.product_views += 1
                session.recent.append(at, self.codes.code("product_view"))
            device = props.get("device")
            if isinstance(device, str):
                self.device = device[:16]
            language = props.get("language")
            if isinstance(language, str):
                self.language = language[:16]
        elif kind == "scroll":
            depth = props.get("depth")
            if isinstance(depth, (int, float)):
                session.scroll_depth = max(session.scroll_depth, float(depth))
        elif kind == "exit_intent":
            session.exit_intent = True
        elif kind == "cart":
            for attr, key in (("cart_value", "value"), ("cart_items", "items")):
                if isinstance(props.get(key), (int, float)):
                    setattr(self, attr, props[key])
            if isinstance(props.get("currency"), str):
                self.cart_currency = props["currency"][:8]
        elif kind == "goal":
            self.goals = (self.goals or set()) | {name}
        elif kind == "custom":
            custom = session.custom = session.custom or {}
            if len(custom) < 32 or name in custom:
                custom[name] = custom.get(name, 0) + 1
            if name == "product_view":
                session.product_views += 1
        elif kind == "chat_started":
            self.chat_active = True
        elif kind == "chat_ended":
            self.chat_active = False

    # --- reading fields ----------------------------------------------------------------------

    def field(self, name: str, now: float) -> Any:
        s = self.session
        if name.startswith("custom."):
            return (s.custom or {}).get(name[7:], 0) if s else 0
        match name:
            case "page.url": return s.url if s else None
            case "page.path": return s.path if s else None
            case "page.title": return s.title if s else None
            case "page.time_on_page": return now - s.page_started if s else None
            case "page.scroll_depth": return s.scroll_depth if s else 0
            case "session.pageviews": return s.pageviews if s else 0
            case "session.product_views": return s.product_views if s else 0
            case "session.duration": return now - s.started if s else None
            case "session.idle": return now - s.last_activity if s else None
            case "session.exit_intent": return s.exit_intent if s else False
            case "session.referrer": return s.referrer if s else None
            case "session.utm_source": return s.utm[0] if s else None
            case "session.utm_medium": return s.utm[1] if s else None
            case "session.utm_campaign": return s.utm[2] if s else None
            case "session.landing_url": return s.landing_url if s else None
            case "visitor.visits": return self.visits
            case "visitor.returning": return self.visits > 1
            case "visitor.device": return self.device
            case "visitor.language": return self.language
            case "cart.value": return self.cart_value
            case "cart.items": return self.cart_items
            case "cart.currency": return self.cart_currency
            case "chat.active": return self.chat_active
            case "goals": return sorted(self.goals or ())
        return None

    def grows_at(self, name: str) -> float | None:
        s = self.session
        if s is None:
            return None
        return {"page.time_on_page": s.page_started, "session.duration": s.started, "session.idle": s.last_activity}.get(name)

    def count(self, event: str, within: float, now: float) -> int:
        if self.session is None:
            return 0
        since = now - within
        return sum(1 for at in self.session.recent.matching(self.codes.known(event)) if at >= since)

    def count_expiry(self, event: str, within: float, now: float) -> float | None:
        """When the oldest counted event leaves the window (the count drops)."""
        if self.session is None:
            return None
        times = [at for at in self.session.recent.matching(self.codes.known(event)) if at >= now - within]
        expiry = min(times) + within if times else None
        # Only a future change is worth a timer: one due "now" would be re-armed at once, forever.
        return expiry if expiry is not None and expiry > now else None
