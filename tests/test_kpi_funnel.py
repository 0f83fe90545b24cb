"""From invitation to chat to outcome: the invitation id the widget hands to the chat platform
links the archived conversation to its rule and variant; rule stats count the chats and compare
how they went with the site's uninvited chats."""
# ruff: noqa: F811  (the report fixtures are imported from tests.kpi_support)

from __future__ import annotations

import importlib
import json
from datetime import datetime, timedelta, timezone
from uuid import UUID

import msgspec
import pytest

from archive.connectors import Close, Pending, intercom, livechat, parse, rocketchat
from archive.connectors.assemble import assemble
from archive.metrics.compute import invitation_id
from archive.metrics.tables import FunnelChats
from archive.models import Ratings
from proactive.tables import RuleCounter
from tests.connectors import compact, config, payload, push
from tests.kpi_support import chat, client, runtime  # noqa: F401  (fixtures)

ORIGIN = "https://shop.example.com"
RULE = """
rules:
  - name: pricing
    site: shop
    when: {field: page.url, op: glob, value: "*/pricing*"}
    invite: {message: "Questions about our plans?"}
    variants: [{name: a, weight: 50}, {name: b, weight: 50}]
"""
NOW_MS = int(datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc).timestamp() * 1000)


@pytest.fixture
async def shop(client, tenant):
    site = await client.post("/v1/admin/sites", json={"name": "shop", "allowed_origins": [ORIGIN]}, headers=tenant.headers("admin"))
    tenant.site_key = site.json()["site_key"]
    imported = await client.post("/v1/rules/import", content=RULE.encode(),
                                 headers={**tenant.headers("marketing"), "content-type": "application/yaml"})
    assert imported.status_code == 200, imported.text
    tenant.rule_id = (await client.get("/v1/rules", headers=tenant.headers("marketing"))).json()[0]["id"]
    return tenant


async def _accepted(client, tenant, visitor: str, invitation: str, variant: str) -> None:
    """What the widget reports when the visitor accepts (docs/snippet.md)."""
    body = {"site_key": tenant.site_key, "visitor_id": visitor, "session_id": "s1", "events": [
        {"type": "invitation_accepted", "at": NOW_MS - 3_600_000, "props": {"invitation_id": invitation, "rule": "pricing", "variant": variant}},
    ]}
    response = await client.post("/v1/collect", content=json.dumps(body), headers={"content-type": "text/plain", "origin": ORIGIN})
    assert response.json()["accepted"] == 1


async def _archive(client, tenant, *bodies) -> None:
    response = await client.post("/v1/transcripts", json={"conversations": list(bodies)}, headers=tenant.headers("ingest"))
    assert response.status_code == 201, response.text


def _at(minute: int) -> str:
    return f"2026-11-23T11:{minute:02d}:00Z"


async def test_invited_chats_per_variant_against_the_sites_uninvited_chats(client, shop):
    await _accepted(client, shop, "browser-1", "inv-a1", "a")
    await _accepted(client, shop, "browser-2", "inv-a2", "a")
    await _accepted(client, shop, "browser-3", "inv-b1", "b")
    await RuleCounter.insert(RuleCounter(rule=UUID(shop.rule_id), variant="a", name="sent", count=4),
                             RuleCounter(rule=UUID(shop.rule_id), variant="b", name="sent", count=2))
    await _archive(
        client, shop,
        # The plain API carries the id as metadata.invitation_id, Rocket.Chat as a custom field.
        chat("a1", _at(0), _at(10), metadata={"invitation_id": "inv-a1"}, ratings={"csat": 5}),
        chat("a2", _at(1), _at(21), metadata={"field.invitation_id": "inv-a2"}, ratings={"csat": 4}),
        chat("b1", _at(2), _at(7), metadata={"invitation_id": "inv-b1"}, ratings={"csat": 2}),
        chat("u1", _at(3), _at(8), ratings={"csat": 3}),
        chat("u2", _at(4), _at(19)),
        chat("elsewhere", _at(5), _at(6), site="blog"),
        chat("unknown", _at(6), _at(7), metadata={"invitation_id": "inv-nobody-sent"}),
    )
    stats = (await client.get(f"/v1/rules/{shop.rule_id}/stats", headers=shop.headers("marketing"))).json()
    a, b, totals = stats["variants"]["a"], stats["variants"]["b"], stats["totals"]
    assert (a["counts"]["chats"], a["rates"]["chat_rate"]) == (2, 0.5)
    assert (b["counts"]["chats"], b["rates"]["chat_rate"]) == (1, 0.5)
    assert (totals["counts"]["chats"], totals["rates"]["chat_rate"]) == (3, 0.5)
    assert a["outcomes"] == {"chats": 2, "resolution_s": {"median": 900.0, "p90": 1140.0},
                             "csat": {"mean": 4.5, "responses": 2, "satisfied_rate": 1.0}, "fcr_rate": 1.0}
    assert b["outcomes"]["resolution_s"] == {"median": 300.0, "p90": 300.0} and b["outcomes"]["csat"]["mean"] == 2.0
    assert totals["outcomes"]["chats"] == 3 and totals["outcomes"]["csat"]["mean"] == 3.67
    assert stats["uninvited"] == {"chats": 2, "resolution_s": {"median": 600.0, "p90": 840.0},
                                  "csat": {"mean": 3.0, "responses": 1, "satisfied_rate": 0.0}, "fcr_rate": 1.0}
    assert stats["outcome_days"] == 30


async def test_a_rule_without_chats_says_so(client, shop):
    stats = (await client.get(f"/v1/rules/{shop.rule_id}/stats", headers=shop.headers("marketing"))).json()
    assert stats["totals"]["counts"]["chats"] == 0 and stats["totals"]["rates"]["chat_rate"] == 0.0
    assert stats["totals"]["outcomes"]["chats"] == 0 and stats["totals"]["outcomes"]["resolution_s"] == {"median": None, "p90": None}
    assert stats["uninvited"]["chats"] == 0


# --- how each platform carries the invitation id (docs/connectors.md) ------------------------------


def test_rocketchat_carries_the_invitation_as_a_room_custom_field():
    body = payload("rocketchat", "livechat_session_closed.json")
    body["customFields"] = {**(body.get("customFields") or {}), "invitation_id": "inv-rc"}
    assert invitation_id(rocketchat.draft(body, body["_id"]).metadata) == "inv-rc"


def test_chatwoot_carries_the_invitation_as_a_conversation_custom_attribute():
    body = payload("chatwoot", "conversation_status_changed_resolved.json")
    body["custom_attributes"] = {"invitation_id": "inv-cw"}
    outcome = parse(push(compact(body)), config("chatwoot"))
    assert isinstance(outcome, Close) and invitation_id(outcome.draft.metadata) == "inv-cw"


def test_intercom_carries_the_invitation_as_a_conversation_data_attribute():
    body = payload("intercom", "api_conversation.json")
    body["custom_attributes"] = {**body["custom_attributes"], "invitation_id": "inv-ic"}
    assert invitation_id(intercom.conversation_draft(body).metadata) == "inv-ic"


def test_livechat_carries_the_invitation_as_a_session_variable():
    body = payload("livechat", "api_get_chat.json")
    customer = next(u for u in body["users"] if u["type"] == "customer")
    customer["session_fields"] = [{"plan": "pro"}, {"invitation_id": "inv-lc"}]
    assert invitation_id(livechat.chat_draft(body).metadata) == "inv-lc"


def test_crisp_carries_the_invitation_as_session_data():
    # Crisp's session data is kept under "data." (archive/connectors/crisp.py), like any key.
    assert invitation_id({"data.invitation_id": "inv-cr", "data.plan": "pro"}) == "inv-cr"


def test_platforms_without_an_invitation_keep_their_metadata_as_it_was():
    body = payload("intercom", "api_conversation.json")
    assert "invitation_id" not in intercom.conversation_draft(body).metadata


async def test_a_survey_arriving_after_the_invitation_events_are_purged_keeps_the_chat_on_its_rule(client, shop, runtime):
    """The link is made at ingest and outlives the engine's records of the invitation: a revision
    (the post-chat survey, sent later) of a chat whose invitation events event retention has
    purged keeps the chat counted for the rule and variant it came from."""
    from archive import db
    from proactive import store

    await _accepted(client, shop, "browser-1", "inv-a1", "a")
    body = chat("a1", _at(0), _at(10), metadata={"invitation_id": "inv-a1"})
    await _archive(client, shop, body)
    before = (await client.get(f"/v1/rules/{shop.rule_id}/stats", headers=shop.headers("marketing"))).json()
    assert before["variants"]["a"]["counts"]["chats"] == 1
    async with db.write_transaction():  # what the event retention job does once their time is up
        assert await store.purge(runtime.clock.now() + timedelta(days=1))
    revised = await client.post("/v1/transcripts", params={"on_conflict": "revise"}, headers=shop.headers("ingest"),
                                json={**body, "ratings": {"csat": 5}})
    assert revised.json()["status"] == "revised", revised.text
    stats = (await client.get(f"/v1/rules/{shop.rule_id}/stats", headers=shop.headers("marketing"))).json()
    assert stats["variants"]["a"]["counts"]["chats"] == 1
    assert stats["variants"]["a"]["outcomes"]["csat"]["mean"] == 5.0
    assert stats["uninvited"]["chats"] == 0


async def test_chats_stay_counted_when_retention_deletes_them_as_the_invitations_sent_do(client, shop):
    """``chat_rate`` divides chats by invitations sent, and sent invitations are never uncounted:
    neither are chats when retention or erasure deletes their conversations, or the rate of a
    long-running rule would fall towards zero as its old chats expire."""
    from archive import db
    from archive.metrics import store as metrics

    await _accepted(client, shop, "browser-1", "inv-a1", "a")
    await _accepted(client, shop, "browser-2", "inv-a2", "a")
    await RuleCounter.insert(RuleCounter(rule=UUID(shop.rule_id), variant="a", name="sent", count=4))
    archived = await client.post("/v1/transcripts", headers=shop.headers("ingest"), json={"conversations": [
        chat("a1", _at(0), _at(10), metadata={"invitation_id": "inv-a1"}),
        chat("a2", _at(1), _at(5)),  # archived before the platform passed the invitation id on
    ]})
    ids = [UUID(r["id"]) for r in archived.json()["results"]]
    for csat in (4, 5):  # the revision that brings the id counts the chat, once however often it is revised
        revised = await client.post("/v1/transcripts", params={"on_conflict": "revise"}, headers=shop.headers("ingest"),
                                    json=chat("a2", _at(1), _at(5), metadata={"invitation_id": "inv-a2"}, ratings={"csat": csat}))
        assert revised.json()["status"] == "revised", revised.text

    async def stats():
        return (await client.get(f"/v1/rules/{shop.rule_id}/stats", headers=shop.headers("marketing"))).json()["variants"]["a"]

    before = await stats()
    assert (before["counts"]["chats"], before["rates"]["chat_rate"], before["outcomes"]["chats"]) == (2, 0.5, 2)
    # An archive upgraded to this version gets its counts from the chats it still holds.
    await FunnelChats.delete(force=True)
    await db.engine().run_ddl(importlib.import_module("archive.piccolo_migrations.parley_2026_11_25t06_30_10_000000").BACKFILL)
    assert await stats() == before
    async with db.write_transaction():  # what a retention sweep or an erasure does in its deletion transaction
        await metrics.delete(shop.id, ids)
    after = await stats()
    assert (after["counts"]["chats"], after["rates"]["chat_rate"]) == (2, 0.5)
    assert after["outcomes"] is None  # how the chats went is read from the archive: they are gone from it


# --- how each platform carries its satisfaction rating (docs/kpi.md, Ratings) ---------------------


def test_intercoms_conversation_rating_is_the_chats_csat():
    body = payload("intercom", "api_conversation.json")
    body["conversation_rating"] = {"rating": 4, "remark": "Quick and kind", "created_at": 1792000000}
    conversation = assemble([intercom.conversation_draft(body)])
    assert conversation.ratings == Ratings(csat=4, comment="Quick and kind")
    assert assemble([intercom.conversation_draft(payload("intercom", "api_conversation.json"))]).ratings is msgspec.UNSET


def test_chatwoots_csat_survey_answer_is_the_chats_csat():
    from tests.test_connectors_chatwoot import API_TOKEN, SECRET, _answered_survey, signed

    cfg = config("chatwoot", secret=SECRET, api_url="https://chat.nordlys.example/app/accounts/7", api_token=API_TOKEN)
    answered = parse(signed(compact(_answered_survey("resolved"))), cfg)  # the survey answered after the resolve
    assert isinstance(answered, Close)
    assert assemble([answered.draft]).ratings == Ratings(csat=4, comment="Quick and kind")
    before_resolve = parse(signed(compact(_answered_survey("open"))), cfg)  # kept pending until the resolve
    assert isinstance(before_resolve, Pending) and before_resolve.draft.ratings == Ratings(csat=4, comment="Quick and kind")


@pytest.mark.parametrize("rating", [0, 6, True, "great", None])
def test_a_platform_rating_that_is_not_1_to_5_is_no_csat(rating):
    body = payload("intercom", "api_conversation.json")
    body["conversation_rating"] = {"rating": rating}
    assert assemble([intercom.conversation_draft(body)]).ratings is msgspec.UNSET


async def test_a_chat_counts_for_the_rule_that_sent_its_invitation_even_after_a_rename(client, shop):
    """The engine's own record of the invitation names the rule by id and the variant it chose:
    renaming the rule between the invitation and the archived chat does not lose the chat, and
    what a browser reports about the invitation cannot move the chat to another variant."""
    from archive.tables import Site
    from proactive.tables import EngagementInvitation

    site = await Site.select(Site.id).where(Site.site_key == shop.site_key).first()
    sent = datetime.fromtimestamp(NOW_MS / 1000 - 3600, timezone.utc)
    await EngagementInvitation.insert(EngagementInvitation(
        id="5f0c2a9d8e7b4c1a9f3e6d2b1a0c9e8f", tenant=shop.id, site=site["id"], visitor_hash="h", rule=UUID(shop.rule_id),
        rule_name="pricing", variant="b", message="Questions about our plans?", status="accepted", sent_at=sent,
        expires_at=sent + timedelta(minutes=5),
    ))
    await _accepted(client, shop, "browser-1", "5f0c2a9d8e7b4c1a9f3e6d2b1a0c9e8f", "a")  # the browser says "a"
    rule = (await client.get(f"/v1/rules/{shop.rule_id}", headers=shop.headers("marketing"))).json()
    renamed = await client.put(f"/v1/rules/{shop.rule_id}", json={**rule["definition"], "name": "pricing-2026"},
                               headers=shop.headers("marketing"))
    assert renamed.status_code == 200, renamed.text
    await _archive(client, shop, chat("c1", _at(0), _at(10), metadata={"invitation_id": "5f0c2a9d8e7b4c1a9f3e6d2b1a0c9e8f"}))
    stats = (await client.get(f"/v1/rules/{shop.rule_id}/stats", headers=shop.headers("marketing"))).json()
    assert stats["variants"]["b"]["counts"]["chats"] == 1 and stats["totals"]["counts"]["chats"] == 1
    assert stats["variants"].get("a", {"counts": {"chats": 0}})["counts"]["chats"] == 0
