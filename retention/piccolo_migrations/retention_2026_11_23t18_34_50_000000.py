"""Indexes: a tenant's cases, and what belongs to a case."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-23T18:34:50:000000"
VERSION = "1.38.0"
DESCRIPTION = "case indexes"

STATEMENTS = [
    "CREATE INDEX legal_case_tenant ON legal_case (tenant, created_at)",
    "CREATE INDEX legal_hold_case ON legal_hold (case_id)",
    "CREATE INDEX export_case ON export (case_id)",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="retention", description=DESCRIPTION)

    async def create_indexes():
        from piccolo.engine import engine_finder

        for statement in STATEMENTS:
            await engine_finder().run_ddl(statement)

    manager.add_raw(create_indexes)
    return manager
