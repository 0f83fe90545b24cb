"""Engine replicas (issue 19): several ``parley serve`` processes on one PostgreSQL share the
tenants; any of them accepts a visitor's events and delivers its invitations; when the owner of a
busy site is killed -9 another takes over, and no qualifying visitor is invited twice or missed,
no cap is exceeded and no acknowledged event is lost.

On SQLite nothing changes: one process owns everything, and the setting is ignored.

The processes are real and the machine may be loaded: every wait polls with a generous deadline,
none sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import yaml

from archive.tables import OperationLease
from tests.conftest import ENGINE

ORIGIN = "https://shop.example.com"
TENANTS = ["replicas-intake", "replicas-stream", "replicas-capacity", "replicas-as-of", "replicas-waiting", "replicas-hang", "replicas-busy"]
PATIENCE = 45.0  # seconds any one thing may take on a loaded 2-core machine
SLOTS = 3
RULES = [{
    "name": "pricing", "site": "shop",
    "when": {"field": "page.url", "op": "glob", "value": "*/pricing*"},
    "invite": {"message": "Questions about our plans?", "group": "sales", "max_wait": "10m", "expires": "10m"},
    "caps": {"per_session": 1, "per_visitor_per_day": None, "cooldown_after_dismiss": None},
}]
BROWSER = {"content-type": "text/plain", "origin": ORIGIN, "user-agent": "Mozilla/5.0"}

T = TypeVar("T")


async def eventually(probe: Callable[[], Awaitable[T | None]], what: str, timeout: float = PATIENCE) -> T:
    """Poll ``probe`` until it returns something (not None/False), or fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        found = await probe()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f}s: {what}")
        await asyncio.sleep(0.1)


def test_a_joining_process_takes_tenants_only_for_itself():
    """Rendezvous hashing: when a process joins, a tenant either stays where it was or moves to
    the newcomer — never between the processes already running — and each gets a share."""
    from uuid import uuid4

    from proactive.ownership import owner_of

    tenants = [uuid4() for _ in range(300)]
    before = {t: owner_of(t, ["a:1:x", "b:2:y"]) for t in tenants}
    after = {t: owner_of(t, ["a:1:x", "b:2:y", "c:3:z"]) for t in tenants}
    assert {after[t] for t in tenants if after[t] != before[t]} == {"c:3:z"}
    assert all(60 <= list(after.values()).count(m) <= 140 for m in ("a:1:x", "b:2:y", "c:3:z"))


def test_a_dropped_tenant_leaves_nothing_in_memory_and_other_tenants_untouched():
    from datetime import datetime, timezone
    from uuid import uuid4

    from proactive.engine import Engine
    from proactive.model import GroupCapacity, Invitation, OpenInvitation

    now = [1_000.0]
    engine = Engine(clock=lambda: now[0])
    kept, dropped = uuid4(), uuid4()
    for tenant, site in ((kept, "site-k"), (dropped, "site-d")):
        engine.new_visitor(tenant, site, "v")
        engine.restore_capacity((tenant, "sales"), GroupCapacity(1, 1, 0, datetime.now(timezone.utc)), ())
        invitation = Invitation(f"i-{site}", "pricing", "a", "Hi", "sales", datetime.fromtimestamp(2_000, timezone.utc))
        engine.restore_invitation(OpenInvitation(invitation, str(uuid4()), (site, "v"), tenant, 990.0, 2_000.0))
        engine.restore_timer((site, "w"), 1_500.0)
    engine.drop_tenant(dropped, {"site-d"})
    assert list(engine.visitors) == [("site-k", "v")]
    assert list(engine.open) == ["i-site-k"]
    assert [k for k, n in engine.outstanding.items() if n] == [(kept, "sales")]
    assert list(engine.capacity) == [(kept, "sales")]
    assert engine.free_slots(kept, "sales") == 0 and engine.free_slots(dropped, "sales") is None
    now[0] = 2_500.0
    engine.tick()  # the kept invitation expires; the dropped tenant's timers find nothing to decide
    assert engine.open == {}
    assert engine.outstanding[(dropped, "sales")] == 0 and engine.outstanding[(kept, "sales")] == 0
    assert list(engine.visitors) == [("site-k", "v")]


def _merged(base: Any, override: Any) -> Any:
    """Compose's merge of an override file: mappings merge key by key, the rest is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        return {**base, **{k: _merged(base.get(k), v) for k, v in override.items()}}
    return override


def _replicas_compose() -> dict[str, Any]:
    root = Path(__file__).parent.parent / "deploy"
    merged: dict[str, Any] = _merged(yaml.safe_load((root / "compose.yaml").read_text()), yaml.safe_load((root / "compose.replicas.yaml").read_text()))
    return merged


def test_the_replicas_compose_file_follows_the_compose_specification():
    from tests.test_deploy import compose_errors

    assert compose_errors(_replicas_compose()) == []


def test_every_process_of_the_replicas_compose_file_shares_the_engine_and_one_runs_the_scheduler():
    from config.settings import load_settings
    from tests.test_deploy import OPERATOR_VARIABLES, interpolate, service_environment

    services = _replicas_compose()["services"]
    processes = {name: s for name, s in services.items() if s.get("build")}
    settings = {name: load_settings({k: interpolate(v, OPERATOR_VARIABLES) for k, v in service_environment(s).items()})
                for name, s in processes.items()}
    assert sorted(settings) == ["engine", "parley"]
    assert all(s.engagement_replicas and s.engine == "postgres" and s.engagement_engine for s in settings.values())
    assert [name for name, s in settings.items() if s.scheduler] == ["parley"]
    assert settings["engine"].effective_database_url == settings["parley"].effective_database_url


if ENGINE == "sqlite":

    async def test_on_sqlite_one_process_owns_every_site(runtime, settings):
        """``PARLEY_ENGAGEMENT_REPLICAS`` is ignored on SQLite: no leases, every tenant is decided
        here, and a collect answer carries the invitation it caused at once."""
        import msgspec

        from api.app import create_app
        from api.composition import build_runtime
        from archive.clock import ManualClock
        from tests.conftest import app_client, make_tenant
        from tests.engagement_support import mid_morning

        replicated_settings = msgspec.structs.replace(settings, engagement_replicas=True)
        replicated = build_runtime(replicated_settings, clock=ManualClock(mid_morning()), keyring=runtime.keyring,
                                   database=runtime.database, search=runtime.search)
        await replicated.start(migrate=False, serve=True)
        try:
            tenant = await make_tenant(runtime)
            async with app_client(create_app(replicated_settings, replicated)) as http:
                site = await http.post("/v1/admin/sites", json={"name": "shop", "allowed_origins": [ORIGIN]}, headers=tenant.headers("admin"))
                imported = await http.post("/v1/rules/import", content=yaml.safe_dump({"rules": RULES}).encode(),
                                           headers={**tenant.headers("marketing"), "content-type": "application/yaml"})
                assert imported.status_code == 200, imported.text
                body = {"site_key": site.json()["site_key"], "visitor_id": "v1", "session_id": "s1", "events": [{"type": "pageview", "url": f"{ORIGIN}/pricing"}]}
                answer = await http.post("/v1/collect", content=json.dumps(body), headers=BROWSER)
                assert answer.status_code == 200, answer.text
            assert replicated.engagement.ownership is None
            assert replicated.engagement.owns(tenant.id)
            assert [i["rule"] for i in answer.json()["invitations"]] == ["pricing"]
        finally:
            await replicated.stop()


if ENGINE == "postgres":
    from tests.servers import Deployment

    async def test_a_holder_stopped_inside_a_statement_loses_its_tenant_all_the_same(runtime, settings):
        """A process stopped while it was sending a pipelined statement (asyncpg's executemany)
        leaves its backend "active", still locking the lease row, and PostgreSQL's
        idle-in-transaction timeout never starts. Once that holder's lease has run out, the next
        owner ends its session and takes the tenant."""
        from datetime import timedelta
        from uuid import uuid4

        import asyncpg
        from piccolo.querystring import QueryString

        from archive import db
        from archive.leases import session_tag
        from proactive.ownership import OPERATION, Ownership, tenant_key
        from tests.conftest import make_tenant

        tenant = await make_tenant(runtime)
        stalled = "elsewhere:4242:stalled"
        now = runtime.clock.now()
        await db.engine().run_querystring(QueryString(
            "INSERT INTO operation_lease (key, tenant, operation, run_id, holder, token, acquired_at, heartbeat_at, expires_at, released_at)"
            " VALUES ({}, {}, {}, {}, {}, 3, {}, {}, {}, NULL)",
            tenant_key(tenant.id), tenant.id, OPERATION, uuid4(), stalled, now - timedelta(minutes=1), now - timedelta(seconds=20),
            now - timedelta(seconds=10),
        ))
        zombie = await asyncpg.connect(settings.effective_database_url)
        ownership = Ownership(runtime.engagement, runtime)
        try:
            transaction = zombie.transaction()
            await transaction.start()
            await zombie.execute("SELECT set_config('application_name', $1, true)", session_tag(stalled))
            await zombie.fetch("SELECT 1 FROM operation_lease WHERE key = $1 FOR SHARE", tenant_key(tenant.id))
            stuck = asyncio.create_task(zombie.execute("SELECT pg_sleep(300)"))  # "active", holding the lock
            await asyncio.sleep(0.2)

            await ownership._take(tenant.id, stalled)

            assert ownership.owns(tenant.id)
            with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError)):
                await asyncio.wait_for(stuck, 30)
            rows = await OperationLease.select(OperationLease.holder, OperationLease.token).where(OperationLease.key == tenant_key(tenant.id))
            assert rows == [{"holder": ownership.me, "token": 4}]
        finally:
            await ownership._release(tenant.id)
            zombie.terminate()

    async def test_a_member_that_stopped_renewing_has_its_open_transactions_ended(runtime, settings):
        """A replica stopped in the middle of a transaction (here: an insert not yet committed)
        blocks whoever writes the same row. Once its member row has been out of date for a lease's
        time, the live replicas end those sessions; its idle sessions and the live members' stay."""
        from datetime import timedelta
        from uuid import uuid4

        import asyncpg
        from piccolo.querystring import QueryString

        from archive import db
        from archive.leases import GLOBAL, session_tag
        from proactive.ownership import MEMBER, Ownership, member_key

        now = runtime.clock.now()
        stalled, live = f"elsewhere:1:{uuid4().hex[:8]}", f"elsewhere:2:{uuid4().hex[:8]}"
        for holder, expires in ((stalled, now - timedelta(seconds=20)), (live, now + timedelta(seconds=5))):
            await db.engine().run_querystring(QueryString(
                "INSERT INTO operation_lease (key, tenant, operation, run_id, holder, token, acquired_at, heartbeat_at, expires_at,"
                " released_at) VALUES ({}, {}, {}, {}, {}, 0, {}, {}, {}, NULL)",
                member_key(holder), GLOBAL, MEMBER, uuid4(), holder, now - timedelta(minutes=1), expires, expires,
            ))
        sessions = {
            name: await asyncpg.connect(settings.effective_database_url, server_settings={"application_name": session_tag(holder)})
            for name, holder in (("stalled in a transaction", stalled), ("stalled, idle", stalled), ("live in a transaction", live))
        }
        try:
            for name in ("stalled in a transaction", "live in a transaction"):
                await sessions[name].execute("BEGIN")
                await sessions[name].execute("SELECT 1 FROM operation_lease WHERE key = $1 FOR UPDATE", member_key(live if "live" in name else stalled))
            rows = await OperationLease.select().where(OperationLease.key.is_in([member_key(stalled), member_key(live)]))

            ended = await Ownership(runtime.engagement, runtime).end_stalled_members(rows, now)

            assert ended == 1
            assert sessions["stalled in a transaction"].is_closed() or not await _answers(sessions["stalled in a transaction"])
            assert await _answers(sessions["stalled, idle"]) and await _answers(sessions["live in a transaction"])
        finally:
            for session in sessions.values():
                session.terminate()
            await OperationLease.delete().where(OperationLease.key.is_in([member_key(stalled), member_key(live)]))

    async def _answers(session: Any) -> bool:
        try:
            return bool(await session.fetchval("SELECT 1"))
        except Exception:
            return False

    class Cluster:
        """Three ``parley serve`` processes on one database; a browser stand-in per visitor."""

        def __init__(self, base: Path) -> None:
            self.first = Deployment(base, scheduler=False)
            self.first.env["PARLEY_ENGAGEMENT_REPLICAS"] = "true"
            self.replicas: list[Deployment] = [self.first]
            self.keys: dict[str, dict[str, str]] = {}

        async def start(self, count: int, tenants: list[str]) -> None:
            """The database, then the processes and the tenants at once."""
            await self.first.create()
            for i in range(1, count):
                other = Deployment(self.first.data_dir, scheduler=False)
                other.env = {**self.first.env, "PARLEY_PORT": str(other.port)}
                other.log = self.first.data_dir / f"server-{i}.log"
                self.replicas.append(other)
            await asyncio.gather(self.create_tenants(tenants), *(r.start() for r in self.replicas))

        async def stop(self) -> None:
            for replica in self.replicas:
                replica.kill()
            await self.first.drop()

        def alive(self) -> list[Deployment]:
            return [r for r in self.replicas if r.process is not None]

        async def holder(self, tenant_id: str) -> Deployment | None:
            """The live replica holding the tenant's lease (its pid's process group)."""
            rows = await self.first.sql(
                "SELECT holder FROM operation_lease WHERE key = $1 AND released_at IS NULL AND expires_at > now()", f"{tenant_id}/engagement",
            )
            if not rows:
                return None
            pid = int(rows[0][0].split(":")[1])
            try:
                group = os.getpgid(pid)
            except ProcessLookupError:
                return None
            return next((r for r in self.alive() if r.process is not None and r.process.pid == group), None)

        async def sessions(self) -> str:
            """What the database's sessions are doing and which locks they wait for (a failure's evidence)."""
            rows = await self.first.sql(
                "SELECT a.pid, a.application_name, a.state, a.wait_event_type, a.wait_event, pg_blocking_pids(a.pid),"
                " now() - a.xact_start, left(a.query, 160) FROM pg_stat_activity a WHERE a.datname = current_database()"
                " AND a.pid <> pg_backend_pid() ORDER BY a.pid"
            )
            return "\n".join(" | ".join(str(c) for c in row) for row in rows)

        async def create_tenants(self, slugs: list[str]) -> None:
            """Tenants with one key per role, in one CLI process (start-up is slow on a loaded machine)."""
            roles = ("admin", "ingest", "marketing")
            commands = [c for slug in slugs for c in (["tenants", "create", slug], *(["keys", "create", "--tenant", slug, "--role", r] for r in roles))]
            answers = iter(await self.first.cli_many(*commands))
            for slug in slugs:
                next(answers)
                self.keys[slug] = {role: next(answers)["key"] for role in roles}

        async def shop(self, slug: str) -> Shop:
            keys = self.keys[slug]
            async with httpx.AsyncClient(base_url=self.first.url, timeout=30) as http:
                site = await http.post("/v1/admin/sites", json={"name": "shop", "allowed_origins": [ORIGIN]}, headers=_auth(keys["admin"]))
                assert site.status_code == 201, site.text
                imported = await http.post("/v1/rules/import", content=yaml.safe_dump({"rules": RULES}).encode(),
                                           headers={**_auth(keys["marketing"]), "content-type": "application/yaml"})
                assert imported.status_code == 200, imported.text
                capacity = await http.put("/v1/agents/capacity", headers=_auth(keys["ingest"]),
                                          json={"groups": {"sales": {"online_agents": SLOTS, "max_chats_per_agent": 1, "active_chats": 0}}})
                assert capacity.status_code == 200, capacity.text
            tenant_id = str((await self.first.sql("SELECT id FROM tenant WHERE slug = $1", slug))[0][0])
            shop = Shop(self, tenant_id, site.json()["site_key"], keys)
            await eventually(lambda: self.holder(tenant_id), f"a replica takes tenant {slug}")
            return shop

    def _auth(key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"}

    class Shop:
        def __init__(self, cluster: Cluster, tenant_id: str, site_key: str, keys: dict[str, str]) -> None:
            self.cluster = cluster
            self.tenant_id = tenant_id
            self.site_key = site_key
            self.keys = keys
            self.acknowledged: dict[tuple[str, str], int] = {}  # (session id, batch id) answered 2xx → its events
            self.invited: dict[str, list[str]] = {}  # visitor → invitation ids received
            self._sent = 0

        async def send(self, http: httpx.AsyncClient, visitor: str, events: list[dict[str, Any]],
                       replicas: list[Deployment]) -> list[dict[str, Any]]:
            """One batch, as the snippet sends it: on failure the same batch (same id) goes again,
            to the next replica, until one answers 2xx."""
            self._sent += 1
            batch_id = f"b{self._sent}"
            body = json.dumps({"site_key": self.site_key, "visitor_id": visitor, "session_id": f"s-{visitor}", "batch_id": batch_id,
                               "events": events})
            deadline = time.monotonic() + PATIENCE
            attempt = self._sent
            while True:
                live = [r for r in replicas if r.process is not None] or self.cluster.alive()
                replica = live[attempt % len(live)]
                attempt += 1
                try:
                    answer = await http.post(f"{replica.url}/v1/collect", content=body, headers=BROWSER)
                except httpx.TransportError:
                    answer = None
                if answer is not None and answer.status_code == 200:
                    break
                assert answer is None or answer.status_code >= 500, answer.text
                assert time.monotonic() < deadline, f"no replica accepted batch {batch_id} of {visitor}"
            self.acknowledged[(f"s-{visitor}", batch_id)] = len(events)
            received = answer.json()["invitations"]
            self.invited.setdefault(visitor, []).extend(i["id"] for i in received)
            return list(received)

        def others(self, owner: Deployment) -> list[Deployment]:
            return [r for r in self.cluster.alive() if r is not owner]

    @pytest.fixture(scope="module")
    async def cluster(tmp_path_factory) -> AsyncIterator[Cluster]:
        started = Cluster(tmp_path_factory.mktemp("replicas"))
        try:
            await started.start(3, TENANTS)
            yield started
        finally:
            await started.stop()

    async def test_any_replica_accepts_events_and_the_owner_decides(cluster):
        shop = await cluster.shop("replicas-intake")
        owner = await cluster.holder(shop.tenant_id)
        assert owner is not None
        elsewhere = shop.others(owner)
        async with httpx.AsyncClient(timeout=30) as http:
            await shop.send(http, "v1", [{"type": "pageview", "url": f"{ORIGIN}/pricing"}], elsewhere)

            async def invited() -> list[dict[str, Any]]:
                return await shop.send(http, "v1", [{"type": "heartbeat"}], elsewhere)

            received = await eventually(invited, "the invitation reaches a replica that does not own the site")
        assert [i["rule"] for i in received] == ["pricing"]

        async def applied() -> bool:
            rows = await cluster.first.sql(
                "SELECT (SELECT count(*) FROM behaviour_event WHERE session_id = 's-v1'),"
                " (SELECT count(*) FROM engagement_handoff h JOIN tenant t ON t.id = h.tenant WHERE t.slug = 'replicas-intake')"
            )
            return rows[0][0] > 0 and rows[0][1] == 0

        await eventually(applied, "the owner applies every handed-off event")

    async def test_an_invitation_reaches_the_stream_on_whichever_replica_holds_it(cluster):
        shop = await cluster.shop("replicas-stream")
        owner = await cluster.holder(shop.tenant_id)
        assert owner is not None
        streaming, sending = shop.others(owner)[0], shop.others(owner)[-1]
        params = {"site_key": shop.site_key, "visitor_id": "v-stream"}
        async with httpx.AsyncClient(timeout=httpx.Timeout(30, read=PATIENCE)) as http:
            async with http.stream("GET", f"{streaming.url}/v1/invitations/stream", params=params, headers={"origin": ORIGIN}) as stream:
                assert stream.status_code == 200
                await shop.send(http, "v-stream", [{"type": "pageview", "url": f"{ORIGIN}/pricing"}], [sending])

                async def first_invitation() -> dict[str, Any]:
                    async for line in stream.aiter_lines():
                        if line.startswith("data:"):
                            found: dict[str, Any] = json.loads(line[5:])
                            return found
                    raise AssertionError("the stream ended")

                invitation = await asyncio.wait_for(first_invitation(), PATIENCE)
            assert invitation["rule"] == "pricing"
            # Taken by the stream: the next collect, on any replica, does not carry it again...
            assert await shop.send(http, "v-stream", [{"type": "heartbeat"}], [owner]) == []

            # ...unless the browser never says it was shown (the stream above is gone: the connection
            # may have dropped as the invitation went out). Then a collect carries it again.
            async def offered_again() -> list[dict[str, Any]]:
                return await shop.send(http, "v-stream", [{"type": "heartbeat"}], [sending])

            again = await eventually(offered_again, "an invitation the stream took but nobody showed is offered again")
            assert [i["id"] for i in again] == [invitation["id"]]
            await shop.send(http, "v-stream", [{"type": "invitation_shown", "props": {"invitation_id": invitation["id"]}}], [owner])

            async def shown() -> bool:
                rows = await cluster.first.sql("SELECT status FROM engagement_invitation WHERE id = $1", invitation["id"])
                return rows == [("shown",)]

            await eventually(shown, "the owner records it shown")
            assert await shop.send(http, "v-stream", [{"type": "heartbeat"}], [sending]) == []

    async def test_a_capacity_report_to_any_replica_reaches_the_owner(cluster):
        shop = await cluster.shop("replicas-capacity")
        owner = await cluster.holder(shop.tenant_id)
        assert owner is not None
        report = {"groups": {"sales": {"online_agents": 7, "max_chats_per_agent": 2, "active_chats": 5}}}
        async with httpx.AsyncClient(timeout=30) as http:
            answer = await http.put(f"{shop.others(owner)[0].url}/v1/agents/capacity", json=report, headers=_auth(shop.keys["ingest"]))
            assert answer.status_code == 200, answer.text
            assert answer.json()["sales"]["free_slots"] == 9

            async def owner_knows() -> bool:
                seen = (await http.get(f"{owner.url}/v1/agents/capacity", headers=_auth(shop.keys["ingest"]))).json()
                return seen["sales"]["online_agents"] == 7 and seen["sales"]["free_slots"] == 9

            await eventually(owner_knows, "the owner applies the report sent to another replica")

    async def test_an_older_capacity_report_to_another_replica_does_not_overwrite_the_owners_newer_one(cluster):
        """The stored report is compared where it is written: a late delivery of an older report
        to a process that does not own the tenant is acknowledged, not applied, and the owner
        keeps the newer state."""
        from datetime import datetime, timedelta, timezone

        shop = await cluster.shop("replicas-as-of")
        owner = await cluster.holder(shop.tenant_id)
        assert owner is not None
        headers = _auth(shop.keys["ingest"])
        now = datetime.now(timezone.utc)

        def report(active: int, seconds_ago: float) -> dict[str, Any]:
            return {"as_of": (now - timedelta(seconds=seconds_ago)).isoformat(),
                    "groups": {"stale": {"online_agents": 3, "max_chats_per_agent": 1, "active_chats": active}}}

        async with httpx.AsyncClient(timeout=30) as http:
            newer = await http.put(f"{owner.url}/v1/agents/capacity", json=report(3, 1), headers=headers)
            assert newer.status_code == 200 and newer.json()["stale"]["applied"] is True, newer.text
            late = await http.put(f"{shop.others(owner)[0].url}/v1/agents/capacity", json=report(0, 5), headers=headers)
            assert late.status_code == 200, late.text
            assert late.json()["stale"]["applied"] is False and late.json()["stale"]["active_chats"] == 3
            for replica in (owner, shop.others(owner)[0]):
                seen = (await http.get(f"{replica.url}/v1/agents/capacity", headers=headers)).json()
                assert seen["stale"]["active_chats"] == 3 and seen["stale"]["free_slots"] == 0

    async def test_visitors_waiting_for_a_slot_are_counted_by_any_replica(cluster):
        """A supervisor's capacity view does not depend on which replica answers: the owner writes
        how many visitors wait for each group, and a process that does not own the tenant shows it."""
        shop = await cluster.shop("replicas-waiting")
        owner = await cluster.holder(shop.tenant_id)
        assert owner is not None
        elsewhere = shop.others(owner)[0]
        headers = _auth(shop.keys["ingest"])

        def report(active: int) -> dict[str, Any]:
            return {"groups": {"sales": {"online_agents": 1, "max_chats_per_agent": 1, "active_chats": active}}}

        async with httpx.AsyncClient(timeout=30) as http:

            async def seen_by(replica: Deployment, field: str, value: int) -> bool:
                answer = (await http.get(f"{replica.url}/v1/agents/capacity", headers=headers)).json()
                return bool(answer["sales"][field] == value)

            assert (await http.put(f"{owner.url}/v1/agents/capacity", json=report(1), headers=headers)).status_code == 200
            await eventually(lambda: seen_by(owner, "free_slots", 0), "the owner knows every slot is taken")
            for visitor in ("w1", "w2"):
                assert await shop.send(http, visitor, [{"type": "pageview", "url": f"{ORIGIN}/pricing"}], [elsewhere]) == []
            await eventually(lambda: seen_by(owner, "waiting", 2), "the owner queues both visitors")
            await eventually(lambda: seen_by(elsewhere, "waiting", 2), "another replica shows both waiting")

            assert (await http.put(f"{elsewhere.url}/v1/agents/capacity", json=report(0), headers=headers)).status_code == 200
            await eventually(lambda: seen_by(elsewhere, "waiting", 1), "a slot freed: one is invited, another replica shows one waiting")

    async def _busy_site_survives(cluster: Cluster, slug: str, disrupt: Callable[[Deployment], Awaitable[None]],
                                  recover: Callable[[Deployment], Awaitable[None]]) -> None:
        """Twelve visitors qualify for a rule with three agent slots, each sending to any replica;
        an invited visitor dismisses its invitation, and its slot goes to the next one waiting.
        Once the first are invited the owner is disrupted (``disrupt``); once another replica has
        taken the site over, ``recover`` runs. In the end every visitor was invited exactly once,
        never more invitations were open than slots, and every acknowledged event is stored once."""
        visitors = [f"busy-{i}" for i in range(12)]
        shop = await cluster.shop(slug)
        owner = await cluster.holder(shop.tenant_id)
        assert owner is not None
        replicas = cluster.alive()
        handled: set[str] = set()
        # A replica that does not answer within a few seconds is given up on: the batch goes to the next.
        async with httpx.AsyncClient(timeout=3) as http:

            async def round_of_traffic() -> None:
                """Every visitor is heard from; one that holds an invitation shows and dismisses it."""
                async def one(visitor: str) -> None:
                    fresh = [i for i in shop.invited.get(visitor, []) if i not in handled]
                    if fresh:
                        handled.update(fresh)
                        await shop.send(http, visitor, [{"type": "invitation_shown", "props": {"invitation_id": fresh[0]}},
                                                        {"type": "invitation_dismissed", "props": {"invitation_id": fresh[0]}}], replicas)
                    else:
                        await shop.send(http, visitor, [{"type": "heartbeat"}], replicas)

                await asyncio.gather(*(one(v) for v in visitors))

            await asyncio.gather(*(shop.send(http, v, [{"type": "pageview", "url": f"{ORIGIN}/pricing"}], replicas) for v in visitors))

            async def some_invited() -> bool:
                await round_of_traffic()
                return len({v for v, got in shop.invited.items() if got}) >= SLOTS

            await eventually(some_invited, "the first visitors are invited")
            await disrupt(owner)

            async def taken_over() -> Deployment | None:
                await round_of_traffic()
                successor = await cluster.holder(shop.tenant_id)
                return successor if successor is not owner else None

            try:
                await eventually(taken_over, "another replica takes the busy site over")
            except AssertionError as failed:
                raise AssertionError(f"{failed}\n{await cluster.sessions()}") from None
            finally:
                await recover(owner)

            async def everyone_invited() -> bool:
                await round_of_traffic()
                return all(shop.invited.get(v) for v in visitors)

            await eventually(everyone_invited, "every qualifying visitor is invited")
            await round_of_traffic()  # the last invitations are dismissed too

        async def handed_off() -> bool:
            waiting = await cluster.first.sql("SELECT count(*) FROM engagement_handoff")
            return waiting == [(0,)]

        await eventually(handed_off, "the owner applies every handed-off event")
        # Exactly once: one invitation per visitor, in the answers and in the store.
        assert {v: len(set(got)) for v, got in shop.invited.items()} == dict.fromkeys(visitors, 1)
        sent = await cluster.first.sql(
            "SELECT i.id, i.sent_at, i.closed_at FROM engagement_invitation i JOIN tenant t ON t.id = i.tenant WHERE t.slug = $1", slug,
        )
        assert len(sent) == len(visitors)
        # The cap: at no moment were more invitations open than the agents had slots.
        for _, at, _ in sent:
            open_then = [i for i, s, c in sent if s <= at and (c is None or c > at)]
            assert len(open_then) <= SLOTS, (at, open_then)
        # No acknowledged event lost, none stored twice.
        stored = await cluster.first.sql(
            "SELECT e.session_id, e.batch_id, count(*) FROM behaviour_event e JOIN tenant t ON t.id = e.tenant"
            " WHERE t.slug = $1 GROUP BY e.session_id, e.batch_id", slug,
        )
        batches = {(session, batch): n for session, batch, n in stored}
        assert {batch: batches.get(batch) for batch in shop.acknowledged} == shop.acknowledged

    async def test_an_owner_that_hangs_is_fenced_and_decides_nothing_after_its_lease(cluster):
        """SIGSTOP: the process is alive but silent (as an owner on another host that stalls). Its
        lease runs out, another replica takes over; resumed, it writes no decision of its own."""

        async def pause(owner: Deployment) -> None:
            assert owner.process is not None
            os.killpg(owner.process.pid, signal.SIGSTOP)

        async def resume(owner: Deployment) -> None:
            assert owner.process is not None
            os.killpg(owner.process.pid, signal.SIGCONT)

        await _busy_site_survives(cluster, "replicas-hang", pause, resume)

    async def test_kill_9_of_the_owner_of_a_busy_site_invites_every_qualifying_visitor_once(cluster):
        async def kill(owner: Deployment) -> None:
            owner.kill()

        async def nothing(owner: Deployment) -> None:
            return None

        await _busy_site_survives(cluster, "replicas-busy", kill, nothing)
