"""Engine construction for the two supported databases.

SQLite runs in WAL mode (readers never block the writer) and every write transaction is
``BEGIN IMMEDIATE``: a deferred transaction that later tries to write fails with "database is
locked" under concurrency instead of waiting for the lock. PostgreSQL uses an asyncpg pool.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine

from config.settings import Settings

# How long a writer waits for the SQLite write lock before giving up (seconds).
SQLITE_BUSY_TIMEOUT = 30.0


def build_engine(settings: Settings, application_name: str | None = None) -> Engine[Any]:
    """``application_name``: what PostgreSQL shows for this process's sessions (pg_stat_activity),
    by which another replica can end the sessions of a process that stalled (proactive.ownership)."""
    if settings.engine == "postgres":
        config: dict[str, Any] = {"dsn": settings.effective_database_url}
        if application_name:
            config["server_settings"] = {"application_name": application_name}
        return PostgresEngine(config=config)
    path = settings.sqlite_path
    path.parent.mkdir(parents=True, exist_ok=True)
    prepare_sqlite_file(path)
    return SQLiteEngine(path=str(path), timeout=SQLITE_BUSY_TIMEOUT)


def prepare_sqlite_file(path: Path) -> None:
    """Switch the file to WAL once; the journal mode is stored in the file itself."""
    with sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
