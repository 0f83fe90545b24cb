"""Rescan what is stored: conversations archived under weaker detectors are redacted again,
re-encrypted under a fresh key, re-indexed and ledgered — resumably, one rescan at a time."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
from collections import Counter
from typing import Any, Sequence
from uuid import UUID

import httpx
import msgspec
import pytest

from archive import db, ingest, rescan, transcripts
from archive.crypto import DecryptionError
from archive.db import json_column
from archive.models import Message
from archive.search import indexing
from archive.tables import Conversation, ConversationKey, ConversationRevision, LedgerEntry
from archive.tenancy import tenant_context
from tests.factories import conversation
from tests.servers import PARLEY, Deployment

CARD = "5200 8282 8282 8210"
CARD_DIGITS = "5200828282828210"
# Spellings a searcher would try (the last four digits stay visible by design: PCI DSS 3.4).
CARD_SPELLINGS = ["5200828282828210", "5200 8282 8282 8210", "82828282", "8282"]


def _no_redaction(options: Any, language: str | None, messages: Sequence[Message], metadata: Any) -> ingest.Redacted:
    return ingest.Redacted(list(messages), dict(metadata), {})


async def _archive_unredacted(client: Any, tenant: Any, monkeypatch: pytest.MonkeyPatch, body: dict[str, Any],
                              params: dict[str, str] | None = None) -> str:
    """Archive as a Parley whose detectors missed everything would have (the past being repaired)."""
    with monkeypatch.context() as patched:
        patched.setattr(ingest, "redact_content", _no_redaction)
        created = await client.post("/v1/transcripts", json=body, params=params or {}, headers=tenant.headers("ingest"))
    assert created.status_code in (200, 201), created.text
    return str(created.json()["id"])


async def _archive(client: Any, tenant: Any, body: dict[str, Any]) -> str:
    created = await client.post("/v1/transcripts", json=body, headers=tenant.headers("ingest"))
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


async def _rescan(runtime: Any, client: Any, tenant: Any, **body: Any) -> dict[str, Any]:
    """Request a rescan over HTTP, let the job run it, and return its final state."""
    created = await client.post("/v1/redaction/rescans", json=body, headers=tenant.headers("admin"))
    assert created.status_code == 202, created.text
    assert created.json()["status"] == "queued"
    await rescan.run(runtime, created.json()["id"], batch=2)
    done = await client.get(f"/v1/redaction/rescans/{created.json()['id']}", headers=tenant.headers("admin"))
    assert done.status_code == 200, done.text
    return dict(done.json())


async def _stored(cid: str) -> tuple[dict[str, Any], dict[str, Any]]:
    row = await Conversation.select().where(Conversation.id == cid).first()
    key = await ConversationKey.select().where(ConversationKey.conversation == cid).first()
    assert row is not None and key is not None
    return row, key


async def _plaintext(runtime: Any, tenant: Any, cid: str) -> str:
    """Decrypt the stored row with the stored key, as anyone holding the database and the keys could."""
    row, key = await _stored(cid)
    ctx = await tenant_context(runtime, tenant.id)
    return ctx.crypto.open(row["id"], row["ciphertext"], key["wrapped_key"], key["master_version"]).decode()


async def _rescan_entries(tenant: Any) -> list[dict[str, Any]]:
    return list(await LedgerEntry.select().where((LedgerEntry.tenant == tenant.id) & (LedgerEntry.action == rescan.ACTION)))


async def _hits(client: Any, tenant: Any, q: str) -> int:
    found = await client.post("/v1/search", json={"q": q}, headers=tenant.headers("compliance"))
    assert found.status_code == 200, found.text
    return int(found.json()["total"])


async def test_a_card_stored_whole_is_masked_in_storage_and_no_longer_decryptable(client, tenant, runtime, monkeypatch):
    cid = await _archive_unredacted(client, tenant, monkeypatch, conversation(None, f"kortet mitt er {CARD}", "takk"))
    assert CARD in await _plaintext(runtime, tenant, cid)  # the breach being repaired
    old_row, old_key = await _stored(cid)

    report = await _rescan(runtime, client, tenant)

    assert report["status"] == "done" and report["changed"] == 1 and report["redactions"] == {"card": 1}
    stored = await _plaintext(runtime, tenant, cid)
    assert CARD not in stored and CARD_DIGITS not in stored.replace(" ", "")
    assert "5200 82** **** 8210" in stored
    row, key = await _stored(cid)
    assert key["wrapped_key"] != old_key["wrapped_key"]
    assert not await ConversationKey.exists().where(ConversationKey.wrapped_key == old_key["wrapped_key"])
    ctx = await tenant_context(runtime, tenant.id)
    with pytest.raises(DecryptionError):  # a copy of the old ciphertext opens with nothing stored now
        ctx.crypto.open(row["id"], old_row["ciphertext"], key["wrapped_key"], key["master_version"])
    read = await client.get(f"/v1/transcripts/{cid}", headers=tenant.headers("compliance"))
    assert read.json()["messages"][0]["text"] == "kortet mitt er 5200 82** **** 8210"
    assert read.json()["redactions"] == {"card": 1} and read.json()["content_sha256"] == row["content_sha256"] != old_row["content_sha256"]


async def test_a_rescanned_card_is_not_findable_by_search(client, tenant, runtime, search_backend, monkeypatch):
    cid = await _archive_unredacted(client, tenant, monkeypatch, conversation(None, f"kortet er {CARD} markerrescan", "takk"))
    await indexing.drain_all(runtime)
    assert [s for s in CARD_SPELLINGS if await _hits(client, tenant, s)]  # findable while stored whole

    await _rescan(runtime, client, tenant)
    await indexing.drain_all(runtime)

    assert await _hits(client, tenant, "markerrescan") == 1  # still indexed, as rewritten
    for spelling in CARD_SPELLINGS:
        assert await _hits(client, tenant, spelling) == 0, spelling
    assert cid


async def test_each_rewrite_is_ledgered_with_counts_per_kind_and_never_the_values(client, tenant, runtime, monkeypatch):
    text = f"kort {CARD}, konto NO93 8601 1117 947, mail kari.nordmann@example.no"
    cid = await _archive_unredacted(client, tenant, monkeypatch, conversation(None, text, "takk"))
    old_row, _ = await _stored(cid)

    report = await _rescan(runtime, client, tenant)

    entries = await _rescan_entries(tenant)
    assert [e["subject"] for e in entries] == [cid]
    details = json_column(entries[0]["details"])
    assert details["redactions"] == {"card": 1, "email": 1, "iban": 1} == report["redactions"]
    assert details["previous_content_hash"] == old_row["content_sha256"] and details["rescan"] == report["id"]
    written = json.dumps(details) + entries[0]["content_hash"]
    for value in ("8282", "86011117947", "1117", "kari.nordmann", "example.no"):
        # As a value of its own, not four digits that a random hash happens to contain ("…ab11171d…").
        assert re.search(rf"(?<![0-9a-z]){re.escape(value)}(?![0-9a-z])", written) is None, value
    verified = await client.get("/v1/audit/verify", headers=tenant.headers("compliance"))
    assert verified.status_code == 200 and verified.json()["ok"], verified.text


async def test_a_dry_run_reports_per_kind_what_would_change_and_changes_nothing(client, tenant, runtime, monkeypatch):
    cid = await _archive_unredacted(client, tenant, monkeypatch, conversation(None, f"kortet er {CARD}", "ring +47 912 34 567"))
    before = await _stored(cid)

    report = await _rescan(runtime, client, tenant, dry_run=True)

    assert report["dry_run"] and report["status"] == "done"
    assert report["changed"] == 1 and report["scanned"] == 1 and report["redactions"] == {"card": 1, "phone": 1}
    assert await _stored(cid) == before
    assert await _rescan_entries(tenant) == []
    assert CARD in await _plaintext(runtime, tenant, cid)


async def test_conversations_that_do_not_change_are_left_untouched(client, tenant, runtime, monkeypatch):
    clean = await _archive(client, tenant, conversation(None, f"kortet er {CARD}", "order #2026-118-5567 ships 24/11/2026"))
    dirty = await _archive_unredacted(client, tenant, monkeypatch, conversation(None, f"kortet er {CARD}", "takk"))
    before = await _stored(clean)

    report = await _rescan(runtime, client, tenant)

    assert report["scanned"] == 2 and report["changed"] == 1
    assert await _stored(clean) == before
    assert [e["subject"] for e in await _rescan_entries(tenant)] == [dirty]


async def test_earlier_revisions_are_rescanned_too(client, tenant, runtime, monkeypatch):
    first = conversation("rev-1", f"kortet er {CARD}", "takk")
    cid = await _archive_unredacted(client, tenant, monkeypatch, first)
    second = conversation("rev-1", f"kortet er {CARD}", "takk", "and my other card is 4111 1111 1111 1111")
    second["messages"][2]["at"] = "2026-11-01T10:03:00Z"
    assert await _archive_unredacted(client, tenant, monkeypatch, second, {"on_conflict": "revise"}) == cid
    old_revision = await ConversationRevision.select().where(ConversationRevision.conversation == cid).first()

    report = await _rescan(runtime, client, tenant)

    assert report["changed"] == 1 and report["revisions_changed"] == 1 and report["redactions"] == {"card": 3}
    headers = tenant.headers("compliance")
    one = (await client.get(f"/v1/transcripts/{cid}", params={"revision": 1}, headers=headers)).json()
    two = (await client.get(f"/v1/transcripts/{cid}", headers=headers)).json()
    assert one["revision"] == 1 and one["messages"][0]["text"] == "kortet er 5200 82** **** 8210"
    assert two["revision"] == 2 and two["messages"][2]["text"] == "and my other card is 4111 11** **** 1111"
    revision = await ConversationRevision.select().where(ConversationRevision.conversation == cid).first()
    assert revision["ciphertext"] != old_revision["ciphertext"] and revision["content_sha256"] != old_revision["content_sha256"]
    assert json_column(revision["redactions"]) == {"card": 1}
    details = json_column((await _rescan_entries(tenant))[0]["details"])
    assert details["revisions_changed"] == [1, 2]


async def test_a_detector_switched_on_later_fixes_what_was_archived_before(client, tenant, runtime):
    admin = tenant.headers("admin")
    settings = (await client.get("/v1/admin/settings", headers=admin)).json()
    assert (await client.put("/v1/admin/settings", json={**settings, "redact_email": False}, headers=admin)).status_code == 200
    cid = await _archive(client, tenant, conversation(None, "skriv til kari.nordmann@example.no", "takk"))
    assert (await client.put("/v1/admin/settings", json={**settings, "redact_email": True}, headers=admin)).status_code == 200

    report = await _rescan(runtime, client, tenant, since="2020-01-01")

    assert report["redactions"] == {"email": 1}
    assert "kari.nordmann" not in await _plaintext(runtime, tenant, cid)


async def test_the_visitors_survey_comment_is_rescanned_like_the_messages(client, tenant, runtime):
    admin = tenant.headers("admin")
    settings = (await client.get("/v1/admin/settings", headers=admin)).json()
    assert (await client.put("/v1/admin/settings", json={**settings, "redact_email": False}, headers=admin)).status_code == 200
    body = conversation(None, "hei", "takk")
    body["ratings"] = {"csat": 2, "comment": "svar meg på ola.nordmann@example.no"}
    cid = await _archive(client, tenant, body)
    assert (await client.put("/v1/admin/settings", json={**settings, "redact_email": True}, headers=admin)).status_code == 200

    report = await _rescan(runtime, client, tenant)

    assert report["changed"] == 1 and report["redactions"] == {"email": 1}
    assert "ola.nordmann" not in await _plaintext(runtime, tenant, cid)


async def test_since_limits_the_rescan_to_conversations_archived_from_that_day(client, tenant, runtime, monkeypatch):
    await _archive_unredacted(client, tenant, monkeypatch, conversation(None, f"kortet er {CARD}", "takk"))

    report = await _rescan(runtime, client, tenant, since="2999-01-01", dry_run=True)

    assert report["total"] == 0 and report["scanned"] == 0 and report["changed"] == 0


async def test_a_second_rescan_while_one_is_queued_is_refused_with_409(client, tenant, runtime):
    admin = tenant.headers("admin")
    first = await client.post("/v1/redaction/rescans", json={}, headers=admin)
    assert first.status_code == 202, first.text

    second = await client.post("/v1/redaction/rescans", json={"since": "2026-01-01"}, headers=admin)

    assert second.status_code == 409
    assert second.headers["content-type"].startswith("application/problem+json")
    assert second.json()["running_id"] == first.json()["id"] and "already" in second.json()["detail"]
    assert (await client.post("/v1/redaction/rescans", json={"dry_run": True}, headers=admin)).status_code == 202
    assert await rescan.run_pending(runtime) >= 1
    assert (await client.get(f"/v1/redaction/rescans/{first.json()['id']}", headers=admin)).json()["status"] == "done"
    third = await client.post("/v1/redaction/rescans", json={}, headers=admin)
    assert third.status_code == 202, third.text
    await rescan.run(runtime, third.json()["id"])


async def test_rescan_requests_are_validated_and_need_the_admin_role(client, tenant):
    bad = await client.post("/v1/redaction/rescans", json={"since": "last tuesday"}, headers=tenant.headers("admin"))
    assert bad.status_code == 422 and bad.json()["errors"][0]["path"] == "since"
    unknown = await client.post("/v1/redaction/rescans", json={"dry": True}, headers=tenant.headers("admin"))
    assert unknown.status_code in (400, 422)
    denied = await client.post("/v1/redaction/rescans", json={}, headers=tenant.headers("compliance"))
    assert denied.status_code == 403


async def test_a_rescan_is_not_visible_to_another_tenant(client, tenant, other_tenant, runtime):
    created = await client.post("/v1/redaction/rescans", json={"dry_run": True}, headers=tenant.headers("admin"))
    other = await client.get(f"/v1/redaction/rescans/{created.json()['id']}", headers=other_tenant.headers("admin"))
    assert other.status_code == 404
    await rescan.run(runtime, created.json()["id"])


async def test_a_rescan_stopped_half_way_resumes_from_its_cursor_with_exact_counts(client, tenant, runtime, monkeypatch):
    ids = [await _archive_unredacted(client, tenant, monkeypatch, conversation(None, f"kort {CARD}", "takk")) for _ in range(5)]
    created = await rescan.create(runtime, tenant.id, "test")
    partial = await rescan.run(runtime, created.id, batch=2, stop_after_batches=1)
    assert partial.status == "running" and partial.scanned == 2 and partial.changed == 2

    done = await rescan.run(runtime, created.id, batch=2)

    assert done.status == "done" and done.scanned == 5 and done.changed == 5 and done.redactions == {"card": 5}
    assert Counter(e["subject"] for e in await _rescan_entries(tenant)) == Counter(ids)



async def test_a_conversation_that_does_not_decrypt_is_counted_and_left_as_it_is(client, tenant, runtime, monkeypatch):
    tampered = await _archive_unredacted(client, tenant, monkeypatch, conversation(None, f"kortet er {CARD}", "takk"))
    fine = await _archive_unredacted(client, tenant, monkeypatch, conversation(None, f"kortet er {CARD}", "takk"))
    row, _ = await _stored(tampered)
    broken = bytes([row["ciphertext"][0] ^ 1]) + row["ciphertext"][1:]
    await Conversation.update({Conversation.ciphertext: broken}).where(Conversation.id == tampered)

    report = await _rescan(runtime, client, tenant)

    assert report["status"] == "done" and report["unreadable"] == 1 and report["changed"] == 1
    assert (await _stored(tampered))[0]["ciphertext"] == broken
    assert [e["subject"] for e in await _rescan_entries(tenant)] == [fine]


async def test_a_revision_archived_after_planning_is_never_overwritten_with_stale_text(client, tenant, runtime, monkeypatch):
    body = conversation("stale-1", f"kortet er {CARD}", "takk")
    cid = await _archive_unredacted(client, tenant, monkeypatch, body)
    ctx = await tenant_context(runtime, tenant.id)
    stale = rescan.plan_one(ctx, (await transcripts.fetch_sealed(ctx, [UUID(cid)]))[UUID(cid)])
    later = conversation("stale-1", f"kortet er {CARD}", "takk", "one more thing: 4111 1111 1111 1111")
    later["messages"][2]["at"] = "2026-11-01T10:03:00Z"
    await _archive_unredacted(client, tenant, monkeypatch, later, {"on_conflict": "revise"})

    async with db.write_transaction():
        applied = await rescan._rewrite(runtime, ctx, [stale], "test", UUID(int=1))

    assert [p.counts for p in applied] == [{"card": 3}]  # planned again: both revisions, all three cards
    latest = (await client.get(f"/v1/transcripts/{cid}", headers=tenant.headers("compliance"))).json()
    assert latest["revision"] == 2 and [m["text"] for m in latest["messages"]] == [
        "kortet er 5200 82** **** 8210", "takk", "one more thing: 4111 11** **** 1111",
    ]


async def test_revisions_archived_while_a_rescan_runs_stay_readable_and_redacted(client, tenant, runtime):
    admin, ingest_headers = tenant.headers("admin"), tenant.headers("ingest")
    settings = (await client.get("/v1/admin/settings", headers=admin)).json()
    await client.put("/v1/admin/settings", json={**settings, "redact_email": False}, headers=admin)
    batch = {"conversations": [conversation(f"race-{i}", f"skriv til kunde{i}@example.no", "takk") for i in range(12)]}
    created = await client.post("/v1/transcripts", json=batch, headers=ingest_headers)
    ids = [r["id"] for r in created.json()["results"]]
    await client.put("/v1/admin/settings", json={**settings, "redact_email": True}, headers=admin)
    run = await rescan.create(runtime, tenant.id, "test")

    async def revise() -> None:
        for i in range(12):
            later = conversation(f"race-{i}", f"skriv til kunde{i}@example.no", "takk", "en ting til")
            later["messages"][2]["at"] = "2026-11-01T10:03:00Z"
            revised = await client.post("/v1/transcripts", json=later, params={"on_conflict": "revise"}, headers=ingest_headers)
            assert revised.status_code in (200, 201), revised.text

    await asyncio.gather(rescan.run(runtime, run.id, batch=2), revise())

    for cid in ids:
        for revision in (1, 2):
            read = await client.get(f"/v1/transcripts/{cid}", params={"revision": revision}, headers=tenant.headers("compliance"))
            assert read.status_code == 200, read.text
            assert read.json()["messages"][0]["text"] == "skriv til [email]"

# --- kill -9 ------------------------------------------------------------------------------------

CONVERSATIONS = 120


@pytest.fixture
async def deployment(tmp_path):
    deployed = Deployment(tmp_path / "deployment", scheduler=False)
    await deployed.create()
    try:
        yield deployed
    finally:
        await deployed.drop()


def _batch(start: int) -> dict[str, Any]:
    return {"conversations": [conversation(f"kill-{i}", f"skriv til kunde{i}@example.no", "takk") for i in range(start, start + 40)]}


async def test_a_rescan_killed_with_kill_9_resumes_and_rewrites_each_conversation_exactly_once(deployment):
    keys = await deployment.tenant("acme")
    admin, ingest_key = {"Authorization": f"Bearer {keys['admin']}"}, {"Authorization": f"Bearer {keys['ingest']}"}
    await deployment.start()
    async with httpx.AsyncClient(base_url=deployment.url, timeout=30) as http:
        settings = (await http.get("/v1/admin/settings", headers=admin)).json()
        assert (await http.put("/v1/admin/settings", json={**settings, "redact_email": False}, headers=admin)).status_code == 200
        for start in range(0, CONVERSATIONS, 40):
            assert (await http.post("/v1/transcripts", json=_batch(start), headers=ingest_key)).status_code == 201
        assert (await http.put("/v1/admin/settings", json={**settings, "redact_email": True}, headers=admin)).status_code == 200
    deployment.kill()

    command = [PARLEY, "redaction", "rescan", "--tenant", "acme", "--batch-size", "5"]
    process = await asyncio.create_subprocess_exec(
        *command, env=deployment.env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE, start_new_session=True,
    )
    assert process.stderr is not None
    first = (await process.stderr.readline()).decode()  # a batch has committed
    os.killpg(process.pid, signal.SIGKILL)
    await process.wait()
    assert "scanned" in first, first
    [(status, changed)] = await deployment.sql("SELECT status, changed FROM redaction_rescan")
    assert status == "running" and 0 < changed < CONVERSATIONS  # killed half-way

    resumed = await deployment.cli("redaction", "rescan", "--tenant", "acme", "--batch-size", "5", "--json")

    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stderr
    runs = msgspec.json.decode(resumed.stdout)["acme"]
    assert [(r["status"], r["changed"], r["scanned"]) for r in runs] == [("done", CONVERSATIONS, CONVERSATIONS)]
    assert runs[0]["redactions"] == {"email": CONVERSATIONS}
    rewritten = await deployment.sql("SELECT subject, COUNT(*) FROM ledger_entry WHERE action = $1 GROUP BY subject", rescan.ACTION)
    assert len(rewritten) == CONVERSATIONS and {n for _, n in rewritten} == {1}
    await deployment.start()
    async with httpx.AsyncClient(base_url=deployment.url, timeout=30) as http:
        compliance = {"Authorization": f"Bearer {keys['compliance']}"}
        for subject, _ in rewritten:
            text = (await http.get(f"/v1/transcripts/{subject}", headers=compliance)).json()["messages"][0]["text"]
            assert text == "skriv til [email]", text
        verified = await http.get("/v1/audit/verify", headers=compliance)
        assert verified.json()["ok"], verified.text
    assert await deployment.sql("SELECT COUNT(*) FROM redaction_rescan WHERE active IS NOT NULL") == [(0,)]


async def test_the_cli_dry_run_prints_what_would_change(deployment):
    await deployment.tenant("acme")

    result = await deployment.cli("redaction", "rescan", "--dry-run")

    assert result.returncode == 0, result.stderr
    assert "acme: rescan" in result.stdout and "would change 0 conversation(s)" in result.stdout
    assert await deployment.sql("SELECT dry_run, status FROM redaction_rescan") in ([(1, "done")], [(True, "done")])
