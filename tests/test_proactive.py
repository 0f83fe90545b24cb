"""The engagement engine: intake, rules from YAML, timers, caps, capacity, stats, explain, backtest."""

from __future__ import annotations

import json

import pytest
import yaml

from api.app import create_app
from api.composition import build_runtime
from archive.clock import ManualClock
from proactive import service
from tests.conftest import app_client, opensearch_backend

ORIGIN = "https://shop.example.com"
ISSUE_EXAMPLE = """
rules:
  - name: pricing-hesitation
    site: shop                      # site name
    when:
      all:
        - {field: page.url, op: glob, value: "*/pricing*"}
        - {field: page.time_on_page, op: gte, value: 30s}
        - {field: session.pageviews, op: gte, value: 3}
        - not: {field: chat.active, op: eq, value: true}
    invite:
      message: "Questions about our plans? We are online."
      group: sales
    caps: {per_visitor_per_day: 1, per_session: 1, cooldown_after_dismiss: 1d}
    business_hours: {timezone: Europe/Oslo, days: mon-fri, from: "08:00", to: "18:00"}   # optional
    variants: [{name: a, weight: 50}, {name: b, weight: 50, message: "Need help choosing?"}]  # optional
    holdout: 10%                    # optional
    goal: {event: purchase, within: 30m}   # optional
"""


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def runtime(runtime, settings, clock):
    """This module's engine runs on a manual clock: a runtime of its own, sharing the database."""
    engine_rt = build_runtime(settings, clock=clock, keyring=runtime.keyring, database=runtime.database, search=runtime.search)
    await engine_rt.start(migrate=False)
    yield engine_rt
    await engine_rt.stop()


@pytest.fixture
async def client(settings, runtime):
    async with app_client(create_app(settings, runtime)) as http:
        yield http


@pytest.fixture
async def shop(client, tenant):
    site = await client.post("/v1/admin/sites", json={"name": "shop", "allowed_origins": [ORIGIN]}, headers=tenant.headers("admin"))
    assert site.status_code == 201
    tenant.site = site.json()
    return tenant


def pricing_rule(**overrides) -> str:
    """The issue's example without business hours and holdout, so the outcome is not time- or luck-dependent."""
    doc = yaml.safe_load(ISSUE_EXAMPLE)
    rule = doc["rules"][0]
    rule.pop("business_hours")
    rule.pop("holdout")
    rule.update(overrides)
    return yaml.safe_dump(doc)


async def _import(client, tenant, text: str):
    response = await client.post("/v1/rules/import", content=text.encode(), headers={**tenant.headers("marketing"), "content-type": "application/yaml"})
    assert response.status_code == 200, response.text
    rules = (await client.get("/v1/rules", headers=tenant.headers("marketing"))).json()
    return {r["name"]: r for r in rules}


async def _collect(client, tenant, clock, visitor: str, *events, session: str = "s1", origin: str = ORIGIN, ua: str = "Mozilla/5.0"):
    body = {"site_key": tenant.site["site_key"], "visitor_id": visitor, "session_id": session,
            "events": [{"at": int(clock.time() * 1000), **e} for e in events]}
    import json

    return await client.post("/v1/collect", content=json.dumps(body), headers={"content-type": "text/plain", "origin": origin, "user-agent": ua})


def pageview(path: str) -> dict:
    return {"type": "pageview", "url": f"{ORIGIN}{path}", "title": path}


async def test_the_issue_example_is_accepted_and_round_trips_through_export(client, shop):
    check = await client.post("/v1/rules/validate", content=ISSUE_EXAMPLE.encode(), headers={**shop.headers("marketing"), "content-type": "application/yaml"})
    assert check.json() == {"valid": True, "rules": 1, "errors": []}
    rules = await _import(client, shop, ISSUE_EXAMPLE)
    assert rules["pricing-hesitation"]["definition"]["holdout"] == "10%"
    exported = await client.get("/v1/rules/export", headers=shop.headers("marketing"))
    assert exported.headers["content-type"].startswith("application/yaml")
    assert yaml.safe_load(exported.text)["rules"][0]["business_hours"]["timezone"] == "Europe/Oslo"


@pytest.mark.parametrize("rule,path,words", [
    ({"when": {"all": [{"field": "page.colour", "op": "eq", "value": 1}]}}, "rules[0].when.all[0].field", "unknown field"),
    ({"when": {"field": "page.url", "op": "like", "value": "x"}}, "rules[0].when.op", "one of"),
    ({"when": {"field": "page.url", "op": "regex", "value": "(?<=x)pricing"}}, "rules[0].when.value", "RE2"),
    ({"when": {"field": "page.time_on_page", "op": "gte", "value": "soon"}}, "rules[0].when.value", "duration"),
    ({"when": {"field": "session.pageviews", "op": "in", "value": list(range(500))}}, "rules[0].when.value", "at most"),
    ({"invite": {"message": ""}}, "rules[0].invite.message", "invitation text"),
    ({"caps": {"per_session": 0}}, "rules[0].caps.per_session", "≥ 1"),
    ({"holdout": "150%"}, "rules[0].holdout", "between"),
    ({"colour": "red"}, "rules[0].colour", "unknown key"),
])
async def test_invalid_rules_are_refused_with_the_field_path(client, shop, rule, path, words):
    doc = yaml.safe_load(ISSUE_EXAMPLE)
    doc["rules"][0].update(rule)
    response = await client.post("/v1/rules/validate", content=yaml.safe_dump(doc).encode(), headers={**shop.headers("marketing"), "content-type": "application/yaml"})
    body = response.json()
    assert body["valid"] is False
    assert any(e["path"] == path and words in e["message"] for e in body["errors"]), body["errors"]
    imported = await client.post("/v1/rules/import", content=yaml.safe_dump(doc).encode(), headers={**shop.headers("marketing"), "content-type": "application/yaml"})
    assert imported.status_code == 422 and (await client.get("/v1/rules", headers=shop.headers("marketing"))).json() == []


async def test_hostile_nesting_is_refused(client, shop):
    condition: dict = {"field": "session.pageviews", "op": "gte", "value": 1}
    for _ in range(30):
        condition = {"not": condition}
    doc = {"rules": [{"name": "deep", "site": "shop", "when": condition, "invite": {"message": "hi"}}]}
    response = await client.post("/v1/rules/validate", json=doc, headers=shop.headers("marketing"))
    assert response.json()["valid"] is False and "nest" in response.json()["errors"][0]["message"]


async def test_unknown_site_in_a_rule_is_named(client, shop):
    doc = yaml.safe_load(ISSUE_EXAMPLE)
    doc["rules"][0]["site"] = "blog"
    response = await client.post("/v1/rules/import", content=yaml.safe_dump(doc).encode(), headers={**shop.headers("marketing"), "content-type": "application/yaml"})
    assert response.status_code == 422 and response.json()["errors"][0]["path"] == "rules[0].site"


async def test_pricing_rule_fires_once_is_capped_paced_by_capacity_counted_explained_and_backtested(client, shop, clock, runtime):
    rules = await _import(client, shop, pricing_rule())
    rule_id = rules["pricing-hesitation"]["id"]
    marketing = shop.headers("marketing")

    # Three pageviews ending on the pricing page: the 30 s have not passed yet.
    first = await _collect(client, shop, clock, "v1", pageview("/"), pageview("/plans"), pageview("/pricing"))
    assert first.status_code == 200 and first.json()["accepted"] == 3 and first.json()["invitations"] == []
    explained = (await client.get("/v1/visitors/v1/explain", params={"site": "shop"}, headers=marketing)).json()
    assert explained[0]["decision"] == "not matched" and explained[0]["next_check_at"]
    assert any("page.time_on_page" in line and line.startswith("✗") for line in explained[0]["trace"])

    # 31 s later the timer (not a new event) makes the condition true; the next call delivers it.
    clock.advance(31)
    assert runtime.engagement.engine.tick() >= 1
    delivered = (await _collect(client, shop, clock, "v1", {"type": "heartbeat"})).json()["invitations"]
    assert len(delivered) == 1
    invitation = delivered[0]
    assert set(invitation) == {"id", "rule", "variant", "message", "group", "expires_at"}
    assert invitation["rule"] == "pricing-hesitation" and invitation["group"] == "sales" and invitation["variant"] in ("a", "b")
    await _collect(client, shop, clock, "v1", {"type": "invitation_shown", "props": {"invitation_id": invitation["id"]}},
                   {"type": "invitation_dismissed", "props": {"invitation_id": invitation["id"]}})

    # Leaving and coming back meets the condition again, but the cap holds.
    clock.advance(5)
    await _collect(client, shop, clock, "v1", pageview("/features"))
    clock.advance(5)
    await _collect(client, shop, clock, "v1", pageview("/pricing"))
    clock.advance(31)
    runtime.engagement.engine.tick()
    assert (await _collect(client, shop, clock, "v1", {"type": "heartbeat"})).json()["invitations"] == []

    # No free agent in "sales": another visitor meets the condition and is suppressed for capacity.
    capacity = await client.put("/v1/agents/capacity", json={"groups": {"sales": {"online_agents": 1, "max_chats_per_agent": 2, "active_chats": 2}}},
                                headers=shop.headers("ingest"))
    assert capacity.status_code == 200 and capacity.json()["sales"]["free_slots"] == 0
    await _collect(client, shop, clock, "v2", pageview("/"), pageview("/a"), pageview("/pricing"))
    clock.advance(31)
    runtime.engagement.engine.tick()
    assert (await _collect(client, shop, clock, "v2", {"type": "heartbeat"})).json()["invitations"] == []
    explained = (await client.get("/v1/visitors/v2/explain", params={"site": "shop"}, headers=marketing)).json()
    assert explained[0]["decision"] == "suppressed: capacity"

    # A free slot again: a third visitor is invited.
    await client.put("/v1/agents/capacity", json={"groups": {"sales": {"online_agents": 1, "max_chats_per_agent": 2, "active_chats": 1}}},
                     headers=shop.headers("ingest"))
    await _collect(client, shop, clock, "v3", pageview("/"), pageview("/b"), pageview("/pricing"))
    clock.advance(31)
    runtime.engagement.engine.tick()
    assert len((await _collect(client, shop, clock, "v3", {"type": "heartbeat"})).json()["invitations"]) == 1

    await service.flush_counters(runtime)  # half the counts come from the store, half from memory
    stats = (await client.get(f"/v1/rules/{rule_id}/stats", headers=marketing)).json()
    totals = stats["totals"]
    assert totals["counts"]["matched"] == 4 and totals["counts"]["sent"] == 2
    assert totals["counts"]["shown"] == 1 and totals["counts"]["dismissed"] == 1
    assert totals["suppressed"]["cap"] == 1 and totals["suppressed"]["capacity"] == 1
    assert totals["rates"]["send_rate"] == 0.5

    backtest = (await client.post(f"/v1/rules/{rule_id}/backtest", params={"days": 1}, headers=marketing)).json()
    assert backtest["visitors"] == 3 and backtest["invitations"] == 3 and backtest["visitors_invited"] == 3


async def test_never_during_an_active_chat_and_goal_attribution(client, shop, clock, runtime):
    rules = await _import(client, shop, pricing_rule())
    rule_id = rules["pricing-hesitation"]["id"]
    await _collect(client, shop, clock, "c1", {"type": "chat_started"}, pageview("/"), pageview("/x"), pageview("/pricing"))
    clock.advance(31)
    runtime.engagement.engine.tick()
    assert (await _collect(client, shop, clock, "c1", {"type": "heartbeat"})).json()["invitations"] == []
    explained = (await client.get("/v1/visitors/c1/explain", params={"site": "shop"}, headers=shop.headers("marketing"))).json()
    assert explained[0]["condition"] is False  # the rule itself says "not chatting"

    await _collect(client, shop, clock, "g1", pageview("/"), pageview("/x"), pageview("/pricing"))
    clock.advance(31)
    runtime.engagement.engine.tick()
    assert len((await _collect(client, shop, clock, "g1", {"type": "heartbeat"})).json()["invitations"]) == 1
    clock.advance(60)
    await _collect(client, shop, clock, "g1", {"type": "goal", "name": "purchase"})
    stats = (await client.get(f"/v1/rules/{rule_id}/stats", headers=shop.headers("marketing"))).json()
    assert stats["totals"]["counts"]["goals"] == 1


async def test_collect_keeps_good_events_and_names_bad_ones(client, shop, clock):
    response = await _collect(
        client, shop, clock, "bad1",
        pageview("/"),
        {"type": "teleport"},
        {"type": "pageview", "url": f"{ORIGIN}/late", "at": int((clock.time() + 3600) * 1000)},
        {"type": "custom", "name": "x", "props": {"blob": "x" * 5000}},
        {"type": "custom"},
        {"type": "click", "props": {"nested": {"a": 1}}},
    )
    body = response.json()
    assert response.status_code == 200 and body["accepted"] == 1
    reasons = {r["index"]: r["reason"] for r in body["rejected"]}
    assert "unknown type" in reasons[1] and "future" in reasons[2] and "larger" in reasons[3]
    assert "needs a name" in reasons[4] and "props values" in reasons[5]


async def test_collect_checks_site_key_origin_and_bots(client, shop, clock):
    wrong_origin = await _collect(client, shop, clock, "o1", pageview("/"), origin="https://evil.example")
    assert wrong_origin.status_code == 403 and "not allowed" in wrong_origin.json()["detail"]
    shop.site = {**shop.site, "site_key": "ps_unknown"}
    unknown = await _collect(client, shop, clock, "o1", pageview("/"))
    assert unknown.status_code == 401


async def test_bots_are_dropped(client, shop, clock):
    response = await _collect(client, shop, clock, "bot1", pageview("/"), ua="Googlebot/2.1 (+http://www.google.com/bot.html)")
    assert response.json() == {"accepted": 0, "rejected": [], "invitations": [], "dropped": "bot"}


async def test_malformed_batches_are_problems(client, shop):
    headers = {"content-type": "text/plain", "origin": ORIGIN}
    assert (await client.post("/v1/collect", content=b"{not json", headers=headers)).status_code == 400
    missing = await client.post("/v1/collect", content=b'{"visitor_id": "v", "events": []}', headers=headers)
    assert missing.status_code == 422 and missing.json()["errors"][0]["path"] == "session_id"
    too_many = await client.post("/v1/collect", json={"site_key": shop.site["site_key"], "visitor_id": "v", "session_id": "s",
                                                      "events": [{"type": "heartbeat"}] * 60}, headers=headers)
    assert too_many.status_code == 422 and too_many.json()["errors"][0]["path"] == "events"


async def test_cors_preflight_is_answered(client):
    response = await client.options("/v1/collect", headers={"origin": ORIGIN, "access-control-request-method": "POST",
                                                            "access-control-request-headers": "content-type"})
    assert response.status_code in (200, 204) and response.headers["access-control-allow-origin"] in ("*", ORIGIN)


async def test_capacity_needs_the_ingest_role_and_valid_numbers(client, shop):
    assert (await client.put("/v1/agents/capacity", json={"groups": {}}, headers=shop.headers("marketing"))).status_code == 403
    bad = await client.put("/v1/agents/capacity", json={"groups": {"sales": {"online_agents": -1, "max_chats_per_agent": 3, "active_chats": 0}}},
                           headers=shop.headers("ingest"))
    assert bad.status_code == 422 and bad.json()["errors"][0]["path"] == "groups.sales.online_agents"


async def test_rules_of_another_tenant_are_invisible(client, shop, other_tenant):
    rules = await _import(client, shop, pricing_rule())
    rule_id = rules["pricing-hesitation"]["id"]
    assert (await client.get(f"/v1/rules/{rule_id}", headers=other_tenant.headers("marketing"))).status_code == 404
    assert (await client.get(f"/v1/rules/{rule_id}/stats", headers=other_tenant.headers("marketing"))).status_code == 404


async def test_erasure_removes_a_visitors_behaviour_events(client, shop, clock):
    from proactive.tables import BehaviourEvent

    await _collect(client, shop, clock, "gdpr-1", pageview("/"), pageview("/pricing"))
    assert await BehaviourEvent.count().where(BehaviourEvent.tenant == shop.id) == 2
    receipt = (await client.post("/v1/erasure", json={"visitor_id": "gdpr-1"}, headers=shop.headers("compliance"))).json()
    assert receipt["behaviour_events_deleted"] == 2
    assert await BehaviourEvent.count().where(BehaviourEvent.tenant == shop.id) == 0


async def test_collect_is_rate_limited_per_client(settings, runtime, shop, clock):
    import json

    import httpx
    import msgspec

    from api.app import create_app

    app = create_app(msgspec.structs.replace(settings, collect_per_ip_per_minute=2), runtime)
    body = json.dumps({"site_key": shop.site["site_key"], "visitor_id": "rl", "session_id": "s", "events": [pageview("/")]})
    headers = {"content-type": "text/plain", "origin": ORIGIN, "user-agent": "Mozilla/5.0"}
    async with app.lifespan():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver.local") as limited:
            responses = [await limited.post("/v1/collect", content=body, headers=headers) for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert responses[2].headers["content-type"].startswith("application/problem+json")


async def test_events_also_go_to_opensearch_when_that_backend_is_on(client, shop, clock, runtime, request):
    async with opensearch_backend(request, runtime) as backend:
        response = await _collect(client, shop, clock, "os-1", pageview("/"), pageview("/pricing"))
        assert response.json()["accepted"] == 2
        await runtime.events.drain()
        await backend.client.indices.refresh(index=backend.events_alias)
        count = (await backend.client.count(index=backend.events_alias, body={"query": {"term": {"site": str(shop.site["id"])}}}))["count"]
        assert count == 2
        docs = await backend.client.search(index=backend.events_alias, body={"query": {"match_all": {}}})
        assert all("os-1" not in json.dumps(h["_source"]) for h in docs["hits"]["hits"])  # only the keyed hash
        receipt = (await client.post("/v1/erasure", json={"visitor_id": "os-1"}, headers=shop.headers("compliance"))).json()
        assert receipt["behaviour_events_deleted"] == 2
        await backend.client.indices.refresh(index=backend.events_alias)
        remaining = await backend.client.count(index=backend.events_alias, body={"query": {"term": {"site": str(shop.site["id"])}}})
        assert remaining["count"] == 0


async def test_visitor_state_is_rebuilt_from_stored_events_after_a_restart(client, shop, clock, runtime):
    await _import(client, shop, pricing_rule())
    await _collect(client, shop, clock, "rb-1", pageview("/"), pageview("/a"))
    site_id = next(k[0] for k in runtime.engagement.engine.visitors if k[1] == "rb-1")
    del runtime.engagement.engine.visitors[(site_id, "rb-1")]  # the process restarted: memory is gone
    assert await service.rebuild_state(runtime) >= 1
    await _collect(client, shop, clock, "rb-1", pageview("/pricing"))
    explained = (await client.get("/v1/visitors/rb-1/explain", params={"site": "shop"}, headers=shop.headers("marketing"))).json()
    assert any("session.pageviews = 3" in line for line in explained[0]["trace"]), explained
