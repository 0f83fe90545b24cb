"""The review console over HTTP (no browser): sessions, CSRF, headers, and that every page reads
through the API's domain functions — ledgered as the API is. The browser tests are in
tests/test_console_browser.py."""

from __future__ import annotations

import contextlib
import re
from datetime import timedelta
from typing import Any, AsyncIterator
from uuid import UUID

import httpx
import msgspec
import pytest

from api.app import create_app
from api.composition import build_runtime
from archive import ledger
from archive.clock import ManualClock
from archive.tables import ConsoleSession
from tests.conftest import TenantFixture, app_client, make_tenant
from tests.factories import conversation

BASE = "http://testserver.local"


@contextlib.asynccontextmanager
async def browser_like(client: httpx.AsyncClient, base_url: str = BASE) -> AsyncIterator[httpx.AsyncClient]:
    """A client with its own cookie jar on the suite's app (the shared client must stay cookie-free)."""
    async with httpx.AsyncClient(transport=client._transport, base_url=base_url) as http:
        yield http


def form_token(html: str) -> str:
    match = re.search(r'name="_csrf" value="([^"]*)"', html)
    assert match, html[:2000]
    return match.group(1)


def meta_token(html: str) -> str:
    match = re.search(r'<meta name="csrf-token" content="([^"]*)"', html)
    assert match and match.group(1), html[:2000]
    return match.group(1)


async def sign_in(http: httpx.AsyncClient, key: str, next_path: str = "") -> httpx.Response:
    form = await http.get("/console/sign-in", params={"next": next_path} if next_path else None)
    assert form.status_code == 200, form.text
    return await http.post("/console/sign-in", data={"key": key, "_csrf": form_token(form.text), "next": next_path})


async def signed_in(http: httpx.AsyncClient, tenant: TenantFixture, role: str = "compliance") -> str:
    """Signs in; returns the session's CSRF token."""
    response = await sign_in(http, tenant.keys[role].key)
    assert response.status_code == 303, response.text
    page = await http.get("/console/account")
    assert page.status_code == 200
    return meta_token(page.text)


async def ledger_actions(tenant: TenantFixture) -> list[ledger.LedgerRecord]:
    return await ledger.list_entries(tenant.id, limit=1000)


# --- signing in and out --------------------------------------------------------------------------


async def test_a_compliance_key_is_exchanged_for_a_strict_httponly_session_cookie(client, tenant):
    async with browser_like(client) as http:
        response = await sign_in(http, tenant.keys["compliance"].key)
        assert response.status_code == 303 and response.headers["location"] == "/console"
        cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("parley_console="))
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
        assert {"httponly", "samesite", "path", "max-age"} <= attributes
        assert "samesite=strict" in cookie.lower() and "path=/console" in cookie.lower()
        assert "secure" not in attributes  # plain http: a Secure cookie would never come back
        assert f"Max-Age={12 * 3600}" in cookie
        landing = await http.get("/console", follow_redirects=True)
        assert landing.url.path == "/console/search" and "Search conversations" in landing.text


async def test_the_sessions_table_holds_only_a_hash_of_the_token(client, tenant):
    async with browser_like(client) as http:
        await sign_in(http, tenant.keys["compliance"].key)
        token = http.cookies["parley_console"]
    rows = await ConsoleSession.select().where(ConsoleSession.tenant == tenant.id)
    assert len(rows) == 1
    assert token not in msgspec.json.encode(rows, enc_hook=str).decode()
    assert tenant.keys["compliance"].key not in msgspec.json.encode(rows, enc_hook=str).decode()


async def test_a_session_acts_as_exactly_what_its_key_authenticates_as(client, runtime, tenant):
    from archive import sessions

    for role in ("compliance", "admin"):
        async with browser_like(client) as http:
            await sign_in(http, tenant.keys[role].key)
            info = await sessions.resolve(runtime, http.cookies["parley_console"])
        assert info is not None and info.principal == await runtime.tenants.authenticate(tenant.keys[role].key)


async def test_the_cookie_is_secure_over_https(client, tenant):
    async with browser_like(client, base_url="https://testserver.local") as http:
        response = await sign_in(http, tenant.keys["compliance"].key)
        cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("parley_console="))
        assert "secure" in cookie.lower()


async def test_the_cookie_is_secure_behind_a_trusted_proxy_only(settings, runtime, tenant):
    for trusted, secure in (("127.0.0.0/8", True), ("", False), ("10.0.0.0/8", False)):
        proxied = msgspec.structs.replace(settings, trusted_proxies=trusted)
        rt = build_runtime(proxied, keyring=runtime.keyring, database=runtime.database, search=runtime.search)
        async with app_client(create_app(proxied, rt)) as http:  # the test client connects from 127.0.0.1
            form = await http.get("/console/sign-in")
            response = await http.post("/console/sign-in", headers={"x-forwarded-proto": "https"},
                                       data={"key": tenant.keys["compliance"].key, "_csrf": form_token(form.text)})
            cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("parley_console="))
            assert ("secure" in cookie.lower()) is secure, trusted


@pytest.mark.parametrize("role", ["marketing", "ingest"])
async def test_integration_keys_cannot_sign_in(client, tenant, role):
    async with browser_like(client) as http:
        response = await sign_in(http, tenant.keys[role].key)
        assert response.status_code == 403
        assert f"role {role} cannot sign in" in response.text and 'aria-invalid="true"' in response.text
        assert "parley_console" not in http.cookies


async def test_an_unknown_key_is_refused_and_the_form_says_why(client):
    async with browser_like(client) as http:
        response = await sign_in(http, "prl_abcdefgh_" + "x" * 43)
        assert response.status_code == 401 and "unknown or revoked" in response.text


async def test_sign_in_without_the_form_token_is_refused(client, tenant):
    async with browser_like(client) as http:
        await http.get("/console/sign-in")
        response = await http.post("/console/sign-in", data={"key": tenant.keys["compliance"].key})
        assert response.status_code == 403 and "CSRF" in response.text
        assert "parley_console" not in http.cookies


async def test_pages_without_a_session_send_the_browser_to_sign_in_and_back(client, tenant):
    async with browser_like(client) as http:
        response = await http.get("/console/search", params={"q": "refund"})
        assert response.status_code == 303
        assert response.headers["location"] == "/console/sign-in?next=%2Fconsole%2Fsearch%3Fq%3Drefund"
        fragment = await http.get("/console/search", headers={"hx-request": "true", "hx-current-url": f"{BASE}/console/audit?action=read"})
        assert fragment.status_code == 200 and fragment.headers["hx-redirect"] == "/console/sign-in?next=%2Fconsole%2Faudit%3Faction%3Dread"
        back = await sign_in(http, tenant.keys["compliance"].key, next_path="/console/search?q=refund")
        assert back.headers["location"] == "/console/search?q=refund"


async def test_a_form_posted_after_the_session_ended_comes_back_to_its_page_not_to_its_address(client, tenant):
    """The session ended elsewhere (signed out in another tab, the key revoked) and the page, before
    its heartbeat noticed, posts a plain form — Sign out, say. After signing in again the browser
    returns to the page the form was on: the form's own address answers only POST (a 405)."""
    async with browser_like(client) as http:
        csrf = await signed_in(http, tenant)
        token = http.cookies["parley_console"]
        assert (await http.post("/console/sign-out", data={"_csrf": csrf})).status_code == 303  # "the other tab"
        http.cookies.set("parley_console", token, path="/console")
        response = await http.post("/console/sign-out", data={"_csrf": csrf}, headers={"referer": f"{BASE}/console/cases?status=open"})
        assert response.status_code == 303
        assert response.headers["location"] == "/console/sign-in?next=%2Fconsole%2Fcases%3Fstatus%3Dopen"
        http.cookies.clear()
        back = await sign_in(http, tenant.keys["compliance"].key, next_path="/console/cases?status=open")
        assert back.headers["location"] == "/console/cases?status=open"
        assert (await http.get(back.headers["location"])).status_code == 200
        # No Referer (a privacy setting): the console's start, never the form's address.
        http.cookies.clear()
        http.cookies.set("parley_console", token, path="/console")
        response = await http.post("/console/reviews/actions", data={"_csrf": csrf})
        assert response.status_code == 303 and response.headers["location"] == "/console/sign-in"


async def test_the_heartbeat_of_an_ended_session_never_sends_the_browser_back_to_the_heartbeat(client, tenant):
    """The heartbeat is a fetch: it names its page in HX-Current-URL (console.js) or, from an older
    copy of the script, in its Referer. Either way sign-in's next is that page; without either,
    the console's start — never /console/session, whose answer is a line of JSON."""
    async with browser_like(client) as http:
        beat = {"hx-request": "true"}
        named = await http.get("/console/session", headers={**beat, "hx-current-url": f"{BASE}/console/audit?action=read"})
        assert named.headers["hx-redirect"] == "/console/sign-in?next=%2Fconsole%2Faudit%3Faction%3Dread"
        referred = await http.get("/console/session", headers={**beat, "referer": f"{BASE}/console/cases"})
        assert referred.headers["hx-redirect"] == "/console/sign-in?next=%2Fconsole%2Fcases"
        bare = await http.get("/console/session", headers=beat)
        assert bare.headers["hx-redirect"] == "/console/sign-in"


async def test_an_address_the_console_has_no_page_for_answers_with_a_page(client, tenant):
    """A mistyped or stale link under /console, or a form's address opened as a page, fails in
    routing, before the console's router: it still answers as the console does (HTML with its
    headers), never with the API's problem+json. The API keeps problem+json."""
    async with browser_like(client) as http:
        csrf = await signed_in(http, tenant)
        for response, status in ((await http.get("/console/conversation/123"), 404),
                                 (await http.get("/console/reviews/actions/x/y"), 404),
                                 (await http.post("/console/search", headers={"x-csrf-token": csrf}), 405)):
            assert response.status_code == status
            assert response.headers["content-type"].startswith("text/html"), response.text
            assert "default-src 'none'" in response.headers["content-security-policy"]
            assert response.headers["cache-control"] == "no-store"
            assert '<a href="/console">Back to the console</a>' in response.text
        assert "GET" in response.headers["allow"]
        api = await http.get("/v1/nothing-here")
        assert api.status_code == 404 and api.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("target", ["https://evil.example/console", "//evil.example/console", "/v1/audit", "/console\\@evil"])
async def test_sign_in_never_redirects_off_the_console(client, tenant, target):
    async with browser_like(client) as http:
        response = await sign_in(http, tenant.keys["compliance"].key, next_path=target)
        assert response.headers["location"] == "/console"


async def test_sign_out_ends_the_session_and_is_ledgered(client, tenant):
    async with browser_like(client) as http:
        csrf = await signed_in(http, tenant)
        token = http.cookies["parley_console"]
        response = await http.post("/console/sign-out", data={"_csrf": csrf})
        assert response.status_code == 303 and response.headers["location"] == "/console/sign-in?signed_out=true"
        http.cookies.set("parley_console", token, path="/console")  # a copy of the cookie is worthless now
        assert (await http.get("/console/account")).status_code == 303
    actions = [(r.action, r.details.get("reason")) for r in await ledger_actions(tenant) if r.action.startswith("session.")]
    assert actions == [("session.start", None), ("session.end", "signed out")]


async def test_a_form_without_the_csrf_token_changes_nothing(client, tenant):
    async with browser_like(client) as http:
        await signed_in(http, tenant)
        refused = await http.post("/console/sign-out", data={})
        assert refused.status_code == 403 and "CSRF check failed" in refused.text
        wrong = await http.post("/console/sign-out", data={"_csrf": "0" * 64})
        assert wrong.status_code == 403
        assert (await http.get("/console/account")).status_code == 200  # still signed in


async def test_a_post_from_another_site_is_refused_even_with_the_token(client, tenant):
    async with browser_like(client) as http:
        csrf = await signed_in(http, tenant)
        response = await http.post("/console/sign-out", data={"_csrf": csrf}, headers={"origin": "https://evil.example"})
        assert response.status_code == 403
        assert (await http.get("/console/account")).status_code == 200


async def test_the_csrf_header_is_accepted_for_htmx_requests(client, tenant):
    async with browser_like(client) as http:
        csrf = await signed_in(http, tenant)
        response = await http.post("/console/sign-out", headers={"x-csrf-token": csrf, "origin": BASE})
        assert response.status_code == 303


async def test_revoking_the_key_ends_its_sessions_at_once(client, tenant):
    async with browser_like(client) as http:
        await signed_in(http, tenant)
        key_id = tenant.keys["compliance"].id
        revoked = await client.post(f"/v1/admin/keys/{key_id}/revoke", headers=tenant.headers("admin"))
        assert revoked.status_code == 200, revoked.text
        response = await http.get("/console/account")
        assert response.status_code == 303 and response.headers["location"].startswith("/console/sign-in")
        assert "parley_console=;" in response.headers["set-cookie"].replace('=""', "=")
    ends = [r.details["reason"] for r in await ledger_actions(tenant) if r.action == "session.end"]
    assert ends == ["key revoked"]


async def _manual_app(settings: Any, runtime: Any) -> tuple[ManualClock, Any]:
    clock = ManualClock()
    rt = build_runtime(settings, clock=clock, keyring=runtime.keyring, database=runtime.database, search=runtime.search)
    return clock, create_app(settings, rt)


async def test_a_session_ends_after_the_idle_limit(settings, runtime):
    tenant = await make_tenant(runtime)
    clock, app = await _manual_app(settings, runtime)
    async with app_client(app) as http:
        await signed_in(http, tenant)
        clock.advance(timedelta(minutes=settings.console_idle_minutes - 1))
        assert (await http.get("/console/account")).status_code == 200  # activity: the idle clock restarts
        clock.advance(timedelta(minutes=settings.console_idle_minutes - 1))
        assert (await http.get("/console/account")).status_code == 200
        clock.advance(timedelta(minutes=settings.console_idle_minutes))
        assert (await http.get("/console/account")).status_code == 303
    assert [r.details["reason"] for r in await ledger_actions(tenant) if r.action == "session.end"] == ["idle"]


async def test_the_heartbeat_does_not_keep_an_idle_session_alive(settings, runtime):
    tenant = await make_tenant(runtime)
    clock, app = await _manual_app(settings, runtime)
    async with app_client(app) as http:
        await signed_in(http, tenant)
        for _ in range(3):
            clock.advance(timedelta(minutes=settings.console_idle_minutes // 3 + 1))
            beat = await http.get("/console/session", headers={"hx-request": "true"})
        assert beat.headers.get("hx-redirect", "").startswith("/console/sign-in")


async def test_a_session_ends_at_its_absolute_limit_however_busy(settings, runtime):
    tenant = await make_tenant(runtime)
    clock, app = await _manual_app(settings, runtime)
    async with app_client(app) as http:
        await signed_in(http, tenant)
        for _ in range(settings.console_session_hours * 4 - 1):
            clock.advance(timedelta(minutes=15))
            assert (await http.get("/console/account")).status_code == 200
        clock.advance(timedelta(minutes=15))
        assert (await http.get("/console/account")).status_code == 303
    assert [r.details["reason"] for r in await ledger_actions(tenant) if r.action == "session.end"] == ["expired"]


async def test_sessions_nobody_came_back_to_are_ended_and_ledgered_by_the_sweep(settings, runtime):
    from archive import sessions

    tenant = await make_tenant(runtime)
    clock, app = await _manual_app(settings, runtime)
    async with app_client(app) as http:
        await signed_in(http, tenant)  # then the browser is closed: no request ever comes again
    async with app_client(app) as http:
        await signed_in(http, tenant, role="admin")
    rt = app.state.runtime
    revoked = await http_revoke(runtime, tenant, "admin")
    assert revoked
    clock.advance(timedelta(minutes=settings.console_idle_minutes, seconds=1))
    assert (await sessions.sweep(rt))["ended"] >= 2  # (other tests' sessions may be over too: the sweep is for every tenant)
    ends = sorted(r.details["reason"] for r in await ledger_actions(tenant) if r.action == "session.end")
    assert ends == ["idle", "key revoked"]
    await sessions.sweep(rt)
    assert len([r for r in await ledger_actions(tenant) if r.action == "session.end"]) == 2  # once each


async def http_revoke(runtime: Any, tenant: TenantFixture, role: str) -> bool:
    from archive.tenancy import revoke_api_key

    return (await revoke_api_key(runtime, tenant.keys[role].id, tenant.id)).revoked_at is not None


async def test_ended_sessions_are_forgotten_after_a_month_but_their_ledger_entries_stay(settings, runtime):
    from archive import sessions

    tenant = await make_tenant(runtime)
    clock, app = await _manual_app(settings, runtime)
    async with app_client(app) as http:
        csrf = await signed_in(http, tenant)
        await http.post("/console/sign-out", data={"_csrf": csrf})
    rt = app.state.runtime
    assert await ConsoleSession.count().where(ConsoleSession.tenant == tenant.id) == 1
    clock.advance(sessions.KEEP_ENDED + timedelta(minutes=1))
    assert (await sessions.sweep(rt))["purged"] >= 1
    assert await ConsoleSession.count().where(ConsoleSession.tenant == tenant.id) == 0
    assert [r.action for r in await ledger_actions(tenant) if r.action.startswith("session.")] == ["session.start", "session.end"]


# --- headers -------------------------------------------------------------------------------------


async def test_pages_forbid_inline_code_framing_and_caching(client, tenant):
    async with browser_like(client) as http:
        await signed_in(http, tenant)
        for path in ("/console/sign-in", "/console/search", "/console/audit", "/console/account"):
            response = await http.get(path)
            csp = response.headers["content-security-policy"]
            assert "script-src 'self'" in csp and "style-src 'self'" in csp and "default-src 'none'" in csp
            assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
            assert response.headers["cache-control"] == "no-store", path
            assert response.headers["x-content-type-options"] == "nosniff"
            assert "<script>" not in response.text and " style=" not in response.text and "<style" not in response.text


async def test_static_assets_are_served_by_parley_with_a_long_cache(client):
    async with browser_like(client) as http:
        page = await http.get("/console/sign-in")
        assets = re.findall(r'(?:src|href)="(/console/static/[^"]+)"', page.text)
        assert {a.split("?")[0] for a in assets} == {"/console/static/console.css", "/console/static/htmx.min.js", "/console/static/console.js"}
        for asset in assets:
            response = await http.get(asset)
            assert response.status_code == 200 and "immutable" in response.headers["cache-control"]
        assert "Zero-Clause BSD" in (await http.get("/console/static/htmx.LICENSE.txt")).text
        assert not re.search(r'(?:src|href)="(?:https?:)?//', page.text)  # nothing from elsewhere


# --- roles ---------------------------------------------------------------------------------------


async def test_each_role_sees_only_the_sections_its_key_may_open(client, tenant):
    async with browser_like(client) as http:
        await signed_in(http, tenant, role="admin")
        audit = await http.get("/console/audit")
        assert audit.status_code == 200
        assert 'href="/console/search"' not in audit.text
        search = await http.get("/console/search")
        assert search.status_code == 403 and "needs a key with role compliance" in search.text
        assert (await http.get("/console", follow_redirects=True)).url.path == "/console/audit"


# --- search and reading --------------------------------------------------------------------------


async def _ingest(client: httpx.AsyncClient, tenant: TenantFixture, *bodies: dict[str, Any]) -> list[UUID]:
    from archive.search import indexing

    ids = []
    for body in bodies:
        response = await client.post("/v1/transcripts", json=body, headers=tenant.headers("ingest"))
        assert response.status_code == 201, response.text
        ids.append(UUID(response.json()["id"]))
    await indexing.drain_all(client._transport.app.state.runtime)
    return ids


async def test_a_search_is_ledgered_exactly_as_the_api_search(client, tenant):
    await _ingest(client, tenant, conversation(None, "I want a refund for order 17", "Refund approved"))
    async with browser_like(client) as http:
        await signed_in(http, tenant)
        page = await http.get("/console/search", params={"q": "refund", "site": "shop", "sort": "newest"})
        assert page.status_code == 200
        assert "1 conversation" in page.text and "<mark>refund</mark>" in page.text
        assert "This search was recorded in the audit ledger" in page.text
    api = await client.post("/v1/search", json={"q": "refund", "filters": {"site": "shop"}, "sort": "newest", "size": 25},
                            headers=tenant.headers("compliance"))
    assert api.status_code == 200
    console_entry, api_entry = [r for r in await ledger_actions(tenant) if r.action == "search"]
    assert console_entry.actor == api_entry.actor == f"key:{tenant.keys['compliance'].prefix}"
    assert set(console_entry.details) == set(api_entry.details)
    assert {k: v for k, v in console_entry.details.items() if k != "query_sealed"} == {
        k: v for k, v in api_entry.details.items() if k != "query_sealed"}


async def test_a_syntax_error_is_shown_at_its_position_and_nothing_is_ledgered(client, tenant):
    async with browser_like(client) as http:
        await signed_in(http, tenant)
        before = len(await ledger_actions(tenant))
        page = await http.get("/console/search", params={"q": "refund AND (late"})
        assert page.status_code == 200
        assert "missing &#39;)&#39;" in page.text and "(at character 12)" in page.text
        assert 'refund AND <mark class="syntax-at">(late</mark>' in page.text
        assert 'aria-invalid="true"' in page.text
        live = await http.get("/console/search/syntax", params={"q": "late sender:robot"})
        assert "sender: is one of" in live.text and 'data-position="5"' in live.text
        assert 'late <mark class="syntax-at">sender:robot</mark>' in live.text
        assert (await http.get("/console/search/syntax", params={"q": "late refund"})).text.strip() == ""
        assert len(await ledger_actions(tenant)) == before


async def test_results_page_on_through_the_cursor(client, tenant):
    await _ingest(client, tenant, *[conversation(None, f"parcel number {i} is late", "Sorry about the parcel") for i in range(30)])
    async with browser_like(client) as http:
        await signed_in(http, tenant)
        first = await http.get("/console/search", params={"q": "parcel", "sort": "newest"})
        assert first.text.count('class="hit"') == 25
        more = re.search(r'hx-get="([^"]+cursor=[^"]+)"', first.text)
        assert more
        second = await http.get(more.group(1).replace("&amp;", "&"), headers={"hx-request": "true", "hx-target": "more"})
        assert second.text.count('class="hit"') == 5 and "<html" not in second.text and 'id="more"' not in second.text
    assert len([r for r in await ledger_actions(tenant) if r.action == "search"]) == 2  # a page is a search, as over the API


async def test_facets_are_links_that_add_and_remove_a_filter(client, tenant):
    await _ingest(client, tenant, conversation(None, "late parcel"), conversation(None, "late parcel", channel="email"))
    async with browser_like(client) as http:
        await signed_in(http, tenant)
        page = await http.get("/console/search", params={"q": "parcel"})
        assert "2 conversations" in page.text
        link = re.search(r'href="(/console/search\?[^"]*channel=email[^"]*)"', page.text)
        assert link
        narrowed = await http.get(link.group(1).replace("&amp;", "&"), headers={"hx-request": "true", "hx-target": "results"})
        assert "1 conversation" in narrowed.text and 'aria-current="true"' in narrowed.text
        assert 'form="search-form" name="channel" value="email"' in narrowed.text
        assert "<html" not in narrowed.text and 'hx-swap-oob="innerHTML"' in narrowed.text


async def test_opening_a_conversation_is_the_ledgered_read_and_the_page_says_so(client, tenant):
    (cid,) = await _ingest(client, tenant, conversation(None, "Hello", "Hi"))
    async with browser_like(client) as http:
        await signed_in(http, tenant)
        page = await http.get(f"/console/conversations/{cid}")
        assert page.status_code == 200
        assert "Opening this conversation was recorded in the audit ledger" in page.text
    reads = [r for r in await ledger_actions(tenant) if r.action == "read"]
    assert len(reads) == 1 and reads[0].subject == str(cid) and reads[0].actor == f"key:{tenant.keys['compliance'].prefix}"
    api = await client.get(f"/v1/transcripts/{cid}", headers=tenant.headers("compliance"))
    api_read = [r for r in await ledger_actions(tenant) if r.action == "read"][-1]
    assert (reads[0].subject, reads[0].content_hash, reads[0].details) == (api_read.subject, api_read.content_hash, api_read.details)
    assert api.json()["content_sha256"] == reads[0].content_hash


async def test_revisions_are_switchable_and_each_read_names_its_revision(client, tenant):
    first = conversation("rev-1", "Hello, my parcel is late")
    (cid,) = await _ingest(client, tenant, first)
    second = conversation("rev-1", "Hello, my parcel is late", "We will send a new one today")
    revised = await client.post("/v1/transcripts", params={"on_conflict": "revise"}, json=second, headers=tenant.headers("ingest"))
    assert revised.status_code == 201 and revised.json()["status"] == "revised", revised.text
    async with browser_like(client) as http:
        await signed_in(http, tenant)
        latest = await http.get(f"/console/conversations/{cid}")
        assert "Revision 2 of 2" in latest.text and "We will send a new one today" in latest.text
        assert f'href="/console/conversations/{cid}?revision=1"' in latest.text and 'data-key="["' in latest.text
        earlier = await http.get(f"/console/conversations/{cid}", params={"revision": 1})
        assert "Revision 1 of 2" in earlier.text and "an earlier revision" in earlier.text and "We will send" not in earlier.text
        missing = await http.get(f"/console/conversations/{cid}", params={"revision": 3})
        assert missing.status_code == 404 and "there is no revision 3" in missing.text
    reads = [r.details.get("revision") for r in await ledger_actions(tenant) if r.action == "read"]
    assert reads == [2, 1]


async def test_a_stored_attachment_file_downloads_as_a_file_never_as_a_page(client, runtime, tenant):
    import hashlib

    from archive.attachments import FetchedFile
    from archive.ingest import Options, ingest
    from archive.models import ConversationIn

    html = b"<script>alert(document.cookie)</script>"
    digest = hashlib.sha256(html).hexdigest()
    body = conversation("with-file", "Here is the receipt", "And the photo")
    body["messages"][0]["attachments"] = [{"name": "kvittering.html", "content_type": "text/html", "sha256": digest}]
    body["messages"][1]["attachments"] = [{"name": "photo.jpg", "content_type": "image/jpeg", "sha256": "0" * 64}]
    principal = await runtime.tenants.authenticate(tenant.keys["ingest"].key)
    (result,) = await ingest(runtime, principal, [msgspec.convert(body, ConversationIn)],
                             options=Options(files={"with-file": [FetchedFile(sha256=digest, data=html)]}))
    async with browser_like(client) as http:
        await signed_in(http, tenant)
        page = await http.get(f"/console/conversations/{result.id}")
        assert f"/console/conversations/{result.id}/files/{digest}" in page.text
        stored = await http.get(f"/console/conversations/{result.id}/files/{digest}")
        assert stored.status_code == 200 and stored.content == html
        assert stored.headers["content-type"] == "application/octet-stream"  # never text/html on the console's origin
        assert stored.headers["content-disposition"].startswith('attachment; filename="kvittering.html"')
        assert "default-src 'none'" in stored.headers["content-security-policy"]
        unfetched = await http.get(f"/console/conversations/{result.id}/files/{'0' * 64}")
        assert unfetched.status_code == 404 and "no stored file" in unfetched.text
    assert [(r.action, r.content_hash) for r in await ledger_actions(tenant) if r.action == "read.file"] == [("read.file", digest)]


async def test_another_tenants_conversation_is_not_found(client, tenant, other_tenant):
    (cid,) = await _ingest(client, other_tenant, conversation(None, "Hello"))
    async with browser_like(client) as http:
        await signed_in(http, tenant)
        page = await http.get(f"/console/conversations/{cid}")
        assert page.status_code == 404 and "Not found" in page.text


async def test_redactions_and_attachments_are_shown_as_such(client, tenant):
    body = conversation(None, "My card is 4111 1111 1111 1111 and phone +47 912 34 567", "Thanks, noted")
    body["messages"][1]["attachments"] = [{"name": "kvittering.pdf", "content_type": "application/pdf", "size": 20480}]
    (cid,) = await _ingest(client, tenant, body)
    async with browser_like(client) as http:
        await signed_in(http, tenant)
        page = await http.get(f"/console/conversations/{cid}")
    assert '<span class="redaction" title="redacted at ingest: card number">4111 11** **** 1111</span>' in page.text
    assert '<span class="redaction" title="redacted at ingest: phone number">[phone]</span>' in page.text
    assert "Redacted at ingest: 1 card, 1 phone" in page.text
    assert "kvittering.pdf · application/pdf · 20.0 KB" in page.text
    assert "4111 1111 1111 1111" not in page.text


async def test_norwegian_russian_and_slovenian_text_arrive_intact(client, tenant):
    texts = ("Hei, pakken min er skadet – kan dere hjelpe? Æ Ø Å", "Здравствуйте! Где мой заказ?", "Naročilo še ni prispelo, žal mi je.")
    (cid,) = await _ingest(client, tenant, conversation(None, *texts, language="nb"))
    async with browser_like(client) as http:
        await signed_in(http, tenant)
        page = await http.get(f"/console/conversations/{cid}")
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    for text in texts:
        assert text in page.text


# --- audit ---------------------------------------------------------------------------------------


async def test_the_audit_page_filters_the_ledger_and_reveals_search_queries(client, tenant):
    async with browser_like(client) as http:
        await signed_in(http, tenant)
        await http.get("/console/search", params={"q": "chargeback"})
        page = await http.get("/console/audit", params={"action": "search"})
        assert page.status_code == 200
        assert "chargeback" in page.text and "query_sealed" not in page.text
        assert "session.start" not in page.text.split("<tbody")[1]
        verify = await http.get("/console/audit/verify", headers={"hx-request": "true"})
        assert "Intact" in verify.text and "<html" not in verify.text


async def test_date_filters_include_the_day_they_name(client, tenant):
    def started(at: str) -> dict[str, Any]:
        body = conversation(None, "parcel late", started_at=at, ended_at=at)
        body["messages"][0]["at"] = at
        return body

    await _ingest(client, tenant, started("2026-10-30T23:59:59Z"), started("2026-11-01T23:59:59Z"), started("2026-11-02T00:00:00Z"))
    async with browser_like(client) as http:
        await signed_in(http, tenant)
        page = await http.get("/console/search", params={"q": "parcel", "from": "2026-10-31", "to": "2026-11-01"})
        assert "1 conversation" in page.text
        bad = await http.get("/console/search", params={"q": "parcel", "from": "31.10.2026"})
        assert "<code>from</code>: a date as YYYY-MM-DD" in bad.text


async def test_a_bad_audit_date_is_named(client, tenant):
    async with browser_like(client) as http:
        await signed_in(http, tenant)
        page = await http.get("/console/audit", params={"from": "yesterday"})
        assert page.status_code == 200 and "<code>from</code>: a date as YYYY-MM-DD" in page.text
