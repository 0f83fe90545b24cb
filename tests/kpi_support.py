"""A small fixed set of conversations whose every report figure is worked out by hand in the
tests (tests/test_reports.py). Europe/Oslo: the clocks went back on Sunday 25 October 2026 at
01:00 UTC (03:00 CEST became 02:00 CET), so that local day has 25 hours and two 02:00 hours.

    c1  24 Oct 08:00–08:10Z  agent a-1   visitor v-1  billing   replies 30, 60       csat 5 nps 10 ces 2
    c2  24 Oct 08:05–08:20Z  agent a-1   visitor v-2  shipping  replies 90, 20       csat 3 nps 6
    c3  26 Oct 09:00–09:30Z  agent a-2   visitor v-1  billing   bot, then 120        csat 4 ces 5   (email)
    c4  25 Oct 00:30–00:45Z  agent a-2   visitor v-3  untagged  reply 45             (02:30 CEST)
    c5  25 Oct 01:30–01:40Z  a-1 → a-2   visitor v-6  returns   50, transfer, 120    (02:30 CET)
    c6  25 Oct 23:30–23:50Z  a-2 listed  visitor v-4  billing   nobody answers       (26 Oct 00:30 local)
    c7  26 Oct 12:00–12:05Z  no agent    visitor v-5  untagged  bot only             (site blog)

a-1 is busy with c1 (08:00:40–08:10:00) and c2 (08:06:30–08:20:00) at once for 210 s. v-1 comes
back about billing (c3) two days after c1: c1 is not resolved at first contact.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pytest

from api.app import create_app
from api.composition import build_runtime
from archive.clock import ManualClock
from archive.tenancy import create_api_key
from tests.conftest import app_client

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
RANGE = {"from": "2026-10-24", "to": "2026-10-26"}


@pytest.fixture
async def runtime(runtime, settings):
    """A runtime whose clock stands still on 23 November 2026 (what "now" and "today" mean)."""
    own = build_runtime(settings, clock=ManualClock(NOW), keyring=runtime.keyring, database=runtime.database, search=runtime.search)
    await own.start(migrate=False)
    yield own
    await own.stop()


@pytest.fixture
async def client(settings, runtime):
    async with app_client(create_app(settings, runtime)) as http:
        yield http


async def put_settings(client, tenant, **changes):
    current = (await client.get("/v1/admin/settings", headers=tenant.headers("admin"))).json()
    response = await client.put("/v1/admin/settings", json={**current, **changes}, headers=tenant.headers("admin"))
    assert response.status_code == 200, response.text


async def with_supervisor(tenant):
    tenant.keys["supervisor"] = await create_api_key(tenant.id, "supervisor", "supervisor key")
    return tenant


@pytest.fixture
async def oslo(client, tenant):
    """The fixed set, archived for a tenant in Europe/Oslo, with a supervisor key."""
    await put_settings(client, tenant, time_zone="Europe/Oslo")
    await with_supervisor(tenant)
    response = await client.post("/v1/transcripts", json={"conversations": fixed_set()}, headers=tenant.headers("ingest"))
    assert response.status_code == 201, response.text
    return tenant


async def report(client, tenant, **params):
    response = await client.get("/v1/reports/support", params={**RANGE, **params}, headers=tenant.headers("supervisor"))
    assert response.status_code == 200, response.text
    return response.json()


def _msg(at: str, role: str, sender: str | None, text: str = "words", **extra: Any) -> dict[str, Any]:
    return {"at": at, "sender": {"role": role, "id": sender}, "text": text, **extra}


def _conv(name: str, start: str, end: str, visitor: str, agents: list[str], tags: list[str], messages: list[dict[str, Any]],
          *, site: str = "shop", channel: str = "web", group: str | None = None, ratings: dict[str, int] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "external_id": name, "site": site, "channel": channel, "language": "en", "started_at": start, "ended_at": end,
        "visitor": {"id": visitor}, "agents": [{"id": a} for a in agents], "tags": tags,
        "metadata": {"group": group} if group else {}, "messages": messages,
    }
    if ratings:
        body["ratings"] = ratings
    return body


def fixed_set() -> list[dict[str, Any]]:
    d24, d25, d26 = "2026-10-24T", "2026-10-25T", "2026-10-26T"
    return [
        _conv("c1", d24 + "08:00:00Z", d24 + "08:10:00Z", "v-1", ["a-1"], ["billing"], [
            _msg(d24 + "08:00:10Z", "visitor", "v-1"), _msg(d24 + "08:00:40Z", "agent", "a-1"),
            _msg(d24 + "08:01:00Z", "visitor", "v-1"), _msg(d24 + "08:02:00Z", "agent", "a-1"),
        ], group="sales", ratings={"csat": 5, "nps": 10, "ces": 2}),
        _conv("c2", d24 + "08:05:00Z", d24 + "08:20:00Z", "v-2", ["a-1"], ["shipping"], [
            _msg(d24 + "08:05:00Z", "visitor", "v-2"), _msg(d24 + "08:06:30Z", "agent", "a-1"),
            _msg(d24 + "08:07:00Z", "visitor", "v-2"), _msg(d24 + "08:07:20Z", "agent", "a-1"),
        ], group="sales", ratings={"csat": 3, "nps": 6}),
        _conv("c3", d26 + "09:00:00Z", d26 + "09:30:00Z", "v-1", ["a-2"], ["billing"], [
            _msg(d26 + "09:00:00Z", "visitor", "v-1"), _msg(d26 + "09:00:05Z", "bot", "helper"),
            _msg(d26 + "09:02:00Z", "agent", "a-2"),
        ], channel="email", group="support", ratings={"csat": 4, "ces": 5}),
        _conv("c4", d25 + "00:30:00Z", d25 + "00:45:00Z", "v-3", ["a-2"], [], [
            _msg(d25 + "00:30:00Z", "visitor", "v-3"), _msg(d25 + "00:30:45Z", "agent", "a-2"),
        ], group="sales"),
        _conv("c5", d25 + "01:30:00Z", d25 + "01:40:00Z", "v-6", ["a-1", "a-2"], ["returns"], [
            _msg(d25 + "01:30:00Z", "visitor", "v-6"), _msg(d25 + "01:30:50Z", "agent", "a-1"),
            _msg(d25 + "01:31:00Z", "visitor", "v-6"),
            _msg(d25 + "01:32:00Z", "system", "a-1", "transferred to a-2", kind="event", event="transfer"),
            _msg(d25 + "01:33:00Z", "agent", "a-2"),
        ], group="sales"),
        _conv("c6", d25 + "23:30:00Z", d25 + "23:50:00Z", "v-4", ["a-2"], ["billing"], [
            _msg(d25 + "23:30:00Z", "visitor", "v-4"), _msg(d25 + "23:31:00Z", "visitor", "v-4"),
        ], group="support"),
        _conv("c7", d26 + "12:00:00Z", d26 + "12:05:00Z", "v-5", [], [], [
            _msg(d26 + "12:00:00Z", "visitor", "v-5"), _msg(d26 + "12:00:30Z", "bot", "helper"),
        ], site="blog"),
    ]


def chat(name: str, start: str, end: str, *, site: str = "shop", agent: str = "a-1", metadata: dict[str, Any] | None = None,
         ratings: dict[str, int] | None = None) -> dict[str, Any]:
    """A one-question chat: the visitor (of its own) writes at ``start``, the agent answers 30 s later."""
    reply = datetime.fromisoformat(start.replace("Z", "+00:00")).timestamp() + 30
    body = _conv(name, start, end, f"visitor-{name}", [agent], [], [
        _msg(start, "visitor", f"visitor-{name}"),
        _msg(datetime.fromtimestamp(reply, timezone.utc).isoformat(), "agent", agent),
    ], site=site, ratings=ratings)
    body["metadata"] = metadata or {}
    return body
