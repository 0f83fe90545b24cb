"""The ledger: every action recorded, any tampering found and named by its seq."""

from __future__ import annotations

from archive import ledger
from archive.tables import LedgerEntry, LedgerHead
from tests.cli import run_cli
from tests.factories import conversation


async def _ingest(client, tenant, n: int = 3) -> list[str]:
    ids = []
    for _ in range(n):
        response = await client.post("/v1/transcripts", json=conversation(), headers=tenant.headers("ingest"))
        ids.append(response.json()["id"])
    return ids


async def _verify(client, tenant) -> dict:
    response = await client.get("/v1/audit/verify", headers=tenant.headers("compliance"))
    assert response.status_code == 200
    return response.json()


async def _entry(tenant, seq: int) -> dict:
    return await LedgerEntry.select().where((LedgerEntry.tenant == tenant.id) & (LedgerEntry.seq == seq)).first()


async def test_untouched_ledger_verifies(client, tenant):
    await _ingest(client, tenant)
    report = await _verify(client, tenant)
    assert report["ok"] is True and report["first_bad_seq"] is None
    assert report["entries_checked"] == report["head_seq"] == 4  # tenant.create + 3 ingests


async def test_edited_entry_is_named(client, tenant):
    await _ingest(client, tenant)
    await LedgerEntry.update({LedgerEntry.actor: "key:someone-else"}).where(
        (LedgerEntry.tenant == tenant.id) & (LedgerEntry.seq == 3)
    )
    report = await _verify(client, tenant)
    assert report["ok"] is False and report["first_bad_seq"] == 3
    assert "altered" in report["problem"]


async def test_edited_details_are_named(client, tenant):
    await _ingest(client, tenant)
    await LedgerEntry.update({LedgerEntry.details: '{"external_id": "forged"}'}).where(
        (LedgerEntry.tenant == tenant.id) & (LedgerEntry.seq == 2)
    )
    assert (await _verify(client, tenant))["first_bad_seq"] == 2


async def test_deleted_entry_is_named(client, tenant):
    await _ingest(client, tenant)
    await LedgerEntry.delete().where((LedgerEntry.tenant == tenant.id) & (LedgerEntry.seq == 2))
    report = await _verify(client, tenant)
    assert report["first_bad_seq"] == 2 and "missing" in report["problem"]


async def test_reordered_entries_are_named(client, tenant):
    await _ingest(client, tenant)
    second, third = await _entry(tenant, 2), await _entry(tenant, 3)
    # Swap the two rows' contents while keeping their seq numbers.
    for target, source in ((2, third), (3, second)):
        await LedgerEntry.update(
            {LedgerEntry.subject: source["subject"], LedgerEntry.content_hash: source["content_hash"],
             LedgerEntry.hash: source["hash"], LedgerEntry.prev_hash: source["prev_hash"]}
        ).where((LedgerEntry.tenant == tenant.id) & (LedgerEntry.seq == target))
    assert (await _verify(client, tenant))["first_bad_seq"] == 2


async def test_inserted_entry_is_named(client, tenant):
    await _ingest(client, tenant, 2)
    # Shift entry 3 up and slip a forged entry in at 3, chained to entry 2 as a forger would.
    await LedgerEntry.update({LedgerEntry.seq: 4}).where((LedgerEntry.tenant == tenant.id) & (LedgerEntry.seq == 3))
    second = await _entry(tenant, 2)
    forged = ledger.Entry(actor="key:forger", action="read", subject="x")
    at = second["at"]
    await LedgerEntry.insert(
        LedgerEntry(tenant=tenant.id, seq=3, at=at, actor=forged.actor, action=forged.action, subject=forged.subject,
                    content_hash="", details="{}", prev_hash=second["hash"],
                    hash=ledger.chain_hash(second["hash"], tenant.id, 3, at, forged))
    )
    assert (await _verify(client, tenant))["first_bad_seq"] == 4


async def test_truncated_tail_is_detected(client, tenant):
    await _ingest(client, tenant)
    await LedgerEntry.delete().where((LedgerEntry.tenant == tenant.id) & (LedgerEntry.seq == 4))
    report = await _verify(client, tenant)
    assert report["ok"] is False and report["first_bad_seq"] == 4 and "removed from the end" in report["problem"]


async def test_entries_appended_beyond_the_head_are_named_from_the_first_one(client, tenant):
    # Two properly chained entries added after the recorded head (or the head row set back from 6
    # to 4): nothing was removed; the first entry the head does not vouch for is 5.
    await _ingest(client, tenant, 5)
    fourth = await _entry(tenant, 4)
    await LedgerHead.update({LedgerHead.seq: 4, LedgerHead.hash: fourth["hash"]}).where(LedgerHead.tenant == tenant.id)
    report = await _verify(client, tenant)
    assert report["ok"] is False and report["first_bad_seq"] == 5
    assert report["problem"] == ("entries 5..6 lie beyond the recorded head (entry 4): "
                                 "they were added outside the ledger, or the head row was set back")


async def test_an_altered_or_missing_head_row_is_named_as_such(client, tenant):
    await _ingest(client, tenant)
    await LedgerHead.update({LedgerHead.hash: "0" * 64}).where(LedgerHead.tenant == tenant.id)
    altered = await _verify(client, tenant)
    assert (altered["first_bad_seq"], altered["problem"]) == (4, "the head row's hash differs from entry 4: the head row was altered")
    await LedgerHead.delete().where(LedgerHead.tenant == tenant.id)
    missing = await _verify(client, tenant)
    assert missing["ok"] is False and "head row is missing" in missing["problem"] and "removed" not in missing["problem"]


async def test_truncation_with_a_rewritten_head_is_caught_by_the_signed_checkpoint(client, tenant):
    await _ingest(client, tenant)
    checkpoint = await client.post("/v1/audit/checkpoints", headers=tenant.headers("admin"))
    assert checkpoint.status_code == 200 and checkpoint.json()["seq"] == 4
    third = await _entry(tenant, 3)
    await LedgerEntry.delete().where((LedgerEntry.tenant == tenant.id) & (LedgerEntry.seq == 4))
    await LedgerHead.update({LedgerHead.seq: 3, LedgerHead.hash: third["hash"]}).where(LedgerHead.tenant == tenant.id)
    report = await _verify(client, tenant)
    assert report["ok"] is False and report["first_bad_seq"] == 4
    assert "checkpoint" in report["problem"]


async def test_checkpoints_are_signed_and_verified(client, tenant):
    await _ingest(client, tenant, 1)
    await client.post("/v1/audit/checkpoints", headers=tenant.headers("admin"))
    await _ingest(client, tenant, 1)
    await client.post("/v1/audit/checkpoints", headers=tenant.headers("admin"))
    report = await _verify(client, tenant)
    assert report["ok"] and report["checkpoints_verified"] == 2
    keys = (await client.get("/v1/audit/public-key")).json()
    assert keys["algorithm"] == "Ed25519" and len(keys["keys"][str(keys["active_version"])]) == 64


async def test_cli_verify_fails_and_names_the_edited_row(client, tenant):
    await _ingest(client, tenant)
    ok = await run_cli("ledger", "verify", "--tenant", tenant.slug)
    assert ok.returncode == 0 and "ok" in ok.stdout
    await LedgerEntry.update({LedgerEntry.action: "noop"}).where((LedgerEntry.tenant == tenant.id) & (LedgerEntry.seq == 2))
    bad = await run_cli("ledger", "verify", "--tenant", tenant.slug)
    assert bad.returncode == 1
    assert "first bad seq 2" in bad.stdout


async def test_audit_pages_through_entries_with_filters(client, tenant):
    ids = await _ingest(client, tenant, 3)
    await client.get(f"/v1/transcripts/{ids[0]}", headers=tenant.headers("compliance"))
    headers = tenant.headers("compliance")
    reads = (await client.get("/v1/audit", params={"action": "read"}, headers=headers)).json()
    assert [(e["action"], e["subject"]) for e in reads] == [("read", ids[0])]
    page1 = (await client.get("/v1/audit", params={"limit": 2}, headers=headers)).json()
    page2 = (await client.get("/v1/audit", params={"limit": 2, "after_seq": page1[-1]["seq"]}, headers=headers)).json()
    assert [e["seq"] for e in page1 + page2] == [1, 2, 3, 4]
    by_actor = (await client.get("/v1/audit", params={"actor": f"key:{tenant.keys['ingest'].prefix}"}, headers=headers)).json()
    assert {e["action"] for e in by_actor} == {"ingest"} and len(by_actor) == 3
    bad = await client.get("/v1/audit", params={"limit": 0}, headers=headers)
    assert bad.status_code == 400 and bad.json()["errors"][0]["path"] == "limit"
