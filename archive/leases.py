"""Leases: at most one run of a long operation per tenant at a time, across processes.

A retention sweep, an erasure, a redaction rescan or an export run takes the lease of its
(tenant, operation) before it starts. The lease is a database row, so it holds across replicas
on PostgreSQL as well as between the CLI and the server on SQLite:

* **Busy.** While a live holder has it, a second request is refused with a 409 naming the
  running run's id (``LeaseBusy``: problem+json ``conflict`` with ``running_id``).
* **Heartbeat and expiry.** The holder renews the lease every ``ttl / 3`` seconds. A holder
  that dies stops renewing; once ``expires_at`` has passed anyone may take the lease over. On
  the same host a holder whose process is gone is known dead at once (kill -9, a crash), so a
  restarted server does not wait out the TTL.
* **Fencing.** Every acquisition increments ``token``. A destructive step calls ``fence`` inside
  its own transaction: it renews the lease only if the token is still the holder's, so a holder
  that was paused past its expiry and taken over cannot commit another batch (``LeaseLost``).

Use ``async with leases.held(rt, tenant_id, "sweep") as lease:`` and ``await leases.fence(rt,
lease)`` in each transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import socket
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, AsyncIterator
from uuid import UUID, uuid4

import msgspec
import structlog
from piccolo.querystring import QueryString

from archive import db
from archive.errors import Conflict
from archive.tables import OperationLease

if TYPE_CHECKING:
    from archive.runtime import Runtime

log = structlog.get_logger(__name__)

LEASE_SECONDS = 60.0
# Operations that are not about one tenant (master key rotation) use this tenant id.
GLOBAL = UUID(int=0)

# Who this process is: host, pid, and a random tag (a pid may be reused after a reboot).
_PROCESS_TAG = secrets.token_hex(4)


_HAS_PROCFS = os.path.exists("/proc/self/stat")


def _proc_stat(pid: int) -> tuple[str, str]:
    """(state, start time) of a process from ``/proc/<pid>/stat``; FileNotFoundError or
    ProcessLookupError when there is no such process. The start time (clock ticks after boot)
    tells a reused pid from the process that had it."""
    with open(f"/proc/{pid}/stat", "rb") as stat:
        text = stat.read().decode(errors="replace")
    fields = text[text.rfind(")") + 2 :].split()  # the command name in parentheses may hold spaces
    return fields[0], fields[19]


# Read per pid, not at import: a server's worker is forked after this module was imported.
_STARTS: dict[int, str] = {}


def _own_start() -> str:
    pid = os.getpid()
    if pid not in _STARTS:
        _STARTS[pid] = _proc_stat(pid)[1] if _HAS_PROCFS else ""
    return _STARTS[pid]


def holder_id() -> str:
    """``host:pid:tag[:start]``; the start time is there where procfs is."""
    start = _own_start()
    return f"{socket.gethostname()}:{os.getpid()}:{_PROCESS_TAG}" + (f":{start}" if start else "")


def session_tag(holder: str) -> str:
    """The ``application_name`` of a holder's database sessions, so that another process can find
    them once the holder stalled (a hash: PostgreSQL keeps at most 63 bytes of it)."""
    return "parley-" + hashlib.blake2b(holder.encode(), digest_size=8).hexdigest()


class LeaseBusy(Conflict):
    """The operation is running elsewhere; ``running_id`` names that run."""

    def __init__(self, operation: str, running_id: UUID, since: datetime, tenant_id: UUID) -> None:
        scope = "" if tenant_id == GLOBAL else " of this tenant"
        super().__init__(
            f"a {operation}{scope} is already running (id {running_id}, since {since.isoformat(timespec='seconds')}); "
            "wait for it to finish",
            running_id=str(running_id),
        )
        self.running_id = running_id


class LeaseLost(Conflict):
    """The lease expired and another holder took it over; this run must stop."""

    def __init__(self, operation: str, run_id: UUID) -> None:
        super().__init__(f"the {operation} run {run_id} lost its lease to another holder and stopped", running_id=str(run_id))


class Lease(msgspec.Struct, kw_only=True):
    key: str
    tenant: UUID
    operation: str
    run_id: UUID
    holder: str
    token: int
    ttl: float
    taken_over_from: str | None = None


def lease_key(tenant_id: UUID, operation: str) -> str:
    return f"{tenant_id}/{operation}"


def holder_is_dead(holder: str) -> bool:
    """True only when the holder ran on this host and its process no longer runs.

    A process killed with kill -9 whose parent died with it can stay a zombie until something
    reaps it (in a container whose init does not, for ever): ``kill(pid, 0)`` still succeeds on a
    zombie, so procfs is read instead: gone, a zombie, or a pid since reused by a process that
    started at another time all mean the holder is dead."""
    host, _, rest = holder.partition(":")
    pid_text, _, tail = rest.partition(":")
    tag, _, start = tail.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return tag != _PROCESS_TAG  # our pid, but an earlier process's tag: that process is gone
    if not _HAS_PROCFS:  # ask the kernel whether the pid exists
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:  # alive, owned by someone else
            return False
        return False
    try:
        state, started = _proc_stat(pid)
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X") or bool(start and start != started)


async def acquire(rt: Runtime, tenant_id: UUID, operation: str, *, run_id: UUID | None = None,
                  ttl: float = LEASE_SECONDS) -> Lease:
    """Take the lease or raise ``LeaseBusy``. ``run_id`` names this run (a new id by default)."""
    key = lease_key(tenant_id, operation)
    run_id = run_id or uuid4()
    me = holder_id()
    now = rt.clock.now()
    async with db.write_transaction():
        # The row may not exist yet; creating it first gives both racers a row to lock.
        await db.engine().run_querystring(QueryString(
            "INSERT INTO operation_lease (key, tenant, operation, run_id, holder, token, acquired_at, heartbeat_at, "
            "expires_at, released_at) VALUES ({}, {}, {}, {}, '', 0, {}, {}, {}, {}) ON CONFLICT (key) DO NOTHING",
            key, tenant_id, operation, run_id, now, now, now, now,
        ))
        rows = await OperationLease.raw("SELECT * FROM operation_lease WHERE key = {}" + db.for_update(), key)
        row = rows[0]
        live = row["released_at"] is None and row["expires_at"] > now
        if live and not holder_is_dead(row["holder"]):
            raise LeaseBusy(operation, row["run_id"], row["acquired_at"], tenant_id)
        # Never released and not live: its holder died (expired, or its process is gone).
        taken_over = row["holder"] if row["released_at"] is None and row["holder"] else None
        token = int(row["token"]) + 1
        await OperationLease.update({
            OperationLease.run_id: run_id, OperationLease.holder: me, OperationLease.token: token,
            OperationLease.acquired_at: now, OperationLease.heartbeat_at: now,
            OperationLease.expires_at: now + timedelta(seconds=ttl), OperationLease.released_at: None,
        }).where(OperationLease.key == key)
    if taken_over:
        log.warning("lease_taken_over", operation=operation, tenant=str(tenant_id), previous_holder=taken_over)
    return Lease(key=key, tenant=tenant_id, operation=operation, run_id=run_id, holder=me, token=token, ttl=ttl,
                 taken_over_from=taken_over)


async def fence(rt: Runtime, lease: Lease) -> None:
    """Renew the lease if it is still ours, else raise ``LeaseLost``. Call it inside the
    transaction of each destructive step: the step then commits only while the lease is held."""
    now = rt.clock.now()
    renewed = await OperationLease.update({
        OperationLease.heartbeat_at: now, OperationLease.expires_at: now + timedelta(seconds=lease.ttl),
    }).where(
        (OperationLease.key == lease.key) & (OperationLease.token == lease.token) & OperationLease.released_at.is_null()
    ).returning(OperationLease.token)
    if not renewed:
        raise LeaseLost(lease.operation, lease.run_id)


async def release(lease: Lease, now: datetime) -> None:
    await OperationLease.update({OperationLease.released_at: now}).where(
        (OperationLease.key == lease.key) & (OperationLease.token == lease.token)
    )


async def running(tenant_id: UUID, operation: str, now: datetime) -> UUID | None:
    """The run id holding the lease now, if any."""
    row = await OperationLease.select().where(OperationLease.key == lease_key(tenant_id, operation)).first()
    if row is None or row["released_at"] is not None or row["expires_at"] <= now or holder_is_dead(row["holder"]):
        return None
    return UUID(str(row["run_id"]))


@contextlib.asynccontextmanager
async def held(rt: Runtime, tenant_id: UUID, operation: str, *, run_id: UUID | None = None,
               ttl: float = LEASE_SECONDS) -> AsyncIterator[Lease]:
    """Hold the lease for the block, renewing it in the background; released at the end
    (also on errors). A lost lease is logged by the heartbeat; ``fence`` stops the work."""
    lease = await acquire(rt, tenant_id, operation, run_id=run_id, ttl=ttl)

    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(ttl / 3)
            try:
                await fence(rt, lease)
            except LeaseLost:
                log.error("lease_lost", operation=operation, tenant=str(tenant_id), run=str(lease.run_id))
                return
            except Exception as exc:  # the database is briefly unavailable: try again next beat
                log.warning("lease_heartbeat_failed", operation=operation, error=type(exc).__name__)

    beating = asyncio.create_task(heartbeat())
    try:
        yield lease
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating
        await release(lease, rt.clock.now())
