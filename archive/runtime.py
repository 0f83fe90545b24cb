"""The runtime: everything a running Parley process holds, in one object.

It is built once from ``Settings`` by the composition root (``api.composition.build_runtime``),
started in the Litestar lifespan (or by a CLI command), and handed to handlers through Litestar's
dependency injection and to jobs by the scheduler. Domain code receives it as a parameter; nothing
in the domain packages keeps process state in module globals. Tests build their own runtime with a
manual clock instead of patching.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog

from archive.clock import Clock
from archive.db import Database
from archive.keyring import Keys, MasterKeyring
from archive.signals import Signals
from archive.signing import SigningKeys
from archive.workers import Workers
from config.settings import Settings

if TYPE_CHECKING:
    from archive.connectors.store import ConnectorDirectory
    from archive.ingest import IngestStep
    from archive.jobs import JobSpec
    from archive.rotation import KeyringCheck, MasterKeyUser
    from archive.search.backend import SearchBackend
    from archive.tenancy import TenantDirectory
    from proactive.runtime import Engagement
    from proactive.sink import EventSink
    from retention.deletion import DeletionGuard

log = structlog.get_logger(__name__)


class Runtime:
    """Settings, clock, database, keys, caches, search backend, engine: the process's parts."""

    def __init__(
        self,
        *,
        settings: Settings,
        clock: Clock,
        database: Database,
        keys: Keys,
        signals: Signals,
        tenants: TenantDirectory,
        search: SearchBackend,
        workers: Workers,
        ingest_steps: list[IngestStep],
        events: EventSink,
        engagement: Engagement,
        jobs: list[JobSpec],
        connectors: ConnectorDirectory,
        signing: SigningKeys,
        master_key_users: list[MasterKeyUser],
        key_check: KeyringCheck,
        deletion_guards: list[DeletionGuard],
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.database = database
        self.keys = keys
        self.signals = signals
        self.tenants = tenants
        self.search = search
        self.workers = workers
        self.ingest_steps = ingest_steps
        self.events = events
        self.engagement = engagement
        self.jobs = jobs
        self.connectors = connectors
        # Ed25519 keys for checkpoints and exports, with their own history (archive/signing.py).
        self.signing = signing
        # Everything that keeps data wrapped under a master version: what rotation re-wraps and
        # what retirement asks about (archive/rotation.py).
        self.master_key_users = master_key_users
        self.key_check = key_check
        # What may keep a conversation from being deleted (holds, floors, …), asked inside each
        # deletion transaction (retention/deletion.py).
        self.deletion_guards = deletion_guards
        self._started = 0
        self._serving = False

    @property
    def keyring(self) -> MasterKeyring:
        return self.keys.fresh()

    async def start(self, *, migrate: bool = True, serve: bool = False) -> None:
        """Open what the process needs. ``serve``: also load the engagement engine's rules and
        rebuild visitor state (the HTTP server; CLI commands do not need it). Nested starts
        (a test's app on a test's runtime) share one set of connections."""
        self._started += 1
        if self._started > 1:
            if serve and not self._serving:
                await self._serve()
            return
        await self.database.start()
        if migrate:
            await self.database.migrate()
            await self.signing.ensure()
        if not self.database.is_sqlite:
            await self.signals.listen(self.settings.effective_database_url)
        try:
            await self.search.open()
        except Exception as exc:  # an index outage must not stop ingest: the outbox waits for it
            log.warning("search_backend_unavailable", backend=self.search.name, error=type(exc).__name__)
        if serve:
            await self._serve()

    async def _serve(self) -> None:
        self._serving = True
        await self.engagement.start(self)

    async def stop(self) -> None:
        self._started = max(0, self._started - 1)
        if self._started:
            return
        if self._serving:
            self._serving = False
            await self.engagement.stop(self)
        await self.signals.stop()
        await self.search.close()
        await self.database.stop()

    def swap_search(self, backend: SearchBackend) -> SearchBackend:
        """Replace the index backend (contract tests run one suite against both); returns the old."""
        old, self.search = self.search, backend
        return old

    def __repr__(self) -> str:
        return f"Runtime(database={self.database.kind}, search={self.search.name}, keyring={self.keys.current!r})"


def describe(rt: Runtime) -> dict[str, Any]:
    """What the process runs on, for the start-up log line."""
    return {"database": rt.database.kind, "search": rt.search.name, "scheduler": rt.settings.scheduler}
