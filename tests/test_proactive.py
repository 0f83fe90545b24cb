"""The engagement engine's API: rules from YAML, intake, the browser endpoints' checks (origins,
bots, rate limits), site settings, and what is stored of an event. Decisions are specified in
test_proactive_decisions.py, visitor memory in test_proactive_memory.py."""
# ruff: noqa: F811  (the engagement fixtures are imported from tests.engagement_support)

from __future__ import annotations

import json
from uuid import UUID

import pytest
import yaml

from archive.tables import LedgerEntry
from tests.conftest import opensearch_backend
from tests.engagement_support import ORIGIN, Visitor, client, clock, pageview, runtime, shop  # noqa: F401  (fixtures)

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
    ({"enabled": "false"}, "rules[0].enabled", "true or false"),  # a string would have left the rule running
    ({"enabled": 0}, "rules[0].enabled", "true or false"),
    ({"invite": {"message": "hi", "expire": "5m"}}, "rules[0].invite.expire", "unknown key"),  # would expire after the default 2m
    ({"invite": {"message": "hi", "group": 7}}, "rules[0].invite.group", "agent group"),  # capacity reports never name it
    ({"invite": {"message": "hi", "group": ""}}, "rules[0].invite.group", "agent group"),
    ({"invite": {"message": "hi", "expires": 0}}, "rules[0].invite.expires", "at least 1s"),  # expired as it was sent
    # "control" is the holdout's name: a variant called so was never invited (counted as held out)
    ({"variants": [{"name": "control", "weight": 50}, {"name": "treatment", "weight": 50}]}, "rules[0].variants[0].name", "holdout"),
    ({"variants": [{"name": "a", "weight": float("inf")}, {"name": "b", "weight": 1}]}, "rules[0].variants[0]", "finite weight"),
    ({"variants": [{"name": "a", "weight": 1, "message": ["hi"]}]}, "rules[0].variants[0]", "message as text"),
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



async def test_importing_the_same_rules_again_changes_nothing(client, shop):
    """A deploy that re-applies its rules file on every release: rules it repeats exactly keep
    their version, write no ledger entry, and are reported as unchanged; an edited one is updated."""
    headers = {**shop.headers("marketing"), "content-type": "application/yaml"}
    first = await client.post("/v1/rules/import", content=ISSUE_EXAMPLE.encode(), headers=headers)
    [name] = first.json()["created"]
    version = (await client.get("/v1/rules", headers=shop.headers("marketing"))).json()[0]["version"]
    ledgered = await LedgerEntry.count().where(LedgerEntry.action == "rules.change")

    again = await client.post("/v1/rules/import", content=ISSUE_EXAMPLE.encode(), headers=headers)

    assert again.json() == {"created": [], "updated": [], "unchanged": [name]}
    assert (await client.get("/v1/rules", headers=shop.headers("marketing"))).json()[0]["version"] == version
    assert await LedgerEntry.count().where(LedgerEntry.action == "rules.change") == ledgered
    edited = yaml.safe_load(ISSUE_EXAMPLE)
    edited["rules"][0]["invite"]["message"] = "Need a hand?"
    changed = await client.post("/v1/rules/import", content=yaml.safe_dump(edited).encode(), headers=headers)
    assert changed.json() == {"created": [], "updated": [name], "unchanged": []}
    assert (await client.get("/v1/rules", headers=shop.headers("marketing"))).json()[0]["version"] == version + 1

async def test_a_yaml_document_sent_as_json_is_told_how_to_send_yaml(client, shop):
    as_json = {**shop.headers("marketing"), "content-type": "application/json"}
    imported = await client.post("/v1/rules/import", content=ISSUE_EXAMPLE.encode(), headers=as_json)
    assert imported.status_code == 422, imported.text
    assert "send it as application/yaml" in imported.json()["detail"]
    assert "send it as application/yaml" in imported.json()["errors"][0]["message"]
    checked = (await client.post("/v1/rules/validate", content=ISSUE_EXAMPLE.encode(), headers=as_json)).json()
    assert checked["valid"] is False and "send it as application/yaml" in checked["errors"][0]["message"]
    # The same text as YAML is the issue's example, accepted.
    response = await client.post("/v1/rules/validate", content=ISSUE_EXAMPLE.encode(), headers={**shop.headers("marketing"), "content-type": "application/yaml"})
    assert response.json()["valid"] is True


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


async def _collect(client, shop, *events, visitor: str = "v1", headers: dict | None = None):
    body = {"site_key": shop.site["site_key"], "visitor_id": visitor, "session_id": "tab-1", "events": list(events)}
    sent = {"content-type": "text/plain", "origin": ORIGIN, "user-agent": "Mozilla/5.0", **(headers or {})}
    return await client.post("/v1/collect", content=json.dumps(body), headers={k: v for k, v in sent.items() if v is not None})


async def test_collect_keeps_good_events_and_names_bad_ones(client, shop):
    response = await _collect(
        client, shop,
        pageview("/"),
        {"type": "teleport"},
        {"type": "pageview", "url": f"{ORIGIN}/late", "at": "yesterday"},
        {"type": "custom", "name": "x", "props": {"blob": "x" * 5000}},
        {"type": "custom"},
        {"type": "click", "props": {"nested": {"a": 1}}},
        {"type": "heartbeat", "at": 10},
    )
    body = response.json()
    assert response.status_code == 200 and body["accepted"] == 1
    reasons = {r["index"]: r["reason"] for r in body["rejected"]}
    assert "unknown type" in reasons[1] and "RFC 3339" in reasons[2] and "larger" in reasons[3]
    assert "needs a name" in reasons[4] and "props values" in reasons[5] and "plausible" in reasons[6]


async def test_collect_checks_the_site_key_and_the_pages_origin(client, shop):
    wrong_origin = await _collect(client, shop, pageview("/"), headers={"origin": "https://evil.example"})
    assert wrong_origin.status_code == 403 and "not allowed" in wrong_origin.json()["detail"]
    no_page = await _collect(client, shop, pageview("/"), headers={"origin": None})
    assert no_page.status_code == 403
    shop.site = {**shop.site, "site_key": "ps_unknown"}
    assert (await _collect(client, shop, pageview("/"))).status_code == 401


async def test_a_request_without_origin_is_placed_by_its_referer(client, shop):
    response = await _collect(client, shop, pageview("/"), headers={"origin": None, "referer": f"{ORIGIN}/pricing?x=1"})
    assert response.status_code == 200


async def test_the_stream_is_accepted_from_a_same_origin_page(client, tenant, runtime):
    """Browsers send no Origin on a same-origin EventSource; the page is then Parley's own origin."""
    own = "http://testserver.local"
    site = (await client.post("/v1/admin/sites", json={"name": "own", "allowed_origins": [own]}, headers=tenant.headers("admin"))).json()
    params = {"site_key": site["site_key"], "visitor_id": "same-origin-1"}
    refused = await client.get("/v1/invitations/stream", params=params, headers={"sec-fetch-site": "cross-site"})
    assert refused.status_code == 403
    runtime.engagement.delivery.close_all()  # the stream then ends at once, so the test client can read it whole
    response = await client.get("/v1/invitations/stream", params=params, headers={"sec-fetch-site": "same-origin"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")


async def test_bots_are_dropped(client, shop):
    response = await _collect(client, shop, pageview("/"), headers={"user-agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"})
    assert response.json() == {"accepted": 0, "rejected": [], "invitations": [], "dropped": "bot"}


async def test_malformed_batches_are_problems(client, shop):
    headers = {"content-type": "text/plain", "origin": ORIGIN}
    assert (await client.post("/v1/collect", content=b"{not json", headers=headers)).status_code == 400
    missing = await client.post("/v1/collect", content=b'{"visitor_id": "v", "events": []}', headers=headers)
    assert missing.status_code == 422 and missing.json()["errors"][0]["path"] == "session_id"
    too_many = await client.post("/v1/collect", json={"site_key": shop.site["site_key"], "visitor_id": "v", "session_id": "s",
                                                      "events": [{"type": "heartbeat"}] * 60}, headers=headers)
    assert too_many.status_code == 422 and too_many.json()["errors"][0]["path"] == "events"
    bad_tab = await client.post("/v1/collect", json={"site_key": shop.site["site_key"], "visitor_id": "v", "session_id": "s", "tab_id": "a b",
                                                     "events": []}, headers=headers)
    assert bad_tab.status_code == 422 and bad_tab.json()["errors"][0]["path"] == "tab_id"


async def test_stored_events_keep_what_rules_read_and_lose_query_strings(client, shop, runtime):
    from proactive import store
    from proactive.tables import BehaviourEvent

    url = f"{ORIGIN}/pricing?email=ann%40example.com&utm_source=newsletter&token=s3cr3t#top"
    await _collect(client, shop, {"type": "pageview", "url": url, "title": "Pricing", "referrer": "https://www.google.com/search?q=ann+smith"},
                   visitor="stored-1")
    [event] = await store.opened_events(shop.id, (await runtime.tenants.context(shop.id)).crypto)
    assert event["url"] == f"{ORIGIN}/pricing?utm_source=newsletter"
    assert event["referrer"] == "https://www.google.com/search" and event["title"] == "Pricing" and event["tab_id"] == "tab-1"
    assert "ann" not in json.dumps({k: str(v) for k, v in event.items()})
    [row] = await BehaviourEvent.select().where(BehaviourEvent.tenant == shop.id)
    assert b"pricing" not in bytes(row["payload"]) and row["url"] == ""  # sealed, not in the columns


async def test_an_address_of_many_kilobytes_is_cut_to_what_is_kept_not_refused(client, shop, runtime):
    """Faceted search, stacked ad click ids (gclid, fbclid) and single-page-app state make addresses
    over 2 KB (Chrome takes 2 MB): the event is kept with the path and UTM parameters, as stored
    anyway; a title over 512 characters is cut. What is not an address at all is still refused."""
    from proactive import store

    url = f"{ORIGIN}/search?utm_source=ads&filters=" + "color%3Ared%2C" * 400 + "&utm_campaign=fall#state=" + "x" * 3000
    referrer = "https://www.example.org/list?page=" + "9" * 5000
    response = await _collect(client, shop,
                              {"type": "pageview", "url": url, "referrer": referrer, "title": "T" * 2000},
                              {"type": "pageview", "url": "http://[::1" + "/x" * 2000},
                              {"type": "pageview", "url": ["not", "text"]}, visitor="long-1")
    body = response.json()
    assert response.status_code == 200 and body["accepted"] == 1, body
    assert [r["reason"] for r in body["rejected"]] == ["url is not a URL", "url is not text"]
    [event] = await store.opened_events(shop.id, (await runtime.tenants.context(shop.id)).crypto)
    assert event["url"] == f"{ORIGIN}/search?utm_source=ads&utm_campaign=fall"
    assert event["referrer"] == "https://www.example.org/list" and event["title"] == "T" * 512


async def test_cors_preflight_is_answered(client):
    response = await client.options("/v1/collect", headers={"origin": ORIGIN, "access-control-request-method": "POST",
                                                            "access-control-request-headers": "content-type"})
    assert response.status_code in (200, 204) and response.headers["access-control-allow-origin"] in ("*", ORIGIN)


@pytest.mark.parametrize("requested", ["content-type,traceparent,tracestate", "baggage,sentry-trace", "x-datadog-trace-id,x-datadog-parent-id",
                                       "b3,x-amzn-trace-id,newrelic,elastic-apm-traceparent"])
async def test_cors_preflight_allows_the_headers_browser_tracing_adds(client, requested):
    """OpenTelemetry web, Datadog RUM, Sentry and Elastic RUM add trace headers to requests for the
    addresses they trace; a refused preflight would lose every event of the site."""
    response = await client.options("/v1/collect", headers={"origin": ORIGIN, "access-control-request-method": "POST",
                                                            "access-control-request-headers": requested})
    allowed = {h.strip() for h in response.headers.get("access-control-allow-headers", "").lower().split(",")}
    assert response.status_code == 204 and set(requested.split(",")) <= allowed, (response.status_code, dict(response.headers))


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


async def test_erasure_removes_a_visitors_behaviour_events(client, shop):
    from proactive.tables import BehaviourEvent

    await _collect(client, shop, pageview("/"), pageview("/pricing"), visitor="gdpr-1")
    assert await BehaviourEvent.count().where(BehaviourEvent.tenant == shop.id) == 2
    receipt = (await client.post("/v1/erasure", json={"visitor_id": "gdpr-1"}, headers=shop.headers("compliance"))).json()
    assert receipt["behaviour_events_deleted"] == 2
    assert await BehaviourEvent.count().where(BehaviourEvent.tenant == shop.id) == 0


# --- site settings -----------------------------------------------------------------------------


async def test_pacing_and_time_zone_are_set_per_site(client, shop, runtime):
    url = f"/v1/admin/sites/{shop.site['id']}/engagement"
    assert (await client.get(url, headers=shop.headers("marketing"))).json() == {"site": "shop", "pacing_per_minute": 60, "timezone": "UTC"}
    changed = await client.patch(url, json={"pacing_per_minute": 12}, headers=shop.headers("marketing"))
    assert changed.json() == {"site": "shop", "pacing_per_minute": 12, "timezone": "UTC"}
    changed = await client.patch(url, json={"timezone": "Europe/Oslo"}, headers=shop.headers("admin"))
    assert changed.json() == {"site": "shop", "pacing_per_minute": 12, "timezone": "Europe/Oslo"}
    assert runtime.engagement.engine.sites[UUID(shop.site['id'])].pacing_per_minute == 12


async def test_site_settings_name_every_bad_field(client, shop):
    url = f"/v1/admin/sites/{shop.site['id']}/engagement"
    bad = await client.patch(url, json={"pacing_per_minute": 0, "colour": "red"}, headers=shop.headers("admin"))
    assert bad.status_code == 422 and {e["path"] for e in bad.json()["errors"]} == {"pacing_per_minute", "colour"}
    zone = await client.patch(url, json={"timezone": "Mars/Olympus"}, headers=shop.headers("admin"))
    assert zone.status_code == 422 and zone.json()["errors"] == [{"path": "timezone", "message": "an IANA time zone such as Europe/Oslo"}]
    region = await client.patch(url, json={"timezone": "Europe"}, headers=shop.headers("admin"))  # a folder of the tz database
    assert region.status_code == 422 and region.json()["errors"] == [{"path": "timezone", "message": "an IANA time zone such as Europe/Oslo"}]
    assert (await client.patch(url, json={"pacing_per_minute": 5}, headers=shop.headers("ingest"))).status_code == 403


async def test_the_cli_sets_a_sites_pacing(client, shop, runtime):
    from tests.cli import run_cli

    result = await run_cli("sites", "update", "--tenant", shop.slug, "--name", "shop", "--pacing-per-minute", "7", "--timezone", "Asia/Tokyo", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"site": "shop", "pacing_per_minute": 7, "timezone": "Asia/Tokyo"}
    shown = await client.get(f"/v1/admin/sites/{shop.site['id']}/engagement", headers=shop.headers("admin"))
    assert shown.json()["pacing_per_minute"] == 7


# --- rate limits -------------------------------------------------------------------------------


async def _limited_responses(settings, runtime, shop, forwarded: list[str], **overrides) -> list[int]:
    import httpx
    import msgspec

    from api.app import create_app

    app = create_app(msgspec.structs.replace(settings, collect_per_ip_per_minute=2, **overrides), runtime)
    body = json.dumps({"site_key": shop.site["site_key"], "visitor_id": "rl", "session_id": "s", "events": [pageview("/")]})
    statuses = []
    async with app.lifespan():
        transport = httpx.ASGITransport(app=app, client=("10.0.0.7", 40000))  # the reverse proxy's address
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver.local") as limited:
            for address in forwarded:
                headers = {"content-type": "text/plain", "origin": ORIGIN, "user-agent": "Mozilla/5.0", "x-forwarded-for": address}
                statuses.append((await limited.post("/v1/collect", content=body, headers=headers)).status_code)
    return statuses


async def test_collect_is_rate_limited_per_client(settings, runtime, shop):
    assert await _limited_responses(settings, runtime, shop, ["198.51.100.1"] * 3) == [200, 200, 429]


async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_limit(settings, runtime, shop):
    clients = ["198.51.100.1", "198.51.100.2", "198.51.100.1", "198.51.100.2", "198.51.100.3"]
    assert await _limited_responses(settings, runtime, shop, clients, trusted_proxies="10.0.0.0/8") == [200] * 5


async def test_forwarded_for_from_an_untrusted_peer_is_ignored(settings, runtime, shop):
    forged = ["198.51.100.1", "198.51.100.2", "198.51.100.3"]
    assert await _limited_responses(settings, runtime, shop, forged, trusted_proxies="192.168.0.1") == [200, 200, 429]


async def test_the_client_is_the_last_untrusted_forwarded_address(settings, runtime, shop):
    chain = ["203.0.113.9, 198.51.100.1, 10.0.0.8", "203.0.113.8, 198.51.100.1", "198.51.100.1"]  # left parts are the client's to forge
    assert await _limited_responses(settings, runtime, shop, chain, trusted_proxies="10.0.0.0/8") == [200, 200, 429]


async def test_events_also_go_to_opensearch_when_that_backend_is_on(client, shop, runtime, request):
    async with opensearch_backend(request, runtime) as backend:
        response = await _collect(client, shop, pageview("/"), pageview("/pricing"), visitor="os-1")
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


async def test_an_api_only_replica_decides_nothing_and_still_explains(settings, runtime, client, shop):
    import msgspec

    from api.app import create_app
    from api.composition import build_runtime
    from tests.conftest import app_client

    replica_settings = msgspec.structs.replace(settings, engagement_engine=False)
    replica = build_runtime(replica_settings, clock=runtime.clock, keyring=runtime.keyring, database=runtime.database, search=runtime.search)
    async with app_client(create_app(replica_settings, replica)) as api_only:
        refused = await _collect(api_only, shop, pageview("/"))
        assert refused.status_code == 503 and "PARLEY_ENGAGEMENT_ENGINE" in refused.json()["detail"]
        capacity = await api_only.put("/v1/agents/capacity", json={"groups": {}}, headers=shop.headers("ingest"))
        assert capacity.status_code == 503
        explained = await api_only.get("/v1/visitors/nobody/explain", params={"site": "shop"}, headers=shop.headers("marketing"))
        assert explained.status_code == 200
