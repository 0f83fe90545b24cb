"""Engine replicas (issue 19): behaviour events accepted by a process that does not own their
site wait for the owner with ``handoff`` set (a partial index keeps finding them cheap); an
invitation records when a channel took it (``delivered_at``), so that exactly one replica shows it."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-24T00:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "engine replicas: event hand-off and invitation delivery marks"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="proactive", description=DESCRIPTION)

    async def add_columns():
        from piccolo.engine import engine_finder

        engine = engine_finder()
        sqlite = engine.engine_type == "sqlite"
        await engine.run_ddl(f"ALTER TABLE behaviour_event ADD COLUMN handoff {'INTEGER' if sqlite else 'BOOLEAN'} NULL DEFAULT NULL")
        await engine.run_ddl("ALTER TABLE engagement_invitation ADD COLUMN delivered_at "
                             f"{'TIMESTAMPTZ' if sqlite else 'TIMESTAMP WITH TIME ZONE'} NULL DEFAULT NULL")
        await engine.run_ddl("CREATE INDEX behaviour_event_handoff ON behaviour_event (tenant) WHERE handoff IS NOT NULL")

    manager.add_raw(add_columns)
    return manager
