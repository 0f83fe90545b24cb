"""The engine's scheduled work: the timer tick, counter flushes, idle expiry, event retention."""

from __future__ import annotations

from apscheduler.triggers.interval import IntervalTrigger

from archive import jobs
from archive.runtime import Runtime
from proactive import service


@jobs.register("proactive.tick", lambda rt: IntervalTrigger(seconds=0.25))
async def tick(rt: Runtime) -> None:
    """Due timers only: cost grows with what is due, not with visitors or rules."""
    service.ENGINE.tick()


@jobs.register("proactive.flush_counters", lambda rt: IntervalTrigger(seconds=5))
async def flush(rt: Runtime) -> int | None:
    return await service.flush_counters() or None


@jobs.register("proactive.expire_idle", lambda rt: IntervalTrigger(seconds=60))
async def expire_idle(rt: Runtime) -> int | None:
    return service.ENGINE.expire_idle() or None


@jobs.register("proactive.event_retention", lambda rt: IntervalTrigger(hours=6))
async def purge(rt: Runtime) -> int | None:
    return await service.purge_events(rt, rt.settings.event_retention_days) or None
