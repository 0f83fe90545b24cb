"""Background jobs: what each one is, and the scheduler that runs them.

Each domain package lists its jobs (a ``jobs()`` function returning ``JobSpec``s); the
composition root puts the lists together in the runtime, and the scheduler is built from that.

Exactly one scheduler may run per deployment (``PARLEY_SCHEDULER=false`` on API-only replicas):
jobs such as the retention sweep and the outbox drain are written to be safe when run twice, but
running them on every replica would only multiply the work. Every job has a fixed id,
``max_instances=1`` (a slow run is never overlapped by the next) and ``coalesce=True`` (runs
missed while the process was busy or down collapse into one).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Awaitable, Callable

import msgspec
import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger

from archive import ledger

if TYPE_CHECKING:
    from archive.runtime import Runtime

log = structlog.get_logger(__name__)

JobFunc = Callable[["Runtime"], Awaitable[object]]


class JobSpec(msgspec.Struct, frozen=True):
    id: str
    func: JobFunc
    trigger: Callable[["Runtime"], BaseTrigger]


class JobScheduler(AsyncIOScheduler):  # type: ignore[misc]  # APScheduler 3 ships no type hints
    """APScheduler's asyncio scheduler that can stop *and* let the jobs under way finish.

    ``shutdown`` alone leaves running jobs to be cancelled mid-query when the database closes;
    ``stop`` waits for them (bounded), so a job's transaction commits or rolls back whole.
    """

    def __init__(self) -> None:
        super().__init__(timezone="UTC")
        self.running_jobs: set[asyncio.Task[None]] = set()

    async def stop(self, timeout: float = 3.0) -> None:
        if self.running:
            self.shutdown(wait=False)
        if self.running_jobs:
            _, late = await asyncio.wait(self.running_jobs, timeout=timeout)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)


def _logged(spec: JobSpec, rt: Runtime, scheduler: JobScheduler) -> Callable[[], Awaitable[None]]:
    async def run() -> None:
        task = asyncio.current_task()
        assert task is not None
        scheduler.running_jobs.add(task)
        try:
            result = await spec.func(rt)
            if result:
                log.info("job_done", job=spec.id, result=result)
        except asyncio.CancelledError:
            # Only a stop that outlasted its grace period cancels a job; its transaction rolled back.
            log.warning("job_cancelled_at_shutdown", job=spec.id)
        except Exception:
            log.exception("job_failed", job=spec.id)
        finally:
            scheduler.running_jobs.discard(task)

    return run


def build_scheduler(rt: Runtime) -> JobScheduler:
    scheduler = JobScheduler()
    for spec in rt.jobs:
        scheduler.add_job(
            _logged(spec, rt, scheduler), trigger=spec.trigger(rt), id=spec.id, name=spec.id,
            max_instances=1, coalesce=True, replace_existing=True, misfire_grace_time=60,
        )
    return scheduler


async def sign_ledger_checkpoints(rt: Runtime) -> int:
    return await ledger.checkpoint_all(rt)


def jobs() -> list[JobSpec]:
    return [JobSpec("ledger.checkpoint", sign_ledger_checkpoints, lambda rt: IntervalTrigger(hours=1))]
