"""Database access shared by every domain package: transactions, migrations, readiness.

``write_transaction()`` is the only way domain code opens a transaction that writes. On SQLite it
is ``BEGIN IMMEDIATE`` (take the write lock up front, wait for it up to the busy timeout) because a
deferred transaction that upgrades to a writer fails with "database is locked" under concurrency.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from typing import Any, AsyncIterator, Callable

os.environ.setdefault("PICCOLO_CONF", "config.piccolo_conf")

from piccolo.engine import engine_finder  # noqa: E402
from piccolo.engine.base import Engine  # noqa: E402
from piccolo.engine.sqlite import TransactionType  # noqa: E402


class MigrationError(RuntimeError):
    pass


_engine: Engine | None = None


def json_column(value: Any) -> Any:
    """A Piccolo JSON column's value: text on SQLite and on PostgreSQL's ``json`` type, decoded."""
    return json.loads(value) if isinstance(value, str) else value


def engine() -> Engine:
    # engine_finder() re-imports piccolo_conf on every call (~10 µs); the engine never changes.
    global _engine
    if _engine is None:
        _engine = engine_finder()
        if _engine is None:  # pragma: no cover - config.piccolo_conf always defines DB
            raise RuntimeError("Piccolo engine not configured (PICCOLO_CONF)")
    return _engine


def is_sqlite() -> bool:
    return engine().engine_type == "sqlite"


def write_transaction() -> Any:
    db = engine()
    if db.engine_type == "sqlite":
        return db.transaction(transaction_type=TransactionType.immediate)
    return db.transaction()


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


async def migrate() -> list[str]:
    """Run pending Piccolo migrations; returns Piccolo's report lines (it prints, we capture)."""
    from piccolo.apps.migrations.commands.forwards import run_forwards

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        result = await run_forwards(app_name="all")
    lines = [line for line in buffer.getvalue().splitlines() if line.strip()]
    if not result.success:
        raise MigrationError(result.message or "\n".join(lines))
    return lines


_pool_users = 0


async def start(pool_size: int = 10) -> None:
    """Open the PostgreSQL pool; nested callers (an app inside a test, a CLI helper) share it."""
    global _pool_users
    db = engine()
    if db.engine_type == "postgres" and _pool_users == 0:
        await db.start_connection_pool(min_size=1, max_size=pool_size)  # type: ignore[attr-defined]
    _pool_users += 1


async def stop() -> None:
    global _pool_users
    _pool_users = max(0, _pool_users - 1)
    db = engine()
    if db.engine_type == "postgres" and _pool_users == 0:
        await db.close_connection_pool()  # type: ignore[attr-defined]


async def ping() -> None:
    await engine().run_querystring(_select_one())


def _select_one() -> Any:
    from piccolo.querystring import QueryString

    return QueryString("SELECT 1")
