"""Retention: policies decide retain_until, holds win, the sweep deletes crash-safely with
receipts, erasure restricts what it must keep, and exports verify offline."""

from __future__ import annotations

import io
import json
import uuid
import zipfile
from datetime import datetime, timedelta, timezone

import pytest

from archive import transcripts
from archive.search import indexing
from archive.tables import Conversation, ConversationKey, LedgerEntry
from retention import exports, policies, sweep
from tests.cli import run_cli
from tests.factories import conversation

OLD = "2025-06-01"


def old_conversation(external_id: str, *texts: str, day: str = OLD, **overrides) -> dict:
    body = conversation(external_id, *texts, started_at=f"{day}T10:00:00Z", ended_at=f"{day}T10:30:00Z", **overrides)
    for i, message in enumerate(body["messages"]):
        message["at"] = f"{day}T10:{i + 1:02d}:00Z"
    return body


async def _ingest(client, tenant, *bodies) -> dict[str, str]:
    response = await client.post("/v1/transcripts", json={"conversations": list(bodies)}, headers=tenant.headers("ingest"))
    assert response.status_code == 201, response.text
    return {r["external_id"]: r["id"] for r in response.json()["results"]}


async def _put_policy(client, tenant, body, role="compliance"):
    return await client.put("/v1/retention/policies", json=body, headers=tenant.headers(role))


async def test_the_issue_example_policy_is_accepted_and_sets_retain_until(client, tenant):
    body = {"default": {"days": 2555},
            "rules": [{"name": "web-chats", "match": {"channel": "web", "tags": ["marketing"]}, "days": 30},
                      {"name": "whatsapp", "match": {"channel": "whatsapp"}, "years": 7}],
            "floor": {"days": 1, "mode": "governance"}}
    response = await _put_policy(client, tenant, body)
    assert response.status_code == 200, response.text
    assert response.json()["version"] == 1
    ids = await _ingest(client, tenant, old_conversation("m", tags=["marketing"]), old_conversation("w", channel="whatsapp"),
                        old_conversation("d"))
    rows = {str(r["id"]): r["retain_until"] for r in await Conversation.select(Conversation.id, Conversation.retain_until).where(Conversation.tenant == tenant.id)}
    ended = datetime(2025, 6, 1, 10, 30, tzinfo=timezone.utc)
    assert rows[ids["m"]] == ended + timedelta(days=30)
    assert rows[ids["w"]] == ended.replace(year=2032)
    assert rows[ids["d"]] == ended + timedelta(days=2555)


@pytest.mark.parametrize("body,path,words", [
    ({"default": {"days": 30, "years": 1}}, "default", "exactly one"),
    ({"default": {}}, "default", "exactly one"),
    ({"default": {"days": 1}, "rules": [{"name": "a", "match": {}, "days": 1}, {"name": "b", "match": {"channel": "web"}, "days": 2}]}, "rules[1]", "can never apply"),
    ({"default": {"days": 1}, "rules": [{"name": "a", "match": {"channel": "web"}, "days": 1}, {"name": "a", "match": {"channel": "sms"}, "days": 2}]}, "rules[1].name", "duplicates"),
    ({"default": {"days": -5}}, "default.days", "positive"),
    ({"default": {"days": 1}, "floor": {"mode": "governance"}}, "floor", "exactly one"),
    ({"default": {"days": 1}, "floor": {"days": 1, "mode": "strict"}}, "floor.mode", ""),
])
async def test_invalid_or_ambiguous_policies_are_explained(client, tenant, body, path, words):
    response = await _put_policy(client, tenant, body)
    assert response.status_code == 422, response.text
    errors = response.json()["errors"]
    assert any(e["path"] == path and words in e["message"] for e in errors), errors


async def test_compliance_floor_can_never_be_lowered_or_removed(client, tenant):
    locked = {"default": {"years": 10}, "floor": {"years": 6, "mode": "compliance"}}
    assert (await _put_policy(client, tenant, locked, role="admin")).status_code == 200
    for attempt in ({"default": {"years": 10}, "floor": {"years": 5, "mode": "compliance"}},
                    {"default": {"years": 10}},
                    {"default": {"years": 10}, "floor": {"years": 6, "mode": "governance"}, "reason": "please"}):
        response = await _put_policy(client, tenant, attempt, role="admin")
        assert response.status_code == 422 and "compliance mode" in response.json()["detail"], response.text
    raised = {"default": {"years": 10}, "floor": {"years": 7, "mode": "compliance"}}
    assert (await _put_policy(client, tenant, raised, role="admin")).status_code == 200


async def test_governance_floor_changes_need_an_admin_and_a_ledgered_reason(client, tenant):
    await _put_policy(client, tenant, {"default": {"years": 1}, "floor": {"days": 90, "mode": "governance"}})
    lower = {"default": {"years": 1}, "floor": {"days": 30, "mode": "governance"}}
    assert (await _put_policy(client, tenant, lower)).status_code == 403
    assert (await _put_policy(client, tenant, lower, role="admin")).status_code == 422
    ok = await _put_policy(client, tenant, {**lower, "reason": "legal approved ticket LEG-7"}, role="admin")
    assert ok.status_code == 200
    entries = (await client.get("/v1/audit", params={"action": "policy.change"}, headers=tenant.headers("admin"))).json()
    assert entries[-1]["details"]["reason"] == "legal approved ticket LEG-7" and "→" in entries[-1]["details"]["floor_change"]


async def test_policy_changes_recompute_retain_until_in_the_background(client, tenant):
    ids = await _ingest(client, tenant, old_conversation("a"))
    await _put_policy(client, tenant, {"default": {"days": 10}})
    assert await policies.recompute(tenant.id) >= 1
    row = await Conversation.select(Conversation.retain_until, Conversation.policy_version).where(Conversation.id == uuid.UUID(ids["a"])).first()
    assert row["policy_version"] == 1 and row["retain_until"] == datetime(2025, 6, 11, 10, 30, tzinfo=timezone.utc)


async def _one_day_archive(client, tenant, runtime):
    await _put_policy(client, tenant, {"default": {"days": 1}})
    ids = await _ingest(
        client, tenant,
        old_conversation("keep-refund", "I want a refund and the invoice"),
        old_conversation("keep-visitor", "hello", visitor={"id": "v-123"}),
        old_conversation("gone-1", "nothing special here"),
        old_conversation("gone-2", "another chat", channel="email"),
        conversation("fresh", "this one ended recently", started_at=datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
                     ended_at=datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
                     messages=[{"at": datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"), "sender": {"role": "visitor"}, "text": "fresh"}]),
    )
    await indexing.drain_all(runtime)
    return ids


async def _hold(client, tenant, criteria, name="case-2026-114"):
    response = await client.post("/v1/holds", json={"name": name, "reason": "litigation", "criteria": criteria}, headers=tenant.headers("compliance"))
    assert response.status_code == 201, response.text
    return response.json()


async def test_preview_counts_and_holds_protect_exactly_their_matches(client, tenant, runtime):
    await _one_day_archive(client, tenant, runtime)
    await _hold(client, tenant, {"q": "refund AND invoice", "filters": {"site": "shop"}})
    await _hold(client, tenant, {"visitor_ids": ["v-123"]}, name="dsar-hold")
    preview = (await client.post("/v1/retention/preview", headers=tenant.headers("compliance"))).json()
    assert preview["dry_run"] is True and preview["expired"] == 4 and preview["held"] == 2
    assert preview["by_rule"] == {"default": 2}
    assert preview["protected_by_hold"] == {"case-2026-114": 1, "dsar-hold": 1}
    holds = (await client.get("/v1/holds", headers=tenant.headers("compliance"))).json()
    one = (await client.get(f"/v1/holds/{holds[0]['id']}", headers=tenant.headers("compliance"))).json()
    assert one["covers"] == 1 and one["criteria"]["q"] == "refund AND invoice"
    assert await Conversation.count().where(Conversation.tenant == tenant.id) == 5  # preview deleted nothing


async def test_sweep_deletes_everywhere_keeps_held_and_ledger_still_verifies(client, tenant, runtime, search_backend):
    ids = await _one_day_archive(client, tenant, runtime)
    await _hold(client, tenant, {"q": "refund AND invoice"})
    await _hold(client, tenant, {"visitor_ids": ["v-123"]}, name="dsar-hold")
    report = (await client.post("/v1/retention/sweep", headers=tenant.headers("admin"))).json()
    assert report["deleted"] == 2 and report["held"] == 2
    for gone in ("gone-1", "gone-2"):
        assert (await client.get(f"/v1/transcripts/{ids[gone]}", headers=tenant.headers("compliance"))).status_code == 404
        assert await ConversationKey.count().where(ConversationKey.conversation == uuid.UUID(ids[gone])) == 0
    for kept in ("keep-refund", "keep-visitor", "fresh"):
        assert (await client.get(f"/v1/transcripts/{ids[kept]}", headers=tenant.headers("compliance"))).status_code == 200
    found = await client.post("/v1/search", json={"q": "", "size": 100}, headers=tenant.headers("compliance"))
    assert {h["external_id"] for h in found.json()["hits"]} == {"keep-refund", "keep-visitor", "fresh"}
    assert found.json()["total"] == 3  # the index holds no entry for a deleted conversation
    receipts = (await client.get("/v1/audit", params={"action": "retention.delete"}, headers=tenant.headers("compliance"))).json()
    assert {r["subject"] for r in receipts} == {ids["gone-1"], ids["gone-2"]}
    assert all(r["content_hash"] and r["details"]["rule"] == "default" and "text" not in r["details"] for r in receipts)
    assert (await client.get("/v1/audit/verify", headers=tenant.headers("compliance"))).json()["ok"] is True


async def test_released_holds_stop_protecting(client, tenant, runtime):
    await _one_day_archive(client, tenant, runtime)
    hold = await _hold(client, tenant, {"visitor_ids": ["v-123"]})
    no_reason = await client.post(f"/v1/holds/{hold['id']}/release", json={}, headers=tenant.headers("compliance"))
    assert no_reason.status_code == 422
    released = await client.post(f"/v1/holds/{hold['id']}/release", json={"reason": "case closed"}, headers=tenant.headers("compliance"))
    assert released.status_code == 200 and released.json()["status"] == "released"
    report = await sweep.sweep_tenant(runtime, tenant.id)
    assert report.held == 0 and report.deleted == 4


async def test_a_sweep_killed_half_way_and_rerun_ends_in_the_same_state(client, tenant, runtime):
    await _put_policy(client, tenant, {"default": {"days": 1}})
    await _ingest(client, tenant, *[old_conversation(f"c{i}") for i in range(7)])
    first = await sweep.sweep_tenant(runtime, tenant.id, batch=3, stop_after_batches=1)  # "killed" after one batch
    assert first.deleted == 3 and await Conversation.count().where(Conversation.tenant == tenant.id) == 4
    assert await Conversation.count().where(Conversation.tenant == tenant.id) == await ConversationKey.count().where(ConversationKey.tenant == tenant.id)
    second = await sweep.sweep_tenant(runtime, tenant.id, batch=3)
    assert second.deleted == 4 and await Conversation.count().where(Conversation.tenant == tenant.id) == 0
    again = await sweep.sweep_tenant(runtime, tenant.id, batch=3)
    assert again.deleted == 0
    receipts = await LedgerEntry.count().where((LedgerEntry.tenant == tenant.id) & (LedgerEntry.action == "retention.delete"))
    assert receipts == 7


async def test_erasure_deletes_and_reports_held_conversations_as_restricted(client, tenant):
    ids = await _ingest(client, tenant,
                        old_conversation("e1", visitor={"id": "v-9", "email": "Ola@Example.no"}),
                        old_conversation("e2", visitor={"id": "v-9"}, tags=["dispute"]),
                        old_conversation("other", visitor={"id": "v-10"}))
    await _hold(client, tenant, {"filters": {"tag": "dispute"}}, name="dispute-hold")
    response = await client.post("/v1/erasure", json={"visitor_id": "v-9", "reason": "DSAR 2026-31"}, headers=tenant.headers("compliance"))
    assert response.status_code == 200, response.text
    receipt = response.json()
    assert [d["external_id"] for d in receipt["deleted"]] == ["e1"]
    assert receipt["restricted"] == [{"id": ids["e2"], "external_id": "e2", "reason": "legal hold 'dispute-hold'"}]
    assert "v-9" not in json.dumps(receipt)
    assert (await client.get(f"/v1/transcripts/{ids['other']}", headers=tenant.headers("compliance"))).status_code == 200
    by_email = await client.post("/v1/erasure", json={"email": "ola@example.no"}, headers=tenant.headers("compliance"))
    assert by_email.json()["deleted"] == []  # already erased


async def test_erasure_respects_a_compliance_floor(client, tenant):
    await _put_policy(client, tenant, {"default": {"years": 10}, "floor": {"years": 6, "mode": "compliance"}}, role="admin")
    ids = await _ingest(client, tenant, old_conversation("locked", visitor={"id": "v-77"}))
    receipt = (await client.post("/v1/erasure", json={"visitor_id": "v-77"}, headers=tenant.headers("compliance"))).json()
    assert receipt["deleted"] == [] and receipt["restricted"][0]["id"] == ids["locked"]
    assert "compliance-mode retention floor until 2031" in receipt["restricted"][0]["reason"]


async def test_erasure_needs_exactly_one_identifier(client, tenant):
    response = await client.post("/v1/erasure", json={}, headers=tenant.headers("compliance"))
    assert response.status_code == 422


@pytest.mark.parametrize("fmt", ["jsonl", "eml"])
async def test_export_verifies_offline_and_fails_if_one_byte_changes(client, tenant, runtime, tmp_path, fmt):
    await _ingest(client, tenant, old_conversation("x1", "refund please"), old_conversation("x2", "refund now"), old_conversation("x3", "hello"))
    await indexing.drain_all(runtime)
    created = await client.post("/v1/exports", json={"q": "refund", "format": fmt}, headers=tenant.headers("compliance"))
    assert created.status_code == 202 and created.json()["status"] == "queued"
    export_id = created.json()["id"]
    await exports.run_pending(runtime, tenant_id=tenant.id)
    state = (await client.get(f"/v1/exports/{export_id}", headers=tenant.headers("compliance"))).json()
    assert state["status"] == "done" and state["progress"] == state["total"] == 2
    download = await client.get(f"/v1/exports/{export_id}/download", headers=tenant.headers("compliance"))
    assert download.status_code == 200 and download.headers["content-type"] == "application/zip"
    path = tmp_path / "export.zip"
    path.write_bytes(download.content)
    with zipfile.ZipFile(path) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        assert manifest["count"] == 2 and manifest["query"] == "refund" and manifest["ledger_head"]["seq"] > 0
        if fmt == "eml":
            assert len([n for n in archive.namelist() if n.endswith(".eml")]) == 2
    public = (await client.get("/v1/audit/public-key")).json()
    key = public["keys"][str(public["active_version"])]
    ok = await run_cli("export", "verify", str(path), "--public-key", key)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(tampered, "w") as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename not in ("manifest.json", "signature.json"):
                data = data[:-1] + bytes([data[-1] ^ 1])
            target.writestr(item, data)
    bad = await run_cli("export", "verify", str(tampered), "--public-key", key)
    assert bad.returncode == 1 and "does not match its SHA-256" in bad.stdout
    wrong_key = await run_cli("export", "verify", str(path), "--public-key", "00" * 32)
    assert wrong_key.returncode == 1 and "signature does not verify" in wrong_key.stdout
    # A key cut short when copied (docs print it as '5c1f…') is a usage error, not a failed export.
    cut = await run_cli("export", "verify", str(path), "--public-key", key[:4])
    assert cut.returncode == 2 and "FAILED" not in cut.stdout
    assert "expected the 64 hex digits of an Ed25519 public key" in cut.stderr
    downloads = (await client.get("/v1/audit", params={"action": "export.download"}, headers=tenant.headers("compliance"))).json()
    assert downloads[-1]["subject"] == export_id


async def test_an_export_names_the_matches_a_sweep_deleted_while_it_was_built(client, tenant, runtime, tmp_path, monkeypatch):
    # The manifest records the ledger head the query ran at; a conversation that matched then and
    # was swept before the build read it is listed, so the export accounts for every match.
    await _put_policy(client, tenant, {"default": {"days": 1}})
    ids = await _ingest(client, tenant, old_conversation("kept", "refund please", visitor={"id": "v-123"}),
                        old_conversation("swept", "refund now"))
    await indexing.drain_all(runtime)
    await _hold(client, tenant, {"visitor_ids": ["v-123"]})
    real_fetch = transcripts.fetch_sealed
    swept: list = []

    async def fetch_after_a_sweep(ctx, batch):
        if not swept:  # the nightly sweep commits between the query and the first read
            swept.append(await sweep.sweep_tenant(runtime, tenant.id))
        return await real_fetch(ctx, batch)

    monkeypatch.setattr(transcripts, "fetch_sealed", fetch_after_a_sweep)
    created = (await client.post("/v1/exports", json={"q": "refund"}, headers=tenant.headers("compliance"))).json()
    await exports.run_pending(runtime, tenant_id=tenant.id)
    assert swept[0].deleted == 1
    download = await client.get(f"/v1/exports/{created['id']}/download", headers=tenant.headers("compliance"))
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        lines = [json.loads(line) for line in archive.read("transcripts.jsonl").splitlines()]
    assert [line["external_id"] for line in lines] == ["kept"] and manifest["count"] == 1
    assert manifest["deleted_while_exporting"] == [ids["swept"]]
    receipts = (await client.get("/v1/audit", params={"action": "retention.delete"}, headers=tenant.headers("compliance"))).json()
    assert [(r["subject"], r["seq"] > manifest["ledger_head"]["seq"]) for r in receipts] == [(ids["swept"], True)]
    done = (await client.get("/v1/audit", params={"action": "export.done"}, headers=tenant.headers("compliance"))).json()
    assert done[-1]["details"] == {"count": 1, "deleted_while_exporting": 1}


async def test_exports_expire_and_are_deleted(client, tenant, runtime):
    created = (await client.post("/v1/exports", json={"q": ""}, headers=tenant.headers("compliance"))).json()
    await exports.run_pending(runtime, tenant_id=tenant.id)
    assert await exports.expire(runtime, now=datetime.now(timezone.utc) + timedelta(hours=runtime.settings.export_ttl_hours + 1)) >= 1
    state = (await client.get(f"/v1/exports/{created['id']}", headers=tenant.headers("compliance"))).json()
    assert state["status"] == "expired"
    assert (await client.get(f"/v1/exports/{created['id']}/download", headers=tenant.headers("compliance"))).status_code == 409
    assert not list((runtime.settings.data_path / "exports" / str(tenant.id)).glob(f"{created['id']}*"))
