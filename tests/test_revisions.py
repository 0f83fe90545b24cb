"""Revisions instead of 409: a conversation archived again with other content, when asked for, is
its next revision — the latest is what reads and search show, every revision stays readable,
retention counts from the last end, holds and exports cover all of them, deletion removes all."""

from __future__ import annotations

import json
import zipfile
from datetime import datetime, timedelta, timezone

import pytest

from archive import revisions
from archive.crypto import DecryptionError
from archive.search import indexing
from archive.tables import Conversation, ConversationKey, ConversationRevision, LedgerEntry
from retention import exports, sweep
from tests.factories import conversation

ENDED = datetime(2025, 6, 1, 10, 30, tzinfo=timezone.utc)


def version(external_id: str, *texts: str, day: str = "2025-06-01", end: str = "10:30") -> dict:
    body = conversation(external_id, *texts, started_at=f"{day}T10:00:00Z", ended_at=f"{day}T{end}:00Z")
    for i, message in enumerate(body["messages"]):
        message["at"] = f"{day}T10:{i + 1:02d}:00Z"
    return body


async def post(client, tenant, body, **params):
    return await client.post("/v1/transcripts", json=body, params=params, headers=tenant.headers("ingest"))


async def archived_twice(client, tenant, external_id="rev-1"):
    first = await post(client, tenant, version(external_id, "Min faktura er feil", "Jeg ser på det"))
    assert first.status_code == 201
    later = version(external_id, "Min faktura er feil", "Jeg ser på det", "Jeg åpner saken igjen: purring", end="10:45")
    second = await post(client, tenant, later, on_conflict="revise")
    assert second.status_code == 201, second.text
    return first.json(), second.json()


async def read(client, tenant, conversation_id, **params):
    return await client.get(f"/v1/transcripts/{conversation_id}", params=params, headers=tenant.headers("compliance"))


async def test_other_content_under_an_archived_external_id_is_still_refused_by_default(client, tenant):
    await post(client, tenant, version("c-409", "hello"))
    refused = await post(client, tenant, version("c-409", "hello, edited"))
    assert refused.status_code == 409 and "on_conflict=revise" in refused.json()["detail"]


async def test_asking_for_a_revision_archives_the_new_content_as_revision_2_of_the_same_conversation(client, tenant):
    first, second = await archived_twice(client, tenant)
    assert (second["id"], second["status"], second["revision"]) == (first["id"], "revised", 2)
    latest = (await read(client, tenant, first["id"])).json()
    assert (latest["revision"], latest["revisions"], len(latest["messages"])) == (2, 2, 3)
    assert latest["content_sha256"] == second["content_sha256"]


async def test_every_revision_stays_readable(client, tenant):
    first, second = await archived_twice(client, tenant)
    original = (await read(client, tenant, first["id"], revision=1)).json()
    assert (original["revision"], len(original["messages"]), original["content_sha256"]) == (1, 2, first["content_sha256"])
    listed = (await client.get(f"/v1/transcripts/{first['id']}/revisions", headers=tenant.headers("compliance"))).json()
    assert [(r["revision"], r["message_count"], r["latest"]) for r in listed["revisions"]] == [(1, 2, False), (2, 3, True)]
    assert (await read(client, tenant, first["id"], revision=3)).status_code == 404
    assert (await read(client, tenant, first["id"], revision=0)).status_code == 400


async def test_the_same_content_again_is_the_existing_revision_not_a_new_one(client, tenant):
    first, second = await archived_twice(client, tenant)
    again = await post(client, tenant, version("rev-1", "Min faktura er feil", "Jeg ser på det"), on_conflict="revise")
    assert again.status_code == 200 and (again.json()["status"], again.json()["revision"]) == ("existing", 1)
    assert await ConversationRevision.count().where(ConversationRevision.conversation == first["id"]) == 1


async def test_the_ledger_records_each_revision_with_the_hash_it_replaced(client, tenant):
    first, second = await archived_twice(client, tenant)
    [entry] = await LedgerEntry.select().where((LedgerEntry.tenant == tenant.id) & (LedgerEntry.action == "ingest.revision"))
    details = json.loads(entry["details"]) if isinstance(entry["details"], str) else entry["details"]
    assert (entry["subject"], entry["content_hash"]) == (first["id"], second["content_sha256"])
    assert (details["revision"], details["previous_content_hash"]) == (2, first["content_sha256"])


async def test_search_shows_the_latest_revision(client, tenant, runtime):
    first, _ = await archived_twice(client, tenant)
    await indexing.drain_all(runtime)
    found = await client.post("/v1/search", json={"q": "purring"}, headers=tenant.headers("compliance"))
    assert [h["id"] for h in found.json()["hits"]] == [first["id"]]


async def test_retention_counts_from_the_end_of_the_last_revision(client, tenant):
    assert (await client.put("/v1/retention/policies", json={"default": {"days": 30}}, headers=tenant.headers("compliance"))).status_code == 200
    first, _ = await archived_twice(client, tenant)
    row = await Conversation.select(Conversation.retain_until).where(Conversation.id == first["id"]).first()
    assert row["retain_until"] == ENDED + timedelta(minutes=15) + timedelta(days=30)


async def test_a_hold_keeps_every_revision_through_a_sweep(client, tenant, runtime):
    assert (await client.put("/v1/retention/policies", json={"default": {"days": 1}}, headers=tenant.headers("compliance"))).status_code == 200
    first, _ = await archived_twice(client, tenant, "held-1")
    hold = await client.post("/v1/holds", json={"name": "case-1", "reason": "litigation", "criteria": {"filters": {"site": "shop"}}},
                             headers=tenant.headers("compliance"))
    assert hold.status_code == 201, hold.text
    await sweep.sweep_tenant(runtime, tenant.id)
    assert await ConversationRevision.count().where(ConversationRevision.conversation == first["id"]) == 1
    assert (await read(client, tenant, first["id"], revision=1)).status_code == 200


async def test_deleting_a_conversation_deletes_and_shreds_every_revision(client, tenant, runtime):
    assert (await client.put("/v1/retention/policies", json={"default": {"days": 1}}, headers=tenant.headers("compliance"))).status_code == 200
    first, _ = await archived_twice(client, tenant, "gone-1")
    report = await sweep.sweep_tenant(runtime, tenant.id)
    assert report.deleted == 1
    assert await ConversationRevision.count().where(ConversationRevision.conversation == first["id"]) == 0
    assert await ConversationKey.count().where(ConversationKey.conversation == first["id"]) == 0


async def test_a_revision_moved_to_another_revisions_place_does_not_decrypt(client, tenant, runtime):
    first, _ = await archived_twice(client, tenant)
    third = version("rev-1", "Min faktura er feil", "Jeg ser på det", "purring", "fortsatt feil", end="10:50")
    assert (await post(client, tenant, third, on_conflict="revise")).json()["revision"] == 3
    rows = {r["revision"]: r for r in await ConversationRevision.select().where(ConversationRevision.conversation == first["id"])}
    ctx = await runtime.tenants.context(tenant.id)
    key = await revisions.key_of(tenant.id, rows[1]["conversation"])
    with pytest.raises(DecryptionError):
        revisions.open_earlier(ctx, key, {**rows[2], "ciphertext": rows[1]["ciphertext"]})
    latest = await Conversation.select(Conversation.ciphertext).where(Conversation.id == first["id"]).first()
    with pytest.raises(DecryptionError):
        revisions.open_earlier(ctx, key, {**rows[2], "ciphertext": latest["ciphertext"]})


@pytest.mark.parametrize("fmt", ["jsonl", "eml"])
async def test_exports_hold_every_revision(client, tenant, runtime, tmp_path, fmt):
    first, _ = await archived_twice(client, tenant, "exported-1")
    await indexing.drain_all(runtime)
    created = await client.post("/v1/exports", json={"q": "purring", "format": fmt}, headers=tenant.headers("compliance"))
    await exports.run_pending(runtime, tenant_id=tenant.id)
    download = await client.get(f"/v1/exports/{created.json()['id']}/download", headers=tenant.headers("compliance"))
    path = tmp_path / "export.zip"
    path.write_bytes(download.content)
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        assert (manifest["count"], manifest["revisions"]) == (1, 2)
        if fmt == "jsonl":
            [line] = [json.loads(x) for x in archive.read("transcripts.jsonl").splitlines()]
            assert line["revision"] == 2 and [r["revision"] for r in line["earlier_revisions"]] == [1]
            assert len(line["earlier_revisions"][0]["messages"]) == 2
        else:
            names = sorted(n for n in archive.namelist() if n.endswith(".eml"))
            assert len(names) == 2 and any(n.endswith(".r1.eml") for n in names)
            assert b"X-Parley-Revision: 1" in archive.read(next(n for n in names if n.endswith(".r1.eml")))


async def test_a_batch_may_revise_some_conversations_and_create_others(client, tenant):
    await post(client, tenant, version("b-1", "first"))
    batch = {"conversations": [version("b-1", "first", "second"), version("b-2", "new")]}
    response = await post(client, tenant, batch, on_conflict="revise")
    assert response.status_code == 201
    assert [(r["status"], r["revision"]) for r in response.json()["results"]] == [("revised", 2), ("created", 1)]


async def test_an_unknown_on_conflict_value_is_refused_naming_the_parameter(client, tenant):
    response = await post(client, tenant, version("p-1", "x"), on_conflict="overwrite")
    assert response.status_code == 400 and response.json()["errors"][0]["path"] == "on_conflict"
