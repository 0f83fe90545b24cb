"""Lookup indexes and uniqueness for the engine's durable memory."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-23T18:23:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "engine memory indexes"

STATEMENTS = [
    "CREATE UNIQUE INDEX visitor_memory_key ON visitor_memory (site, visitor_hash)",
    "CREATE INDEX visitor_memory_last_seen ON visitor_memory (last_seen)",
    "CREATE INDEX visitor_memory_next_due ON visitor_memory (next_due)",
    "CREATE INDEX visitor_memory_tenant_visitor ON visitor_memory (tenant, visitor_hash)",
    "CREATE INDEX engagement_invitation_status ON engagement_invitation (status)",
    "CREATE INDEX engagement_invitation_site_sent ON engagement_invitation (site, sent_at)",
    "CREATE INDEX engagement_invitation_tenant_visitor ON engagement_invitation (tenant, visitor_hash)",
    "CREATE UNIQUE INDEX agent_capacity_key ON agent_capacity (tenant, agent_group)",
    "CREATE INDEX behaviour_event_site_received ON behaviour_event (site, received_at)",
    "CREATE INDEX behaviour_event_received ON behaviour_event (received_at)",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="proactive", description=DESCRIPTION)

    async def create_indexes():
        from piccolo.engine import engine_finder

        for statement in STATEMENTS:
            await engine_finder().run_ddl(statement)

    manager.add_raw(create_indexes)
    return manager
