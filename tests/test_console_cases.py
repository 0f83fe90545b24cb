"""Cases in the console over HTTP: create, saved searches, holds, exports and their download, review
items, closing — each through retention.cases, ledgered as over the API."""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any

from archive import ledger
from archive.search import indexing
from retention import exports
from tests.supervision_helpers import chat, create_policy, ingest
from tests.test_console import browser_like, meta_token, sign_in


async def _signed_in(http: Any, tenant: Any, role: str = "compliance") -> str:
    response = await sign_in(http, tenant.keys[role].key)
    assert response.status_code == 303, response.text
    return meta_token((await http.get("/console/account")).text)


async def _new_case(http: Any, csrf: str, name: str = "Complaint 2026-114") -> str:
    created = await http.post("/console/cases", data={"_csrf": csrf, "name": name, "description": "Mis-selling of a savings product"})
    assert created.status_code == 303, created.text
    match = re.fullmatch(r"/console/cases/([0-9a-f-]{36})", created.headers["location"])
    assert match
    return match.group(1)


async def _actions(tenant: Any, prefix: str = "case.") -> list[str]:
    return [e.action for e in await ledger.list_entries(tenant.id, limit=1000) if e.action.startswith(prefix)]


async def test_a_case_is_opened_from_the_list_and_ledgered(client, tenant):
    async with browser_like(client) as http:
        csrf = await _signed_in(http, tenant)
        case_id = await _new_case(http, csrf)
        page = await http.get(f"/console/cases/{case_id}")
        assert page.status_code == 200 and "Complaint 2026-114" in page.text and "Mis-selling of a savings product" in page.text
        listing = await http.get("/console/cases")
        assert f'href="/console/cases/{case_id}"' in listing.text
    assert await _actions(tenant) == ["case.create"]


async def test_a_case_without_a_name_is_refused_with_the_field_named(client, tenant):
    async with browser_like(client) as http:
        csrf = await _signed_in(http, tenant)
        refused = await http.post("/console/cases", data={"_csrf": csrf, "name": "", "description": "kept"})
        assert refused.status_code == 422 and "<code>name</code>" in refused.text and ">kept</textarea>" in refused.text


async def test_a_saved_search_holds_and_exports_what_it_finds_and_the_export_downloads(client, runtime, tenant):
    await ingest(client, tenant, chat("c1", "these are guaranteed returns"), chat("c2", "a late parcel"))
    await indexing.drain_all(runtime)
    async with browser_like(client) as http:
        csrf = await _signed_in(http, tenant)
        case_id = await _new_case(http, csrf)
        saved = await http.post(f"/console/cases/{case_id}/searches", data={"_csrf": csrf, "name": "guarantees", "q": '"guaranteed returns"'})
        assert saved.status_code == 303
        search_id = re.search(r'/searches/([0-9a-f-]{36})/run', (await http.get(f"/console/cases/{case_id}")).text).group(1)
        ran = await http.post(f"/console/cases/{case_id}/searches/{search_id}/run", headers={"hx-request": "true", "x-csrf-token": csrf})
        assert ran.status_code == 200 and "1 conversation" in ran.text and "c1" in ran.text and "<html" not in ran.text
        held = await http.post(f"/console/cases/{case_id}/holds", data={"_csrf": csrf, "name": "matter hold", "reason": "litigation", "search": search_id})
        assert held.status_code == 303
        exported = await http.post(f"/console/cases/{case_id}/exports", data={"_csrf": csrf, "search": search_id, "format": "jsonl"})
        assert exported.status_code == 303
        running = await http.get(f"/console/cases/{case_id}")
        assert 'hx-trigger="every 2s"' in running.text and "queued" in running.text  # the page polls until it is ready
        assert await exports.run_pending(runtime, tenant_id=tenant.id) == 1
        ready = await http.get(f"/console/cases/{case_id}/exports", headers={"hx-request": "true"})
        assert "every 2s" not in ready.text and "done" in ready.text
        link = re.search(r'href="(/console/exports/[0-9a-f-]{36}/download)"', ready.text)
        assert link
        download = await http.get(link.group(1))
        assert download.status_code == 200 and download.headers["content-type"] == "application/zip"
        assert "attachment" in download.headers["content-disposition"]
        with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
            names = archive.namelist()
        assert any(name.endswith(".jsonl") for name in names), names
        page = await http.get(f"/console/cases/{case_id}")
        assert "matter hold" in page.text and "active" in page.text
    assert await _actions(tenant) == ["case.create", "case.search.add", "case.search.run"]
    assert await _actions(tenant, "hold.") == ["hold.create"]
    assert await _actions(tenant, "export.") == ["export.create", "export.done", "export.download"]


async def test_closing_a_case_needs_a_reason_and_releases_its_holds(client, runtime, tenant):
    async with browser_like(client) as http:
        csrf = await _signed_in(http, tenant)
        case_id = await _new_case(http, csrf)
        await http.post(f"/console/cases/{case_id}/holds", data={"_csrf": csrf, "name": "h", "reason": "r", "search": "", "q": "refund"})
        refused = await http.post(f"/console/cases/{case_id}/close", data={"_csrf": csrf, "reason": ""})
        assert refused.status_code == 422 and "reason" in refused.text
        closed = await http.post(f"/console/cases/{case_id}/close", data={"_csrf": csrf, "reason": "settled"})
        assert closed.status_code == 303
        page = await http.get(f"/console/cases/{case_id}")
        assert "Reopen the case" in page.text and "released" in page.text and "settled" in page.text
    releases = [e for e in await ledger.list_entries(tenant.id, limit=1000) if e.action == "hold.release"]
    assert len(releases) == 1 and releases[0].details["reason"] == "case closed: settled"


async def test_review_items_are_attached_by_id_and_detached(client, tenant):
    await create_policy(client, tenant)
    await ingest(client, tenant, chat("flagged", "these are guaranteed returns"))
    item = (await client.get("/v1/reviews", headers=tenant.headers("compliance"))).json()["items"][0]
    async with browser_like(client) as http:
        csrf = await _signed_in(http, tenant)
        case_id = await _new_case(http, csrf)
        unknown = await http.post(f"/console/cases/{case_id}/reviews", data={"_csrf": csrf, "ids": "00000000-0000-0000-0000-000000000000"})
        assert unknown.status_code == 404 and "ids[0]" in unknown.text
        attached = await http.post(f"/console/cases/{case_id}/reviews", data={"_csrf": csrf, "ids": item["id"]})
        assert attached.status_code == 303
        assert f'/console/reviews/{item["id"]}' in (await http.get(f"/console/cases/{case_id}")).text
        detached = await http.post(f"/console/cases/{case_id}/reviews/{item['id']}/remove", data={"_csrf": csrf})
        assert detached.status_code == 303 and "No review items." in (await http.get(f"/console/cases/{case_id}")).text


async def test_an_admin_manages_cases_but_neither_runs_searches_nor_exports(client, tenant):
    async with browser_like(client) as http:
        csrf = await _signed_in(http, tenant, role="admin")
        case_id = await _new_case(http, csrf)
        page = await http.get(f"/console/cases/{case_id}")
        assert page.status_code == 200 and "Start the export" not in page.text and ">Run<" not in page.text
        refused = await http.post(f"/console/cases/{case_id}/exports", data={"_csrf": csrf, "q": "refund"})
        assert refused.status_code == 403
