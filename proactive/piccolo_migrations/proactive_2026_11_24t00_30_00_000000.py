"""Engine replicas (issue 19): a collect batch accepted by a process that does not own its site is
stored with the other behaviour events and waits for the owner as a row of ``engagement_handoff``
(deleted when the owner applied it); an invitation records when a channel took it
(``delivered_at``), so that exactly one replica shows it."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-24T00:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "engine replicas: batches handed off to the owner, invitation delivery marks"


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="proactive", description=DESCRIPTION)

    async def add_columns():
        from piccolo.engine import engine_finder

        engine = engine_finder()
        sqlite = engine.engine_type == "sqlite"
        await engine.run_ddl(
            "CREATE TABLE engagement_handoff ("
            + ("id INTEGER PRIMARY KEY AUTOINCREMENT" if sqlite else "id BIGSERIAL PRIMARY KEY")
            + ", tenant UUID NOT NULL, site UUID NOT NULL, visitor_hash VARCHAR(64) NOT NULL, batch_id VARCHAR(64) NOT NULL, received_at "
            + ("TIMESTAMPTZ" if sqlite else "TIMESTAMP WITH TIME ZONE")
            + " NOT NULL)"
        )
        await engine.run_ddl("CREATE INDEX engagement_handoff_tenant ON engagement_handoff (tenant, id)")
        await engine.run_ddl("ALTER TABLE engagement_invitation ADD COLUMN delivered_at "
                             f"{'TIMESTAMPTZ' if sqlite else 'TIMESTAMP WITH TIME ZONE'} NULL DEFAULT NULL")

    manager.add_raw(add_columns)
    return manager
