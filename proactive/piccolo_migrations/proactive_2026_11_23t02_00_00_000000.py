"""Lookup indexes and uniqueness for the engagement engine."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-23T02:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "engagement engine indexes"

STATEMENTS = [
    "CREATE UNIQUE INDEX marketing_rule_tenant_name ON marketing_rule (tenant, name)",
    "CREATE INDEX behaviour_event_site_at ON behaviour_event (site, at)",
    "CREATE INDEX behaviour_event_tenant_visitor ON behaviour_event (tenant, visitor_hash)",
    "CREATE UNIQUE INDEX rule_counter_key ON rule_counter (rule, variant, name)",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="proactive", description=DESCRIPTION)

    async def create_indexes():
        from piccolo.engine import engine_finder

        for statement in STATEMENTS:
            await engine_finder().run_ddl(statement)

    manager.add_raw(create_indexes)
    return manager
