"""Per-visitor state: one visitor, their current visit, and a page per open tab.

Kept in memory for active visitors and written to the database (``VisitorMemory``, below) whenever
it changes, so a restart, a crash or idle expiry changes nothing a visitor or a marketer can see.
Compact on purpose: the engine holds tens of thousands of these, hence ``__slots__`` and small
fixed-size histories.

Time. Every duration is measured on the server's clock: ``now`` is when the server received the
batch. The browser's ``at`` only orders events within a batch and tells a late pageview (sent again
after a failed request) from the page the tab shows now, so a device clock that is off by minutes
changes nothing.

Visits and tabs. A visit (``session.*``) belongs to the visitor, not to a tab: it starts with the
first event and ends after ``VISIT_GAP`` without any event, as in web analytics. Each tab keeps its
own page; ``page.*`` fields read the page in focus (the tab with the latest pageview or the one the
visitor switched to), so a heartbeat from one tab never blanks another's page.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from typing import TYPE_CHECKING, Any, Iterator
from urllib.parse import parse_qs, urlsplit

import msgspec

if TYPE_CHECKING:
    from proactive.store import EventCrypto  # the tenant's event crypto seals memories too

RECENT_EVENTS = 48  # history kept for windowed counts ("3 product views in 10 minutes")
OTHER = 255
VISIT_GAP = 30 * 60.0  # a new visit after 30 minutes without any event
PRESENCE_WINDOW = 45.0  # present: a visible tab heard from within this window (heartbeats come every 15 s)
MAX_TABS = 8
MAX_HISTORY = 32
MAX_BATCH_IDS = 8
MAX_PAGES = 30
MAX_CART_ITEMS = 1_000_000  # a cart's item count beyond this is not a count (the memory keeps an int)
SERVER_TAB = ""  # the tab of events the site's server sends (attributes, triggers): none
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign")


# An exposure (sent, control) older than this no longer counts toward a per-day cap: a calendar
# day is at most 25 hours long.
_DAY_MARGIN = 26 * 3600.0


def _least_needed(history: deque[tuple[str, str, float, str]], now: float) -> int:
    """The entry a full history can best lose. Caps read only the latest dismissal of a rule
    (cooldown), whether it was ever shown, accepted or dismissed (``until``), and its exposures of
    the current day; goal credit the latest ``goal`` of a rule. So an entry another entry of the
    same rule and kind supersedes goes first (an exposure preferably once it is older than a day),
    and the oldest entry only when none does: one rule's traffic must not erase another rule's
    dismissal and invite a visitor the cooldown should keep quiet."""
    latest: dict[tuple[str, str], int] = {}
    for index, (rule_id, what, _, _) in enumerate(history):
        latest[(rule_id, what)] = index
    old_exposure: int | None = None
    recent_exposure: int | None = None
    for index, (rule_id, what, at, _) in enumerate(history):
        if latest[(rule_id, what)] == index:
            continue
        if what not in ("sent", "control"):
            return index
        if old_exposure is None and now - at > _DAY_MARGIN:
            old_exposure = index
        elif recent_exposure is None:
            recent_exposure = index
    if old_exposure is not None:
        return old_exposure
    return recent_exposure if recent_exposure is not None else 0


class EventCodes:
    """Event names as one-byte codes, shared by all visitors of one engine."""

    def __init__(self) -> None:
        self._codes: dict[str, int] = {}
        self._names: list[str] = []

    def code(self, kind: str) -> int:
        code = self._codes.get(kind)
        if code is None:
            if len(self._codes) >= OTHER:
                return OTHER  # beyond 255 distinct event names, the rare ones share one code
            code = self._codes[kind] = len(self._codes)
            self._names.append(kind)
        return code

    def known(self, kind: str) -> int | None:
        return self._codes.get(kind)

    def name(self, code: int) -> str:
        return self._names[code] if code < len(self._names) else ""


class Recent:
    """A small ring of (time, event) for windowed counts: 9 bytes an entry instead of ~80 for tuples."""

    __slots__ = ("times", "kinds")

    def __init__(self) -> None:
        self.times = array("d")
        self.kinds = bytearray()

    def append(self, at: float, code: int) -> None:
        self.times.append(at)
        self.kinds.append(code)
        if len(self.kinds) > RECENT_EVENTS:
            # Full: the oldest event of the commonest kind goes (the oldest such, on a tie), not the
            # oldest event. Otherwise a burst of one kind — four scroll events a page — pushes out
            # the few product views "10 product views in 30 minutes" counts, and the rule never
            # holds. Every kind keeps its newest events, and at least RECENT_EVENTS / kinds of them.
            kinds = self.kinds
            counts = {k: kinds.count(k) for k in set(kinds)}
            most = max(counts.values())
            index = next(i for i, k in enumerate(kinds) if counts[k] == most)
            del self.times[index]
            del kinds[index]

    def matching(self, code: int | None) -> Iterator[float]:
        if code is None:
            return iter(())
        return (t for t, k in zip(self.times, self.kinds) if k == code)


class Page:
    """What one tab shows. ``started`` and ``heard`` are server times, ``client_at`` the browser's."""

    __slots__ = ("tab", "url", "path", "title", "started", "client_at", "scroll_depth", "exit_intent", "heard", "visible", "language")

    def __init__(self, tab: str, now: float) -> None:
        self.tab = tab
        self.url: str | None = None
        self.path: str | None = None
        self.title: str | None = None
        self.started = now
        self.client_at = 0.0
        self.scroll_depth = 0.0
        self.exit_intent = False
        self.heard = now
        self.visible = True
        self.language: str | None = None  # <html lang> of the page


class Session:
    """One visit: from the first event to ``VISIT_GAP`` without any, across all of the visitor's tabs."""

    __slots__ = (
        "number", "started", "last_activity", "tabs", "focus", "pageviews", "product_views", "referrer", "utm",
        "landing_url", "custom", "recent", "invited", "pages", "search",
    )

    def __init__(self, number: int, now: float) -> None:
        self.number = number
        self.started = now
        self.last_activity = now
        self.tabs: list[Page] = []
        self.focus: Page | None = None
        self.pageviews = 0
        self.product_views = 0
        self.referrer: str | None = None
        self.utm: tuple[str | None, str | None, str | None] = (None, None, None)
        self.landing_url: str | None = None
        self.custom: dict[str, int] | None = None
        self.recent = Recent()
        self.invited: dict[str, int] | None = None  # rule id → invitations this visit
        self.pages: list[str] | None = None  # the paths viewed this visit, in order (the last MAX_PAGES)
        self.search: str | None = None  # the search keyword in the landing page's referrer, if any

    def tab(self, tab_id: str, now: float) -> Page:
        for page in self.tabs:
            if page.tab == tab_id:
                return page
        page = Page(tab_id, now)
        if len(self.tabs) >= MAX_TABS:  # the tab heard from least recently goes
            stale = min(self.tabs, key=lambda p: p.heard)
            self.tabs.remove(stale)
            if self.focus is stale:
                self.focus = None
        self.tabs.append(page)
        return page


# What an episode of a rule is doing: a rule "holds" for a visitor from the moment its condition
# becomes true until it becomes false; in that time it sends at most once.
PENDING, WAITING, DONE = 0, 1, 2


class Episode:
    __slots__ = ("since", "due", "status", "reason", "waited_since", "queue")

    def __init__(self, since: float, due: float) -> None:
        self.since = since  # when the condition became true (orders the waiting queue)
        self.due = due  # since + the rule's delay
        self.status = PENDING
        self.reason: str | None = None  # what holds a waiting visitor back
        self.waited_since: float | None = None
        self.queue: Any = None  # the wait queue this episode is in


class VisitorState:
    __slots__ = (
        "tenant", "site", "visitor_hash", "session", "visits", "device", "language", "cart_value", "cart_items",
        "cart_currency", "goals", "chat_active", "last_seen", "episodes", "history", "outstanding", "codes", "batches", "due",
        "attributes", "trusted", "viewport", "country", "region", "url_goals",
    )

    def __init__(self, tenant: Any, site: Any, visitor_hash: str, now: float, codes: EventCodes) -> None:
        self.codes = codes
        self.tenant = tenant
        self.site = site
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
        self.episodes: dict[str, Episode] | None = None  # rule id → its current episode
        # (rule id, event, at, variant): sends, dismissals, holdout exposures, goals — for caps and
        # goal attribution. Created on first use: most visitors are never invited.
        self.history: deque[tuple[str, str, float, str]] | None = None
        self.outstanding: str | None = None  # the open invitation's id
        self.batches: list[str] | None = None  # the last batch ids, to ignore a batch sent twice
        self.due: float | None = None  # when time alone could change a decision next
        # visitor.attributes.*: from parley.identify() in the browser and from the site's server.
        # Names the server set (``trusted``) cannot be overwritten from the browser.
        self.attributes: dict[str, Any] | None = None
        self.trusted: set[str] | None = None
        self.viewport: float | None = None  # CSS pixels wide, at the last pageview
        # visitor.country / visitor.region: looked up by the server from the client's address
        # (proactive.geo) and stored on the pageview as props; the address itself is never kept.
        self.country: str | None = None
        self.region: str | None = None
        self.url_goals: set[str] | None = None  # the URL goals (rules' globs) this visitor reached

    @property
    def key(self) -> tuple[Any, str]:
        return (self.site, self.visitor_hash)

    def remember(self, rule_id: str, what: str, at: float, variant: str) -> None:
        history = self.history
        if history is None:
            history = self.history = deque(maxlen=MAX_HISTORY)
        if len(history) >= MAX_HISTORY:
            del history[_least_needed(history, at)]
        history.append((rule_id, what, at, variant))

    def seen_batch(self, batch_id: str) -> bool:
        """True if this batch was applied before (a retry whose first answer was lost)."""
        if self.batches is not None and batch_id in self.batches:
            return True
        self.batches = [*(self.batches or ())[-(MAX_BATCH_IDS - 1):], batch_id]
        return False

    # --- applying events ---------------------------------------------------------------------

    def visit(self, now: float) -> Session:
        """The current visit, or a new one after ``VISIT_GAP`` without any event."""
        session = self.session
        if session is None or now - self.last_seen > VISIT_GAP:
            self.visits += 1
            session = self.session = Session(self.visits, now)
        return session

    def identify(self, attributes: dict[str, Any], trusted: bool) -> None:
        """Set (or, with null, remove) attributes. The browser cannot change what the server set."""
        current = dict(self.attributes or {})
        names = set(self.trusted or ())
        for name, value in attributes.items():
            if not trusted and name in names:
                continue
            if value is None:
                current.pop(name, None)
                names.discard(name)
            else:
                current[name] = value
                if trusted:
                    names.add(name)
        self.attributes = current or None
        self.trusted = names or None

    def apply(self, event: dict[str, Any], now: float) -> None:
        """One event, received at ``now`` (server time), from the tab ``event["tab"]``
        (``SERVER_TAB``: sent by the site's server, which is no tab and says nothing of presence)."""
        kind = event["type"]
        if kind == "identify":
            self.identify(event.get("props") or {}, trusted=event["tab"] == SERVER_TAB)
            return
        if event["tab"] == SERVER_TAB:
            session = self.visit(now) if self.session is None else self.session
            name = event.get("name") or kind
            session.recent.append(now, self.codes.code(name))
            custom = session.custom = session.custom or {}
            if len(custom) < 32 or name in custom:
                custom[name] = custom.get(name, 0) + 1
            return
        session = self.visit(now)
        self.last_seen = now
        kind = event["type"]
        props = event.get("props") or {}
        page = session.tab(event["tab"], now)
        page.heard = now
        if kind not in ("heartbeat", "idle", "exit_intent", "invitation_shown", "visibility"):
            session.last_activity = now
        name = event.get("name") or kind
        session.recent.append(now, self.codes.code(kind))
        if name != kind:
            session.recent.append(now, self.codes.code(name))
        client_at = event["at_epoch"]
        if kind == "pageview":
            session.pageviews += 1
            url = event.get("url")
            if client_at >= page.client_at:  # a late pageview never moves the tab's page backwards
                if url != page.url:
                    page.started = now
                    page.scroll_depth = 0.0
                    page.exit_intent = False
                page.url = url
                page.path = urlsplit(url).path if url else None
                page.title = event.get("title")
                language = props.get("page_language")
                page.language = language[:16] if isinstance(language, str) and language else None
                page.client_at = client_at
                page.visible = True
                self._focus(session, page)
            if url is not None:
                pages = session.pages
                if pages is None:
                    pages = session.pages = []
                elif len(pages) >= MAX_PAGES:
                    del pages[0]
                pages.append(page.path if page.url == url and page.path is not None else urlsplit(url).path)
            if session.landing_url is None:
                search = props.get("search")
                session.search = search[:200] if isinstance(search, str) and search else None
                session.landing_url = url
                session.referrer = event.get("referrer") or None
                query = parse_qs(urlsplit(url or "").query)
                source, medium, campaign = (query[k][0] if query.get(k) else None for k in UTM_KEYS)
                session.utm = (source, medium, campaign)
            if props.get("product") or props.get("product_id"):
                session.product_views += 1
                session.recent.append(now, self.codes.code("product_view"))
            device = props.get("device")
            if isinstance(device, str):
                self.device = device[:16]
            language = props.get("language")
            if isinstance(language, str):
                self.language = language[:16]
            country = props.get("country")
            if isinstance(country, str):  # a pageview without a location (unknown address) keeps the last one
                self.country = country
                region = props.get("region")
                self.region = region if isinstance(region, str) else None
            viewport = props.get("viewport")
            if isinstance(viewport, (int, float)) and not isinstance(viewport, bool) and 0 <= viewport <= 100_000:
                self.viewport = float(viewport)
        elif kind == "visibility":
            page.visible = props.get("state") != "hidden"
            if page.visible and client_at >= page.client_at:
                self._focus(session, page)
        elif kind == "heartbeat":
            page.visible = True  # the snippet only beats while the tab is visible
        elif kind == "scroll":
            depth = props.get("depth")
            if isinstance(depth, (int, float)):
                page.scroll_depth = max(page.scroll_depth, float(depth))
        elif kind == "exit_intent":
            page.exit_intent = True
        elif kind == "cart":
            value, items = props.get("value"), props.get("items")
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                self.cart_value = float(value)
            if isinstance(items, (int, float)) and not isinstance(items, bool) and 0 <= items <= MAX_CART_ITEMS:
                # The memory keeps a count (an int): a page's 1.5 (or 2.0) items were stored as a
                # float that the memory could not be read back from, and the server did not start.
                self.cart_items = int(items)
            if isinstance(props.get("currency"), str):
                self.cart_currency = props["currency"][:8]
        elif kind == "goal":
            self.goals = (self.goals or set()) | {name}
        elif kind in ("custom", "trigger"):
            custom = session.custom = session.custom or {}
            if len(custom) < 32 or name in custom:
                custom[name] = custom.get(name, 0) + 1
            if name == "product_view":
                session.product_views += 1
        elif kind == "chat_started":
            self.chat_active = True
        elif kind == "chat_ended":
            self.chat_active = False

    @staticmethod
    def _focus(session: Session, page: Page) -> None:
        focus = session.focus
        if focus is None or focus is page or page.client_at >= focus.client_at:
            session.focus = page

    def present(self, now: float) -> bool:
        """A visible tab was heard from within ``PRESENCE_WINDOW``: someone is there to see an invitation."""
        session = self.session
        if session is None:
            return False
        return any(p.visible and now - p.heard <= PRESENCE_WINDOW for p in session.tabs)

    # --- reading fields ----------------------------------------------------------------------

    def field(self, name: str, now: float) -> Any:
        s = self.session
        if name.startswith("custom."):
            return (s.custom or {}).get(name[7:], 0) if s else 0
        if name.startswith("visitor.attributes."):
            return (self.attributes or {}).get(name[19:])
        p = s.focus if s else None
        match name:
            case "page.url": return p.url if p else None
            case "page.path": return p.path if p else None
            case "page.title": return p.title if p else None
            case "page.language": return p.language if p else None
            case "session.pages": return s.pages or [] if s else []
            case "session.search_keyword": return s.search if s else None
            case "visitor.viewport_width": return self.viewport
            case "visitor.country": return self.country
            case "visitor.region": return self.region
            case "page.time_on_page": return now - p.started if p else None
            case "page.scroll_depth": return p.scroll_depth if p else 0
            case "session.pageviews": return s.pageviews if s else 0
            case "session.product_views": return s.product_views if s else 0
            case "session.duration": return now - s.started if s else None
            case "session.idle": return now - s.last_activity if s else None
            case "session.exit_intent": return p.exit_intent if p else False
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
        if name == "page.time_on_page":
            return s.focus.started if s.focus else None
        return {"session.duration": s.started, "session.idle": s.last_activity}.get(name)

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


# --- the durable form ----------------------------------------------------------------------------
# Positional (array_like) msgpack: a visitor with one tab and a few events is a few hundred bytes.
# ``version`` lets a later release read rows an earlier one wrote.


class PageMemory(msgspec.Struct, array_like=True):
    tab: str
    url: str | None
    title: str | None
    started: float
    client_at: float
    scroll_depth: float
    exit_intent: bool
    heard: float
    visible: bool
    language: str | None = None


class SessionMemory(msgspec.Struct, array_like=True):
    number: int
    started: float
    last_activity: float
    tabs: list[PageMemory]
    focus: str | None
    pageviews: int
    product_views: int
    referrer: str | None
    utm: list[str | None]
    landing_url: str | None
    custom: dict[str, int] | None
    recent: list[tuple[float, str]]
    invited: dict[str, int] | None
    pages: list[str] | None = None
    search: str | None = None


class EpisodeMemory(msgspec.Struct, array_like=True):
    rule: str
    since: float
    due: float
    status: int
    reason: str | None
    waited_since: float | None


class VisitorMemory(msgspec.Struct, array_like=True):
    version: int
    visits: int
    last_seen: float
    session: SessionMemory | None
    device: str | None
    language: str | None
    cart_value: float
    cart_items: int
    cart_currency: str | None
    goals: list[str]
    chat_active: bool
    history: list[tuple[str, str, float, str]]
    outstanding: str | None
    episodes: list[EpisodeMemory]
    batches: list[str]
    due: float | None
    attributes: dict[str, Any] | None = None  # added after version 1 rows were written: optional
    trusted: list[str] | None = None
    viewport: float | None = None
    country: str | None = None
    region: str | None = None
    url_goals: list[str] | None = None


MEMORY_VERSION = 1
_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(VisitorMemory)
# A sealed memory starts with this byte, which no msgpack map starts with: rows written before
# memories were sealed still load (and are sealed when next written).
SEALED = b"\x00"


def seal(crypto: EventCrypto, visitor_hash: str, memory: bytes) -> bytes:
    """The stored form of a visitor's memory: what the page told us (URLs, titles, cart, custom
    attributes), redacted on the way in and encrypted here under the tenant's key, bound to the
    visitor."""
    return SEALED + crypto.seal_event(f"memory:{visitor_hash}", memory)


def opened(crypto: EventCrypto, visitor_hash: str, stored: bytes) -> bytes:
    stored = bytes(stored)
    return crypto.open_event(f"memory:{visitor_hash}", stored[1:]) if stored[:1] == SEALED else stored


def dump(state: VisitorState) -> bytes:
    s = state.session
    session = None
    if s is not None:
        session = SessionMemory(
            s.number, s.started, s.last_activity,
            [PageMemory(p.tab, p.url, p.title, p.started, p.client_at, p.scroll_depth, p.exit_intent, p.heard, p.visible, p.language)
             for p in s.tabs],
            s.focus.tab if s.focus else None, s.pageviews, s.product_views, s.referrer, list(s.utm), s.landing_url, s.custom,
            [(t, state.codes.name(k)) for t, k in zip(s.recent.times, s.recent.kinds)], s.invited, s.pages, s.search,
        )
    episodes = [EpisodeMemory(rule, e.since, e.due, e.status, e.reason, e.waited_since) for rule, e in (state.episodes or {}).items()]
    return _encoder.encode(VisitorMemory(
        MEMORY_VERSION, state.visits, state.last_seen, session, state.device, state.language, state.cart_value, state.cart_items,
        state.cart_currency, sorted(state.goals or ()), state.chat_active, list(state.history or ()), state.outstanding, episodes,
        list(state.batches or ()), state.due, state.attributes, sorted(state.trusted) if state.trusted else None,
        state.viewport, state.country, state.region, sorted(state.url_goals) if state.url_goals else None,
    ))


def load(data: bytes, tenant: Any, site: Any, visitor_hash: str, codes: EventCodes) -> VisitorState:
    m = _decoder.decode(data)
    state = VisitorState(tenant, site, visitor_hash, m.last_seen, codes)
    state.visits, state.device, state.language = m.visits, m.device, m.language
    state.cart_value, state.cart_items, state.cart_currency = m.cart_value, m.cart_items, m.cart_currency
    state.goals = set(m.goals) or None
    state.chat_active, state.outstanding, state.due = m.chat_active, m.outstanding, m.due
    state.batches = m.batches or None
    state.attributes = m.attributes or None
    state.trusted = set(m.trusted) if m.trusted else None
    state.viewport = m.viewport
    state.country, state.region = m.country, m.region
    state.url_goals = set(m.url_goals) if m.url_goals else None
    if m.history:
        state.history = deque(m.history, maxlen=MAX_HISTORY)
    if m.episodes:
        state.episodes = {}
        for e in m.episodes:
            episode = state.episodes[e.rule] = Episode(e.since, e.due)
            episode.status, episode.reason, episode.waited_since = e.status, e.reason, e.waited_since
    if m.session is not None:
        sm = m.session
        s = state.session = Session(sm.number, sm.started)
        s.last_activity, s.pageviews, s.product_views = sm.last_activity, sm.pageviews, sm.product_views
        s.referrer, s.landing_url, s.custom, s.invited = sm.referrer, sm.landing_url, sm.custom, sm.invited
        s.utm = (sm.utm[0], sm.utm[1], sm.utm[2])
        s.pages, s.search = sm.pages, sm.search
        for pm in sm.tabs:
            page = Page(pm.tab, pm.started)
            page.url, page.title, page.client_at = pm.url, pm.title, pm.client_at
            page.path = urlsplit(pm.url).path if pm.url else None
            page.scroll_depth, page.exit_intent, page.heard, page.visible = pm.scroll_depth, pm.exit_intent, pm.heard, pm.visible
            page.language = pm.language
            s.tabs.append(page)
            if pm.tab == sm.focus:
                s.focus = page
        for at, name in sm.recent:
            s.recent.append(at, codes.code(name))
    return state
