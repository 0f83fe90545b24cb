"""Telling every serving process at once that an API key was revoked.

Authentication caches verified keys (a cheap authenticated GET should not cost a database round
trip), so revocation must reach the caches of processes other than the one that revoked: the CLI
revokes while the server runs, and PostgreSQL deployments run several replicas.

* PostgreSQL: the revoking transaction sends ``NOTIFY parley_key_revoked``; each server keeps one
  ``LISTEN`` connection and evicts the key when the notification arrives (milliseconds after commit).
* SQLite (one machine by construction): the revoker touches ``<data dir>/revocations``; each
  authentication compares the file's mtime (one ``stat``) and drops the cache when it changed.

If the listener connection is lost the cache is cleared and the TTL (PARLEY_AUTH_CACHE_SECONDS)
remains the upper bound.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable
from uuid import UUID

import structlog

from archive import db

log = structlog.get_logger(__name__)

CHANNEL = "parley_key_revoked"
_SIGNAL_FILE = "revocations"


class RevocationWatch:
    def __init__(self) -> None:
        self.signal_file: Path | None = None
        self._seen_mtime: int = 0
        self._listener: Any = None
        self._users = 0

    def configure(self, data_dir: Path) -> None:
        self.signal_file = data_dir / _SIGNAL_FILE
        self._seen_mtime = self._mtime()

    def _mtime(self) -> int:
        if self.signal_file is None:
            return 0
        try:
            return os.stat(self.signal_file).st_mtime_ns
        except FileNotFoundError:
            return 0

    def changed(self) -> bool:
        """For SQLite deployments: has any process revoked a key since we last looked?"""
        if self.signal_file is None or not db.is_sqlite():
            return False
        mtime = self._mtime()
        if mtime != self._seen_mtime:
            self._seen_mtime = mtime
            return True
        return False

    async def announce(self, key_id: UUID) -> None:
        if db.is_sqlite():
            if self.signal_file is not None:
                self.signal_file.parent.mkdir(parents=True, exist_ok=True)
                with open(self.signal_file, "a", encoding="utf-8") as fh:
                    fh.write(f"{key_id}\n")
                os.utime(self.signal_file)
        else:
            from piccolo.querystring import QueryString

            await db.engine().run_querystring(QueryString("SELECT pg_notify({}, {})", CHANNEL, str(key_id)))

    async def listen(self, dsn: str, evict: Callable[[UUID], None], clear: Callable[[], None]) -> None:
        import asyncpg

        self._users += 1
        if self._listener is not None:
            return

        def on_notify(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
            try:
                evict(UUID(payload))
            except ValueError:
                clear()

        def on_lost(_conn: Any) -> None:
            log.warning("revocation_listener_lost", fallback="auth cache TTL")
            clear()

        self._listener = await asyncpg.connect(dsn)
        self._listener.add_termination_listener(on_lost)
        await self._listener.add_listener(CHANNEL, on_notify)

    async def stop(self) -> None:
        self._users = max(0, self._users - 1)
        if self._listener is not None and self._users == 0:
            await self._listener.close()
            self._listener = None


watch = RevocationWatch()
