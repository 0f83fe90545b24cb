"""Retention's scheduled jobs."""

from __future__ import annotations

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from archive.jobs import JobSpec
from archive.runtime import Runtime
from retention import exports, policies, sweep


async def retention_sweep(rt: Runtime) -> dict[str, int] | None:
    reports = await sweep.sweep_all(rt)
    deleted = {slug: r.deleted for slug, r in reports.items() if r.deleted}
    return deleted or None


async def retention_recompute(rt: Runtime) -> int | None:
    """Policies changed: bring retain_until of existing conversations up to date, in batches."""
    return await policies.recompute_all() or None


async def run_exports(rt: Runtime) -> int | None:
    return await exports.run_pending(rt) or None


async def expire_exports(rt: Runtime) -> int | None:
    return await exports.expire(rt) or None


def jobs() -> list[JobSpec]:
    return [
        JobSpec("retention.sweep", retention_sweep,
                lambda rt: CronTrigger.from_crontab(rt.settings.retention_sweep_cron, timezone="UTC")),
        JobSpec("retention.recompute", retention_recompute, lambda rt: IntervalTrigger(seconds=30)),
        JobSpec("retention.exports", run_exports, lambda rt: IntervalTrigger(seconds=5)),
        JobSpec("retention.exports_expire", expire_exports, lambda rt: IntervalTrigger(hours=1)),
    ]
