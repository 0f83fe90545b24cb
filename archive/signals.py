"""Telling every serving process at once that something it caches has changed.

Processes cache what they read on every request: verified API keys, tenant settings and keys,
the master keyring. A change made by another process — the CLI revoking a key while the server
runs, an admin on replica A changing redaction settings that replica B applies — must reach those
caches immediately, not after a restart.

* PostgreSQL: after the change commits, ``NOTIFY parley_signals, '<kind>:<arg>'``; each server
  keeps one ``LISTEN`` connection and dispatches to the subscribers of that kind.
* SQLite (one machine by construction): the changer appends ``<kind>:<arg>`` to
  ``<data dir>/signals``; each process compares the file's size (one ``stat``) when it is about to
  trust a cache, and dispatches the lines it has not seen yet.

If the listener connection is lost (a database restart or failover, a terminated session) every
subscriber's cache is dropped, and the listener connects again, backing off up to
``RECONNECT_MAX_SECONDS``; once it is back the caches are dropped once more, for what was
announced while nobody listened. Meanwhile the cache TTLs are the upper bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import structlog

from archive import db

log = structlog.get_logger(__name__)

CHANNEL = "parley_signals"
RECONNECT_FIRST_SECONDS = 0.5
RECONNECT_MAX_SECONDS = 30.0
SIGNAL_FILE = "signals"

KEY_REVOKED = "key_revoked"
TENANT_CHANGED = "tenant_changed"
KEYRING_CHANGED = "keyring_changed"

Handler = Callable[[str], None]


class Signals:
    def __init__(self, data_dir: Path) -> None:
        self.signal_file = data_dir / SIGNAL_FILE
        self._handlers: dict[str, list[Handler]] = defaultdict(list)
        self._resets: list[Callable[[], None]] = []
        self._offset = self._size()
        self._listener: Any = None
        self._on_lost: Callable[[Any], None] = lambda _conn: None
        self._reconnecting: asyncio.Task[None] | None = None
        self._stopped = False

    # --- subscribing -------------------------------------------------------------------------

    def subscribe(self, kind: str, handler: Handler) -> None:
        self._handlers[kind].append(handler)

    def on_reset(self, handler: Callable[[], None]) -> None:
        """Called when signals may have been missed: drop whatever the caller caches."""
        self._resets.append(handler)

    def _dispatch(self, line: str) -> None:
        kind, _, arg = line.partition(":")
        for handler in self._handlers.get(kind, ()):
            handler(arg)

    def _reset(self) -> None:
        for handler in self._resets:
            handler()

    # --- announcing --------------------------------------------------------------------------

    async def announce(self, kind: str, arg: str = "") -> None:
        """Tell every process (this one included). Call after the change has committed: a
        process that reloads on the signal must find the new state, not the old one."""
        if db.is_sqlite():
            self.signal_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.signal_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as fh:
                fh.write(f"{kind}:{arg}\n")
            self.poll()
        else:
            from piccolo.querystring import QueryString

            await db.engine().run_querystring(QueryString("SELECT pg_notify({}, {})", CHANNEL, f"{kind}:{arg}"))

    # --- receiving ---------------------------------------------------------------------------

    def _size(self) -> int:
        try:
            return os.stat(self.signal_file).st_size
        except FileNotFoundError:
            return 0

    def poll(self) -> None:
        """SQLite deployments: dispatch what other processes announced since the last look.
        One ``stat`` when nothing changed; cheap enough for every authentication."""
        if self._listener is not None:
            return
        size = self._size()
        if size == self._offset:
            return
        if size < self._offset:  # the file was replaced: we cannot know what we missed
            self._offset = 0
            self._reset()
        with open(self.signal_file, "rb") as fh:
            fh.seek(self._offset)
            data = fh.read(size - self._offset)
        complete, _, _ = data.rpartition(b"\n")
        if not complete and data:
            return  # a line being written; read it next time
        self._offset += len(complete) + 1
        for line in complete.decode("utf-8", "replace").splitlines():
            self._dispatch(line)

    async def listen(self, dsn: str) -> None:
        """PostgreSQL deployments: one LISTEN connection for the process."""
        import asyncpg

        if self._listener is not None:
            return
        self._stopped = False

        def on_notify(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
            self._dispatch(payload)

        def on_lost(_conn: Any) -> None:
            log.warning("signal_listener_lost", fallback="cache TTLs until it is back")
            self._listener = None
            self._reset()
            if not self._stopped and (self._reconnecting is None or self._reconnecting.done()):
                self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect(dsn))

        listener = await asyncpg.connect(dsn)
        try:
            await listener.add_listener(CHANNEL, on_notify)
        except BaseException:
            await listener.close()
            raise
        listener.add_termination_listener(on_lost)
        self._on_lost = on_lost
        self._listener = listener

    async def _reconnect(self, dsn: str) -> None:
        delay = RECONNECT_FIRST_SECONDS
        while self._listener is None and not self._stopped:
            await asyncio.sleep(delay)
            try:
                await self.listen(dsn)
            except Exception as exc:  # the database is still away: wait longer
                log.warning("signal_listener_reconnect_failed", error=type(exc).__name__, retry_in=min(delay * 2, RECONNECT_MAX_SECONDS))
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)
                continue
            log.info("signal_listener_restored")
            self._reset()  # announcements made while nobody listened
            return

    @property
    def listening(self) -> bool:
        return self._listener is not None

    async def stop(self) -> None:
        self._stopped = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnecting
            self._reconnecting = None
        if self._listener is not None:
            listener, self._listener = self._listener, None
            listener.remove_termination_listener(self._on_lost)  # closing it is not losing it
            await listener.close()
