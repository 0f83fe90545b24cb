"""Database access shared by every domain package: the engine, transactions, migrations, readiness.

The runtime builds one ``Database`` from the settings and binds every Piccolo table to its engine
(Piccolo tables find their engine through a class attribute; binding it explicitly means nothing
is decided at import time). The module functions below read the engine back from that binding, so
domain code that only needs "a write transaction" does not have to carry the runtime around.

``write_transaction()`` is the only way domain code opens a transaction that writes. On SQLite it
is ``BEGIN IMMEDIATE`` (take the write lock up front, wait for it up to the busy timeout) because a
deferred transaction that upgrades to a writer fails with "database is locked" under concurrency.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from typing import Any, AsyncIterator, Callable, Sequence

# Piccolo finds its configuration module through this variable (migrations, table discovery).
os.environ.setdefault("PICCOLO_CONF", "config.piccolo_conf")

import structlog
from piccolo.engine.base import Engine
from piccolo.engine.sqlite import TransactionType
from piccolo.querystring import QueryString
from piccolo.table import Table

from archive.tables import Tenant
from config.database import ClosingSQLiteEngine

log = structlog.get_logger(__name__)


class MigrationError(RuntimeError):
    pass


def json_column(value: Any) -> Any:
    """A Piccolo JSON column's value: text on SQLite and on PostgreSQL's ``json`` type, decoded."""
    return json.loads(value) if isinstance(value, str) else value


class Database:
    """One engine, its pool, and the Piccolo tables bound to it."""

    def __init__(self, engine: Engine[Any], pool_size: int = 10) -> None:
        self.engine = engine
        self.pool_size = pool_size
        self._users = 0

    @property
    def kind(self) -> str:
        return str(self.engine.engine_type)

    @property
    def is_sqlite(self) -> bool:
        return self.kind == "sqlite"

    def bind(self) -> None:
        """Point every registered Piccolo table, and Piccolo's own migration machinery, here."""
        from piccolo.apps.migrations.tables import Migration
        from piccolo.conf.apps import Finder

        import config.piccolo_conf as piccolo_conf

        # Piccolo's migration manager looks the engine up through the conf module (a library
        # requirement); the tables carry it as a class attribute. Its own ``migration`` table is
        # no app's table and took its engine once, at import: bound here too, or a second
        # database in one process reads the first one's list of applied migrations and is never
        # migrated.
        piccolo_conf.DB = self.engine
        tables: list[type[Table]] = [*Finder().get_table_classes(), Migration]
        for table in tables:
            table._meta.db = self.engine

    async def start(self) -> None:
        """Open the PostgreSQL pool; nested users (an app inside a test, the CLI) share it."""
        if self.kind == "postgres" and self._users == 0:
            # Piccolo types the base method without the pool arguments asyncpg takes.
            await self.engine.start_connection_pool(min_size=1, max_size=self.pool_size)  # type: ignore[call-arg, no-untyped-call]
        self._users += 1

    async def stop(self) -> None:
        self._users = max(0, self._users - 1)
        if self._users:
            return
        if self.kind == "postgres":
            await self.engine.close_connection_pool()  # type: ignore[no-untyped-call]
        elif isinstance(self.engine, ClosingSQLiteEngine):
            left = await self.engine.close_leftovers()
            if left:
                # Each one is a task that was still in the database when the process stopped.
                log.warning("database_connections_left_open", count=left)

    async def migrate(self) -> list[str]:
        """Run pending Piccolo migrations; returns Piccolo's report lines (it prints, we capture)."""
        from piccolo.apps.migrations.commands.forwards import run_forwards

        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            result = await run_forwards(app_name="all")
        lines = [line for line in buffer.getvalue().splitlines() if line.strip()]
        if not result.success:
            raise MigrationError(result.message or "\n".join(lines))
        return lines

    async def ping(self) -> None:
        await self.engine.run_querystring(QueryString("SELECT 1"))


def engine() -> Engine[Any]:
    """The engine the runtime bound the tables to."""
    return Tenant._meta.db


def is_sqlite() -> bool:
    return engine().engine_type == "sqlite"


def write_transaction() -> Any:
    db = engine()
    if db.engine_type == "sqlite":
        return db.transaction(transaction_type=TransactionType.immediate)
    return db.transaction()


async def execute_many(sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """Run one prepared statement for every row with the driver's ``executemany``, inside the
    caller's write transaction (a hot write path, issue 20: the ORM builds and converts every
    value of every row in Python, which cost more than the write). ``?`` placeholders are
    numbered for PostgreSQL.

    Values are what the driver takes for the column: UUID, aware datetime, bytes, int, str, and
    JSON columns as their text. On SQLite they go through the adapters Piccolo registers with
    ``sqlite3`` (the same text the ORM stores); on PostgreSQL asyncpg encodes them by column type.
    Outside a transaction the rows get one of their own: all of them are written or none."""
    if not rows:
        return
    if not is_sqlite():
        parts = sql.split("?")
        sql = parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], start=1))
    async with write_transaction() as transaction:  # the caller's, when there is one
        await transaction.connection.executemany(sql, rows)


async def insert_many(table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Insert ``rows`` (values in ``columns`` order) with one prepared statement (execute_many)."""
    marks = ", ".join("?" for _ in columns)
    await execute_many(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows)


def for_update() -> str:
    """``FOR UPDATE`` where the engine has row locks; SQLite's IMMEDIATE lock already serialises."""
    return "" if is_sqlite() else " FOR UPDATE"


async def keyset_pages(make_query: Callable[[], Any], key: Any, size: int) -> AsyncIterator[list[dict[str, Any]]]:
    """Pages of a select in ``key`` order, each query starting after the last row of the one
    before. Safe while the caller deletes or updates the rows it has seen (sweeps, re-wraps),
    which OFFSET paging is not. ``make_query`` builds a fresh query each time: Piccolo's
    ``where`` modifies a query in place."""
    after = None
    name = key._meta.name
    while True:
        query = make_query()
        if after is not None:
            query = query.where(key > after)
        rows = await query.order_by(key).limit(size)
        if not rows:
            return
        yield rows
        if len(rows) < size:
            return
        after = rows[-1][name]
