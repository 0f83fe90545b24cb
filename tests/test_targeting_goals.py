"""URL goals: a page reached within a window after an invitation counts as the rule's goal, credited
by first- or last-touch attribution among the rules that share the goal — in stats, explain and
backtests alike."""
# ruff: noqa: F811  (the engagement fixtures are imported from tests.engagement_support)

from __future__ import annotations

from typing import Any
from uuid import UUID

import pytest

from archive.tables import Site
from proactive import backtest, service, store
from proactive.model import RuleEntry
from proactive.rules import compile_rule, goals_reached, url_goals
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

THANKS = {"url": "/order/thank-you*", "within": "1h"}


def journey(attribution: str, goal: dict[str, Any] | None = None) -> Bench:
    """Invited by rule a on /pricing, then by rule b on /cart (both dismissed), then the order's
    thank-you page: two touches before one goal."""
    bench = Bench(at("2026-11-23T10:00"))
    entries = []
    for name, page in (("a", "/pricing"), ("b", "/cart")):
        compiled, problems = compile_rule({"name": name, "site": "shop", "invite": {"message": "hi"},
                                           "when": {"field": "page.path", "op": "eq", "value": page},
                                           "goal": {**(goal or THANKS), "attribution": attribution}})
        assert compiled is not None, problems
        entries.append(RuleEntry(name, bench.tenant, bench.site, compiled))
    bench.engine.set_rules(bench.site, entries)
    for page in ("/pricing", "/cart"):
        bench.send("pageview", url=f"{ORIGIN}{page}")
        bench.react("dismissed")
        bench.advance(60)
    bench.send("pageview", url=f"{ORIGIN}/order/thank-you?utm_source=mail")
    return bench


def goals(bench: Bench) -> dict[str, int]:
    return {rule: count for (rule, _, name), count in bench.engine.counters.items() if name == "goals"}


def test_last_touch_credits_the_latest_invitation_before_the_goal():
    assert goals(journey("last")) == {"b": 1}


def test_first_touch_credits_the_earliest_invitation_within_the_window():
    assert goals(journey("first")) == {"a": 1}


def test_an_event_goal_is_attributed_the_same_way():
    bench = journey("first", {"event": "purchase", "within": "1h"})
    assert goals(bench) == {}  # the thank-you page is no purchase event
    bench.send("goal", name="purchase")
    assert goals(bench) == {"a": 1}


def test_a_goal_reached_again_after_the_same_touch_counts_once():
    bench = journey("last")
    bench.send("pageview", url=f"{ORIGIN}/order/thank-you")
    assert goals(bench) == {"b": 1}


def test_a_url_goal_outside_the_window_counts_for_no_rule():
    bench = journey("last", {"url": "/order/thank-you*", "within": "30s"})
    assert goals(bench) == {}
    assert bench.state.url_goals == {"/order/thank-you*"}  # reached all the same


def reaches(goal_url: str, url: str) -> bool:
    compiled, problems = compile_rule({"name": "r", "site": "s", "invite": {"message": "m"}, "goal": {"url": goal_url}})
    assert compiled is not None, problems
    return goals_reached(url_goals([compiled]), url) == [goal_url]


def test_a_goal_glob_without_a_leading_slash_matches_the_whole_url():
    assert reaches("https://shop.example.com/done*", "https://shop.example.com/done/42")
    assert not reaches("https://shop.example.com/done*", "https://other.example.com/done/42")
    assert reaches("/done*", "https://any.example.com/done?utm_source=x")
    assert not reaches("/done*", "https://any.example.com/shop/done")


@pytest.mark.parametrize("goal,path,message", [
    ({"event": "purchase", "url": "/done"}, "goal", "not both"),
    ({}, None, None),  # no goal at all is fine
    ({"within": "1h"}, "goal", "either event"),
    ({"url": "/done", "attribution": "linear"}, "goal.attribution", "first"),
    ({"url": "/done", "within": "soon"}, "goal.within", "duration"),
    ({"url": "/done", "colour": "red"}, "goal.colour", "unknown key"),
])
def test_a_goal_is_checked_naming_the_field(goal, path, message):
    compiled, problems = compile_rule({"name": "r", "site": "s", "invite": {"message": "m"}, "goal": goal})
    if path is None:
        assert compiled is not None and compiled.goal_key is None
    else:
        assert compiled is None and any(p.path == path and message in p.message for p in problems), problems


# --- through the API ---------------------------------------------------------------------------


async def test_reaching_the_goal_page_after_an_invitation_is_counted_in_stats_and_explained(client, shop, clock, runtime):
    ids = await import_rules(client, shop, rule(goal={"url": "/order/thank-you*", "within": "1h", "attribution": "last"}))
    visitor = Visitor(client, shop, clock)
    await visitor.view("/pricing", "/pricing", "/pricing")
    assert [i["rule"] for i in visitor.received] == ["pricing"]
    advance(runtime, clock, 300)
    await visitor.view("/order/thank-you")
    found = await client.get(f"/v1/rules/{ids['pricing']}/stats", headers=shop.headers("marketing"))
    assert found.json()["totals"]["counts"]["goals"] == 1
    assert found.json()["goal"] == {"within_seconds": 3600.0, "attribution": "last", "url": "/order/thank-you*"}
    [outcome] = [o for o in await visitor.explain() if o["rule"] == "pricing"]
    assert outcome["goal"].startswith("reached at ") and outcome["goal"].endswith("counted for variant default (last touch)")


async def test_a_visitor_who_reached_the_goal_page_is_not_invited_to_it(client, shop, clock, runtime):
    ids = await import_rules(client, shop, rule(goal={"url": "/order/thank-you*"}))
    visitor = Visitor(client, shop, clock)
    await visitor.view("/order/thank-you/17", "/pricing", "/pricing", "/pricing")
    assert visitor.received == []
    assert (await stats(client, shop, ids["pricing"]))["suppressed"]["goal_reached"] == 1
    [outcome] = [o for o in await visitor.explain() if o["rule"] == "pricing"]
    assert outcome["goal"].startswith("reached, not counted for this rule")


async def test_a_backtest_credits_url_goals_as_live_did(client, shop, clock, runtime):
    ids = await import_rules(
        client, shop,
        rule("pricing", goal={"url": "/order/thank-you*", "within": "1h", "attribution": "first"}),
        rule("cart", when={"field": "page.path", "op": "eq", "value": "/cart"}, goal={"url": "/order/thank-you*", "within": "1h"}),
    )
    for n in range(3):
        visitor = Visitor(client, shop, clock)
        await visitor.view("/pricing", "/pricing", "/pricing")
        for invitation in visitor.received:
            await visitor.react(invitation, "dismissed")
        advance(runtime, clock, 30)
        await visitor.view("/cart")
        advance(runtime, clock, 30)
        if n < 2:
            await visitor.view("/order/thank-you")
        advance(runtime, clock, 200)
    await runtime.engagement.settle()
    live = {name: (await stats(client, shop, rule_id))["counts"]["goals"] for name, rule_id in ids.items()}
    assert live == {"pricing": 2, "cart": 2}  # first touch: pricing's; last touch: cart's — each by its own model
    site_id = UUID(shop.site["id"])
    settings = await Site.select(Site.settings).where(Site.id == site_id).first()
    crypto = (await runtime.tenants.context(shop.id)).crypto
    batches = await store.replay_batches(site_id, store.recent_cutoff(clock.time(), 86400), crypto)
    entries = [e for e in runtime.engagement.engine.rules[site_id] if e.id in ids.values()]
    result = backtest.replay(entries, site_id, service.site_config(settings["settings"]), batches, clock.time())
    assert {e.rule.name: backtest.summary(e, 1, result).goals for e in entries} == live
