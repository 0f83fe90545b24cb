"""Composite unique constraints and lookup indexes that Piccolo's column options cannot express.

The unique indexes are what make ingest idempotent under concurrency and the ledger chain
gap-free: two writers racing on the same (tenant, external_id) or (tenant, seq) cannot both win.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-23T00:55:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "composite unique constraints and lookup indexes"

STATEMENTS = [
    "CREATE UNIQUE INDEX conversation_tenant_external_id ON conversation (tenant, external_id)",
    "CREATE INDEX conversation_tenant_ended_at ON conversation (tenant, ended_at)",
    "CREATE INDEX conversation_tenant_visitor ON conversation (tenant, visitor_hash)",
    "CREATE UNIQUE INDEX ledger_entry_tenant_seq ON ledger_entry (tenant, seq)",
    "CREATE INDEX ledger_entry_tenant_action ON ledger_entry (tenant, action, seq)",
    "CREATE UNIQUE INDEX site_tenant_name ON site (tenant, name)",
    "CREATE INDEX api_key_tenant ON api_key (tenant)",
    "CREATE INDEX ledger_checkpoint_tenant_seq ON ledger_checkpoint (tenant, seq)",
]


async def forwards():
    manager = MigrationManager(migration_id=ID, app_name="parley", description=DESCRIPTION)

    async def create_indexes():
        from piccolo.engine import engine_finder

        engine = engine_finder()
        for statement in STATEMENTS:
            await engine.run_ddl(statement)

    manager.add_raw(create_indexes)
    return manager
