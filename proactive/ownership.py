"""Which engine process decides for which sites, when several share one PostgreSQL database
(``PARLEY_ENGAGEMENT_REPLICAS=true``; docs/replicas.md).

The unit of ownership is the tenant: all of a tenant's sites are decided by one process, because
agent capacity (the slots an invitation takes) belongs to the tenant's groups, which all its
sites share. One process deciding a tenant is what keeps a cap from being exceeded, without a
database round trip on every decision.

* **Leases.** Ownership is a row of ``operation_lease`` (archive.leases), key
  ``<tenant>/engagement``, with a fencing token that grows on every take-over. Each process also
  keeps a member row (``engine-member``) alive, so all of them see who is up.
* **Heartbeat.** Every ``BEAT_SECONDS`` a process renews its rows (``LEASE_SECONDS`` to live) and
  decides again which tenants it should own: rendezvous hashing over the live members, so a
  process joining or leaving moves only its share. A process releases a tenant another live member
  should own (after writing what it decided), and takes a tenant it should own once the holder
  released it, died (a dead pid on this host is known at once) or let the lease expire.
* **Fencing.** Every journal commit checks, inside its transaction and under a share lock of the
  lease rows, that this process still holds the tenants it writes for. A take-over locks the row
  for update, so it waits for a commit under way, and no commit of the old owner follows it. A
  process that finds a lease gone drops the tenant from memory at once. A holder stopped in the
  middle of sending a statement keeps its backend "active", where no PostgreSQL timeout ends it,
  with its locks. So every process's sessions carry its ``leases.session_tag``, and once a
  member's row has run out, the others end its sessions that sit in a transaction waiting for it
  (and a successor blocked on the lease row ends all of them).
* **Taking over** reads the tenant back from the store as a restart would (visitors, wait queues,
  timers, open invitations, capacity, pacing) and then applies the events other processes stored
  for it meanwhile (proactive.handoff).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

import structlog
from piccolo.querystring import QueryString

from archive import db, leases
from archive.errors import Unavailable
from archive.tables import OperationLease, Site

if TYPE_CHECKING:
    from archive.runtime import Runtime
    from proactive.runtime import Engagement
    from proactive.store import Snapshot

log = structlog.get_logger(__name__)

OPERATION = "engagement"
MEMBER = "engine-member"
LEASE_SECONDS = 6.0  # a holder on another host that stops renewing loses its tenants after this
BEAT_SECONDS = 1.5  # renewal and rebalancing; failover ≤ LEASE_SECONDS + BEAT_SECONDS + read-back
# A process that hangs (paused, swapped out, stopped) inside a transaction must not keep the lease
# rows locked past its lease: PostgreSQL ends such a session after this long, and a beat waits at
# most LOCK_WAIT for a row lock before trying again on the next beat.
HUNG_TRANSACTION = "4s"
LOCK_WAIT = "1s"
# How long after a member stopped renewing the others still look for its sessions.
STALL_MEMORY = timedelta(minutes=10)
# PostgreSQL's "lock_not_available" (a lock_timeout ran out).
LOCK_NOT_AVAILABLE = "55P03"


class EngineMoved(Unavailable):
    title = "Engagement engine moved"


def tenant_key(tenant: UUID) -> str:
    return leases.lease_key(tenant, OPERATION)


def member_key(holder: str) -> str:
    return f"{MEMBER}/{holder}"[:120]


def _score(member: str, tenant: UUID) -> bytes:
    return hashlib.blake2b(f"{member}/{tenant}".encode(), digest_size=8).digest()


def owner_of(tenant: UUID, members: list[str]) -> str:
    """Rendezvous hashing: the member with the highest score for the tenant."""
    return max(members, key=lambda m: _score(m, tenant))


class Ownership:
    def __init__(self, engagement: Engagement, rt: Runtime) -> None:
        self.engagement = engagement
        self.rt = rt
        self.me = leases.holder_id()
        self.held: dict[UUID, int] = {}  # tenant → the fencing token of our lease
        self.taking: dict[UUID, int] = {}  # leases taken, tenants still being read back (not decided yet)
        self.sites: dict[UUID, set[Any]] = {}  # tenant → its sites (as of the last beat)
        self.members: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self._beating = asyncio.Lock()

    def owns(self, tenant: Any) -> bool:
        return tenant in self.held

    # --- life cycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """One beat before serving (a lone process owns everything from its first request), then
        one every ``BEAT_SECONDS``."""
        await self.beat()
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        """Hand everything over now rather than after the lease runs out."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        async with self._beating:
            for tenant in list(self.held):
                await self._release(tenant)
            await OperationLease.update({OperationLease.released_at: self.rt.clock.now()}).where(OperationLease.key == member_key(self.me))

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(BEAT_SECONDS)
            try:
                await self.beat()
            except Exception as exc:  # the database is briefly unavailable: the next beat tries again
                log.warning("engine_beat_failed", error=type(exc).__name__, detail=str(exc)[:200])

    # --- the heartbeat -------------------------------------------------------------------------

    async def beat(self) -> None:
        async with self._beating:
            now = self.rt.clock.now()
            expires = now + timedelta(seconds=LEASE_SECONDS)
            async with db.write_transaction():
                await _bounded()
                await db.engine().run_querystring(QueryString(
                    "INSERT INTO operation_lease (key, tenant, operation, run_id, holder, token, acquired_at, heartbeat_at, expires_at,"
                    " released_at) VALUES ({}, {}, {}, {}, {}, 0, {}, {}, {}, NULL) ON CONFLICT (key) DO UPDATE SET"
                    " heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at, released_at = NULL",
                    member_key(self.me), leases.GLOBAL, MEMBER, uuid4(), self.me, now, now, expires,
                ))
                # Members gone for an hour are forgotten (each process start adds one).
                await OperationLease.delete().where(
                    (OperationLease.operation == MEMBER) & (OperationLease.expires_at < now - timedelta(hours=1))
                )
                if self.held:
                    await OperationLease.update({OperationLease.heartbeat_at: now, OperationLease.expires_at: expires}).where(
                        OperationLease.key.is_in([tenant_key(t) for t in self.held]) & (OperationLease.holder == self.me)
                        & OperationLease.released_at.is_null()
                    )
            rows = await OperationLease.select(
                OperationLease.key, OperationLease.tenant, OperationLease.operation, OperationLease.holder, OperationLease.token,
                OperationLease.expires_at, OperationLease.released_at,
            ).where(OperationLease.operation.is_in([MEMBER, OPERATION]))
            members = sorted({r["holder"] for r in rows if r["operation"] == MEMBER and self._alive(r, now)} | {self.me})
            await self.end_stalled_members(rows, now)
            if members != self.members:
                log.info("engine_members", members=len(members), me=self.me)
            self.members = members
            tenant_rows = {r["tenant"]: r for r in rows if r["operation"] == OPERATION}
            for tenant, token in list(self.held.items()):  # taken over while we were not looking
                row = tenant_rows.get(tenant)
                if row is None or row["holder"] != self.me or row["token"] != token or row["released_at"] is not None:
                    log.warning("engine_tenant_lost", tenant=str(tenant))
                    self.drop(tenant)
            sites: dict[UUID, set[Any]] = {}
            for site in await Site.select(Site.id, Site.tenant):
                sites.setdefault(site["tenant"], set()).add(site["id"])
            self.sites = sites
            for tenant in sorted(sites, key=str):
                wanted = owner_of(tenant, members) == self.me
                try:
                    if tenant in self.held and not wanted:
                        await self._release(tenant)
                    elif wanted and tenant not in self.held:
                        row = tenant_rows.get(tenant)
                        if row is None or row["released_at"] is not None or not self._alive(row, now):
                            stale = row["holder"] if row is not None and row["released_at"] is None and row["holder"] != self.me else None
                            await self._take(tenant, stale)
                except Exception as exc:  # a lock held elsewhere, a brief outage: this tenant waits for the next beat
                    log.warning("engine_tenant_move_failed", tenant=str(tenant), error=type(exc).__name__)
            for tenant in self.held:  # notifications may have been missed (or the owner before us died)
                self.engagement.events_waiting(tenant)

    async def end_stalled_members(self, rows: list[dict[str, Any]], now: Any) -> int:
        """End the open transactions of members that stopped renewing (a lease's time ago, so
        that a clock a little off does not count as a stall): a process stopped in mid-statement
        holds its locks, and the rows it was writing, for as long as it stays stopped."""
        stalled = [
            r["holder"] for r in rows
            if r["operation"] == MEMBER and r["holder"] != self.me and r["released_at"] is None
            and now - STALL_MEMORY < r["expires_at"] < now - timedelta(seconds=LEASE_SECONDS)
        ]
        if not stalled:
            return 0
        ended = await end_sessions_of(stalled, waiting_on_client=True)
        if ended:
            log.warning("engine_stalled_member_fenced", members=stalled, sessions=ended)
        return ended

    def _alive(self, row: dict[str, Any], now: Any) -> bool:
        if row["holder"] == self.me:
            return row["released_at"] is None
        return row["released_at"] is None and row["expires_at"] > now and not leases.holder_is_dead(row["holder"])

    async def _take(self, tenant: UUID, stale: str | None = None) -> None:
        """Take the tenant's lease (``stale``: the holder whose lease ran out, if any) and read the
        tenant back."""
        try:
            lease = await self._acquire(tenant)
        except leases.LeaseBusy:
            return  # its holder is alive after all (a race with its renewal): the next beat looks again
        except Exception as exc:
            if stale is None or getattr(exc, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                raise
            # The stale holder still locks the lease row from a session PostgreSQL will not end by
            # itself: a process stopped while it was sending a pipelined statement leaves its
            # backend "active", waiting for the rest, and idle_in_transaction_session_timeout
            # never starts. Its lease has run out, so its sessions go, and with them its locks.
            ended = await end_sessions_of([stale], waiting_on_client=False)
            log.warning("engine_stalled_holder_fenced", tenant=str(tenant), previous_holder=stale, sessions=ended)
            if not ended:
                raise
            try:
                lease = await self._acquire(tenant)
            except leases.LeaseBusy:
                return
        # Read back before deciding: until then collects for the tenant are handed off (and applied
        # after), so nothing decided here can be overwritten by what the store said before it.
        self.taking[tenant] = lease.token
        self.drop(tenant)  # nothing of an earlier time as owner (or of a read-only look) stays in memory
        log.info("engine_tenant_taken", tenant=str(tenant), token=lease.token, taken_over_from=lease.taken_over_from)
        try:
            await self.engagement.restore(self.rt, tenant, self.sites.get(tenant, set()))
        except Exception:
            log.exception("engine_tenant_restore_failed", tenant=str(tenant))
            self.taking.pop(tenant, None)
            self.drop(tenant)
            await leases.release(lease, self.rt.clock.now())
            return
        self.held[tenant] = self.taking.pop(tenant)
        self.engagement.resume_tenant(tenant)

    async def _acquire(self, tenant: UUID) -> leases.Lease:
        async with db.write_transaction():  # leases.acquire runs in this one
            await _bounded()
            return await leases.acquire(self.rt, tenant, OPERATION, ttl=LEASE_SECONDS)

    async def _release(self, tenant: UUID) -> None:
        """Hand over: write what was decided, forget the tenant, then let the lease go."""
        token = self.held.get(tenant)
        if token is None:
            return
        with contextlib.suppress(Exception):  # what could not be written was told to nobody
            await self.engagement.journal.commit()
        self.drop(tenant)
        await OperationLease.update({OperationLease.released_at: self.rt.clock.now()}).where(
            (OperationLease.key == tenant_key(tenant)) & (OperationLease.token == token)
        )
        log.info("engine_tenant_released", tenant=str(tenant))

    def drop(self, tenant: Any) -> None:
        """Stop deciding for the tenant at once (collects for it are handed off from now on)."""
        self.held.pop(tenant, None)
        sites = self.sites.get(tenant, set()) | {s.site for s in self.engagement.engine.visitors.values() if s.tenant == tenant}
        self.engagement.engine.drop_tenant(tenant, sites)
        self.engagement.journal.forget_waiting(tenant)
        self.engagement.delivery.drop_sites(sites)

    # --- fencing -------------------------------------------------------------------------------

    async def fence(self, snapshot: Snapshot) -> None:
        """Inside the journal's transaction: raise ``EngineMoved`` unless every tenant the commit
        decides for is still ours. The share lock makes a take-over wait for this commit."""
        tenants = {b.tenant for b in snapshot.batches} | {v[0] for v in snapshot.visitors} | {r.tenant for r in snapshot.invitations}
        tenants |= {key[0] for key, _ in snapshot.capacity} | {key[0] for key, _ in snapshot.waiting}
        await _bounded()
        if not tenants:
            return
        keys = sorted(tenant_key(t) for t in tenants)
        rows = await OperationLease.raw(
            "SELECT key, tenant, holder, token, released_at FROM operation_lease WHERE key = ANY({}) ORDER BY key FOR SHARE", keys,
        )
        tokens = {**self.taking, **self.held}
        ours = {r["tenant"] for r in rows if r["holder"] == self.me and r["released_at"] is None and tokens.get(r["tenant"]) == r["token"]}
        lost = tenants - ours
        if lost:
            for tenant in lost:
                log.warning("engine_commit_fenced", tenant=str(tenant))
                self.drop(tenant)
            raise EngineMoved("another engine process decides for this site now; send the request again")


async def _bounded() -> None:
    """Inside a transaction: neither a hung holder nor a lock it holds outlives a lease. The
    transaction carries this process's ``leases.session_tag`` (the pool's sessions already do,
    a connection made elsewhere may not)."""
    await db.engine().run_querystring(QueryString(
        "SELECT set_config('idle_in_transaction_session_timeout', {}, true), set_config('lock_timeout', {}, true),"
        " set_config('application_name', {}, true)", HUNG_TRANSACTION, LOCK_WAIT, leases.session_tag(leases.holder_id()),
    ))


async def end_sessions_of(holders: list[str], *, waiting_on_client: bool) -> int:
    """Terminate the database sessions of ``holders`` (processes whose leases ran out); how many
    were ended. ``waiting_on_client``: only sessions inside a transaction that wait for their
    client to go on, which a stalled process never will. Needs the holders' database role (or
    pg_signal_backend), as replicas sharing one database have."""
    condition = " AND xact_start IS NOT NULL AND wait_event = 'ClientRead'" if waiting_on_client else ""
    rows = await OperationLease.raw(
        "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) AS ended FROM pg_stat_activity"
        " WHERE datname = current_database() AND application_name = ANY({}) AND pid <> pg_backend_pid()" + condition,
        [leases.session_tag(h) for h in holders],
    )
    return int(rows[0]["ended"]) if rows else 0
