"""Where behaviour events go besides the store: an analytics copy, when one is configured.

The store (``behaviour_event``) holds every event durably and is what the engine and backtests
read. With the OpenSearch backend on, events are also mirrored into an events index for
analytics; that copy is best effort (it never delays a collect response) and is erased and aged
out with the store's copy. On the embedded default there is no copy: ``NullEventSink``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

import structlog

log = structlog.get_logger(__name__)


class EventSink(Protocol):
    def write(self, rows: list[dict[str, Any]]) -> None: ...

    async def delete_visitor(self, tenant_id: UUID, visitor_hash: str) -> None: ...

    async def purge(self, before: datetime) -> None: ...

    async def drain(self) -> None: ...


class NullEventSink:
    def write(self, rows: list[dict[str, Any]]) -> None:
        return None

    async def delete_visitor(self, tenant_id: UUID, visitor_hash: str) -> None:
        return None

    async def purge(self, before: datetime) -> None:
        return None

    async def drain(self) -> None:
        return None


class EventIndex(Protocol):
    async def index_events(self, rows: list[dict[str, Any]]) -> None: ...

    async def delete_visitor_events(self, tenant_id: UUID, visitor_hash: str) -> None: ...

    async def purge_events(self, before: datetime) -> None: ...


class IndexEventSink:
    """Mirrors events into a search backend's events index, in the background."""

    def __init__(self, index: EventIndex) -> None:
        self.index = index
        self._sending: set[asyncio.Task[None]] = set()

    def write(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return

        async def send() -> None:
            try:
                await self.index.index_events(rows)
            except Exception as exc:  # the store has them; analytics may lag
                log.warning("event_mirror_failed", error=type(exc).__name__)

        task = asyncio.create_task(send())
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def delete_visitor(self, tenant_id: UUID, visitor_hash: str) -> None:
        try:
            await self.index.delete_visitor_events(tenant_id, visitor_hash)
        except Exception as exc:  # the store copy is gone; the index copy ages out with event retention
            log.warning("event_index_erasure_failed", error=type(exc).__name__)

    async def purge(self, before: datetime) -> None:
        try:
            await self.index.purge_events(before)
        except Exception as exc:  # retried by the next run of the job
            log.warning("event_index_purge_failed", error=type(exc).__name__)

    async def drain(self) -> None:
        """Wait for mirrored writes in flight (tests, shutdown)."""
        if self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)
