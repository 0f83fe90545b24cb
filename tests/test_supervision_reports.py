"""Supervision reports: activity per reviewer, ageing by status, policy changes; JSON and CSV."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from archive.supervision.tables import ReviewItem
from tests.supervision_helpers import chat, create_policy, ingest, queue, reviewer


async def _report(client, tenant, kind, role="compliance", **params):
    response = await client.get(f"/v1/supervision/reports/{kind}", params=params, headers=tenant.headers(role))
    assert response.status_code == 200, response.text
    return response


async def _flagged(client, tenant, count):
    await create_policy(client, tenant)
    await ingest(client, tenant, *[chat(f"c{i}", "hi", "guaranteed returns") for i in range(count)])
    return [i["id"] for i in (await queue(client, tenant.headers("compliance")))["items"]]


async def test_activity_counts_actions_per_reviewer(client, tenant):
    ids = await _flagged(client, tenant, 3)
    first, second = await reviewer(tenant, ["shop"]), await reviewer(tenant, ["shop"])
    for review_id in ids[:2]:
        await client.post(f"/v1/reviews/{review_id}/actions", json={"action": "claim"}, headers=first)
        await client.post(f"/v1/reviews/{review_id}/actions", json={"action": "resolve"}, headers=first)
    await client.post(f"/v1/reviews/{ids[2]}/actions", json={"action": "false_positive"}, headers=second)
    report = (await _report(client, tenant, "activity")).json()
    rows = {r["reviewer"]: r for r in report["rows"]}
    assert (rows[first["x-actor"]]["claim"], rows[first["x-actor"]]["resolve"], rows[first["x-actor"]]["total"]) == (2, 2, 4)
    assert (rows[second["x-actor"]]["false_positive"], rows[second["x-actor"]]["name"]) == (1, "reviewer")
    assert report["columns"][:2] == ["reviewer", "name"] and report["generated_at"]


async def test_reports_come_as_csv_with_a_header_row(client, tenant):
    ids = await _flagged(client, tenant, 1)
    await client.post(f"/v1/reviews/{ids[0]}/actions", json={"action": "claim"}, headers=tenant.headers("compliance"))
    response = await _report(client, tenant, "activity", format="csv")
    assert response.headers["content-type"].startswith("text/csv") and "attachment" in response.headers["content-disposition"]
    table = list(csv.reader(io.StringIO(response.text)))
    assert table[0] == ["reviewer", "name", "claim", "assign", "comment", "escalate", "resolve", "false_positive", "reopen", "total"]
    assert table[1][0] == f"key:{tenant.keys['compliance'].prefix}" and table[1][2] == "1"


async def test_ageing_counts_items_by_status_and_age(client, tenant):
    ids = await _flagged(client, tenant, 3)
    old = ids[0]
    row = await ReviewItem.select(ReviewItem.created_at).where(ReviewItem.id == old).first()
    await ReviewItem.update({ReviewItem.created_at: row["created_at"] - timedelta(days=10)}).where(ReviewItem.id == old)
    await client.post(f"/v1/reviews/{ids[1]}/actions", json={"action": "resolve"}, headers=tenant.headers("compliance"))
    rows = (await _report(client, tenant, "ageing")).json()["rows"]
    assert {(r["status"], r["age"], r["count"]) for r in rows} == {("open", "7-30d", 1), ("open", "<1d", 1), ("resolved", "<1d", 1)}


async def test_the_policies_report_lists_changes_with_who_and_when(client, tenant):
    policy = await create_policy(client, tenant)
    await client.put(f"/v1/supervision/policies/{policy['id']}", json={"name": "guarantees", "query": "guarantee*", "severity": "low"},
                     headers=tenant.headers("admin"))
    rows = (await _report(client, tenant, "policies", role="admin")).json()["rows"]
    assert [(r["version"], r["change"], r["actor"], r["query"]) for r in rows] == [
        (1, "create", f"key:{tenant.keys['compliance'].prefix}", '"guaranteed returns"'),
        (2, "update", f"key:{tenant.keys['admin'].prefix}", "guarantee*"),
    ]
    assert all(r["at"] for r in rows)
    future = (await _report(client, tenant, "policies", **{"from": "2100-01-01T00:00:00Z"})).json()
    assert future["rows"] == []


async def test_report_requests_are_checked(client, tenant):
    assert (await client.get("/v1/supervision/reports/everything", headers=tenant.headers("compliance"))).status_code == 404
    bad = await client.get("/v1/supervision/reports/activity", params={"format": "xml", "from": "yesterday"}, headers=tenant.headers("compliance"))
    assert bad.status_code == 422 and {e["path"] for e in bad.json()["errors"]} == {"format", "from"}
    assert (await client.get("/v1/supervision/reports/activity", headers=await reviewer(tenant, ["shop"]))).status_code == 403
