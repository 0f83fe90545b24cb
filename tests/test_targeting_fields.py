"""Targeting, what the snippet knows: device, languages, viewport, search keyword, the visit's pages
with ordered steps (funnels), case-insensitive operators — read the same way by live decisions,
explain, stats and backtests."""
# ruff: noqa: F811  (the engagement fixtures are imported from tests.engagement_support)

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from archive.tables import Site
from proactive import backtest, service, store
from proactive.rules import compile_rule
from tests.engagement_support import (  # noqa: F401  (fixtures)
    ORIGIN,
    Visitor,
    advance,
    client,
    clock,
    import_rules,
    rule,
    runtime,
    shop,
    stats,
)
from tests.test_targeting_when import Bench, at

ABOUT = {"device": "mobile", "language": "nb-NO", "viewport": 390, "page_language": "nb", "search": "Tents For Winter"}


def holds(condition: dict[str, Any], *pages: tuple[str, dict[str, Any]]) -> bool:
    """Does the condition hold after these pageviews (path, props)?"""
    bench = Bench(at("2026-11-23T10:00"))
    bench.rules(when=condition, caps={"per_visitor_per_day": None, "cooldown_after_dismiss": None})
    for path, props in pages:
        bench.send("pageview", url=f"https://shop.example.com{path}", props=props)
    return bool(bench.engine.explain(bench.state, bench.site)[0].condition)


@pytest.mark.parametrize("condition,expected", [
    ({"field": "visitor.device", "op": "eq", "value": "mobile"}, True),
    ({"field": "visitor.language", "op": "istarts_with", "value": "NB"}, True),
    ({"field": "page.language", "op": "in", "value": ["nb", "nn", "no"]}, True),
    ({"field": "visitor.viewport_width", "op": "lt", "value": 480}, True),
    ({"field": "session.search_keyword", "op": "icontains", "value": "tents"}, True),
    ({"field": "session.search_keyword", "op": "contains", "value": "tents"}, False),  # case matters without the i
    ({"field": "page.title", "op": "ieq", "value": "PRICING"}, False),  # no title was sent
])
def test_what_the_snippet_sends_about_the_device_and_page_can_be_targeted(condition, expected):
    assert holds(condition, ("/", ABOUT)) is expected


def test_the_search_keyword_is_the_landing_pages_and_stays_for_the_visit():
    condition = {"field": "session.search_keyword", "op": "eq", "value": "Tents For Winter"}
    assert holds(condition, ("/", ABOUT), ("/pricing", {**ABOUT, "search": "other"}))


def test_the_page_language_follows_the_page_in_focus():
    condition = {"field": "page.language", "op": "eq", "value": "en"}
    assert holds(condition, ("/", ABOUT), ("/en/", {**ABOUT, "page_language": "en"}))
    assert not holds(condition, ("/en/", {**ABOUT, "page_language": "en"}), ("/", ABOUT))


FUNNEL = {"field": "session.pages", "op": "steps", "value": ["/product*", "/cart", "/checkout*"]}


@pytest.mark.parametrize("paths,expected", [
    (["/product/tent", "/cart", "/checkout/address"], True),
    (["/", "/product/tent", "/about", "/cart", "/help", "/checkout"], True),  # other pages between steps
    (["/cart", "/product/tent", "/checkout"], False),  # out of order
    (["/product/tent", "/cart"], False),  # not finished
])
def test_a_funnel_holds_when_its_steps_were_viewed_in_order(paths, expected):
    assert holds(FUNNEL, *((p, {}) for p in paths)) is expected


def test_session_pages_contains_exact_paths():
    assert holds({"field": "session.pages", "op": "contains", "value": "/pricing"}, ("/pricing", {}), ("/", {}))
    assert not holds({"field": "session.pages", "op": "contains", "value": "/pric"}, ("/pricing", {}))


@pytest.mark.parametrize("condition,message", [
    ({"field": "session.pages", "op": "steps", "value": []}, "1 to 20 path globs"),
    ({"field": "session.pages", "op": "steps", "value": "/cart"}, "1 to 20 path globs"),
    ({"field": "page.url", "op": "steps", "value": ["/a"]}, "one of"),
    ({"field": "cart.value", "op": "icontains", "value": "1"}, "one of"),
    ({"field": "visitor.attributes.plan", "op": "gt", "value": "pro"}, "compares with a number"),
    ({"field": "visitor.attributes.Plan", "op": "eq", "value": "pro"}, "lowercase"),
])
def test_misused_new_fields_and_operators_are_refused_with_the_reason(condition, message):
    compiled, problems = compile_rule({"name": "r", "site": "shop", "when": condition, "invite": {"message": "hi"}})
    assert compiled is None and any(message in p.message for p in problems), problems


def test_an_attribute_compares_only_with_values_of_its_kind():
    bench = Bench(at("2026-11-23T10:00"))
    bench.state.identify({"seats": 12.0, "trial": True, "plan": "Pro"}, trusted=True)
    get = bench.engine.getter(bench.state, compile_rule({"name": "r", "site": "s", "invite": {"message": "m"}})[0], at("2026-11-23T10:00"))

    def test(field: str, op: str, value: Any) -> bool:
        compiled, problems = compile_rule({"name": "r", "site": "s", "invite": {"message": "m"}, "when": {"field": field, "op": op, "value": value}})
        assert compiled is not None, problems
        return bool(compiled.when.test(get(field)))  # type: ignore[union-attr]

    assert test("visitor.attributes.seats", "gte", 10) and not test("visitor.attributes.plan", "gte", 10)
    assert test("visitor.attributes.trial", "eq", True) and not test("visitor.attributes.trial", "eq", 1)
    assert test("visitor.attributes.plan", "ieq", "pro") and not test("visitor.attributes.plan", "eq", "pro")
    assert test("visitor.attributes.plan", "in", ["Pro", "Team"]) and not test("visitor.attributes.plan", "in", [1, True])


# --- backtest = live on the new fields ---------------------------------------------------------


async def test_a_backtest_of_rules_on_attributes_triggers_and_funnels_decides_what_live_did(client, shop, clock, runtime):
    await client.patch(f"/v1/admin/sites/{shop.site['id']}/engagement", json={"attributes": {"plan": "str"}}, headers=shop.headers("admin"))
    ids = await import_rules(
        client, shop,
        rule("pro-funnel", when={"all": [{"field": "visitor.attributes.plan", "op": "ieq", "value": "pro"},
                                         {"field": "session.pages", "op": "steps", "value": ["/product*", "/pricing"]}]}),
        rule("help", when={"count": "need_help", "within": "5m", "op": "gte", "value": 1}, priority=5),
        rule("norsk", when={"field": "page.language", "op": "eq", "value": "nb"}, priority=-1),
    )
    for n in range(4):
        visitor = Visitor(client, shop, clock)
        await visitor.send({"type": "pageview", "url": f"{ORIGIN}/product/{n}", "props": {"page_language": "nb" if n % 2 else "en"}})
        if n % 2 == 0:
            await client.post(f"/v1/visitors/{visitor.id}/attributes", json={"site": "shop", "attributes": {"plan": "PRO"}},
                              headers=shop.headers("ingest"))
        if n == 2:
            await visitor.send({"type": "trigger", "name": "need_help"})
        advance(runtime, clock, 5)
        await visitor.view("/pricing")
        advance(runtime, clock, 200)
    await runtime.engagement.settle()
    live = sorted((d.at, d.visitor_hash, d.rule_id, d.outcome) for d in runtime.engagement.engine.decisions if d.rule_id in ids.values())
    assert {(ids["pro-funnel"], "sent"), (ids["help"], "sent"), (ids["norsk"], "sent")} <= {(d[2], d[3]) for d in live}
    site_id = UUID(shop.site["id"])
    settings = await Site.select(Site.settings).where(Site.id == site_id).first()
    crypto = (await runtime.tenants.context(shop.id)).crypto
    batches = await store.replay_batches(site_id, store.recent_cutoff(clock.time(), 86400), crypto)
    entries = [e for e in runtime.engagement.engine.rules[site_id] if e.id in ids.values()]
    replayed = backtest.replay(entries, site_id, service.site_config(settings["settings"]), batches, clock.time()).decisions
    assert sorted((d.at, d.visitor_hash, d.rule_id, d.outcome) for d in replayed) == live
    counted = await stats(client, shop, ids["pro-funnel"])
    assert counted["counts"]["sent"] == sum(1 for d in live if d[2] == ids["pro-funnel"] and d[3] == "sent")
