"""The audit ledger over HTTP: page through it, verify it, sign a checkpoint, fetch public keys."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, get, post
from litestar.params import FromQuery, QueryParameter

from api.auth import requires
from api.deps import Caller, Rt
from api.schemas import PublicKeys
from archive import ledger, signing
from archive.errors import FieldError, MalformedBody
from archive.ledger import Checkpoint, LedgerRecord, VerifyReport
from archive.limits import MAX_LEDGER_SEQ, date_errors
from archive.search.service import reveal_queries

# The console's audit page pages the ledger with the same bound.
MAX_SEQ = MAX_LEDGER_SEQ
_AWARE = Annotated[datetime, msgspec.Meta(tz=True)]


def _not_rfc3339(request: Request[Any, Any, Any]) -> list[FieldError]:
    """``from``/``to`` as sent, read strictly: Litestar reads a query datetime leniently, so
    ``from=1700000000`` (or ``-1``, ``0.5``) was taken as seconds since 1970 and a time without
    an offset as UTC, and the filter silently covered another range."""
    found = []
    for name in ("from", "to"):
        raw = request.query_params.get(name)
        if raw is None:
            continue
        try:
            msgspec.convert(raw, _AWARE)
        except msgspec.ValidationError:
            found.append(FieldError(name, "an RFC 3339 date-time with an offset, e.g. 2026-11-01T00:00:00Z"))
    return found


class AuditController(Controller):
    path = "/v1/audit"
    tags = ["audit"]

    @get("/", guards=[requires("compliance", "admin")], summary="Ledger entries, oldest first, with filters")
    async def list_entries(
        self,
        request: Request[Any, Any, Any],
        rt: Rt,
        principal: Caller,
        actor: FromQuery[str | None] = None,
        action: FromQuery[str | None] = None,
        subject: FromQuery[str | None] = None,
        from_: Annotated[datetime | None, QueryParameter(name="from")] = None,
        to: FromQuery[datetime | None] = None,
        after_seq: Annotated[int, QueryParameter(ge=0, le=MAX_LEDGER_SEQ, description="cursor: the last seq you have")] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> list[LedgerRecord]:
        if errors := _not_rfc3339(request):
            raise MalformedBody("a date filter is not an RFC 3339 date-time", errors)
        if errors := date_errors("", from_=from_, to=to):
            raise MalformedBody("a date filter is out of range", errors)
        records = await ledger.list_entries(
            principal.tenant_id, actor=actor, action=action, subject=subject,
            since=from_, until=to, after_seq=after_seq, limit=limit,
        )
        return reveal_queries(await rt.tenants.context(principal.tenant_id), records)

    @get("/verify", guards=[requires("compliance", "admin")], summary="Recompute the chain; names the first bad seq")
    async def verify(self, rt: Rt, principal: Caller) -> VerifyReport:
        return await ledger.verify(rt, principal.tenant_id)

    @post("/checkpoints", guards=[requires("admin", "compliance")], summary="Sign the current chain head now", status_code=200)
    async def checkpoint(self, rt: Rt, principal: Caller) -> Checkpoint | None:
        return await ledger.checkpoint(rt, principal.tenant_id)

    @get("/public-key", exclude_from_auth=True, summary="Every Ed25519 key that ever signed checkpoints and exports, with validity periods")
    async def public_key(self, rt: Rt) -> PublicKeys:
        history = await rt.signing.history()
        return PublicKeys(
            algorithm=signing.ALGORITHM, active_version=await rt.signing.active_version(),
            keys={k.version: k.public_key for k in history}, history=history,
        )
