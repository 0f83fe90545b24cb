"""Shared fixtures and a browser stand-in for the engagement engine's tests.

The engine runs on a manual clock in a runtime of its own (sharing the suite's database), so
tests move time instead of sleeping. ``Visitor`` sends what the snippet sends; ``advance`` moves
the clock and fires every timer at its due time, as the event loop does live.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import httpx
import pytest
import yaml

from api.app import create_app
from api.composition import build_runtime
from archive.clock import ManualClock
from archive.runtime import Runtime
from tests.conftest import TenantFixture, app_client

ORIGIN = "https://shop.example.com"


def mid_morning() -> datetime:
    """The latest 10:00 UTC that has passed: far from any day boundary in the sites' time zones.

    Caps, quiet hours and per-day counts turn over at local midnight; a clock started at the wall
    time made tests that advance half an hour fail when the suite ran just before midnight.
    """
    now = datetime.now(timezone.utc)
    start = now.replace(hour=10, minute=0, second=0, microsecond=0)
    return start if start <= now else start - timedelta(days=1)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(mid_morning())


@pytest.fixture
async def runtime(runtime: Runtime, settings: Any, clock: ManualClock) -> Any:
    """The engine on a manual clock: a runtime of its own, sharing the database."""
    engine_rt = build_runtime(settings, clock=clock, keyring=runtime.keyring, database=runtime.database, search=runtime.search)
    await engine_rt.start(migrate=False)
    yield engine_rt
    await engine_rt.stop()


@pytest.fixture
async def client(settings: Any, runtime: Runtime) -> Any:
    async with app_client(create_app(settings, runtime)) as http:
        yield http


@pytest.fixture
async def shop(client: httpx.AsyncClient, tenant: TenantFixture) -> TenantFixture:
    site = await client.post("/v1/admin/sites", json={"name": "shop", "allowed_origins": [ORIGIN]}, headers=tenant.headers("admin"))
    assert site.status_code == 201
    tenant.site = site.json()  # type: ignore[attr-defined]
    return tenant


async def restart(rt: Runtime, settings: Any, clock: ManualClock) -> Runtime:
    """The process stops and another one starts on the same database: only what is stored remains."""
    await rt.engagement.journal.drain()
    fresh = build_runtime(settings, clock=clock, keyring=rt.keyring, database=rt.database, search=rt.search)
    await fresh.start(migrate=False)
    return fresh


NO_CAPS = {"per_visitor_per_day": None, "cooldown_after_dismiss": None}


def rule(name: str = "pricing", **overrides: Any) -> dict[str, Any]:
    """A rule that holds after three pageviews on the pricing page, sends to group 'sales'.
    Without the default caps (once a day, 7 days after a dismissal) unless ``caps`` names them:
    these tests are about one decision at a time."""
    body: dict[str, Any] = {
        "name": name, "site": "shop",
        "when": {"all": [
            {"field": "page.url", "op": "glob", "value": "*/pricing*"},
            {"field": "session.pageviews", "op": "gte", "value": 3},
        ]},
        "invite": {"message": "Questions about our plans?", "group": "sales"},
        "caps": dict(NO_CAPS),
    }
    for key, value in overrides.items():
        if key == "invite":
            body["invite"] = {**body["invite"], **value}
        elif key == "caps":
            body["caps"] = {**NO_CAPS, **value}
        else:
            body[key] = value
    return body


async def import_rules(client: httpx.AsyncClient, tenant: TenantFixture, *rules: dict[str, Any]) -> dict[str, str]:
    response = await client.post("/v1/rules/import", content=yaml.safe_dump({"rules": list(rules)}).encode(),
                                 headers={**tenant.headers("marketing"), "content-type": "application/yaml"})
    assert response.status_code == 200, response.text
    listed = (await client.get("/v1/rules", headers=tenant.headers("marketing"))).json()
    return {r["name"]: r["id"] for r in listed}


async def report_capacity(client: httpx.AsyncClient, tenant: TenantFixture, free: int, group: str = "sales", busy: int = 0) -> Any:
    """Agents online so that ``free`` slots are free (one chat each), ``busy`` of them chatting."""
    groups = {group: {"online_agents": free + busy, "max_chats_per_agent": 1, "active_chats": busy}}
    response = await client.put("/v1/agents/capacity", json={"groups": groups}, headers=tenant.headers("ingest"))
    assert response.status_code == 200, response.text
    return response.json()


def advance(rt: Runtime, clock: ManualClock, seconds: float) -> None:
    """Move time, firing each timer at its due time (as ``loop.call_at`` does live)."""
    engine = rt.engagement.engine
    until = clock.time() + seconds
    while (due := engine.next_due()) is not None and due <= until:
        clock.set(due)
        engine.tick()
    clock.set(until)
    engine.tick()


class Visitor:
    """A browser: one visitor id, tabs, and what the snippet would send."""

    def __init__(self, client: httpx.AsyncClient, tenant: TenantFixture, clock: ManualClock, visitor_id: str | None = None) -> None:
        self.client = client
        self.tenant = tenant
        self.clock = clock
        self.id = visitor_id or f"v-{secrets.token_hex(6)}"
        self.received: list[dict[str, Any]] = []
        self._last_ms = 0  # the browser's clock moves on between events, even when the test's does not

    async def send(self, *events: dict[str, Any], tab: str = "tab-1", batch_id: str | None = None, client_offset: float = 0.0,
                   origin: str = ORIGIN) -> httpx.Response:
        stamped = []
        for event in events:
            self._last_ms = max(self._last_ms + 1, int((self.clock.time() + client_offset) * 1000))
            stamped.append({"at": self._last_ms, **event})
        body: dict[str, Any] = {"site_key": self.tenant.site["site_key"], "visitor_id": self.id, "session_id": tab,  # type: ignore[attr-defined]
                                "events": stamped}
        if batch_id is not None:
            body["batch_id"] = batch_id
        response = await self.client.post("/v1/collect", content=json.dumps(body),
                                          headers={"content-type": "text/plain", "origin": origin, "user-agent": "Mozilla/5.0"})
        if response.status_code == 200:
            self.received.extend(response.json()["invitations"])
        return response

    async def view(self, *paths: str, tab: str = "tab-1") -> httpx.Response:
        return await self.send(*(pageview(p) for p in paths), tab=tab)

    async def beat(self, tab: str = "tab-1") -> list[dict[str, Any]]:
        """A heartbeat; returns the invitations the response carried."""
        response = await self.send({"type": "heartbeat"}, tab=tab)
        assert response.status_code == 200, response.text
        return list(response.json()["invitations"])

    async def react(self, invitation: dict[str, Any], how: str) -> None:
        """shown, accepted or dismissed."""
        await self.send({"type": f"invitation_{how}", "props": {"invitation_id": invitation["id"]}})

    async def key(self, rt: Runtime) -> tuple[Any, str]:
        """The engine's key for this visitor: (site id, keyed hash of the visitor id)."""
        from archive.tenancy import tenant_context

        crypto = (await tenant_context(rt, self.tenant.id)).crypto
        return (UUID(self.tenant.site["id"]), crypto.identity_hash(self.id))  # type: ignore[attr-defined]

    async def explain(self) -> list[dict[str, Any]]:
        response = await self.client.get(f"/v1/visitors/{self.id}/explain", params={"site": "shop"}, headers=self.tenant.headers("marketing"))
        assert response.status_code == 200, response.text
        return list(response.json())


def pageview(path: str, **extra: Any) -> dict[str, Any]:
    return {"type": "pageview", "url": f"{ORIGIN}{path}", "title": path, **extra}


async def stats(client: httpx.AsyncClient, tenant: TenantFixture, rule_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/rules/{rule_id}/stats", headers=tenant.headers("marketing"))
    assert response.status_code == 200, response.text
    return dict(response.json()["totals"])
