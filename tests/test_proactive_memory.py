"""Visitor memory: time, tabs and visits as a visitor lives them, and nothing forgotten by a restart,
by idle expiry, or kept after erasure and retention."""
# ruff: noqa: F811  (the engagement fixtures are imported from tests.engagement_support)

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from api.app import create_app
from proactive import service
from proactive.tables import BehaviourEvent, EngagementInvitation, VisitorMemory
from tests.conftest import app_client
from tests.engagement_support import (  # noqa: F401  (fixtures)
    Visitor,
    advance,
    client,
    clock,
    import_rules,
    pageview,
    report_capacity,
    restart,
    rule,
    runtime,
    shop,
    stats,
)

TIMED = {"all": [
    {"field": "page.url", "op": "glob", "value": "*/pricing*"},
    {"field": "page.time_on_page", "op": "gte", "value": "30s"},
]}


def trace_value(outcome: dict, field: str) -> str:
    return next(line for line in outcome["trace"] if f" {field} = " in line)


# --- time --------------------------------------------------------------------------------------


async def test_durations_run_on_the_servers_clock_not_the_devices(client, shop, clock, runtime):
    await import_rules(client, shop, rule(when=TIMED))
    visitor = Visitor(client, shop, clock)
    await visitor.send(pageview("/pricing"), client_offset=-23 * 3600)  # a device clock 23 hours behind
    assert visitor.received == []
    advance(runtime, clock, 30)
    assert len(await visitor.beat()) == 1


async def test_a_device_clock_days_off_loses_no_events(client, shop, clock, runtime):
    visitor = Visitor(client, shop, clock)
    ahead = await visitor.send(pageview("/"), {"type": "heartbeat"}, client_offset=3 * 86400)
    assert ahead.json()["accepted"] == 2 and ahead.json()["rejected"] == []


async def test_a_late_pageview_never_moves_the_page_backwards(client, shop, clock, runtime):
    await import_rules(client, shop, rule())
    visitor = Visitor(client, shop, clock)
    await visitor.view("/pricing")
    late = {"type": "pageview", "url": "https://shop.example.com/home", "at": int((clock.time() - 60) * 1000)}
    await visitor.send(late)  # a retry of a batch that failed a minute ago
    outcome = (await visitor.explain())[0]
    assert "/pricing" in trace_value(outcome, "page.url")
    assert "= 2 " in trace_value(outcome, "session.pageviews")  # it still happened


# --- tabs and visits -------------------------------------------------------------------------


async def test_a_heartbeat_from_another_tab_keeps_the_page(client, shop, clock, runtime):
    await import_rules(client, shop, rule())
    visitor = Visitor(client, shop, clock)
    await visitor.view("/pricing", tab="a")
    await visitor.beat(tab="b")
    assert "/pricing" in trace_value((await visitor.explain())[0], "page.url")


async def test_tabs_share_one_visit(client, shop, clock, runtime):
    await import_rules(client, shop, rule(when={"field": "visitor.visits", "op": "gte", "value": 1}))
    visitor = Visitor(client, shop, clock)
    for turn in range(6):
        await visitor.view(f"/page-{turn}", tab="a" if turn % 2 else "b")
    outcome = (await visitor.explain())[0]
    assert "= 1 " in trace_value(outcome, "visitor.visits")


async def test_a_new_visit_starts_after_thirty_minutes_without_events(client, shop, clock, runtime):
    await import_rules(client, shop, rule(when={"field": "visitor.returning", "op": "eq", "value": True}))
    visitor = Visitor(client, shop, clock)
    await visitor.view("/")
    advance(runtime, clock, 29 * 60)
    await visitor.view("/a")
    assert "False" in trace_value((await visitor.explain())[0], "visitor.returning")
    advance(runtime, clock, 31 * 60)
    await visitor.view("/b")
    assert "True" in trace_value((await visitor.explain())[0], "visitor.returning")


async def test_daily_caps_count_calendar_days_in_the_sites_time_zone(client, shop, clock, runtime):
    ids = await import_rules(client, shop, rule(caps={"per_visitor_per_day": 1}))
    zone = "America/New_York"
    changed = await client.patch(f"/v1/admin/sites/{shop.site['id']}/engagement", json={"timezone": zone}, headers=shop.headers("admin"))
    assert changed.json()["timezone"] == zone
    local = datetime.fromtimestamp(clock.time(), ZoneInfo(zone))
    clock.set((local.replace(hour=23, minute=40, second=0, microsecond=0) + timedelta(days=1)).timestamp())
    visitor = Visitor(client, shop, clock)
    await visitor.view("/", "/plans", "/pricing")
    await visitor.react(visitor.received[0], "dismissed")
    advance(runtime, clock, 5 * 60)  # 23:45: the same day
    await visitor.view("/features")
    await visitor.view("/pricing")
    assert len(visitor.received) == 1
    advance(runtime, clock, 20 * 60)  # 00:05: a new day, though not 24 hours later
    await visitor.view("/features")
    await visitor.view("/pricing")
    assert len(visitor.received) == 2
    assert (await stats(client, shop, ids["pricing"]))["suppressed"]["cap"] == 1


# --- restarts ----------------------------------------------------------------------------------


async def test_a_restart_keeps_visits_caps_and_dismissals(client, shop, clock, runtime, settings):
    await import_rules(client, shop, rule(caps={"cooldown_after_dismiss": "1h"}))
    visitor = Visitor(client, shop, clock)
    await visitor.view("/", "/plans", "/pricing")
    await visitor.react(visitor.received[0], "dismissed")
    fresh = await restart(runtime, settings, clock)
    try:
        async with app_client(create_app(settings, fresh)) as after:
            visitor.client = after
            await visitor.view("/features")
            await visitor.view("/pricing")
            assert len(visitor.received) == 1  # the cooldown held
            outcome = (await visitor.explain())[0]
            assert "= 5 " in trace_value(outcome, "session.pageviews") and "= 1 " not in trace_value(outcome, "session.pageviews")
            assert outcome["decision"] == "suppressed: cap"
    finally:
        await fresh.stop()


async def test_capacity_and_open_invitations_survive_a_restart(client, shop, clock, runtime, settings):
    await import_rules(client, shop, rule())
    await report_capacity(client, shop, free=1)
    holder, waiter = Visitor(client, shop, clock), Visitor(client, shop, clock)
    await holder.view("/", "/plans", "/pricing")
    fresh = await restart(runtime, settings, clock)
    try:
        async with app_client(create_app(settings, fresh)) as after:
            holder.client = waiter.client = after
            sales = (await after.get("/v1/agents/capacity", headers=shop.headers("ingest"))).json()["sales"]
            assert sales["outstanding_invitations"] == 1 and sales["free_slots"] == 0
            await waiter.view("/", "/plans", "/pricing")
            assert waiter.received == []
            await holder.react(holder.received[0], "dismissed")
            assert len(await waiter.beat()) == 1
    finally:
        await fresh.stop()


async def test_a_rule_deleted_while_the_engine_was_down_gives_back_its_slots_on_restart(client, shop, clock, runtime, settings):
    """Deleted by a process that is not the engine (an API-only replica, or the command line)
    while the engine restarts: the engine never hears the signal, and reads the rule's open
    invitation back. It is withdrawn as a live deletion would withdraw it — its slot goes to the
    visitor waiting, and the invitation is no longer delivered."""
    from uuid import UUID

    from proactive.tables import MarketingRule

    launch = rule("launch", when={"all": [{"field": "page.url", "op": "glob", "value": "*/launch*"}]})
    ids = await import_rules(client, shop, launch, rule())
    await report_capacity(client, shop, free=1)
    holder, waiter = Visitor(client, shop, clock), Visitor(client, shop, clock)
    await holder.view("/launch")
    assert [i["rule"] for i in holder.received] == ["launch"]
    await waiter.view("/", "/plans", "/pricing")
    assert waiter.received == []
    await runtime.engagement.journal.drain()
    await MarketingRule.delete().where(MarketingRule.id == UUID(ids["launch"]))
    fresh = await restart(runtime, settings, clock)
    try:
        async with app_client(create_app(settings, fresh)) as after:
            holder.client = waiter.client = after
            sales = (await after.get("/v1/agents/capacity", headers=shop.headers("ingest"))).json()["sales"]
            assert sales["outstanding_invitations"] == 1  # the waiter's invitation now holds the slot
            assert [i["rule"] for i in await waiter.beat()] == ["pricing"]
            assert [i["rule"] for i in await holder.beat()] == []
            status = await EngagementInvitation.select(EngagementInvitation.status).where(EngagementInvitation.id == holder.received[0]["id"]).first()
            assert status["status"] == "withdrawn"
    finally:
        await fresh.stop()


async def test_accepting_an_invitation_sent_before_a_restart_is_counted(client, shop, clock, runtime, settings):
    ids = await import_rules(client, shop, rule())
    visitor = Visitor(client, shop, clock)
    await visitor.view("/", "/plans", "/pricing")
    fresh = await restart(runtime, settings, clock)
    try:
        async with app_client(create_app(settings, fresh)) as after:
            visitor.client = after
            await visitor.react(visitor.received[0], "accepted")
            assert (await stats(after, shop, ids["pricing"]))["counts"]["accepted"] == 1
    finally:
        await fresh.stop()


async def test_waiting_visitors_keep_their_places_across_a_restart(client, shop, clock, runtime, settings):
    await import_rules(client, shop, rule())
    await report_capacity(client, shop, free=0, busy=1)
    first, second = Visitor(client, shop, clock), Visitor(client, shop, clock)
    await first.view("/", "/plans", "/pricing")
    advance(runtime, clock, 1)
    await second.view("/", "/plans", "/pricing")
    fresh = await restart(runtime, settings, clock)
    try:
        async with app_client(create_app(settings, fresh)) as after:
            first.client = second.client = after
            await report_capacity(after, shop, free=1)
            assert len(await first.beat()) == 1 and await second.beat() == []
    finally:
        await fresh.stop()


async def test_an_invitation_not_yet_taken_is_delivered_after_a_restart(client, shop, clock, runtime, settings):
    await import_rules(client, shop, rule(when=TIMED))
    visitor = Visitor(client, shop, clock)
    await visitor.view("/pricing")
    advance(runtime, clock, 30)  # sent while the browser was between requests
    fresh = await restart(runtime, settings, clock)
    try:
        async with app_client(create_app(settings, fresh)) as after:
            visitor.client = after
            assert [i["rule"] for i in await visitor.beat()] == ["pricing"]
    finally:
        await fresh.stop()


# --- idle expiry -------------------------------------------------------------------------------


async def test_idle_expiry_forgets_nothing(client, shop, clock, runtime):
    await import_rules(client, shop, rule(caps={"per_visitor_per_day": 1}))
    visitor = Visitor(client, shop, clock)
    await visitor.view("/", "/plans", "/pricing")
    await visitor.react(visitor.received[0], "dismissed")
    await visitor.send({"type": "goal", "name": "newsletter"})
    advance(runtime, clock, 31 * 60)
    assert runtime.engagement.engine.expire_idle() >= 1
    assert await visitor.key(runtime) not in runtime.engagement.engine.visitors
    await visitor.view("/", "/plans", "/pricing")
    assert len(visitor.received) == 1  # the daily cap is remembered
    outcome = (await visitor.explain())[0]
    assert "= 2 " in trace_value(outcome, "session.pageviews") or "= 3 " in trace_value(outcome, "session.pageviews")
    state = runtime.engagement.engine.visitors[await visitor.key(runtime)]
    assert state.visits == 2 and state.goals == {"newsletter"}


async def test_a_timer_due_while_the_visitor_is_out_of_memory_still_decides(client, shop, clock, runtime):
    ids = await import_rules(client, shop, rule(when={"field": "session.duration", "op": "gte", "value": "45m"}))
    visitor = Visitor(client, shop, clock)
    await visitor.view("/")
    advance(runtime, clock, 31 * 60)
    runtime.engagement.engine.expire_idle()
    advance(runtime, clock, 15 * 60)
    await runtime.engagement.settle()  # the visitor is read back from the store, then decided
    assert (await stats(client, shop, ids["pricing"]))["counts"]["matched"] == 1


# --- batches ---------------------------------------------------------------------------------


async def test_a_batch_sent_twice_is_applied_once(client, shop, clock, runtime):
    visitor = Visitor(client, shop, clock)
    first = await visitor.send(pageview("/a"), pageview("/b"), batch_id="batch-1")
    again = await visitor.send(pageview("/a"), pageview("/b"), batch_id="batch-1")
    assert first.json()["dropped"] is None and again.json()["dropped"] == "duplicate"
    assert await BehaviourEvent.count().where(BehaviourEvent.tenant == shop.id) == 2


# --- erasure and retention ---------------------------------------------------------------------


async def test_erasure_deletes_the_visitors_memory_and_gives_back_their_slot(client, shop, clock, runtime):
    await import_rules(client, shop, rule())
    await report_capacity(client, shop, free=1)
    erased, waiter = Visitor(client, shop, clock), Visitor(client, shop, clock)
    await erased.view("/", "/plans", "/pricing")
    await waiter.view("/", "/plans", "/pricing")
    receipt = (await client.post("/v1/erasure", json={"visitor_id": erased.id}, headers=shop.headers("compliance"))).json()
    assert receipt["behaviour_events_deleted"] == 3
    _, digest = await erased.key(runtime)
    for table in (VisitorMemory, EngagementInvitation, BehaviourEvent):
        assert await table.count().where((table.tenant == shop.id) & (table.visitor_hash == digest)) == 0
    assert len(await waiter.beat()) == 1


async def test_event_retention_removes_the_memory_of_visitors_gone_for_the_period(client, shop, clock, runtime):
    visitor = Visitor(client, shop, clock)
    await visitor.view("/")
    _, digest = await visitor.key(runtime)
    clock.advance(timedelta(days=31))
    await service.purge_events(runtime, 30)
    assert await VisitorMemory.count().where(VisitorMemory.visitor_hash == digest) == 0
    assert await BehaviourEvent.count().where(BehaviourEvent.visitor_hash == digest) == 0


async def test_a_visitors_memory_is_stored_encrypted_and_reads_back(client, shop, clock, runtime):
    """What the page told the engine (URLs, titles, cart, custom attributes) is redacted on the way
    in and sealed under the tenant's key at rest, bound to the visitor; it reads back after the
    visitor left memory. A memory written before sealing still loads."""
    from archive.crypto import DecryptionError
    from proactive import state as visitor_state

    visitor = Visitor(client, shop, clock)
    await visitor.send(pageview("/catalogue/velvet-armchair-7731", title="Velvet armchair 7731"), {"type": "cart", "props": {"value": 812.5}})
    await runtime.engagement.journal.drain()
    site, digest = await visitor.key(runtime)
    [row] = await VisitorMemory.select(VisitorMemory.state).where(VisitorMemory.visitor_hash == digest)
    stored = bytes(row["state"])
    assert stored[:1] == visitor_state.SEALED
    assert b"velvet-armchair" not in stored and b"Velvet armchair" not in stored
    crypto = (await runtime.tenants.context(shop.id)).crypto
    assert b"velvet-armchair-7731" in visitor_state.opened(crypto, digest, stored)
    with pytest.raises(DecryptionError):  # bound to the visitor: copied to another visitor's row it does not open
        visitor_state.opened(crypto, "another-visitor", stored)

    del runtime.engagement.engine.visitors[(site, digest)]  # out of memory, as after a restart
    again = await runtime.engagement.peek(site, digest)
    assert again is not None and again.cart_value == 812.5
    assert again.session is not None and any("velvet-armchair-7731" in (p.url or "") for p in again.session.tabs)

    legacy = visitor_state.dump(again)  # as rows were written before memories were sealed
    await VisitorMemory.update({VisitorMemory.state: legacy}).where(VisitorMemory.visitor_hash == digest)
    del runtime.engagement.engine.visitors[(site, digest)]
    old = await runtime.engagement.peek(site, digest)
    assert old is not None and old.cart_value == 812.5


async def test_a_visitors_memory_stays_small(client, shop, clock, runtime):
    visitor = Visitor(client, shop, clock)
    for turn in range(40):
        await visitor.send(pageview(f"/p{turn}", props={"product_id": str(turn)}), {"type": "custom", "name": f"e{turn}"},
                           {"type": "heartbeat"}, tab=f"tab-{turn % 12}")
    _, digest = await visitor.key(runtime)
    [row] = await VisitorMemory.select(VisitorMemory.state).where(VisitorMemory.visitor_hash == digest)
    assert len(row["state"]) < 4096


@pytest.mark.parametrize("items", [1.5, 2.0, 2**64])
async def test_a_cart_count_the_page_sent_as_a_fraction_survives_a_restart(client, shop, clock, runtime, settings, items):
    """A page's numbers are JavaScript numbers: ``items: 1.5`` (or 2.0, or 2**64) reaches the server.
    The count is kept as the integer the memory stores; the memory was written with a float it
    could not be read back from, and the next start failed for every tenant."""
    visitor = Visitor(client, shop, clock)
    await visitor.view("/cart")
    response = await visitor.send({"type": "cart", "props": {"value": 19.5, "items": items}})
    assert response.status_code == 200 and response.json()["accepted"] == 1, response.text
    fresh = await restart(runtime, settings, clock)
    try:
        async with app_client(create_app(settings, fresh)) as after:
            visitor.client = after
            assert (await visitor.view("/checkout")).status_code == 200
    finally:
        await fresh.stop()


async def test_a_memory_that_does_not_decode_is_one_visitor_starting_afresh_not_a_failed_start(client, shop, clock, runtime, settings):
    import structlog

    damaged, intact = Visitor(client, shop, clock), Visitor(client, shop, clock)
    await damaged.view("/cart")
    await intact.send(pageview("/cart"), {"type": "cart", "props": {"value": 812.5, "items": 3}})
    await runtime.engagement.journal.drain()
    site, digest = await damaged.key(runtime)
    _, kept = await intact.key(runtime)
    # A row written by an earlier release, or damaged on disk: not the memory's shape.
    await VisitorMemory.update({VisitorMemory.state: b"\x93\x01\x02\x03"}).where(VisitorMemory.visitor_hash == digest)

    # Read back at start (the serving runtime restores active visitors): one logged, one kept.
    fresh = await restart(runtime, settings, clock)
    try:
        with structlog.testing.capture_logs() as logs:
            async with app_client(create_app(settings, fresh)) as after:
                assert [e for e in logs if e["event"] == "engine_memory_damaged"]
                assert (site, digest) not in fresh.engagement.engine.visitors
                assert fresh.engagement.engine.visitors[(site, kept)].cart_value == 812.5
                damaged.client = after
                assert (await damaged.view("/checkout")).status_code == 200  # it goes on, afresh
    finally:
        await fresh.stop()

    # Read on its next event instead (a runtime that did not restore it): afresh too, not a 500.
    await VisitorMemory.update({VisitorMemory.state: b"\x93\x01\x02\x03"}).where(VisitorMemory.visitor_hash == digest)
    runtime.engagement.engine.visitors.pop((site, digest), None)
    damaged.client = client
    with structlog.testing.capture_logs() as logs:
        assert (await damaged.view("/again")).status_code == 200
    assert [e for e in logs if e["event"] == "engine_memory_damaged"]
