"""The baseline: a bare Litestar handler with no middleware, auth or logging."""

from typing import Any

import msgspec
from litestar import Litestar, Request, get, post


@get("/ping")
async def ping() -> dict[str, str]:
    return {"status": "ok"}


@post("/echo", status_code=200)
async def echo(request: Request[Any, Any, Any]) -> dict[str, int]:
    body = msgspec.json.decode(await request.body())
    return {"accepted": len(body.get("events", []))}


def create() -> Litestar:
    return Litestar([ping, echo], openapi_config=None, logging_config=None)
