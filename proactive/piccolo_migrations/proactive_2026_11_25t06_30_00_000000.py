"""Capacity reports' ``as_of``: the moment a report's numbers describe, as the chat platform gave
it. Kept with the group's last report so that, after a restart or on another engine replica, an
older report delivered late is still recognised as older and not applied (docs/proactive.md)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-25T06:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "capacity reports: the moment a report describes (as_of)"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="proactive", description=DESCRIPTION)

    async def add_as_of():
        from piccolo.engine import engine_finder

        await engine_finder().run_ddl("ALTER TABLE agent_capacity ADD COLUMN as_of TIMESTAMPTZ NULL DEFAULT NULL")

    manager.add_raw(add_as_of)
    return manager
