"""Ingest: idempotent, all-or-nothing, and every bad input named by its field."""

from __future__ import annotations

import asyncio

from archive.tables import Conversation, LedgerEntry
from tests.factories import conversation


async def _count(tenant) -> tuple[int, int]:
    conversations = await Conversation.count().where(Conversation.tenant == tenant.id)
    entries = await LedgerEntry.count().where(LedgerEntry.tenant == tenant.id)
    return conversations, entries


async def test_ingest_returns_id_hash_and_redaction_counts(client, tenant):
    body = conversation(None, "My card is 4111 1111 1111 1111", "Thanks, and your IBAN NO93 8601 1117 947?")
    response = await client.post("/v1/transcripts", json=body, headers=tenant.headers("ingest"))
    assert response.status_code == 201, response.text
    result = response.json()
    assert result["status"] == "created"
    assert len(result["content_sha256"]) == 64
    assert result["redactions"] == {"card": 1, "iban": 1}


async def test_same_conversation_again_is_200_with_same_id(client, tenant):
    body = conversation()
    first = await client.post("/v1/transcripts", json=body, headers=tenant.headers("ingest"))
    again = await client.post("/v1/transcripts", json=body, headers=tenant.headers("ingest"))
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["status"] == "existing"
    assert (await _count(tenant))[0] == 1


async def test_different_content_under_same_external_id_is_409(client, tenant):
    body = conversation("ext-1")
    await client.post("/v1/transcripts", json=body, headers=tenant.headers("ingest"))
    before = await _count(tenant)
    changed = conversation("ext-1", "A different first message")
    response = await client.post("/v1/transcripts", json=changed, headers=tenant.headers("ingest"))
    assert response.status_code == 409
    problem = response.json()
    assert problem["field"] == "external_id" and "ext-1" in problem["detail"]
    assert await _count(tenant) == before


async def test_batch_stores_all_and_reports_each(client, tenant):
    batch = {"conversations": [conversation() for _ in range(3)]}
    response = await client.post("/v1/transcripts", json=batch, headers=tenant.headers("ingest"))
    assert response.status_code == 201
    assert [r["status"] for r in response.json()["results"]] == ["created"] * 3
    assert (await _count(tenant))[0] == 3


async def test_batch_with_one_bad_item_stores_nothing_and_names_the_item(client, tenant):
    bad = conversation()
    bad["messages"][1]["at"] = "2026-11-02T10:00:00Z"  # after ended_at
    before = await _count(tenant)
    response = await client.post(
        "/v1/transcripts", json={"conversations": [conversation(), bad]}, headers=tenant.headers("ingest")
    )
    assert response.status_code == 422
    assert response.json()["errors"] == [
        {"path": "conversations[1].messages[1].at", "message": "lies outside the conversation's started_at..ended_at"}
    ]
    assert await _count(tenant) == before


async def test_batch_with_a_conflicting_item_stores_nothing(client, tenant):
    await client.post("/v1/transcripts", json=conversation("dup"), headers=tenant.headers("ingest"))
    before = await _count(tenant)
    batch = {"conversations": [conversation(), conversation("dup", "changed")]}
    response = await client.post("/v1/transcripts", json=batch, headers=tenant.headers("ingest"))
    assert response.status_code == 409
    assert response.json()["field"] == "conversations[1].external_id"
    assert await _count(tenant) == before


async def _post_raw(client, tenant, content: bytes):
    headers = {**tenant.headers("ingest"), "content-type": "application/json"}
    return await client.post("/v1/transcripts", content=content, headers=headers)


async def test_bad_inputs_are_named_by_field_and_store_nothing(client, tenant):
    cases = {
        "messages[0].sender.role": lambda b: b["messages"][0]["sender"].update(role="robot"),
        "messages[0].text": lambda b: b["messages"][0].update(text=42),
        "started_at": lambda b: b.update(started_at="yesterday"),
        "ended_at": lambda b: b.update(ended_at="2026-11-01T09:00:00Z"),
        "messages": lambda b: b.update(messages=[]),
        "visitor": lambda b: b.pop("visitor"),
        "mesages": lambda b: b.update(mesages=[]),
        "channel": lambda b: b.update(channel="Web Chat!"),
        "messages[1].at": lambda b: b["messages"][1].update(at="2026-11-01T10:05:00"),
        "metadata.nested": lambda b: b["metadata"].update(nested={"a": 1}),
    }
    before = await _count(tenant)
    for path, mutate in cases.items():
        body = conversation()
        mutate(body)
        response = await client.post("/v1/transcripts", json=body, headers=tenant.headers("ingest"))
        assert response.status_code == 422, (path, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert path in [e["path"] for e in response.json()["errors"]], (path, response.json())
    assert await _count(tenant) == before


async def test_future_timestamps_beyond_the_skew_are_refused(client, tenant):
    body = conversation(started_at="2030-01-01T00:00:00Z", ended_at="2030-01-01T00:30:00Z")
    for i, message in enumerate(body["messages"]):
        message["at"] = f"2030-01-01T00:0{i + 1}:00Z"
    response = await client.post("/v1/transcripts", json=body, headers=tenant.headers("ingest"))
    assert response.status_code == 422
    paths = {e["path"] for e in response.json()["errors"]}
    assert {"started_at", "ended_at", "messages[0].at"} <= paths


async def test_malformed_json_and_invalid_utf8_are_400(client, tenant):
    for content in (b'{"external_id": ', b'{"external_id": "\xff\xfe"}', b"[1, 2, 3"):
        response = await _post_raw(client, tenant, content)
        assert response.status_code == 400, response.text
        assert response.json()["type"] == "/problems/malformed-request"


async def test_limits_are_413_naming_the_field(client, tenant, settings):
    too_many = {"conversations": [conversation() for _ in range(settings.max_batch + 1)]}
    response = await client.post("/v1/transcripts", json=too_many, headers=tenant.headers("ingest"))
    assert response.status_code == 413
    assert response.json()["errors"][0]["path"] == "conversations"

    long_text = conversation(None, "x" * (settings.max_message_chars + 1))
    response = await client.post("/v1/transcripts", json=long_text, headers=tenant.headers("ingest"))
    assert response.status_code == 422
    assert response.json()["errors"][0]["path"] == "messages[0].text"

    oversized = b'{"pad": "' + b"x" * (settings.max_body_bytes + 10) + b'"}'
    response = await _post_raw(client, tenant, oversized)
    assert response.status_code == 413
    assert "PARLEY_MAX_BODY_BYTES" in response.json()["detail"]


async def test_failed_requests_leave_the_ledger_unchanged(client, tenant):
    before = await _count(tenant)
    await _post_raw(client, tenant, b"not json")
    await client.post("/v1/transcripts", json={"conversations": []}, headers=tenant.headers("ingest"))
    assert await _count(tenant) == before


async def test_concurrent_ingests_of_one_external_id_produce_one_conversation(client, tenant):
    body = conversation("race-1")
    responses = await asyncio.gather(
        *[client.post("/v1/transcripts", json=body, headers=tenant.headers("ingest")) for _ in range(8)]
    )
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 7 + [201], [r.text for r in responses if r.status_code >= 300]
    assert len({r.json()["id"] for r in responses}) == 1
    assert (await _count(tenant))[0] == 1


async def test_read_returns_redacted_conversation_and_is_ledgered(client, tenant):
    body = conversation(None, "kort 4111-1111-1111-1111, fnr 15076500565, mail ola@example.no, ring +47 912 34 567")
    created = (await client.post("/v1/transcripts", json=body, headers=tenant.headers("ingest"))).json()
    response = await client.get(f"/v1/transcripts/{created['id']}", headers=tenant.headers("compliance"))
    assert response.status_code == 200
    read = response.json()
    assert read["messages"][0]["text"] == "kort 4111-11**-****-1111, fnr [national-id], mail [email], ring [phone]"
    assert read["content_sha256"] == created["content_sha256"]
    assert read["visitor"]["email"] == "ola@example.no"  # identity fields are encrypted, not redacted
    entries = await LedgerEntry.select().where((LedgerEntry.tenant == tenant.id) & (LedgerEntry.action == "read"))
    assert [e["subject"] for e in entries] == [created["id"]]
