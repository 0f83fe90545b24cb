"""A 2xx means durable, and destructive steps are whole or not at all — proven by kill -9.

One real server (``parley serve``, scheduler on) is killed five times at seeded random moments
while it is, all at once: ingesting batches, taking ``/v1/collect`` events, running a retention
sweep and building an export. Afterwards, on a restarted server:

* every conversation and every event acknowledged with a 2xx is there;
* no conversation is half-deleted (a row without its key or a key without its row), and every
  conversation the sweeps deleted has exactly one receipt, and no receipt names one still there;
* the index converges to the store, every acknowledged export finishes and verifies offline,
  and the ledger verifies.

The seed (``PARLEY_TEST_SEED``) is printed; the same seed replays the same kill moments.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.factories import conversation
from tests.servers import Deployment

SEED = int(os.environ.get("PARLEY_TEST_SEED", "20261123"))
KILLS = 5
EXPIRED_PER_CYCLE = 600  # what each cycle's sweep has to delete (two sweep batches and more)
CONVERGE_SECONDS = 60.0


def _old(external_id: str) -> dict[str, Any]:
    body = conversation(external_id, "an old chat about a refund", "closing it now",
                        started_at="2025-06-01T10:00:00Z", ended_at="2025-06-01T10:30:00Z")
    for i, message in enumerate(body["messages"]):
        message["at"] = f"2025-06-01T10:{i + 1:02d}:00Z"
    return body


class Acknowledged:
    """What the server answered 2xx to: the promises to check after the kills."""

    def __init__(self) -> None:
        self.conversations: dict[str, str] = {}  # id -> tenant slug
        self.sessions: dict[str, int] = {}  # collect session id -> events accepted
        self.exports: list[str] = []


class Traffic:
    """Batch ingest and collect in a loop until the server dies."""

    def __init__(self, url: str, ingest_key: str, site_key: str, acked: Acknowledged, cycle: int) -> None:
        self.http = httpx.AsyncClient(base_url=url, timeout=10)
        self.ingest = {"Authorization": f"Bearer {ingest_key}"}
        self.site_key = site_key
        self.acked = acked
        self.cycle = cycle

    async def ingest_batches(self, worker: int) -> None:
        n = 0
        while True:
            n += 1
            bodies = [conversation(f"k{self.cycle}-w{worker}-{n}-{i}", "ingest under fire") for i in range(10)]
            try:
                response = await self.http.post("/v1/transcripts", json={"conversations": bodies}, headers=self.ingest)
            except httpx.TransportError:
                return  # killed
            assert response.status_code in (200, 201), response.text
            for result in response.json()["results"]:
                self.acked.conversations[result["id"]] = "arch"

    async def collect(self, worker: int) -> None:
        n = 0
        while True:
            n += 1
            session = f"s{self.cycle}w{worker}n{n}"
            now = time.time()
            body = {"site_key": self.site_key, "visitor_id": f"v{worker}", "session_id": session,
                    "events": [{"type": "page_view", "at": now, "url": f"https://shop.example/p/{i}"} for i in range(3)]}
            try:
                response = await self.http.post("/v1/collect", json=body, headers={"User-Agent": "Mozilla/5.0 durability"})
            except httpx.TransportError:
                return
            assert response.status_code == 200, response.text
            self.acked.sessions[session] = response.json()["accepted"]

    async def run(self) -> asyncio.Future[Any]:
        return asyncio.ensure_future(asyncio.gather(*[self.ingest_batches(w) for w in range(2)], *[self.collect(w) for w in range(2)]))


async def _half_deleted(deployment: Deployment) -> list[tuple[Any, ...]]:
    return await deployment.sql(
        "SELECT c.id, 'no key' FROM conversation c LEFT JOIN conversation_key k ON k.conversation = c.id WHERE k.conversation IS NULL "
        "UNION ALL SELECT k.conversation, 'no row' FROM conversation_key k LEFT JOIN conversation c ON c.id = k.conversation WHERE c.id IS NULL"
    )


async def _wait_for(check: Any, what: str) -> Any:
    deadline = time.monotonic() + CONVERGE_SECONDS
    while time.monotonic() < deadline:
        result = await check()
        if result:
            return result
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {CONVERGE_SECONDS}s")


@pytest.fixture
async def deployment(tmp_path):
    deployed = Deployment(tmp_path / "deployment")
    await deployed.create()
    try:
        yield deployed
    finally:
        await deployed.drop()


async def test_nothing_acknowledged_is_lost_and_nothing_is_half_deleted_over_kill_9(deployment, tmp_path, capsys):
    rng = random.Random(SEED)
    arch = await deployment.tenant("arch")
    ret = await deployment.tenant("ret")
    site = await deployment.cli_json("sites", "create", "--tenant", "arch", "--name", "shop")
    acked = Acknowledged()
    headers = {role: {"Authorization": f"Bearer {key}"} for role, key in arch.items()}
    ret_headers = {role: {"Authorization": f"Bearer {key}"} for role, key in ret.items()}
    moments: list[str] = []

    for cycle in range(KILLS):
        await deployment.start()
        async with httpx.AsyncClient(base_url=deployment.url, timeout=30) as http:
            if cycle == 0:
                policy = await http.put("/v1/retention/policies", json={"default": {"days": 1}}, headers=ret_headers["admin"])
                assert policy.status_code == 200, policy.text
            for start in range(0, EXPIRED_PER_CYCLE, 100):
                batch = [_old(f"old-{cycle}-{start + i}") for i in range(100)]
                created = await http.post("/v1/transcripts", json={"conversations": batch}, headers=ret_headers["ingest"])
                assert created.status_code == 201, created.text
                acked.conversations.update({r["id"]: "ret" for r in created.json()["results"]})
            traffic = Traffic(deployment.url, arch["ingest"], site["site_key"], acked, cycle)
            flowing = await traffic.run()
            export = await http.post("/v1/exports", json={"q": ""}, headers=headers["compliance"])
            assert export.status_code == 202, export.text
            acked.exports.append(export.json()["id"])

            async def an_export_is_running() -> bool:
                states = await asyncio.gather(*[http.get(f"/v1/exports/{e}", headers=headers["compliance"]) for e in acked.exports])
                if any(s.json()["status"] == "running" for s in states):
                    return True
                if all(s.json()["status"] == "done" for s in states):  # built between two looks: ask for another
                    again = await http.post("/v1/exports", json={"q": ""}, headers=headers["compliance"])
                    assert again.status_code == 202, again.text
                    acked.exports.append(again.json()["id"])
                return False

            await _wait_for(an_export_is_running, "an export run")
            sweeping = asyncio.ensure_future(http.post("/v1/retention/sweep", headers=ret_headers["admin"]))
            delay = rng.uniform(0.0, 0.8)
            await asyncio.sleep(delay)  # the random moment of the kill (not synchronisation)
            deployment.kill()
            swept = await asyncio.gather(sweeping, return_exceptions=True)
            await flowing
            await traffic.http.aclose()
        moments.append(f"{delay:.3f}s ({'sweep answered' if isinstance(swept[0], httpx.Response) else 'mid-sweep'})")
        assert await _half_deleted(deployment) == []

    with capsys.disabled():
        print(f"\n[kill -9] seed {SEED}: kills at {', '.join(moments)}; "
              f"{len(acked.conversations)} conversations, {len(acked.sessions)} collect requests, {len(acked.exports)} exports acknowledged")

    await deployment.start()
    async with httpx.AsyncClient(base_url=deployment.url, timeout=60) as http:
        final = await http.post("/v1/retention/sweep", headers=ret_headers["admin"])
        assert final.status_code == 200, f"{final.status_code} {final.text}\nthe server's log:\n{deployment.tail()}"
        await _check_promises(deployment, http, acked, headers, ret_headers, tmp_path)


async def _check_promises(deployment: Deployment, http: httpx.AsyncClient, acked: Acknowledged,
                          headers: dict[str, dict[str, str]], ret_headers: dict[str, dict[str, str]], tmp_path: Path) -> None:
    tenants = {slug: tid for tid, slug in await deployment.sql("SELECT id, slug FROM tenant")}
    present = {str(cid): slug for cid, slug in await deployment.sql(
        "SELECT c.id, t.slug FROM conversation c JOIN tenant t ON t.id = c.tenant")}
    receipts = Counter(str(s) for (s,) in await deployment.sql(
        "SELECT subject FROM ledger_entry WHERE action = 'retention.delete'"))

    # Every acknowledged conversation is there — or, in the swept tenant, deleted with one receipt.
    lost = [cid for cid, slug in acked.conversations.items() if cid not in present and not receipts.get(cid)]
    assert lost == [], f"{len(lost)} acknowledged conversations vanished without a receipt (seed {SEED})"
    assert all(slug == "ret" for cid, slug in acked.conversations.items() if cid not in present)
    assert [s for s, n in receipts.items() if n > 1] == [], "duplicate deletion receipts"
    assert [s for s in receipts if s in present] == [], "a receipt names a conversation that is still there"
    assert await _half_deleted(deployment) == []

    # Every acknowledged event is there.
    stored = Counter(str(s) for (s,) in await deployment.sql("SELECT session_id FROM behaviour_event"))
    missing = {s: n for s, n in acked.sessions.items() if stored.get(s, 0) != n}
    assert missing == {}, f"{len(missing)} acknowledged collect requests lost events (seed {SEED})"

    # The index converges to the store, for both tenants.
    async def index_matches() -> bool:
        for slug, role_headers in (("arch", headers), ("ret", ret_headers)):
            count = (await deployment.sql("SELECT COUNT(*) FROM conversation WHERE tenant = $1", tenants[slug]))[0][0]
            found = await http.post("/v1/search", json={"q": "", "size": 1}, headers=role_headers["compliance"])
            if found.json()["total"] != count:
                return False
        return True

    await _wait_for(index_matches, "the index converging to the store")

    # Every acknowledged export finishes (those killed mid-run are built again) and verifies.
    async def exports_done() -> list[dict[str, Any]] | None:
        states = [(await http.get(f"/v1/exports/{e}", headers=headers["compliance"])).json() for e in acked.exports]
        return states if all(s["status"] == "done" for s in states) else None

    states = await _wait_for(exports_done, "every export finishing")
    assert len(states) >= KILLS
    path = tmp_path / "after-kills.zip"
    path.write_bytes((await http.get(f"/v1/exports/{acked.exports[0]}/download", headers=headers["compliance"])).content)
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
    verified = await deployment.cli("export", "verify", str(path))
    assert verified.returncode == 0, verified.stdout

    ledger = await deployment.cli("ledger", "verify")
    assert ledger.returncode == 0, ledger.stdout + ledger.stderr
