"""RFC 9457 problem details for every error the API returns.

Every problem carries ``type``, ``title``, ``status``, ``detail``, ``instance`` (the path) and the
``request_id`` to quote to an operator; input problems add ``errors``: one ``{path, message}``
per offending field. Server faults are logged with their traceback and answered without it.
"""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from archive.errors import Conflict, DomainError, Forbidden, InvalidInput, MalformedBody, NotFound, TooLarge, field_path

log = structlog.get_logger(__name__)

MEDIA_TYPE = "application/problem+json"

_STATUS_TYPES: dict[int, str] = {
    400: "malformed-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "too-large",
    415: "unsupported-media-type",
    422: "invalid-input",
    429: "rate-limited",
    500: "server-error",
    503: "unavailable",
}


def problem(request: Request[Any, Any, Any], status: int, title: str, detail: str, **extra: Any) -> Response[dict[str, Any]]:
    state = request.scope.setdefault("state", {})  # type: ignore[typeddict-item]
    # Routing errors (404/405) happen before app middleware runs, so the id may not exist yet.
    fresh_id = "request_id" not in state
    request_id = state.setdefault("request_id", uuid.uuid4().hex)
    body: dict[str, Any] = {
        "type": f"/problems/{_STATUS_TYPES.get(status, 'error')}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "request_id": request_id,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    headers = {"x-request-id": request_id} if fresh_id else None
    return Response(body, status_code=status, media_type=MEDIA_TYPE, headers=headers)


def _domain_status(exc: DomainError) -> int:
    if isinstance(exc, NotFound):
        return 404
    if isinstance(exc, Conflict):
        return 409
    if isinstance(exc, TooLarge):
        return 413
    if isinstance(exc, MalformedBody):
        return 400
    if isinstance(exc, InvalidInput):
        return 422
    if isinstance(exc, Forbidden):
        return 403
    return 400


def domain_error_handler(request: Request[Any, Any, Any], exc: DomainError) -> Response[dict[str, Any]]:
    status = _domain_status(exc)
    extra: dict[str, Any] = {}
    if isinstance(exc, InvalidInput):
        extra["errors"] = [{"path": e.path, "message": e.message} for e in exc.errors]
    if isinstance(exc, Conflict):
        extra.update(exc.extra)
    return problem(request, status, exc.title, exc.detail, **extra)


def _litestar_errors(extra: Any) -> tuple[list[dict[str, str]] | None, bool]:
    """Litestar's validation ``extra`` is a list of {message, key, source}; make it {path, message}.
    Also says whether the errors are about the body (those are 422, like the domain's own)."""
    if not isinstance(extra, list):
        return None, False
    errors, body = [], False
    for item in extra:
        if isinstance(item, dict):
            message = str(item.get("message", ""))
            path = field_path(item.get("key") or "$", message)
            source = str(getattr(item.get("source"), "value", item.get("source") or ""))
            if source in ("query", "path", "header", "cookie"):
                path = f"{source}.{path}"
            else:
                body = True
            errors.append({"path": path, "message": message})
    return errors or None, body


def http_error_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[dict[str, Any]]:
    status = exc.status_code
    errors, about_body = _litestar_errors(exc.extra)
    if status == 400 and about_body and isinstance(exc, ValidationException):
        return problem(request, 422, "Invalid input", "the request body is invalid", errors=errors)
    titles = {400: "Malformed request", 401: "Authentication required", 403: "Forbidden", 404: "Not found",
              405: "Method not allowed", 413: "Request too large", 429: "Too many requests"}
    detail = exc.detail
    if status == 413:
        detail = "request body is larger than the configured maximum (PARLEY_MAX_BODY_BYTES)"
    response = problem(request, status, titles.get(status, exc.detail), detail, errors=errors)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


def server_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[dict[str, Any]]:
    log.error("unhandled_error", path=request.url.path, error_type=type(exc).__name__, exc_info=exc)
    return problem(
        request, HTTP_500_INTERNAL_SERVER_ERROR, "Server error",
        "the server failed to process this request; quote the request_id to your operator",
    )


EXCEPTION_HANDLERS: dict[Any, Any] = {
    DomainError: domain_error_handler,
    HTTPException: http_error_handler,
    Exception: server_error_handler,
}
