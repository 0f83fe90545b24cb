"""Support reports: every figure of a small fixed set worked out by hand (tests/kpi_support.py),
local days and hours in the tenant's time zone across a DST change, CSV, access and errors."""
# ruff: noqa: F811  (the report fixtures are imported from tests.kpi_support)

from __future__ import annotations

import csv
import io

import pytest

from tests.kpi_support import RANGE, client, fixed_set, oslo, put_settings, report, runtime, with_supervisor  # noqa: F401  (fixtures)


def _groups(found):
    return {g["key"]: g for g in found["groups"]}


NO_RATINGS = {"csat": {"mean": None, "responses": 0, "satisfied_rate": None}, "nps": {"score": None, "responses": 0},
              "ces": {"mean": None, "responses": 0}}


async def test_days_are_local_days_and_every_figure_is_as_worked_out(client, oslo):
    found = await report(client, oslo, group_by="day")
    assert (found["from"], found["to"]) == ("2026-10-24T00:00:00+02:00", "2026-10-27T00:00:00+01:00")
    assert found["time_zone"] == "Europe/Oslo" and found["group_by"] == "day"
    days = _groups(found)
    assert list(days) == ["2026-10-24", "2026-10-25", "2026-10-26"]
    assert days["2026-10-24"] == {
        "key": "2026-10-24", "conversations": 2,
        "first_reply_s": {"median": 60.0, "p90": 84.0}, "resolution_s": {"median": 750.0, "p90": 870.0},
        "fcr_rate": 0.5, "sla_rate": 0.5,
        "csat": {"mean": 4.0, "responses": 2, "satisfied_rate": 0.5}, "nps": {"score": 0.0, "responses": 2},
        "ces": {"mean": 2.0, "responses": 1},
        "concurrency_s": {"1": 950.0, "2": 210.0, "3": 0.0, "4+": 0.0},
        "missed": 0, "avg_reply_s": 50.0, "handovers": 0,
    }
    # 25 October has 25 hours; c6 started at 23:30 UTC, already 26 October in Oslo.
    assert days["2026-10-25"] == {
        "key": "2026-10-25", "conversations": 2,
        "first_reply_s": {"median": 47.5, "p90": 49.5}, "resolution_s": {"median": 750.0, "p90": 870.0},
        "fcr_rate": 1.0, "sla_rate": 1.0, **NO_RATINGS,
        "concurrency_s": {"1": 1345.0, "2": 0.0, "3": 0.0, "4+": 0.0},
        "missed": 0, "avg_reply_s": 71.7, "handovers": 1,
    }
    assert days["2026-10-26"] == {
        "key": "2026-10-26", "conversations": 3,
        "first_reply_s": {"median": 120.0, "p90": 120.0}, "resolution_s": {"median": 1200.0, "p90": 1680.0},
        "fcr_rate": 1.0, "sla_rate": 0.0,
        "csat": {"mean": 4.0, "responses": 1, "satisfied_rate": 1.0}, "nps": {"score": None, "responses": 0},
        "ces": {"mean": 5.0, "responses": 1},
        "concurrency_s": {"1": 2880.0, "2": 0.0, "3": 0.0, "4+": 0.0},
        "missed": 2, "avg_reply_s": 120.0, "handovers": 0,
    }


async def test_totals_count_every_conversation_once(client, oslo):
    for group_by in ("day", "agent"):
        totals = (await report(client, oslo, group_by=group_by))["totals"]
        assert totals == {
            "conversations": 7,
            "first_reply_s": {"median": 50.0, "p90": 108.0}, "resolution_s": {"median": 900.0, "p90": 1440.0},
            "fcr_rate": 0.8571, "sla_rate": 0.4286,
            "csat": {"mean": 4.0, "responses": 3, "satisfied_rate": 0.6667}, "nps": {"score": 0.0, "responses": 2},
            "ces": {"mean": 3.5, "responses": 2},
            "concurrency_s": {"1": 5175.0, "2": 210.0, "3": 0.0, "4+": 0.0},
            "missed": 2, "avg_reply_s": 66.9, "handovers": 1,
        }


async def test_by_agent_a_conversation_counts_for_every_agent_who_took_part(client, oslo):
    agents = _groups(await report(client, oslo, group_by="agent"))
    assert list(agents) == ["a-1", "a-2", None]
    assert agents["a-1"] == {
        "key": "a-1", "conversations": 3,  # c1, c2, and c5 it handed over
        "first_reply_s": {"median": 50.0, "p90": 82.0}, "resolution_s": {"median": 600.0, "p90": 840.0},
        "fcr_rate": 0.6667, "sla_rate": 0.6667,
        "csat": {"mean": 4.0, "responses": 2, "satisfied_rate": 0.5}, "nps": {"score": 0.0, "responses": 2},
        "ces": {"mean": 2.0, "responses": 1},
        "concurrency_s": {"1": 1020.0, "2": 210.0, "3": 0.0, "4+": 0.0},
        "missed": 0, "avg_reply_s": 50.0, "handovers": 1,
    }
    # c5's first reply was a-1's, so it counts for a-1 only; c6 nobody answered is a-2's miss.
    assert agents["a-2"] == {
        "key": "a-2", "conversations": 4,
        "first_reply_s": {"median": 82.5, "p90": 112.5}, "resolution_s": {"median": 1050.0, "p90": 1620.0},
        "fcr_rate": 1.0, "sla_rate": 0.3333,
        "csat": {"mean": 4.0, "responses": 1, "satisfied_rate": 1.0}, "nps": {"score": None, "responses": 0},
        "ces": {"mean": 5.0, "responses": 1},
        "concurrency_s": {"1": 4155.0, "2": 0.0, "3": 0.0, "4+": 0.0},
        "missed": 1, "avg_reply_s": 95.0, "handovers": 1,
    }
    assert agents[None] == {
        "key": None, "conversations": 1,
        "first_reply_s": {"median": None, "p90": None}, "resolution_s": {"median": 300.0, "p90": 300.0},
        "fcr_rate": 1.0, "sla_rate": 0.0, **NO_RATINGS,
        "concurrency_s": {"1": 0.0, "2": 0.0, "3": 0.0, "4+": 0.0},
        "missed": 1, "avg_reply_s": None, "handovers": 0,
    }


async def test_hours_are_local_hours_and_the_night_the_clocks_go_back_has_two_2_oclock_hours(client, oslo):
    hours = await report(client, oslo, group_by="hour")
    keys = [g["key"] for g in hours["groups"]]
    assert len(keys) == 24 + 25 + 24  # empty hours are listed too: a chart has no holes
    assert keys[:3] == ["2026-10-24T00:00+02:00", "2026-10-24T01:00+02:00", "2026-10-24T02:00+02:00"]
    assert keys[24:29] == ["2026-10-25T00:00+02:00", "2026-10-25T01:00+02:00", "2026-10-25T02:00+02:00",
                           "2026-10-25T02:00+01:00", "2026-10-25T03:00+01:00"]
    busy = {g["key"]: g["conversations"] for g in hours["groups"] if g["conversations"]}
    assert busy == {"2026-10-24T10:00+02:00": 2, "2026-10-25T02:00+02:00": 1, "2026-10-25T02:00+01:00": 1,
                    "2026-10-26T00:00+01:00": 1, "2026-10-26T10:00+01:00": 1, "2026-10-26T13:00+01:00": 1}
    first_two = _groups(hours)["2026-10-24T10:00+02:00"]
    assert first_two["first_reply_s"] == {"median": 60.0, "p90": 84.0}
    assert _groups(hours)["2026-10-25T02:00+01:00"]["first_reply_s"] == {"median": 50.0, "p90": 50.0}


async def test_the_same_conversations_in_utc_fall_on_other_days(client, oslo):
    await put_settings(client, oslo, time_zone="UTC")
    days = _groups(await report(client, oslo, group_by="day"))
    assert {k: g["conversations"] for k, g in days.items()} == {"2026-10-24": 2, "2026-10-25": 3, "2026-10-26": 2}


@pytest.mark.parametrize("group_by,expected", [
    ("site", {"blog": 1, "shop": 6}),
    ("channel", {"email": 1, "web": 6}),
    ("group", {"sales": 4, "support": 2, None: 1}),
])
async def test_sites_channels_and_groups_count_each_conversation_once(client, oslo, group_by, expected):
    groups = _groups(await report(client, oslo, group_by=group_by))
    assert {k: g["conversations"] for k, g in groups.items()} == expected
    assert sum(g["concurrency_s"]["1"] for g in groups.values()) == 5175.0


async def test_support_group_figures(client, oslo):
    support = _groups(await report(client, oslo, group_by="group"))["support"]  # c3 and c6
    assert support["first_reply_s"] == {"median": 120.0, "p90": 120.0}
    assert support["resolution_s"] == {"median": 1500.0, "p90": 1740.0}  # 1200 + 0.9 × 600
    assert (support["sla_rate"], support["missed"], support["fcr_rate"]) == (0.0, 1, 1.0)
    assert support["concurrency_s"]["1"] == 2880.0


async def test_a_range_that_does_not_start_at_midnight_counts_what_started_within_it(client, oslo):
    # 10:03 in Oslo is after c1 started (10:00) and before c2 (10:05); up to 02:45 CET on 25 October.
    found = await report(client, oslo, group_by="agent", **{"from": "2026-10-24T10:03:00+02:00", "to": "2026-10-25T02:45:00+01:00"})
    assert found["totals"]["conversations"] == 3  # c2, c4, c5
    assert found["totals"]["first_reply_s"] == {"median": 50.0, "p90": 82.0}
    naive = await report(client, oslo, group_by="agent", **{"from": "2026-10-24T10:03:00", "to": "2026-10-25T02:45:00+01:00"})
    assert naive["from"] == "2026-10-24T10:03:00+02:00" and naive["totals"] == found["totals"]


async def test_settings_apply_to_past_periods_at_once(client, oslo):
    await put_settings(client, oslo, sla_first_reply_seconds=120, fcr_days=1)
    totals = (await report(client, oslo, group_by="day"))["totals"]
    assert totals["sla_rate"] == 0.7143  # 30, 45, 50, 90, 120 of 7 waiting
    assert totals["fcr_rate"] == 1.0  # c3 came more than a day after c1
    assert (await report(client, oslo))["sla_first_reply_seconds"] == 120


async def test_csv_has_a_header_one_row_per_group_and_the_totals(client, oslo):
    response = await client.get("/v1/reports/support", params={**RANGE, "group_by": "agent", "format": "csv"},
                                headers=oslo.headers("supervisor"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [(r["scope"], r["key"], r["conversations"]) for r in rows] == [
        ("group", "a-1", "3"), ("group", "a-2", "4"), ("group", "", "1"), ("total", "", "7"),
    ]
    assert rows[0]["first_reply_median_s"] == "50.0" and rows[0]["concurrency_2_s"] == "210.0"
    assert rows[2]["first_reply_median_s"] == "" and rows[3]["nps_score"] == "0.0"


async def test_csv_keys_never_become_spreadsheet_formulas(client, tenant):
    await with_supervisor(tenant)
    body = fixed_set()[0]
    body["agents"] = [{"id": "=HYPERLINK(1)"}]
    body["messages"][1]["sender"]["id"] = "=HYPERLINK(1)"
    body["messages"][3]["sender"]["id"] = "=HYPERLINK(1)"
    assert (await client.post("/v1/transcripts", json=body, headers=tenant.headers("ingest"))).status_code == 201
    response = await client.get("/v1/reports/support", params={**RANGE, "group_by": "agent", "format": "csv"},
                                headers=tenant.headers("supervisor"))
    assert list(csv.DictReader(io.StringIO(response.text)))[0]["key"] == "'=HYPERLINK(1)"


@pytest.mark.parametrize("role,status", [("supervisor", 200), ("compliance", 200), ("admin", 200), ("marketing", 403), ("ingest", 403)])
async def test_who_may_read_reports(client, tenant, role, status):
    await with_supervisor(tenant)
    response = await client.get("/v1/reports/support", params=RANGE, headers=tenant.headers(role))
    assert response.status_code == status, response.text


@pytest.mark.parametrize("path", ["/v1/transcripts/00000000-0000-0000-0000-000000000000", "/v1/audit", "/v1/admin/keys", "/v1/rules"])
async def test_a_supervisor_reads_reports_and_nothing_else(client, tenant, path):
    await with_supervisor(tenant)
    assert (await client.get(path, headers=tenant.headers("supervisor"))).status_code == 403


async def test_reading_a_report_is_ledgered(client, oslo):
    await report(client, oslo, group_by="agent")
    entries = (await client.get("/v1/audit", params={"action": "report.support"}, headers=oslo.headers("compliance"))).json()
    assert [(e["subject"], e["details"]) for e in entries] == [
        ("agent", {"from": "2026-10-24T00:00:00+02:00", "to": "2026-10-27T00:00:00+01:00"}),
    ]


@pytest.mark.parametrize("params,field", [
    ({"group_by": "visitor"}, "group_by"),
    ({"format": "xml"}, "format"),
    ({"from": "yesterday"}, "from"),
    ({"from": "2026-10-26", "to": "2026-10-24"}, "to"),
    ({"from": "2024-01-01", "to": "2026-10-24"}, "from"),
])
async def test_bad_parameters_are_problems_naming_the_parameter(client, oslo, params, field):
    response = await client.get("/v1/reports/support", params={**RANGE, **params}, headers=oslo.headers("supervisor"))
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert field in [e["path"] for e in response.json()["errors"]], response.json()


@pytest.mark.parametrize("from_,to,status", [
    ("2026-10-24", "2027-11-27", 200),  # 400 Oslo days, across two nights the clocks go back and one they go forward
    ("2026-10-24", "2027-11-28", 400),
    ("2026-03-28", "2027-05-01", 200),  # 400 days, two nights forward and one back
    ("2026-03-28", "2027-05-02", 400),
])
async def test_a_report_covers_at_most_400_local_days(client, oslo, from_, to, status):
    response = await client.get("/v1/reports/support", params={"from": from_, "to": to, "group_by": "site"},
                                headers=oslo.headers("supervisor"))
    assert response.status_code == status, response.text


async def test_the_default_range_is_the_last_30_local_days(client, oslo):
    found = (await client.get("/v1/reports/support", headers=oslo.headers("supervisor"))).json()
    assert (found["from"], found["to"]) == ("2026-10-25T00:00:00+02:00", "2026-11-23T13:00:00+01:00")
    assert found["totals"]["conversations"] == 5  # c1 and c2 were on 24 October


@pytest.mark.parametrize("zone", ["Europe/Atlantis", "Europe"])  # "Europe": a region, a folder of the tz database
async def test_an_unknown_time_zone_is_refused_naming_the_field(client, tenant, zone):
    current = (await client.get("/v1/admin/settings", headers=tenant.headers("admin"))).json()
    response = await client.put("/v1/admin/settings", json={**current, "time_zone": zone}, headers=tenant.headers("admin"))
    assert response.status_code == 422
    assert [e["path"] for e in response.json()["errors"]] == ["time_zone"]


async def test_ratings_out_of_range_are_refused_naming_each_field_and_nothing_is_stored(client, oslo):
    body = fixed_set()[0] | {"external_id": "rated-badly", "ratings": {"csat": 6, "nps": 11, "ces": 0}}
    response = await client.post("/v1/transcripts", json=body, headers=oslo.headers("ingest"))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert {e["path"] for e in response.json()["errors"]} >= {"ratings.csat", "ratings.nps", "ratings.ces"}
    assert (await report(client, oslo, group_by="day"))["totals"]["conversations"] == 7
