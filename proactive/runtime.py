"""The engagement engine's part of the runtime: live visitor state, invitation delivery, the
event writer and the site-key cache, owned by one object instead of module globals.

One process holds the live visitor state (the one running the scheduler); see docs/proactive.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from archive.clock import Clock
from archive.db import json_column
from archive.limits import MAX_SITE_KEY_CHARS
from archive.tables import Site
from archive.tenancy import _Lru
from proactive.delivery import InvitationDelivery
from proactive.engine import Engine
from proactive.events import GroupCommitWriter
from proactive.tables import BehaviourEvent

if TYPE_CHECKING:
    from archive.runtime import Runtime

SITE_CACHE_SECONDS = 10.0


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
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.delivery = InvitationDelivery()
        self.engine = Engine(clock=clock.time, delivery=self.delivery)
        self.sites = SiteCache(clock)
        self.writer = GroupCommitWriter(BehaviourEvent)

    async def start(self, rt: Runtime) -> None:
        from proactive import service

        await service.load_all_rules(rt)
        await service.rebuild_state(rt)

    async def stop(self, rt: Runtime) -> None:
        from proactive import service

        self.delivery.close_all()
        await service.flush_counters(rt)
