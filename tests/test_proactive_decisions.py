"""Decisions: when a rule's invitation goes out, waits, or is held back for good.

Every test runs the engine on a manual clock; ``advance`` fires timers at their due time.
"""
# ruff: noqa: F811  (the engagement fixtures are imported from tests.engagement_support)

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tests.engagement_support import (  # noqa: F401  (fixtures)
    Visitor,
    advance,
    client,
    clock,
    import_rules,
    pageview,
    report_capacity,
    rule,
    runtime,
    shop,
    stats,
)

TIMED = {"all": [
    {"field": "page.url", "op": "glob", "value": "*/pricing*"},
    {"field": "page.time_on_page", "op": "gte", "value": "30s"},
]}


async def test_a_time_condition_sends_when_it_comes_due(client, shop, clock, runtime):
    await import_rules(client, shop, rule(when=TIMED))
    visitor = Visitor(client, shop, clock)
    assert (await visitor.view("/pricing")).json()["invitations"] == []
    advance(runtime, clock, 20)
    assert await visitor.beat() == []
    advance(runtime, clock, 10)
    delivered = await visitor.beat()
    assert [i["rule"] for i in delivered] == ["pricing"]
    assert set(delivered[0]) == {"id", "rule", "variant", "message", "group", "expires_at", "expires_in"}
    assert delivered[0]["expires_in"] == 120.0  # seconds left by the server's clock (the widget times it with that)


async def test_the_invitation_is_sent_at_the_due_time_even_when_the_tick_is_late(client, shop, clock, runtime):
    await import_rules(client, shop, rule(when=TIMED))
    visitor = Visitor(client, shop, clock)
    await visitor.view("/pricing")
    started = clock.time()
    clock.advance(30.2)  # the timer is handled 200 ms late
    runtime.engagement.engine.tick()
    await visitor.beat()
    [invitation] = visitor.received
    expires_at = datetime.fromisoformat(invitation["expires_at"]).timestamp()
    assert abs(expires_at - (started + 30 + 120)) < 0.001  # decided as of its due time
    assert abs(invitation["expires_in"] - (120 - 0.2)) < 0.001  # and what is left of it when it is sent


async def test_an_episode_sends_once_while_the_condition_keeps_holding(client, shop, clock, runtime):
    await import_rules(client, shop, rule())
    visitor = Visitor(client, shop, clock)
    await visitor.view("/", "/plans", "/pricing")
    [invitation] = visitor.received
    await visitor.react(invitation, "dismissed")
    await visitor.view("/pricing")
    advance(runtime, clock, 5)
    await visitor.beat()
    assert len(visitor.received) == 1


async def test_a_condition_that_holds_again_starts_a_new_episode(client, shop, clock, runtime):
    await import_rules(client, shop, rule())
    visitor = Visitor(client, shop, clock)
    await visitor.view("/", "/plans", "/pricing")
    await visitor.react(visitor.received[0], "dismissed")
    await visitor.view("/features")  # the condition stops holding
    await visitor.view("/pricing")
    assert len(visitor.received) == 2


async def test_the_per_visit_cap_holds_across_tabs(client, shop, clock, runtime):
    await import_rules(client, shop, rule(caps={"per_session": 1}))
    visitor = Visitor(client, shop, clock)
    await visitor.view("/", "/plans", "/pricing", tab="tab-a")
    await visitor.react(visitor.received[0], "dismissed")
    await visitor.view("/features", tab="tab-b")
    await visitor.view("/pricing", tab="tab-b")
    assert len(visitor.received) == 1
    ids = await import_rules(client, shop)
    assert (await stats(client, shop, ids["pricing"]))["suppressed"]["cap"] == 1


async def test_a_dismissal_starts_the_cooldown(client, shop, clock, runtime):
    await import_rules(client, shop, rule(caps={"cooldown_after_dismiss": "10m"}))
    visitor = Visitor(client, shop, clock)
    await visitor.view("/", "/plans", "/pricing")
    await visitor.react(visitor.received[0], "dismissed")
    await visitor.view("/features")
    await visitor.view("/pricing")
    assert len(visitor.received) == 1
    advance(runtime, clock, 601)
    await visitor.view("/features")
    await visitor.view("/pricing")
    assert len(visitor.received) == 2


async def test_a_visitor_held_back_for_capacity_is_invited_when_a_slot_frees(client, shop, clock, runtime):
    await import_rules(client, shop, rule())
    await report_capacity(client, shop, free=0, busy=2)
    visitor = Visitor(client, shop, clock)
    await visitor.view("/", "/plans", "/pricing")
    assert visitor.received == []
    advance(runtime, clock, 10)
    await report_capacity(client, shop, free=1, busy=1)
    assert [i["rule"] for i in await visitor.beat()] == ["pricing"]


async def test_waiting_visitors_are_served_by_priority_then_by_how_long_they_have_qualified(client, shop, clock, runtime):
    await import_rules(client, shop, rule("low", priority=1), rule("high", priority=5, url="*/enterprise*"))
    await report_capacity(client, shop, free=0, busy=1)
    early, late, vip = (Visitor(client, shop, clock) for _ in range(3))
    await early.view("/", "/plans", "/pricing")
    advance(runtime, clock, 1)
    await late.view("/", "/plans", "/pricing")
    advance(runtime, clock, 1)
    await vip.view("/", "/plans", "/pricing/enterprise")
    served = []
    for free in (1, 2, 3):  # one more agent each time
        await report_capacity(client, shop, free=free)
        for name, visitor in (("early", early), ("late", late), ("vip", vip)):
            if await visitor.beat():
                served.append(name)
    assert served == ["vip", "early", "late"]


async def test_never_more_invitations_out_than_free_slots(client, shop, clock, runtime):
    await import_rules(client, shop, rule())
    await report_capacity(client, shop, free=2)
    visitors = [Visitor(client, shop, clock) for _ in range(5)]
    for visitor in visitors:
        await visitor.view("/", "/plans", "/pricing")
    assert sum(len(v.received) for v in visitors) == 2
    capacity = (await client.get("/v1/agents/capacity", headers=shop.headers("marketing"))).json()["sales"]
    assert capacity["free_slots"] == 0 and capacity["outstanding_invitations"] == 2 and capacity["waiting"] == 3


async def test_a_dismissed_invitation_frees_its_slot_for_the_next_waiting_visitor(client, shop, clock, runtime):
    await import_rules(client, shop, rule())
    await report_capacity(client, shop, free=1)
    first, second = Visitor(client, shop, clock), Visitor(client, shop, clock)
    await first.view("/", "/plans", "/pricing")
    await second.view("/", "/plans", "/pricing")
    assert second.received == []
    await first.react(first.received[0], "dismissed")
    assert len(await second.beat()) == 1


async def test_an_expired_invitation_frees_its_slot(client, shop, clock, runtime):
    await import_rules(client, shop, rule(invite={"expires": "30s"}))
    await report_capacity(client, shop, free=1)
    first, second = Visitor(client, shop, clock), Visitor(client, shop, clock)
    await first.view("/", "/plans", "/pricing")
    await second.view("/", "/plans", "/pricing")
    advance(runtime, clock, 20)
    assert await second.beat() == []
    advance(runtime, clock, 10)
    assert len(await second.beat()) == 1


async def test_an_accepted_invitation_keeps_its_slot_until_the_platform_reports_the_chat(client, shop, clock, runtime):
    await import_rules(client, shop, rule())
    await report_capacity(client, shop, free=1)
    first, second = Visitor(client, shop, clock), Visitor(client, shop, clock)
    await first.view("/", "/plans", "/pricing")
    await second.view("/", "/plans", "/pricing")
    await first.react(first.received[0], "accepted")
    assert await second.beat() == []  # the accepted chat occupies the agent
    capacity = (await client.get("/v1/agents/capacity", headers=shop.headers("ingest"))).json()["sales"]
    assert capacity["free_slots"] == 0 and capacity["accepted_unreported"] == 1
    await report_capacity(client, shop, free=1, busy=1)  # the platform now counts that chat; a second agent came online
    assert len(await second.beat()) == 1


async def test_a_wait_that_runs_out_is_counted_by_what_held_it_back(client, shop, clock, runtime):
    ids = await import_rules(client, shop, rule(invite={"max_wait": "1m"}))
    await report_capacity(client, shop, free=0, busy=1)
    visitor = Visitor(client, shop, clock)
    await visitor.view("/", "/plans", "/pricing")
    advance(runtime, clock, 30)
    await visitor.beat()
    advance(runtime, clock, 31)
    await report_capacity(client, shop, free=1)
    assert await visitor.beat() == []
    totals = await stats(client, shop, ids["pricing"])
    assert totals["counts"]["waits"] == 1 and totals["suppressed"]["capacity"] == 1 and totals["counts"]["sent"] == 0


async def test_a_visitor_whose_condition_stops_holding_while_waiting_is_counted_lost(client, shop, clock, runtime):
    ids = await import_rules(client, shop, rule())
    await report_capacity(client, shop, free=0, busy=1)
    visitor = Visitor(client, shop, clock)
    await visitor.view("/", "/plans", "/pricing")
    await visitor.view("/features")
    await report_capacity(client, shop, free=1)
    assert await visitor.beat() == []
    assert (await stats(client, shop, ids["pricing"]))["suppressed"]["capacity"] == 1


async def test_a_visitor_who_left_is_not_invited(client, shop, clock, runtime):
    a_minute = {"all": [TIMED["all"][0], {"field": "page.time_on_page", "op": "gte", "value": "60s"}]}
    ids = await import_rules(client, shop, rule(when=a_minute, invite={"max_wait": "1m"}))
    visitor = Visitor(client, shop, clock)
    await visitor.view("/pricing")  # and the tab is closed: no heartbeat follows
    advance(runtime, clock, 60)
    assert (await visitor.explain())[0]["decision"].startswith("waiting for the visitor to return")
    advance(runtime, clock, 60)
    totals = await stats(client, shop, ids["pricing"])
    assert totals["counts"]["sent"] == 0 and totals["suppressed"]["absent"] == 1


async def test_a_visitor_who_comes_back_within_the_wait_is_invited(client, shop, clock, runtime):
    await import_rules(client, shop, rule(when={"all": [*TIMED["all"], {"field": "session.idle", "op": "gte", "value": "50s"}]}))
    visitor = Visitor(client, shop, clock)
    await visitor.view("/pricing")
    advance(runtime, clock, 60)  # idle and unheard for a minute: absent
    assert visitor.received == []
    assert len(await visitor.beat()) == 1


async def test_a_hidden_tab_is_not_present(client, shop, clock, runtime):
    await import_rules(client, shop, rule(when=TIMED))
    visitor = Visitor(client, shop, clock)
    await visitor.view("/pricing")
    await visitor.send({"type": "visibility", "props": {"state": "hidden"}})
    advance(runtime, clock, 31)
    assert (await visitor.explain())[0]["decision"].startswith("waiting for the visitor to return")
    await visitor.send({"type": "visibility", "props": {"state": "visible"}})
    assert len(visitor.received) == 1


async def test_business_hours_opening_invites_a_waiting_visitor_on_the_minute(client, shop, clock, runtime):
    hours = {"timezone": "Europe/Oslo", "days": "mon-sun", "from": "09:00", "to": "17:00"}
    await import_rules(client, shop, rule(business_hours=hours, invite={"max_wait": "5m"}))
    oslo = ZoneInfo("Europe/Oslo")
    opening = datetime.fromtimestamp(clock.time(), oslo).replace(hour=9, minute=0, second=0, microsecond=0) + timedelta(days=1)
    clock.set(opening - timedelta(seconds=40))
    visitor = Visitor(client, shop, clock)
    await visitor.view("/", "/plans", "/pricing")
    assert (await visitor.explain())[0]["decision"].startswith("waiting for business hours")
    advance(runtime, clock, 20)
    await visitor.beat()
    advance(runtime, clock, 20)
    [invitation] = await visitor.beat()
    sent_at = datetime.fromisoformat(invitation["expires_at"]) - timedelta(minutes=2)
    assert sent_at == opening


async def test_the_pacing_window_moving_invites_the_next_waiting_visitor(client, shop, clock, runtime):
    await import_rules(client, shop, rule())
    paced = await client.patch(f"/v1/admin/sites/{shop.site['id']}/engagement", json={"pacing_per_minute": 1}, headers=shop.headers("marketing"))
    assert paced.status_code == 200, paced.text
    first, second = Visitor(client, shop, clock), Visitor(client, shop, clock)
    await first.view("/", "/plans", "/pricing")
    await second.view("/", "/plans", "/pricing")
    assert len(first.received) == 1 and second.received == []
    advance(runtime, clock, 30)
    assert await second.beat() == []
    advance(runtime, clock, 30)
    assert len(await second.beat()) == 1


async def test_equal_priorities_go_by_rule_name_and_the_other_rule_waits_its_turn(client, shop, clock, runtime):
    await import_rules(client, shop, rule("beta"), rule("alpha"))
    visitor = Visitor(client, shop, clock)
    await visitor.view("/", "/plans", "/pricing")
    assert [i["rule"] for i in visitor.received] == ["alpha"]
    await visitor.react(visitor.received[0], "dismissed")
    assert [i["rule"] for i in visitor.received] == ["alpha", "beta"]


async def test_editing_a_rule_reschedules_its_timers(client, shop, clock, runtime):
    slow = rule(when={"all": [TIMED["all"][0], {"field": "page.time_on_page", "op": "gte", "value": "60s"}]})
    ids = await import_rules(client, shop, slow)
    visitor = Visitor(client, shop, clock)
    await visitor.view("/pricing")
    advance(runtime, clock, 20)
    await visitor.beat()
    faster = await client.put(f"/v1/rules/{ids['pricing']}", json=rule(when=TIMED), headers=shop.headers("marketing"))
    assert faster.status_code == 200
    advance(runtime, clock, 10)
    assert len(await visitor.beat()) == 1


async def test_editing_a_rules_delay_applies_to_visitors_already_counting_it_down(client, shop, clock, runtime):
    ids = await import_rules(client, shop, rule(invite={"delay": "60s"}))
    visitor = Visitor(client, shop, clock)
    await visitor.view("/", "/a", "/pricing")
    advance(runtime, clock, 10)
    assert await visitor.beat() == []
    shorter = await client.put(f"/v1/rules/{ids['pricing']}", json=rule(invite={"delay": "5s"}), headers=shop.headers("marketing"))
    assert shorter.status_code == 200
    advance(runtime, clock, 0)
    assert [i["rule"] for i in await visitor.beat()] == ["pricing"]  # 10 s in, past the new 5 s delay


async def test_deleting_a_rule_gives_back_the_capacity_its_invitations_held(client, shop, clock, runtime):
    ids = await import_rules(client, shop, rule("first", url="*/pricing"), rule("second", url="*/plans*", when={"field": "session.pageviews", "op": "gte", "value": 1}))
    await report_capacity(client, shop, free=1)
    holder, waiter = Visitor(client, shop, clock), Visitor(client, shop, clock)
    await holder.view("/", "/a", "/pricing")
    await waiter.view("/plans")
    assert waiter.received == []
    assert (await client.delete(f"/v1/rules/{ids['first']}", headers=shop.headers("marketing"))).status_code == 204
    advance(runtime, clock, 0)
    assert [i["rule"] for i in await waiter.beat()] == ["second"]


async def test_never_during_an_active_chat(client, shop, clock, runtime):
    ids = await import_rules(client, shop, rule(invite={"max_wait": "1m"}))
    visitor = Visitor(client, shop, clock)
    await visitor.send({"type": "chat_started"})
    await visitor.view("/", "/plans", "/pricing")
    assert visitor.received == []
    advance(runtime, clock, 61)
    await visitor.beat()
    assert (await stats(client, shop, ids["pricing"]))["suppressed"]["active_chat"] == 1


async def test_a_chat_ending_lets_a_waiting_visitor_be_invited(client, shop, clock, runtime):
    await import_rules(client, shop, rule())
    visitor = Visitor(client, shop, clock)
    await visitor.send({"type": "chat_started"})
    await visitor.view("/", "/plans", "/pricing")
    await visitor.send({"type": "chat_ended"})
    assert len(visitor.received) == 1


async def test_a_goal_is_attributed_to_the_invitation_before_it(client, shop, clock, runtime):
    ids = await import_rules(client, shop, rule(goal={"event": "purchase", "within": "30m"}))
    visitor = Visitor(client, shop, clock)
    await visitor.view("/", "/plans", "/pricing")
    advance(runtime, clock, 60)
    await visitor.send({"type": "goal", "name": "purchase"})
    assert (await stats(client, shop, ids["pricing"]))["counts"]["goals"] == 1


async def test_a_delayed_invitation_goes_after_the_delay_if_the_rule_still_holds(client, shop, clock, runtime):
    await import_rules(client, shop, rule(invite={"delay": "5s"}))
    visitor = Visitor(client, shop, clock)
    await visitor.view("/", "/plans", "/pricing")
    assert visitor.received == []
    assert (await visitor.explain())[0]["decision"].startswith("delayed until")
    advance(runtime, clock, 5)
    assert len(await visitor.beat()) == 1


async def test_holdout_visitors_are_counted_as_control_when_they_would_have_been_invited(client, shop, clock, runtime):
    from archive.tenancy import tenant_context
    from proactive.engine import assign_variant
    from proactive.rules import compile_rule

    ids = await import_rules(client, shop, rule(holdout="50%"))
    compiled, _ = compile_rule(rule(holdout="50%"))
    crypto = (await tenant_context(runtime, shop.id)).crypto

    def visitor_in(group: str) -> Visitor:
        while True:
            candidate = Visitor(client, shop, clock)
            if (assign_variant(compiled, ids["pricing"], crypto.identity_hash(candidate.id)) == "control") == (group == "control"):
                return candidate

    await report_capacity(client, shop, free=0, busy=1)
    control, treated = visitor_in("control"), visitor_in("treated")
    await control.view("/", "/plans", "/pricing")
    advance(runtime, clock, 1)
    await treated.view("/", "/plans", "/pricing")
    assert (await stats(client, shop, ids["pricing"]))["suppressed"]["holdout"] == 0  # control waits like everyone
    await report_capacity(client, shop, free=1)
    assert await control.beat() == [] and len(await treated.beat()) == 1  # the control exposure took no slot
    assert (await stats(client, shop, ids["pricing"]))["suppressed"]["holdout"] == 1


async def test_a_control_visitor_meets_the_caps_an_invited_one_would(client, shop, clock, runtime):
    """The holdout is only comparable when its visitors are exposed as often as invited ones."""
    from archive.tenancy import tenant_context
    from proactive.engine import assign_variant
    from proactive.rules import compile_rule

    capped = rule(holdout="50%", caps={"per_session": 1, "per_visitor_per_day": 1})
    ids = await import_rules(client, shop, capped)
    compiled, _ = compile_rule(capped)
    crypto = (await tenant_context(runtime, shop.id)).crypto
    control = Visitor(client, shop, clock)
    while assign_variant(compiled, ids["pricing"], crypto.identity_hash(control.id)) != "control":
        control = Visitor(client, shop, clock)
    await control.view("/", "/plans", "/pricing")
    await control.view("/about")  # the condition ends …
    await control.view("/pricing")  # … and holds again: a new episode in the same visit
    suppressed = (await stats(client, shop, ids["pricing"]))["suppressed"]
    assert (suppressed["holdout"], suppressed["cap"]) == (1, 1)
    advance(runtime, clock, 31 * 60)  # a new visit, the same day
    await control.view("/")
    await control.view("/plans", "/pricing")
    suppressed = (await stats(client, shop, ids["pricing"]))["suppressed"]
    assert (suppressed["holdout"], suppressed["cap"]) == (1, 2)


async def test_explain_shows_the_wait_and_the_place_in_the_queue(client, shop, clock, runtime):
    await import_rules(client, shop, rule())
    await report_capacity(client, shop, free=0, busy=1)
    visitors = [Visitor(client, shop, clock) for _ in range(3)]
    for visitor in visitors:
        await visitor.view("/", "/plans", "/pricing")
        advance(runtime, clock, 1)
    decision = (await visitors[1].explain())[0]["decision"]
    assert decision.startswith("waiting for capacity: position 2 of 3 since "), decision


async def test_the_place_in_the_queue_counts_only_the_visitors_waiting_for_the_same_thing(client, shop, clock, runtime):
    """A visitor ahead in the group's queue who waits for their chat to end does not take the next
    slot: the one waiting for capacity is told they are first, and is served first."""
    await import_rules(client, shop, rule())
    await report_capacity(client, shop, free=0, busy=1)
    chatting, waiter = Visitor(client, shop, clock), Visitor(client, shop, clock)
    await chatting.send({"type": "chat_started"})
    await chatting.view("/", "/plans", "/pricing")
    advance(runtime, clock, 1)
    await waiter.view("/", "/plans", "/pricing")
    assert (await chatting.explain())[0]["decision"].startswith("waiting for the chat to end: position 1 of 1 since ")
    assert (await waiter.explain())[0]["decision"].startswith("waiting for capacity: position 1 of 1 since ")
    await report_capacity(client, shop, free=1, busy=1)
    assert len(await waiter.beat()) == 1 and chatting.received == []


async def test_stats_count_waits_and_how_long_the_served_visitors_waited(client, shop, clock, runtime):
    ids = await import_rules(client, shop, rule())
    await report_capacity(client, shop, free=0, busy=2)
    quick, slow = Visitor(client, shop, clock), Visitor(client, shop, clock)
    await quick.view("/", "/plans", "/pricing")
    await slow.view("/", "/plans", "/pricing")
    advance(runtime, clock, 3)
    await report_capacity(client, shop, free=1, busy=1)
    advance(runtime, clock, 25)
    await slow.beat()
    await report_capacity(client, shop, free=2)
    totals = await stats(client, shop, ids["pricing"])
    assert totals["counts"]["waits"] == 2 and totals["counts"]["served_after_wait"] == 2
    assert totals["wait"] == {"served": 2, "p50_seconds": 5.0, "p95_seconds": 30.0}


async def test_an_invitation_a_dropped_stream_took_comes_again_until_the_browser_shows_it(client, shop, clock, runtime):
    """Handing an invitation to a stream is no proof the browser got it: the connection may drop
    as it goes out. Not reported shown within REOFFER_SECONDS, it rides on the next collect
    answer; once shown, it does not."""
    from proactive.delivery import REOFFER_SECONDS

    await import_rules(client, shop, rule(when=TIMED))
    visitor = Visitor(client, shop, clock)
    await visitor.view("/pricing")
    key = await visitor.key(runtime)
    async with runtime.engagement.delivery.subscribe(key) as stream:
        clock.advance(30)
        runtime.engagement.engine.tick()
        await runtime.engagement.journal.drain()
        streamed = await stream.next(5)
    assert streamed is not None  # ...and then the connection dropped
    assert await visitor.beat() == []  # the stream took it a moment ago
    clock.advance(REOFFER_SECONDS + 1)
    again = await visitor.beat()
    assert [i["id"] for i in again] == [streamed.id]
    await visitor.react(again[0], "shown")
    await runtime.engagement.journal.drain()
    clock.advance(REOFFER_SECONDS + 1)
    assert await visitor.beat() == []


def test_invitations_nobody_came_for_do_not_pile_up_without_the_scheduler():
    """A replica that runs no scheduler job still forgets expired invitations as new ones arrive."""
    from datetime import datetime, timezone

    from proactive.delivery import PRUNE_FLOOR, InvitationDelivery
    from proactive.model import Invitation

    now = [1_000.0]
    delivery = InvitationDelivery(lambda: now[0])
    for i in range(PRUNE_FLOOR * 5):
        now[0] += 1
        expires = datetime.fromtimestamp(now[0] + 60, timezone.utc)
        delivery.hold(("site", f"v{i}"), Invitation(f"i{i}", "pricing", "a", "Hi", "sales", expires))
    assert len(delivery._pending) <= 2 * PRUNE_FLOOR
    assert delivery.pending_for(("site", f"v{PRUNE_FLOOR * 5 - 1}"))


async def test_an_invitation_reaches_the_browser_only_once_it_is_stored(client, shop, clock, runtime):
    from proactive.tables import EngagementInvitation

    await import_rules(client, shop, rule(when=TIMED))
    visitor = Visitor(client, shop, clock)
    await visitor.view("/pricing")
    clock.advance(30)
    runtime.engagement.engine.tick()  # decided in memory...
    assert runtime.engagement.delivery.take_pending(await visitor.key(runtime), clock.time()) == []
    await runtime.engagement.journal.drain()  # ...written...
    [stored] = await EngagementInvitation.select().where(EngagementInvitation.tenant == shop.id)
    assert [i["id"] for i in await visitor.beat()] == [stored["id"]]  # ...then delivered


async def test_a_count_of_product_views_is_not_pushed_out_by_the_scrolling_between_them(client, shop, clock, runtime):
    """10 product pages, each read to the end (the snippet sends four scroll events a page): the
    visitor's memory keeps a bounded number of recent events, and a burst of one kind must not push
    out the events a rule counts."""
    await import_rules(client, shop, rule("browsing", when={"count": "product_view", "within": "30m", "op": "gte", "value": 10}))
    visitor = Visitor(client, shop, clock)
    for i in range(10):
        await visitor.send(pageview(f"/p/{i}", props={"product_id": f"p{i}"}))
        for depth in (25, 50, 75, 100):
            await visitor.send({"type": "scroll", "props": {"depth": depth}})
        advance(runtime, clock, 20)
    await visitor.beat()
    assert {i["rule"] for i in visitor.received} == {"browsing"}
    [outcome] = await visitor.explain()
    assert outcome["trace"] == ["✓ count(product_view, 1800s) = 10 gte 10"]


async def test_a_count_of_product_views_is_not_pushed_out_by_the_heartbeats_of_a_slow_reader(client, shop, clock, runtime):
    """Five products in 15 minutes, three minutes on each: the page's heartbeats (every 15 s, 60 of
    them) are remembered too, and must not push out the product views."""
    await import_rules(client, shop, rule("considering", when={"count": "product_view", "within": "30m", "op": "gte", "value": 5}))
    visitor = Visitor(client, shop, clock)
    for i in range(5):
        await visitor.send(pageview(f"/p/{i}", props={"product_id": f"p{i}"}))
        for _ in range(12):
            advance(runtime, clock, 15)
            await visitor.beat()
    assert {i["rule"] for i in visitor.received} == {"considering"}


async def test_a_dismissal_keeps_its_cooldown_however_busy_the_other_rules_are(client, shop, clock, runtime):
    """The visitor's memory keeps a bounded history of invitations; a dozen invitations of another
    rule must not erase the dismissal that keeps this rule quiet for seven days."""
    await import_rules(
        client, shop,
        rule("help", when={"field": "page.path", "op": "eq", "value": "/help"}, caps={"cooldown_after_dismiss": "7d"}),
        rule("deals", when={"field": "page.path", "op": "eq", "value": "/deals"}),
    )
    visitor = Visitor(client, shop, clock)
    await visitor.view("/help")
    [help_invitation] = visitor.received
    await visitor.react(help_invitation, "shown")
    await visitor.react(help_invitation, "dismissed")
    for _ in range(12):
        await visitor.view("/deals")
        deals = visitor.received[-1]
        assert deals["rule"] == "deals"
        await visitor.react(deals, "shown")
        await visitor.react(deals, "dismissed")
        await visitor.view("/home")
        advance(runtime, clock, 60)
    await visitor.view("/help")
    assert [i["rule"] for i in visitor.received].count("help") == 1


async def test_a_cart_amount_the_page_sends_as_text_is_read_as_the_number_it_is(client, shop, clock, runtime):
    """Shop templates and data layers often hand prices over as text: "79.50" is 79.5, and an
    amount that is not a plain decimal is rejected by name rather than silently ignored."""
    await import_rules(client, shop, rule("big-cart", when={"field": "cart.value", "op": "gte", "value": 50}))
    visitor = Visitor(client, shop, clock)
    answer = await visitor.send(pageview("/cart"), {"type": "cart", "props": {"value": "79.50", "items": "2", "currency": "EUR"}})
    assert answer.json()["rejected"] == [] and [i["rule"] for i in visitor.received] == ["big-cart"]
    [outcome] = await visitor.explain()
    assert outcome["trace"] == ["✓ cart.value = 79.5 gte 50.0"]
    other = Visitor(client, shop, clock)
    answer = await other.send(pageview("/cart"), {"type": "cart", "props": {"value": "1.299,00", "currency": "EUR"}})
    [rejected] = answer.json()["rejected"]
    assert rejected["index"] == 1 and rejected["reason"].startswith("props.value is not a number")


async def test_a_rules_url_glob_with_a_leading_slash_targets_the_path_as_a_goals_does(client, shop, clock, runtime):
    """url: "/pricing*" reads like a goal's url (a path glob); matched against the whole URL it
    could never hold, and the rule never invited anyone."""
    everywhere = {"field": "session.pageviews", "op": "gte", "value": 1}
    await import_rules(client, shop, rule("on-path", url="/pricing*", when=everywhere), rule("on-url", url="*/plans*", when=everywhere))
    pricing, plans, home = Visitor(client, shop, clock), Visitor(client, shop, clock), Visitor(client, shop, clock)
    await pricing.view("/pricing/teams")
    await plans.view("/plans")
    await home.view("/")
    assert [i["rule"] for i in pricing.received] == ["on-path"]
    assert [i["rule"] for i in plans.received] == ["on-url"]
    assert home.received == []


async def test_a_slot_given_back_by_a_dismissal_goes_to_the_visitor_waiting_longest(client, shop, clock, runtime):
    """The visitor who dismisses an invitation and also waits for the group's slot is served in
    their place in the queue, not first for having sent the dismissal."""
    plans = rule("plans", when={"all": [{"field": "page.url", "op": "glob", "value": "*/plans*"}]})
    await import_rules(client, shop, rule(), plans)
    await report_capacity(client, shop, free=1)
    holder, waiter = Visitor(client, shop, clock), Visitor(client, shop, clock)
    await holder.view("/", "/features", "/pricing")
    await waiter.view("/", "/plans")  # waits for the one slot, since 10:00:00
    advance(runtime, clock, 5)
    await holder.view("/plans")  # qualifies for 'plans' too, five seconds later: behind the waiter in the queue
    assert (await holder.explain())[0]["decision"].startswith("waiting for the open invitation to close: ")
    await holder.react(holder.received[0], "dismissed")
    assert [i["rule"] for i in await waiter.beat()] == ["plans"]
    assert [i["rule"] for i in holder.received[1:]] == []
    assert (await holder.explain())[0]["decision"].startswith("waiting for capacity: position 1 of 1")
