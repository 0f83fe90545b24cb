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
"""

from __future__ import annotations

import fnmatch
import math
import re
from datetime import datetime, timedelta
from datetime import time as dtime
from typing import Any, Callable, Literal, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
import yaml

from archive.errors import FieldError, InvalidInput
from archive.limits import check_json_document, load_yaml

MAX_DEPTH = 8
MAX_NODES = 100
MAX_LIST = 200
MAX_STRING = 2000
MAX_RULES = 500
DEFAULT_MAX_WAIT = 120.0
DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
OPS = ("eq", "ne", "in", "gt", "gte", "lt", "lte", "contains", "starts_with", "glob", "regex")
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
}
DYNAMIC_PREFIXES = ("custom.",)  # custom.<event name>: count in this session


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


class Count(msgspec.Struct, frozen=True):
    event: str
    within: float
    op: str
    value: float


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
    per_visitor_per_day: int | None = None
    per_session: int | None = None
    cooldown_after_dismiss: float | None = None  # seconds


class Hours(msgspec.Struct, frozen=True):
    timezone: str
    days: frozenset[int]
    start: dtime
    end: dtime

    def open_at(self, moment: datetime) -> bool:
        local = moment.astimezone(ZoneInfo(self.timezone))
        return local.weekday() in self.days and self.start <= local.time() < self.end

    def next_open(self, after: float) -> float | None:
        """When the hours next open after ``after`` (epoch seconds): a waiting visitor is decided
        again then, not at the next poll."""
        zone = ZoneInfo(self.timezone)
        today = datetime.fromtimestamp(after, zone).date()
        for offset in range(8):
            day = today + timedelta(days=offset)
            if day.weekday() in self.days:
                opening = datetime.combine(day, self.start, tzinfo=zone).timestamp()
                if opening > after:
                    return opening
        return None


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


# --- parsing and validation ------------------------------------------------------------------


class _Checker:
    def __init__(self) -> None:
        self.errors: list[FieldError] = []
        self.nodes = 0

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
        return Count(event, within, op, value) if op else None

    def compare(self, node: dict[str, Any], path: str) -> Condition | None:
        unknown = set(node) - {"field", "op", "value"}
        if unknown:
            self.fail(path, f"unknown keys {sorted(unknown)}")
        field = node.get("field")
        if not isinstance(field, str) or (field not in FIELDS and not field.startswith(DYNAMIC_PREFIXES)):
            self.fail(f"{path}.field", f"unknown field {field!r}; fields are {', '.join(FIELDS)} and custom.<event>")
            return None
        kind, grows = FIELDS.get(field, ("number", False))
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
        matcher: Any = None
        if op == "regex":
            import re2

            try:
                matcher = re2.compile(value)
            except Exception:
                self.fail(where, "not a valid RE2 pattern (RE2 has no backreferences or lookaround)")
                return None
        elif op == "glob":
            matcher = re.compile(fnmatch.translate(value))
        return Compare(field, op, value, kind, grows, matcher, _predicate(kind, op, value, matcher))


# What each kind of field can be compared with: validation and evaluation read the same table, so
# a rule that validates can always be evaluated.
OPS_BY_KIND: dict[str, tuple[str, ...]] = {
    "str": ("eq", "ne", "in", "contains", "starts_with", "glob", "regex"),
    "number": ("eq", "ne", "in", "gt", "gte", "lt", "lte"),
    "duration": ("gt", "gte", "lt", "lte"),
    "bool": ("eq", "ne"),
    "list": ("contains", "in"),
}
KIND_WORDS = {"str": "text", "number": "a number", "duration": "a duration", "bool": "true or false", "list": "a list of names"}


def _scalar_ok(kind: str, value: Any) -> bool:
    if kind in ("str", "list"):
        return isinstance(value, str) and len(value) <= MAX_STRING
    if kind == "number":
        return finite_number(value) is not None
    if kind == "bool":
        return isinstance(value, bool)
    return False


def _checked_value(kind: str, op: str, value: Any, where: str) -> tuple[Any, str | None]:
    """The comparison value in a canonical, hashable form, or what is wrong with it."""
    if op == "in":
        what = "text values" if kind in ("str", "list") else f"{KIND_WORDS[kind]} values"
        if not isinstance(value, list) or not value or len(value) > MAX_LIST or not all(_scalar_ok(kind, v) for v in value):
            return None, f"'in' takes a list of at most {MAX_LIST} {what} (at least one)"
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
        return None, f"the value must be {KIND_WORDS[kind]}"
    return (finite_number(value) if kind == "number" else value), None


def _predicate(kind: str, op: str, expected: Any, matcher: Any) -> Callable[[Any], bool]:
    """The comparison as a total function of the field's current value (None when unknown)."""
    if op == "eq":
        return lambda actual: actual is not None and actual == expected
    if op == "ne":
        return lambda actual: actual != expected
    if op == "in":
        if kind == "list":
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


def _hours(raw: Any, path: str, checker: _Checker) -> Hours | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        checker.fail(path, "{timezone, days, from, to}")
        return None
    try:
        ZoneInfo(str(raw.get("timezone", "")))
    except (ZoneInfoNotFoundError, ValueError):
        checker.fail(f"{path}.timezone", "an IANA time zone such as Europe/Oslo")
        return None
    days: set[int] = set()
    for part in str(raw.get("days", "mon-sun")).replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            checker.fail(f"{path}.days", "like mon-fri or mon,wed,fri")
            return None
        a, b = DAYS.index(first), DAYS.index(last or first)
        days.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(b + 1)])
    try:
        start, end = dtime.fromisoformat(str(raw.get("from", "00:00"))), dtime.fromisoformat(str(raw.get("to", "23:59")))
    except ValueError:
        checker.fail(f"{path}.from", "times like 08:00")
        return None
    if end <= start:
        checker.fail(f"{path}.to", "must be after from")
        return None
    return Hours(timezone=raw["timezone"], days=frozenset(days), start=start, end=end)


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


RULE_KEYS = {"name", "site", "when", "invite", "caps", "business_hours", "variants", "holdout", "goal", "priority", "url", "enabled"}


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
        group = invite.get("group")
        durations = {"delay": 0.0, "expires": 120.0, "max_wait": DEFAULT_MAX_WAIT}
        for key, default in durations.items():
            try:
                durations[key] = parse_duration(invite.get(key, default), f"{p}invite.{key}")
            except InvalidInput as exc:
                checker.errors.extend(exc.errors)
        delay, expires, max_wait = durations["delay"], durations["expires"], durations["max_wait"]
    caps_raw = raw.get("caps") or {}
    caps = Caps()
    if not isinstance(caps_raw, dict):
        checker.fail(f"{p}caps", "{per_visitor_per_day, per_session, cooldown_after_dismiss}")
    else:
        for key in sorted(set(caps_raw) - {"per_visitor_per_day", "per_session", "cooldown_after_dismiss"}):
            checker.fail(f"{p}caps.{key}", "unknown cap")
        cooldown = None
        if "cooldown_after_dismiss" in caps_raw:
            try:
                cooldown = parse_duration(caps_raw["cooldown_after_dismiss"], f"{p}caps.cooldown_after_dismiss")
            except InvalidInput as exc:
                checker.errors.extend(exc.errors)
        for key in ("per_visitor_per_day", "per_session"):
            if key in caps_raw and (not isinstance(caps_raw[key], int) or caps_raw[key] < 1):
                checker.fail(f"{p}caps.{key}", "a whole number ≥ 1")
        caps = Caps(caps_raw.get("per_visitor_per_day"), caps_raw.get("per_session"), cooldown)
    hours = _hours(raw.get("business_hours"), f"{p}business_hours", checker)
    variants: list[Variant] = []
    raw_variants = raw.get("variants") or []
    if not isinstance(raw_variants, list) or len(raw_variants) > 20:
        checker.fail(f"{p}variants", "a list of at most 20 {name, weight, message?}")
    else:
        for i, v in enumerate(raw_variants):
            if not isinstance(v, dict) or not isinstance(v.get("name"), str) or not isinstance(v.get("weight", 1), (int, float)) or v.get("weight", 1) <= 0:
                checker.fail(f"{p}variants[{i}]", "{name, weight > 0, message?}")
                continue
            variants.append(Variant(v["name"], float(v.get("weight", 1)), v.get("message")))
        if len({v.name for v in variants}) != len(variants):
            checker.fail(f"{p}variants", "variant names must be unique")
    holdout = _percent(raw.get("holdout"), f"{p}holdout", checker)
    goal = raw.get("goal") or {}
    goal_event, goal_within = None, 1800.0
    if goal:
        if not isinstance(goal, dict) or not isinstance(goal.get("event"), str):
            checker.fail(f"{p}goal", "{event, within}")
        else:
            goal_event = goal["event"]
            try:
                goal_within = parse_duration(goal.get("within", "30m"), f"{p}goal.within")
            except InvalidInput as exc:
                checker.errors.extend(exc.errors)
    priority = raw.get("priority", 0)
    if not isinstance(priority, int):
        checker.fail(f"{p}priority", "a whole number (higher fires first)")
        priority = 0
    url = raw.get("url")
    if url is not None and not isinstance(url, str):
        checker.fail(f"{p}url", "a URL glob such as */pricing*")
    if checker.errors or not isinstance(name, str) or not isinstance(site, str):
        return None, checker.errors
    return Rule(
        name=name, site=site, when=when, message=message, group=group, delay=delay, expires=expires, max_wait=max_wait,
        caps=caps, hours=hours,
        variants=variants or [Variant("default", 1.0)], holdout=holdout, goal_event=goal_event, goal_within=goal_within,
        priority=priority, url_glob=url, enabled=raw.get("enabled", True) is not False,
    ), []


def load_document(text: str | bytes, media: Literal["yaml", "json"] = "yaml") -> list[dict[str, Any]]:
    """A YAML or JSON document: ``{"rules": [...]}``, a list of rules, or one rule."""
    try:
        if media == "json":
            check_json_document(text.encode() if isinstance(text, str) else text, "the document")
        data = msgspec.json.decode(text) if media == "json" else load_yaml(text)
    except msgspec.DecodeError as exc:
        raise InvalidInput(f"the document cannot be parsed as {media.upper()}: {exc}", [FieldError("$", str(exc)[:300])]) from None
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
            ok, at = evaluate_timed(child, now, get, count, grows_at, count_expiry, memo)
            if not ok:
                if at is None:
                    return False, None
                result = False
            if at is not None and (soonest is None or at < soonest):
                soonest = at
        return result, soonest
    if kind is Compare:
        key = (cond.field, cond.op, cond.value)  # type: ignore[union-attr]
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
        count_key = (cond.event, cond.within, cond.op, cond.value)  # type: ignore[union-attr]
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
    return rule.enabled and (rule.url_glob is None or (url is not None and fnmatch.fnmatchcase(url, rule.url_glob)))


def to_yaml(documents: list[dict[str, Any]]) -> str:
    return str(yaml.safe_dump({"rules": documents}, sort_keys=False, allow_unicode=True))
