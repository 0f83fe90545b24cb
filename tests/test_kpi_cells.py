"""Report cells by the hour: a day that changed is merged again from its hours' cells, of which
only the changed ones are computed from the metrics rows — with the figures of the day computed
whole."""
# ruff: noqa: F811  (the report fixtures are imported from tests.kpi_support)

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from archive.metrics import cells
from archive.metrics.tables import MetricsCell
from tests.kpi_support import NOW, chat, client, fixed_set, put_settings, report, runtime, with_supervisor  # noqa: F401  (fixtures)


async def _archive(client, tenant, zone: str, bodies):
    await put_settings(client, tenant, time_zone=zone)
    await with_supervisor(tenant)
    response = await client.post("/v1/transcripts", json={"conversations": bodies}, headers=tenant.headers("ingest"))
    assert response.status_code in (200, 201), response.text


@pytest.mark.parametrize("zone", ["Europe/Oslo", "Asia/Kolkata", "UTC"])
async def test_a_day_merged_from_its_hours_holds_what_the_day_computed_whole_holds(client, tenant, zone):
    """Oslo has the night the clocks go back (a 25-hour day); Kolkata is half an hour off UTC,
    so its days start and end inside UTC hours."""
    await _archive(client, tenant, zone, fixed_set())
    local = ZoneInfo(zone)
    compared = 0
    for day in (date(2026, 10, 24), date(2026, 10, 25), date(2026, 10, 26)):
        [(_, start, end)] = cells.days_between(cells.day_start(day, local), cells.day_start(day, local) + 1, local)
        whole = await cells.build(tenant.id, local, start, end, cells.DIMS)
        hours = await cells.build_hours(tenant.id, local, start, end, cells.DIMS)
        assert set(hours) <= {a for a, _ in cells.hours_of(start, end)}
        merged = {dim: cells.merged_cell([part[dim] for part in hours.values()]) for dim in cells.DIMS}
        assert merged == whole, day
        compared += sum(len(cell) for cell in whole.values())
    assert compared > 20  # the days hold conversations


RECENT = [  # the last days before the clock's 23 November 2026, 12:00 UTC
    chat("r1", "2026-11-20T08:00:00Z", "2026-11-20T08:10:00Z", agent="a-1"),
    chat("r2", "2026-11-20T15:30:00Z", "2026-11-20T15:45:00Z", agent="a-2"),
    chat("r3", "2026-11-21T23:50:00Z", "2026-11-22T00:05:00Z", agent="a-1"),
]


async def test_only_the_changed_hour_of_a_changed_day_is_computed_again(client, tenant, monkeypatch):
    await _archive(client, tenant, "Europe/Oslo", RECENT)
    days = {"from": "2026-11-19", "to": "2026-11-22"}
    before = await report(client, tenant, group_by="agent", **days)  # every day and hour now kept
    computed: list[tuple[int, int]] = []
    original = cells.build_hours

    async def counted(tenant_id, zone, lo, hi, dims):
        computed.append((lo, hi))
        return await original(tenant_id, zone, lo, hi, dims)

    monkeypatch.setattr(cells, "build_hours", counted)
    assert await report(client, tenant, group_by="agent", **days) == before  # nothing changed: nothing computed
    assert computed == []
    late = chat("late", "2026-11-20T15:10:00Z", "2026-11-20T15:20:00Z", agent="a-1")
    assert (await client.post("/v1/transcripts", json=late, headers=tenant.headers("ingest"))).status_code == 201
    after = await report(client, tenant, group_by="agent", **days)
    hour = int(datetime.fromisoformat("2026-11-20T15:00:00+00:00").timestamp())
    assert computed == [(hour, hour + 3600)]
    [a1] = [g for g in after["groups"] if g["key"] == "a-1"]
    assert a1["conversations"] == [g for g in before["groups"] if g["key"] == "a-1"][0]["conversations"] + 1
    await MetricsCell.delete().where(MetricsCell.tenant == tenant.id)
    assert await report(client, tenant, group_by="agent", **days) == after  # the same figures as computed afresh


async def test_older_days_are_computed_whole_and_keep_no_hour_cells(client, tenant):
    await _archive(client, tenant, "Europe/Oslo", [*fixed_set(), *RECENT])
    await report(client, tenant, group_by="agent", **{"from": "2026-10-24", "to": "2026-11-22"})
    kept = await MetricsCell.select(MetricsCell.day, MetricsCell.dim).where(MetricsCell.tenant == tenant.id)
    oldest_hour = min(r["day"] for r in kept if r["dim"].startswith(cells.HOUR))
    assert oldest_hour >= int(NOW.timestamp()) - (cells.HOURS_FOR_DAYS + 1) * 86_400
    assert {r["dim"] for r in kept if r["day"] < oldest_hour} == {"agent", "day"}  # older days: whole-day cells only


async def test_today_keeps_its_complete_hours_and_computes_the_current_one(client, tenant):
    """The clock stands at 12:00 UTC on 23 November 2026."""
    await _archive(client, tenant, "UTC", [
        chat("morning", "2026-11-23T09:10:00Z", "2026-11-23T09:20:00Z"),
        chat("now", "2026-11-23T11:58:00Z", "2026-11-23T11:59:00Z"),
    ])
    found = await report(client, tenant, group_by="hour", **{"from": "2026-11-23", "to": "2026-11-23"})
    assert [g["conversations"] for g in found["groups"] if g["conversations"]] == [1, 1]
    kept = await MetricsCell.select(MetricsCell.day, MetricsCell.dim).where(
        (MetricsCell.tenant == tenant.id) & (MetricsCell.dim == cells.HOUR + "hour"))
    noon = int(NOW.timestamp())
    assert sorted(r["day"] for r in kept) == list(range(noon - 12 * 3600, noon, 3600))  # 00:00 … 11:00, not 12:00
    assert not await MetricsCell.exists().where((MetricsCell.tenant == tenant.id) & (MetricsCell.dim == "hour"))  # today is not kept whole


def test_a_day_half_an_hour_off_utc_is_cut_at_utc_hours():
    kolkata = ZoneInfo("Asia/Kolkata")
    start = cells.day_start(date(2026, 10, 24), kolkata)
    parts = cells.hours_of(start, start + 86_400)
    assert len(parts) == 25 and parts[0] == (start, start + 1800) and parts[-1] == (start + 86_400 - 1800, start + 86_400)
    assert all(a // 3600 == (b - 1) // 3600 for a, b in parts)  # each part within one UTC hour


def test_merged_values_are_the_values_of_all_parts():
    parts = [cells.Values.of([5, 5, 5, 5, 1]), cells.Values.of([3, 9]), cells.Values.of([])]
    assert cells.Values.merged(parts) == cells.Values.of([5, 5, 5, 5, 1, 3, 9])



async def test_hour_cells_of_days_gone_by_are_forgotten_when_new_ones_are_kept(client, tenant, runtime):
    await _archive(client, tenant, "UTC", RECENT)
    await report(client, tenant, group_by="day", **{"from": "2026-11-20", "to": "2026-11-20"})
    first = await MetricsCell.count().where((MetricsCell.tenant == tenant.id) & MetricsCell.dim.like(cells.HOUR + "%"))
    assert first == 24  # a report by day keeps one dimension: 24 hours of it
    runtime.clock.advance(timedelta(days=cells.HOURS_FOR_DAYS + 3))
    later = chat("later", "2026-12-02T08:00:00Z", "2026-12-02T08:05:00Z")
    assert (await client.post("/v1/transcripts", json=later, headers=tenant.headers("ingest"))).status_code == 201
    await report(client, tenant, group_by="day", **{"from": "2026-12-02", "to": "2026-12-02"})
    kept = await MetricsCell.select(MetricsCell.day).where((MetricsCell.tenant == tenant.id) & MetricsCell.dim.like(cells.HOUR + "%"))
    assert kept and min(r["day"] for r in kept) >= int(datetime.fromisoformat("2026-12-02T00:00:00+00:00").timestamp())
