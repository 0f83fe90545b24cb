"""What real conversations hold, accepted by ingest: attachment-only messages, events without
words, internal notes, several agents with e-mail — kept, marked, and file names searchable."""

from __future__ import annotations

import json

from archive.search import indexing
from tests.factories import conversation


def rich(external_id: str, **changes) -> dict:
    body = conversation(external_id, "Hei, se vedlegget", "Takk, jeg ser på det")
    body["agents"] = [{"id": "a-1", "name": "Kari", "email": "kari@support.example"}, {"id": "a-2", "name": "Ola", "email": "ola@support.example"}]
    body["messages"] += [
        {"at": "2026-11-01T10:03:00Z", "sender": {"role": "visitor", "id": "visitor-1"},
         "attachments": [{"name": "kvittering-mars.pdf", "content_type": "application/pdf", "size": 1234}]},
        {"at": "2026-11-01T10:04:00Z", "sender": {"role": "agent", "id": "a-1"}, "kind": "note", "text": "Kunden er VIP"},
        {"at": "2026-11-01T10:05:00Z", "sender": {"role": "system"}, "kind": "event", "event": "transfer"},
        {"at": "2026-11-01T10:06:00Z", "sender": {"role": "agent", "id": "a-2"}, "text": "Hei, Ola her"},
    ]
    body.update(changes)
    return body


async def test_attachment_only_messages_events_without_words_and_notes_are_archived_and_marked(client, tenant):
    created = await client.post("/v1/transcripts", json=rich("m-1"), headers=tenant.headers("ingest"))
    assert created.status_code == 201, created.text
    read = (await client.get(f"/v1/transcripts/{created.json()['id']}", headers=tenant.headers("compliance"))).json()
    kinds = [(m.get("kind", "message"), m.get("event"), m.get("text", "")) for m in read["messages"]]
    assert ("note", None, "Kunden er VIP") in kinds and ("event", "transfer", "") in kinds
    assert read["messages"][2]["attachments"] == [{"name": "kvittering-mars.pdf", "content_type": "application/pdf", "size": 1234}]
    assert [a["email"] for a in read["agents"]] == ["kari@support.example", "ola@support.example"]


async def test_a_message_with_no_words_no_file_and_no_event_is_still_refused(client, tenant):
    body = conversation("m-2")
    body["messages"].append({"at": "2026-11-01T10:05:00Z", "sender": {"role": "agent", "id": "agent-7"}, "kind": "note", "text": "  "})
    response = await client.post("/v1/transcripts", json=body, headers=tenant.headers("ingest"))
    assert response.status_code == 422 and response.json()["errors"][0]["path"] == "messages[2].text"


async def test_an_event_type_on_a_message_that_is_not_an_event_is_refused(client, tenant):
    body = conversation("m-3")
    body["messages"][0]["event"] = "close"
    response = await client.post("/v1/transcripts", json=body, headers=tenant.headers("ingest"))
    assert response.status_code == 422 and response.json()["errors"][0]["path"] == "messages[0].event"


async def test_file_names_are_searchable_as_words_of_their_message(client, tenant, runtime):
    await client.post("/v1/transcripts", json=rich("m-4"), headers=tenant.headers("ingest"))
    await indexing.drain_all(runtime)
    for query in ("kvittering-mars.pdf", "kvittering", "sender:visitor kvittering"):
        found = await client.post("/v1/search", json={"q": query}, headers=tenant.headers("compliance"))
        assert [h["external_id"] for h in found.json()["hits"]] == ["m-4"], query


async def test_a_card_number_in_a_file_name_is_redacted_before_it_is_stored_or_indexed(client, tenant, runtime):
    body = rich("m-5")
    body["messages"][2]["attachments"][0]["name"] = "kort 4111111111111111.png"
    body["messages"][2]["attachments"][0]["url"] = "https://files.example/u/kort%204111111111111111.png"
    created = await client.post("/v1/transcripts", json=body, headers=tenant.headers("ingest"))
    assert created.json()["redactions"]["card"] == 2
    read = (await client.get(f"/v1/transcripts/{created.json()['id']}", headers=tenant.headers("compliance"))).text
    assert "4111111111111111" not in read
    await indexing.drain_all(runtime)
    found = await client.post("/v1/search", json={"q": "4111111111111111"}, headers=tenant.headers("compliance"))
    assert found.json()["hits"] == []


async def test_conversations_without_the_new_fields_read_back_as_before(client, tenant):
    created = await client.post("/v1/transcripts", json=conversation("m-6"), headers=tenant.headers("ingest"))
    read = (await client.get(f"/v1/transcripts/{created.json()['id']}", headers=tenant.headers("compliance"))).json()
    assert set(read["messages"][0]) == {"at", "sender", "text"} and (read["revision"], read["revisions"]) == (1, 1)
    assert json.dumps(read).count("attachments") == 0
