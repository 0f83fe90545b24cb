"""Composite unique constraints and lookup indexes for revisions, files and connector work.

The unique index on (conversation, revision) is what keeps two concurrent revisions of one
conversation from both becoming revision N: the loser's insert fails and ingest retries it.
"""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager

ID = "2026-11-23T19:03:40:000000"
VERSION = "1.38.0"
DESCRIPTION = "revision, file and connector job indexes"

STATEMENTS = [
    "CREATE UNIQUE INDEX conversation_revision_number ON conversation_revision (conversation, revision)",
    "CREATE UNIQUE INDEX conversation_file_digest ON conversation_file (conversation, digest)",
    "CREATE INDEX connector_job_due ON connector_job (status, next_attempt_at)",
    "CREATE INDEX connector_draft_order ON connector_draft (conversation, id)",
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
