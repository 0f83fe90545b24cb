"""The review console in Debian's Chromium (headless, driven by Playwright) against a live Parley:
sign in with a key, search with a syntax error and fix it, open a conversation, read the audit
ledger, sign out — by keyboard where a person would, with axe-core checking every page and the
Content-Security-Policy reporting no violation.

axe-core comes from the npm registry in the test's set-up (``npm pack``, into .tools/, not in
git) and is put into each page by the test, never by the app. Screenshots go to tests/artifacts/.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import expect

from tests.conftest import DATA_DIR, ENGINE, IN_CI, make_tenant
from tests.factories import conversation
from tests.servers import stop_live_server

CHROMIUM = "/usr/bin/chromium"
# The out-of-scope site as a word: "b2b-0" or "b2b/web", never the hex run inside a token.
OTHER_SITE = re.compile(r"\bb2b\b")
ROOT = Path(__file__).parent.parent
ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
AXE_VERSION = "4.14.1"
DESKTOP = {"width": 1280, "height": 860}
TABLET = {"width": 768, "height": 1024}

if not Path(CHROMIUM).exists():
    if IN_CI:
        raise RuntimeError(f"{CHROMIUM} is missing; make test installs Debian's chromium (CI=true forbids skipping)")
    pytest.skip("Debian's chromium is not installed (make test installs it)", allow_module_level=True)

pytestmark = pytest.mark.browser

# Records what the Content-Security-Policy blocked, so a test can say "nothing".
CSP_PROBE = "window.__csp = []; document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sourceFile + ':' + e.lineNumber + ' ' + e.sample));"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def axe_source() -> str:
    """axe-core from the npm registry, fetched once into .tools/ (gitignored)."""
    target = ROOT / ".tools" / f"axe-core-{AXE_VERSION}" / "axe.min.js"
    if not target.exists():
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("npm is needed to fetch axe-core for the accessibility checks")
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([npm, "pack", f"axe-core@{AXE_VERSION}", "--pack-destination", tmp], check=True, capture_output=True)
            with tarfile.open(Path(tmp) / f"axe-core-{AXE_VERSION}.tgz") as tar:
                member = tar.extractfile("package/axe.min.js")
                assert member is not None
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(member.read())
    return target.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def live():
    """Parley serving on a free port against the test database, scheduler on (the index drains)."""
    port = _free_port()
    data = Path(tempfile.mkdtemp(prefix="parley-console-live-"))
    env = {**os.environ, "PARLEY_DATA_DIR": str(data), "PARLEY_PORT": str(port), "PARLEY_HOST": "127.0.0.1",
           "PARLEY_SCHEDULER": "true", "PARLEY_DEMO": "false", "PARLEY_LOG_LEVEL": "warning"}
    if ENGINE == "sqlite":
        env["PARLEY_DATABASE_URL"] = f"sqlite:///{DATA_DIR / 'parley.sqlite3'}"
    log = open(data / "server.log", "w")
    server = subprocess.Popen([str(Path(sys.executable).with_name("parley")), "serve"], env=env, stdout=log, stderr=log,
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        server.kill()
        raise RuntimeError("parley serve did not start: " + (data / "server.log").read_text()[-2000:])
    yield base
    stop_live_server(server, data / "server.log")


@pytest.fixture(scope="module")
async def browser():
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        instance = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield instance
        await instance.close()


async def _ingest(live: str, tenant: Any, bodies: list[dict[str, Any]]) -> list[str]:
    async with httpx.AsyncClient(base_url=live, timeout=30) as api:
        ids = []
        for body in bodies:
            response = await api.post("/v1/transcripts", json=body, headers=tenant.headers("ingest"))
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
        # The live server's scheduler indexes within a second or two; wait until search sees them all.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            found = await api.post("/v1/search", json={"q": "", "size": 1}, headers=tenant.headers("compliance"))
            if found.json()["total"] >= len(ids):
                return ids
            await asyncio.sleep(0.25)  # polling another process's scheduler, with a deadline
        raise AssertionError("the live server did not index the conversations")


async def _check_page(page: Any, axe: str, name: str) -> None:
    """No serious or critical axe-core violations, nothing blocked by the CSP, a screenshot."""
    await page.wait_for_function("() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling')")
    await page.evaluate(axe)
    result = await page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    assert result["testEngine"] == {"name": "axe-core", "version": AXE_VERSION}
    serious = [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5], "help": v["help"]}
        for v in result["violations"] if v["impact"] in ("serious", "critical")
    ]
    assert serious == [], f"{name}: {json.dumps(serious, indent=1)}"
    assert await page.evaluate("window.__csp") == [], name
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"console-{name}-{ENGINE}.png"), full_page=True)


async def _no_sideways_scroll(page: Any) -> None:
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")


async def _new_page(browser: Any, viewport: dict[str, int]) -> Any:
    context = await browser.new_context(viewport=viewport)
    await context.add_init_script(CSP_PROBE)
    return context, await context.new_page()


TEXTS = {
    "en": ("I want a refund, the parcel is late. My card is 4111 1111 1111 1111.", "Sorry! The refund is on its way."),
    "nb": ("Hei, pakken min er skadet – kan dere hjelpe? Jeg vil ha refusjon.", "Beklager! Vi sender en ny pakke i dag."),
    "ru": ("Здравствуйте! Где мой заказ? Хочу вернуть деньги.", "Приносим извинения, заказ задерживается."),
    "sl": ("Naročilo še ni prispelo, želim vračilo denarja.", "Žal nam je, naročilo je na poti."),
}


async def test_a_compliance_officer_searches_reads_and_audits_by_keyboard(browser, live, runtime, client, axe_source):
    tenant = await make_tenant(runtime)
    bodies = [conversation(None, *TEXTS["en"], channel="web" if i % 3 else "email") for i in range(31)]
    bodies += [conversation(None, *TEXTS[lang], language=lang) for lang in ("nb", "ru", "sl")]
    await _ingest(live, tenant, bodies)
    context, page = await _new_page(browser, DESKTOP)

    # Signing in: the console sends us to the form and back.
    await page.goto(f"{live}/console/search?q=refund")
    assert "/console/sign-in" in page.url
    await _check_page(page, axe_source, "sign-in")
    # The key field takes the focus by itself (autofocus). Chromium applies autofocus at its next
    # rendering update, which on a busy machine can come after the load event: wait for it, or
    # the first keystrokes go nowhere.
    await expect(page.locator("#key")).to_be_focused()
    await page.keyboard.type(tenant.keys["compliance"].key)
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/console/search?q=refund")
    await page.wait_for_selector("#results .hit")

    # A syntax error, pointed at, then fixed — typed, not clicked.
    await page.keyboard.press("/")
    await page.keyboard.type("refund AND (late")
    await page.keyboard.press("Enter")
    error = page.locator("#q-error .syntax-error")
    await error.wait_for()
    assert "missing ')'" in await error.inner_text() and "(at character 12)" in await error.inner_text()
    assert await page.get_attribute("#q", "aria-invalid") == "true"
    assert await page.evaluate("[document.activeElement.id, document.activeElement.selectionStart]") == ["q", 11]
    await _check_page(page, axe_source, "search-syntax-error")
    await page.keyboard.press("End")
    await page.keyboard.type(" OR parcel)")
    await page.keyboard.press("Enter")
    await page.wait_for_function("() => !document.querySelector('#q-error .syntax-error') && document.querySelector('#results .hit')")
    assert await page.get_attribute("#q", "aria-invalid") is None
    assert "q=refund+AND+%28late+OR+parcel%29" in page.url  # the address is the search: shareable, reloadable
    title = await page.inner_text("#hits-title")
    assert title == "31 conversations", title
    assert await page.locator("#results .hit mark").count() > 0
    assert "4111 11** **** 1111" in await page.inner_text("#results")  # a redaction, marked
    await _check_page(page, axe_source, "search-results")

    # A facet narrows the results without loading the page again.
    await page.evaluate("window.__same_page = true")
    await page.click(".facet a:has-text('email')")
    await page.wait_for_function("() => document.querySelector('#hits-title').textContent.trim() === '11 conversations'")
    assert await page.evaluate("window.__same_page") is True
    await page.click(".chip")  # and the chip takes it off again
    await page.wait_for_function("() => document.querySelector('#hits-title').textContent.trim() === '31 conversations'")

    # Infinite scroll on the cursor: the 26th hit arrives when the list end comes into view.
    assert await page.locator("#results .hit").count() == 25
    await page.locator("#more").scroll_into_view_if_needed()
    await page.wait_for_function("() => document.querySelectorAll('#results .hit').length === 31")
    assert await page.evaluate("window.__same_page") is True

    # j moves through the results, Enter opens one: the read is ledgered, and the page says so.
    await page.keyboard.press("j")
    await page.keyboard.press("j")
    second = await page.evaluate("document.activeElement.textContent.trim()")
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/console/conversations/**")
    assert f"Conversation {second}" in await page.inner_text("h1")
    assert "Opening this conversation was recorded in the audit ledger" in await page.inner_text(".ledgered")
    assert await page.locator(".messages .redaction").first.inner_text() == "4111 11** **** 1111"
    await _check_page(page, axe_source, "conversation")
    await page.keyboard.press("u")
    await page.wait_for_url("**/console/search?**")

    # Russian, Norwegian and Slovenian text: found, shown as typed, in a font that has the letters.
    for lang, word in (("ru", "заказ"), ("nb", "pakke"), ("sl", "naročilo")):
        await page.goto(f"{live}/console/search?q={word}")
        await page.click("#results .hit .item-link")
        await page.wait_for_url("**/console/conversations/**")
        shown = await page.inner_text(".messages")
        assert TEXTS[lang][0] in shown and TEXTS[lang][1] in shown
        assert await page.get_attribute(".messages .text", "lang") == lang
        await page.screenshot(path=str(ARTIFACTS / f"console-conversation-{lang}-{ENGINE}.png"), full_page=True)

    # The audit page: the reads and searches just made, and the chain verified.
    await page.keyboard.press("g")
    await page.keyboard.press("a")
    await page.wait_for_url("**/console/audit")
    await page.wait_for_selector("#verify .verified.ok")
    await page.fill("#f-action", "read")
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/console/audit?**action=read**")
    assert await page.locator("table.ledger tbody tr").count() == 4
    await _check_page(page, axe_source, "audit")

    # Signing out ends the session: the console asks for a key again.
    await page.click("text=Sign out")
    await page.wait_for_url("**/console/sign-in?signed_out=true")
    assert "You are signed out" in await page.inner_text("main")
    await page.goto(f"{live}/console/search")
    assert "/console/sign-in" in page.url
    await context.close()


async def test_the_console_fits_a_tablet(browser, live, runtime, client, axe_source):
    tenant = await make_tenant(runtime)
    (cid, *_) = await _ingest(live, tenant, [conversation(None, *TEXTS["en"]) for _ in range(3)])
    context, page = await _new_page(browser, TABLET)
    await page.goto(f"{live}/console/sign-in")
    await page.fill("#key", tenant.keys["compliance"].key)
    await page.click("button:has-text('Sign in')")
    await page.goto(f"{live}/console/search?q=refund")
    await page.wait_for_selector("#results .hit")
    await _no_sideways_scroll(page)
    await _check_page(page, axe_source, "search-tablet")
    await page.goto(f"{live}/console/conversations/{cid}")
    await _no_sideways_scroll(page)
    await _check_page(page, axe_source, "conversation-tablet")
    await context.close()


async def test_a_revoked_key_takes_the_open_console_with_it(browser, live, runtime, client):
    tenant = await make_tenant(runtime)
    context, page = await _new_page(browser, DESKTOP)
    await page.goto(f"{live}/console/sign-in")
    await page.fill("#key", tenant.keys["compliance"].key)
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/console/search")
    async with httpx.AsyncClient(base_url=live) as api:
        revoked = await api.post(f"/v1/admin/keys/{tenant.keys['compliance'].id}/revoke", headers=tenant.headers("admin"))
        assert revoked.status_code == 200
    await page.fill("#q", "refund")
    await page.keyboard.press("Enter")  # an htmx request: the answer sends the whole page to sign-in
    # Typing also fires the as-you-type syntax check, whose answer redirects too: one of the two
    # navigations can abort the other (net::ERR_ABORTED for wait_for_url), so the test waits for
    # where the page ends up rather than for one navigation.
    await expect(page).to_have_url(re.compile(r"/console/sign-in\?next="), timeout=15_000)
    await context.close()


RISKY = ("Hei, jeg heter Ola Nordmann. Er dette trygt?", "Hi Ola, Kari here: these are guaranteed returns, trust me.")


async def _flag(live: str, tenant: Any, bodies: list[dict[str, Any]]) -> dict[str, str]:
    """A policy, the conversations (flagged as they arrive), and external_id → review item id."""
    async with httpx.AsyncClient(base_url=live, timeout=30) as api:
        policy = {"name": "guarantees", "query": '"guaranteed returns"', "patterns": [], "scope": {}, "sample_percent": 0,
                  "severity": "high", "enabled": True}
        created = await api.post("/v1/supervision/policies", json=policy, headers=tenant.headers("compliance"))
        assert created.status_code == 201, created.text
        ingested = await api.post("/v1/transcripts", json={"conversations": bodies}, headers=tenant.headers("ingest"))
        assert ingested.status_code == 201, ingested.text
        listed = await api.get("/v1/reviews", params={"limit": 200}, headers=tenant.headers("compliance"))
        return {i["external_id"]: i["id"] for i in listed.json()["items"]}


async def test_a_reviewer_clears_the_queue_by_keyboard_and_never_sees_other_sites(browser, live, runtime, client, axe_source):
    from archive.tenancy import create_api_key

    tenant = await make_tenant(runtime)
    bodies = [conversation(f"shop-{i}", *RISKY) for i in range(4)] + [conversation(f"b2b-{i}", *RISKY, site="b2b") for i in range(2)]
    items = await _flag(live, tenant, bodies)
    assert len(items) == 6
    key = await create_api_key(tenant.id, "reviewer", "browser reviewer", ["shop"])
    context, page = await _new_page(browser, DESKTOP)
    await page.goto(f"{live}/console")
    await expect(page.locator("#key")).to_be_focused()  # autofocus, applied after load (see above)
    await page.keyboard.type(key.key)
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/console/reviews")
    rows = page.locator("[data-queue] > .queue-row")
    assert await rows.count() == 4
    listed = await page.inner_text("#queue-list")
    # A word match: the page carries random hex (CSRF token, asset versions, ids) where "b2b" turns up by chance.
    assert "shop-0" in listed and not OTHER_SITE.search(await page.content())
    assert "Ola" not in await page.inner_text("#item")  # pseudonyms, not names
    assert await page.locator("#item mark.match").count() >= 2
    await _check_page(page, axe_source, "review-queue")

    # r resolves the item shown and the next one opens, three times, without a page load.
    order = [t.strip() for t in await page.locator("[data-queue] .row-title").all_inner_texts()]
    await page.evaluate("window.__same_page = true")
    first = await page.inner_text("#item-title")
    seen = [first.split()[0]]
    for _ in range(3):
        await page.keyboard.press("r")
        await page.wait_for_function("(before) => { const t = document.querySelector('#item-title'); return t && !t.textContent.startsWith(before); }",
                                     arg=seen[-1])
        seen.append((await page.inner_text("#item-title")).split()[0])
    assert seen == order  # in the queue's order (flagged at, then id)
    assert await page.evaluate("window.__same_page") is True
    assert await page.inner_text("#queue-tabs a[aria-current=page] .count") == "1"

    # A note (n, then Ctrl+Enter), a claim (c), and k back to a resolved item.
    await page.keyboard.press("n")  # (a key pressed while the item settles waits for it)
    await page.wait_for_function("() => document.activeElement.id === 'note'")
    await page.keyboard.type("Checked the agent's other chats.")
    await page.keyboard.press("Control+Enter")
    await page.wait_for_selector("#comments li:has-text('Checked the agent')")
    await page.wait_for_function("() => document.getElementById('note').value === '' && document.activeElement.id !== 'note'")
    await page.keyboard.press("c")
    await page.wait_for_selector("#item-head .status-badge.status-claimed")
    await _check_page(page, axe_source, "review-item-claimed")
    await page.keyboard.press("k")
    await page.wait_for_function("(id) => document.querySelector('#item-title').textContent.startsWith(id)", arg=order[2])
    assert (await page.inner_text("#item-head .status-badge")).lower() == "resolved"

    async with httpx.AsyncClient(base_url=live) as api:
        statuses = (await api.get("/v1/reviews", params={"site": "shop"}, headers=tenant.headers("compliance"))).json()["items"]
    assert sorted(i["status"] for i in statuses) == ["claimed", "resolved", "resolved", "resolved"]

    # Out of scope by address too: the console answers as if the item did not exist.
    response = await page.goto(f"{live}/console/reviews/{items['b2b-0']}")
    assert response.status == 404 and not OTHER_SITE.search(await page.inner_text("main"))
    await context.close()


async def test_a_compliance_officer_builds_a_case_with_a_hold_and_an_export(browser, live, runtime, client, axe_source):
    tenant = await make_tenant(runtime)
    await _ingest(live, tenant, [conversation(None, *RISKY) for _ in range(3)] + [conversation(None, *TEXTS["en"])])
    context, page = await _new_page(browser, DESKTOP)
    await page.goto(f"{live}/console/sign-in")
    await page.fill("#key", tenant.keys["compliance"].key)
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/console/search")
    await page.keyboard.press("g")
    await page.keyboard.press("c")
    await page.wait_for_url("**/console/cases")
    await _check_page(page, axe_source, "cases")

    await page.fill("#case-name", "Complaint 2026-114: guaranteed returns")
    await page.fill("#case-description", "A customer says an agent promised returns.")
    await page.click("text=Open the case")
    await page.wait_for_url("**/console/cases/*")
    await page.fill("#s-name", "guarantees")
    await page.fill("#s-q", '"guaranteed returns"')
    await page.click("text=Save the search")
    await page.wait_for_selector("#searches .case-list li:has-text('guarantees')")
    await page.click("#searches button:has-text('Run')")
    await page.wait_for_selector("#searches .run:has-text('3 conversations')")

    await page.fill("#h-name", "Complaint 2026-114 hold")
    await page.fill("#h-reason", "Litigation expected")
    await page.click("text=Place the hold")  # on the saved search, the first choice
    await page.wait_for_selector("#holds .case-list li:has-text('Complaint 2026-114 hold') .badge.status-active")

    await page.click("text=Start the export")
    await page.wait_for_selector("#exports .badge.status-queued, #exports .badge.status-running, #exports .badge.status-done")
    download_link = page.locator("#exports a:has-text('Download')")
    # The page polls while the scheduler builds it: seconds alone, longer on a loaded machine
    # (a bound, not a sleep: the wait ends when the link appears).
    await download_link.wait_for(timeout=120_000)
    await _check_page(page, axe_source, "case")
    async with page.expect_download() as info:
        await download_link.click()
    download = await info.value
    with open(await download.path(), "rb") as fh:  # noqa: ASYNC230 - a test reading two bytes
        assert fh.read(2) == b"PK" and download.suggested_filename.endswith(".zip")

    await page.fill("#close-reason", "Settled")
    await page.get_by_role("button", name="Close the case").click()
    await page.wait_for_selector("#holds .badge.status-released")
    assert "Reopen the case" in await page.inner_text("main")
    async with httpx.AsyncClient(base_url=live) as api:
        entries = (await api.get("/v1/audit", params={"limit": 1000}, headers=tenant.headers("compliance"))).json()
    actions = [e["action"] for e in entries]
    for expected in ("case.create", "case.search.add", "case.search.run", "hold.create", "export.create", "export.download", "hold.release", "case.close"):
        assert expected in actions, expected
    await context.close()


# A visitor who holds a key down, a pasted token, a URL without spaces: one "word" of 400 letters.
LONG_WORD = "refund" + "Z" * 400


async def test_text_of_any_length_never_pushes_a_page_sideways(browser, live, runtime, client):
    """Whatever the archive holds — a 400-letter word in a message, a note, a case's name, a saved
    search whose name fills the hold and export choices — wraps inside the page, at desktop and
    tablet widths: nothing scrolls sideways, and the facets stay beside (or above) the results."""
    tenant = await make_tenant(runtime)
    items = await _flag(live, tenant, [conversation("long-1", f"I want a refund {LONG_WORD}", "These are guaranteed returns " + LONG_WORD)])
    item = items["long-1"]
    async with httpx.AsyncClient(base_url=live, timeout=30) as api:
        headers = tenant.headers("compliance")
        noted = await api.post(f"/v1/reviews/{item}/actions", json={"action": "comment", "note": "see " + LONG_WORD}, headers=headers)
        assert noted.status_code == 200, noted.text
        case = (await api.post("/v1/cases", json={"name": "Case " + "Y" * 190, "description": "About " + LONG_WORD}, headers=headers)).json()
        saved = await api.post(f"/v1/cases/{case['id']}/searches", json={"name": "S" * 190, "q": LONG_WORD}, headers=headers)
        assert saved.status_code == 201, saved.text
    pages = ["/console/search?q=refund", f"/console/reviews/{item}?status=all", "/console/cases", f"/console/cases/{case['id']}"]
    for viewport in (DESKTOP, TABLET):
        context, page = await _new_page(browser, viewport)
        await page.goto(f"{live}/console/sign-in")
        await page.fill("#key", tenant.keys["compliance"].key)
        await page.keyboard.press("Enter")
        await page.wait_for_url("**/console/search")
        for path in pages:
            await page.goto(live + path)
            width = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
            assert width[0] <= width[1] + 1, f"{path} at {viewport['width']} px is {width[0]} px wide"
        await context.close()


# Is `word`, inside the element `selector`, drawn left to right (its first letter left of its last)?
READS_LEFT_TO_RIGHT = """([selector, word]) => {
    const root = document.querySelector(selector);
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        const at = node.data.indexOf(word);
        if (at < 0) continue;
        const letter = (i) => { const r = document.createRange(); r.setStart(node, i); r.setEnd(node, i + 1); return r.getBoundingClientRect().left; };
        return letter(at) < letter(at + word.length - 1);
    }
    throw new Error(word + " is not in " + selector);
}"""


async def test_a_right_to_left_override_in_a_name_cannot_reorder_the_console_around_it(browser, live, runtime, client):
    """An id or a name is the platform's data: one ending in U+202E (right-to-left override) must
    not turn what the console writes after it around — "· visitor v-9" shown as "9-v rotisiv ·"
    misstates who is who. Each such value is set apart (a bidirectional isolate)."""
    tenant = await make_tenant(runtime)
    body = conversation("rtl-1", *RISKY, visitor={"id": "v-9", "name": "Mallory"}, agents=[{"id": "agent-\u202e", "name": "Eve\u202e"}])
    items = await _flag(live, tenant, [body])
    async with httpx.AsyncClient(base_url=live, timeout=30) as api:  # the live server's scheduler indexes it
        deadline = time.monotonic() + 30
        while (await api.post("/v1/search", json={"q": "", "size": 1}, headers=tenant.headers("compliance"))).json()["total"] < 1:
            assert time.monotonic() < deadline, "the live server did not index the conversation"
            await asyncio.sleep(0.25)  # polling another process's scheduler, with a deadline
    context, page = await _new_page(browser, DESKTOP)
    await page.goto(f"{live}/console/sign-in")
    await page.fill("#key", tenant.keys["compliance"].key)
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/console/search")
    await page.goto(f"{live}/console/search?q=guaranteed")
    await page.wait_for_selector("#results .hit")
    assert await page.evaluate(READS_LEFT_TO_RIGHT, ["#results .hit .meta", "visitor"])
    await page.goto(f"{live}/console/reviews/{items['rtl-1']}")
    assert await page.evaluate(READS_LEFT_TO_RIGHT, ["#item .review-conversation .meta", "whole record"])
    await page.click("#item .review-conversation .meta a")  # the whole record
    await page.wait_for_url("**/console/conversations/**")
    assert await page.evaluate(READS_LEFT_TO_RIGHT, [".facts", "Eve"])
    await context.close()


async def test_the_heartbeat_takes_a_page_whose_session_ended_to_sign_in_and_back_to_that_page(browser, live, runtime, client):
    """The session ends elsewhere (another tab signs out); within a minute the open page's
    heartbeat takes it to sign-in, and signing in again comes back to that page — not to the
    heartbeat's own address, a line of JSON. The page's clock is Playwright's: the minute passes
    at once."""
    tenant = await make_tenant(runtime)
    context, page = await _new_page(browser, DESKTOP)
    await page.clock.install()
    await page.goto(f"{live}/console/sign-in")
    await page.fill("#key", tenant.keys["compliance"].key)
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/console/search")
    await page.goto(f"{live}/console/cases?status=open")
    other = await context.new_page()
    await other.goto(f"{live}/console/account")
    await other.click("text=Sign out")
    await other.wait_for_url("**/console/sign-in?signed_out=true")
    await page.clock.run_for(61_000)
    await page.wait_for_url("**/console/sign-in?next=%2Fconsole%2Fcases%3Fstatus%3Dopen")
    await page.fill("#key", tenant.keys["compliance"].key)
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/console/cases?status=open")
    assert await page.inner_text("h1") == "Cases"
    await context.close()


async def test_a_refused_reveal_leaves_the_item_and_the_queue_working(browser, live, runtime, client):
    """A reason of spaces passes the browser's `required` and is refused by the server: the
    refusal shows next to the reveal form, the item stays on screen with its pseudonyms, and the
    queue still opens the next item (the pane it loads into is still there)."""
    tenant = await make_tenant(runtime)
    items = await _flag(live, tenant, [conversation(f"r-{i}", *RISKY) for i in range(2)])
    context, page = await _new_page(browser, DESKTOP)
    await page.goto(f"{live}/console/sign-in")
    await page.fill("#key", tenant.keys["compliance"].key)
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/console/search")
    await page.goto(f"{live}/console/reviews/{items['r-0']}")
    await page.fill("#reveal-reason", "   ")
    await page.keyboard.press("Enter")
    await page.wait_for_selector("#reveal-problem .problem")
    assert "a reason is needed" in await page.inner_text("#reveal-problem")
    assert "guaranteed returns" in await page.inner_text("#item .messages")
    assert "Ola" not in await page.inner_text("#item")
    await page.click(f"#row-{items['r-1']} .item-link")
    await page.wait_for_selector(f"#item[data-review='{items['r-1']}']")
    async with httpx.AsyncClient(base_url=live) as api:
        entries = (await api.get("/v1/audit", params={"action": "review.reveal"}, headers=tenant.headers("compliance"))).json()
    assert entries == []
    await context.close()
