"""Behaviour events' page content sealed in one column (issue 23): name, URL, title, referrer and
props of new rows go into ``payload``; older rows keep their columns until event retention."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-23T22:20:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "sealed behaviour event payloads"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="proactive", description=DESCRIPTION)

    async def add_payload():
        from piccolo.engine import engine_finder

        engine = engine_finder()
        kind = "BLOB" if engine.engine_type == "sqlite" else "BYTEA"
        await engine.run_ddl(f"ALTER TABLE behaviour_event ADD COLUMN payload {kind} NULL DEFAULT NULL")

    manager.add_raw(add_payload)
    return manager
