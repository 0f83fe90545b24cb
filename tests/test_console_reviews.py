"""The review queue in the console over HTTP: scope, one read per item opened, actions as the API
takes them, bulk all-or-nothing. The keyboard is in tests/test_console_browser.py."""

from __future__ import annotations

import re

from archive import ledger
from archive.tenancy import create_api_key
from tests.supervision_helpers import chat, create_policy, ingest
from tests.test_console import browser_like, sign_in

RISKY = ("Hei, jeg heter Ola Nordmann. Er dette trygt?", "Hi Ola, Kari here: these are guaranteed returns, trust me.")


def risky(external_id: str, **overrides):
    return chat(external_id, *RISKY, **{
        "visitor": {"id": "visitor-ola", "name": "Ola Nordmann", "email": "ola.nordmann@example.no"},
        "agents": [{"id": "agent-kari", "name": "Kari Hansen"}], **overrides})


async def flagged(client, tenant, *bodies) -> dict[str, str]:
    """external_id → review item id."""
    await create_policy(client, tenant)
    await ingest(client, tenant, *bodies)
    listed = await client.get("/v1/reviews", params={"limit": 200}, headers=tenant.headers("compliance"))
    return {i["external_id"]: i["id"] for i in listed.json()["items"]}


async def reviewer_session(http, tenant, sites, channels=None) -> str:
    key = await create_api_key(tenant.id, "reviewer", "console reviewer", sites, channels)
    response = await sign_in(http, key.key)
    assert response.status_code == 303, response.text
    return key.prefix


def csrf_of(html: str) -> str:
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', html)
    assert match
    return match.group(1)


async def test_a_reviewers_session_never_shows_out_of_scope_items(client, tenant):
    items = await flagged(client, tenant, risky("shop-web"), risky("b2b-web", site="b2b"), risky("shop-chat", channel="whatsapp"))
    async with browser_like(client) as http:
        await reviewer_session(http, tenant, ["shop"], ["web"])
        landing = await http.get("/console", follow_redirects=True)
        assert landing.url.path == "/console/reviews"
        assert "shop-web" in landing.text and "b2b-web" not in landing.text and "shop-chat" not in landing.text
        everything = await http.get("/console/reviews", params={"status": "all", "site": "b2b"})
        assert "b2b-web" not in everything.text
        for hidden in ("b2b-web", "shop-chat"):
            assert (await http.get(f"/console/reviews/{items[hidden]}")).status_code == 404
            csrf = csrf_of(landing.text)
            acted = await http.post(f"/console/reviews/{items[hidden]}/actions", data={"_csrf": csrf, "action": "claim"})
            assert acted.status_code == 404
        assert (await http.get("/console/search")).status_code == 403  # reviewers do not search the archive


async def test_a_reviewer_sees_pseudonyms_not_names(client, tenant):
    await flagged(client, tenant, risky("c1"))
    async with browser_like(client) as http:
        await reviewer_session(http, tenant, ["shop"])
        page = await http.get("/console/reviews")
    for real in ("Ola", "Nordmann", "Kari", "ola.nordmann@example.no", "visitor-ola", "agent-kari"):
        assert real not in page.text, real
    assert 'these are <mark class="match">guaranteed</mark> <mark class="match">returns</mark>, trust me' in page.text


async def test_opening_an_item_is_one_ledgered_read_and_acting_reads_nothing_more(client, tenant):
    items = await flagged(client, tenant, risky("c1"))
    async with browser_like(client) as http:
        prefix = await reviewer_session(http, tenant, ["shop"])
        page = await http.get(f"/console/reviews/{items['c1']}", headers={"hx-request": "true", "hx-target": "item"})
        assert "<html" not in page.text and "Opening this item was recorded in the audit ledger" in page.text
        claimed = await http.post(f"/console/reviews/{items['c1']}/actions", data={"_csrf": csrf_of((await http.get('/console/account')).text),
                                                                                   "action": "claim", "queue_status": "open,claimed"},
                                  headers={"hx-request": "true"})
        assert claimed.status_code == 200 and "claimed by key:" + prefix in claimed.text
        assert 'hx-swap-oob="outerHTML"' in claimed.text and "HX-Trigger-After-Settle" not in claimed.headers  # still to do: no advance
    entries = await ledger.list_entries(tenant.id, limit=1000)
    reads = [e for e in entries if e.action == "read" and e.actor == f"key:{prefix}"]
    assert len(reads) == 1 and reads[0].details["via"] == "review"
    assert [e.action for e in entries if e.action.startswith("review.") and e.actor == f"key:{prefix}"] == ["review.claim"]


async def test_resolving_asks_for_the_next_item(client, tenant):
    items = await flagged(client, tenant, risky("c1"), risky("c2"))
    async with browser_like(client) as http:
        await reviewer_session(http, tenant, ["shop"])
        csrf = csrf_of((await http.get("/console/reviews")).text)
        done = await http.post(f"/console/reviews/{items['c1']}/actions", data={"_csrf": csrf, "action": "resolve"}, headers={"hx-request": "true"})
        assert done.status_code == 200 and done.headers["hx-trigger-after-settle"] == f'{{"reviewDone": "{items["c1"]}"}}'
        assert "To do <span class=\"count\">1</span>" in done.text


async def test_escalating_without_a_note_says_so_and_changes_nothing(client, tenant):
    items = await flagged(client, tenant, risky("c1"))
    async with browser_like(client) as http:
        await reviewer_session(http, tenant, ["shop"])
        csrf = csrf_of((await http.get("/console/reviews")).text)
        refused = await http.post(f"/console/reviews/{items['c1']}/actions", data={"_csrf": csrf, "action": "escalate"}, headers={"hx-request": "true"})
        assert refused.status_code == 422 and "escalate needs a note" in refused.text and 'aria-invalid="true"' in refused.text
        escalated = await http.post(f"/console/reviews/{items['c1']}/actions", data={"_csrf": csrf, "action": "escalate", "note": "needs a second look"},
                                    headers={"hx-request": "true"})
        assert escalated.status_code == 200 and "needs a second look" in escalated.text


async def test_a_bulk_action_applies_to_every_selected_item_or_to_none(client, tenant):
    items = await flagged(client, tenant, risky("c1"), risky("c2"), risky("c3"))
    async with browser_like(client) as http:
        await reviewer_session(http, tenant, ["shop"])
        csrf = csrf_of((await http.get("/console/reviews")).text)
        await http.post(f"/console/reviews/{items['c3']}/actions", data={"_csrf": csrf, "action": "resolve"})
        refused = await http.post("/console/reviews/actions", data={"_csrf": csrf, "action": "false_positive", "ids": [items["c1"], items["c3"]]},
                                  headers={"hx-request": "true"})
        assert refused.status_code == 409 and "nothing was changed" in refused.text and "ids[1]" in refused.text
        done = await http.post("/console/reviews/actions", data={"_csrf": csrf, "action": "false_positive", "ids": [items["c1"], items["c2"]]},
                               headers={"hx-request": "true"})
        assert done.status_code == 200 and "false positive: 2 items" in done.text
    statuses = {i["external_id"]: i["status"] for i in (await client.get("/v1/reviews", params={"status": "resolved,false_positive"},
                                                                           headers=tenant.headers("compliance"))).json()["items"]}
    assert statuses == {"c1": "false_positive", "c2": "false_positive", "c3": "resolved"}


async def test_compliance_reveals_names_with_a_ledgered_reason(client, tenant):
    items = await flagged(client, tenant, risky("c1"))
    async with browser_like(client) as http:
        response = await sign_in(http, tenant.keys["compliance"].key)
        assert response.status_code == 303
        csrf = csrf_of((await http.get("/console/reviews")).text)
        revealed = await http.post(f"/console/reviews/{items['c1']}/reveal", data={"_csrf": csrf, "reason": "FINRA inquiry 2026-7"},
                                   headers={"hx-request": "true"})
        assert revealed.status_code == 200 and "Ola Nordmann" in revealed.text
    reveals = [e for e in await ledger.list_entries(tenant.id, limit=1000) if e.action == "review.reveal"]
    assert reveals and reveals[0].details["reason"] == "FINRA inquiry 2026-7"


async def test_a_reviewers_session_carries_its_keys_scope(client, runtime, tenant):
    from archive import sessions

    key = await create_api_key(tenant.id, "reviewer", "scoped", ["shop", "b2b"], ["web"])
    async with browser_like(client) as http:
        await sign_in(http, key.key)
        info = await sessions.resolve(runtime, http.cookies["parley_console"])
    assert info is not None and info.principal == await runtime.tenants.authenticate(key.key)
    assert info.principal.sites == ("b2b", "shop") and info.principal.channels == ("web",)


async def test_a_card_mask_a_policy_matched_is_still_shown_as_a_redaction(client, tenant):
    """docs/supervision.md's own example: a pattern on the mask redaction leaves ("agent pasted a
    card number"). The match cuts the mask into runs; the item still shows the whole mask as a
    redaction (dashed box, titled), with the matched stars marked inside it."""
    await create_policy(client, tenant, name="pasted cards", query="", patterns=[r"\*\*\*\*"], scope={"senders": ["agent"]})
    await ingest(client, tenant, chat("card-1", "Can I pay by card?", "Sure, I typed it in: 4111 1111 1111 1111, done."))
    listed = await client.get("/v1/reviews", headers=tenant.headers("compliance"))
    (item,) = listed.json()["items"]
    async with browser_like(client) as http:
        await sign_in(http, tenant.keys["compliance"].key)
        shown = await http.get(f"/console/reviews/{item['id']}")
    assert shown.status_code == 200
    assert ('typed it in: <span class="redaction" title="redacted at ingest: card number">4111 11** <mark class="match">****</mark> 1111</span>, done.'
            in shown.text), shown.text[shown.text.find("typed it in"):][:300]


async def test_an_error_loading_an_item_goes_into_the_pane_not_over_it(client, tenant):
    """htmx swaps an item into #item by outerHTML; an error answered there keeps the pane (the
    error goes inside it), so the queue's rows and keys still have somewhere to load the next item."""
    async with browser_like(client) as http:
        await sign_in(http, tenant.keys["compliance"].key)
        missing = await http.get("/console/reviews/00000000-0000-0000-0000-000000000000",
                                 headers={"hx-request": "true", "hx-target": "item"})
    assert missing.status_code == 404 and missing.headers["hx-reswap"] == "innerHTML"
    assert 'class="problem"' in missing.text
