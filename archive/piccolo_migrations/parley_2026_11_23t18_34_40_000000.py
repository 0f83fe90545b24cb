"""Indexes for the review queue (by status and age), reports (events by time) and policies."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-23T18:34:40:000000"
VERSION = "1.38.0"
DESCRIPTION = "supervision indexes"

STATEMENTS = [
    "CREATE INDEX review_item_tenant_status_created ON review_item (tenant, status, created_at)",
    "CREATE INDEX review_item_tenant_created ON review_item (tenant, created_at)",
    "CREATE INDEX review_item_tenant_policy ON review_item (tenant, policy, conversation)",
    "CREATE INDEX review_event_tenant_at ON review_event (tenant, at)",
    "CREATE INDEX supervision_policy_tenant ON supervision_policy (tenant, status)",
    "CREATE INDEX supervision_policy_version_tenant_at ON supervision_policy_version (tenant, at)",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="parley", description=DESCRIPTION)

    async def create_indexes():
        from piccolo.engine import engine_finder

        for statement in STATEMENTS:
            await engine_finder().run_ddl(statement)

    manager.add_raw(create_indexes)
    return manager
