"""The engagement engine's part of the runtime: the live engine, its journal, invitation delivery,
the site-key cache and the engine's timers, owned by one object instead of module globals.

Timers run on the event loop: the engine's earliest due time is armed with ``loop.call_at`` (and
moved whenever an earlier one appears), so an invitation due after "30 s on the pricing page" is
decided at that instant, not at the next poll. With a manual clock (tests, replays) nothing is
armed and the caller drives ``engine.tick()``.

One process holds the live engine (``PARLEY_ENGAGEMENT_ENGINE``, on by default): the one serving
``/v1/collect``. Other processes (API-only replicas) keep the site's rules for explanations and
read visitors from the store, but decide nothing; see docs/proactive.md. On PostgreSQL with
``PARLEY_ENGAGEMENT_REPLICAS=true`` several live processes share the tenants instead
(proactive.ownership, proactive.handoff; docs/replicas.md).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec
import structlog

from archive.clock import Clock
from archive.crypto import DecryptionError
from archive.db import json_column
from archive.errors import Unavailable
from archive.limits import MAX_SITE_KEY_CHARS
from archive.tables import Site
from archive.tenancy import TenantDirectory, _Lru
from proactive import handoff, store
from proactive import state as visitor_state
from proactive.delivery import InvitationDelivery
from proactive.engine import VISITOR_IDLE_EXPIRY, Changes, Engine, server_time
from proactive.geo import Locator, NoLocator
from proactive.journal import Journal
from proactive.model import Invitation, VisitorKey
from proactive.ownership import Ownership
from proactive.state import VisitorState

if TYPE_CHECKING:
    from archive.runtime import Runtime
    from proactive.store import Snapshot

log = structlog.get_logger(__name__)

SITE_CACHE_SECONDS = 10.0
RULES_CHANGED = "engagement_rules"
SITE_CHANGED = "engagement_site"
VISITOR_ERASED = "engagement_visitor_erased"


class EngineElsewhere(Unavailable):
    title = "Engagement engine not in this process"


class SiteCache:
    """Site rows by public site key, for a few seconds (collect is hot and unauthenticated).

    Bounded, and only keys that exist are cached: a browser (or an attacker) presenting endless
    random site keys costs a lookup each, never memory.
    """

    def __init__(self, clock: Clock, size: int = 10_000) -> None:
        self.clock = clock
        self._rows: _Lru[str, tuple[float, dict[str, Any]]] = _Lru(size)

    async def by_key(self, site_key: str) -> dict[str, Any] | None:
        if len(site_key) > MAX_SITE_KEY_CHARS:
            return None
        cached = self._rows.get(site_key)
        if cached is not None and self.clock.monotonic() - cached[0] < SITE_CACHE_SECONDS:
            return cached[1]
        row = await Site.select(Site.id, Site.tenant, Site.name, Site.allowed_origins, Site.settings).where(Site.site_key == site_key).first()
        if row is None:
            self._rows.pop(site_key)
            return None
        row["allowed_origins"] = json_column(row["allowed_origins"])
        self._rows.put(site_key, (self.clock.monotonic(), row))
        return row

    def forget(self, site_key: str) -> None:
        self._rows.pop(site_key)


class Engagement:
    def __init__(self, clock: Clock, realtime: bool = True, live: bool = True, locator: Locator | None = None,
                 replicas: bool = False, *, tenants: TenantDirectory) -> None:
        self.tenants = tenants  # the tenants' keys: visitor memories are sealed under them
        self.clock = clock
        self.locator: Locator = locator or NoLocator()  # client address → visitor.country/region (proactive.geo)
        self.realtime = realtime  # arm timers on the event loop (False: a manual clock drives ticks)
        self.live = live  # this process decides (False: an API-only replica)
        self.replicas = replicas  # on PostgreSQL: share the tenants with other engine processes
        self.ownership: Ownership | None = None  # set while replicas share the tenants
        self._waiting_events: set[Any] = set()  # tenants with events handed off to this owner
        self._picking: asyncio.Task[None] | None = None
        self.delivery = InvitationDelivery(clock.time)
        self.engine = Engine(clock=lambda: server_time(clock.time()))
        self.sites = SiteCache(clock)
        self.journal = Journal(self)
        self.engine.on_change = self.journal.request
        self.engine.on_earlier_timer = self._arm
        self.engine.on_missing = self._load_missing
        self._loop: asyncio.AbstractEventLoop | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._armed_at: float | None = None
        self._loading: dict[VisitorKey, asyncio.Task[VisitorState | None]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._rt: Runtime | None = None

    # --- life cycle ----------------------------------------------------------------------------

    async def start(self, rt: Runtime) -> None:
        """Read back what the engine knew: rules, site settings, capacity, open invitations, the
        last minute's sends (pacing), active visitors and the timers of dormant ones."""
        from proactive import service

        self._rt = rt
        self._loop = asyncio.get_running_loop()
        engine = self.engine
        await service.load_all_rules(rt)
        rt.signals.subscribe(RULES_CHANGED, lambda site: self._background_task(service.load_site_rules(rt, _site_id(site))))
        rt.signals.subscribe(SITE_CHANGED, lambda site: self._background_task(service.load_site_rules(rt, _site_id(site))))
        if not self.live:
            return
        rt.signals.subscribe(VISITOR_ERASED, self._erased)
        if self.replicas and not rt.database.is_sqlite:
            rt.signals.subscribe(handoff.EVENTS, lambda tenant: self._owned(tenant, self.events_waiting))
            rt.signals.subscribe(handoff.CAPACITY, lambda tenant: self._owned(tenant, lambda t: self._background_task(handoff.reload_capacity(rt, t))))
            rt.signals.subscribe(handoff.INVITED, self._invited)
            self.ownership = Ownership(self, rt)
            await self.ownership.start()
            return
        await self.restore(rt)
        engine.take_changes()  # what was read back is already stored
        if engine.withdraw_orphans():  # a rule deleted while this process was down: its slots come back
            await self.journal.commit()
        due = engine.next_due()
        if due is not None:
            self._arm(due)

    async def restore(self, rt: Runtime, tenant: Any = None, sites: set[Any] | None = None) -> None:
        """What the engine knew, read back from the store: of every tenant at start-up, or of one
        tenant an engine replica takes over (``sites``: the tenant's)."""
        engine = self.engine
        accepted = await store.accepted_since_report()
        for key, capacity in await store.capacity_reports(tenant):
            engine.restore_capacity(key, capacity, accepted.get(key, ()))
        now = self.clock.time()
        for record in await store.open_invitations(tenant):
            engine.restore_invitation(record)
            if record.status == "sent" and record.expires > now:
                self._hold(record.tenant, record.key, record.invitation)
        for record in await store.invitations_since(store.recent_cutoff(now, 60), tenant):
            engine.restore_send(record.key[0], record.sent_at)
        cutoff = store.recent_cutoff(now, VISITOR_IDLE_EXPIRY)
        cryptos: dict[Any, store.EventCrypto | None] = {}
        for row in await store.recent_visitors(cutoff, tenant):
            if row["tenant"] not in cryptos:
                try:
                    cryptos[row["tenant"]] = await self._crypto(row["tenant"])
                except Exception as exc:
                    # A keyring without a version the store needs: start all the same, as
                    # /readyz expects (it answers 503 naming the key); these visitors are read
                    # back on their next event, once the keyring is whole.
                    cryptos[row["tenant"]] = None
                    log.error("engine_memory_unreadable", tenant=str(row["tenant"]), error=type(exc).__name__, detail=str(exc)[:200])
            if cryptos[row["tenant"]] is None:
                continue
            state = await self._stored(row, (row["site"], row["visitor_hash"]))  # None: damaged, starts afresh
            if state is not None:
                engine.adopt(state)
        for row in await store.dormant_timers(cutoff, tenant):
            engine.restore_timer((row["site"], row["visitor_hash"]), row["next_due"].timestamp())

    async def stop(self, rt: Runtime) -> None:
        self.delivery.close_all()
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if self._picking is not None:
            self._picking.cancel()
            await asyncio.gather(self._picking, return_exceptions=True)
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        try:
            await self.journal.commit()
        except Exception as exc:  # what was not written was not told to anyone either
            log.error("engine_final_write_failed", error=type(exc).__name__)
        if self.ownership is not None:
            try:
                await self.ownership.stop()
            except Exception as exc:  # the leases run out instead
                log.error("engine_hand_over_failed", error=type(exc).__name__)
            self.ownership = None

    async def settle(self) -> None:
        """Wait until background work (visitors being read back, reloads) and writes are done."""
        while self._background:
            await asyncio.gather(*self._background, return_exceptions=True)
        await self.journal.drain()

    # --- visitors --------------------------------------------------------------------------------

    def owns(self, tenant: Any) -> bool:
        """This process decides for the tenant's sites (always, unless replicas share them)."""
        return self.ownership is None or self.ownership.owns(tenant)

    async def fence(self, snapshot: Snapshot) -> None:
        """Inside the journal's transaction (replicas): only an owner's decisions are written."""
        if self.ownership is not None:
            await self.ownership.fence(snapshot)

    def require_live(self) -> None:
        if not self.live:
            raise EngineElsewhere("this process does not run the engagement engine (PARLEY_ENGAGEMENT_ENGINE=false); "
                                  "route /v1/collect, the invitation stream and capacity reports to the one that does")

    async def peek(self, site: Any, visitor_hash: str) -> VisitorState | None:
        """The visitor as the live engine has it (memory, else the store), without taking it in."""
        state = self.engine.visitors.get((site, visitor_hash))
        if state is not None or (self.live and self.ownership is None):  # replicas: only the owner takes visitors in
            return await self.visitor(None, site, visitor_hash, create=False)
        row = await store.visitor(site, visitor_hash)
        return await self._stored(row, (site, visitor_hash)) if row is not None else None

    async def visitor(self, tenant: Any, site: Any, visitor_hash: str, create: bool = True) -> VisitorState | None:
        """The visitor in memory, else as stored, else (``create``) a new one."""
        key = (site, visitor_hash)
        state = self.engine.visitors.get(key)
        if state is not None:
            return state
        loading = self._loading.get(key)
        if loading is None:
            loading = self._loading[key] = asyncio.create_task(self._load(tenant, key))
            loading.add_done_callback(lambda _: self._loading.pop(key, None))
        state = await loading
        if state is None and create:
            state = self.engine.visitors.get(key) or self.engine.new_visitor(tenant, site, visitor_hash)
        return state

    async def _load(self, tenant: Any, key: VisitorKey) -> VisitorState | None:
        row = await store.visitor(key[0], key[1])
        stored = await self._stored(row, key) if row is not None else None
        state = self.engine.visitors.get(key)  # it may have arrived meanwhile
        if state is None and stored is not None:
            state = stored
            self.engine.adopt(state)
        return state

    async def _stored(self, row: dict[str, Any], key: VisitorKey) -> VisitorState | None:
        """The visitor as stored; None for a memory that does not open or decode (damaged, or of
        a shape no release wrote): that visitor starts afresh, and the next write replaces it."""
        try:
            memory = await self._opened(row["tenant"], key[1], row["state"])
            return visitor_state.load(memory, row["tenant"], key[0], key[1], self.engine.codes)
        except (DecryptionError, msgspec.DecodeError):
            log.error("engine_memory_damaged", tenant=str(row["tenant"]))
            return None

    def _load_missing(self, key: VisitorKey, due: float) -> None:
        """A timer fired for a visitor evicted from memory: load it and decide."""

        async def resume() -> None:
            row = await store.visitor(key[0], key[1])
            stored = await self._stored(row, key) if row is not None else None
            if stored is not None and key not in self.engine.visitors and self.owns(stored.tenant):
                self.engine.resume(stored, due)

        self._background_task(resume())

    # --- visitor memory at rest ------------------------------------------------------------------

    async def _crypto(self, tenant: Any) -> store.EventCrypto:
        return (await self.tenants.context(tenant if isinstance(tenant, UUID) else UUID(str(tenant)))).crypto

    async def _opened(self, tenant: Any, visitor_hash: str, stored: bytes) -> bytes:
        """A stored visitor memory, decrypted (rows from before sealing need no keys)."""
        if bytes(stored[:1]) != visitor_state.SEALED:
            return bytes(stored)
        return visitor_state.opened(await self._crypto(tenant), visitor_hash, stored)

    async def seal_memories(self, rows: list[store.MemoryRow]) -> list[store.MemoryRow]:
        """The journal's visitor rows with their memories encrypted under each tenant's key."""
        cryptos = {tenant: await self._crypto(tenant) for tenant in {row[0] for row in rows}}
        return [(tenant, key, seen, due, visitor_state.seal(cryptos[tenant], key[1], memory)) for tenant, key, seen, due, memory in rows]

    def _erased(self, arg: str) -> None:
        tenant, _, visitor_hash = arg.partition(":")
        self.engine.forget(_site_id(tenant), visitor_hash)
        self.delivery.forget(visitor_hash)

    def discard(self, changes: Changes) -> None:
        """A journal write failed: forget what it held, so the store stays the truth."""
        self.engine.unwind(changes)

    # --- delivery --------------------------------------------------------------------------------

    def deliver(self, deliveries: list[tuple[VisitorKey, Invitation]]) -> None:
        for key, invitation in deliveries:
            record = self.engine.open.get(invitation.id)
            self._hold(record.tenant if record is not None else None, key, invitation)

    def _hold(self, tenant: Any, key: VisitorKey, invitation: Invitation) -> None:
        """A committed invitation, to be delivered. Replicas: a note that the store has one for the
        visitor (its next collect here takes it), and every process is told (the one holding the
        visitor's stream takes it)."""
        if self.ownership is None or self._rt is None:
            self.delivery.deliver(key, invitation)
            return
        self.delivery.hold(key, invitation)
        if tenant is not None:
            self._background_task(self._rt.signals.announce(handoff.INVITED, f"{tenant}:{key[0]}:{key[1]}"))

    def resume_tenant(self, tenant: Any) -> None:
        """Replicas: a tenant read back is decided here from now on — waiting visitors, timers,
        and the events other processes stored for it meanwhile. The wait queues are decided again:
        the previous owner may have died between freeing a slot and giving it away."""
        self.engine._to_drain.update(key for key in self.engine.queues if key[0] == tenant)
        self.engine.withdraw_orphans(tenant)  # rules deleted while no process here owned the tenant
        due = self.engine.next_due()
        if due is not None:
            self._arm(due)
        self.events_waiting(tenant)

    def take_pending(self, key: VisitorKey) -> list[Invitation]:
        return self.delivery.take_pending(key, self.clock.time())

    async def take(self, tenant: Any, key: VisitorKey) -> list[Invitation]:
        """The invitations a collect answer or a new stream carries to the visitor."""
        if self.ownership is None or self._rt is None:
            return self.take_pending(key)
        if self.owns(tenant) and not self.delivery.pending_for(key):
            return []  # the owner knows of every invitation it sent: nothing to ask the store for
        return await handoff.take_invitations(self._rt, tenant, key)

    def _invited(self, arg: str) -> None:
        """Replicas: an invitation was committed somewhere; take it if the visitor's stream is here."""
        tenant, _, rest = arg.partition(":")
        site, _, visitor_hash = rest.partition(":")
        key = (_site_id(site), visitor_hash)
        rt = self._rt
        if rt is None or not self.delivery.has_stream(key):
            return

        async def push() -> None:
            for invitation in await store.claim_invitations(_site_id(tenant), key, rt.clock.now()):
                self.delivery.deliver(key, invitation)

        self._background_task(push())

    # --- replicas: events handed off by other processes ----------------------------------------

    def _owned(self, tenant: str, then: Any) -> None:
        found = _site_id(tenant)
        if self.ownership is not None and self.ownership.owns(found):
            then(found)

    def events_waiting(self, tenant: Any) -> None:
        """Apply what other processes stored for the tenant (one pick-up at a time; nothing in a
        process that does not serve the engine)."""
        if self._rt is None:
            return
        self._waiting_events.add(tenant)
        if self._picking is None or self._picking.done():
            self._picking = asyncio.ensure_future(self._pick_up())

    async def _pick_up(self) -> None:
        rt = self._rt
        assert rt is not None  # events_waiting schedules this only in a serving process
        while self._waiting_events:
            tenant = self._waiting_events.pop()
            try:
                await handoff.pick_up(rt, tenant)
            except Exception as exc:  # the marks stay: the next beat or notification tries again
                log.warning("engine_pick_up_failed", tenant=str(tenant), error=type(exc).__name__)

    # --- timers ----------------------------------------------------------------------------------

    def _arm(self, due: float) -> None:
        loop = self._loop
        if not self.realtime or loop is None or loop.is_closed():
            return
        if self._armed_at is not None and self._armed_at <= due and self._handle is not None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not loop:
            loop.call_soon_threadsafe(self._arm, due)
            return
        if self._handle is not None:
            self._handle.cancel()
        self._armed_at = due
        self._handle = loop.call_at(loop.time() + max(0.0, due - self.clock.time()), self._fire)

    def _fire(self) -> None:
        self._handle = None
        self._armed_at = None
        try:
            self.engine.tick()
        except Exception:
            log.exception("engine_tick_failed")
        due = self.engine.next_due()
        if due is not None:
            self._arm(due)

    def _background_task(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("engine_background_failed", error=type(task.exception()).__name__)


def _site_id(value: str) -> Any:
    from uuid import UUID

    return UUID(value)
