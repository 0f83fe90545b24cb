"""Index for the retention sweep: a tenant's conversations by expiry."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-23T01:47:10:000000"
VERSION = "1.38.0"
DESCRIPTION = "conversation expiry index"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="parley", description=DESCRIPTION)

    async def create_index():
        from piccolo.engine import engine_finder

        await engine_finder().run_ddl("CREATE INDEX conversation_tenant_retain_until ON conversation (tenant, retain_until)")

    manager.add_raw(create_index)
    return manager
