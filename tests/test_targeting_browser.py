"""Targeting end to end in Debian's Chromium: parley.identify() makes an attribute rule invite, a
funnel over the visit's pages invites only visitors who took its steps in order, and a schedule
whose overnight window opened yesterday invites today (it crosses midnight).

Reuses the live Parley, page server and browser of tests/test_browser.py. The pages here are not
under */shop*, so that module's rule stays out of the way.
"""
# ruff: noqa: F811  (fixtures imported from tests.test_browser)

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from playwright.async_api import expect

from tests.test_browser import _page, _poll, _widget_button, _write, browser, live, shop  # noqa: F401  (fixtures)

DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


async def _site_id(shop) -> str:
    sites = (await shop.api.get("/v1/admin/sites", headers=shop.headers("admin"))).json()
    sites = sites.get("sites", sites) if isinstance(sites, dict) else sites
    return next(s["id"] for s in sites if s["name"] == "shop")


async def _import(shop, rule: dict) -> None:
    imported = await shop.api.post("/v1/rules/import", json={"rules": [rule]}, headers=shop.headers("marketing"))
    assert imported.status_code == 200, imported.text


async def _declare_plan(shop) -> None:
    declared = await shop.api.patch(f"/v1/admin/sites/{await _site_id(shop)}/engagement", json={"attributes": {"plan": "str"}},
                                    headers=shop.headers("admin"))
    assert declared.status_code == 200, declared.text


async def test_identify_in_the_page_makes_an_attribute_rule_invite(browser, live, shop):
    await _declare_plan(shop)
    await _import(shop, {"name": "tg-pro", "site": "shop", "invite": {"message": "Pro support is here."},
                         "when": {"all": [{"field": "page.url", "op": "glob", "value": "*/tg-identify*"},
                                          {"field": "visitor.attributes.plan", "op": "ieq", "value": "PRO"}]}})
    page = await browser.new_page()
    identify = "<script>addEventListener('load', () => setTimeout(() => parley.identify({plan: 'Pro'}), 300))</script>"
    await page.goto(_write(live, "tg-identify.html", _page("Account", shop.embed, body=identify)))
    await _widget_button(page)
    await expect(page.locator("parley-invitation [role=dialog]")).to_contain_text("Pro support is here.")  # filled in after a moment when the page has the focus
    await page.close()


async def test_a_visitor_without_the_attribute_is_not_invited(browser, live, shop):
    await _declare_plan(shop)
    await _import(shop, {"name": "tg-team", "site": "shop", "invite": {"message": "Team plan help."},
                         "when": {"all": [{"field": "page.url", "op": "glob", "value": "*/tg-anon*"},
                                          {"field": "visitor.attributes.plan", "op": "eq", "value": "team"}]}})
    page = await browser.new_page()
    await page.goto(_write(live, "tg-anon.html", _page("Anonymous", shop.embed)))
    visitor = await page.wait_for_function("localStorage.getItem('parley_vid')")
    visitor_id = await visitor.json_value()

    async def explained():
        answer = await shop.api.get(f"/v1/visitors/{visitor_id}/explain", params={"site": "shop"}, headers=shop.headers("marketing"))
        return next((o for o in answer.json() if o["rule"] == "tg-team" and o["targeted"]), None) if answer.status_code == 200 else None

    outcome = await _poll(explained, lambda o: o is not None)
    assert outcome is not None and outcome["decision"] == "not matched"
    assert "✗ visitor.attributes.plan = None eq 'team'" in outcome["trace"]
    assert await page.locator("parley-invitation").count() == 0
    await page.close()


async def test_an_overnight_window_that_opened_yesterday_invites_after_midnight(browser, live, shop):
    now = datetime.now(timezone.utc)
    opens, closes = now + timedelta(minutes=30), now + timedelta(minutes=20)  # minutes of margin for a slow page
    # The window opens at `opens` and closes at `closes` the next day: overnight. Only the day it
    # opened on is scheduled — yesterday (in UTC, the site's zone) — so it is open now only because
    # yesterday's window runs across midnight.
    opened_on = (opens - timedelta(days=1)).date()
    await _import(shop, {"name": "tg-night", "site": "shop", "invite": {"message": "Still up? So are we."},
                         "when": {"field": "page.url", "op": "glob", "value": "*/tg-night*"},
                         "schedule": {"days": DAYS[opened_on.weekday()],
                                      "windows": [{"from": opens.strftime("%H:%M"), "to": closes.strftime("%H:%M")}]}})
    page = await browser.new_page()
    await page.goto(_write(live, "tg-night.html", _page("Night", shop.embed)))
    await _widget_button(page)
    await expect(page.locator("parley-invitation [role=dialog]")).to_contain_text("Still up?")
    await page.close()


FUNNEL = {"name": "tg-funnel", "site": "shop", "invite": {"message": "Comparing plans? Ask us."},
          "when": {"all": [{"field": "page.url", "op": "glob", "value": "*/tg-funnel-pricing*"},
                           {"field": "session.pages", "op": "steps", "value": ["/tg-funnel-product*", "/tg-funnel-pricing*"]}]}}


async def test_a_visitor_who_took_the_funnels_steps_in_order_is_invited(browser, live, shop):
    await _import(shop, FUNNEL)
    pricing = _write(live, "tg-funnel-pricing.html", _page("Pricing", shop.embed))
    product = _write(live, "tg-funnel-product.html", _page("Tent", shop.embed, body=f'<a id="to-pricing" href="{pricing}">plans</a>'))
    page = await browser.new_page()
    await page.goto(product)
    await page.wait_for_function("localStorage.getItem('parley_vid')")
    await page.click("#to-pricing")
    await _widget_button(page)
    await expect(page.locator("parley-invitation [role=dialog]")).to_contain_text("Comparing plans?")
    await page.close()


async def test_a_visitor_who_skipped_a_step_is_not_invited_and_explain_says_which(browser, live, shop):
    await _import(shop, FUNNEL)
    page = await browser.new_page()  # a new browser context: another visitor, who comes straight to pricing
    await page.goto(_write(live, "tg-funnel-pricing.html", _page("Pricing", shop.embed)))
    visitor = await page.wait_for_function("localStorage.getItem('parley_vid')")
    visitor_id = await visitor.json_value()

    async def explained():
        answer = await shop.api.get(f"/v1/visitors/{visitor_id}/explain", params={"site": "shop"}, headers=shop.headers("marketing"))
        return next((o for o in answer.json() if o["rule"] == "tg-funnel" and o["targeted"]), None) if answer.status_code == 200 else None

    outcome = await _poll(explained, lambda o: o is not None)
    assert outcome is not None and outcome["decision"] == "not matched"
    assert any(line.startswith("✗ session.pages") for line in outcome["trace"]), outcome["trace"]
    assert await page.locator("parley-invitation").count() == 0
    await page.close()
