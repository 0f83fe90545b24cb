"""A kill -9 mid-traffic changes no decision: the same event stream, sent once to a server that runs
throughout and once to a server killed half-way (and restarted on the same database), leads to the
same invitations for every visitor and the same statistics for every rule.

The browser stand-in does what the snippet does: it sends each batch with an id and, when a request
fails, sends the same batch again (to the restarted server) — so a batch the killed server had
already committed is not applied twice.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.conftest import DATA_DIR, ENGINE, TenantFixture, make_tenant

RULES = [
    {"name": "pricing", "site": "shop", "priority": 2,
     "when": {"all": [{"field": "page.url", "op": "glob", "value": "*/pricing*"}, {"field": "session.pageviews", "op": "gte", "value": 3}]},
     "invite": {"message": "Questions about our plans?", "group": "sales"}, "caps": {"per_session": 1}},
    {"name": "products", "site": "shop", "priority": 1,
     "when": {"count": "product_view", "within": "10m", "op": "gte", "value": 2},
     "invite": {"message": "Need a hand choosing?", "group": "sales"}, "caps": {"cooldown_after_dismiss": "1h"}},
    {"name": "welcome", "site": "shop",
     "when": {"field": "session.pageviews", "op": "gte", "value": 1},
     "invite": {"message": "Welcome!"}, "caps": {"per_visitor_per_day": 1}},
]
ORIGIN = "https://shop.example.com"
VISITORS = 10
STEPS = 160
BEAT_EVERY = 16


def _script(seed: int = 7) -> tuple[list[tuple[int, str, str]], int]:
    """(visitor, action, argument): pages, product views, reactions to invitations, purchases; and
    the step during which the server is killed (a pageview half-way)."""
    rng = random.Random(seed)
    steps = []
    for _ in range(STEPS):
        roll = rng.random()
        who = rng.randrange(VISITORS)
        if roll < 0.45:
            steps.append((who, "view", rng.choice(["/", "/pricing", "/plans", "/about"])))
        elif roll < 0.65:
            steps.append((who, "product", rng.choice(["tent", "stove", "lamp"])))
        elif roll < 0.95:
            steps.append((who, "react", rng.choice(["dismissed", "dismissed", "accepted"])))
        else:
            steps.append((who, "view", "/thanks"))
    # Every BEAT_EVERY steps everyone is heard from, as open tabs' heartbeats would be: whom a freed
    # slot goes to depends on who is present (a tab heard from within 45 s), and on a loaded
    # machine a visitor's silence of a hundred steps can outlast that in one run and not the other.
    for at in range(len(steps) - len(steps) % BEAT_EVERY, 0, -BEAT_EVERY):
        steps[at:at] = [(who, "beat", "") for who in range(VISITORS)]
    kill_at = next(i for i in range(len(steps) // 2, len(steps)) if steps[i][1] == "view")
    # After that step everyone is heard from again, in both runs: whom a freed slot goes to then
    # must not depend on how long the restart took (presence lasts 45 s).
    steps[kill_at + 1:kill_at + 1] = [(who, "beat", "") for who in range(VISITORS)]
    return steps, kill_at


class Server:
    """``parley serve`` in its own process group, on the test database."""

    def __init__(self) -> None:
        self.data = Path(tempfile.mkdtemp(prefix="parley-kill-"))
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: asyncio.subprocess.Process | None = None
        self.log = open(self.data / "server.log", "ab")

    async def start(self) -> None:
        env = {**os.environ, "PARLEY_DATA_DIR": str(self.data), "PARLEY_PORT": str(self.port), "PARLEY_HOST": "127.0.0.1",
               "PARLEY_SCHEDULER": "false", "PARLEY_DEMO": "false", "PARLEY_LOG_LEVEL": "warning",
               "PARLEY_COLLECT_PER_IP_PER_MINUTE": "100000"}
        if ENGINE == "sqlite":
            env["PARLEY_DATABASE_URL"] = f"sqlite:///{DATA_DIR / 'parley.sqlite3'}"
        self.process = await asyncio.create_subprocess_exec(str(Path(sys.executable).with_name("parley")), "serve", env=env,
                                                            stdout=self.log, stderr=self.log, start_new_session=True)
        async with httpx.AsyncClient(timeout=1) as http:
            for _ in range(300):
                try:
                    if (await http.get(f"{self.url}/healthz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    await asyncio.sleep(0.1)
        raise RuntimeError("parley serve did not start: " + (self.data / "server.log").read_text()[-2000:])

    async def kill(self) -> None:
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        await asyncio.wait_for(self.process.wait(), 10)

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            await asyncio.wait_for(self.process.wait(), 20)
        self.log.close()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Run:
    """One tenant's site, its rules and capacity, and the browsers sending the script to it."""

    def __init__(self, tenant: TenantFixture, site_key: str, prefix: str) -> None:
        self.tenant = tenant
        self.site_key = site_key
        self.prefix = prefix
        self.received: dict[int, list[dict[str, Any]]] = {i: [] for i in range(VISITORS)}
        self.handled: dict[int, set[str]] = {i: set() for i in range(VISITORS)}

    def batch(self, step: int, who: int, action: str, argument: str) -> dict[str, Any] | None:
        if action == "view":
            events: list[dict[str, Any]] = [{"type": "pageview", "url": f"{ORIGIN}{argument}"}]
            if argument == "/thanks":
                events.append({"type": "goal", "name": "purchase"})
        elif action == "beat":
            events = [{"type": "heartbeat"}]
        elif action == "product":
            events = [{"type": "pageview", "url": f"{ORIGIN}/product/{argument}", "props": {"product_id": argument}}]
        else:
            fresh = [i for i in self.received[who] if i["id"] not in self.handled[who]]
            if not fresh:
                events = [{"type": "heartbeat"}]
            else:
                self.handled[who].add(fresh[0]["id"])
                events = [{"type": "invitation_shown", "props": {"invitation_id": fresh[0]["id"]}},
                          {"type": f"invitation_{argument}", "props": {"invitation_id": fresh[0]["id"]}}]
        return {"site_key": self.site_key, "visitor_id": f"{self.prefix}-{who}", "session_id": f"tab-{who}", "batch_id": f"b{step}",
                "events": events}

    def took(self, who: int, response: httpx.Response) -> None:
        known = {i["id"] for i in self.received[who]}
        self.received[who].extend(i for i in response.json()["invitations"] if i["id"] not in known)

    def outcome(self) -> dict[int, list[str]]:
        return {who: [i["rule"] for i in got] for who, got in self.received.items()}


async def _post(http: httpx.AsyncClient, url: str, body: dict[str, Any]) -> httpx.Response:
    headers = {"content-type": "text/plain", "origin": ORIGIN, "user-agent": "Mozilla/5.0"}
    return await http.post(f"{url}/v1/collect", content=json.dumps(body), headers=headers)


async def _prepare(api: str, tenant: TenantFixture, prefix: str) -> Run:
    async with httpx.AsyncClient(base_url=api, timeout=30) as http:
        site = await http.post("/v1/admin/sites", json={"name": "shop", "allowed_origins": [ORIGIN]}, headers=tenant.headers("admin"))
        assert site.status_code == 201, site.text
        imported = await http.post("/v1/rules/import", content=yaml.safe_dump({"rules": RULES}).encode(),
                                   headers={**tenant.headers("marketing"), "content-type": "application/yaml"})
        assert imported.status_code == 200, imported.text
        capacity = await http.put("/v1/agents/capacity", json={"groups": {"sales": {"online_agents": 2, "max_chats_per_agent": 1, "active_chats": 0}}},
                                  headers=tenant.headers("ingest"))
        assert capacity.status_code == 200, capacity.text
    return Run(tenant, site.json()["site_key"], prefix)


async def _observed(api: str, run: Run) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=api, timeout=30) as http:
        rules = (await http.get("/v1/rules", headers=run.tenant.headers("marketing"))).json()
        stats = {r["name"]: (await http.get(f"/v1/rules/{r['id']}/stats", headers=run.tenant.headers("marketing"))).json()["totals"] for r in rules}
        capacity = (await http.get("/v1/agents/capacity", headers=run.tenant.headers("ingest"))).json()
    for totals in stats.values():
        totals.pop("rates")
    for group in capacity.values():
        group.pop("reported_at")
    return {"invitations": run.outcome(), "stats": stats, "capacity": capacity}


@pytest.fixture
async def server():
    servers: list[Server] = []

    def make() -> Server:
        servers.append(Server())
        return servers[-1]

    yield make
    for running in servers:
        await running.stop()


async def test_a_kill_9_mid_traffic_changes_no_decision(server, runtime):
    script, kill_at = _script()
    first = server()
    await first.start()
    steady = await _prepare(first.url, await make_tenant(runtime), "steady")
    interrupted = await _prepare(first.url, await make_tenant(runtime), "killed")
    async with httpx.AsyncClient(timeout=30) as http:
        for step, (who, action, argument) in enumerate(script):
            body = steady.batch(step, who, action, argument)
            steady.took(who, await _post(http, first.url, body))
        expected = await _observed(first.url, steady)

        for step, (who, action, argument) in enumerate(script[:kill_at]):
            interrupted.took(who, await _post(http, first.url, interrupted.batch(step, who, action, argument)))
        body = interrupted.batch(kill_at, *script[kill_at])
        in_flight = asyncio.create_task(_post(http, first.url, body))
        await asyncio.sleep(0.003)  # the request is on its way, or being committed
        await first.kill()
        second = server()
        await second.start()
        try:
            interrupted.took(script[kill_at][0], await in_flight)
        except httpx.HTTPError:  # no answer: the browser sends the same batch again
            interrupted.took(script[kill_at][0], await _post(http, second.url, body))
        for step, (who, action, argument) in enumerate(script[kill_at + 1:], start=kill_at + 1):
            response = await _post(http, second.url, interrupted.batch(step, who, action, argument))
            assert response.status_code == 200, response.text
            interrupted.took(who, response)
        observed = await _observed(second.url, interrupted)

    assert sum(len(v) for v in expected["invitations"].values()) >= 8  # the script exercised the rules
    assert observed == expected
