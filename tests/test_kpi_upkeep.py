"""The metrics stay true as the archive changes: revisions, deletions, late and out-of-order
conversations, cached report cells, concurrent ingests — and they hold no words."""
# ruff: noqa: F811  (the report fixtures are imported from tests.kpi_support)

from __future__ import annotations

import asyncio
import copy

import pytest

from archive.metrics.tables import ConversationMetrics, MetricsCell
from archive.search import indexing
from tests.kpi_support import client, fixed_set, oslo, put_settings, report, runtime, with_supervisor  # noqa: F401  (fixtures)

BY_NAME = {c["external_id"]: c for c in fixed_set()}


def _conv(name: str, **changes):
    body = copy.deepcopy(BY_NAME[name])
    body.update(changes)
    return body


async def _ingest(client, tenant, *bodies, revise: bool = False):
    params = {"on_conflict": "revise"} if revise else {}
    response = await client.post("/v1/transcripts", json={"conversations": list(bodies)}, params=params, headers=tenant.headers("ingest"))
    assert response.status_code in (200, 201), response.text
    return response.json()


async def _day(client, tenant, day: str):
    return next(g for g in (await report(client, tenant, group_by="day"))["groups"] if g["key"] == day)


async def test_a_revision_replaces_the_figures_and_its_neighbours_follow(client, oslo):
    shorter = _conv("c2", ended_at="2026-10-24T08:08:00Z")
    assert (await _ingest(client, oslo, shorter, revise=True))["results"][0]["status"] == "revised"
    day = await _day(client, oslo, "2026-10-24")
    # c2 is now busy 08:06:30-08:08:00: 90 s beside c1 instead of 210.
    assert day["conversations"] == 2
    assert day["concurrency_s"] == {"1": 470.0, "2": 90.0, "3": 0.0, "4+": 0.0}
    assert day["resolution_s"]["median"] == (600 + 180) / 2
    rows = await ConversationMetrics.count().where(ConversationMetrics.tenant == oslo.id)
    assert rows == 8  # one per conversation and agent, c5 has two: none left from the first revision


async def test_the_same_conversation_again_changes_nothing(client, oslo):
    before = await report(client, oslo, group_by="agent")
    assert (await _ingest(client, oslo, _conv("c1")))["results"][0]["status"] == "existing"
    assert await report(client, oslo, group_by="agent") == before


async def test_deleting_a_conversation_gives_its_neighbours_back_their_figures(client, oslo, runtime):
    policy = {"default": {"forever": True}, "rules": [{"name": "short email", "match": {"channel": "email"}, "days": 1}]}
    assert (await client.put("/v1/retention/policies", json=policy, headers=oslo.headers("admin"))).status_code == 200
    await indexing.drain_all(runtime)
    swept = await client.post("/v1/retention/sweep", headers=oslo.headers("admin"))
    assert swept.json()["deleted"] == 1, swept.text  # c3, the return about billing
    assert (await _day(client, oslo, "2026-10-24"))["fcr_rate"] == 1.0  # c1 now resolved at first contact
    assert (await _day(client, oslo, "2026-10-26"))["conversations"] == 2


async def test_a_late_conversation_reaches_a_day_already_reported(client, oslo):
    assert (await _day(client, oslo, "2026-10-24"))["conversations"] == 2
    assert await MetricsCell.count().where(MetricsCell.tenant == oslo.id) > 0  # the past days were kept
    late = _conv("c1", external_id="c8", started_at="2026-10-24T15:00:00Z", ended_at="2026-10-24T15:10:00Z", messages=[
        {"at": "2026-10-24T15:00:00Z", "sender": {"role": "visitor", "id": "v-8"}, "text": "hi"},
        {"at": "2026-10-24T15:00:10Z", "sender": {"role": "agent", "id": "a-1"}, "text": "hello"},
    ], visitor={"id": "v-8"}, ratings={"csat": 1})
    await _ingest(client, oslo, late)
    day = await _day(client, oslo, "2026-10-24")
    assert (day["conversations"], day["first_reply_s"]["median"], day["csat"]["responses"]) == (3, 30.0, 3)


def _chat(name: str, agent: str, visitor: str, start: str, reply: str, end: str):
    body = _conv("c1", external_id=name, started_at=start, ended_at=end, visitor={"id": visitor}, messages=[
        {"at": start, "sender": {"role": "visitor", "id": visitor}, "text": "hi"},
        {"at": reply, "sender": {"role": "agent", "id": agent}, "text": "hello"},
    ], agents=[{"id": agent}])
    del body["ratings"]
    return body


async def test_a_third_chat_at_once_counts_at_level_three(client, oslo):
    await _ingest(client, oslo, _chat("c9", "a-1", "v-9", "2026-10-24T08:09:00Z", "2026-10-24T08:09:00Z", "2026-10-24T08:12:00Z"))
    day = await _day(client, oslo, "2026-10-24")
    # a-1: alone 08:00:40-08:06:30 and 08:12-08:20, two 08:06:30-08:09 and 08:10-08:12, three 08:09-08:10.
    assert day["concurrency_s"] == {"1": 350.0 + 480.0, "2": 150.0 + 120.0, "3": 60.0, "4+": 0.0}


async def test_a_neighbour_on_the_next_day_changes_the_reported_day(client, oslo):
    late = _chat("c8", "a-3", "v-8", "2026-10-24T21:50:00Z", "2026-10-24T21:50:30Z", "2026-10-24T22:20:00Z")  # 23:50 local
    await _ingest(client, oslo, late)
    before = await _day(client, oslo, "2026-10-24")  # now kept as a cell
    # 00:05 on 25 October in Oslo: a-3 is still in c8 (busy 22:06-22:15 UTC beside it).
    await _ingest(client, oslo, _chat("c9", "a-3", "v-9", "2026-10-24T22:05:00Z", "2026-10-24T22:06:00Z", "2026-10-24T22:15:00Z"))
    after = await _day(client, oslo, "2026-10-24")
    assert after["conversations"] == before["conversations"] == 3
    assert after["concurrency_s"]["2"] == before["concurrency_s"]["2"] + 270.0  # half of the 540 s c8 shared


async def test_an_earlier_conversation_arriving_after_the_return_is_still_not_resolved_at_first_contact(client, tenant):
    await put_settings(client, tenant, time_zone="Europe/Oslo")
    await with_supervisor(tenant)
    await _ingest(client, tenant, _conv("c3"))
    await _ingest(client, tenant, _conv("c1"))
    assert (await _day(client, tenant, "2026-10-24"))["fcr_rate"] == 0.0


async def test_concurrent_ingests_of_one_agent_see_each_other(client, tenant):
    await with_supervisor(tenant)
    await asyncio.gather(*[
        client.post("/v1/transcripts", json=_conv(name), headers=tenant.headers("ingest")) for name in ("c1", "c2")
    ])
    day = await _day(client, tenant, "2026-10-24")
    assert day["concurrency_s"] == {"1": 950.0, "2": 210.0, "3": 0.0, "4+": 0.0}


async def test_metrics_and_cells_hold_no_words(client, oslo):
    words = "zanzibarquokka"
    body = _conv("c1", external_id="c10", started_at="2026-10-20T08:00:00Z", ended_at="2026-10-20T08:10:00Z", messages=[
        {"at": "2026-10-20T08:00:00Z", "sender": {"role": "visitor", "id": "v-1", "name": "Ola"}, "text": f"{words} 4111 1111 1111 1111"},
        {"at": "2026-10-20T08:00:10Z", "sender": {"role": "agent", "id": "a-1", "name": "Kari"}, "text": words},
    ], ratings={"csat": 2, "comment": f"{words} was slow"}, visitor={"id": "v-1", "name": "Ola", "email": "ola@example.no"})
    await _ingest(client, oslo, body)
    await report(client, oslo, group_by="day", **{"from": "2026-10-20", "to": "2026-10-26"})
    rows = await ConversationMetrics.select().where(ConversationMetrics.tenant == oslo.id)
    cells = await MetricsCell.select(MetricsCell.data).where(MetricsCell.tenant == oslo.id)
    stored = repr(rows).encode() + b"".join(c["data"] for c in cells)
    # The card number whole and spaced (a bare "4111" can turn up by chance inside a UUID or a hash).
    for needle in (words, "Ola", "Kari", "ola@example.no", "4111 1111 1111 1111", "4111111111111111", "v-1", "slow"):
        assert needle.encode() not in stored, needle


@pytest.mark.parametrize("ratings,path", [
    ({"csat": 6}, "ratings.csat"), ({"nps": -1}, "ratings.nps"), ({"ces": 0}, "ratings.ces"),
    ({"csat": "5"}, "ratings.csat"), ({"stars": 5}, "ratings.stars"),
])
async def test_ratings_out_of_range_are_refused_naming_the_field(client, tenant, ratings, path):
    response = await client.post("/v1/transcripts", json=_conv("c1", ratings=ratings), headers=tenant.headers("ingest"))
    assert response.status_code == 422, response.text
    assert [e["path"] for e in response.json()["errors"]] == [path]


async def test_the_rating_comment_is_redacted_and_sealed_with_the_conversation(client, tenant):
    body = _conv("c1", ratings={"csat": 4, "comment": "my card 4111 1111 1111 1111 worked in the end"})
    created = (await client.post("/v1/transcripts", json=body, headers=tenant.headers("ingest"))).json()
    assert created["redactions"] == {"card": 1}
    read = (await client.get(f"/v1/transcripts/{created['id']}", headers=tenant.headers("compliance"))).json()
    assert read["ratings"] == {"csat": 4, "comment": "my card 4111 11** **** 1111 worked in the end"}


async def test_a_conversation_without_ratings_reads_and_hashes_as_before(client, tenant):
    body = _conv("c1")
    del body["ratings"]
    created = (await client.post("/v1/transcripts", json=body, headers=tenant.headers("ingest"))).json()
    read = (await client.get(f"/v1/transcripts/{created['id']}", headers=tenant.headers("compliance"))).json()
    assert "ratings" not in read
