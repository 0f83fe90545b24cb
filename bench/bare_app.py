"""The baseline: a bare Litestar handler with no middleware, auth or logging."""

from litestar import Litestar, get


@get("/ping")
async def ping() -> dict[str, str]:
    return {"status": "ok"}


def create() -> Litestar:
    return Litestar([ping], openapi_config=None, logging_config=None)
