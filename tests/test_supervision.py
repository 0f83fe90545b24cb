"""Supervision: policies flag conversations as they are ingested, with search's own meaning."""

from __future__ import annotations

import pytest

from archive.supervision.tables import ReviewItem
from tests.supervision_helpers import chat, create_policy, ingest, policy_body, queue


async def test_a_flagged_conversation_is_in_the_queue_when_the_ingest_request_returns(client, tenant):
    policy = await create_policy(client, tenant)
    ids = await ingest(client, tenant,
                       chat("risky", "Is this safe?", "Absolutely, these are guaranteed returns, no risk at all."),
                       chat("calm", "Is this safe?", "Every investment carries risk."))
    page = await queue(client, tenant.headers("compliance"))
    assert [(i["conversation_id"], i["policy"], i["status"], i["severity"]) for i in page["items"]] == [(ids["risky"], policy["id"], "open", "high")]
    assert page["counts"]["open"] == 1


async def test_policy_query_errors_point_at_the_position(client, tenant):
    response = await client.post("/v1/supervision/policies", json=policy_body(query="refund AND", patterns=["(unclosed", "ok", "a\\1"]),
                                 headers=tenant.headers("compliance"))
    assert response.status_code == 422
    errors = {e["path"]: e["message"] for e in response.json()["errors"]}
    assert "position 10" in errors["query"]
    assert "RE2" in errors["patterns[0]"] and "RE2" in errors["patterns[2]"] and "patterns[1]" not in errors


@pytest.mark.parametrize("role", ["reviewer_like_marketing", "ingest"])
async def test_only_compliance_and_admin_manage_policies(client, tenant, role):
    headers = tenant.headers("marketing" if role == "reviewer_like_marketing" else role)
    assert (await client.get("/v1/supervision/policies", headers=headers)).status_code == 403


async def test_matched_words_are_sealed_in_the_store(client, tenant):
    await create_policy(client, tenant)
    await ingest(client, tenant, chat("risky", "Hello", "These are guaranteed returns."))
    [row] = await ReviewItem.select(ReviewItem.matches).where(ReviewItem.tenant == tenant.id)
    assert row["matches"] and "guaranteed" not in row["matches"]
