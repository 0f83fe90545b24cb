"""Index for the outbox drain: due work, oldest first. (Raw SQL runs before a migration's table
operations in Piccolo, hence its own migration after the table exists.)"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-23T01:36:40:000000"
VERSION = "1.38.0"
DESCRIPTION = "index_outbox drain index"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="parley", description=DESCRIPTION)

    async def create_index():
        from piccolo.engine import engine_finder

        await engine_finder().run_ddl("CREATE INDEX index_outbox_due ON index_outbox (next_attempt_at, id)")

    manager.add_raw(create_index)
    return manager
