"""Fixture payloads of each platform (see the README in each folder for the source followed),
and a local HTTP server that answers in a platform's API shape for the fetch-back tests."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from archive.connectors import ConnectorConfig, Push

HERE = Path(__file__).parent


def raw(platform: str, name: str) -> bytes:
    return (HERE / platform / name).read_bytes()


def payload(platform: str, name: str) -> Any:
    return json.loads(raw(platform, name))


def compact(value: Any) -> bytes:
    """A body as platforms serialise JSON: no spaces, UTF-8 as is (JSON.stringify, to_json)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)


def config(platform: str, secret: str = "s3cr3t-for-tests", **extra: Any) -> ConnectorConfig:
    return ConnectorConfig(platform=platform, secret=secret, **extra)  # type: ignore[arg-type]


def push(body: bytes, **headers: str) -> Push:
    return Push.of(body, {name.replace("_", "-"): value for name, value in headers.items()})


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class PlatformApi:
    """A platform's API on 127.0.0.1, started by the test; ``requests`` records what it was asked."""

    def __init__(self) -> None:
        self.app = web.Application(middlewares=[self._record])
        self.requests: list[dict[str, Any]] = []
        self._server: TestServer | None = None

    def route(self, method: str, path: str, handler: Handler) -> None:
        self.app.router.add_route(method, path, handler)

    @web.middleware
    async def _record(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(
            {
                "method": request.method,
                "path": request.path,
                "query": dict(request.query),
                "headers": dict(request.headers),
                "json": json.loads(body) if body else None,
            }
        )
        return await handler(request)

    @property
    def url(self) -> str:
        assert self._server is not None
        return str(self._server.make_url("")).rstrip("/")

    async def __aenter__(self) -> PlatformApi:
        self._server = TestServer(self.app, host="127.0.0.1")
        await self._server.start_server()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        await self._server.close()


def answer(value: Any, status: int = 200) -> web.Response:
    return web.json_response(value, status=status, dumps=lambda v: json.dumps(v, ensure_ascii=False))
