"""The one place where background jobs are registered, for every domain package.

Exactly one scheduler may run per deployment (``PARLEY_SCHEDULER=false`` on API-only replicas):
jobs such as the retention sweep and the outbox drain are written to be safe when run twice, but
running them on every replica would only multiply the work. Every job has a fixed id,
``max_instances=1`` (a slow run is never overlapped by the next) and ``coalesce=True`` (runs
missed while the process was busy or down collapse into one).
"""

from __future__ import annotations

from typing import Awaitable, Callable

import msgspec
import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from archive import ledger
from archive.runtime import Runtime

log = structlog.get_logger(__name__)

JobFunc = Callable[[Runtime], Awaitable[object]]


class JobSpec(msgspec.Struct, frozen=True):
    id: str
    func: JobFunc
    trigger: Callable[[Runtime], BaseTrigger]


JOBS: dict[str, JobSpec] = {}


def register(job_id: str, trigger: Callable[[Runtime], BaseTrigger]) -> Callable[[JobFunc], JobFunc]:
    """Decorator: ``@register("retention.sweep", lambda rt: CronTrigger.from_crontab(...))``."""

    def decorate(func: JobFunc) -> JobFunc:
        JOBS[job_id] = JobSpec(id=job_id, func=func, trigger=trigger)
        return func

    return decorate


def _logged(spec: JobSpec, rt: Runtime) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        try:
            result = await spec.func(rt)
            if result:
                log.info("job_done", job=spec.id, result=result)
        except Exception:
            log.exception("job_failed", job=spec.id)

    return run


def build_scheduler(rt: Runtime) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone="UTC")
    for spec in JOBS.values():
        scheduler.add_job(
            _logged(spec, rt), trigger=spec.trigger(rt), id=spec.id, name=spec.id,
            max_instances=1, coalesce=True, replace_existing=True, misfire_grace_time=60,
        )
    return scheduler


@register("ledger.checkpoint", lambda rt: IntervalTrigger(hours=1))
async def sign_ledger_checkpoints(rt: Runtime) -> int:
    return await ledger.checkpoint_all(rt)
