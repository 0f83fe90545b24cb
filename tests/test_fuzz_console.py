"""The console's pages (search, conversations, audit, review queue, cases) are not in the OpenAPI
document (they serve HTML, not the API), so tests/test_fuzz.py never reaches them. This sends every
console route hostile values in every parameter and form field it reads — signed in and not, as a
full page and as an htmx fragment — and asks the same thing: a 4xx (or a page naming the problem),
never a 5xx.

The values are a fixed list, not generated: each one is a way a page has broken elsewhere
(encodings, lengths, numbers out of range, malformed ids and cursors, query-language edge cases).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import TenantFixture
from tests.test_console import browser_like, form_token, signed_in
from tests.test_console_cases import _new_case
from tests.test_console_reviews import flagged, risky

HOSTILE = [
    "",
    " ",
    "\x00",
    "\ud800",  # a lone surrogate: not encodable as UTF-8 by the client, sent percent-escaped below
    "%",
    "%ff%fe",
    "x" * 5_000,  # eleven of them still fit the client's 64 KiB address limit
    "-1",
    "0",
    "99999999999999999999999",
    "1e309",
    "NaN",
    "true",
    "2026-13-45",
    "../../etc/passwd",
    "<script>alert(1)</script>",
    '"unterminated',
    "(((((((((((",
    "a AND",
    "NOT",
    "*",
    "søk ИЛИ iščem",
    "\u202eevil",
    "00000000-0000-0000-0000-000000000000",
]

# (path, the query parameters it reads)
PAGES: list[tuple[str, list[str]]] = [
    ("/console/", []),
    ("/console/sign-in", ["next", "signed_out"]),
    ("/console/account", []),
    ("/console/session", []),
    ("/console/search", ["q", "site", "channel", "agent", "tag", "language", "visitor", "from", "to", "sort", "cursor"]),
    ("/console/search/syntax", ["q"]),
    ("/console/conversations/00000000-0000-0000-0000-000000000000", ["revision", "back"]),
    ("/console/audit", ["actor", "action", "subject", "from", "to", "after"]),
    ("/console/audit/verify", []),
    ("/console/reviews", ["status", "severity", "site", "channel", "assignee", "from", "to", "sort", "cursor"]),
    ("/console/reviews/00000000-0000-0000-0000-000000000000", ["status", "severity", "site", "from", "to", "sort"]),
    ("/console/cases", ["status"]),
    ("/console/cases/00000000-0000-0000-0000-000000000000", []),
    ("/console/cases/00000000-0000-0000-0000-000000000000/exports", []),
]
PATH_SEGMENTS = ["/console/conversations/{v}", "/console/conversations/00000000-0000-0000-0000-000000000000/files/{v}",
                 "/console/reviews/{v}", "/console/cases/{v}", "/console/exports/{v}/download"]


def _escaped(value: str) -> str:
    """The value as it would arrive in an address: UTF-8 percent-escaped, surrogates as raw bytes."""
    from urllib.parse import quote_from_bytes

    return quote_from_bytes(value.encode("utf-8", "surrogatepass"), safe="")


async def _fine(http: httpx.AsyncClient, url: str, **kwargs: Any) -> None:
    for htmx in ({}, {"HX-Request": "true", "HX-Target": "results"}, {"HX-Request": "true", "HX-Target": "more-1"}):
        response = await http.get(url, headers=htmx, **kwargs)
        assert response.status_code < 500, f"{url} {htmx}: {response.status_code} {response.text[:500]}"


@pytest.mark.parametrize("signed", [True, False], ids=["signed in", "anonymous"])
async def test_no_console_page_answers_hostile_parameters_with_a_server_error(client: httpx.AsyncClient, tenant: TenantFixture, signed: bool) -> None:
    async with browser_like(client) as http:
        if signed:
            await signed_in(http, tenant)
        for path, params in PAGES:
            for param in params:
                for value in HOSTILE:
                    await _fine(http, f"{path}?{param}={_escaped(value)}")
            # Everything at once, and a parameter given twice.
            await _fine(http, f"{path}?" + "&".join(f"{p}={_escaped(HOSTILE[6])}" for p in params))
            await _fine(http, f"{path}?" + "&".join(f"{p}=a&{p}=b" for p in params))
        for template in PATH_SEGMENTS:
            for value in HOSTILE:
                if value:
                    await _fine(http, template.format(v=_escaped(value)))


async def test_no_console_form_answers_hostile_fields_with_a_server_error(client: httpx.AsyncClient, tenant: TenantFixture) -> None:
    async with browser_like(client) as http:
        token = form_token((await http.get("/console/sign-in")).text)
        for field in ("key", "_csrf", "next"):
            for value in HOSTILE:
                if "\ud800" in value:
                    continue  # a form body is encoded by the client, which cannot encode it
                form = {"key": tenant.keys["compliance"].key, "_csrf": token, "next": "", field: value}
                response = await http.post("/console/sign-in", data=form)
                assert response.status_code < 500, f"{field}={value[:40]!r}: {response.status_code} {response.text[:500]}"
                await http.post("/console/sign-out", data={"_csrf": value})
        for body in (b"\xff\xfe", b"key=%ff&_csrf=%", b"=" * 10_000):
            response = await http.post("/console/sign-in", content=body, headers={"Content-Type": "application/x-www-form-urlencoded"})
            assert response.status_code < 500, f"{body[:40]!r}: {response.status_code} {response.text[:500]}"


# (path under the case or review item, the form fields it reads)
CASE_FORMS = [
    ("", ["name", "description"]),  # /console/cases itself: a new case
    ("/searches", ["name", "q", "site", "channel", "agent", "tag", "language"]),
    ("/holds", ["name", "reason", "search", "q", "site"]),
    ("/exports", ["search", "format", "q", "language"]),
    ("/reviews", ["ids"]),
    ("/close", ["reason"]),
    ("/reopen", ["reason"]),
]
REVIEW_FORMS = [
    ("/actions", ["action", "note", "assignee", "queue_status", "queue_severity", "queue_from", "queue_sort"]),
    ("/reveal", ["reason", "queue_site"]),
]


async def _posted(http: httpx.AsyncClient, url: str, csrf: str, fields: list[str]) -> None:
    for field in fields:
        for value in HOSTILE:
            if "\ud800" in value:
                continue  # not encodable in a form body by the client
            for htmx in ({}, {"HX-Request": "true"}):
                response = await http.post(url, data={"_csrf": csrf, field: value}, headers=htmx)
                assert response.status_code < 500, f"{url} {field}={value[:40]!r} {htmx}: {response.status_code} {response.text[:500]}"


async def test_no_case_or_review_form_answers_hostile_fields_with_a_server_error(client: httpx.AsyncClient, tenant: TenantFixture) -> None:
    items = await flagged(client, tenant, risky("c1"))
    async with browser_like(client) as http:
        csrf = await signed_in(http, tenant)
        case_id = await _new_case(http, csrf)
        for suffix, fields in CASE_FORMS:
            await _posted(http, f"/console/cases/{case_id}{suffix}" if suffix else "/console/cases", csrf, fields)
        for suffix, fields in REVIEW_FORMS:
            await _posted(http, f"/console/reviews/{items['c1']}{suffix}", csrf, fields)
        await _posted(http, "/console/reviews/actions", csrf, ["ids", "action", "note"])
