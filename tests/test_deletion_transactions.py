"""Deletion decides inside its transaction: holds placed mid-sweep protect, racing deleters write
one receipt per conversation, one sweep or erasure per tenant at a time (a lease with fencing)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from api.composition import build_runtime
from archive import leases
from archive.clock import ManualClock
from archive.tables import Conversation, ConversationKey, LedgerEntry, OperationLease
from retention import deletion, sweep
from retention.deletion import Protection
from tests.factories import conversation

OLD = "2025-06-01"


def _old(external_id: str, **overrides: Any) -> dict[str, Any]:
    body = conversation(external_id, started_at=f"{OLD}T10:00:00Z", ended_at=f"{OLD}T10:30:00Z", **overrides)
    for i, message in enumerate(body["messages"]):
        message["at"] = f"{OLD}T10:{i + 1:02d}:00Z"
    return body


async def _expired_archive(client, tenant, n: int, **overrides: Any) -> dict[str, str]:
    response = await client.put("/v1/retention/policies", json={"default": {"days": 1}}, headers=tenant.headers("admin"))
    assert response.status_code == 200, response.text
    bodies = [_old(f"c{i:02d}", **overrides) for i in range(n)]
    created = await client.post("/v1/transcripts", json={"conversations": bodies}, headers=tenant.headers("ingest"))
    assert created.status_code == 201, created.text
    return {r["external_id"]: r["id"] for r in created.json()["results"]}


async def _receipts(tenant, action: str = "retention.delete") -> list[str]:
    rows = await LedgerEntry.select(LedgerEntry.subject).where((LedgerEntry.tenant == tenant.id) & (LedgerEntry.action == action))
    return [r["subject"] for r in rows]


async def _remaining(tenant) -> set[str]:
    return {str(r["id"]) for r in await Conversation.select(Conversation.id).where(Conversation.tenant == tenant.id)}


async def test_a_hold_placed_while_a_sweep_runs_protects_everything_it_covers(client, tenant, runtime):
    ids = await _expired_archive(client, tenant, 8, visitor={"id": "v-litigant"})
    placed: list[int] = []

    async def place_hold_after_first_batch(report: sweep.SweepReport) -> None:
        if not placed:
            response = await client.post(
                "/v1/holds", json={"name": "late-hold", "reason": "subpoena", "criteria": {"visitor_ids": ["v-litigant"]}},
                headers=tenant.headers("compliance"),
            )
            assert response.status_code == 201, response.text
            placed.append(report.deleted)

    report = await sweep.sweep_tenant(runtime, tenant.id, batch=3, after_batch=place_hold_after_first_batch)
    assert placed == [3]  # the first batch was gone before the hold existed
    assert report.deleted == 3 and report.held == 5 and report.protected_by_hold == {"late-hold": 5}
    remaining = await _remaining(tenant)
    assert len(remaining) == 5 and remaining <= set(ids.values())
    assert set(await _receipts(tenant)) == set(ids.values()) - remaining


async def test_a_policy_changed_mid_sweep_is_not_applied_with_stale_dates(client, tenant, runtime):
    await _expired_archive(client, tenant, 6)

    async def lengthen_retention(report: sweep.SweepReport) -> None:
        if report.deleted == 2:
            response = await client.put("/v1/retention/policies", json={"default": {"years": 50}}, headers=tenant.headers("admin"))
            assert response.status_code == 200

    report = await sweep.sweep_tenant(runtime, tenant.id, batch=2, after_batch=lengthen_retention)
    assert report.deleted == 2 and len(await _remaining(tenant)) == 4


async def test_racing_deleters_write_one_receipt_per_deleted_conversation(client, tenant, runtime):
    ids = [uuid.UUID(i) for i in (await _expired_archive(client, tenant, 6)).values()]
    now = runtime.clock.now()

    async def delete() -> deletion.BatchOutcome:
        return await deletion.delete_batch(runtime, tenant.id, ids, actor="test", action="retention.delete", now=now,
                                           details=lambda r: {})

    first, second = await asyncio.gather(delete(), delete())
    assert len(first.deleted) + len(second.deleted) == 6
    assert sorted(await _receipts(tenant)) == sorted(str(i) for i in ids)
    assert await ConversationKey.count().where(ConversationKey.tenant == tenant.id) == 0


async def test_two_sweep_requests_at_once_delete_each_conversation_once(client, tenant):
    ids = await _expired_archive(client, tenant, 6)
    answers = await asyncio.gather(*[client.post("/v1/retention/sweep", headers=tenant.headers("admin")) for _ in range(2)])
    statuses = sorted(a.status_code for a in answers)
    assert statuses in ([200, 200], [200, 409]), [a.text for a in answers]
    assert sum(a.json().get("deleted", 0) for a in answers if a.status_code == 200) == 6
    assert sorted(await _receipts(tenant)) == sorted(ids.values())


async def test_a_second_sweep_is_refused_with_the_running_sweeps_id(client, tenant, runtime):
    await _expired_archive(client, tenant, 2)
    lease = await leases.acquire(runtime, tenant.id, sweep.OPERATION)
    try:
        refused = await client.post("/v1/retention/sweep", headers=tenant.headers("admin"))
        assert refused.status_code == 409
        body = refused.json()
        assert body["type"] == "/problems/conflict" and body["running_id"] == str(lease.run_id)
        assert refused.headers["content-type"].startswith("application/problem+json")
    finally:
        await leases.release(lease, runtime.clock.now())
    assert (await client.post("/v1/retention/sweep", headers=tenant.headers("admin"))).json()["deleted"] == 2


async def test_a_second_erasure_is_refused_while_one_runs(client, tenant, runtime):
    await _expired_archive(client, tenant, 1, visitor={"id": "v-1"})
    lease = await leases.acquire(runtime, tenant.id, "erasure")
    try:
        refused = await client.post("/v1/erasure", json={"visitor_id": "v-1"}, headers=tenant.headers("compliance"))
        assert refused.status_code == 409 and refused.json()["running_id"] == str(lease.run_id)
    finally:
        await leases.release(lease, runtime.clock.now())
    erased = await client.post("/v1/erasure", json={"visitor_id": "v-1"}, headers=tenant.headers("compliance"))
    assert erased.status_code == 200 and len(erased.json()["deleted"]) == 1


async def _foreign_lease(tenant_id: uuid.UUID, operation: str, holder: str, expires_at: datetime) -> uuid.UUID:
    """A lease row as another process would leave it."""
    run_id = uuid.uuid4()
    now = datetime.now(timezone.utc)
    await OperationLease.insert(OperationLease(
        key=leases.lease_key(tenant_id, operation), tenant=tenant_id, operation=operation, run_id=run_id, holder=holder,
        token=7, acquired_at=now - timedelta(minutes=5), heartbeat_at=now - timedelta(minutes=2), expires_at=expires_at,
        released_at=None,
    ))
    return run_id


async def test_a_live_lease_of_another_host_blocks_and_an_expired_one_is_taken_over(client, tenant, runtime):
    await _foreign_lease(tenant.id, sweep.OPERATION, "elsewhere:4242:abcd", runtime.clock.now() + timedelta(seconds=30))
    assert (await client.post("/v1/retention/sweep", headers=tenant.headers("admin"))).status_code == 409
    later = build_runtime(runtime.settings, clock=ManualClock(runtime.clock.now() + timedelta(seconds=31)),
                          keyring=runtime.keyring, database=runtime.database, search=runtime.search)
    lease = await leases.acquire(later, tenant.id, sweep.OPERATION)
    assert lease.token == 8 and lease.taken_over_from == "elsewhere:4242:abcd"
    await leases.release(lease, later.clock.now())


def _dead_pid() -> int:
    """The pid of a process that has exited."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    pid = int(dead.stdout)
    assert not os.path.exists(f"/proc/{pid}"), "the pid was reused at once"
    return pid


async def test_a_holder_that_died_on_this_host_is_taken_over_at_once(client, tenant, runtime):
    pid = await asyncio.to_thread(_dead_pid)
    await _foreign_lease(tenant.id, sweep.OPERATION, f"{socket.gethostname()}:{pid}:dead", runtime.clock.now() + timedelta(seconds=60))
    report = await client.post("/v1/retention/sweep", headers=tenant.headers("admin"))
    assert report.status_code == 200, report.text


def _zombie() -> subprocess.Popen[bytes]:
    """A child that has exited and that nobody has reaped yet: what a kill -9 leaves behind when
    the init of a container does not reap orphans."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 30
    while _state(child.pid) != "Z":
        assert time.monotonic() < deadline, "the child did not exit"
        time.sleep(0.01)
    return child


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rpartition(")")[2].split()[0]


async def test_a_holder_left_a_zombie_by_kill_9_is_taken_over_at_once(client, tenant, runtime):
    child = await asyncio.to_thread(_zombie)
    try:
        os.kill(child.pid, 0)  # what the kernel says of a zombie: it exists
        await _foreign_lease(tenant.id, sweep.OPERATION, f"{socket.gethostname()}:{child.pid}:dead",
                             runtime.clock.now() + timedelta(seconds=60))
        report = await client.post("/v1/retention/sweep", headers=tenant.headers("admin"))
        assert report.status_code == 200, report.text
    finally:
        child.wait()


def test_a_pid_reused_by_another_process_does_not_keep_a_dead_holder_alive():
    with subprocess.Popen(["sleep", "60"]) as other:
        try:
            started = _stat_start(other.pid)
            host = socket.gethostname()
            assert not leases.holder_is_dead(f"{host}:{other.pid}:tag:{started}")  # the very process: alive
            assert leases.holder_is_dead(f"{host}:{other.pid}:tag:{int(started) - 1}")  # an earlier one with its pid
            assert not leases.holder_is_dead(f"{host}:{other.pid}:tag")  # no start time recorded: alive
            assert not leases.holder_is_dead(f"elsewhere:{other.pid}:tag:0")  # another host: only its expiry counts
        finally:
            other.kill()
    me = leases.holder_id()
    assert me.split(":")[3] == _stat_start(os.getpid()) and not leases.holder_is_dead(me)


def _stat_start(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rpartition(")")[2].split()[19]


async def test_a_holder_whose_lease_was_taken_over_cannot_delete_another_batch(client, tenant, runtime):
    ids = [uuid.UUID(i) for i in (await _expired_archive(client, tenant, 2)).values()]
    stale = await leases.acquire(runtime, tenant.id, sweep.OPERATION, ttl=5)
    later = build_runtime(runtime.settings, clock=ManualClock(runtime.clock.now() + timedelta(seconds=6)),
                          keyring=runtime.keyring, database=runtime.database, search=runtime.search)
    successor = await leases.acquire(later, tenant.id, sweep.OPERATION)
    with pytest.raises(leases.LeaseLost):
        await deletion.delete_batch(runtime, tenant.id, ids, actor="test", action="retention.delete", now=runtime.clock.now(),
                                    details=lambda r: {}, lease=stale)
    assert len(await _remaining(tenant)) == 2 and await _receipts(tenant) == []
    await leases.release(successor, later.clock.now())


async def test_the_compliance_floor_protects_even_a_conversation_whose_dates_say_otherwise(client, tenant, runtime):
    ids = await _expired_archive(client, tenant, 2)
    response = await client.put("/v1/retention/policies", json={"default": {"days": 1}, "floor": {"years": 5, "mode": "compliance"}},
                                headers=tenant.headers("admin"))
    assert response.status_code == 200
    from retention import policies

    await policies.recompute(tenant.id)
    # A stale or tampered retain_until must not get past the floor: the guard re-reads the policy.
    await Conversation.update({Conversation.retain_until: datetime(2025, 6, 2, tzinfo=timezone.utc)}).where(Conversation.tenant == tenant.id)
    report = await sweep.sweep_tenant(runtime, tenant.id)
    assert report.deleted == 0 and report.protected_by == {"compliance_floor": 2}
    assert await _remaining(tenant) == set(ids.values())


class _KeepOne:
    """A guard from another package (supervision will add one like it)."""

    def __init__(self, keep: uuid.UUID) -> None:
        self.keep = keep

    async def protect(self, rt, tenant_id, rows, now) -> dict[uuid.UUID, Protection]:
        return {r["id"]: Protection("open_review", "case 17", "an open review item") for r in rows if r["id"] == self.keep}


async def test_every_deletion_guard_the_runtime_lists_is_asked_by_sweeps_and_erasure(client, tenant, runtime):
    ids = await _expired_archive(client, tenant, 3, visitor={"id": "v-9"})
    keep = uuid.UUID(ids["c01"])
    runtime.deletion_guards.append(_KeepOne(keep))
    try:
        report = await sweep.sweep_tenant(runtime, tenant.id, dry_run=True)
        assert report.held == 1 and report.protected_by == {"open_review": 1}
        receipt = await client.post("/v1/erasure", json={"visitor_id": "v-9"}, headers=tenant.headers("compliance"))
    finally:
        runtime.deletion_guards.pop()
    body = receipt.json()
    assert [r["id"] for r in body["restricted"]] == [str(keep)] and body["restricted"][0]["reason"] == "an open review item"
    assert len(body["deleted"]) == 2
    row = await Conversation.select(Conversation.restricted).where(Conversation.id == keep).first()
    assert row["restricted"] == "an open review item"


class _Pause:
    """A guard that holds the deletion transaction open until told to go on."""

    def __init__(self) -> None:
        self.inside, self.go_on = asyncio.Event(), asyncio.Event()

    async def protect(self, rt, tenant_id, rows, now) -> dict[uuid.UUID, Protection]:
        self.inside.set()
        await self.go_on.wait()
        return {}


async def test_creating_a_hold_waits_for_the_deletion_batch_under_way(client, tenant, runtime):
    await _expired_archive(client, tenant, 2, visitor={"id": "v-5"})
    pause = _Pause()
    runtime.deletion_guards.append(pause)
    try:
        sweeping = asyncio.create_task(sweep.sweep_tenant(runtime, tenant.id))
        await pause.inside.wait()
        holding = asyncio.create_task(client.post(
            "/v1/holds", json={"name": "too-late", "reason": "r", "criteria": {"visitor_ids": ["v-5"]}}, headers=tenant.headers("compliance"),
        ))
        done, _ = await asyncio.wait([holding], timeout=0.5)
        assert not done, "a hold was created while a deletion batch was deciding"
        pause.go_on.set()
        report, created = await sweeping, await holding
    finally:
        runtime.deletion_guards.remove(pause)
    assert report.deleted == 2 and created.status_code == 201
    hold_seq = (await LedgerEntry.select(LedgerEntry.seq).where(
        (LedgerEntry.tenant == tenant.id) & (LedgerEntry.action == "hold.create")).first())["seq"]
    receipt_seqs = [r["seq"] for r in await LedgerEntry.select(LedgerEntry.seq).where(
        (LedgerEntry.tenant == tenant.id) & (LedgerEntry.action == "retention.delete"))]
    assert max(receipt_seqs) < hold_seq


async def test_a_sweep_whose_index_update_fails_still_answers_what_it_deleted(client, tenant, runtime, monkeypatch):
    from archive.search import indexing
    from archive.tables import IndexOutbox

    await _expired_archive(client, tenant, 2)
    await indexing.drain_all(runtime)

    async def index_down(rt: Any, refresh: bool = True) -> Any:
        raise OSError("the index is not reachable")

    monkeypatch.setattr(indexing, "drain_all", index_down)
    report = await client.post("/v1/retention/sweep", headers=tenant.headers("admin"))
    assert report.status_code == 200, report.text
    assert report.json()["deleted"] == 2 and await _remaining(tenant) == set()
    # The index learns of the deletions from the outbox, which the drain job empties later.
    pending = await IndexOutbox.select(IndexOutbox.op).where(IndexOutbox.tenant == tenant.id)
    assert [p["op"] for p in pending] == ["delete", "delete"]
