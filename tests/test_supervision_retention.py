"""Review items and retention: unfinished items keep their conversation; decided ones go with it."""

from __future__ import annotations

import asyncio
import uuid

from archive.supervision.guard import ReviewGuard
from archive.supervision.tables import ReviewComment, ReviewEvent, ReviewItem
from archive.tables import Conversation
from retention import sweep
from tests.supervision_helpers import create_policy, queue
from tests.test_deletion_transactions import _Pause
from tests.test_retention import _ingest, _put_policy, old_conversation


async def _flagged_old(client, tenant, *external_ids):
    await _put_policy(client, tenant, {"default": {"days": 1}})
    await create_policy(client, tenant)
    ids = await _ingest(client, tenant, *[old_conversation(e, "hello", "guaranteed returns, I promise") for e in external_ids])
    items = {i["external_id"]: i["id"] for i in (await queue(client, tenant.headers("compliance")))["items"]}
    return ids, items


async def _act(client, tenant, review_id, action, **body):
    response = await client.post(f"/v1/reviews/{review_id}/actions", json={"action": action, **body}, headers=tenant.headers("compliance"))
    assert response.status_code == 200, response.text


async def test_an_unfinished_review_item_keeps_its_conversation_from_the_sweep(client, tenant, runtime):
    ids, items = await _flagged_old(client, tenant, "open", "claimed", "escalated", "resolved", "false-positive")
    await _act(client, tenant, items["claimed"], "claim")
    await _act(client, tenant, items["escalated"], "escalate", note="for the board")
    await _act(client, tenant, items["resolved"], "resolve")
    await _act(client, tenant, items["false-positive"], "false_positive")
    report = await sweep.sweep_tenant(runtime, tenant.id)
    assert report.deleted == 2 and report.protected_by == {"open_review": 3}
    left = {str(r["id"]) for r in await Conversation.select(Conversation.id).where(Conversation.tenant == tenant.id)}
    assert left == {ids["open"], ids["claimed"], ids["escalated"]}


async def test_an_erasure_restricts_a_conversation_with_an_open_review_item_instead_of_deleting_it(client, tenant):
    ids, items = await _flagged_old(client, tenant, "open", "resolved")
    await _act(client, tenant, items["resolved"], "resolve")
    receipt = await client.post("/v1/erasure", json={"visitor_id": "visitor-1"}, headers=tenant.headers("compliance"))
    assert receipt.status_code == 200, receipt.text
    body = receipt.json()
    assert [r["id"] for r in body["deleted"]] == [ids["resolved"]]
    assert [r["id"] for r in body["restricted"]] == [ids["open"]] and "open review item" in body["restricted"][0]["reason"]
    assert "guarantees" in body["restricted"][0]["reason"]  # the policy that flagged it


async def test_the_guard_names_only_conversations_with_unfinished_items(client, tenant):
    ids, items = await _flagged_old(client, tenant, "open", "resolved")
    await _act(client, tenant, items["resolved"], "resolve")
    kept = await ReviewGuard().protect(None, tenant.id, [{"id": uuid.UUID(i)} for i in ids.values()], None)
    assert {str(cid) for cid in kept} == {ids["open"]} and kept[uuid.UUID(ids["open"])].guard == "open_review"


async def test_reopening_an_item_waits_for_the_deletion_batch_under_way(client, tenant, runtime):
    ids, items = await _flagged_old(client, tenant, "c1")
    await _act(client, tenant, items["c1"], "resolve")
    pause = _Pause()
    runtime.deletion_guards.append(pause)
    try:
        sweeping = asyncio.create_task(sweep.sweep_tenant(runtime, tenant.id))
        await pause.inside.wait()
        reopening = asyncio.create_task(client.post(
            f"/v1/reviews/{items['c1']}/actions", json={"action": "reopen", "note": "look again"}, headers=tenant.headers("compliance"),
        ))
        done, _ = await asyncio.wait([reopening], timeout=0.5)
        assert not done, "a review item was reopened while a deletion batch was deciding"
        pause.go_on.set()
        report, reopened = await sweeping, await reopening
    finally:
        runtime.deletion_guards.remove(pause)
    # The deletion decided first and took the item with its conversation: there is nothing to reopen.
    assert report.deleted == 1 and reopened.status_code == 404


async def test_decided_review_items_and_their_comments_are_deleted_with_their_conversation(client, tenant, runtime):
    ids, items = await _flagged_old(client, tenant, "c1")
    await _act(client, tenant, items["c1"], "resolve", note="coached the agent")
    report = await sweep.sweep_tenant(runtime, tenant.id)
    assert report.deleted == 1
    assert await Conversation.count().where(Conversation.id == uuid.UUID(ids["c1"])) == 0
    assert await ReviewItem.count().where(ReviewItem.tenant == tenant.id) == 0
    assert await ReviewComment.count().where(ReviewComment.tenant == tenant.id) == 0
    assert await ReviewEvent.count().where(ReviewEvent.tenant == tenant.id) == 1  # who resolved it when: no content, kept
    assert (await client.get("/v1/audit/verify", headers=tenant.headers("compliance"))).json()["ok"] is True


async def test_a_held_conversation_keeps_its_review_items(client, tenant, runtime):
    ids, items = await _flagged_old(client, tenant, "c1")
    await _act(client, tenant, items["c1"], "resolve", note="done")
    hold = await client.post("/v1/holds", json={"name": "h", "reason": "litigation", "criteria": {"visitor_ids": ["visitor-1"]}},
                             headers=tenant.headers("compliance"))
    assert hold.status_code == 201
    assert (await sweep.sweep_tenant(runtime, tenant.id)).deleted == 0
    assert await ReviewItem.count().where(ReviewItem.tenant == tenant.id) == 1
    assert await ReviewComment.count().where(ReviewComment.tenant == tenant.id) == 1
