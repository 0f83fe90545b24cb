"""Liveness and readiness: what a load balancer and an operator ask first."""

from __future__ import annotations

from litestar import Response, get
from litestar.openapi.datastructures import ResponseSpec

from api.deps import Rt
from api.schemas import Check, Readiness
from archive.search import indexing


async def _database(rt: Rt) -> Check:
    await rt.database.ping()
    return Check(ok=True, detail=rt.database.kind)


async def _search(rt: Rt) -> Check:
    status = await rt.search.status()
    return Check(ok=status.ok, detail=status.detail)


async def _index_lag(rt: Rt) -> Check:
    lag = await indexing.lag(rt)
    # Lag is reported, not failed on: a replica that is behind still serves reads correctly.
    return Check(ok=True, detail=f"{lag.pending} pending, oldest {lag.oldest_seconds}s")


async def _keyring(rt: Rt) -> Check:
    # Not ready when this process cannot unwrap what the store holds (a rotation whose new
    # version this process's keyring lacks): a load balancer then routes around it.
    rt.signals.poll()  # SQLite: a rotation announced by another process (PostgreSQL listens)
    status = await rt.key_check.status()
    return Check(ok=status.ok, detail=status.detail)


PROBES = {"database": _database, "search": _search, "index_lag": _index_lag, "keyring": _keyring}


@get("/healthz", exclude_from_auth=True, tags=["operations"], summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz", exclude_from_auth=True, tags=["operations"], summary="Database, search backend and keyring are usable",
     responses={503: ResponseSpec(Readiness, description="Not ready: the failing checks say why", generate_examples=False)})
async def readyz(rt: Rt) -> Response[Readiness]:
    checks: dict[str, Check] = {}
    for name, probe in PROBES.items():
        try:
            checks[name] = await probe(rt)
        except Exception as exc:  # readiness reports failures instead of raising them
            checks[name] = Check(ok=False, detail=type(exc).__name__)
    ready = all(c.ok for c in checks.values())
    return Response(Readiness(ready=ready, checks=checks), status_code=200 if ready else 503)
