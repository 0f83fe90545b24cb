"""Backtest = live: recorded traffic replayed from the store decides exactly what the live engine
decided — same visitors, same rules, same outcomes, at the same instants."""
# ruff: noqa: F811  (the engagement fixtures are imported from tests.engagement_support)

from __future__ import annotations

import random
from typing import Any
from uuid import UUID

from archive.tables import Site
from proactive import backtest, service, store
from tests.engagement_support import (  # noqa: F401  (fixtures)
    Visitor,
    advance,
    client,
    clock,
    import_rules,
    pageview,
    rule,
    runtime,
    shop,
)

RULES = [
    rule("hesitation", priority=3, when={"all": [
        {"field": "page.url", "op": "glob", "value": "*/pricing*"},
        {"field": "page.time_on_page", "op": "gte", "value": "25s"},
    ]}, caps={"per_session": 1}, holdout="30%", goal={"event": "purchase", "within": "30m"}),
    rule("browsing", priority=3, when={"count": "product_view", "within": "5m", "op": "gte", "value": 3},
         invite={"group": "support", "delay": "5s"}, caps={"cooldown_after_dismiss": "10m"},
         variants=[{"name": "a", "weight": 1}, {"name": "b", "weight": 1, "message": "Need a hand?"}]),
    rule("campaign", priority=1, when={"all": [
        {"field": "session.utm_campaign", "op": "eq", "value": "spring"},
        {"field": "session.pageviews", "op": "gte", "value": 2},
    ]}, invite={"group": None, "max_wait": "45s"}),
    rule("returning", priority=2, when={"all": [
        {"field": "visitor.returning", "op": "eq", "value": True},
        {"field": "session.idle", "op": "gte", "value": "20s"},
    ]}, caps={"per_visitor_per_day": 1}, holdout="50%"),
]
PATHS = ["/", "/pricing", "/plans", "/product/tent", "/product/stove", "/about", "/pricing/teams", "/?utm_campaign=spring&utm_source=mail"]


async def _traffic(client, shop, clock, runtime, seed: int, visitors: int = 16, steps: int = 360) -> None:
    """What a few browsers do over an afternoon: pages in two tabs, heartbeats, hidden tabs,
    products, invitations shown, dismissed and accepted, purchases, long pauses."""
    rng = random.Random(seed)
    crowd = [Visitor(client, shop, clock, f"replay-{seed}-{i}") for i in range(visitors)]
    handled: dict[str, set[str]] = {v.id: set() for v in crowd}
    for _ in range(steps):
        advance(runtime, clock, rng.choice([0.5, 1, 2, 4, 8, 15, 30]) if rng.random() > 0.01 else 31 * 60)
        visitor = rng.choice(crowd)
        tab = rng.choice(["tab-a", "tab-a", "tab-b"])
        roll = rng.random()
        fresh = [i for i in visitor.received if i["id"] not in handled[visitor.id]]
        if fresh and roll < 0.5:
            invitation = fresh[0]
            handled[visitor.id].add(invitation["id"])
            await visitor.react(invitation, "shown")
            await visitor.react(invitation, rng.choice(["dismissed", "dismissed", "accepted"]))
        elif roll < 0.45:
            path = rng.choice(PATHS)
            props = {"product_id": path.rsplit("/", 1)[-1]} if path.startswith("/product") else {}
            await visitor.send(pageview(path, props=props), tab=tab)
        elif roll < 0.75:
            await visitor.beat(tab=tab)
        elif roll < 0.82:
            await visitor.send({"type": "visibility", "props": {"state": rng.choice(["hidden", "visible"])}}, tab=tab)
        elif roll < 0.92:
            await visitor.send({"type": "custom", "name": "product_view"}, tab=tab)
        elif roll < 0.96:
            await visitor.send({"type": "scroll", "props": {"depth": rng.choice([25, 50, 100])}}, tab=tab)
        else:
            await visitor.send({"type": "goal", "name": "purchase"}, tab=tab)
    advance(runtime, clock, 600)
    await runtime.engagement.settle()


async def _replayed(runtime, shop, clock, rule_ids: dict[str, str]) -> backtest.Replay:
    site_id = UUID(shop.site["id"])
    entries = [e for e in runtime.engagement.engine.rules[site_id] if e.id in rule_ids.values()]
    settings = await Site.select(Site.settings).where(Site.id == site_id).first()
    crypto = (await runtime.tenants.context(shop.id)).crypto
    batches = await store.replay_batches(site_id, store.recent_cutoff(clock.time(), 86400 * 7), crypto)
    return backtest.replay(entries, site_id, service.site_config(settings["settings"]), batches, clock.time())


def _ordered(decisions: Any) -> list[tuple[float, str, str, str]]:
    return sorted((d.at, d.visitor_hash, d.rule_id, d.outcome) for d in decisions)


def _live(runtime, rule_ids: dict[str, str]) -> list[Any]:
    return [d for d in runtime.engagement.engine.decisions if d.rule_id in rule_ids.values()]


async def test_a_backtest_decides_exactly_what_the_live_engine_decided(client, shop, clock, runtime):
    ids = await import_rules(client, shop, *RULES)
    await client.patch(f"/v1/admin/sites/{shop.site['id']}/engagement", json={"pacing_per_minute": 10_000, "timezone": "Europe/Oslo"},
                       headers=shop.headers("admin"))
    await _traffic(client, shop, clock, runtime, seed=15)
    live = _live(runtime, ids)
    replayed = (await _replayed(runtime, shop, clock, ids)).decisions
    assert {d.outcome for d in live} >= {"sent", "control"}  # the traffic exercised the rules
    assert len({d.rule_id for d in live if d.outcome == "sent"}) >= 3
    assert _ordered(replayed) == _ordered(live)


async def test_the_backtest_endpoint_reports_the_rules_live_outcomes(client, shop, clock, runtime):
    ids = await import_rules(client, shop, *RULES)
    await client.patch(f"/v1/admin/sites/{shop.site['id']}/engagement", json={"pacing_per_minute": 10_000}, headers=shop.headers("admin"))
    await _traffic(client, shop, clock, runtime, seed=3, visitors=8, steps=150)
    live = [d for d in _live(runtime, ids) if d.rule_id == ids["hesitation"]]
    report = (await client.post(f"/v1/rules/{ids['hesitation']}/backtest", params={"days": 1}, headers=shop.headers("marketing"))).json()
    sent = [d for d in live if d.outcome == "sent"]
    assert report["invitations"] == len(sent) and report["visitors_invited"] == len({d.visitor_hash for d in sent})
    assert report["suppressed"].get("holdout", 0) == sum(1 for d in live if d.outcome == "control")
    assert report["visitors"] == 8
