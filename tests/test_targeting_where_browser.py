"""Country targeting end to end in Debian's Chromium: a live Parley reading a test MaxMind-format
database, behind a trusted proxy (127.0.0.1) that names the client in X-Forwarded-For — as a load
balancer does — invites a page from Norway and not one from Britain.

The proxy is played by the browser itself: every request to Parley gets the header on its way out
(Playwright's request routing). Reuses the browser and helpers of tests/test_browser.py; the live
server is this module's own, started with the geo settings.
"""
# ruff: noqa: F811  (fixtures imported from tests.test_browser)

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.geo_support import write_test_database
from tests.test_browser import _page, _poll, _widget_button, _write, browser, serving, shop  # noqa: F401  (fixtures)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    database = write_test_database(tmp_path_factory.mktemp("geo") / "test-city.mmdb")
    with serving({"PARLEY_GEOIP_DATABASE": str(database), "PARLEY_TRUSTED_PROXIES": "127.0.0.1"}) as found:
        yield found


async def _visit_from(browser, live, address: str, name: str, embed: str):
    """A page whose requests to Parley arrive through the proxy, for a client at ``address``."""
    page = await browser.new_page()

    async def through_proxy(route):
        await route.continue_(headers={**route.request.headers, "x-forwarded-for": address})

    await page.route(f"{live['api']}/**", through_proxy)
    await page.goto(_write(live, name, _page("Fjelltur", embed)))
    return page


async def test_a_country_rule_invites_the_page_from_that_country(browser, live, shop):
    imported = await shop.api.post("/v1/rules/import", headers=shop.headers("marketing"), json={"rules": [
        {"name": "tg-norge", "site": "shop", "invite": {"message": "Hei! Trenger du hjelp?"},
         "when": {"all": [{"field": "page.url", "op": "glob", "value": "*/tg-where*"},
                          {"field": "visitor.country", "op": "eq", "value": "NO"},
                          {"field": "visitor.region", "op": "eq", "value": "NO-03"}]}}]})
    assert imported.status_code == 200, imported.text
    page = await _visit_from(browser, live, "2a02:cf40::1", "tg-where-oslo.html", shop.embed)
    await _widget_button(page)
    await expect(page.locator("parley-invitation [role=dialog]")).to_contain_text("Hei! Trenger du hjelp?")  # filled in after a moment when the page has the focus
    await page.close()


async def test_a_page_from_another_country_is_not_invited_and_explain_says_why(browser, live, shop):
    imported = await shop.api.post("/v1/rules/import", headers=shop.headers("marketing"), json={"rules": [
        {"name": "tg-norge", "site": "shop", "invite": {"message": "Hei!"},
         "when": {"all": [{"field": "page.url", "op": "glob", "value": "*/tg-where*"},
                          {"field": "visitor.country", "op": "eq", "value": "NO"}]}}]})
    assert imported.status_code == 200, imported.text
    page = await _visit_from(browser, live, "81.2.69.160", "tg-where-london.html", shop.embed)
    visitor = await page.wait_for_function("localStorage.getItem('parley_vid')")
    visitor_id = await visitor.json_value()

    async def explained():
        answer = await shop.api.get(f"/v1/visitors/{visitor_id}/explain", params={"site": "shop"}, headers=shop.headers("marketing"))
        found = next((o for o in answer.json() if o["rule"] == "tg-norge"), None) if answer.status_code == 200 else None
        return found if found and any("visitor.country = 'GB'" in line for line in found["trace"]) else None

    outcome = await _poll(explained, lambda o: o is not None)
    assert outcome is not None and outcome["decision"] == "not matched"
    assert "✗ visitor.country = 'GB' eq 'NO'" in outcome["trace"]
    assert await page.locator("parley-invitation").count() == 0
    await page.close()
