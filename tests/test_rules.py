"""Rules: what validates can always be evaluated; what cannot be evaluated never validates."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archive.clock import ManualClock
from proactive.engine import Engine
from proactive.model import RuleEntry
from proactive.rules import FIELDS, OPS, compile_rule

JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**400), max_value=10**400), st.floats(allow_nan=True),
    st.text(max_size=30), st.sampled_from(["*/pricing*", "purchase", "30s", "10m", "^/p", "(a", "mobile", "EUR", "pro", "/pricing"]),
)
JSON_VALUES = st.recursive(JSON_SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                           max_leaves=8)
FIELD_NAMES = [*FIELDS, "custom.newsletter", "visitor.attributes.plan", "visitor.attributes.Bad-Name"]

EVENTS = st.lists(
    st.fixed_dictionaries({
        "type": st.sampled_from(["pageview", "heartbeat", "scroll", "cart", "goal", "custom", "chat_started", "exit_intent",
                                 "identify", "trigger"]),
        "url": st.sampled_from([None, "https://shop.example.com/", "https://shop.example.com/pricing?utm_source=x"]),
        "title": st.sampled_from([None, "Pricing"]),
        "referrer": st.sampled_from([None, "https://www.google.com/"]),
        "name": st.sampled_from([None, "purchase", "newsletter"]),
        "props": st.sampled_from([{}, {"value": 80, "items": 2, "currency": "EUR"}, {"depth": 0.7}, {"product": "tent", "device": "mobile"},
                                  {"plan": "pro"}, {"plan": 3.5}, {"plan": True}, {"page_language": "nb", "viewport": 390, "search": "tents"}]),
        "advance": st.floats(min_value=0, max_value=120),
        "tab": st.sampled_from(["t", "t", ""]),  # "": the site's server (attributes, triggers)
    }),
    max_size=6,
)


def _rule(condition: dict[str, Any]) -> dict[str, Any]:
    return {"name": "r", "site": "shop", "when": condition, "invite": {"message": "hi"}}


def _run(rule: Any, events: list[dict[str, Any]]) -> None:
    clock = ManualClock(1_800_000_000)
    engine = Engine(clock=clock.time, gate_capacity=False, pace=False, journal=False)
    site, tenant = uuid.uuid4(), uuid.uuid4()
    engine.set_rules(site, [RuleEntry("rule-1", tenant, site, rule)])
    state = engine.state_for(tenant, site, "v")
    for event in events:
        clock.advance(event["advance"])
        engine.apply_events(state, [{"tab": "t", **event, "at_epoch": clock.time()}])
        engine.tick()
    clock.advance(3600)
    engine.tick()
    engine.explain(state, site)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(FIELD_NAMES), op=st.sampled_from(OPS), value=JSON_VALUES, events=EVENTS)
def test_a_rule_that_validates_never_fails_evaluation(field: str, op: str, value: Any, events: list[dict[str, Any]]) -> None:
    rule, problems = compile_rule(_rule({"field": field, "op": op, "value": value}))
    if rule is None:
        assert problems and all(p.path and p.message for p in problems)
        return
    _run(rule, events)


@settings(max_examples=150, deadline=None)
@given(op=st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte", "in"]), value=JSON_VALUES, within=JSON_VALUES, events=EVENTS)
def test_a_count_rule_that_validates_never_fails_evaluation(op: str, value: Any, within: Any, events: list[dict[str, Any]]) -> None:
    rule, _ = compile_rule(_rule({"count": "pageview", "within": within, "op": op, "value": value}))
    if rule is not None:
        _run(rule, events)


@pytest.mark.parametrize("condition,message", [
    ({"field": "goals", "op": "eq", "value": ["purchase"]}, "one of contains, in"),
    ({"field": "page.url", "op": "in", "value": [["x"]]}, "'in' takes a list"),
    ({"count": "pageview", "within": "10m", "op": "gte", "value": 10**400}, "a number"),
    ({"field": "page.time_on_page", "op": "gte", "value": 10**400}, "duration"),
    ({"field": "cart.value", "op": "gt", "value": "50"}, "a number"),
    ({"count": "pageview", "within": 0, "op": "gte", "value": 1}, "longer than zero"),
    # A visitor's memory keeps its last 48 events: more could never be counted.
    ({"count": "product_view", "within": "1d", "op": "gte", "value": 49}, "a larger count could never hold"),
    ({"count": "product_view", "within": "1d", "op": "gt", "value": 48}, "a larger count could never hold"),
])
def test_values_evaluation_cannot_use_are_refused_with_the_reason(condition: dict[str, Any], message: str) -> None:
    rule, problems = compile_rule(_rule(condition))
    assert rule is None and any(message in p.message for p in problems), problems


def test_the_largest_count_a_visitor_can_reach_is_accepted() -> None:
    for op, value in (("gte", 48), ("gt", 47), ("eq", 48), ("lt", 1000)):
        rule, problems = compile_rule(_rule({"count": "product_view", "within": "1d", "op": op, "value": value}))
        assert rule is not None, problems


def test_goals_are_matched_by_contains_and_in() -> None:
    for condition in ({"field": "goals", "op": "contains", "value": "purchase"}, {"field": "goals", "op": "in", "value": ["purchase", "signup"]}):
        rule, problems = compile_rule(_rule(condition))
        assert rule is not None, problems
        assert rule.when.test(["purchase"]) and not rule.when.test([]) and not rule.when.test(None)


def test_a_count_window_ending_exactly_now_does_not_rearm_the_timer_forever() -> None:
    """Found by the property test above: a zero-length window made the tick loop forever."""
    rule, _ = compile_rule(_rule({"count": "pageview", "within": "1s", "op": "gte", "value": 1}))
    assert rule is not None
    _run(rule, [{"type": "pageview", "url": None, "title": None, "referrer": None, "name": None, "props": {}, "advance": 1.0},
                {"type": "heartbeat", "url": None, "title": None, "referrer": None, "name": None, "props": {}, "advance": 1.0}])


LEAVES = [
    {"field": "page.url", "op": "glob", "value": "*/pricing*"},
    {"field": "page.time_on_page", "op": "gte", "value": "30s"},
    {"field": "session.pageviews", "op": "gte", "value": 3},
    {"field": "session.idle", "op": "lt", "value": "20s"},
    {"count": "product_view", "within": "10m", "op": "gte", "value": 2},
    {"not": {"field": "chat.active", "op": "eq", "value": True}},
    {"any": [{"field": "cart.value", "op": "gte", "value": 50}, {"field": "page.time_on_page", "op": "gte", "value": "2m"}]},
]


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(st.sampled_from(LEAVES), min_size=1, max_size=7),
    url=st.sampled_from(["https://shop.example.com/pricing", "https://shop.example.com/"]),
    since=st.floats(min_value=0, max_value=200), pageviews=st.integers(0, 5), products=st.integers(0, 3),
    chat=st.booleans(), cart=st.sampled_from([None, 10, 80]),
)
def test_an_all_decides_the_same_whichever_part_the_engine_looks_at_first(
    parts: list[dict[str, Any]], url: str, since: float, pageviews: int, products: int, chat: bool, cart: int | None,
) -> None:
    """The engine evaluates the parts time cannot change first (a false one settles the whole until
    the next event); the answer — true or not, and when time could change it — is the marketer's
    order's answer."""
    import msgspec

    from proactive.rules import AllOf, evaluate_timed

    rule, problems = compile_rule(_rule({"all": parts}))
    assert rule is not None and isinstance(rule.when, AllOf), problems
    now, origin = 10_000.0, 10_000.0 - since
    values = {"page.url": url, "page.time_on_page": since, "session.idle": since, "session.pageviews": pageviews,
              "chat.active": chat, "cart.value": cart}

    def decide(when: Any) -> tuple[bool, float | None]:
        return evaluate_timed(when, now, values.get, lambda event, within: products, lambda field: origin,
                              lambda event, within: now + 42 if products else None, {})

    assert decide(rule.when) == decide(msgspec.structs.replace(rule.when, timed_order=[]))


GATED_RULES = [
    {"all": [{"field": "page.url", "op": "glob", "value": "*/pricing*"}, {"field": "page.time_on_page", "op": "gte", "value": "20s"}]},
    {"all": [{"field": "page.url", "op": "glob", "value": "*/pricing*"}, {"count": "pageview", "within": "10m", "op": "gte", "value": 2}]},
    {"all": [{"field": "page.title", "op": "eq", "value": "Pricing"}, {"field": "cart.value", "op": "gte", "value": 50}]},
    {"all": [{"field": "visitor.attributes.plan", "op": "eq", "value": "pro"}, {"not": {"field": "chat.active", "op": "eq", "value": True}}]},
    {"field": "page.url", "op": "glob", "value": "*/pricing*"},
    {"any": [{"field": "page.url", "op": "glob", "value": "*/"}, {"field": "goals", "op": "contains", "value": "purchase"}]},
]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(picked=st.lists(st.sampled_from(range(len(GATED_RULES))), min_size=1, max_size=6), events=EVENTS, more=EVENTS)
def test_skipping_rules_whose_first_comparison_fails_decides_exactly_what_full_evaluation_does(
        picked: list[int], events: list[dict[str, Any]], more: list[dict[str, Any]]) -> None:
    """The engine skips a rule whose first time-invariant comparison is false (and that has no
    episode to end) without evaluating the rest: the decisions must be the same as without."""

    def run(gated: bool) -> tuple[Any, ...]:
        clock = ManualClock(1_800_000_000)
        engine = Engine(clock=clock.time, gate_capacity=False, pace=False, journal=False)
        if not gated:
            engine._gates_of = lambda site, entries: [None] * len(entries)  # type: ignore[method-assign]
        site, tenant = uuid.uuid4(), uuid.uuid4()
        entries = []
        for i, index in enumerate(picked):
            rule, problems = compile_rule({**_rule(GATED_RULES[index]), "name": f"r{i}", "caps": {"per_session": 2}})
            assert rule is not None, problems
            entries.append(RuleEntry(f"rule-{i}", tenant, site, rule))
        engine.set_rules(site, entries)
        state = engine.state_for(tenant, site, "v")
        seen = []
        for event in [*events, *more]:
            clock.advance(event["advance"])
            engine.apply_events(state, [{"tab": "t", **event, "at_epoch": clock.time()}])
            engine.tick()
            seen.append((sorted((state.episodes or {}).keys()), sorted(r.rule_id for r in engine.open.values()),
                         engine.explain(state, site)))
        clock.advance(3600)
        engine.tick()
        return tuple(map(str, seen)), tuple(sorted(engine.counters.items())), engine._scheduled.get(state.key)

    assert run(gated=True) == run(gated=False)
