"""Every platform end to end through ``POST /v1/connectors/{id}/events``: real payload shapes in,
one searchable, redacted conversation out (with all its messages, participants and attachment
metadata); wrong signatures refused and counted; retries stored once."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from archive.connectors import service
from archive.connectors.generic import sign
from archive.search import indexing
from archive.tables import ConnectorDraft, Conversation, LedgerEntry
from tests.connectors import compact, payload, raw, servers

CARD = "4111 1111 1111 1111"
ROCKETCHAT_TOKEN = "rc-livechat-secret-token"
CHATWOOT_SECRET = "cw-webhook-secret-9c1f"
INTERCOM_SECRET = "ic-client-secret-77a0"
INTERCOM_TOKEN = "dG9rOmljLWFjY2Vzcy10b2tlbg=="
CRISP_SECRET = "914a657d8cc2efbc20593f1806f9bde2"
CRISP_IDENTIFIER, CRISP_KEY = "43f34724-9eeb-4474-9cec-560250754dec", "d12e60c5d2aa264b90997a641b6474ffd6602b66d8e8abc49634c404f06fa7d0"
LIVECHAT_SECRET = "lc-webhook-secret-key-31"
LIVECHAT_TOKEN = "c7f0a2de-1f3b-4d2a-9a51-7c3f7ad1e001:dal:Zm9vYmFyYmF6cXV4"
GENERIC_SECRET = "generic-signing-secret-0b7"
CHATWOOT_WEBHOOKS = [
    "message_created_incoming.json",
    "message_created_outgoing.json",
    "message_created_attachment_only.json",
    "message_created_private_note.json",
    "message_created_second_agent.json",
    "message_created_later_deleted.json",
    "message_updated_deleted.json",
    "message_created_reply.json",
]


async def connector(client: httpx.AsyncClient, tenant: Any, platform: str, **settings: Any) -> dict[str, Any]:
    response = await client.post("/v1/admin/connectors", json={"platform": platform, **settings}, headers=tenant.headers("admin"))
    assert response.status_code == 201, response.text
    created = response.json()
    created["path"] = urlsplit(created["webhook_url"]).path
    return created


async def stats(client: httpx.AsyncClient, tenant: Any, created: dict[str, Any]) -> dict[str, Any]:
    response = await client.get(f"/v1/admin/connectors/{created['id']}/stats", headers=tenant.headers("admin"))
    assert response.status_code == 200, response.text
    return response.json()


async def read(client: httpx.AsyncClient, tenant: Any, conversation_id: str, **params: Any) -> dict[str, Any]:
    response = await client.get(f"/v1/transcripts/{conversation_id}", params=params, headers=tenant.headers("compliance"))
    assert response.status_code == 200, response.text
    return response.json()


async def search(client: httpx.AsyncClient, tenant: Any, runtime: Any, q: str) -> set[str]:
    await indexing.drain_all(runtime)
    response = await client.post("/v1/search", json={"q": q, "size": 100}, headers=tenant.headers("compliance"))
    assert response.status_code == 200, response.text
    return {hit["external_id"] for hit in response.json()["hits"]}


def chatwoot_headers(body: bytes, delivery: str, secret: str = CHATWOOT_SECRET, at: float | None = None) -> dict[str, str]:
    timestamp = str(int(at if at is not None else time.time()))
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-Chatwoot-Signature": f"sha256={digest}", "X-Chatwoot-Timestamp": timestamp, "X-Chatwoot-Delivery": delivery}


def crisp_headers(body: bytes, secret: str = CRISP_SECRET) -> dict[str, str]:
    timestamp = str(int(time.time()))
    trace = b"[" + timestamp.encode() + b";" + body + b"]"
    return {"X-Crisp-Request-Timestamp": timestamp, "X-Crisp-Signature": hmac.new(secret.encode(), trace, hashlib.sha256).hexdigest()}


def intercom_headers(body: bytes, secret: str = INTERCOM_SECRET) -> dict[str, str]:
    return {"X-Hub-Signature": "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()}


def with_card(text: str) -> str:
    return f"{text} Kortet mitt er {CARD}."


def rocketchat_body(change: Any = None) -> bytes:
    body = payload("rocketchat", "livechat_session_closed.json")
    body["messages"][0]["msg"] = with_card(body["messages"][0]["msg"])
    if change:
        change(body)
    return compact(body)


async def push(client: httpx.AsyncClient, created: dict[str, Any], body: bytes, headers: dict[str, str]) -> httpx.Response:
    return await client.post(created["path"], content=body, headers={"content-type": "application/json", **headers})


def redacted_everywhere(conversation: dict[str, Any]) -> None:
    text = json.dumps(conversation, ensure_ascii=False)
    assert CARD not in text and CARD.replace(" ", "") not in text
    assert conversation["redactions"].get("card") == 1


# --- Rocket.Chat ---------------------------------------------------------------------------------


async def test_a_closed_rocketchat_chat_becomes_one_searchable_redacted_conversation(client, tenant, runtime):
    created = await connector(client, tenant, "rocketchat", secret=ROCKETCHAT_TOKEN)
    response = await push(client, created, rocketchat_body(), {"X-RocketChat-Livechat-Token": ROCKETCHAT_TOKEN})
    assert response.status_code == 200, response.text  # the only status Rocket.Chat counts as delivered
    receipt = response.json()
    assert (receipt["status"], receipt["result"], receipt["revision"]) == ("archived", "created", 1)
    conversation = await read(client, tenant, receipt["conversation"])
    source = payload("rocketchat", "livechat_session_closed.json")
    assert conversation["external_id"] == source["_id"] and len(conversation["messages"]) == len(source["messages"])
    redacted_everywhere(conversation)
    agents = {a["id"]: a for a in conversation["agents"]}
    assert agents["Ytr7GQk4n2Jx3bN9c"]["email"] == "kari.hansen@example.com" and "Bn4Ws9Kx2Lp7Qr3Tv" in agents
    [file] = [a for m in conversation["messages"] for a in m.get("attachments", [])]
    assert (file["name"], file["content_type"], file["size"]) == ("faktura-oktober.png", "image/png", 184233)
    assert [m["event"] for m in conversation["messages"] if m.get("kind") == "event"] == ["close"]
    assert await search(client, tenant, runtime, "faktura-oktober.png") == {source["_id"]}
    assert await search(client, tenant, runtime, "4111111111111111") == set()


async def test_a_rocketchat_chat_closed_again_with_more_messages_is_its_second_revision(client, tenant):
    created = await connector(client, tenant, "rocketchat", secret=ROCKETCHAT_TOKEN)
    headers = {"X-RocketChat-Livechat-Token": ROCKETCHAT_TOKEN}
    first = (await push(client, created, rocketchat_body(), headers)).json()

    def reopened(body: dict[str, Any]) -> None:
        later = dict(body["messages"][1], _id="reopen-1", msg="Hei igjen, refusjonen kom ikke.", ts="2026-10-15T08:00:00.000Z")
        body["messages"].append(later)
        body["closedAt"] = "2026-10-15T08:05:00.000Z"

    second = (await push(client, created, rocketchat_body(reopened), headers)).json()
    assert (second["conversation"], second["result"], second["revision"]) == (first["conversation"], "revised", 2)
    latest = await read(client, tenant, second["conversation"])
    original = await read(client, tenant, second["conversation"], revision=1)
    assert (latest["revision"], latest["revisions"], original["revision"]) == (2, 2, 1)
    assert len(latest["messages"]) == len(original["messages"]) + 1


async def test_a_push_with_the_wrong_token_is_refused_counted_and_stores_nothing(client, tenant):
    created = await connector(client, tenant, "rocketchat", secret=ROCKETCHAT_TOKEN)
    response = await push(client, created, rocketchat_body(), {"X-RocketChat-Livechat-Token": "guessed"})
    assert response.status_code == 401 and response.headers["content-type"].startswith("application/problem+json")
    missing = await push(client, created, rocketchat_body(), {})
    assert missing.status_code == 401
    assert await Conversation.count().where(Conversation.tenant == tenant.id) == 0
    counted = await stats(client, tenant, created)
    assert (counted["received"], counted["accepted"], counted["rejected"]) == (2, 0, {"bad_signature": 1, "missing_signature": 1})


async def test_a_parley_api_key_does_not_authenticate_a_push(client, tenant):
    created = await connector(client, tenant, "rocketchat", secret=ROCKETCHAT_TOKEN)
    response = await push(client, created, rocketchat_body(), tenant.headers("ingest"))
    assert response.status_code == 401


async def test_rocketchat_is_answered_200_for_every_receipt_as_it_counts_no_other_status_delivered(client, tenant):
    # Rocket.Chat webhooks.ts sendRequest: only ``result.status === 200`` is success; a 201/202 is
    # logged as "Non-retryable error response from webhook" and counted as a failure.
    created = await connector(client, tenant, "rocketchat", secret=ROCKETCHAT_TOKEN)
    headers = {"X-RocketChat-Livechat-Token": ROCKETCHAT_TOKEN}
    archived = await push(client, created, rocketchat_body(), headers)
    revised = await push(client, created, rocketchat_body(lambda b: b["tags"].append("revised")), headers)
    ignored = await push(client, created, compact({"type": "LivechatSessionTaken", "_id": "r1"}), headers)
    answers = [(r.status_code, r.json()["status"], r.json().get("result")) for r in (archived, revised, ignored)]
    assert answers == [(200, "archived", "created"), (200, "archived", "revised"), (200, "ignored", None)]


async def test_other_platforms_keep_201_for_archived_and_202_for_kept(client, tenant):
    created = await connector(client, tenant, "generic", secret=GENERIC_SECRET)
    body = compact(payload("generic", "conversation.json"))
    response = await push(client, created, body, {"X-Parley-Signature": sign(GENERIC_SECRET, body, int(time.time()))})
    assert (response.status_code, response.json()["status"]) == (201, "archived")
    chatwoot = await connector(client, tenant, "chatwoot", secret=CHATWOOT_SECRET)
    message = compact(payload("chatwoot", "message_created_incoming.json"))
    kept = await push(client, chatwoot, message, chatwoot_headers(message, "status-1"))
    assert (kept.status_code, kept.json()["status"]) == (202, "pending")


async def test_a_retried_delivery_is_stored_once(client, tenant):
    created = await connector(client, tenant, "rocketchat", secret=ROCKETCHAT_TOKEN)
    headers = {"X-RocketChat-Livechat-Token": ROCKETCHAT_TOKEN}
    first = await push(client, created, rocketchat_body(), headers)
    again = await push(client, created, rocketchat_body(), headers)
    assert (first.status_code, again.status_code) == (200, 200)
    assert (first.json()["status"], again.json()["status"]) == ("archived", "duplicate")
    ingests = await LedgerEntry.count().where((LedgerEntry.tenant == tenant.id) & LedgerEntry.action.is_in(["ingest", "ingest.revision"]))
    assert ingests == 1
    counted = await stats(client, tenant, created)
    assert (counted["received"], counted["accepted"], counted["duplicates"], counted["archived"]) == (2, 1, 1, 1)
    assert counted["last_received_at"] is not None


async def test_the_platforms_test_push_is_ignored_and_counted(client, tenant):
    created = await connector(client, tenant, "rocketchat", secret=ROCKETCHAT_TOKEN)
    response = await push(client, created, raw("rocketchat", "livechat_session_test.json"), {"X-RocketChat-Livechat-Token": ROCKETCHAT_TOKEN})
    assert response.status_code == 200 and response.json()["status"] == "ignored"
    assert (await stats(client, tenant, created))["ignored"] == 1


async def test_a_push_to_an_unknown_connector_is_not_found(client):
    response = await client.post("/v1/connectors/0b1e0c8a-3f7e-4d7a-9d62-2f0f3c3e9a11/events", content=b"{}")
    assert response.status_code == 404
    assert (await client.post("/v1/connectors/not-a-uuid/events", content=b"{}")).status_code == 404


async def test_a_body_that_is_no_conversation_is_refused_naming_the_field_and_counted(client, tenant):
    created = await connector(client, tenant, "rocketchat", secret=ROCKETCHAT_TOKEN)

    def unreadable(body: dict[str, Any]) -> None:
        body["messages"][2]["ts"] = "last tuesday"

    response = await push(client, created, rocketchat_body(unreadable), {"X-RocketChat-Livechat-Token": ROCKETCHAT_TOKEN})
    assert response.status_code == 422 and response.json()["errors"][0]["path"] == "messages[2].ts"
    assert (await stats(client, tenant, created))["rejected"] == {"invalid": 1}


# --- Chatwoot ------------------------------------------------------------------------------------


def chatwoot_body(name: str) -> bytes:
    body = payload("chatwoot", name)
    if name == "message_created_incoming.json":
        body["content"] = with_card(body["content"])
    return compact(body)


async def chatwoot_messages(client: httpx.AsyncClient, created: dict[str, Any], names: list[str], prefix: str = "d") -> list[dict[str, Any]]:
    receipts = []
    for i, name in enumerate(names):
        body = chatwoot_body(name)
        response = await push(client, created, body, chatwoot_headers(body, f"{prefix}-{i}"))
        assert response.status_code == 202, response.text
        receipts.append(response.json())
    return receipts


async def test_chatwoot_messages_accumulate_and_the_resolve_archives_them_whole(client, tenant, runtime):
    created = await connector(client, tenant, "chatwoot", secret=CHATWOOT_SECRET)
    receipts = await chatwoot_messages(client, created, CHATWOOT_WEBHOOKS)
    assert {r["status"] for r in receipts} == {"pending"} and len({r["conversation"] for r in receipts}) == 1
    body = compact(payload("chatwoot", "conversation_status_changed_resolved.json"))
    response = await push(client, created, body, chatwoot_headers(body, "resolve-1"))
    assert response.status_code == 201, response.text
    receipt = response.json()
    assert receipt["conversation"] == receipts[0]["conversation"]  # archived under the id its drafts were sealed for
    conversation = await read(client, tenant, receipt["conversation"])
    assert conversation["external_id"] == "chatwoot:184"
    redacted_everywhere(conversation)
    kinds = [(m["id"] if "id" in m else None, m.get("kind", "message")) for m in conversation["messages"]]
    assert ("9104", "note") in kinds and kinds[-1] == (None, "event")
    deleted = [(m["text"], m.get("deleted", False)) for m in conversation["messages"] if m.get("id") == "9108"]
    assert [flag for _, flag in deleted] == [False, True] and "Sendungsnummer" in deleted[0][0]
    assert {a["id"]: a.get("email") for a in conversation["agents"]} == {
        "12": "ingrid.solberg@nordlys.example", "15": "thomas.lie@nordlys.example",
    }
    [file] = [a for m in conversation["messages"] for a in m.get("attachments", [])]
    assert file["name"] == "karton-beschädigt.jpg" and file["size"] == 248113
    assert await search(client, tenant, runtime, "karton") == {"chatwoot:184"}


async def test_a_chatwoot_conversation_reopened_and_resolved_again_is_revision_2_with_every_message(client, tenant):
    created = await connector(client, tenant, "chatwoot", secret=CHATWOOT_SECRET)
    await chatwoot_messages(client, created, CHATWOOT_WEBHOOKS[:3])
    resolved = compact(payload("chatwoot", "conversation_status_changed_resolved.json"))
    first = (await push(client, created, resolved, chatwoot_headers(resolved, "resolve-1"))).json()
    reopened = compact(payload("chatwoot", "conversation_status_changed_open.json"))
    assert (await push(client, created, reopened, chatwoot_headers(reopened, "reopen-1"))).json()["status"] == "ignored"
    for i, name in enumerate(CHATWOOT_WEBHOOKS[3:]):  # written after the reopen, so after the first resolve
        later = payload("chatwoot", name)
        later["created_at"] = later["created_at"].replace("T13:", "T14:")
        body = compact(later)
        assert (await push(client, created, body, chatwoot_headers(body, f"later-{i}"))).json()["status"] == "pending"
    second = (await push(client, created, resolved, chatwoot_headers(resolved, "resolve-2"))).json()
    assert (second["status"], second["conversation"], second["revision"]) == ("archived", first["conversation"], 2)
    latest = await read(client, tenant, second["conversation"])
    earlier = await read(client, tenant, second["conversation"], revision=1)
    ids = {m.get("id") for m in latest["messages"]}
    assert {"9101", "9102", "9103", "9104", "9106", "9108"} <= ids
    assert {m.get("id") for m in earlier["messages"]} <= ids and "9104" not in {m.get("id") for m in earlier["messages"]}
    listed = (await client.get(f"/v1/transcripts/{second['conversation']}/revisions", headers=tenant.headers("compliance"))).json()
    assert [(r["revision"], r["latest"]) for r in listed["revisions"]] == [(1, False), (2, True)]


async def test_a_retried_chatwoot_message_is_kept_once(client, tenant):
    created = await connector(client, tenant, "chatwoot", secret=CHATWOOT_SECRET)
    body = chatwoot_body("message_created_incoming.json")
    first = await push(client, created, body, chatwoot_headers(body, "same-delivery"))
    retry = await push(client, created, body, chatwoot_headers(body, "same-delivery"))
    assert (first.status_code, retry.status_code, retry.json()["status"]) == (202, 200, "duplicate")
    assert await ConnectorDraft.count().where(ConnectorDraft.tenant == tenant.id) == 1


async def test_a_chatwoot_message_delivered_after_the_resolve_is_archived_without_waiting_for_another(client, tenant):
    """Chatwoot sends each webhook from its own Sidekiq job, so the agent's last message can
    arrive after the resolve. Without API access nothing will fetch it back: the conversation
    archived at the resolve gets it as its next revision at once, with what the resolve said
    (close time, labels, close event), exactly as if it had come in time."""
    created = await connector(client, tenant, "chatwoot", secret=CHATWOOT_SECRET)
    await chatwoot_messages(client, created, CHATWOOT_WEBHOOKS[:-1])
    resolved = compact(payload("chatwoot", "conversation_status_changed_resolved.json"))
    first = (await push(client, created, resolved, chatwoot_headers(resolved, "resolve-1"))).json()
    last = chatwoot_body(CHATWOOT_WEBHOOKS[-1])  # message 9109, written before the resolve
    response = await push(client, created, last, chatwoot_headers(last, "late-1"))
    assert response.status_code == 201, response.text
    late = response.json()
    assert (late["status"], late["conversation"], late["revision"], late["result"]) == ("archived", first["conversation"], 2, "revised")
    latest = await read(client, tenant, late["conversation"])
    earlier = await read(client, tenant, late["conversation"], revision=1)
    expected = [m.get("id") for m in earlier["messages"]]
    expected.insert(expected.index("9123"), "9109")  # in its place in time: 9123 came with the resolve
    assert [m.get("id") for m in latest["messages"]] == expected
    assert latest["messages"][-1] == earlier["messages"][-1]  # the resolve's own close event, still last
    for fact in ("ended_at", "tags", "agents", "visitor", "metadata", "site", "channel"):
        assert latest[fact] == earlier[fact], fact
    again = chatwoot_body(CHATWOOT_WEBHOOKS[-1])  # delivered twice under two delivery ids: nothing new
    twice = await push(client, created, again, chatwoot_headers(again, "late-2"))
    assert (twice.status_code, twice.json()["result"], twice.json()["revision"]) == (200, "existing", 2)


async def test_chatwoot_messages_delivered_after_the_resolve_all_at_once_all_reach_the_latest_revision(client, tenant):
    """Sidekiq delivers several late webhooks at the same time: each makes a revision, and the
    latest holds every one of them (one assembled while another was being kept is assembled again)."""
    created = await connector(client, tenant, "chatwoot", secret=CHATWOOT_SECRET)
    await chatwoot_messages(client, created, CHATWOOT_WEBHOOKS[:-3])
    resolved = compact(payload("chatwoot", "conversation_status_changed_resolved.json"))
    first = (await push(client, created, resolved, chatwoot_headers(resolved, "resolve-1"))).json()
    late = [chatwoot_body(name) for name in CHATWOOT_WEBHOOKS[-3:]]  # 9108, its deletion, 9109
    answers = await asyncio.gather(*[push(client, created, body, chatwoot_headers(body, f"late-{i}")) for i, body in enumerate(late)])
    assert sorted((a.status_code, a.json()["revision"]) for a in answers) == [(201, 2), (201, 3), (201, 4)]
    latest = await read(client, tenant, first["conversation"])
    assert latest["revision"] == 4
    ids = [m.get("id") for m in latest["messages"]]
    assert ids.count("9108") == 2 and "9109" in ids  # the message, its deletion, and the last message


async def test_a_chatwoot_message_kept_while_its_resolve_is_being_archived_reaches_the_archive(client, tenant, monkeypatch):
    """The resolve has read the thread's pieces and is archiving them when the agent's last
    message (written before the resolve, delivered by another Sidekiq job) is kept: the resolve's
    transaction sees a piece it did not assemble and assembles again, so the message is archived
    rather than left waiting for a resolve that never comes."""
    created = await connector(client, tenant, "chatwoot", secret=CHATWOOT_SECRET)
    await chatwoot_messages(client, created, CHATWOOT_WEBHOOKS[:-1])
    last = chatwoot_body(CHATWOOT_WEBHOOKS[-1])  # message 9109
    assembling, kept = service.complete, []

    async def complete_then_a_piece_arrives(*args, **kwargs):
        conversation = await assembling(*args, **kwargs)
        if not kept:  # the first assembly of the resolve: the late message is handled in full now
            kept.append((await push(client, created, last, chatwoot_headers(last, "meanwhile"))).json())
        return conversation

    monkeypatch.setattr(service, "complete", complete_then_a_piece_arrives)
    resolved = compact(payload("chatwoot", "conversation_status_changed_resolved.json"))
    archived = (await push(client, created, resolved, chatwoot_headers(resolved, "resolve-1"))).json()

    assert kept[0]["status"] == "pending"  # nothing was archived yet when it came
    assert archived["status"] == "archived"
    assert "9109" in {m.get("id") for m in (await read(client, tenant, archived["conversation"]))["messages"]}


async def test_a_chatwoot_message_found_not_late_just_before_its_resolve_commits_is_archived(client, tenant, monkeypatch):
    """The other order: the message is found not late (nothing archived yet), then the resolve
    archives the conversation before the message is kept. Kept under the thread's lock, the
    message sees the archive and is handled again as late: the next revision has it."""
    created = await connector(client, tenant, "chatwoot", secret=CHATWOOT_SECRET)
    await chatwoot_messages(client, created, CHATWOOT_WEBHOOKS[:-1])
    resolved = compact(payload("chatwoot", "conversation_status_changed_resolved.json"))
    looking, closed = service._late, []

    async def late_then_the_resolve_commits(*args, **kwargs):
        found = await looking(*args, **kwargs)
        if not closed:
            closed.append((await push(client, created, resolved, chatwoot_headers(resolved, "resolve-1"))).json())
        return found

    monkeypatch.setattr(service, "_late", late_then_the_resolve_commits)
    last = chatwoot_body(CHATWOOT_WEBHOOKS[-1])
    answered = (await push(client, created, last, chatwoot_headers(last, "late-1"))).json()

    assert closed[0]["revision"] == 1 and "9109" not in {m.get("id") for m in (await read(client, tenant, closed[0]["conversation"], revision=1))["messages"]}
    assert (answered["status"], answered["revision"]) == ("archived", 2)
    assert "9109" in {m.get("id") for m in (await read(client, tenant, closed[0]["conversation"]))["messages"]}

@pytest.mark.parametrize("seconds_ago, reason", [(301, "stale"), (0, "bad_signature")])
async def test_a_stale_or_wrongly_signed_chatwoot_push_is_refused(client, tenant, seconds_ago, reason):
    created = await connector(client, tenant, "chatwoot", secret=CHATWOOT_SECRET)
    body = chatwoot_body("message_created_incoming.json")
    secret = CHATWOOT_SECRET if reason == "stale" else "not-the-secret"
    response = await push(client, created, body, chatwoot_headers(body, "d-1", secret=secret, at=time.time() - seconds_ago))
    assert response.status_code == 401
    assert (await stats(client, tenant, created))["rejected"] == {reason: 1}
    assert await ConnectorDraft.count().where(ConnectorDraft.tenant == tenant.id) == 0


async def test_with_api_access_a_chatwoot_resolve_is_queued_and_fetched_back(client, tenant, runtime):
    token = "cw-user-token-Hk2"
    async with servers.chatwoot(token) as api:
        created = await connector(client, tenant, "chatwoot", secret=CHATWOOT_SECRET, api_url=f"{api.url}/app/accounts/7", api_token=token)
        await chatwoot_messages(client, created, CHATWOOT_WEBHOOKS)
        body = compact(payload("chatwoot", "conversation_status_changed_resolved.json"))
        response = await push(client, created, body, chatwoot_headers(body, "resolve-1"))
        assert response.status_code == 202 and response.json()["status"] == "queued"
        assert (await stats(client, tenant, created))["queued"] == 1
        assert await service.run_jobs(runtime) == 1
    conversation = await read(client, tenant, response.json()["conversation"])
    redacted_everywhere(conversation)
    ids = [m.get("id") for m in conversation["messages"]]
    assert "9107" in ids  # the message whose webhook never came
    assert [m["event"] for m in conversation["messages"] if m.get("kind") == "event"] == ["assign", "close"]
    counted = await stats(client, tenant, created)
    assert (counted["queued"], counted["archived"]) == (0, 1)


# --- Intercom, Crisp, LiveChat: the close carries ids; the conversation is fetched back -----------


def intercom_with_card(conversation: dict[str, Any]) -> dict[str, Any]:
    conversation["source"]["body"] = with_card(conversation["source"]["body"])
    return conversation


async def test_an_intercom_close_is_fetched_back_into_one_redacted_conversation(client, tenant, runtime):
    async with servers.intercom(INTERCOM_TOKEN, intercom_with_card) as api:
        created = await connector(client, tenant, "intercom", secret=INTERCOM_SECRET, api_url=api.url, api_token=INTERCOM_TOKEN)
        body = raw("intercom", "notification_conversation_admin_closed.json")
        response = await push(client, created, body, intercom_headers(body))
        assert response.status_code == 202 and response.json()["status"] == "queued"
        assert await service.run_jobs(runtime) == 1
    conversation = await read(client, tenant, response.json()["conversation"])
    assert conversation["external_id"] == "intercom:215468932547901"
    redacted_everywhere(conversation)
    assert all(a.get("email") for a in conversation["agents"]) and len(conversation["agents"]) >= 2
    assert [m for m in conversation["messages"] if m.get("kind") == "note"]
    assert [a["name"] for m in conversation["messages"] for a in m.get("attachments", [])] == ["kontoudtog oktober.pdf"]
    assert await search(client, tenant, runtime, "kontoudtog") == {"intercom:215468932547901"}


async def test_an_intercom_notification_signed_with_another_secret_is_refused(client, tenant):
    created = await connector(client, tenant, "intercom", secret=INTERCOM_SECRET, api_token=INTERCOM_TOKEN)
    body = raw("intercom", "notification_conversation_admin_closed.json")
    response = await push(client, created, body, intercom_headers(body, secret="other"))
    assert response.status_code == 401 and (await stats(client, tenant, created))["rejected"] == {"bad_signature": 1}


def crisp_with_card(listing: dict[str, Any]) -> dict[str, Any]:
    first = next(m for m in listing["data"] if m["type"] == "text")
    first["content"] = with_card(first["content"])
    return listing


async def test_a_resolved_crisp_session_is_fetched_back_into_one_redacted_conversation(client, tenant, runtime):
    async with servers.crisp(CRISP_IDENTIFIER, CRISP_KEY, crisp_with_card) as api:
        created = await connector(client, tenant, "crisp", secret=CRISP_SECRET, api_url=api.url, api_token=f"{CRISP_IDENTIFIER}:{CRISP_KEY}")
        body = raw("crisp", "hook_session_set_state_resolved.json")
        response = await push(client, created, body, crisp_headers(body))
        assert response.status_code == 202, response.text
        assert await service.run_jobs(runtime) == 1
    conversation = await read(client, tenant, response.json()["conversation"])
    assert conversation["external_id"].startswith("crisp:session_")
    redacted_everywhere(conversation)
    assert [m for m in conversation["messages"] if m.get("kind") == "note"]
    assert [a["name"] for m in conversation["messages"] for a in m.get("attachments", [])] == ["bon-de-livraison.pdf"]
    assert conversation["agents"] and all(a.get("email") for a in conversation["agents"])
    assert await search(client, tenant, runtime, "bon-de-livraison") == {conversation["external_id"]}


async def test_a_crisp_hook_signed_with_another_secret_is_refused(client, tenant):
    created = await connector(client, tenant, "crisp", secret=CRISP_SECRET, api_token=f"{CRISP_IDENTIFIER}:{CRISP_KEY}")
    body = raw("crisp", "hook_session_set_state_resolved.json")
    response = await push(client, created, body, crisp_headers(body, secret="other"))
    assert response.status_code == 401 and (await stats(client, tenant, created))["rejected"] == {"bad_signature": 1}


async def test_a_crisp_website_hook_is_authenticated_by_the_key_in_its_url(client, tenant, runtime):
    """Crisp's Website Hooks (Settings → Website settings → Advanced → Web Hooks) "are not signed,
    in contrary to Plugin Hooks"; Crisp recommends a key appended to the endpoint URL
    (docs.crisp.chat guides/web-hooks/website-hooks). Created without --secret, the connector
    generates one; Crisp is given <webhook_url>?key=<secret> and posts the hook unsigned."""
    async with servers.crisp(CRISP_IDENTIFIER, CRISP_KEY, crisp_with_card) as api:
        created = await connector(client, tenant, "crisp", api_url=api.url, api_token=f"{CRISP_IDENTIFIER}:{CRISP_KEY}")
        body = raw("crisp", "hook_session_set_state_resolved.json")
        url = f"{created['path']}?key={created['secret']}"
        response = await client.post(url, content=body, headers={"content-type": "application/json"})
        assert response.status_code == 202, response.text
        retried = await client.post(url, content=body, headers={"content-type": "application/json"})
        assert (retried.status_code, retried.json()["status"]) == (200, "duplicate")
        assert await service.run_jobs(runtime) == 1
    conversation = await read(client, tenant, response.json()["conversation"])
    assert conversation["external_id"].startswith("crisp:session_")
    redacted_everywhere(conversation)
    guessed = await client.post(f"{created['path']}?key=guessed-key-123", content=body)
    unkeyed = await client.post(created["path"], content=body)
    assert (guessed.status_code, unkeyed.status_code) == (401, 401)
    assert "?key=" in unkeyed.json()["detail"]  # says how to fix the hook's URL
    assert (await stats(client, tenant, created))["rejected"] == {"bad_signature": 1, "missing_signature": 1}


def livechat_with_card(answer: dict[str, Any]) -> dict[str, Any]:
    first = next(e for e in answer["thread"]["events"] if e["type"] == "message")
    first["text"] = with_card(first["text"])
    return answer


def livechat_body(secret: str = LIVECHAT_SECRET) -> bytes:
    body = payload("livechat", "webhook_chat_deactivated.json")
    body["secret_key"] = secret
    return compact(body)


async def test_a_deactivated_livechat_chat_is_fetched_back_into_one_redacted_conversation(client, tenant, runtime):
    async with servers.livechat(LIVECHAT_TOKEN, livechat_with_card) as api:
        created = await connector(client, tenant, "livechat", secret=LIVECHAT_SECRET, api_url=api.url, api_token=LIVECHAT_TOKEN)
        response = await push(client, created, livechat_body(), {})
        assert (response.status_code, response.json()["status"]) == (200, "queued"), response.text
        retried = await push(client, created, livechat_body(), {})
        assert (retried.status_code, retried.json()["status"]) == (200, "duplicate")
        assert await service.run_jobs(runtime) == 1
    conversation = await read(client, tenant, response.json()["conversation"])
    assert conversation["external_id"].startswith("livechat:")
    redacted_everywhere(conversation)
    assert len(conversation["agents"]) == 2 and all(a.get("email") for a in conversation["agents"])
    assert {m["event"] for m in conversation["messages"] if m.get("kind") == "event"} >= {"transfer", "close", "form"}
    assert [m for m in conversation["messages"] if m.get("attachments") and not m.get("text")]


async def test_a_livechat_webhook_with_another_secret_key_is_refused(client, tenant):
    created = await connector(client, tenant, "livechat", secret=LIVECHAT_SECRET, api_token=LIVECHAT_TOKEN)
    response = await push(client, created, livechat_body("guessed-secret"), {})
    assert response.status_code == 401 and (await stats(client, tenant, created))["rejected"] == {"bad_signature": 1}


# --- generic -------------------------------------------------------------------------------------


def generic_body() -> bytes:
    body = payload("generic", "conversation.json")
    body["messages"][0]["text"] = with_card(body["messages"][0]["text"])
    return compact(body)


async def test_a_signed_generic_push_is_archived_with_notes_events_and_files(client, tenant, runtime):
    created = await connector(client, tenant, "generic", secret=GENERIC_SECRET)
    body = generic_body()
    response = await push(client, created, body, {"X-Parley-Signature": sign(GENERIC_SECRET, body, int(time.time()))})
    assert response.status_code == 201, response.text
    conversation = await read(client, tenant, response.json()["conversation"])
    redacted_everywhere(conversation)
    assert [m.get("kind", "message") for m in conversation["messages"]].count("event") == 3
    assert {a["email"] for a in conversation["agents"]} == {"lena.strom@shop.example", "erik.dahl@shop.example"}
    [file] = [a for m in conversation["messages"] for a in m.get("attachments", [])]
    assert file["sha256"].startswith("9f2c4e8a") and file["url"].startswith("https://files.shop.example/")
    assert await search(client, tenant, runtime, "kvitto") == {"helpdesk-77812"}


async def test_a_generic_push_signed_six_minutes_ago_is_stale(client, tenant):
    created = await connector(client, tenant, "generic", secret=GENERIC_SECRET)
    body = generic_body()
    response = await push(client, created, body, {"X-Parley-Signature": sign(GENERIC_SECRET, body, int(time.time()) - 360)})
    assert response.status_code == 401 and (await stats(client, tenant, created))["rejected"] == {"stale": 1}
