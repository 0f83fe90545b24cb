"""Funnel chats: unique per (tenant, rule, variant) so ingest can upsert, and filled from the
chats already linked to rules (retention may already have deleted some: those are not known
any more, and stay uncounted)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-25T06:30:10:000000"
VERSION = "1.38.0"
DESCRIPTION = "funnel chats: unique and filled"

BACKFILL = (
    "INSERT INTO funnel_chats (tenant, rule, variant, chats)"
    " SELECT tenant, rule, COALESCE(variant, ''), COUNT(*) FROM conversation_metrics"
    " WHERE rule IS NOT NULL AND is_primary = 1 GROUP BY tenant, rule, COALESCE(variant, '')"
)


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="parley", description=DESCRIPTION)

    async def unique_and_backfill():
        from piccolo.engine import engine_finder

        engine = engine_finder()
        await engine.run_ddl("CREATE UNIQUE INDEX funnel_chats_rule ON funnel_chats (tenant, rule, variant)")
        await engine.run_ddl(BACKFILL)

    manager.add_raw(unique_and_backfill)
    return manager
