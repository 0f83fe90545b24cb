"""Group commit of everything the engine changes: events, visitor memory, invitations, capacity,
counters — one transaction for all the requests and timers that changed something meanwhile.

Order of truth: the engine decides in memory, the journal writes, and only then does anything
reach a browser or a caller. A collect request is answered after the commit that holds its events
and the decisions they caused (a 2xx means durable); an invitation goes out on the stream after
the commit that holds it. So a crash at any point loses nothing anybody was told about, and a
restart reads back exactly what was said.

A commit that requests wait for waits ``GATHER_SECONDS`` for company before it starts (requests
arriving meanwhile join it, so one fsync serves many of them); one that only timers asked for
starts at once. Whatever arrives while a commit runs joins the next one.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import structlog

from archive import db
from proactive import state as visitor_state
from proactive import store

if TYPE_CHECKING:
    from proactive.model import GroupKey
    from proactive.runtime import Engagement

log = structlog.get_logger(__name__)

GATHER_SECONDS = 0.005


class Journal:
    def __init__(self, engagement: Engagement) -> None:
        self.engagement = engagement
        self._batches: list[store.Batch] = []
        self._handoffs: list[store.Batch] = []  # for sites other processes own (engine replicas)
        self._handed: list[tuple[int, bool]] = []  # hand-off rows applied (True) or dropped as a repeat (False)
        self._waiters: list[asyncio.Future[None]] = []
        self._task: asyncio.Task[None] | None = None
        self._waiting_written: dict[GroupKey, int] = {}  # engine replicas: what the store says waits per group

    def forget_waiting(self, tenant: Any) -> None:
        """The tenant moved to another process: if it comes back, write its waiting counts anew."""
        self._waiting_written = {k: n for k, n in self._waiting_written.items() if k[0] != tenant}

    def _waiting_changes(self) -> list[tuple[GroupKey, int]]:
        """Engine replicas only (one process answers from memory): the groups whose number of
        waiting visitors differs from what the store has."""
        if self.engagement.ownership is None:
            return []
        engine = self.engagement.engine
        keys = {k for k in (*engine.capacity, *engine.queues) if k[1] is not None}
        now = {k: engine.waiting(*k) for k in keys}
        return [(k, n) for k, n in sorted(now.items(), key=str) if self._waiting_written.get(k) != n]

    def add(self, batch: store.Batch) -> None:
        self._batches.append(batch)

    def add_handoff(self, batch: store.Batch) -> None:
        """A batch for a site another process owns: stored with a hand-off row, the owner told."""
        self._handoffs.append(batch)

    def handed_off(self, handoff_id: int, applied: bool) -> None:
        """A batch another process stored for this owner (proactive.handoff) is done with, in the
        commit that holds its effects; its events are deleted when it repeated a batch applied before."""
        self._handed.append((handoff_id, applied))

    def request(self) -> None:
        """Something changed: write it soon (nobody waits for it)."""
        if self._task is None or self._task.done():
            try:
                self._task = asyncio.get_running_loop().create_task(self._run())
            except RuntimeError:  # no loop (a synchronous caller): the next commit() writes it
                return

    async def commit(self) -> None:
        """Return once everything changed so far is durable (raise if that failed)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        self.request()
        await future

    async def drain(self) -> None:
        """Wait for writes under way (tests, shutdown)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def _run(self) -> None:
        engine = self.engagement.engine
        while self._batches or self._waiters or engine.changes or engine.counters or self._handed or self._handoffs:
            # Requests arriving meanwhile join this commit; a timer's decision alone goes at once.
            await asyncio.sleep(GATHER_SECONDS if self._waiters else 0)
            batches, self._batches = self._batches, []
            waiters, self._waiters = self._waiters, []
            handed, self._handed = self._handed, []
            handoffs, self._handoffs = self._handoffs, []
            changes = engine.take_changes()
            counters = engine.take_counters()
            visitors: list[Any] = []
            waiting = self._waiting_changes()
            snapshot = store.Snapshot(
                batches=batches, visitors=visitors, invitations=list(changes.invitations.values()),
                capacity=[(k, engine.capacity[k]) for k in changes.capacity if k in engine.capacity], counters=counters,
                forgotten=list(changes.forgotten), handoffs=handoffs, handed=handed, waiting=waiting,
            )
            try:
                # Inside the try: a memory that cannot be written fails this commit's waiters (their
                # requests answer 500) instead of ending the task and leaving them waiting forever.
                for key in changes.visitors:
                    found = engine.visitors.get(key)
                    if found is not None:
                        visitors.append((found.tenant, key, found.last_seen, found.due, visitor_state.dump(found)))
                snapshot.visitors = await self.engagement.seal_memories(snapshot.visitors)
                async with db.write_transaction():
                    await self.engagement.fence(snapshot)  # replicas: only while this process owns the tenants
                    await store.write(snapshot)
            except Exception as exc:
                # Memory is now ahead of the store: the visitors involved are read back from it on
                # their next event, and nobody was told about what was not written.
                log.error("engine_journal_failed", error=type(exc).__name__, visitors=len(visitors), events=sum(len(b.events) for b in batches))
                self.engagement.discard(changes)
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_exception(exc)
            else:
                self._waiting_written.update(waiting)
                self.engagement.deliver(changes.deliveries)
                for record in changes.invitations.values():  # shown, answered or closed: delivered for good
                    if record.status != "sent":
                        self.engagement.delivery.ack(record.key, record.invitation.id)
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_result(None)

