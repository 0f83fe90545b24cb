"""Backfill: a policy applied to stored conversations, in resumable batches with progress."""

from __future__ import annotations

import uuid
from datetime import timedelta

from api.composition import build_runtime
from archive.clock import ManualClock
from archive.supervision import backfill
from archive.supervision.tables import ReviewItem, SupervisionBackfill
from tests.supervision_helpers import chat, create_policy, ingest, queue

SAID = "Trust me, these are guaranteed returns."


def _on(day: str, external_id: str, text: str = SAID):
    return chat(external_id, "Any risk?", text, started_at=f"{day}T10:00:00Z", ended_at=f"{day}T10:30:00Z",
                messages=[{"at": f"{day}T10:01:00Z", "sender": {"role": "visitor", "id": "v"}, "text": "Any risk?"},
                          {"at": f"{day}T10:02:00Z", "sender": {"role": "agent", "id": "a"}, "text": text}])


async def _request(client, tenant, policy_id, **body):
    response = await client.post(f"/v1/supervision/policies/{policy_id}/backfill", json=body, headers=tenant.headers("compliance"))
    assert response.status_code == 202, response.text
    return response.json()


async def test_a_backfill_flags_stored_conversations_of_its_range_and_reports_progress(client, tenant, runtime):
    ids = await ingest(client, tenant, _on("2026-10-01", "early"), _on("2026-10-05", "in-1"), _on("2026-10-06", "in-2"),
                       _on("2026-10-07", "in-calm", "Every investment carries risk."))
    policy = await create_policy(client, tenant)
    job = await _request(client, tenant, policy["id"], **{"from": "2026-10-02T00:00:00Z", "to": "2026-10-31T00:00:00Z"})
    assert (job["status"], job["total"], job["progress"], job["policy_version"]) == ("queued", 3, 0.0, 1)
    await backfill.run_pending(runtime)
    done = (await client.get(f"/v1/supervision/backfills/{job['id']}", headers=tenant.headers("compliance"))).json()
    assert (done["status"], done["scanned"], done["flagged"], done["progress"]) == ("done", 3, 2, 1.0)
    flagged = {i["conversation_id"] for i in (await queue(client, tenant.headers("compliance")))["items"]}
    assert flagged == {ids["in-1"], ids["in-2"]}
    entries = (await client.get("/v1/audit", params={"action": "review.flag"}, headers=tenant.headers("compliance"))).json()
    assert len(entries) == 2 and all(e["actor"].startswith("system:backfill:") for e in entries)


async def test_a_backfill_stopped_half_way_resumes_after_its_last_batch_and_flags_nothing_twice(client, tenant, runtime, settings):
    await ingest(client, tenant, *[_on("2026-10-05", f"c{i}") for i in range(7)])
    policy = await create_policy(client, tenant)
    job = await _request(client, tenant, policy["id"])
    await backfill.run(runtime, uuid.UUID(job["id"]), batch=3, stop_after_batches=1)  # the process stops here
    half = (await client.get(f"/v1/supervision/backfills/{job['id']}", headers=tenant.headers("compliance"))).json()
    assert (half["status"], half["scanned"], half["flagged"]) == ("running", 3, 3)
    assert await backfill.run_pending(runtime) == 0  # its run still shows life: nobody takes it over yet
    later = build_runtime(settings, clock=ManualClock(runtime.clock.now() + timedelta(seconds=backfill.STALE_SECONDS + 1)),
                          keyring=runtime.keyring, database=runtime.database, search=runtime.search)
    await later.start()
    try:
        assert await backfill.run_pending(later) == 1
    finally:
        await later.stop()
    done = (await client.get(f"/v1/supervision/backfills/{job['id']}", headers=tenant.headers("compliance"))).json()
    assert (done["status"], done["scanned"], done["flagged"]) == ("done", 7, 7)
    assert await ReviewItem.count().where(ReviewItem.tenant == tenant.id) == 7


async def test_a_backfill_skips_what_ingest_already_flagged(client, tenant, runtime):
    policy = await create_policy(client, tenant)
    await ingest(client, tenant, _on("2026-10-05", "c1"))
    job = await _request(client, tenant, policy["id"])
    await backfill.run_pending(runtime)
    assert (await backfill.get(_compliance(tenant), uuid.UUID(job["id"]))).flagged == 0
    assert await ReviewItem.count().where(ReviewItem.tenant == tenant.id) == 1


async def test_a_backfill_applies_the_policy_as_it_was_when_requested(client, tenant, runtime):
    await ingest(client, tenant, _on("2026-10-05", "c1"))
    policy = await create_policy(client, tenant)
    await _request(client, tenant, policy["id"])
    changed = await client.put(f"/v1/supervision/policies/{policy['id']}", json={"name": "guarantees", "query": "nothing-like-this"},
                               headers=tenant.headers("compliance"))
    assert changed.json()["version"] == 2
    await backfill.run_pending(runtime)
    [item] = (await queue(client, tenant.headers("compliance")))["items"]
    assert item["policy_version"] == 1


async def test_backfill_requests_are_checked(client, tenant):
    policy = await create_policy(client, tenant)
    bad = await client.post(f"/v1/supervision/policies/{policy['id']}/backfill", json={"from": "2026-10-05T00:00:00Z", "to": "2026-10-01T00:00:00Z"},
                            headers=tenant.headers("compliance"))
    assert bad.status_code == 422 and bad.json()["errors"][0]["path"] == "to"
    missing = await client.post(f"/v1/supervision/policies/{uuid.uuid4()}/backfill", json={}, headers=tenant.headers("compliance"))
    assert missing.status_code == 404
    assert await SupervisionBackfill.count().where(SupervisionBackfill.tenant == tenant.id) == 0


def _compliance(tenant):
    from archive.tenancy import Principal

    key = tenant.keys["compliance"]
    return Principal(key_id=key.id, key_prefix=key.prefix, tenant_id=tenant.id, tenant_slug=tenant.slug, role="compliance")
