"""RFC 9457 problem details for every error the API returns.

Every problem carries ``type``, ``title``, ``status``, ``detail``, ``instance`` (the path) and the
``request_id`` to quote to an operator; input problems add ``errors``: one ``{path, message}``
per offending field, every offending field at once, named as the client names it (``from``,
``filters.colour``, ``conversations[0].site``). Server faults are logged with their traceback
and answered without it.
"""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from archive.errors import DomainError, FieldError, field_path
from archive.validation import decode_json
from archive.validation import problems as field_problems

log = structlog.get_logger(__name__)

MEDIA_TYPE = "application/problem+json"

STATUS_TYPES: dict[int, str] = {
    400: "malformed-request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    413: "too-large",
    414: "uri-too-long",
    415: "unsupported-media-type",
    422: "invalid-input",
    429: "rate-limited",
    431: "headers-too-large",
    500: "server-error",
    503: "unavailable",
}
TITLES: dict[int, str] = {
    400: "Malformed request", 401: "Authentication required", 403: "Forbidden", 404: "Not found",
    405: "Method not allowed", 409: "Conflict", 413: "Request too large", 414: "URL too long", 415: "Unsupported media type",
    431: "Request headers too large",
    422: "Invalid input", 429: "Too many requests", 500: "Server error", 503: "Service unavailable",
}


def status_of(exc: BaseException) -> int:
    """The status the client receives for an exception (also what the access log records)."""
    if isinstance(exc, DomainError):
        return exc.status
    if isinstance(exc, HTTPException):
        return exc.status_code
    return HTTP_500_INTERNAL_SERVER_ERROR


def problem(request: Request[Any, Any, Any], status: int, title: str, detail: str, **extra: Any) -> Response[dict[str, Any]]:
    state = request.scope.setdefault("state", {})
    # Routing errors (404/405) happen before app middleware runs, so the id may not exist yet;
    # errors raised in middleware are answered outside it: either way the header is set here.
    request_id = state.setdefault("request_id", uuid.uuid4().hex)
    body: dict[str, Any] = {
        "type": f"/problems/{STATUS_TYPES.get(status, 'error')}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "request_id": request_id,
    }
    body.update({k: v for k, v in extra.items() if v is not None})
    return Response(body, status_code=status, media_type=MEDIA_TYPE, headers={"x-request-id": request_id})


def _errors(items: list[FieldError]) -> list[dict[str, str]]:
    return [{"path": e.path, "message": e.message} for e in items]


def domain_error_handler(request: Request[Any, Any, Any], exc: DomainError) -> Response[dict[str, Any]]:
    extra: dict[str, Any] = dict(exc.extra)
    if exc.errors:
        extra["errors"] = _errors(exc.errors)
    return problem(request, exc.status, exc.title, exc.detail, **extra)


def _public_names(request: Request[Any, Any, Any]) -> dict[str, str]:
    """Handler parameter name → the name the client sends (``from_`` → ``from``)."""
    names: dict[str, str] = {}
    for name, definition in request.route_handler.parsed_fn_signature.parameters.items():
        kwarg = definition.kwarg_definition
        alias = (getattr(kwarg, "name", None) or getattr(kwarg, "query", None) or getattr(kwarg, "header", None)
                 or getattr(kwarg, "cookie", None))
        names[name] = alias or name
    return names


def _body_problems(request: Request[Any, Any, Any]) -> list[FieldError] | None:
    """Every offending field of a body Litestar refused, by re-reading it against the handler's
    own body type (Litestar reports only the first)."""
    field = request.route_handler.parsed_data_field
    body = request._connection_state.body  # cached by Litestar when it decoded the body
    if field is None or not isinstance(body, bytes):
        return None
    try:
        raw = decode_json(body)
    except DomainError as exc:
        return exc.errors
    return field_problems(raw, field.annotation) or None


def _parameter_problems(request: Request[Any, Any, Any], extra: Any) -> tuple[list[FieldError], bool]:
    """Litestar's validation ``extra`` as public field errors; also says whether any concerns
    the body (those are 422, like the domain's own; parameters are 400)."""
    if not isinstance(extra, list):
        return [], False
    names = _public_names(request)
    found, body = [], False
    for item in extra:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message", ""))
        source = str(getattr(item.get("source"), "value", item.get("source") or ""))
        key = str(item.get("key") or "$")
        if source in ("query", "path", "header", "cookie"):
            found.append(FieldError(names.get(key, key), message))
        else:
            body = True
            found.append(FieldError(field_path(key.removeprefix("data").lstrip(".") or "$", message), message))
    return found, body


def http_error_handler(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    from api.console.errors import is_console_path, unrouted  # the console's pages import this module

    if is_console_path(request.url.path) and not isinstance(exc, ValidationException):
        return unrouted(request, exc)  # a person's browser: a page, not problem+json
    status = exc.status_code
    detail = exc.detail
    errors: list[FieldError] = []
    if isinstance(exc, ValidationException):
        errors, about_body = _parameter_problems(request, exc.extra)
        if about_body:
            errors = _body_problems(request) or errors
            return problem(request, 422, "Invalid input", "the request body is invalid; nothing was changed", errors=_errors(errors))
        detail = "a path or query parameter is invalid"
    if status == 413:
        detail = "request body is larger than the configured maximum (PARLEY_MAX_BODY_BYTES)"
    response = problem(request, status, TITLES.get(status, exc.detail), detail, errors=_errors(errors) or None)
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
