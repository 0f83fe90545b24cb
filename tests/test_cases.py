"""Cases: a matter gathers saved searches, holds, review items and exports; closing releases holds."""

from __future__ import annotations

import uuid

from archive.search import indexing
from tests.supervision_helpers import chat, create_policy, ingest, queue, reviewer


async def _case(client, tenant, name="Smith v. Bank"):
    response = await client.post("/v1/cases", json={"name": name, "description": "complaint of 2026-10-02"}, headers=tenant.headers("compliance"))
    assert response.status_code == 201, response.text
    return response.json()


async def _post(client, tenant, path, body, role="compliance", status=201):
    response = await client.post(path, json=body, headers=tenant.headers(role))
    assert response.status_code == status, response.text
    return response.json()


async def _flagged(client, tenant, count=1):
    await create_policy(client, tenant)
    await ingest(client, tenant, *[chat(f"c{i}", "refund please", "guaranteed returns, I promise") for i in range(count)])
    return [i["id"] for i in (await queue(client, tenant.headers("compliance")))["items"]]


async def test_a_case_gathers_searches_holds_reviews_and_exports_and_each_says_so(client, tenant, runtime):
    review_ids = await _flagged(client, tenant)
    await indexing.drain_all(runtime)
    case = await _case(client, tenant)
    base = f"/v1/cases/{case['id']}"
    search = await _post(client, tenant, f"{base}/searches", {"name": "refunds", "q": "refund", "filters": {"site": "shop"}})
    assert (search["q"], search["filters"]) == ("refund", {"site": "shop"})
    ran = await _post(client, tenant, f"{base}/searches/{search['id']}/run", {}, status=200)
    assert ran["total"] == 1
    hold = await _post(client, tenant, f"{base}/holds", {"name": "smith-hold", "reason": "litigation", "search": search["id"]})
    export = await _post(client, tenant, f"{base}/exports", {"search": search["id"]}, status=202)
    attached = await _post(client, tenant, f"{base}/reviews", {"ids": review_ids}, status=200)
    assert [r["case"] for r in attached] == [case["id"]]

    full = (await client.get(base, headers=tenant.headers("compliance"))).json()
    assert full["counts"] == {"searches": 1, "holds": 1, "active_holds": 1, "reviews": 1, "exports": 1}
    assert full["searches"][0]["last_total"] == 1 and full["holds"][0]["criteria"]["q"] == "refund"
    assert (await client.get(f"/v1/holds/{hold['id']}", headers=tenant.headers("compliance"))).json()["case"] == case["id"]
    assert (await client.get(f"/v1/exports/{export['id']}", headers=tenant.headers("compliance"))).json()["case"] == case["id"]
    assert (await queue(client, tenant.headers("compliance"), case=case["id"]))["items"][0]["case"] == case["id"]
    actions = [e["action"] for e in (await client.get("/v1/audit", params={"subject": case["id"]}, headers=tenant.headers("compliance"))).json()]
    assert actions == ["case.create", "case.search.add", "case.search.run", "case.review.add"]


async def test_closing_a_case_releases_its_holds_with_the_reason_in_the_ledger(client, tenant):
    case = await _case(client, tenant)
    base = f"/v1/cases/{case['id']}"
    hold = await _post(client, tenant, f"{base}/holds", {"name": "h1", "reason": "litigation", "criteria": {"visitor_ids": ["visitor-1"]}})
    no_reason = await client.patch(base, json={"status": "closed"}, headers=tenant.headers("compliance"))
    assert no_reason.status_code == 422 and no_reason.json()["errors"][0]["path"] == "reason"
    closed = await client.patch(base, json={"status": "closed", "reason": "settled"}, headers=tenant.headers("admin"))
    assert closed.status_code == 200 and closed.json()["status"] == "closed" and closed.json()["close_reason"] == "settled"
    released = (await client.get(f"/v1/holds/{hold['id']}", headers=tenant.headers("compliance"))).json()
    assert (released["status"], released["release_reason"]) == ("released", "case closed: settled")
    entries = (await client.get("/v1/audit", headers=tenant.headers("compliance"), params={"limit": 1000})).json()
    assert [e["action"] for e in entries if e["action"] in ("hold.release", "case.close")] == ["hold.release", "case.close"]
    assert (await client.get("/v1/audit/verify", headers=tenant.headers("compliance"))).json()["ok"] is True


async def test_a_case_cannot_be_deleted_while_it_holds_anything(client, tenant):
    case = await _case(client, tenant)
    base = f"/v1/cases/{case['id']}"
    hold = await _post(client, tenant, f"{base}/holds", {"name": "h1", "reason": "litigation", "criteria": {"agent_ids": ["agent-7"]}})
    refused = await client.delete(base, headers=tenant.headers("compliance"))
    assert refused.status_code == 409 and "close it first" in refused.json()["detail"]
    await client.patch(base, json={"status": "closed", "reason": "dropped"}, headers=tenant.headers("compliance"))
    assert (await client.delete(base, headers=tenant.headers("compliance"))).status_code == 204
    assert (await client.get(base, headers=tenant.headers("compliance"))).status_code == 404
    assert (await client.get(f"/v1/holds/{hold['id']}", headers=tenant.headers("compliance"))).json()["case"] is None


async def test_a_closed_case_takes_nothing_new_until_reopened(client, tenant):
    case = await _case(client, tenant)
    base = f"/v1/cases/{case['id']}"
    await client.patch(base, json={"status": "closed", "reason": "done"}, headers=tenant.headers("compliance"))
    refused = await client.post(f"{base}/searches", json={"name": "s", "q": "refund"}, headers=tenant.headers("compliance"))
    assert refused.status_code == 409
    reopened = await client.patch(base, json={"status": "open", "reason": "new evidence"}, headers=tenant.headers("compliance"))
    assert (reopened.json()["status"], reopened.json()["closed_at"]) == ("open", None)
    assert (await client.post(f"{base}/searches", json={"name": "s", "q": "refund"}, headers=tenant.headers("compliance"))).status_code == 201


async def test_review_items_belong_to_one_case_and_are_attached_all_or_none(client, tenant):
    first, second = await _case(client, tenant, "one"), await _case(client, tenant, "two")
    ids = await _flagged(client, tenant, 2)
    await _post(client, tenant, f"/v1/cases/{first['id']}/reviews", {"ids": [ids[0]]}, status=200)
    refused = await client.post(f"/v1/cases/{second['id']}/reviews", json={"ids": [ids[1], ids[0]]}, headers=tenant.headers("compliance"))
    assert refused.status_code == 409 and [e["path"] for e in refused.json()["errors"]] == ["ids[1]"]
    missing = await client.post(f"/v1/cases/{second['id']}/reviews", json={"ids": [str(uuid.uuid4())]}, headers=tenant.headers("compliance"))
    assert missing.status_code == 404
    assert (await client.get(f"/v1/cases/{second['id']}", headers=tenant.headers("compliance"))).json()["reviews"] == []
    assert (await client.delete(f"/v1/cases/{first['id']}/reviews/{ids[0]}", headers=tenant.headers("compliance"))).status_code == 204
    assert (await _post(client, tenant, f"/v1/cases/{second['id']}/reviews", {"ids": ids}, status=200))[0]["case"] == second["id"]


async def test_case_requests_are_checked_and_reviewers_have_no_cases(client, tenant):
    case = await _case(client, tenant)
    bad_query = await client.post(f"/v1/cases/{case['id']}/searches", json={"name": "s", "q": "(refund"}, headers=tenant.headers("compliance"))
    assert bad_query.status_code == 422 and bad_query.json()["errors"][0]["path"] == "q"
    both = await client.post(f"/v1/cases/{case['id']}/holds", json={"name": "h", "reason": "r"}, headers=tenant.headers("compliance"))
    assert both.status_code == 422
    assert (await client.get("/v1/cases", headers=await reviewer(tenant, ["shop"]))).status_code == 403
    listed = (await client.get("/v1/cases", params={"status": "open"}, headers=tenant.headers("admin"))).json()
    assert [c["name"] for c in listed] == ["Smith v. Bank"]


KILLED_CLOSE = """
import asyncio, os, signal, sys, uuid
from api.composition import build_runtime
from archive.tenancy import Principal
from config.settings import load_settings
from retention import cases, holds

async def main():
    rt = build_runtime(load_settings())
    await rt.start(migrate=False)
    release = holds.release
    async def release_then_die(*args, **kwargs):
        result = await release(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)  # after the first hold is released, inside the close's transaction
        return result
    holds.release = release_then_die
    principal = Principal(key_id=uuid.UUID(sys.argv[1]), key_prefix=sys.argv[2], tenant_id=uuid.UUID(sys.argv[3]), tenant_slug="t", role="compliance")
    await cases.update(rt, principal, uuid.UUID(sys.argv[4]), cases.CasePatch(status="closed", reason="settled"))

asyncio.run(main())
"""


async def test_a_close_killed_half_way_leaves_the_case_and_all_its_holds_as_they_were(client, tenant):
    import asyncio
    import subprocess
    import sys

    case = await _case(client, tenant)
    base = f"/v1/cases/{case['id']}"
    for name in ("h1", "h2"):
        await _post(client, tenant, f"{base}/holds", {"name": name, "reason": "litigation", "criteria": {"agent_ids": ["agent-7"]}})
    key = tenant.keys["compliance"]
    killed = await asyncio.to_thread(subprocess.run, [sys.executable, "-c", KILLED_CLOSE, str(key.id), key.prefix, str(tenant.id), case["id"]],
                                     capture_output=True, text=True, timeout=120)
    assert killed.returncode == -9, killed.stderr[-2000:]
    after = (await client.get(base, headers=tenant.headers("compliance"))).json()
    assert after["status"] == "open" and [h["status"] for h in after["holds"]] == ["active", "active"]
    entries = (await client.get("/v1/audit", params={"limit": 1000}, headers=tenant.headers("compliance"))).json()
    assert not [e for e in entries if e["action"] in ("hold.release", "case.close")]
    assert (await client.get("/v1/audit/verify", headers=tenant.headers("compliance"))).json()["ok"] is True
    closed = await client.patch(base, json={"status": "closed", "reason": "settled"}, headers=tenant.headers("compliance"))
    assert [h["status"] for h in closed.json()["holds"]] == ["released", "released"]
