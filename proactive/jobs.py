"""The engine's scheduled upkeep: idle visitors leave memory, old events and memory leave the store.

Decisions are not a job: the engine's timers run on the event loop (proactive.runtime), and every
change is written by the journal as it happens."""

from __future__ import annotations

from apscheduler.triggers.interval import IntervalTrigger

from archive.jobs import JobSpec
from archive.runtime import Runtime
from proactive import service


async def expire_idle(rt: Runtime) -> int | None:
    rt.engagement.delivery.prune(rt.clock.time())
    return rt.engagement.engine.expire_idle() or None


async def purge(rt: Runtime) -> int | None:
    return await service.purge_events(rt, rt.settings.event_retention_days) or None


def jobs() -> list[JobSpec]:
    return [
        JobSpec("proactive.expire_idle", expire_idle, lambda rt: IntervalTrigger(seconds=60)),
        JobSpec("proactive.event_retention", purge, lambda rt: IntervalTrigger(hours=6)),
    ]
