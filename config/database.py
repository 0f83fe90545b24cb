"""Engine construction for the two supported databases.

SQLite runs in WAL mode (readers never block the writer) and every write transaction is
``BEGIN IMMEDIATE``: a deferred transaction that later tries to write fails with "database is
locked" under concurrency instead of waiting for the lock. PostgreSQL uses an asyncpg pool.
"""

from __future__ import annotations

import asyncio
import sqlite3
import weakref
from pathlib import Path
from typing import Any

import aiosqlite
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, dict_factory

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
    return ClosingSQLiteEngine(path=str(path), timeout=SQLITE_BUSY_TIMEOUT)


class ClosingSQLiteEngine(SQLiteEngine):
    """Piccolo's SQLite engine, which also closes at shutdown every connection still open.

    aiosqlite runs each connection on its own non-daemon thread that only ``close()`` ends. A
    task that the server abandons mid-query (Granian stops its event loop after the lifespan
    without cancelling what is left), or a transaction cancelled between opening its connection
    and ``BEGIN``, leaves that thread waiting for work forever, and the process then cannot exit:
    interpreter shutdown joins it. Every connection this engine opens is remembered (weakly) so
    that ``close_leftovers`` can end them when the database stops.
    """

    def __init__(self, path: str, **kwargs: Any) -> None:
        super().__init__(path=path, **kwargs)
        self._connections: weakref.WeakSet[aiosqlite.Connection] = weakref.WeakSet()

    async def get_connection(self) -> aiosqlite.Connection:
        connection = aiosqlite.connect(**self.connection_kwargs)
        self._connections.add(connection)  # before its thread starts: a cancel while opening is covered too
        await connection
        connection.row_factory = dict_factory  # type: ignore[assignment]  # aiosqlite types it as a class; sqlite3 takes any callable
        await connection.execute("PRAGMA foreign_keys = 1")
        return connection

    async def _run_in_new_connection(
        self, query: str, args: list[Any] | None = None, query_type: str = "generic", table: Any = None,
    ) -> Any:
        # Piccolo's own version opens its connection directly, out of ``close_leftovers``' sight; this
        # is the same query through ``get_connection``. Only an insert on SQLite < 3.35 (no RETURNING)
        # needs Piccolo's workaround.
        if query_type == "insert" and self.get_version_sync() < 3.35:
            return await super()._run_in_new_connection(query, args, query_type, table)
        connection = await self.get_connection()
        try:
            async with connection.execute(query, args or []) as cursor:
                await connection.commit()
                return await cursor.fetchall()
        finally:
            await connection.close()

    async def close_leftovers(self, timeout: float = 2.0) -> int:
        """Close every connection still open; returns how many there were. A connection busy in a
        statement gets ``timeout`` seconds to finish it, then is told to stop after it."""
        # aiosqlite has no public "is open"; ``_connection`` is what its own ``close()`` checks.
        open_now = [c for c in list(self._connections) if getattr(c, "_connection", None) is not None]
        if not open_now:
            return 0
        closing = {asyncio.ensure_future(c.close()): c for c in open_now}
        done, late = await asyncio.wait(closing, timeout=timeout)
        for task in late:
            task.cancel()
            closing[task].stop()
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                closing[task].stop()
        return len(open_now)


def prepare_sqlite_file(path: Path) -> None:
    """Switch the file to WAL once; the journal mode is stored in the file itself."""
    with sqlite3.connect(path, timeout=SQLITE_BUSY_TIMEOUT) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
