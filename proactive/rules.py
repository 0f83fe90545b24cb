"""Marketing rules: parse (YAML or JSON), validate with field paths, and evaluate against a
visitor's state. Hostile rules are refused up front: nesting depth, list sizes and string
lengths are capped, and regular expressions compile only on RE2 (no catastrophic backtracking).

    rules:
      - name: pricing-hesitation
        site: shop
        when:
          all:
            - {field: page.url, op: glob, value: "*/pricing*"}
            - {field: page.time_on_page, op: gte, value: 30s}
            - {count: product_view, within: 10m, op: gte, value: 3}
            - not: {field: chat.active, op: eq, value: true}
        invite: {message: "Questions about our plans?", group: sales, delay: 5s, expires: 2m, max_wait: 2m}
        caps: {per_visitor_per_day: 1, per_session: 1, cooldown_after_dismiss: 1d}
        business_hours: {timezone: Europe/Oslo, days: mon-fri, from: "08:00", to: "18:00"}
        variants: [{name: a, weight: 50}, {name: b, weight: 50, message: "Need help choosing?"}]
        holdout: 10%
        goal: {event: purchase, within: 30m}

Targeting (docs/proactive.md, *Targeting*): ``schedule`` (= ``business_hours``) with several and
overnight windows, ``24:00``, start/end dates and the site's holidays, in the site's time zone by
default; caps default to once a day and 7 days after a dismissal (``null`` turns one off),
``caps.until: seen | interacted``; ``visitor.attributes.<name>`` (only attributes the site
declares: ``undeclared_attributes``), ``agents.online``, ``visitor.country``/``visitor.region``
(proactive.geo), the snippet's page fields, ``session.pages`` with ``steps`` (funnels) and
case-insensitive operators (``ieq`` …); ``goal`` an event or a URL glob, credited by first- or
last-touch ``attribution`` among the rules sharing it (proactive.engine ``_attribute_goal``).
"""

from __future__ import annotations

import fnmatch
import math
import re
from datetime import date, datetime, timedelta
from datetime import time as dtime
from typing import Any, Callable, Literal, Mapping, Union
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import msgspec
import yaml

from archive.clock import is_time_zone
from archive.errors import FieldError, InvalidInput
from archive.limits import check_json_document, load_yaml
from proactive.state import RECENT_EVENTS

MAX_DEPTH = 8
MAX_NODES = 100
MAX_LIST = 200
MAX_STRING = 2000
MAX_RULES = 500
DEFAULT_MAX_WAIT = 120.0
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
OPS = ("eq", "ne", "in", "gt", "gte", "lt", "lte", "contains", "starts_with", "glob", "regex",
       "ieq", "ine", "iin", "icontains", "istarts_with", "iglob", "steps")
# Case-insensitive forms of the text operators: both sides are compared casefolded ("Pricing" ieq "PRICING").
CASELESS = {"ieq": "eq", "ine": "ne", "iin": "in", "icontains": "contains", "istarts_with": "starts_with", "iglob": "glob"}
ATTRIBUTE_PREFIX = "visitor.attributes."
ATTRIBUTE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}

# field → (type, is it a duration that grows with time?)
FIELDS: dict[str, tuple[str, bool]] = {
    "page.url": ("str", False), "page.path": ("str", False), "page.title": ("str", False),
    "page.time_on_page": ("duration", True), "page.scroll_depth": ("number", False),
    "session.pageviews": ("number", False), "session.product_views": ("number", False),
    "session.duration": ("duration", True), "session.idle": ("duration", True),
    "session.exit_intent": ("bool", False), "session.referrer": ("str", False),
    "session.utm_source": ("str", False), "session.utm_medium": ("str", False), "session.utm_campaign": ("str", False),
    "session.landing_url": ("str", False),
    "visitor.visits": ("number", False), "visitor.returning": ("bool", False), "visitor.device": ("str", False),
    "visitor.language": ("str", False),
    "cart.value": ("number", False), "cart.items": ("number", False), "cart.currency": ("str", False),
    "chat.active": ("bool", False),
    "goals": ("list", False),
    "agents.online": ("bool", False),
    "page.language": ("str", False), "visitor.viewport_width": ("number", False),
    "session.search_keyword": ("str", False), "session.pages": ("pages", False),
    "visitor.country": ("str", False), "visitor.region": ("str", False),
}
# Fields whose value depends on the rule reading them (its agent group), not only on the visitor:
# never shared between the rules of one evaluation.
RULE_FIELDS = frozenset({"agents.online"})
DYNAMIC_PREFIXES = ("custom.", ATTRIBUTE_PREFIX)  # custom.<event name>: count in this visit; visitor.attributes.<name>


MAX_SECONDS = 366 * 86400.0  # no duration a rule can use is longer than a year


def finite_number(value: Any) -> float | None:
    """A JSON/YAML number as a float, or None for booleans, non-numbers, NaN, ±inf and numbers
    too large for a float (a 400-digit integer is a valid JSON number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def parse_duration(value: Any, path: str) -> float:
    seconds = finite_number(value)
    if seconds is None:
        match = _DURATION.match(value.strip()) if isinstance(value, str) and len(value) < 32 else None
        if match is not None:
            seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds is None or not 0 <= seconds <= MAX_SECONDS:
        shown = repr(value) if not isinstance(value, str) or len(value) < 40 else repr(value[:40] + "…")
        raise InvalidInput("invalid duration", [FieldError(path, f"a duration like 30s, 10m, 2h or 1d (at most a year), got {shown}")])
    return seconds


# --- the compiled form -----------------------------------------------------------------------


class Compare(msgspec.Struct, frozen=True):
    field: str
    op: str
    value: Any  # canonical and hashable (a frozenset for 'in')
    kind: str  # str | number | duration | bool | list
    grows: bool  # a duration that increases with time without any event
    matcher: Any = None  # compiled regex / glob
    test: Any = None  # the comparison, total over the field's values: see _predicate
    key: Any = None  # (field, op, value): equal comparisons of different rules share one memo entry


class Count(msgspec.Struct, frozen=True):
    event: str
    within: float
    op: str
    value: float
    key: Any = None  # (event, within, op, value): the memo key of evaluate_timed


class AllOf(msgspec.Struct, frozen=True):
    children: list["Condition"]
    # The same children, comparisons time cannot change first: one of them false makes the whole
    # false until the next event, so the timed evaluation stops there (the result does not depend
    # on the order). ``children`` keeps the marketer's order for explain.
    timed_order: list["Condition"] = []


class AnyOf(msgspec.Struct, frozen=True):
    children: list["Condition"]


class NotOf(msgspec.Struct, frozen=True):
    child: "Condition"


Condition = Union[Compare, Count, AllOf, AnyOf, NotOf]


class Variant(msgspec.Struct, frozen=True):
    name: str
    weight: float
    message: str | None = None


class Caps(msgspec.Struct, frozen=True):
    """How often one visitor may be invited by a rule. A rule that says nothing gets the safe
    defaults (``DEFAULT_CAPS``): once a calendar day, and not for 7 days after a dismissal; a cap
    given as ``null`` is off. ``until``: ``seen`` stops the rule for good once the visitor has
    seen one of its invitations, ``interacted`` once they accepted or dismissed one."""

    per_visitor_per_day: int | None = None
    per_session: int | None = None
    cooldown_after_dismiss: float | None = None  # seconds
    until: str | None = None  # seen | interacted


DEFAULT_CAPS = {"per_visitor_per_day": 1, "per_session": None, "cooldown_after_dismiss": 7 * 86400.0, "until": None}
CAP_KEYS = tuple(DEFAULT_CAPS)


class Hours(msgspec.Struct, frozen=True):
    """When a rule may invite (``business_hours``, also spelt ``schedule``): windows of local wall
    time on the allowed days, between optional start and end dates, skipping the site's holidays.

    A window belongs to the day it opens on: ``22:00-02:00`` on ``fri`` runs from Friday 22:00 to
    Saturday 02:00, and a holiday or an end date stops the windows that open on it (a window that
    opened the evening before runs to its end). ``to: "24:00"`` is the end of the day.
    ``timezone`` defaults to the site's time zone (site setting ``timezone``).
    """

    timezone: str | None
    days: frozenset[int]
    windows: tuple[tuple[int, int], ...]  # (start, end) in minutes after local midnight; end ≤ start: overnight
    start_date: date | None = None
    end_date: date | None = None
    holidays: bool = True  # closed on the site's holidays

    def _zone(self, site_zone: str) -> ZoneInfo:
        return ZoneInfo(self.timezone or site_zone)

    def _day_allowed(self, day: date, holidays: frozenset[str]) -> bool:
        return (day.weekday() in self.days and (self.start_date is None or day >= self.start_date)
                and (self.end_date is None or day <= self.end_date)
                and not (self.holidays and day.isoformat() in holidays))

    def open_at(self, moment: float, site_zone: str = "UTC", holidays: frozenset[str] = frozenset()) -> bool:
        """Open at ``moment`` (epoch seconds), compared on the local wall clock."""
        local = datetime.fromtimestamp(moment, self._zone(site_zone))
        minute = local.hour * 60 + local.minute + local.second / 60
        today = local.date()
        for start, end in self.windows:
            if end > start:
                if start <= minute < end and self._day_allowed(today, holidays):
                    return True
            else:  # overnight: the evening part belongs to today, the morning part to yesterday
                if minute >= start and self._day_allowed(today, holidays):
                    return True
                if minute < end and self._day_allowed(today - timedelta(days=1), holidays):
                    return True
        return False

    def next_open(self, after: float, site_zone: str = "UTC", holidays: frozenset[str] = frozenset()) -> float | None:
        """When the schedule next opens after ``after`` (epoch seconds): a waiting visitor is
        decided again then, not at the next poll. None: it never opens again (end date passed)."""
        zone = self._zone(site_zone)
        today = datetime.fromtimestamp(after, zone).date()
        for offset in range(370 + len(holidays)):
            day = today + timedelta(days=offset)
            if self.end_date is not None and day > self.end_date:
                return None
            if not self._day_allowed(day, holidays):
                continue
            openings = [datetime.combine(day, _clock(start), tzinfo=zone).timestamp() for start, _ in self.windows]
            later = [at for at in openings if at > after]
            if later:
                return min(later)
        return None


def _clock(minutes: int) -> dtime:
    return dtime(minutes // 60, minutes % 60)


_HHMM = re.compile(r"^([01]?\d|2[0-4]):([0-5]\d)$")


def _minutes(text: Any) -> int | None:
    """"08:00" → 480; "24:00" → 1440 (the end of the day); anything else → None."""
    match = _HHMM.match(str(text).strip()) if isinstance(text, str) else None
    if match is None:
        return None
    minutes = int(match.group(1)) * 60 + int(match.group(2))
    return minutes if minutes <= 1440 else None


class Rule(msgspec.Struct, frozen=True):
    name: str
    site: str
    when: Condition | None
    message: str
    group: str | None
    delay: float
    expires: float
    max_wait: float  # how long a visitor held back (capacity, pacing, hours, …) waits before giving up
    caps: Caps
    hours: Hours | None
    variants: list[Variant]
    holdout: float
    goal_event: str | None
    goal_within: float
    priority: int
    url_glob: str | None
    enabled: bool
    reads_rule_fields: bool = False  # the condition reads RULE_FIELDS: not memoised across rules
    # Every comparison on visitor.attributes.*: (path of its field, attribute name, op, value), for
    # checking against the site's declarations (``undeclared_attributes``) when the rule is saved.
    attribute_reads: tuple[tuple[str, str, str, Any], ...] = ()
    goal_url: str | None = None  # a URL goal: this glob (on the path when it starts with "/", else the URL)
    goal_matcher: Any = None  # goal_url compiled
    goal_attribution: str = "last"  # first | last: which of the touches before a goal is credited

    @property
    def goal_key(self) -> tuple[str, str] | None:
        """What reaching the goal is: rules with the same key compete for its credit."""
        if self.goal_event is not None:
            return ("event", self.goal_event)
        return ("url", self.goal_url) if self.goal_url is not None else None


UrlGoal = tuple[str, Any, bool]  # (glob, compiled, matched on the path rather than the whole URL)


def url_goals(rules: list[Rule]) -> tuple[UrlGoal, ...]:
    """The distinct URL goals of a site's rules: each glob is matched once a pageview, however
    many rules share it."""
    found: dict[str, UrlGoal] = {}
    for rule in rules:
        if rule.goal_url is not None and rule.goal_url not in found:
            found[rule.goal_url] = (rule.goal_url, rule.goal_matcher, rule.goal_url.startswith("/"))
    return tuple(found.values())


def goals_reached(goals: tuple[UrlGoal, ...], url: str | None, path: str | None = None) -> list[str]:
    """The globs of ``goals`` this page (its stored URL; ``path``: its path, when known) reaches."""
    if not goals or url is None:
        return []
    if path is None:
        path = urlsplit(url).path
    return [glob for glob, matcher, on_path in goals if matcher.match(path if on_path else url) is not None]


def reads(cond: Condition | None, fields: frozenset[str]) -> bool:
    """Does the condition read any of ``fields``?"""
    if cond is None or isinstance(cond, Count):
        return False
    if isinstance(cond, Compare):
        return cond.field in fields
    if isinstance(cond, NotOf):
        return reads(cond.child, fields)
    return any(reads(c, fields) for c in cond.children)


# --- parsing and validation ------------------------------------------------------------------


class _Checker:
    def __init__(self) -> None:
        self.errors: list[FieldError] = []
        self.nodes = 0
        self.attribute_reads: list[tuple[str, str, str, Any]] = []

    def fail(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))

    def condition(self, node: Any, path: str, depth: int) -> Condition | None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            if self.nodes == MAX_NODES + 1:
                self.fail(path, f"a rule's condition may have at most {MAX_NODES} parts")
            return None
        if depth > MAX_DEPTH:
            self.fail(path, f"conditions may nest at most {MAX_DEPTH} levels")
            return None
        if not isinstance(node, dict):
            self.fail(path, "a condition is an object: {field, op, value}, {count, within, op, value}, all, any or not")
            return None
        for combinator, cls in (("all", AllOf), ("any", AnyOf)):
            if combinator in node:
                items = node[combinator]
                if len(node) != 1 or not isinstance(items, list) or not items:
                    self.fail(f"{path}.{combinator}", f"'{combinator}' takes a non-empty list and nothing beside it")
                    return None
                if len(items) > MAX_LIST:
                    self.fail(f"{path}.{combinator}", f"at most {MAX_LIST} conditions")
                    return None
                children = [self.condition(c, f"{path}.{combinator}[{i}]", depth + 1) for i, c in enumerate(items)]
                kept = [c for c in children if c is not None]
                if cls is AllOf:
                    return AllOf(kept, sorted(kept, key=lambda c: not (type(c) is Compare and not c.grows)))
                return AnyOf(kept)
        if "not" in node:
            if len(node) != 1:
                self.fail(f"{path}.not", "'not' takes one condition and nothing beside it")
                return None
            child = self.condition(node["not"], f"{path}.not", depth + 1)
            return NotOf(child) if child is not None else None
        if "count" in node:
            return self.count(node, path)
        return self.compare(node, path)

    def _op(self, node: dict[str, Any], path: str, allowed: tuple[str, ...] = OPS) -> str | None:
        op = node.get("op")
        if not isinstance(op, str) or op not in allowed:
            self.fail(f"{path}.op", f"one of {', '.join(allowed)}")
            return None
        return op

    def count(self, node: dict[str, Any], path: str) -> Condition | None:
        unknown = set(node) - {"count", "within", "op", "value"}
        if unknown:
            self.fail(path, f"unknown keys {sorted(unknown)}")
        op = self._op(node, path, ("eq", "ne", "gt", "gte", "lt", "lte"))
        event = node.get("count")
        if not isinstance(event, str) or not event or len(event) > 64:
            self.fail(f"{path}.count", "the event type or custom event name to count")
            return None
        try:
            within = parse_duration(node.get("within"), f"{path}.within")
        except InvalidInput as exc:
            self.errors.extend(exc.errors)
            return None
        if within <= 0:
            self.fail(f"{path}.within", "a window longer than zero, like 10m")
            return None
        value = finite_number(node.get("value"))
        if value is None:
            self.fail(f"{path}.value", "a number")
            return None
        if op in ("gte", "gt", "eq") and (value > RECENT_EVENTS or (op == "gt" and value >= RECENT_EVENTS)):
            # A visitor's memory keeps its last RECENT_EVENTS events: a larger count never holds.
            self.fail(f"{path}.value", f"at most {RECENT_EVENTS}: a visitor's last {RECENT_EVENTS} events are what is counted, "
                                       "so a larger count could never hold")
            return None
        return Count(event, within, op, value, (event, within, op, value)) if op else None

    def compare(self, node: dict[str, Any], path: str) -> Condition | None:
        unknown = set(node) - {"field", "op", "value"}
        if unknown:
            self.fail(path, f"unknown keys {sorted(unknown)}")
        field = node.get("field")
        if not isinstance(field, str) or (field not in FIELDS and not field.startswith(DYNAMIC_PREFIXES)):
            self.fail(f"{path}.field", f"unknown field {field!r}; fields are {', '.join(FIELDS)}, custom.<event> and visitor.attributes.<name>")
            return None
        if field.startswith(ATTRIBUTE_PREFIX) and not ATTRIBUTE_NAME.match(field[len(ATTRIBUTE_PREFIX):]):
            self.fail(f"{path}.field", "visitor.attributes.<name>: a name of 1-40 lowercase letters, digits or '_'")
            return None
        kind, grows = FIELDS.get(field, ("attr" if field.startswith(ATTRIBUTE_PREFIX) else "number", False))
        allowed = OPS_BY_KIND[kind]
        op = node.get("op")
        if op not in allowed:
            self.fail(f"{path}.op", f"one of {', '.join(allowed)} ({field} is {KIND_WORDS[kind]})")
            return None
        where = f"{path}.value"
        value, problem = _checked_value(kind, op, node.get("value"), where)
        if problem is not None:
            self.fail(where, problem)
            return None
        if kind == "attr":
            self.attribute_reads.append((f"{path}.field", field[len(ATTRIBUTE_PREFIX):], op, value))
        matcher: Any = None
        if op == "steps":
            matcher = tuple(re.compile(fnmatch.translate(step)) for step in value)
        elif op == "iglob":
            matcher = re.compile(fnmatch.translate(value.casefold()))
        elif op == "regex":
            import re2

            try:
                matcher = re2.compile(value)
            except Exception:
                self.fail(where, "not a valid RE2 pattern (RE2 has no backreferences or lookaround)")
                return None
        elif op == "glob":
            matcher = re.compile(fnmatch.translate(value))
        return Compare(field, op, value, kind, grows, matcher, _predicate(kind, op, value, matcher), (field, op, value))


# What each kind of field can be compared with: validation and evaluation read the same table, so
# a rule that validates can always be evaluated.
OPS_BY_KIND: dict[str, tuple[str, ...]] = {
    "str": ("eq", "ne", "in", "contains", "starts_with", "glob", "regex", *CASELESS),
    # visitor.attributes.*: declared per site (text, number or true/false); a rule compares with
    # whatever its value is, and a value of another type simply does not match.
    "attr": tuple(op for op in OPS if op != "steps"),
    # session.pages: the paths of this visit in order. contains/in: exact paths; steps: a funnel,
    # globs matched in this order (other pages may come between).
    "pages": ("contains", "in", "steps"),
    "number": ("eq", "ne", "in", "gt", "gte", "lt", "lte"),
    "duration": ("gt", "gte", "lt", "lte"),
    "bool": ("eq", "ne"),
    "list": ("contains", "in"),
}
KIND_WORDS = {"pages": "the list of paths this visit", "attr": "an attribute", "str": "text", "number": "a number", "duration": "a duration", "bool": "true or false", "list": "a list of names"}


def _scalar_ok(kind: str, value: Any) -> bool:
    if kind in ("str", "list", "pages"):
        return isinstance(value, str) and len(value) <= MAX_STRING
    if kind == "number":
        return finite_number(value) is not None
    if kind == "bool":
        return isinstance(value, bool)
    return False


def _in_order(pages: Any, steps: tuple[Any, ...]) -> bool:
    """Each step's glob matches a page after the one that matched the step before."""
    position = 0
    for path in pages:
        if position < len(steps) and steps[position].match(path):
            position += 1
    return position == len(steps)


def _attribute_value(op: str, value: Any) -> tuple[Any, str | None]:
    numeric, texts = ("gt", "gte", "lt", "lte"), ("contains", "starts_with", "glob", "regex", *CASELESS)
    if op == "in" or op == "iin":
        ok = isinstance(value, list) and 0 < len(value) <= MAX_LIST and all(
            (_scalar_ok("str", v) if op == "iin" else any(_scalar_ok(k, v) for k in ("str", "number", "bool"))) for v in value)
        if not ok:
            return None, f"'{op}' takes a list of at most {MAX_LIST} values (at least one)"
        return tuple(v.casefold() if op == "iin" else (finite_number(v) if finite_number(v) is not None else v) for v in value), None
    if op in numeric:
        number = finite_number(value)
        return (number, None) if number is not None else (None, f"{op} compares with a number")
    if op in texts:
        if not _scalar_ok("str", value):
            return None, f"{op} takes text of at most {MAX_STRING} characters"
        return (value.casefold() if op in CASELESS else value), None
    if _scalar_ok("bool", value) or _scalar_ok("str", value):
        return value, None
    number = finite_number(value)
    return (number, None) if number is not None else (None, "text, a number or true/false")


def _same(actual: Any, expected: Any) -> bool:
    """Equal and of the same kind: true is not 1."""
    return actual is not None and isinstance(actual, bool) is isinstance(expected, bool) and actual == expected


def _attribute_predicate(op: str, expected: Any, matcher: Any) -> Callable[[Any], bool]:
    if op == "eq":
        return lambda actual: _same(actual, expected)
    if op == "ne":
        return lambda actual: not _same(actual, expected)
    if op == "in":
        return lambda actual: any(_same(actual, e) for e in expected)
    if op in ("gt", "gte", "lt", "lte"):
        test = _predicate("number", op, expected, matcher)
        return lambda actual: isinstance(actual, (int, float)) and not isinstance(actual, bool) and test(actual)
    test = _predicate("str", op, expected, matcher)
    return lambda actual: isinstance(actual, str) and test(actual)


def _yaml_hint(kind: str, value: Any) -> str:
    """YAML 1.1 reads unquoted NO, yes, on, off as true/false: Norway's country code among them."""
    values = value if isinstance(value, list) else [value]
    if kind == "str" and any(isinstance(v, bool) for v in values):
        return '; YAML reads unquoted NO, yes, on and off as true/false: quote them ("NO")'
    return ""


def _checked_value(kind: str, op: str, value: Any, where: str) -> tuple[Any, str | None]:
    """The comparison value in a canonical, hashable form, or what is wrong with it."""
    if kind == "attr":
        return _attribute_value(op, value)
    if op == "steps":
        if not isinstance(value, list) or not 0 < len(value) <= 20 or not all(_scalar_ok("str", v) for v in value):
            return None, "steps takes a list of 1 to 20 path globs, in the order the visitor must view them"
        return tuple(value), None
    if op in CASELESS:
        plain, problem = _checked_value(kind, CASELESS[op], value, where)
        if problem is not None:
            return None, problem
        return (frozenset(v.casefold() for v in plain) if op == "iin" else plain.casefold()), None
    if op == "in":
        what = "text values" if kind in ("str", "list", "pages") else f"{KIND_WORDS[kind]} values"
        if not isinstance(value, list) or not value or len(value) > MAX_LIST or not all(_scalar_ok(kind, v) for v in value):
            return None, f"'in' takes a list of at most {MAX_LIST} {what} (at least one){_yaml_hint(kind, value)}"
        return frozenset(finite_number(v) if kind == "number" else v for v in value), None
    if kind == "duration":
        try:
            return parse_duration(value, where), None
        except InvalidInput as exc:
            return None, exc.errors[0].message
    if op in ("glob", "regex", "contains", "starts_with"):
        if not isinstance(value, str) or len(value) > MAX_STRING:
            return None, f"{op} takes text of at most {MAX_STRING} characters"
        return value, None
    if not _scalar_ok(kind, value):
        return None, f"the value must be {KIND_WORDS[kind]}{_yaml_hint(kind, value)}"
    return (finite_number(value) if kind == "number" else value), None


def _predicate(kind: str, op: str, expected: Any, matcher: Any) -> Callable[[Any], bool]:
    """The comparison as a total function of the field's current value (None when unknown)."""
    if kind == "attr":
        return _attribute_predicate(op, expected, matcher)
    if op == "steps":
        return lambda actual: _in_order(actual or (), matcher)
    if op in CASELESS:
        plain = _predicate(kind, CASELESS[op], expected, matcher)
        return lambda actual: plain(actual.casefold() if isinstance(actual, str) else actual)
    if op == "eq":
        return lambda actual: actual is not None and actual == expected
    if op == "ne":
        return lambda actual: actual != expected
    if op == "in":
        if kind in ("list", "pages"):
            return lambda actual: bool(actual) and not expected.isdisjoint(actual)
        return lambda actual: actual is not None and actual in expected
    if op == "gt":
        return lambda actual: actual is not None and actual > expected
    if op == "gte":
        return lambda actual: actual is not None and actual >= expected
    if op == "lt":
        return lambda actual: actual is not None and actual < expected
    if op == "lte":
        return lambda actual: actual is not None and actual <= expected
    if op == "contains":
        return lambda actual: actual is not None and expected in actual
    if op == "starts_with":
        return lambda actual: actual is not None and str(actual).startswith(expected)
    if op == "glob":
        return lambda actual: actual is not None and matcher.match(str(actual)) is not None
    return lambda actual: actual is not None and matcher.search(str(actual)) is not None  # regex


HOURS_KEYS = {"timezone", "days", "from", "to", "windows", "start_date", "end_date", "holidays"}


def _window(raw: Any, path: str, checker: _Checker) -> tuple[int, int] | None:
    """"08:00-12:00" or {from: "08:00", to: "12:00"}."""
    if isinstance(raw, str) and "-" in raw:
        first, _, last = raw.partition("-")
        raw = {"from": first, "to": last}
    if not isinstance(raw, dict) or set(raw) - {"from", "to"}:
        checker.fail(path, 'a window like "08:00-12:00" or {from: "22:00", to: "02:00"}')
        return None
    start, end = _minutes(raw.get("from", "00:00")), _minutes(raw.get("to", "24:00"))
    if start is None or start == 1440:
        checker.fail(f"{path}.from", 'a time like 08:00 (00:00 to 23:59)' + _clock_hint(raw.get("from")))
    if end is None:
        checker.fail(f"{path}.to", 'a time like 18:00 (24:00 is the end of the day)' + _clock_hint(raw.get("to")))
    if start is None or start == 1440 or end is None:
        return None
    if end == start:
        checker.fail(f"{path}.to", "must differ from 'from' (a window ending before it starts runs overnight)")
        return None
    return start, end


def _clock_hint(value: Any) -> str:
    """YAML 1.1 reads an unquoted 9:00 or 18:30 as a base-60 number (540, 1110): say so, or the
    marketer who wrote "a time like 08:00" is told to write one."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 1440:
        return f'; YAML reads an unquoted {value // 60}:{value % 60:02d} as the number {value}: quote it ("{value // 60}:{value % 60:02d}")'
    return ""


def _date(raw: Any, path: str, checker: _Checker) -> date | None:
    if raw is None:
        return None
    if isinstance(raw, date) and not isinstance(raw, datetime):
        return raw
    try:
        return date.fromisoformat(raw) if isinstance(raw, str) and len(raw) == 10 else None
    except ValueError:
        pass
    checker.fail(path, "a date like 2026-12-24")
    return None


def _hours(raw: Any, path: str, checker: _Checker) -> Hours | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        checker.fail(path, "{timezone?, days, from, to} or {days, windows: [\"08:00-12:00\", …], start_date?, end_date?, holidays?}")
        return None
    before = len(checker.errors)
    for key in sorted(set(raw) - HOURS_KEYS):
        checker.fail(f"{path}.{key}", f"unknown key; schedules have {', '.join(sorted(HOURS_KEYS))}")
    zone = raw.get("timezone")
    if zone is not None and not is_time_zone(str(zone)):
        checker.fail(f"{path}.timezone", "an IANA time zone such as Europe/Oslo (leave it out for the site's)")
    days: set[int] = set()
    for part in str(raw.get("days", "mon-sun")).replace(" ", "").lower().split(","):
        first, _, last = part.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            checker.fail(f"{path}.days", "like mon-fri or mon,wed,fri")
            break
        a, b = DAYS.index(first), DAYS.index(last or first)
        days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(b + 1)])
    windows: list[tuple[int, int]] = []
    if "windows" in raw:
        if "from" in raw or "to" in raw:
            checker.fail(f"{path}.windows", "either windows or from/to, not both")
        items = raw["windows"]
        if not isinstance(items, list) or not items or len(items) > 24:
            checker.fail(f"{path}.windows", "a list of 1 to 24 windows")
        else:
            for i, item in enumerate(items):
                window = _window(item, f"{path}.windows[{i}]", checker)
                if window is not None:
                    windows.append(window)
    else:
        window = _window({"from": raw.get("from", "00:00"), "to": raw.get("to", "24:00")}, path, checker)
        if window is not None:
            windows.append(window)
    start_date = _date(raw.get("start_date"), f"{path}.start_date", checker)
    end_date = _date(raw.get("end_date"), f"{path}.end_date", checker)
    if start_date and end_date and end_date < start_date:
        checker.fail(f"{path}.end_date", "must not be before start_date")
    holidays = raw.get("holidays", "closed")
    if holidays not in ("closed", "open"):
        checker.fail(f"{path}.holidays", "closed (the default: no invitations on the site's holidays) or open")
    if len(checker.errors) > before or not windows:
        return None
    return Hours(timezone=str(zone) if zone is not None else None, days=frozenset(days), windows=tuple(windows),
                 start_date=start_date, end_date=end_date, holidays=holidays == "closed")


def _percent(value: Any, path: str, checker: _Checker) -> float:
    if value is None:
        return 0.0
    text = str(value).strip()
    try:
        share = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        checker.fail(path, "a share such as 10% or 0.1")
        return 0.0
    if not 0 <= share < 1:
        checker.fail(path, "between 0% and 100% (exclusive)")
    return share


GOAL_KEYS = ("event", "url", "within", "attribution")


def _goal(raw: Any, path: str, checker: _Checker) -> tuple[str | None, str | None, float, str]:
    """``{event: purchase}`` or ``{url: "/checkout/done*"}``, ``within`` (default 30m) after an
    invitation, ``attribution: last`` (default) or ``first`` → (event, url, within, attribution)."""
    if not raw:
        return None, None, 1800.0, "last"
    if not isinstance(raw, dict):
        checker.fail(path, "{event: <name>} or {url: <glob>}, with within and attribution (first or last)")
        return None, None, 1800.0, "last"
    for key in sorted(set(raw) - set(GOAL_KEYS)):
        checker.fail(f"{path}.{key}", f"unknown key; goals have {', '.join(GOAL_KEYS)}")
    event, url = raw.get("event"), raw.get("url")
    if (event is None) == (url is None):
        checker.fail(path, "either event (a goal event's name) or url (a page glob such as /checkout/thank-you*), not both")
    elif event is not None and (not isinstance(event, str) or not 0 < len(event) <= 64):
        checker.fail(f"{path}.event", "the name of the goal event, 1-64 characters")
    elif url is not None and (not isinstance(url, str) or not 0 < len(url) <= MAX_STRING):
        checker.fail(f"{path}.url", 'a page glob: "/thank-you*" matches the path, "*shop.example.com/done*" the whole URL')
    within = 1800.0
    try:
        within = parse_duration(raw.get("within", "30m"), f"{path}.within")
    except InvalidInput as exc:
        checker.errors.extend(exc.errors)
    attribution = raw.get("attribution", "last")
    if attribution not in ("first", "last"):
        checker.fail(f"{path}.attribution", "last (the latest invitation before the goal is credited) or first (the earliest)")
    return (event if isinstance(event, str) else None), (url if isinstance(url, str) else None), within, str(attribution)


INVITE_KEYS = {"message", "group", "delay", "expires", "max_wait"}
RULE_KEYS = {"name", "site", "when", "invite", "caps", "business_hours", "schedule", "variants", "holdout", "goal", "priority", "url", "enabled"}


def compile_rule(raw: Any, path: str = "") -> tuple[Rule | None, list[FieldError]]:
    checker = _Checker()
    p = (path + ".") if path else ""
    if not isinstance(raw, dict):
        return None, [FieldError(path or "$", "a rule is an object")]
    for key in sorted(set(raw) - RULE_KEYS):
        checker.fail(f"{p}{key}", f"unknown key; rules have {', '.join(sorted(RULE_KEYS))}")
    name, site = raw.get("name"), raw.get("site")
    if not isinstance(name, str) or not re.match(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$", name):
        checker.fail(f"{p}name", "1-100 letters, digits, '.', '_' or '-'")
    if not isinstance(site, str) or not site:
        checker.fail(f"{p}site", "the name of the site the rule runs on")
    when = checker.condition(raw["when"], f"{p}when", 1) if "when" in raw else None
    invite = raw.get("invite")
    message, group, delay, expires, max_wait = "", None, 0.0, 120.0, DEFAULT_MAX_WAIT
    if not isinstance(invite, dict) or not isinstance(invite.get("message"), str) or not invite["message"].strip():
        checker.fail(f"{p}invite.message", "the invitation text")
    else:
        message = invite["message"][:500]
        for key in sorted(set(invite) - INVITE_KEYS):  # a typo (expire, grup) would silently fall back to the default
            checker.fail(f"{p}invite.{key}", f"unknown key; invitations have {', '.join(sorted(INVITE_KEYS))}")
        group = invite.get("group")
        if group is not None and (not isinstance(group, str) or not 0 < len(group) <= 64):
            # capacity reports name groups by 1-64 characters: any other group is never gated nor online
            checker.fail(f"{p}invite.group", "the agent group's name as capacity reports give it (1-64 characters), or leave it out")
            group = None
        durations = {"delay": 0.0, "expires": 120.0, "max_wait": DEFAULT_MAX_WAIT}
        for key, default in durations.items():
            try:
                durations[key] = parse_duration(invite.get(key, default), f"{p}invite.{key}")
            except InvalidInput as exc:
                checker.errors.extend(exc.errors)
        delay, expires, max_wait = durations["delay"], durations["expires"], durations["max_wait"]
        if expires < 1:  # sent and expired at once: it would take the visitor's cap for the day and show nothing
            checker.fail(f"{p}invite.expires", "how long the invitation stays open: at least 1s, like 2m")
    caps_raw = raw.get("caps") or {}
    caps = Caps()
    if not isinstance(caps_raw, dict):
        checker.fail(f"{p}caps", "{per_visitor_per_day, per_session, cooldown_after_dismiss, until}")
    else:
        for key in sorted(set(caps_raw) - set(CAP_KEYS)):
            checker.fail(f"{p}caps.{key}", f"unknown cap; caps are {', '.join(CAP_KEYS)}")
        values = {**DEFAULT_CAPS, **caps_raw}  # left out: the default; null: no such cap
        if values["cooldown_after_dismiss"] is not None:
            try:
                values["cooldown_after_dismiss"] = parse_duration(values["cooldown_after_dismiss"], f"{p}caps.cooldown_after_dismiss")
            except InvalidInput as exc:
                checker.errors.extend(exc.errors)
        for key in ("per_visitor_per_day", "per_session"):
            value = values[key]
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                checker.fail(f"{p}caps.{key}", "a whole number ≥ 1, or null for no cap")
        if values["until"] not in (None, "seen", "interacted"):
            checker.fail(f"{p}caps.until", "seen (stop once an invitation was shown) or interacted (once accepted or dismissed)")
        if len(checker.errors) == 0:
            caps = Caps(values["per_visitor_per_day"], values["per_session"], values["cooldown_after_dismiss"], values["until"])
    if "business_hours" in raw and "schedule" in raw:
        checker.fail(f"{p}schedule", "business_hours and schedule are the same thing; give one")
    hours_key = "schedule" if "schedule" in raw else "business_hours"
    hours = _hours(raw.get(hours_key), f"{p}{hours_key}", checker)
    variants: list[Variant] = []
    raw_variants = raw.get("variants") or []
    if not isinstance(raw_variants, list) or len(raw_variants) > 20:
        checker.fail(f"{p}variants", "a list of at most 20 {name, weight, message?}")
    else:
        for i, v in enumerate(raw_variants):
            weight = finite_number(v.get("weight", 1)) if isinstance(v, dict) else None
            if (not isinstance(v, dict) or set(v) - {"name", "weight", "message"} or not isinstance(v.get("name"), str)
                    or not 0 < len(v["name"]) <= 64 or weight is None or weight <= 0
                    or not isinstance(v.get("message", ""), (str, type(None)))):
                checker.fail(f"{p}variants[{i}]", "{name, weight > 0, message?}: a name of 1-64 characters, a finite weight, the message as text")
                continue
            if v["name"] == "control":
                # "control" is the holdout: its visitors would be counted as held out and never invited
                checker.fail(f"{p}variants[{i}].name", "control is the holdout's name (visitors who get no invitation: set holdout: 10%); "
                                                       "give this variant another name, such as baseline")
                continue
            variants.append(Variant(v["name"], float(v.get("weight", 1)), v.get("message")))
        if len({v.name for v in variants}) != len(variants):
            checker.fail(f"{p}variants", "variant names must be unique")
    holdout = _percent(raw.get("holdout"), f"{p}holdout", checker)
    goal_event, goal_url, goal_within, attribution = _goal(raw.get("goal"), f"{p}goal", checker)
    priority = raw.get("priority", 0)
    if not isinstance(priority, int):
        checker.fail(f"{p}priority", "a whole number (higher fires first)")
        priority = 0
    url = raw.get("url")
    if url is not None and not isinstance(url, str):
        checker.fail(f"{p}url", "a URL glob such as */pricing*")
    enabled = raw.get("enabled", True)
    if not isinstance(enabled, bool):  # "false" or 0 must not leave a rule the marketer switched off running
        checker.fail(f"{p}enabled", f"true or false (unquoted), got {enabled!r:.40}")
    if checker.errors or not isinstance(name, str) or not isinstance(site, str):
        return None, checker.errors
    return Rule(
        name=name, site=site, when=when, message=message, group=group, delay=delay, expires=expires, max_wait=max_wait,
        caps=caps, hours=hours,
        variants=variants or [Variant("default", 1.0)], holdout=holdout, goal_event=goal_event, goal_within=goal_within,
        goal_url=goal_url, goal_matcher=re.compile(fnmatch.translate(goal_url)) if goal_url else None, goal_attribution=attribution,
        priority=priority, url_glob=url, enabled=enabled is True,
        reads_rule_fields=reads(when, RULE_FIELDS), attribute_reads=tuple(checker.attribute_reads),
    ), []


# What a comparison on an attribute of each declared type may use, and what its value must be.
ATTRIBUTE_OPS = {
    "str": ("eq", "ne", "in", "contains", "starts_with", "glob", "regex", *CASELESS),
    "number": ("eq", "ne", "in", "gt", "gte", "lt", "lte"),
    "bool": ("eq", "ne"),
}
_ATTRIBUTE_VALUES: dict[str, Callable[[Any], bool]] = {
    "str": lambda v: isinstance(v, str),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
}


def undeclared_attributes(rule: Rule, declared: Mapping[str, str]) -> list[FieldError]:
    """Every comparison of the rule on an attribute its site does not declare, or in a way the
    declared type can never match (``gte`` on text, ``eq "yes"`` on true/false): such a rule would
    silently never hold, so it is refused when saved, naming the field and how to fix it."""
    errors = []
    for path, name, op, value in rule.attribute_reads:
        kind = declared.get(name)
        if kind is None:
            known = ", ".join(f"{n} ({k})" for n, k in sorted(declared.items())) or "none yet"
            errors.append(FieldError(path, f"visitor.attributes.{name} is not declared for site {rule.site!r} (declared: {known}); "
                                           f"declare it first: PATCH /v1/admin/sites/{{id}}/engagement "
                                           f'{{"attributes": {{"{name}": "str|number|bool", ...}}}} or parley sites update --attributes {name}:str'))
        elif op not in ATTRIBUTE_OPS[kind]:
            errors.append(FieldError(path.removesuffix(".field") + ".op", f"{op} cannot match visitor.attributes.{name}, declared {kind}; "
                                                                          f"use one of {', '.join(ATTRIBUTE_OPS[kind])}"))
        elif op in ("eq", "ne", "in") and not all(_ATTRIBUTE_VALUES[kind](v) for v in (value if op == "in" else (value,))):
            words = {"str": "text", "number": "numbers", "bool": "true or false"}[kind]
            errors.append(FieldError(path.removesuffix(".field") + ".value", f"visitor.attributes.{name} is declared {kind}: compare it with {words}"))
    return errors


def load_document(text: str | bytes, media: Literal["yaml", "json"] = "yaml") -> list[dict[str, Any]]:
    """A YAML or JSON document: ``{"rules": [...]}``, a list of rules, or one rule."""
    try:
        if media == "json":
            check_json_document(text.encode() if isinstance(text, str) else text, "the document")
        data = msgspec.json.decode(text) if media == "json" else load_yaml(text)
    except msgspec.DecodeError as exc:
        # The Content-Type chose JSON; a YAML document sent so (the docs' example, a copied curl
        # line) needs to hear how to send YAML, not only where the JSON broke.
        hint = "; a YAML document is read when the Content-Type is not JSON (send it as application/yaml)" if media == "json" else ""
        raise InvalidInput(f"the document cannot be parsed as {media.upper()}: {exc}{hint}", [FieldError("$", f"{str(exc)[:300]}{hint}")]) from None
    if isinstance(data, dict) and "rules" in data:
        data = data["rules"]
    if isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        raise InvalidInput("expected {rules: [...]}, a list of rules, or one rule", [FieldError("$", "expected rules")])
    if len(data) > MAX_RULES:
        raise InvalidInput(f"at most {MAX_RULES} rules per document", [FieldError("rules", f"at most {MAX_RULES}")])
    return data


def compile_all(items: list[dict[str, Any]]) -> list[Rule]:
    rules, errors = [], []
    for i, item in enumerate(items):
        rule, problems = compile_rule(item, f"rules[{i}]")
        errors.extend(problems)
        if rule:
            rules.append(rule)
    if errors:
        raise InvalidInput("the rules are invalid; nothing was saved", errors)
    names = [r.name for r in rules]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidInput("rule names must be unique", [FieldError("rules", f"duplicate name {n!r}") for n in dupes])
    return rules


# --- evaluation ------------------------------------------------------------------------------

Getter = Callable[[str], Any]
CountFn = Callable[[str, float], int]


_COUNT_TESTS: dict[str, Callable[[float, float], bool]] = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b, "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b,
}


def evaluate(cond: Condition | None, get: Getter, count: CountFn, trace: list[str] | None = None) -> bool:
    if cond is None:
        return True
    if isinstance(cond, AllOf):
        results = [evaluate(c, get, count, trace) for c in cond.children]
        return all(results)
    if isinstance(cond, AnyOf):
        results = [evaluate(c, get, count, trace) for c in cond.children]
        return any(results)
    if isinstance(cond, NotOf):
        return not evaluate(cond.child, get, count, trace)
    if isinstance(cond, Count):
        actual = count(cond.event, cond.within)
        ok = _COUNT_TESTS[cond.op](actual, cond.value)
        if trace is not None:
            trace.append(f"{'✓' if ok else '✗'} count({cond.event}, {cond.within:g}s) = {actual} {cond.op} {cond.value:g}")
        return ok
    actual = get(cond.field)
    matched: bool = cond.test(actual)
    if trace is not None:
        shown = round(actual, 1) if isinstance(actual, float) else actual
        trace.append(f"{'✓' if matched else '✗'} {cond.field} = {shown!r} {cond.op} {cond.value!r}")
    return matched


def evaluate_timed(
    cond: Condition | None, now: float, get: Getter, count: CountFn,
    grows_at: Callable[[str], float | None], count_expiry: Callable[[str, float], float | None],
    memo: dict[Any, tuple[bool, float | None]] | None = None,
) -> tuple[bool, float | None]:
    """The condition's truth now, and when time alone could next change it (None: only an event can).

    Short-circuits: an ``all`` with a part that is false and that time cannot change is false
    until the next event, so the rest is not even evaluated. Rules of one site often share
    conditions (the same page glob, the same thresholds): within one evaluation each distinct
    comparison is computed once (``memo``). This is the engine's hot path, hence ``type() is``.
    """
    kind = type(cond)
    if kind is AllOf:
        result, soonest = True, None
        for child in cond.timed_order or cond.children:  # type: ignore[union-attr]
            if type(child) is Compare and not child.grows and memo is not None:
                # The commonest part, inlined (no call): a comparison time cannot change.
                hit = memo.get(child.key)
                if hit is None:
                    hit = memo[child.key] = (child.test(get(child.field)), None)
                ok, at = hit
            else:
                ok, at = evaluate_timed(child, now, get, count, grows_at, count_expiry, memo)
            if not ok:
                if at is None:
                    return False, None
                result = False
            if at is not None and (soonest is None or at < soonest):
                soonest = at
        return result, soonest
    if kind is Compare:
        key = cond.key  # type: ignore[union-attr]
        if memo is not None:
            hit = memo.get(key)
            if hit is not None:
                return hit
        ok = cond.test(get(cond.field))  # type: ignore[union-attr]
        result_: tuple[bool, float | None] = (ok, None)
        if cond.grows and cond.op in ("gt", "gte", "lt", "lte", "eq"):  # type: ignore[union-attr]
            origin = grows_at(cond.field)  # type: ignore[union-attr]
            if origin is not None:
                at = origin + float(cond.value) + (0.001 if cond.op in ("gt", "lte") else 0.0)  # type: ignore[union-attr]
                result_ = (ok, at if at > now else None)
        if memo is not None:
            memo[key] = result_
        return result_
    if kind is NotOf:
        ok, at = evaluate_timed(cond.child, now, get, count, grows_at, count_expiry, memo)  # type: ignore[union-attr]
        return not ok, at
    if kind is Count:
        count_key = cond.key  # type: ignore[union-attr]
        if memo is not None:
            hit = memo.get(count_key)
            if hit is not None:
                return hit
        counted = (_COUNT_TESTS[cond.op](count(cond.event, cond.within), cond.value),  # type: ignore[union-attr]
                   count_expiry(cond.event, cond.within))  # type: ignore[union-attr]
        if memo is not None:
            memo[count_key] = counted
        return counted
    if kind is AnyOf:
        soonest = None
        for child in cond.children:  # type: ignore[union-attr]
            ok, at = evaluate_timed(child, now, get, count, grows_at, count_expiry, memo)
            if ok:
                return True, None
            if at is not None and (soonest is None or at < soonest):
                soonest = at
        return False, soonest
    return True, None  # no condition: always true


def targets(rule: Rule, url: str | None) -> bool:
    """Enabled, and on a page its ``url`` glob (if any) matches."""
    if not rule.enabled or rule.url_glob is None:
        return rule.enabled
    if url is None:
        return False
    # As for URL goals: a glob with a leading "/" is on the page's path ("/pricing*"), any other on
    # the whole URL ("*/pricing*"). A path glob matched against the URL could never hold.
    return fnmatch.fnmatchcase(urlsplit(url).path if rule.url_glob.startswith("/") else url, rule.url_glob)


def to_yaml(documents: list[dict[str, Any]]) -> str:
    return str(yaml.safe_dump({"rules": documents}, sort_keys=False, allow_unicode=True))
