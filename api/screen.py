"""Requests are screened before anything decodes them: URL and header size, body UTF-8 and JSON
nesting (archive.limits).

Litestar decodes a handler's ``data`` with msgspec, which raises ``UnicodeDecodeError`` on invalid
UTF-8 and ``RecursionError`` on deep nesting — both were 500s. This app-level ``before_request``
hook runs after routing and guards and before the body is decoded; the body it reads is cached by
Litestar, so the handler reads the same bytes without a second receive.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException
from litestar.types import ASGIApp, Receive, Scope, Send

from archive.errors import InvalidInput
from archive.limits import MAX_HEADER_BYTES, MAX_URL_BYTES, check_json_document
from archive.validation import MAX_REPORTED, decode_json, problems

_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    # The snippet posts JSON as text/plain (a "simple" CORS request); no type is read as JSON too.
    return media in ("", "application/json", "text/plain") or media.endswith("+json")


_NUL = "the request contains a NUL character ({}); no field of Parley accepts one — remove it"


def _is_form(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == "application/x-www-form-urlencoded"


async def screen_body(request: Request[Any, Any, Any]) -> None:
    if request.method not in _WITH_BODY:
        return
    content_type = request.headers.get("content-type", "")
    if _is_form(content_type):
        # PostgreSQL cannot hold NUL in text: a form field with one was a 500 there (console forms).
        if b"%00" in (await request.body()).lower():
            raise HTTPException(status_code=400, detail=_NUL.format("%00"))
        return
    if not _is_json(content_type):
        return
    body = await request.body()
    if body:
        check_json_document(body)  # NUL inside JSON strings: refused per field by the types (archive/limits.py)
        _check_types(request, body)


def _check_types(request: Request[Any, Any, Any], body: bytes) -> None:
    """A typed body (``data: JSONBody[SomeStruct]``) with every field of the JSON type it is
    declared as. Litestar converts ``data`` leniently (``strict=False``, which query strings
    need), so ``"size": "5"``, ``"dry_run": 0`` and ``"filters": {"to": 0}`` (read as
    1970-01-01) were accepted; the domain's own bodies (ingest, rules, capacity) are strict.
    """
    field = request.route_handler.parsed_data_field
    if field is None or not isinstance(field.annotation, type) or not issubclass(field.annotation, msgspec.Struct):
        return
    raw = decode_json(body)  # not JSON: 400 naming ``$`` (Litestar's own answer named nothing)
    if found := problems(raw, field.annotation):
        raise InvalidInput("the request body is invalid; nothing was changed", found[:MAX_REPORTED])


class RequestLineLimits:
    """414 and 431 as problem+json for URLs and headers over ``archive.limits``' bounds.

    Granian answers requests beyond its own, larger limits (a URL of tens of kilobytes, more
    than 100 headers, a request line that is not HTTP) itself, with an empty body, before the
    app sees them (docs/errors.md); these bounds sit below that so every request the app does
    see gets a problem document.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            if len(scope.get("raw_path") or scope["path"].encode()) + len(scope.get("query_string", b"")) > MAX_URL_BYTES:
                raise HTTPException(status_code=414, detail=f"the URL is longer than {MAX_URL_BYTES} bytes; send large criteria in a body")
            if sum(len(name) + len(value) for name, value in scope["headers"]) > MAX_HEADER_BYTES:
                raise HTTPException(status_code=431, detail=f"the request headers are larger than {MAX_HEADER_BYTES} bytes together")
            query = scope.get("query_string", b"")
            if b"%00" in query or b"\x00" in query:
                raise HTTPException(status_code=400, detail=_NUL.format("%00"))
        await self.app(scope, receive, send)
