"""The snippet on hostile pages, in Debian's Chromium: pages whose own scripts replace or break the
built-ins a third-party script relies on, pages with a strict Content Security Policy and Trusted
Types, pages that clobber names. On each the invitation still appears, styled and working, and the
snippet throws nothing into the page and adds no global but `parley`.

Reuses the live Parley, page server and browser of tests/test_browser.py (its rule invites on
*/shop* pages after a second on the page).
"""
# ruff: noqa: F811  (fixtures imported from tests.test_browser)

from __future__ import annotations

import json

import pytest
from playwright.async_api import expect

from proactive import store
from tests.test_browser import RULE, _page, _poll, _write, browser, live, shop  # noqa: F401  (fixtures)

MESSAGE = RULE["invite"]["message"]

# What each page runs before the snippet (an inline script in <head>, or markup).
PROTOTYPE_JS = """<script>
// Prototype.js 1.6: arrays and strings serialise themselves, so JSON.stringify double-encodes them.
Array.prototype.toJSON = function () { return '[' + this.map(function (x) { return JSON.stringify(x); }).join(', ') + ']'; };
String.prototype.toJSON = function () { return '"' + this + '"'; };
</script>"""
POLLUTED_PROTOTYPES = """<script>
// Libraries of the 2000s: enumerable methods on Object.prototype and a forEach that walks for…in.
Object.prototype.extend = function (o) { for (var k in o) this[k] = o[k]; return this; };
Array.prototype.forEach = function (f, t) { for (var i in this) f.call(t, this[i], i, this); };
Array.prototype.each = function (f) { this.forEach(f); };
</script>"""
FETCH_THROWS = """<script>
// An ad-blocker shim or a monitoring wrapper gone wrong.
window.fetch = function () { throw new TypeError('fetch is blocked on this page'); };
</script>"""
FETCH_REJECTS = """<script>
// An offline-first wrapper that answers every request it does not know with a failure.
window.fetch = function () { return Promise.reject(new TypeError('Failed to fetch')); };
</script>"""
PROMISE_AND_EVENTSOURCE_REPLACED = """<script>
window.Promise = function OldPolyfill() { throw new Error('not this Promise'); };
window.EventSource = function () { throw new Error('EventSource is not allowed here'); };
</script>"""
HISTORY_FROZEN = """<script>
// A router that locks navigation down so nothing else can patch it.
var push = history.pushState.bind(history), replace = history.replaceState.bind(history);
Object.defineProperty(history, 'pushState', {value: function () { return push.apply(null, arguments); }, writable: false});
Object.defineProperty(history, 'replaceState', {value: function () { return replace.apply(null, arguments); }, writable: false});
Object.freeze(history);
</script>"""
OBJECT_PROTOTYPE_FROZEN = "<script>Object.freeze(Object.prototype); Object.freeze(Array.prototype); Object.freeze(Function.prototype);</script>"
STORAGE_DENIED = """<script>
// What Chrome does with "block all cookies": touching localStorage throws.
Object.defineProperty(window, 'localStorage', {get: function () { throw new DOMException('Access is denied', 'SecurityError'); }});
</script>"""
BUILT_INS_THAT_THROW = """<script>
Function.prototype.bind = function () { throw new Error('bind is broken on this page'); };
Array.prototype.map = Array.prototype.filter = Array.prototype.forEach = function () { throw new Error('so are these'); };
addEventListener('keydown', function () { throw new Error('a page listener that throws'); }, true);
</script>"""
ELEMENT_NAME_TAKEN = """<script>
customElements.define('parley-invitation', class extends HTMLElement {
  constructor() { super(); this.attachShadow({mode: 'closed'}).textContent = 'the page owns this name'; }
});
</script>"""
STUB_AND_HANDLERS = """<script>
window.parley = window.parley || function () { (parley.q = parley.q || []).push(arguments); };
parley('on', 'show', function (inv) { window.seen = inv.message; });
</script>"""


def _csp(live, extra: str = "") -> str:
    policy = f"default-src 'self'; script-src 'self' {live['api']}; connect-src {live['api']}; style-src 'self'{extra}"
    return f'<meta http-equiv="Content-Security-Policy" content="{policy}">'


async def _open(browser, live, name: str, html: str, on_request=None):
    """A fresh visitor on the page; errors the page reports are collected in page.errors."""
    context = await browser.new_context()
    page = await context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(f"{error.message}\n{error.stack}"))
    if on_request:
        page.on("request", on_request)
    await page.goto(_write(live, f"shop-hostile-{name}.html", html))
    return page


async def _assert_invitation_works(page) -> None:
    """The invitation appears once, with the rule's text, styled by the widget (not the page), and
    takes focus; Escape dismisses it."""
    dialog = page.locator("[data-parley-widget] [role=dialog]")
    await dialog.wait_for(timeout=30_000)
    await expect(dialog).to_contain_text(MESSAGE)
    # Locators run in Playwright's own world: the page's broken built-ins do not reach them.
    await expect(page.locator("[data-parley-widget]")).to_have_count(1)
    await expect(dialog).to_have_attribute("aria-live", "polite")
    await expect(dialog).to_have_css("position", "fixed")
    await expect(dialog).to_have_css("border-top-left-radius", "12px")
    accept = dialog.locator("button.a")
    await expect(accept).to_have_css("background-color", "rgb(26, 86, 219)")
    await expect(accept).to_be_focused()
    await page.keyboard.press("Escape")
    await page.wait_for_selector("[data-parley-widget]", state="detached")


def _pageviews_sent() -> tuple[dict[str, list[str]], object]:
    """The page views in the batches the page sends, by batch id (a batch sent again counts once)."""
    batches: dict[str, list[str]] = {}

    def record(request) -> None:
        if "/v1/collect" in request.url:
            body = json.loads(request.post_data)
            batches[body["batch_id"]] = [e["url"] for e in body["events"] if e["type"] == "pageview"]

    return batches, record


def _snippet_errors(page) -> list[str]:
    return [e for e in page.errors if "snippet.js" in e]


HOSTILE_PAGES = {
    "prototype-js-tojson": PROTOTYPE_JS,
    "polluted-prototypes": POLLUTED_PROTOTYPES,
    "fetch-throws": FETCH_THROWS,
    "fetch-rejects": FETCH_REJECTS,
    "promise-and-eventsource-replaced": PROMISE_AND_EVENTSOURCE_REPLACED,
    "history-frozen": HISTORY_FROZEN,
    "object-prototype-frozen": OBJECT_PROTOTYPE_FROZEN,
    "storage-denied": STORAGE_DENIED,
    "element-name-taken": ELEMENT_NAME_TAKEN,
    "built-ins-that-throw": BUILT_INS_THAT_THROW,
    "json-parse-replaced": "<script>JSON.parse = function () { throw new SyntaxError('this page parses its own way'); };</script>",
    "frozen-globals": "<script>[navigator, document, history, JSON, Math, console].forEach(Object.freeze);</script>",
    "base-href-elsewhere": '<base href="https://elsewhere.invalid/assets/">',
}


@pytest.mark.parametrize("name", HOSTILE_PAGES)
async def test_the_invitation_works_on_a_page_that_breaks_built_ins(browser, live, shop, name):
    page = await _open(browser, live, name, _page(name, shop.embed, HOSTILE_PAGES[name]))
    await _assert_invitation_works(page)
    assert _snippet_errors(page) == []
    await page.context.close()


async def test_the_widget_is_styled_under_a_strict_content_security_policy(browser, live, shop):
    """style-src 'self' forbids <style> elements and style attributes: the widget's styles are a
    constructed stylesheet, which the policy does not govern."""
    page = await _open(browser, live, "csp", _page("csp", shop.embed, _csp(live)))
    await _assert_invitation_works(page)
    assert _snippet_errors(page) == []
    await page.context.close()


async def test_the_widget_works_where_trusted_types_are_enforced(browser, live, shop):
    """require-trusted-types-for 'script' makes innerHTML of a string throw: the widget is built
    from elements and text."""
    page = await _open(browser, live, "trusted-types", _page("tt", shop.embed, _csp(live, "; require-trusted-types-for 'script'")))
    await _assert_invitation_works(page)
    assert _snippet_errors(page) == []
    await page.context.close()


async def test_the_widget_stays_in_view_when_the_body_is_transformed(browser, live, shop):
    """A transformed <body> (an old iOS rendering hack) is the containing block of position:fixed
    descendants: a widget inside it would sit at the bottom of a long page, out of view."""
    head = "<style>body { transform: translateZ(0); min-height: 3000px; }</style>"
    page = await _open(browser, live, "transformed", _page("transformed", shop.embed, head))
    dialog = page.locator("[data-parley-widget] [role=dialog]")
    await dialog.wait_for(timeout=30_000)
    box = await dialog.bounding_box()
    viewport = page.viewport_size
    assert box and viewport and 0 <= box["y"] and box["y"] + box["height"] <= viewport["height"], (box, viewport)
    await _assert_invitation_works(page)
    await page.context.close()


async def test_a_page_whose_elements_clobber_names_still_gets_the_invitation(browser, live, shop):
    """A form named currentScript shadows document.currentScript; an element with id parley is
    window.parley until the snippet takes the name."""
    body = '<form name="currentScript"></form><div id="parley"></div>'
    page = await _open(browser, live, "clobbered", _page("clobbered", shop.embed, body=body))
    await _assert_invitation_works(page)
    assert _snippet_errors(page) == []
    await page.context.close()


async def test_a_blocking_tag_in_the_head_of_a_quirks_mode_page_works(browser, live, shop):
    """Old CMS templates: no doctype, and the tag in <head> without async (no <body> yet when it runs)."""
    html = _page("quirks", "", shop.embed.replace("<script async ", "<script ")).replace("<!doctype html>", "")
    page = await _open(browser, live, "quirks", html)
    assert await page.evaluate("document.compatMode") == "BackCompat"
    await _assert_invitation_works(page)
    assert _snippet_errors(page) == []
    await page.context.close()


async def test_a_page_rewritten_by_document_write_still_gets_the_invitation(browser, live, shop):
    """A late ad script's document.write replaces the document (and drops every listener) after the
    snippet ran: the batch timer, the stream and the widget do not depend on the old document."""
    page = await _open(browser, live, "rewritten", _page("rewritten", shop.embed))
    await page.wait_for_function("localStorage.getItem('parley_vid') !== null")  # the snippet runs
    await page.evaluate("document.open(); document.write('<!doctype html><title>ad</title><p>rewritten</p>'); document.close()")
    await _assert_invitation_works(page)
    assert _snippet_errors(page) == []
    await page.context.close()


async def test_queued_calls_run_once_the_snippet_loads_even_when_the_stream_cannot_open(browser, live, shop):
    head = STUB_AND_HANDLERS + PROMISE_AND_EVENTSOURCE_REPLACED
    page = await _open(browser, live, "stub", _page("stub", shop.embed, head))
    await _assert_invitation_works(page)
    assert await page.evaluate("window.seen") == MESSAGE
    assert _snippet_errors(page) == []
    await page.context.close()


async def test_the_snippet_included_twice_runs_once(browser, live, shop):
    batches, record = _pageviews_sent()
    page = await _open(browser, live, "twice", _page("twice", shop.embed + shop.embed), on_request=record)
    await _assert_invitation_works(page)  # one widget, not two
    assert sum(batches.values(), []) == [page.url], batches
    await page.context.close()


async def test_a_router_that_replaces_state_without_navigating_counts_no_pageview(browser, live, shop):
    """Routers store state with replaceState on the same URL (Next.js does at start): a page view is
    a new address, not a history call."""
    batches, record = _pageviews_sent()
    page = await _open(browser, live, "replace", _page("replace", shop.embed), on_request=record)
    await page.wait_for_function("localStorage.getItem('parley_vid') !== null")  # the snippet runs
    await page.evaluate("for (let i = 0; i < 5; i++) history.replaceState({i}, '')")
    await _assert_invitation_works(page)  # the first batch has gone out
    await page.click("#nav")  # a real navigation (pushState to a new address): a second page view
    await page.evaluate("new Promise(r => setTimeout(r, 0)).then(() => parley('flush'))")

    async def pageviews():
        return sum(batches.values(), [])

    sent = await _poll(pageviews, lambda p: len(p) >= 2, timeout=20)
    assert sent == [f"{live['origin']}/shop-hostile-replace.html", page.url] and "shop-spa-" in page.url, batches
    await page.context.close()


async def test_the_snippet_adds_no_global_but_parley(browser, live, shop):
    before = "<script>window.namesBefore = Object.getOwnPropertyNames(window);</script>"
    page = await _open(browser, live, "globals", _page("globals", shop.embed, before))
    await _assert_invitation_works(page)
    added = await page.evaluate("Object.getOwnPropertyNames(window).filter(n => !namesBefore.includes(n) && n !== 'namesBefore')")
    assert added == ["parley"]
    await page.context.close()


async def test_events_queued_at_pagehide_arrive_when_send_beacon_throws(browser, live, shop, runtime):
    (live["pages"] / "other.html").write_text("<!doctype html><p>elsewhere</p>", encoding="utf-8")
    head = "<script>navigator.sendBeacon = function () { throw new Error('beacons are blocked'); };</script>"
    page = await _open(browser, live, "beacon", _page("beacon", shop.embed, head))
    await page.wait_for_function("localStorage.getItem('parley_vid') !== null")
    await page.evaluate("parley('track', 'leaving_now')")  # queued; the batch timer has not fired yet
    await page.click("#away")
    await page.wait_for_url("**/other.html")

    async def stored():
        crypto = (await runtime.tenants.context(shop.id)).crypto
        return sum(e["name"] == "leaving_now" for e in await store.opened_events(shop.id, crypto))

    assert await _poll(stored, lambda n: n == 1, timeout=20) == 1
    await page.context.close()
