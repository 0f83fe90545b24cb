"""The engine's scheduled work: the timer tick, counter flushes, idle expiry, event retention."""

from __future__ import annotations

from apscheduler.triggers.interval import IntervalTrigger

from archive.jobs import JobSpec
from archive.runtime import Runtime
from proactive import service


async def tick(rt: Runtime) -> None:
    """Due timers only: cost grows with what is due, not with visitors or rules."""
    rt.engagement.engine.tick()


async def flush(rt: Runtime) -> int | None:
    return await service.flush_counters(rt) or None


async def expire_idle(rt: Runtime) -> int | None:
    return rt.engagement.engine.expire_idle() or None


async def purge(rt: Runtime) -> int | None:
    return await service.purge_events(rt, rt.settings.event_retention_days) or None


def jobs() -> list[JobSpec]:
    return [
        JobSpec("proactive.tick", tick, lambda rt: IntervalTrigger(seconds=0.25)),
        JobSpec("proactive.flush_counters", flush, lambda rt: IntervalTrigger(seconds=5)),
        JobSpec("proactive.expire_idle", expire_idle, lambda rt: IntervalTrigger(seconds=60)),
        JobSpec("proactive.event_retention", purge, lambda rt: IntervalTrigger(hours=6)),
    ]
