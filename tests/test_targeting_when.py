"""Targeting, when: schedules in the site's time zone, site holidays, agents online, and the safe
default caps every rule gets without saying so."""
# ruff: noqa: F811  (the engagement fixtures are imported from tests.engagement_support)

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from archive.clock import ManualClock
from proactive.engine import Engine
from proactive.model import GroupCapacity, RuleEntry, SiteConfig
from proactive.rules import Hours, compile_rule, load_document
from tests.engagement_support import (  # noqa: F401  (fixtures)
    Visitor,
    advance,
    client,
    clock,
    import_rules,
    report_capacity,
    rule,
    runtime,
    shop,
    stats,
)

OSLO = ZoneInfo("Europe/Oslo")
PRICING = {"field": "page.url", "op": "glob", "value": "*/pricing*"}


def at(text: str, zone: ZoneInfo = OSLO) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=zone).timestamp()


def schedule(**raw: Any) -> Hours:
    compiled, problems = compile_rule({"name": "r", "site": "shop", "invite": {"message": "hi"}, "schedule": raw})
    assert compiled is not None and compiled.hours is not None, problems
    return compiled.hours


def schedule_errors(**raw: Any) -> dict[str, str]:
    compiled, problems = compile_rule({"name": "r", "site": "shop", "invite": {"message": "hi"}, "schedule": raw})
    assert compiled is None
    return {p.path: p.message for p in problems}


# --- schedules ---------------------------------------------------------------------------------


def test_several_windows_a_day_are_open_only_inside_each():
    hours = schedule(days="mon-fri", windows=["09:00-12:00", "13:00-17:00"])
    assert hours.open_at(at("2026-11-23T09:00"), "Europe/Oslo")  # a Monday
    assert not hours.open_at(at("2026-11-23T12:30"), "Europe/Oslo")
    assert hours.open_at(at("2026-11-23T16:59"), "Europe/Oslo")
    assert not hours.open_at(at("2026-11-23T17:00"), "Europe/Oslo")
    assert hours.next_open(at("2026-11-23T12:30"), "Europe/Oslo") == at("2026-11-23T13:00")


def test_an_overnight_window_belongs_to_the_day_it_opens():
    hours = schedule(days="fri", windows=[{"from": "22:00", "to": "02:00"}])
    assert hours.open_at(at("2026-11-27T23:30"), "Europe/Oslo")  # Friday night
    assert hours.open_at(at("2026-11-28T01:59"), "Europe/Oslo")  # Saturday morning, still Friday's window
    assert not hours.open_at(at("2026-11-28T02:00"), "Europe/Oslo")
    assert not hours.open_at(at("2026-11-28T23:00"), "Europe/Oslo")  # Saturday's own night is not scheduled
    assert not hours.open_at(at("2026-11-27T01:00"), "Europe/Oslo")  # Friday morning belongs to Thursday


def test_24_00_is_the_end_of_the_day():
    hours = schedule(**{"from": "18:00", "to": "24:00"})
    assert hours.open_at(at("2026-11-23T23:59:59"), "Europe/Oslo")
    assert not hours.open_at(at("2026-11-24T00:00"), "Europe/Oslo")


def test_the_schedule_runs_in_the_sites_time_zone_unless_it_names_one():
    hours = schedule(**{"from": "09:00", "to": "10:00"})
    assert hours.open_at(at("2026-11-23T09:30", ZoneInfo("Asia/Tokyo")), "Asia/Tokyo")
    assert not hours.open_at(at("2026-11-23T09:30", ZoneInfo("Asia/Tokyo")), "UTC")
    named = schedule(timezone="Asia/Tokyo", **{"from": "09:00", "to": "10:00"})
    assert named.open_at(at("2026-11-23T09:30", ZoneInfo("Asia/Tokyo")), "UTC")


def test_start_and_end_dates_bound_the_schedule():
    hours = schedule(start_date="2026-12-01", end_date="2026-12-24", **{"from": "08:00", "to": "18:00"})
    assert not hours.open_at(at("2026-11-30T12:00"), "Europe/Oslo")
    assert hours.open_at(at("2026-12-01T12:00"), "Europe/Oslo")
    assert hours.open_at(at("2026-12-24T12:00"), "Europe/Oslo")
    assert not hours.open_at(at("2026-12-25T12:00"), "Europe/Oslo")
    assert hours.next_open(at("2026-11-20T12:00"), "Europe/Oslo") == at("2026-12-01T08:00")
    assert hours.next_open(at("2026-12-24T19:00"), "Europe/Oslo") is None  # never again


def test_the_sites_holidays_close_the_schedule_unless_it_opens_on_holidays():
    holidays = frozenset({"2026-12-25"})
    closed = schedule(**{"from": "08:00", "to": "18:00"})
    assert not closed.open_at(at("2026-12-25T12:00"), "Europe/Oslo", holidays)
    assert closed.next_open(at("2026-12-24T19:00"), "Europe/Oslo", holidays) == at("2026-12-26T08:00")
    assert schedule(holidays="open", **{"from": "08:00", "to": "18:00"}).open_at(at("2026-12-25T12:00"), "Europe/Oslo", holidays)


def test_the_old_business_hours_form_still_means_one_window():
    compiled, _ = compile_rule({"name": "r", "site": "shop", "invite": {"message": "hi"},
                                "business_hours": {"timezone": "Europe/Oslo", "days": "mon-fri", "from": "08:00", "to": "18:00"}})
    assert compiled is not None and compiled.hours is not None
    assert compiled.hours.windows == ((480, 1080),) and compiled.hours.timezone == "Europe/Oslo"


@pytest.mark.parametrize("raw,path,message", [
    ({"windows": ["08:00-08:00"]}, "schedule.windows[0].to", "must differ"),
    ({"windows": ["25:00-26:00"]}, "schedule.windows[0].from", "a time like"),
    ({"windows": []}, "schedule.windows", "1 to 24"),
    ({"from": "24:00", "to": "02:00"}, "schedule.from", "a time like"),
    ({"start_date": "2026-13-01"}, "schedule.start_date", "a date"),
    ({"start_date": "2026-12-02", "end_date": "2026-12-01"}, "schedule.end_date", "before start_date"),
    ({"holidays": "sometimes"}, "schedule.holidays", "closed"),
    ({"days": "mon-funday"}, "schedule.days", "mon-fri"),
    ({"timezone": "Mars/Olympus"}, "schedule.timezone", "IANA"),
    ({"timezone": "Europe"}, "schedule.timezone", "IANA"),
    ({"from": 540, "to": 1080}, "schedule.from", 'quote it ("9:00")'),  # YAML 1.1 reads unquoted 9:00 as 540
    ({"from": 540, "to": 1080}, "schedule.to", 'quote it ("18:00")'),  # a region, not a zone (a folder of the tz database)
    ({"weekends": True}, "schedule.weekends", "unknown key"),
])
def test_a_bad_schedule_names_the_field(raw, path, message):
    errors = schedule_errors(**raw)
    assert path in errors and message in errors[path], errors


def test_unquoted_yaml_times_are_named_with_how_to_write_them():
    """YAML 1.1 reads ``from: 9:00`` as the base-60 number 540: "a time like 08:00" alone told the
    marketer to write what they had written."""
    [raw] = load_document("rules:\n- {name: r, site: shop, invite: {message: hi}, schedule: {days: mon-fri, from: 9:00, to: 18:30}}\n")
    _, problems = compile_rule(raw, "rules[0]")
    assert {p.path: p.message for p in problems} == {
        "rules[0].schedule.from": 'a time like 08:00 (00:00 to 23:59); YAML reads an unquoted 9:00 as the number 540: quote it ("9:00")',
        "rules[0].schedule.to": 'a time like 18:00 (24:00 is the end of the day); YAML reads an unquoted 18:30 as the number 1110: quote it ("18:30")',
    }


# --- the engine: schedules, agents online, default caps --------------------------------------


class Bench:
    """The engine on a manual clock, without a database: one site, one visitor."""

    def __init__(self, start: float, config: SiteConfig | None = None) -> None:
        self.clock = ManualClock(start)
        self.engine = Engine(clock=self.clock.time, pace=False, journal=False)
        self.site, self.tenant = uuid.uuid4(), uuid.uuid4()
        self.engine.set_site(self.site, config or SiteConfig())
        self.state = self.engine.state_for(self.tenant, self.site, "v")

    def rules(self, **raw: Any) -> None:
        compiled, problems = compile_rule({"name": "r", "site": "shop", "invite": {"message": "hi"}, **raw})
        assert compiled is not None, problems
        self.engine.set_rules(self.site, [RuleEntry("rule-1", self.tenant, self.site, compiled)])

    def send(self, *types: str, **fields: Any) -> None:
        events = [{"type": t, "at_epoch": self.clock.time(), "tab": "t", "url": "https://shop.example.com/", **fields} for t in types]
        self.engine.apply_events(self.state, events)

    def advance(self, seconds: float, beat: bool = True) -> None:
        """Time passes with the tab visible (heartbeats every 15 s, as the snippet sends)."""
        until = self.clock.time() + seconds
        while self.clock.time() < until:
            step = min(15.0, until - self.clock.time())
            while (due := self.engine.next_due()) is not None and due <= self.clock.time() + step:
                self.clock.set(due)
                self.engine.tick()
            self.clock.set(self.clock.time() + step if self.clock.time() < until else until)
            self.engine.tick()
            if beat:
                self.send("heartbeat")

    def sent(self) -> list[float]:
        return [h[2] for h in self.state.history or () if h[1] == "sent"]

    def react(self, status: str) -> None:
        [record] = list(self.engine.open.values())
        self.engine.apply_events(self.state, [{"type": f"invitation_{status}", "at_epoch": self.clock.time(), "tab": "t",
                                               "props": {"invitation_id": record.invitation.id}}])


def test_a_visitor_waiting_before_an_overnight_window_is_invited_when_it_opens_across_midnight():
    bench = Bench(at("2026-11-27T21:59:00"), SiteConfig(timezone="Europe/Oslo"))
    bench.rules(schedule={"windows": ["22:00-02:00"]}, invite={"message": "night owls", "max_wait": "5m"})
    bench.send("pageview")
    assert bench.sent() == []
    bench.advance(120)
    assert bench.sent() == [at("2026-11-27T22:00")]  # the timer fired at the opening, not at a poll


def test_a_site_holiday_keeps_the_rule_quiet_all_day():
    bench = Bench(at("2026-12-25T12:00"), SiteConfig(timezone="Europe/Oslo", holidays=frozenset({"2026-12-25"})))
    bench.rules(schedule={"from": "08:00", "to": "18:00"})
    bench.send("pageview")
    bench.advance(60)
    assert bench.sent() == []
    assert bench.engine.explain(bench.state, bench.site)[0].decision.startswith("waiting for business hours")


def test_agents_online_reads_the_rules_group_and_is_decided_again_when_they_come_online():
    bench = Bench(at("2026-11-23T12:00"))
    bench.rules(when={"field": "agents.online", "op": "eq", "value": True}, invite={"message": "hi", "group": "sales"})
    offline = {"sales": GroupCapacity(0, 3, 0, datetime.now()), "support": GroupCapacity(2, 3, 0, datetime.now())}
    bench.engine.set_capacity(bench.tenant, offline)
    bench.send("pageview")
    assert bench.sent() == []
    assert "✗ agents.online = False eq True" in bench.engine.explain(bench.state, bench.site)[0].trace
    bench.engine.set_capacity(bench.tenant, {"sales": GroupCapacity(1, 3, 0, datetime.now())})
    bench.engine.tick()  # no event from the visitor: the report itself decides again
    assert len(bench.sent()) == 1


def test_agents_online_is_unknown_for_a_group_that_never_reported():
    bench = Bench(at("2026-11-23T12:00"))
    bench.rules(when={"any": [{"field": "agents.online", "op": "eq", "value": True},
                              {"field": "agents.online", "op": "eq", "value": False}]}, invite={"message": "hi", "group": "sales"})
    bench.send("pageview")
    assert bench.sent() == []


def test_a_rule_without_caps_invites_a_visitor_once_a_day():
    bench = Bench(at("2026-11-23T10:00"))
    bench.rules(when=PRICING)
    bench.send("pageview", url="https://shop.example.com/pricing")
    bench.react("accepted")
    for _ in range(3):  # the condition stops and holds again: new episodes, the same day
        bench.send("pageview", url="https://shop.example.com/")
        bench.advance(3600)
        bench.send("pageview", url="https://shop.example.com/pricing")
    assert len(bench.sent()) == 1
    bench.send("pageview", url="https://shop.example.com/")
    bench.advance(12 * 3600, beat=False)  # 01:00 UTC (the site's default zone): the next calendar day
    bench.send("pageview", url="https://shop.example.com/pricing")
    assert len(bench.sent()) == 2


def test_a_rule_without_caps_stays_quiet_for_seven_days_after_a_dismissal():
    bench = Bench(at("2026-11-23T10:00"))
    bench.rules(when=PRICING)
    bench.send("pageview", url="https://shop.example.com/pricing")
    bench.react("dismissed")
    for _ in range(6):
        bench.send("pageview", url="https://shop.example.com/")
        bench.advance(86400, beat=False)
        bench.send("pageview", url="https://shop.example.com/pricing")
    assert len(bench.sent()) == 1
    bench.send("pageview", url="https://shop.example.com/")
    bench.advance(86400, beat=False)
    bench.send("pageview", url="https://shop.example.com/pricing")
    assert len(bench.sent()) == 2


def test_null_turns_a_default_cap_off():
    bench = Bench(at("2026-11-23T10:00"))
    bench.rules(when=PRICING, caps={"per_visitor_per_day": None, "cooldown_after_dismiss": None})
    for _ in range(3):
        bench.send("pageview", url="https://shop.example.com/pricing")
        bench.react("dismissed")
        bench.send("pageview", url="https://shop.example.com/")  # the episode ends; the next one may send
    assert len(bench.sent()) == 3


@pytest.mark.parametrize("until,reaction,again", [
    ("seen", "shown", False), ("seen", None, True), ("interacted", "shown", True), ("interacted", "dismissed", False),
    ("interacted", "accepted", False),
])
def test_show_until_seen_or_interacted(until, reaction, again):
    bench = Bench(at("2026-11-23T10:00"))
    bench.rules(when=PRICING, caps={"per_visitor_per_day": None, "cooldown_after_dismiss": None, "until": until},
                invite={"message": "hi", "expires": "1m"})
    bench.send("pageview", url="https://shop.example.com/pricing")
    if reaction is not None:
        bench.react(reaction)
    bench.advance(120)  # an invitation nobody answered expires
    bench.send("pageview", url="https://shop.example.com/")
    bench.send("pageview", url="https://shop.example.com/pricing")
    assert len(bench.sent()) == (2 if again else 1)


@pytest.mark.parametrize("caps,path", [
    ({"until": "clicked"}, "caps.until"), ({"per_visitor_per_day": 0}, "caps.per_visitor_per_day"),
    ({"per_session": True}, "caps.per_session"), ({"forever": 1}, "caps.forever"),
])
def test_bad_caps_name_the_field(caps, path):
    compiled, problems = compile_rule({"name": "r", "site": "shop", "invite": {"message": "hi"}, "caps": caps})
    assert compiled is None and path in {p.path for p in problems}


# --- over the API ------------------------------------------------------------------------------


async def test_a_sites_holidays_and_a_schedule_crossing_midnight_over_the_api(client, shop, clock, runtime):
    url = f"/v1/admin/sites/{shop.site['id']}/engagement"
    changed = await client.patch(url, json={"timezone": "Europe/Oslo", "holidays": ["2026-12-25", "2026-12-26"]}, headers=shop.headers("marketing"))
    assert changed.status_code == 200 and changed.json()["holidays"] == ["2026-12-25", "2026-12-26"]
    bad = await client.patch(url, json={"holidays": ["christmas"]}, headers=shop.headers("marketing"))
    assert bad.status_code == 422 and bad.json()["errors"][0]["path"].startswith("holidays")
    clock.set(at("2026-11-27T21:59:30"))
    await import_rules(client, shop, rule(schedule={"windows": ["22:00-02:00"]}, invite={"max_wait": "10m"}))
    visitor = Visitor(client, shop, clock)
    await visitor.view("/", "/plans", "/pricing")
    assert visitor.received == []
    advance(runtime, clock, 20)
    await visitor.beat()
    advance(runtime, clock, 15)
    assert [i["rule"] for i in await visitor.beat()] == ["pricing"]
