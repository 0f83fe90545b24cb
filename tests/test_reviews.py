"""The review queue: scope, pseudonyms, the status machine, bulk actions, and the record of it all."""

from __future__ import annotations

import json
import uuid

from archive.supervision.tables import ReviewComment
from tests.cli import run_cli
from tests.supervision_helpers import chat, create_policy, ingest, queue, reviewer

RISKY = ("Hei, jeg heter Ola Nordmann. Er dette trygt?", "Hi Ola, Kari here: these are guaranteed returns, trust me.")


def _risky(external_id: str, **overrides):
    return chat(external_id, *RISKY, **{
        "visitor": {"id": "visitor-ola", "name": "Ola Nordmann", "email": "ola.nordmann@example.no"},
        "agents": [{"id": "agent-kari", "name": "Kari Hansen", "email": "kari.hansen@bank.example"}],
        **overrides,
    })


async def _flag(client, tenant, *bodies):
    await create_policy(client, tenant)
    ids = await ingest(client, tenant, *bodies)
    page = await queue(client, tenant.headers("compliance"), limit=100)
    return ids, {i["external_id"]: i for i in page["items"]}


async def _act(client, headers, review_id, action, **body):
    return await client.post(f"/v1/reviews/{review_id}/actions", json={"action": action, **body}, headers=headers)


async def test_a_reviewer_sees_only_items_of_its_sites_and_channels(client, tenant):
    _, items = await _flag(client, tenant,
                           _risky("shop-web"), _risky("b2b-web", site="b2b"), _risky("blog-web", site="blog"),
                           _risky("shop-whatsapp", channel="whatsapp"))
    headers = await reviewer(tenant, ["shop", "b2b"], ["web"])
    seen = await queue(client, headers)
    assert sorted(i["external_id"] for i in seen["items"]) == ["b2b-web", "shop-web"]
    assert seen["counts"]["open"] == 2
    assert (await queue(client, headers, site="blog"))["items"] == []
    for hidden in ("blog-web", "shop-whatsapp"):
        review_id = items[hidden]["id"]
        assert (await client.get(f"/v1/reviews/{review_id}", headers=headers)).status_code == 404
        assert (await _act(client, headers, review_id, "claim")).status_code == 404


async def test_a_reviewer_never_sees_real_names_emails_or_ids(client, tenant):
    _, items = await _flag(client, tenant, _risky("c1"))
    headers = await reviewer(tenant, ["shop"])
    listed = await client.get("/v1/reviews", headers=headers)
    shown = await client.get(f"/v1/reviews/{items['c1']['id']}", headers=headers)
    assert shown.status_code == 200
    text = json.dumps([listed.json(), shown.json()], ensure_ascii=False)
    for real in ("Ola", "Nordmann", "Kari", "Hansen", "ola.nordmann@example.no", "kari.hansen@bank.example", "visitor-ola", "agent-kari"):
        assert real not in text, real
    view = shown.json()
    visitor = view["conversation"]["visitor"]
    assert visitor["id"].startswith("Visitor ") and visitor["email"].endswith("@pseudonym.invalid")
    assert view["conversation"]["messages"][1]["text"].startswith(f"Hi {visitor['id']}, {view['conversation']['agents'][0]['id']} here")
    assert view["pseudonymised"] is True


async def test_pseudonyms_are_stable_across_conversations_of_a_tenant(client, tenant, other_tenant):
    _, items = await _flag(client, tenant, _risky("c1"), _risky("c2"))
    headers = await reviewer(tenant, ["shop"])
    labels = {(await client.get(f"/v1/reviews/{i['id']}", headers=headers)).json()["conversation"]["visitor"]["id"] for i in items.values()}
    assert len(labels) == 1
    _, elsewhere = await _flag(client, other_tenant, _risky("c1"))
    other = (await client.get(f"/v1/reviews/{elsewhere['c1']['id']}", headers=other_tenant.headers("compliance"))).json()
    assert other["conversation"]["visitor"]["id"] not in labels


async def test_compliance_reveals_participants_with_a_reason_that_is_ledgered(client, tenant):
    _, items = await _flag(client, tenant, _risky("c1"))
    review_id = items["c1"]["id"]
    assert (await client.post(f"/v1/reviews/{review_id}/reveal", json={}, headers=tenant.headers("compliance"))).status_code == 422
    assert (await client.post(f"/v1/reviews/{review_id}/reveal", json={"reason": "x"}, headers=await reviewer(tenant, ["shop"]))).status_code == 403
    revealed = await client.post(f"/v1/reviews/{review_id}/reveal", json={"reason": "FINRA inquiry 2026-7"}, headers=tenant.headers("compliance"))
    assert revealed.status_code == 200
    view = revealed.json()
    assert view["pseudonymised"] is False and view["conversation"]["visitor"]["name"] == "Ola Nordmann"
    assert view["conversation"]["messages"][1]["text"] == RISKY[1]
    entries = (await client.get("/v1/audit", params={"action": "review.reveal"}, headers=tenant.headers("compliance"))).json()
    assert [(e["subject"], e["details"]["reason"]) for e in entries] == [(review_id, "FINRA inquiry 2026-7")]


async def test_a_card_number_pasted_into_a_reveal_reason_is_masked_in_the_ledger(client, tenant):
    _, items = await _flag(client, tenant, _risky("c1"))
    review_id = items["c1"]["id"]
    revealed = await client.post(f"/v1/reviews/{review_id}/reveal", json={"reason": "chargeback on 4111 1111 1111 1111"},
                                 headers=tenant.headers("compliance"))
    assert revealed.status_code == 200
    entries = (await client.get("/v1/audit", params={"action": "review.reveal"}, headers=tenant.headers("compliance"))).json()
    [reason] = [e["details"]["reason"] for e in entries]
    assert reason.startswith("chargeback on ") and "4111 1111 1111 1111" not in reason and "*" in reason  # masked as in transcripts


async def test_reading_an_item_is_ledgered_as_a_read_of_its_conversation(client, tenant):
    ids, items = await _flag(client, tenant, _risky("c1"))
    headers = await reviewer(tenant, ["shop"])
    await client.get(f"/v1/reviews/{items['c1']['id']}", headers=headers)
    reads = (await client.get("/v1/audit", params={"action": "read", "subject": ids["c1"]}, headers=tenant.headers("compliance"))).json()
    assert [(r["actor"], r["details"]["via"], r["details"]["review"]) for r in reads] == [(headers["x-actor"], "review", items["c1"]["id"])]
    assert reads[0]["content_hash"]


async def test_matches_are_marked_in_the_conversation(client, tenant):
    _, items = await _flag(client, tenant, _risky("c1"))
    view = (await client.get(f"/v1/reviews/{items['c1']['id']}", headers=tenant.headers("compliance"))).json()
    marked = [s["text"] for m in view["conversation"]["messages"] for s in m["segments"] if s.get("mark")]
    assert marked == ["guaranteed", "returns"]  # word by word, as search highlights
    assert view["matches"] == [{"message": 1, "sender": "agent", "source": "query", "texts": ["guaranteed", "returns"]}]
    assert view["policy"]["name"] == "guarantees"


async def test_claim_then_resolve_and_compliance_reopens_with_a_note(client, tenant):
    _, items = await _flag(client, tenant, _risky("c1"))
    review_id = items["c1"]["id"]
    headers = await reviewer(tenant, ["shop"])
    claimed = await _act(client, headers, review_id, "claim")
    assert claimed.status_code == 200 and (claimed.json()["status"], claimed.json()["assignee"]) == ("claimed", headers["x-actor"])
    resolved = await _act(client, headers, review_id, "resolve", note="Agent coached; no client harm.")
    assert resolved.json()["status"] == "resolved" and resolved.json()["closed_at"]
    assert (await _act(client, headers, review_id, "reopen", note="mistake")).status_code == 403
    assert (await _act(client, tenant.headers("compliance"), review_id, "reopen")).status_code == 422  # a reopen says why
    reopened = await _act(client, tenant.headers("compliance"), review_id, "reopen", note="second look")
    assert (reopened.json()["status"], reopened.json()["assignee"]) == ("open", None)


async def test_an_item_claimed_by_one_reviewer_cannot_be_closed_by_another(client, tenant):
    _, items = await _flag(client, tenant, _risky("c1"))
    review_id = items["c1"]["id"]
    first, second = await reviewer(tenant, ["shop"]), await reviewer(tenant, ["shop"])
    await _act(client, first, review_id, "claim")
    refused = await _act(client, second, review_id, "resolve")
    assert refused.status_code == 409 and first["x-actor"] in refused.json()["errors"][0]["message"]
    assert (await _act(client, second, review_id, "comment", note="I agree it is risky")).status_code == 200
    assert (await _act(client, tenant.headers("compliance"), review_id, "false_positive")).json()["status"] == "false_positive"


async def test_escalated_items_wait_for_compliance(client, tenant):
    _, items = await _flag(client, tenant, _risky("c1"))
    review_id = items["c1"]["id"]
    headers = await reviewer(tenant, ["shop"])
    assert (await _act(client, headers, review_id, "escalate")).status_code == 422  # an escalation says why
    escalated = await _act(client, headers, review_id, "escalate", note="promise of returns to a retail client")
    assert (escalated.json()["status"], escalated.json()["assignee"]) == ("escalated", None)
    assert (await _act(client, headers, review_id, "resolve")).status_code == 409
    assert (await _act(client, tenant.headers("compliance"), review_id, "resolve", note="reported")).json()["status"] == "resolved"


async def test_assigning_checks_the_assignee_can_see_the_item(client, tenant):
    _, items = await _flag(client, tenant, _risky("c1"))
    review_id = items["c1"]["id"]
    elsewhere = await reviewer(tenant, ["b2b"])
    refused = await _act(client, tenant.headers("compliance"), review_id, "assign", assignee=elsewhere["x-actor"])
    assert refused.status_code == 409 and "cannot see" in refused.json()["errors"][0]["message"]
    unknown = await _act(client, tenant.headers("compliance"), review_id, "assign", assignee="key:nobody00")
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["path"] == "assignee"
    here = await reviewer(tenant, ["shop"])
    assigned = await _act(client, tenant.headers("compliance"), review_id, "assign", assignee=here["x-actor"])
    assert (assigned.json()["status"], assigned.json()["assignee"]) == ("claimed", here["x-actor"])
    assert [i["id"] for i in (await queue(client, here, assignee="me"))["items"]] == [review_id]


async def test_a_bulk_action_applies_to_all_items_or_to_none(client, tenant):
    _, items = await _flag(client, tenant, *[_risky(f"c{i}") for i in range(4)])
    ids = [items[f"c{i}"]["id"] for i in range(4)]
    compliance = tenant.headers("compliance")
    await _act(client, compliance, ids[2], "resolve")
    refused = await client.post("/v1/reviews/actions", json={"ids": ids, "action": "false_positive"}, headers=compliance)
    assert refused.status_code == 409 and [e["path"] for e in refused.json()["errors"]] == ["ids[2]"]
    assert (await queue(client, compliance))["counts"] == {"open": 3, "claimed": 0, "escalated": 0, "resolved": 1, "false_positive": 0}
    missing = await client.post("/v1/reviews/actions", json={"ids": [ids[0], str(uuid.uuid4())], "action": "claim"}, headers=compliance)
    assert missing.status_code == 404 and [e["path"] for e in missing.json()["errors"]] == ["ids[1]"]
    done = await client.post("/v1/reviews/actions", json={"ids": [ids[0], ids[1], ids[3]], "action": "false_positive", "note": "test data"},
                             headers=compliance)
    assert done.status_code == 200 and {i["status"] for i in done.json()["items"]} == {"false_positive"}


async def test_every_action_is_ledgered_with_actor_and_time_and_the_ledger_verifies(client, tenant):
    _, items = await _flag(client, tenant, _risky("c1"), _risky("c2"))
    headers = await reviewer(tenant, ["shop"])
    first, second = items["c1"]["id"], items["c2"]["id"]
    steps = [(first, "claim", {}), (first, "comment", {"note": "looks bad"}), (first, "escalate", {"note": "needs compliance"}),
             (second, "claim", {}), (second, "false_positive", {})]
    for review_id, action, body in steps:
        assert (await _act(client, headers, review_id, action, **body)).status_code == 200
    entries = (await client.get("/v1/audit", params={"actor": headers["x-actor"]}, headers=tenant.headers("compliance"))).json()
    actions = [(e["subject"], e["action"]) for e in entries if e["action"].startswith("review.")]
    assert actions == [(review_id, f"review.{action}") for review_id, action, _ in steps]
    assert all(e["at"] for e in entries)
    assert (await client.get("/v1/audit/verify", headers=tenant.headers("compliance"))).json()["ok"] is True
    verified = await run_cli("ledger", "verify", "--tenant", tenant.slug)
    assert verified.returncode == 0 and "ok" in verified.stdout


async def test_notes_are_sealed_in_the_store_and_readable_in_the_item(client, tenant):
    _, items = await _flag(client, tenant, _risky("c1"))
    review_id = items["c1"]["id"]
    await _act(client, tenant.headers("compliance"), review_id, "comment", note="Escalate to Ola's adviser desk")
    [row] = await ReviewComment.select().where(ReviewComment.review == uuid.UUID(review_id))
    assert "adviser" not in row["text_sealed"]
    headers = await reviewer(tenant, ["shop"])
    view = (await client.get(f"/v1/reviews/{review_id}", headers=headers)).json()
    [comment] = view["comments"]
    assert comment["text"].startswith("Escalate to Visitor ") and comment["text"].endswith("'s adviser desk")
    assert [h["action"] for h in view["history"]] == ["comment"]


async def test_the_queue_filters_and_pages_with_a_cursor(client, tenant):
    _, items = await _flag(client, tenant, *[_risky(f"c{i}") for i in range(5)], _risky("b", site="b2b"))
    compliance = tenant.headers("compliance")
    await _act(client, compliance, items["c0"]["id"], "claim")
    assert [i["external_id"] for i in (await queue(client, compliance, status="claimed"))["items"]] == ["c0"]
    assert len((await queue(client, compliance, status="open,claimed"))["items"]) == 6
    assert [i["external_id"] for i in (await queue(client, compliance, site="b2b"))["items"]] == ["b"]
    assert (await queue(client, compliance, severity="low"))["items"] == []
    seen, cursor = [], None
    while True:
        page = await queue(client, compliance, limit=4, **({"cursor": cursor} if cursor else {}))
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 6
    bad = await client.get("/v1/reviews", params={"status": "done", "limit": "0"}, headers=compliance)
    assert bad.status_code == 422 and {e["path"] for e in bad.json()["errors"]} == {"status[0]", "limit"}


async def test_a_reviewer_key_made_with_the_cli_is_scoped_to_its_sites_and_channels(client, tenant):
    await _flag(client, tenant, _risky("shop-web"), _risky("b2b-whatsapp", site="b2b", channel="whatsapp"), _risky("blog-web", site="blog"))
    made = await run_cli("keys", "create", "--tenant", tenant.slug, "--role", "reviewer", "--sites", "shop,b2b", "--channels", "web", "--json")
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)
    assert (key["role"], key["sites"], key["channels"]) == ("reviewer", ["b2b", "shop"], ["web"])
    seen = await queue(client, {"Authorization": f"Bearer {key['key']}"})
    assert [i["external_id"] for i in seen["items"]] == ["shop-web"]


async def test_the_admin_api_makes_reviewer_keys_with_a_scope_and_refuses_them_without_one(client, tenant):
    admin = tenant.headers("admin")
    made = await client.post("/v1/admin/keys", json={"role": "reviewer", "sites": ["shop"], "channels": ["web"]}, headers=admin)
    assert made.status_code == 201, made.text
    assert (made.json()["sites"], made.json()["channels"]) == (["shop"], ["web"])
    listed = {k["id"]: k for k in (await client.get("/v1/admin/keys", headers=admin)).json()}
    assert (listed[made.json()["id"]]["sites"], listed[made.json()["id"]]["channels"]) == (["shop"], ["web"])
    unscoped = await client.post("/v1/admin/keys", json={"role": "reviewer"}, headers=admin)
    assert unscoped.status_code == 422 and [e["path"] for e in unscoped.json()["errors"]] == ["sites"]
    scoped_compliance = await client.post("/v1/admin/keys", json={"role": "compliance", "sites": ["shop"]}, headers=admin)
    assert scoped_compliance.status_code == 422 and [e["path"] for e in scoped_compliance.json()["errors"]] == ["sites"]
