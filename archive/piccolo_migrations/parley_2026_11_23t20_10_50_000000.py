"""Indexes of the support metrics: reports scan by start time, ingest finds an agent's
overlapping busy intervals and a visitor's conversations about the same topic, deletion finds a
conversation's rows, the funnel finds a rule's chats. The unique indexes let change marks and
report cells be upserted."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-23T20:10:50:000000"
VERSION = "1.38.0"
DESCRIPTION = "support metrics indexes"

STATEMENTS = [
    "CREATE INDEX conversation_metrics_time ON conversation_metrics (tenant, started_at)",
    "CREATE INDEX conversation_metrics_conversation ON conversation_metrics (conversation)",
    "CREATE INDEX conversation_metrics_visitor ON conversation_metrics (tenant, visitor_hash, started_at)",
    "CREATE INDEX conversation_metrics_busy ON conversation_metrics (tenant, agent, busy_from)",
    "CREATE INDEX conversation_metrics_rule ON conversation_metrics (tenant, rule)",
    "CREATE UNIQUE INDEX metrics_change_hour ON metrics_change (tenant, hour)",
    "CREATE UNIQUE INDEX metrics_cell_day ON metrics_cell (tenant, time_zone, day, dim)",
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
