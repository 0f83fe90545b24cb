"""Targeting, who: attributes from the browser (parley.identify) and from the site's server,
declared per site, read by rules as visitor.attributes.*, erased with the visitor; triggers from
the site's code and its server."""
# ruff: noqa: F811  (the engagement fixtures are imported from tests.engagement_support)

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from tests.engagement_support import (  # noqa: F401  (fixtures)
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

PRO = {"all": [{"field": "visitor.attributes.plan", "op": "ieq", "value": "PRO"},
               {"field": "visitor.attributes.seats", "op": "gte", "value": 10}]}


async def declare(client, shop, **attributes: str) -> None:
    url = f"/v1/admin/sites/{shop.site['id']}/engagement"
    response = await client.patch(url, json={"attributes": attributes}, headers=shop.headers("admin"))
    assert response.status_code == 200, response.text
    assert response.json()["attributes"] == attributes


async def post_attributes(client, shop, visitor: str, attributes: dict[str, Any], role: str = "ingest") -> Any:
    return await client.post(f"/v1/visitors/{visitor}/attributes", json={"site": "shop", "attributes": attributes},
                             headers=shop.headers(role))


async def test_server_attributes_make_a_rule_hold(client, shop, clock, runtime):
    await declare(client, shop, plan="str", seats="number", trial="bool")
    await import_rules(client, shop, rule("pro", when=PRO))
    visitor = Visitor(client, shop, clock)
    await visitor.view("/")
    assert visitor.received == []
    answer = await post_attributes(client, shop, visitor.id, {"plan": "pro", "seats": 25})
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"site": "shop", "accepted": 2, "attributes": {"plan": "pro", "seats": 25.0}}
    assert [i["rule"] for i in await visitor.beat()] == ["pro"]


async def test_attributes_must_be_declared_and_of_their_type(client, shop):
    await declare(client, shop, plan="str", seats="number")
    bad = await post_attributes(client, shop, "v-1", {"plan": 3, "seats": "many", "colour": "red"})
    assert bad.status_code == 422
    assert {e["path"] for e in bad.json()["errors"]} == {"attributes.plan", "attributes.seats", "attributes.colour"}
    shape = await client.post("/v1/visitors/v-1/attributes", json={"attributes": {"plan": "x"}}, headers=shop.headers("ingest"))
    assert shape.status_code == 422 and "site" in json.dumps(shape.json()["errors"])


async def test_only_an_ingest_key_or_the_sites_signature_may_set_attributes(client, shop, runtime, clock):
    await declare(client, shop, plan="str")
    assert (await post_attributes(client, shop, "v-1", {"plan": "pro"}, role="marketing")).status_code == 403
    body = json.dumps({"site": "shop", "attributes": {"plan": "pro"}}).encode()
    unsigned = await client.post("/v1/visitors/v-1/attributes", content=body, headers={"content-type": "application/json"})
    assert unsigned.status_code == 401
    secret = (await client.get(f"/v1/admin/sites/{shop.site['id']}/secret", headers=shop.headers("admin"))).json()["secret"]
    timestamp = str(int(clock.time()))

    def signed(key: str, stamp: str = timestamp) -> dict[str, str]:
        mac = hmac.new(key.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        return {"content-type": "application/json", "x-parley-site": shop.site["site_key"], "x-parley-timestamp": stamp,
                "x-parley-signature": f"sha256={mac}"}

    assert (await client.post("/v1/visitors/v-1/attributes", content=body, headers=signed("guess"))).status_code == 401
    stale = str(int(clock.time()) - 3600)
    assert (await client.post("/v1/visitors/v-1/attributes", content=body, headers=signed(secret, stale))).status_code == 401
    good = await client.post("/v1/visitors/v-1/attributes", content=body, headers=signed(secret))
    assert good.status_code == 200, good.text
    assert good.json()["attributes"] == {"plan": "pro"}


async def test_the_browser_identifies_but_cannot_overwrite_what_the_server_set(client, shop, clock, runtime):
    await declare(client, shop, plan="str", seats="number")
    await import_rules(client, shop, rule("pro", when=PRO))
    visitor = Visitor(client, shop, clock)
    await visitor.view("/")
    await post_attributes(client, shop, visitor.id, {"plan": "free"})
    answer = await visitor.send({"type": "identify", "props": {"plan": "pro", "seats": 12}})
    assert answer.json()["rejected"] == [] and visitor.received == []  # plan stays "free"
    await post_attributes(client, shop, visitor.id, {"plan": "Pro"})
    assert [i["rule"] for i in await visitor.beat()] == ["pro"]


async def test_an_undeclared_attribute_from_the_browser_is_rejected_alone(client, shop, clock, runtime):
    await declare(client, shop, plan="str")
    visitor = Visitor(client, shop, clock)
    answer = await visitor.send({"type": "pageview", "url": "https://shop.example.com/"}, {"type": "identify", "props": {"email": "a@b.c"}})
    assert answer.json()["accepted"] == 1
    assert answer.json()["rejected"][0]["index"] == 1 and "props.email" in answer.json()["rejected"][0]["reason"]


async def test_attributes_are_remembered_across_a_restart_and_erased_with_the_visitor(client, shop, clock, runtime, settings):
    from uuid import UUID

    from proactive.tables import BehaviourEvent, VisitorMemory
    from tests.engagement_support import restart

    await declare(client, shop, plan="str", seats="number")
    visitor = Visitor(client, shop, clock)
    await visitor.view("/")
    await post_attributes(client, shop, visitor.id, {"plan": "pro", "seats": 3})
    _, digest = await visitor.key(runtime)
    fresh = await restart(runtime, settings, clock)
    try:
        state = await fresh.engagement.visitor(shop.id, UUID(shop.site["id"]), digest)
        assert state is not None and state.attributes == {"plan": "pro", "seats": 3.0}
    finally:
        await fresh.stop()
    receipt = (await client.post("/v1/erasure", json={"visitor_id": visitor.id}, headers=shop.headers("compliance"))).json()
    assert receipt["behaviour_events_deleted"] == 2  # the pageview and the attributes
    for table in (VisitorMemory, BehaviourEvent):
        assert await table.count().where((table.tenant == shop.id) & (table.visitor_hash == digest)) == 0


async def test_triggers_from_the_page_and_from_the_server_fire_a_rule(client, shop, clock, runtime):
    triggered = {"count": "need_help", "within": "1m", "op": "gte", "value": 1}
    await import_rules(client, shop, rule("help", when=triggered))
    visitor = Visitor(client, shop, clock)
    await visitor.view("/")
    await visitor.send({"type": "trigger", "name": "need_help"})
    assert [i["rule"] for i in visitor.received] == ["help"]
    other = Visitor(client, shop, clock)
    await other.view("/")
    answer = await client.post(f"/v1/visitors/{other.id}/events", json={"site": "shop", "events": [{"name": "need_help"}]},
                               headers=shop.headers("ingest"))
    assert answer.status_code == 200, answer.text
    assert [i["rule"] for i in await other.beat()] == ["help"]
    bad = await client.post(f"/v1/visitors/{other.id}/events", json={"site": "shop", "events": [{"name": "x y", "type": "teleport"}]},
                            headers=shop.headers("ingest"))
    assert bad.status_code == 422 and bad.json()["errors"][0]["path"].startswith("events[0]")


async def test_a_server_event_alone_does_not_make_a_visitor_present(client, shop, clock, runtime):
    triggered = {"count": "need_help", "within": "10m", "op": "gte", "value": 1}
    await import_rules(client, shop, rule("help", when=triggered))
    visitor = Visitor(client, shop, clock)
    await visitor.view("/")
    advance(runtime, clock, 120)  # the tab went quiet: absent
    await client.post(f"/v1/visitors/{visitor.id}/events", json={"site": "shop", "events": [{"name": "need_help"}]},
                      headers=shop.headers("ingest"))
    explained = await client.get(f"/v1/visitors/{visitor.id}/explain?site=shop", headers=shop.headers("marketing"))
    assert explained.json()[0]["decision"].startswith("waiting for the visitor to return")


# --- rules read only what the site declares --------------------------------------------------


async def _import(client, shop, *rules: dict[str, Any]) -> Any:
    return await client.post("/v1/rules/import", json={"rules": list(rules)}, headers=shop.headers("marketing"))


async def test_a_rule_reading_an_undeclared_attribute_is_refused_naming_the_field_and_how_to_declare_it(client, shop):
    await declare(client, shop, plan="str")
    refused = await _import(client, shop, rule("crm", when={"all": [{"field": "visitor.attributes.plan", "op": "eq", "value": "pro"},
                                                                  {"field": "visitor.attributes.segment", "op": "eq", "value": "vip"}]}))
    assert refused.status_code == 422 and refused.headers["content-type"].startswith("application/problem+json")
    [error] = refused.json()["errors"]
    assert error["path"] == "rules[0].when.all[1].field"
    assert "visitor.attributes.segment is not declared for site 'shop' (declared: plan (str))" in error["message"]
    assert "PATCH /v1/admin/sites/{id}/engagement" in error["message"] and "--attributes segment:str" in error["message"]
    listed = await client.get("/v1/rules", headers=shop.headers("marketing"))
    assert [r["name"] for r in listed.json()] == []  # nothing was saved


async def test_a_rule_comparing_an_attribute_in_a_way_its_type_never_matches_is_refused(client, shop):
    await declare(client, shop, plan="str", seats="number", trial="bool")
    refused = await _import(client, shop,
                            rule("a", when={"field": "visitor.attributes.plan", "op": "gte", "value": 3}),
                            rule("b", when={"field": "visitor.attributes.trial", "op": "eq", "value": "yes"}),
                            rule("c", when={"field": "visitor.attributes.seats", "op": "in", "value": [10, "many"]}))
    assert refused.status_code == 422
    assert {e["path"] for e in refused.json()["errors"]} == {"rules[0].when.op", "rules[1].when.value", "rules[2].when.value"}
    fine = await _import(client, shop, rule("d", when={"field": "visitor.attributes.seats", "op": "in", "value": [10, 20]}))
    assert fine.status_code == 200, fine.text


async def test_validate_reports_undeclared_attributes_as_import_would(client, shop):
    body = {"rules": [rule("crm", when={"field": "visitor.attributes.segment", "op": "eq", "value": "vip"})]}
    answer = await client.post("/v1/rules/validate", json=body, headers=shop.headers("marketing"))
    assert answer.status_code == 200
    assert answer.json()["valid"] is False and answer.json()["errors"][0]["path"] == "rules[0].when.field"
    await declare(client, shop, segment="str")
    assert (await client.post("/v1/rules/validate", json=body, headers=shop.headers("marketing"))).json()["valid"] is True


async def test_a_declaration_rules_still_read_cannot_be_dropped_or_retyped(client, shop):
    await declare(client, shop, plan="str", seats="number")
    await import_rules(client, shop, rule("pro", when={"field": "visitor.attributes.plan", "op": "ieq", "value": "pro"}))
    url = f"/v1/admin/sites/{shop.site['id']}/engagement"
    for attributes in ({"seats": "number"}, {"plan": "bool", "seats": "number"}):
        refused = await client.patch(url, json={"attributes": attributes}, headers=shop.headers("admin"))
        assert refused.status_code == 422, refused.text
        [error] = refused.json()["errors"]
        assert error["path"] == "attributes.plan" and "rule 'pro' reads visitor.attributes.plan" in error["message"]
    await declare(client, shop, plan="str")  # dropping one no rule reads is fine


async def test_the_cli_declares_attributes_and_sets_holidays(client, shop, runtime):
    from tests.cli import run_cli

    result = await run_cli("sites", "update", "--tenant", shop.slug, "--name", "shop",
                           "--attributes", "plan:str, seats:number,trial:bool", "--holidays", "2026-12-24,2026-12-25")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1:] == ["holidays: 2026-12-24, 2026-12-25", "attributes: plan:str, seats:number, trial:bool"]
    shown = (await client.get(f"/v1/admin/sites/{shop.site['id']}/engagement", headers=shop.headers("admin"))).json()
    assert shown["attributes"] == {"plan": "str", "seats": "number", "trial": "bool"}
    assert shown["holidays"] == ["2026-12-24", "2026-12-25"]
    cleared = await run_cli("sites", "update", "--tenant", shop.slug, "--name", "shop", "--holidays", "", "--json")
    assert cleared.returncode == 0, cleared.stderr
    assert "holidays" not in json.loads(cleared.stdout) and json.loads(cleared.stdout)["attributes"]["plan"] == "str"


async def test_the_cli_names_a_bad_declaration_or_date_and_changes_nothing(client, shop, runtime):
    from tests.cli import run_cli

    result = await run_cli("sites", "update", "--tenant", shop.slug, "--name", "shop",
                           "--attributes", "plan:text", "--holidays", "2026-13-01")
    assert result.returncode != 0
    assert "attributes.plan" in result.stderr and "holidays" in result.stderr
    shown = (await client.get(f"/v1/admin/sites/{shop.site['id']}/engagement", headers=shop.headers("admin"))).json()
    assert "attributes" not in shown and "holidays" not in shown
