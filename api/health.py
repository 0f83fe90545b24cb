"""Liveness and readiness: what a load balancer and an operator ask first."""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, get

from api.schemas import Check, Readiness
from archive import db


@get("/healthz", exclude_from_auth=True, tags=["operations"], summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@get("/readyz", exclude_from_auth=True, tags=["operations"], summary="Database and search backend are reachable")
async def readyz(request: Request[Any, Any, Any]) -> Response[Readiness]:
    checks: dict[str, Check] = {}
    try:
        await db.ping()
        checks["database"] = Check(ok=True, detail=db.engine().engine_type)
    except Exception as exc:  # readiness reports failures instead of raising them
        checks["database"] = Check(ok=False, detail=type(exc).__name__)
    for name, probe in request.app.state.readiness_probes.items():
        try:
            checks[name] = await probe()
        except Exception as exc:
            checks[name] = Check(ok=False, detail=type(exc).__name__)
    ready = all(c.ok for c in checks.values())
    return Response(Readiness(ready=ready, checks=checks), status_code=200 if ready else 503)
