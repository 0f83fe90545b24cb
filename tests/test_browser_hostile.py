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
    # Legacy page scripts declare `var URL = "/servlet/…"` at top level, which replaces window.URL
    # (public JSP and ASP pages do; a `URL` constructor can not be counted on).
    "url-global-taken": "<script>var URL = '/api/v2/';</script>",
    # Old Date shims return the time as text; nothing may hinge on Date.now() being a number.
    "date-now-returns-text": "<script>(function (n) { Date.now = function () { return '' + n.call(Date); }; })(Date.now);</script>",
    # The toJSON-on-prototypes family of the Prototype.js era, on Object itself: JSON.stringify
    # then writes every object (the batch included) as what toJSON returns.
    "object-prototype-tojson": "<script>Object.defineProperty(Object.prototype, 'toJSON', "
                               "{value: function () { return {}; }, writable: true, configurable: true});</script>",
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


async def _stored(runtime, shop) -> list[dict]:
    crypto = (await runtime.tenants.context(shop.id)).crypto
    return await store.opened_events(shop.id, crypto)


async def _types(runtime, shop) -> list[str]:
    return [e["type"] for e in await _stored(runtime, shop)]


def _collect_bodies(page) -> list[dict]:
    """The batches the page sends to /v1/collect, as sent."""
    bodies: list[dict] = []
    page.on("request", lambda r: bodies.append(json.loads(r.post_data)) if "/v1/collect" in r.url and r.post_data else None)
    return bodies


UNSERIALISABLE = {
    # Pages hand framework model objects to analytics calls; JSON.stringify throws on a cycle and on
    # a BigInt (ECMA-262 SerializeJSONProperty), and a getter may throw when it is read.
    "cycle": "var m = {sku: 'x'}; m.self = m;",
    "bigint": "var m = {sku: 'x', price: 10n};",
    "throwing-getter": "var m = {sku: 'x', get price() { throw new Error('not loaded'); }};",
}


@pytest.mark.parametrize("kind", UNSERIALISABLE)
async def test_an_event_the_page_cannot_serialise_costs_only_its_own_props(browser, live, shop, runtime, kind):
    """Props are copied when the page passes them (text, numbers, booleans and null: what intake
    keeps), so a cyclic object, a BigInt or a throwing getter can not stop later batches."""
    page = await _open(browser, live, f"unserialisable-{kind}", _page(kind, shop.embed))
    await page.wait_for_function("localStorage.getItem('parley_vid') !== null")
    await page.evaluate(UNSERIALISABLE[kind] + " parley('track', 'add_to_cart', m); parley('flush'); parley('goal', 'purchase'); parley('flush')")

    async def names():
        return [(e["type"], e["name"]) for e in await _stored(runtime, shop) if e["type"] in ("custom", "goal")]

    assert sorted(await _poll(names, lambda n: len(n) == 2, timeout=15)) == [("custom", "add_to_cart"), ("goal", "purchase")]
    assert _snippet_errors(page) == []
    await page.context.close()


CLOCK_FAST = """(() => {
  // The visitor's computer clock runs 3 minutes fast (no NTP, or set ahead on purpose).
  const Real = Date, skew = 3 * 60 * 1000, now = () => Real.now() + skew;
  class Skewed extends Real { constructor(...a) { if (a.length) super(...a); else super(now()); } static now() { return now(); } }
  window.Date = Skewed;
})();"""


async def test_an_invitation_shows_for_a_visitor_whose_clock_is_three_minutes_fast(browser, live, shop):
    """Client clocks are often minutes off. An invitation lasts 2 minutes by the server's clock
    (`expires_in` in what the server sends), not until `expires_at` read on the visitor's clock."""
    context = await browser.new_context()
    await context.add_init_script(CLOCK_FAST)
    page = await context.new_page()
    page.errors = []
    page.on("pageerror", lambda error: page.errors.append(f"{error.message}\\n{error.stack}"))
    await page.goto(_write(live, "shop-hostile-clock.html", _page("clock", shop.embed)))
    await _assert_invitation_works(page)
    await context.close()


async def test_the_invitation_does_not_take_the_keystrokes_of_a_field_being_typed_in(browser, live, shop, runtime):
    """An unsolicited, non-modal invitation must not move focus out of the field the visitor types
    in (WCAG 2.x SC 3.2.2, no change of context on input; WAI-ARIA APG, non-modal dialogs): the rest
    of the address would be lost, and a space would press "Chat now". It is announced (aria-live)
    and the next Tab reaches it."""
    body = '<label>Address <input id="addr" autocomplete="off"></label>'
    page = await _open(browser, live, "typing", _page("typing", shop.embed, body=body))
    await page.focus("#addr")
    await page.keyboard.type("221B Baker Street ")
    dialog = page.locator("[data-parley-widget] [role=dialog]")
    await dialog.wait_for(timeout=30_000)  # it appears while the visitor is in the field
    await page.keyboard.type("London NW1 6XE")
    assert await page.input_value("#addr") == "221B Baker Street London NW1 6XE"
    await expect(page.locator("#addr")).to_be_focused()
    await expect(dialog).to_have_attribute("aria-live", "polite")
    await page.keyboard.press("Tab")
    await expect(dialog.locator("button.x")).to_be_focused()  # the widget comes next in tab order
    await page.keyboard.press("Escape")
    await page.wait_for_selector("[data-parley-widget]", state="detached")
    await expect(page.locator("#addr")).to_be_focused()  # focus goes back where it was
    await page.evaluate("parley('flush')")
    types = await _poll(lambda: _types(runtime, shop), lambda t: "invitation_dismissed" in t, timeout=10)
    assert "invitation_accepted" not in types and "invitation_dismissed" in types
    await page.context.close()


async def test_a_pageview_on_an_address_over_two_kilobytes_is_counted(browser, live, shop, runtime):
    """Faceted search, ad click ids and SPA state make addresses of several kilobytes (Chrome takes
    2 MB). The snippet sends only what is kept (the path and utm_* parameters), never the rest of
    the query or the fragment (tokens, e-mail addresses)."""
    query = "?utm_source=ads&filters=" + "color%3Ared%2Csize%3AXL%2Cbrand%3Aacme%2C" * 60 + "&utm_campaign=fall#state=" + "x" * 200
    page = await browser.new_page()
    bodies = _collect_bodies(page)
    await page.goto(_write(live, "shop-hostile-long.html", _page("long", shop.embed)) + query)
    await page.wait_for_function("localStorage.getItem('parley_vid') !== null")
    await page.evaluate("parley('flush')")
    types = await _poll(lambda: _types(runtime, shop), lambda t: "pageview" in t, timeout=10)
    assert "pageview" in types
    urls = {e["url"] for b in bodies for e in b["events"]}
    assert urls == {f"{live['origin']}/shop-hostile-long.html?utm_source=ads&utm_campaign=fall"}, urls
    await page.close()


TRACING = """(() => {
  // What OpenTelemetry web (propagateTraceHeaderCorsUrls), Datadog RUM (allowedTracingUrls) or
  // Sentry (tracePropagationTargets) do to requests whose URL matches: add trace headers.
  const id = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
  const headers = {traceparent: id, tracestate: 'dd=s:1', baggage: 'k=v', 'sentry-trace': '0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-1',
                   'x-datadog-trace-id': '1', 'x-datadog-parent-id': '2'};
  const f = window.fetch;
  window.fetch = function (input, init) {
    init = Object.assign({}, init); const h = new Headers(init.headers || {});
    for (const k in headers) h.set(k, headers[k]);
    init.headers = h; return f.call(this, input, init);
  };
  const send = XMLHttpRequest.prototype.send;
  XMLHttpRequest.prototype.send = function (b) { for (const k in headers) this.setRequestHeader(k, headers[k]); return send.call(this, b); };
})();"""


async def test_events_arrive_when_the_page_adds_trace_headers_to_every_request(browser, live, shop, runtime):
    """A customer that self-hosts Parley under a domain its browser tracing covers gets trace
    headers on /v1/collect: the request is preflighted, and the preflight must allow them
    (saga-ed/soa#118 is the same bug with Datadog RUM's headers)."""
    context = await browser.new_context()
    await context.add_init_script(TRACING)
    page = await context.new_page()
    await page.goto(_write(live, "shop-hostile-tracing.html", _page("tracing", shop.embed)))
    assert "pageview" in await _poll(lambda: _types(runtime, shop), lambda t: "pageview" in t, timeout=15)
    await context.close()


STORAGE_WRITES_IGNORED = """(() => {
  // A consent or privacy tool that lets reads through and drops writes without an error (Brave
  // discussed a localStorage "which doesn't create permanent state", brave/brave-browser#5935;
  // Privacy Badger replaces setItem, EFForg/privacybadger#668).
  const set = Storage.prototype.setItem;
  Storage.prototype.setItem = function (k, v) { if (String(k).indexOf('parley') === 0) return; return set.call(this, k, v); };
})();"""


async def test_the_visitor_id_is_the_same_all_page_long_when_storage_drops_writes(browser, live, shop):
    """One visitor id for the page's life, in every batch and on the invitation stream."""
    context = await browser.new_context()
    await context.add_init_script(STORAGE_WRITES_IGNORED)
    page = await context.new_page()
    bodies = _collect_bodies(page)
    streams: list[str] = []
    page.on("request", lambda r: streams.append(r.url) if "/v1/invitations/stream" in r.url else None)
    await page.goto(_write(live, "shop-hostile-storage.html", _page("storage", shop.embed)))

    async def sent() -> int:
        return len(bodies)

    for i in range(3):
        await page.evaluate(f"parley('track', 'step{i}'); parley('flush')")
        await _poll(sent, lambda n, i=i: n >= i + 1, timeout=10)  # type: ignore[misc]
    ids = {b["visitor_id"] for b in bodies} | {s.rpartition("visitor_id=")[2] for s in streams}
    assert len(bodies) >= 3 and streams and len(ids) == 1, ids
    await context.close()


SHADOW_BUTTON = """<script>
// Design systems (Shoelace, Lit, Salesforce LWC) render their buttons inside shadow roots; a click
// listener on document sees the event retargeted to the host (DOM Standard, event retargeting).
customElements.define('buy-button', class extends HTMLElement {
  connectedCallback() {
    const b = document.createElement('button'); b.id = 'buy'; b.textContent = 'Add to cart';
    b.setAttribute('data-parley-track', 'add_to_cart');
    this.attachShadow({mode: 'open'}).appendChild(b);
  }
});
</script>"""


async def test_data_parley_track_inside_a_web_component_is_counted(browser, live, shop, runtime):
    page = await _open(browser, live, "shadow", _page("shadow", shop.embed, SHADOW_BUTTON, "<buy-button></buy-button>"))
    await page.wait_for_function("localStorage.getItem('parley_vid') !== null")
    await page.locator("buy-button #buy").click()
    await page.evaluate("parley('flush')")

    async def customs():
        return [e["name"] for e in await _stored(runtime, shop) if e["type"] == "custom"]

    assert await _poll(customs, lambda c: "add_to_cart" in c, timeout=10) == ["add_to_cart"]
    await page.context.close()


async def test_scroll_depth_is_reported_on_a_quirks_mode_page(browser, live, shop, runtime):
    """Without a doctype the page scrolls on <body> (CSSOM View, document.scrollingElement), and
    `documentElement.scrollTop` stays 0."""
    html = _page("quirks-scroll", shop.embed, body='<div style="height:5000px">tall</div>').replace("<!doctype html>", "")
    page = await _open(browser, live, "quirks-scroll", html)
    assert await page.evaluate("document.compatMode") == "BackCompat"
    await page.wait_for_function("localStorage.getItem('parley_vid') !== null")
    await page.evaluate("window.scrollTo(0, document.body.scrollHeight)")

    async def depths():
        return [e["props"].get("depth") for e in await _stored(runtime, shop) if e["type"] == "scroll"]

    assert 100 in await _poll(depths, lambda d: 100 in d, timeout=10)
    await page.context.close()


async def test_events_still_arrive_after_the_page_aborts_a_send(browser, live, shop, runtime):
    """`window.stop()` (and a script that aborts requests it did not make) ends an XMLHttpRequest
    with `abort`, not `error`: the batch is sent again, and later events still go out."""
    page = await _open(browser, live, "stopped", _page("stopped", shop.embed, FETCH_THROWS))  # sends go with XHR
    await page.wait_for_function("window.parley && parley.loaded")
    await page.evaluate("parley('track', 'before_stop'); parley('flush'); window.stop()")  # the send is aborted
    await page.evaluate("parley('track', 'after_stop')")

    async def names():
        return [e["name"] for e in await _stored(runtime, shop) if e["type"] == "custom"]

    assert sorted(await _poll(names, lambda n: len(n) >= 2, timeout=20)) == ["after_stop", "before_stop"]
    assert _snippet_errors(page) == []
    await page.context.close()


async def test_a_jump_to_an_anchor_and_back_is_one_page_view_each(browser, live, shop):
    """A fragment navigation (a table of contents link, `location.hash = …`, back) fires both
    `popstate` and `hashchange` (HTML Standard, history traversal): it is one page view, not two."""
    batches, record = _pageviews_sent()
    body = '<a id="toc" href="#details">Details</a><h2 id="details">Details</h2>'
    page = await _open(browser, live, "anchor", _page("anchor", shop.embed, body=body), on_request=record)
    await page.wait_for_function("window.parley && parley.loaded")
    settled = "new Promise(r => addEventListener('hashchange', () => setTimeout(r, 0), {once: true}))"
    await page.evaluate(f"window.jumped = {settled}; null")
    await page.click("#toc")
    await page.evaluate("jumped")
    await page.evaluate(f"window.back = {settled}; history.back()")
    await page.evaluate("back.then(() => parley('flush'))")  # all three page views are queued or sent by now

    async def pageviews():
        return sum(batches.values(), [])

    sent = await _poll(pageviews, lambda p: len(p) >= 3, timeout=20)
    assert sent == [f"{live['origin']}/shop-hostile-anchor.html"] * 3, batches
    await page.context.close()


async def test_what_was_typed_on_the_site_never_leaves_the_browser_as_a_search_keyword(browser, live, shop):
    """A form without `method` submits with GET: what was typed is in the next page's address, and
    a same-site referrer keeps its query (Referrer Policy, strict-origin-when-cross-origin). The
    search keyword is a search engine's, another site's: the site's own pages give none."""
    (live["pages"] / "shop-hostile-next.html").write_text(_page("next", shop.embed), encoding="utf-8")
    paid = _page("paid", shop.embed, body='<a id="next" href="/shop-hostile-next.html">continue</a>')
    (live["pages"] / "shop-hostile-paid.html").write_text(paid, encoding="utf-8")
    form = '<form action="/shop-hostile-paid.html"><input id="pan" name="p" autocomplete="cc-number"><button id="pay">Pay</button></form>'
    page = await _open(browser, live, "checkout", _page("checkout", shop.embed, body=form))
    bodies = _collect_bodies(page)
    await page.fill("#pan", "4111 1111 1111 1111")
    await page.click("#pay")
    await page.wait_for_url("**/shop-hostile-paid.html?p=*")
    await page.click("#next")
    await page.wait_for_url("**/shop-hostile-next.html")
    await page.wait_for_function("window.parley && parley.loaded")
    await page.evaluate("parley('flush')")

    def referrers():
        return [e["referrer"] for b in bodies for e in b["events"] if e["type"] == "pageview"]

    async def sent():
        return referrers()

    assert f"{live['origin']}/shop-hostile-paid.html" in await _poll(sent, lambda r: f"{live['origin']}/shop-hostile-paid.html" in r)
    assert "4111" not in json.dumps(bodies)
    assert {e["props"]["search"] for b in bodies for e in b["events"] if e["type"] == "pageview"} == {None}

    # A search engine's results page (another host) that sends its full address as the referrer.
    engine = live["origin"].replace("127.0.0.1", "localhost")
    results = '<meta name="referrer" content="unsafe-url"><a id="hit" href="' + live["origin"] + '/shop-hostile-next.html">Tents</a>'
    (live["pages"] / "search.html").write_text(results, encoding="utf-8")
    await page.goto(f"{engine}/search.html?q=dome+tent&p=2")
    await page.click("#hit")
    await page.wait_for_url(f"{live['origin']}/shop-hostile-next.html")
    await page.wait_for_function("window.parley && parley.loaded")
    await page.evaluate("parley('flush')")

    async def searches():
        return [e["props"]["search"] for b in bodies for e in b["events"] if e["type"] == "pageview"]

    assert "dome tent" in await _poll(searches, lambda s: "dome tent" in s)
    await page.context.close()
