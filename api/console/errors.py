"""Errors on console routes are pages (or, for htmx, fragments), not problem+json.

The same exceptions the API maps to RFC 9457 documents — domain errors, Litestar's HTTP errors —
are rendered here with the same status and detail, in words a person at the page can act on.
"""

from __future__ import annotations

from typing import Any

import structlog
from litestar import Request
from litestar.exceptions import HTTPException, NotAuthorizedException, ValidationException
from litestar.response import Redirect, Template

from api.console.render import is_htmx, page
from api.console.security import SIGN_IN_PATH
from api.problems import TITLES
from archive.errors import DomainError, FieldError

log = structlog.get_logger(__name__)


def _error_page(request: Request[Any, Any, Any], status: int, detail: str, errors: list[FieldError] | None = None) -> Template:
    template = "error_fragment.html" if is_htmx(request) else "error.html"
    return page(request, template, status=status, title=TITLES.get(status, "Error"), status_code=status, detail=detail, errors=errors or [])


def domain_error(request: Request[Any, Any, Any], exc: DomainError) -> Template:
    return _error_page(request, exc.status, exc.detail, exc.errors)


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Template | Redirect:
    if isinstance(exc, NotAuthorizedException):
        return Redirect(SIGN_IN_PATH, status_code=303)
    if isinstance(exc, ValidationException):
        return _error_page(request, 400, "this address is not one the console makes; check the link", [])
    return _error_page(request, exc.status_code, str(exc.detail))


def server_error(request: Request[Any, Any, Any], exc: Exception) -> Template:
    log.error("unhandled_error", path=request.url.path, error_type=type(exc).__name__, exc_info=exc)
    return _error_page(request, 500, "the server failed to show this page; quote the request id to your operator: "
                       + str(request.scope.get("state", {}).get("request_id", "")))


EXCEPTION_HANDLERS: dict[Any, Any] = {
    DomainError: domain_error,
    HTTPException: http_error,
    Exception: server_error,
}
