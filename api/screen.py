"""Bodies are screened before anything decodes them: UTF-8 and JSON nesting (archive.limits).

Litestar decodes a handler's ``data`` with msgspec, which raises ``UnicodeDecodeError`` on invalid
UTF-8 and ``RecursionError`` on deep nesting — both were 500s. This app-level ``before_request``
hook runs after routing and guards and before the body is decoded; the body it reads is cached by
Litestar, so the handler reads the same bytes without a second receive.
"""

from __future__ import annotations

from typing import Any

from litestar import Request

from archive.limits import check_json_document

_WITH_BODY = frozenset({"POST", "PUT", "PATCH"})


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    # The snippet posts JSON as text/plain (a "simple" CORS request); no type is read as JSON too.
    return media in ("", "application/json", "text/plain") or media.endswith("+json")


async def screen_body(request: Request[Any, Any, Any]) -> None:
    if request.method not in _WITH_BODY or not _is_json(request.headers.get("content-type", "")):
        return
    body = await request.body()
    if body:
        check_json_document(body)
