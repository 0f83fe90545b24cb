"""Tenant languages: one row per (tenant, language), filled from the conversations already stored."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.engine import engine_finder
from piccolo.querystring import QueryString

ID = "2026-11-24T09:00:10:000000"
VERSION = "1.38.0"
DESCRIPTION = "tenant languages: unique and filled"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="parley", description=DESCRIPTION)

    async def unique_and_backfill():
        engine = engine_finder()
        await engine.run_ddl("CREATE UNIQUE INDEX tenant_language_unique ON tenant_language (tenant, language)")
        rows = await engine.run_querystring(QueryString("SELECT DISTINCT tenant, language FROM conversation WHERE language IS NOT NULL"))
        pairs = {(r["tenant"], r["language"].split("-")[0].lower()) for r in rows}
        for tenant, language in sorted(pairs, key=str):
            if language:
                await engine.run_querystring(QueryString(
                    "INSERT INTO tenant_language (tenant, language) VALUES ({}, {}) ON CONFLICT DO NOTHING", tenant, language))

    manager.add_raw(unique_and_backfill)
    return manager
