"""Retention's scheduled jobs (registered with archive.jobs, the one registration point)."""

from __future__ import annotations

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from archive import jobs
from archive.runtime import Runtime
from retention import exports, policies, sweep


@jobs.register("retention.sweep", lambda rt: CronTrigger.from_crontab(rt.settings.retention_sweep_cron, timezone="UTC"))
async def retention_sweep(rt: Runtime) -> dict[str, int] | None:
    reports = await sweep.sweep_all(rt)
    deleted = {slug: r.deleted for slug, r in reports.items() if r.deleted}
    return deleted or None


@jobs.register("retention.recompute", lambda rt: IntervalTrigger(seconds=30))
async def retention_recompute(rt: Runtime) -> int | None:
    """Policies changed: bring retain_until of existing conversations up to date, in batches."""
    return await policies.recompute_all() or None


@jobs.register("retention.exports", lambda rt: IntervalTrigger(seconds=5))
async def run_exports(rt: Runtime) -> int | None:
    return await exports.run_pending(rt) or None


@jobs.register("retention.exports_expire", lambda rt: IntervalTrigger(hours=1))
async def expire_exports(rt: Runtime) -> int | None:
    return await exports.expire(rt) or None
