"""Engine replicas (issue 19): the owner of a tenant writes how many visitors wait for each
agent group's slots, so that any process answers ``GET /v1/agents/capacity`` with it."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-24T04:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "engine replicas: visitors waiting per agent group, as the owner last wrote it"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="proactive", description=DESCRIPTION)

    async def add_column():
        from piccolo.engine import engine_finder

        await engine_finder().run_ddl("ALTER TABLE agent_capacity ADD COLUMN waiting INTEGER NOT NULL DEFAULT 0")

    manager.add_raw(add_column)
    return manager
