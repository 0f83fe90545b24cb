"""Capacity reports in the order the chat platform saw them: a report carries the moment it
describes (``as_of``), and one older than the group's current report — a webhook retried, or two
deliveries a proxy reordered — is acknowledged but does not take back or hand out slots."""
# ruff: noqa: F811  (the engagement fixtures are imported from tests.engagement_support)

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Any

from api.app import create_app
from tests.conftest import app_client
from tests.engagement_support import (  # noqa: F401  (fixtures)
    Visitor,
    advance,
    client,
    clock,
    import_rules,
    report_capacity,
    restart,
    rule,
    runtime,
    shop,
)


def at(clock: Any, seconds: float, offset_hours: int = 0) -> str:
    """The clock's time moved by ``seconds``, in RFC 3339 with the given UTC offset."""
    return (clock.now() + timedelta(seconds=seconds)).astimezone(timezone(timedelta(hours=offset_hours))).isoformat()


async def report(client: Any, shop: Any, free: int, busy: int = 0, as_of: str | None = None) -> Any:
    body: dict[str, Any] = {"groups": {"sales": {"online_agents": free + busy, "max_chats_per_agent": 1, "active_chats": busy}}}
    if as_of is not None:
        body["as_of"] = as_of
    return await client.put("/v1/agents/capacity", json=body, headers=shop.headers("ingest"))


async def test_a_report_older_than_the_groups_current_one_is_acknowledged_and_not_applied(client, shop, clock, runtime):
    await import_rules(client, shop, rule())
    newer = await report(client, shop, free=0, busy=1, as_of=at(clock, -1))
    assert newer.status_code == 200 and newer.json()["sales"]["applied"] is True
    waiter = Visitor(client, shop, clock)
    await waiter.view("/", "/plans", "/pricing")
    # The platform's earlier webhook (an agent was free five seconds ago), delivered late.
    late = await report(client, shop, free=1, as_of=at(clock, -5, offset_hours=2))
    assert late.status_code == 200  # acknowledged: the platform stops retrying it
    sales = late.json()["sales"]
    assert sales["applied"] is False and "older than the report already applied" in sales["reason"]
    assert (sales["online_agents"], sales["active_chats"], sales["free_slots"], sales["waiting"]) == (1, 1, 0, 1)
    assert await waiter.beat() == []  # the slot that is not free was not handed out
    current = (await client.get("/v1/agents/capacity", headers=shop.headers("ingest"))).json()["sales"]
    assert current["active_chats"] == 1 and current["as_of"] == newer.json()["sales"]["as_of"]


async def test_a_newer_report_is_applied_whatever_the_order_of_the_offsets(client, shop, clock, runtime):
    await import_rules(client, shop, rule())
    await report(client, shop, free=0, busy=1, as_of=at(clock, -10))
    waiter = Visitor(client, shop, clock)
    await waiter.view("/", "/plans", "/pricing")
    # 09:59:58-05:00 is later than 10:59:50+00:00 … as an instant: the offset counts, not the text.
    freed = await report(client, shop, free=1, as_of=at(clock, -2, offset_hours=-5))
    assert freed.json()["sales"]["applied"] is True
    assert len(await waiter.beat()) == 1


async def test_a_report_without_as_of_is_applied_as_it_arrives(client, shop, clock, runtime):
    await report(client, shop, free=0, busy=1, as_of=at(clock, 20))  # a platform clock 20 s ahead
    plain = await report(client, shop, free=3)
    assert plain.status_code == 200 and plain.json()["sales"]["applied"] is True
    assert plain.json()["sales"]["free_slots"] == 3 and plain.json()["sales"]["as_of"] is None


async def test_a_report_from_the_future_beyond_the_clock_skew_is_refused_naming_as_of(client, shop, clock, runtime):
    await report(client, shop, free=1)
    ahead = await report(client, shop, free=0, busy=1, as_of=at(clock, 31))
    assert ahead.status_code == 422 and ahead.headers["content-type"].startswith("application/problem+json")
    assert [e["path"] for e in ahead.json()["errors"]] == ["as_of"]
    assert (await client.get("/v1/agents/capacity", headers=shop.headers("ingest"))).json()["sales"]["free_slots"] == 1
    within = await report(client, shop, free=0, busy=1, as_of=at(clock, 29))
    assert within.status_code == 200 and within.json()["sales"]["applied"] is True


async def test_as_of_needs_its_utc_offset(client, shop, clock, runtime):
    naive = await report(client, shop, free=1, as_of=clock.now().replace(tzinfo=None).isoformat())
    assert naive.status_code == 422 and [e["path"] for e in naive.json()["errors"]] == ["as_of"]


async def test_a_chat_accepted_after_the_moment_a_report_describes_keeps_its_slot(client, shop, clock, runtime):
    """The report says what the platform saw at as_of: a chat accepted later is not in its count."""
    await import_rules(client, shop, rule())
    await report(client, shop, free=1, as_of=at(clock, 0))
    first, second = Visitor(client, shop, clock), Visitor(client, shop, clock)
    await first.view("/", "/plans", "/pricing")
    await second.view("/", "/plans", "/pricing")
    report_time = at(clock, 0)
    advance(runtime, clock, 2)
    await first.react(first.received[0], "accepted")
    # Built before the acceptance, delivered after it: still one agent, no chat yet.
    sales = (await report(client, shop, free=1, as_of=report_time)).json()["sales"]
    assert sales["applied"] is True and sales["accepted_unreported"] == 1 and sales["free_slots"] == 0
    assert await second.beat() == []
    counted = (await report(client, shop, free=0, busy=1, as_of=at(clock, 0))).json()["sales"]  # now it counts the chat
    assert counted["accepted_unreported"] == 0 and counted["free_slots"] == 0


async def test_the_order_of_reports_survives_a_restart(client, shop, clock, runtime, settings):
    await import_rules(client, shop, rule())
    # A platform clock 20 s ahead: its report describes a moment after the one it arrived at.
    await report(client, shop, free=0, busy=1, as_of=at(clock, 20))
    waiter = Visitor(client, shop, clock)
    await waiter.view("/", "/plans", "/pricing")
    fresh = await restart(runtime, settings, clock)
    try:
        async with app_client(create_app(settings, fresh)) as after:
            waiter.client = after
            late = await report(after, shop, free=1, as_of=at(clock, 10))  # earlier on the platform's clock
            assert late.status_code == 200 and late.json()["sales"]["applied"] is False
            assert await waiter.beat() == []
            freed = await report(after, shop, free=1, as_of=at(clock, 21))
            assert freed.json()["sales"]["applied"] is True
            assert len(await waiter.beat()) == 1
    finally:
        await fresh.stop()


async def test_after_a_restart_a_late_report_still_leaves_the_later_acceptance_its_slot(client, shop, clock, runtime, settings):
    await import_rules(client, shop, rule())
    await report(client, shop, free=1, as_of=at(clock, 0))
    holder, waiter = Visitor(client, shop, clock), Visitor(client, shop, clock)
    await holder.view("/", "/plans", "/pricing")
    await waiter.view("/", "/plans", "/pricing")
    report_time = at(clock, 1)
    advance(runtime, clock, 2)
    await holder.react(holder.received[0], "accepted")
    fresh = await restart(runtime, settings, clock)
    try:
        async with app_client(create_app(settings, fresh)) as after:
            waiter.client = after
            sales = (await report(after, shop, free=1, as_of=report_time)).json()["sales"]  # built before the acceptance
            assert sales["applied"] is True and sales["accepted_unreported"] == 1 and sales["free_slots"] == 0
            assert await waiter.beat() == []
    finally:
        await fresh.stop()


async def test_a_visitor_waiting_on_two_rules_of_the_group_is_one_visitor_waiting(client, shop, clock, runtime):
    """``waiting`` is what a supervisor reads as the group's queue: people, not the rules they
    qualify for."""
    await import_rules(client, shop, rule("pricing"), rule("pricing-again", priority=1))
    await report(client, shop, free=0, busy=1)
    both = Visitor(client, shop, clock)
    await both.view("/", "/plans", "/pricing")
    other = Visitor(client, shop, clock)
    await other.view("/", "/plans", "/pricing")
    listed = (await client.get("/v1/agents/capacity", headers=shop.headers("ingest"))).json()["sales"]
    assert listed["waiting"] == 2
