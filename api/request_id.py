"""Request ids: accepted from ``X-Request-ID`` when sane, generated otherwise, echoed back,
bound to every log line of the request, and written in one access-log line per request."""

from __future__ import annotations

import os
import re
import time
from typing import Any

import structlog
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from api.problems import status_of
from config.log import access_log

_SANE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
VISITOR_PATHS = "/v1/visitors/"


def logged_path(path: str) -> str:
    """The path as the access log writes it: a visitor id is the site's own identifier for a
    person (an e-mail address on some sites), kept elsewhere only keyed or sealed, so its path
    segment is left out."""
    if not path.startswith(VISITOR_PATHS):
        return path
    _, slash, rest = path[len(VISITOR_PATHS):].partition("/")
    return f"{VISITOR_PATHS}<visitor>{slash}{rest}"


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.access_line = access_log()  # the logging configured when the app is built

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if incoming and _SANE.match(incoming) else os.urandom(16).hex()
        state: dict[str, Any] = scope.setdefault("state", {})
        state["request_id"] = request_id
        started = time.perf_counter()
        status = 500  # if nothing is sent and nothing raised, the server failed

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                if not any(name == b"x-request-id" for name, _ in headers):
                    message["headers"] = [*headers, (b"x-request-id", request_id.encode())]
            await send(message)

        # Only request_id is bound here, and every request rebinds it; no reset needed (saves µs/request).
        structlog.contextvars.bind_contextvars(request_id=request_id)
        try:
            await self.app(scope, receive, send_with_id)
        except BaseException as exc:
            # Raised here, answered by Litestar's exception handling outside this middleware:
            # log the status the client will get, not a blanket 500.
            if status == 500:
                status = status_of(exc)
            raise
        finally:
            self.access_line(
                request_id, scope["method"], logged_path(scope["path"]), status, round((time.perf_counter() - started) * 1000, 2),
                state.get("key_prefix"),
            )
