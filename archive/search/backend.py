"""The one small interface both index backends implement, and what flows through it."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol
from uuid import UUID

import msgspec

from archive.search.plan import Plan


class IndexDoc(msgspec.Struct, frozen=True):
    """One conversation as the index sees it: clear filter fields and keyed tokens, no text."""

    conversation_id: UUID
    tenant_id: UUID
    site: str
    channel: str
    language: str
    started_at: datetime
    agent_ids: list[str]
    tags: list[str]
    visitor_hash: str
    columns: dict[str, str]  # t_<sender> / f_<sender> → space-separated tokens (t_: in order)
    # Term token → its typo neighbourhood (deletion tokens), for every term that has one.
    typos: dict[str, tuple[str, ...]] = {}


class ScoredId(msgspec.Struct, frozen=True):
    conversation_id: UUID
    score: float
    started_at: datetime


class SearchPage(msgspec.Struct):
    total: int
    hits: list[ScoredId]
    facets: dict[str, dict[str, int]]  # the plan's facets: value → count ("day": YYYY-MM-DD → count)


class BackendStatus(msgspec.Struct):
    ok: bool
    detail: str = ""


class CompactReport(msgspec.Struct):
    """What ``compact`` did: the index's size on disk before and after, and how long it took."""

    bytes_before: int
    bytes_after: int
    seconds: float
    detail: str = ""


class SearchBackend(Protocol):
    name: str

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def status(self) -> BackendStatus: ...

    async def index(self, docs: list[IndexDoc]) -> None: ...

    async def delete(self, tenant_id: UUID, conversation_ids: list[UUID]) -> None: ...

    async def refresh(self) -> None: ...

    async def reset(self) -> None:
        """Drop everything (used by ``parley index rebuild``)."""

    async def search(self, plan: Plan) -> SearchPage: ...

    async def compaction_due(self) -> bool:
        """True when so much was written since the last ``compact`` that the drain should run it
        once the outbox is empty (a bulk load drained). Backends that merge on their own: False."""

    async def compact(self) -> CompactReport:
        """Merge the index's segments and give the space they freed back to the file system
        (the nightly ``search.compact`` job, ``parley index compact``). Searches go on meanwhile."""

