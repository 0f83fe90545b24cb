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
from api.console.security import PATH, SECURITY_HEADERS, SIGN_IN_PATH
from api.problems import TITLES
from archive.errors import DomainError, FieldError

log = structlog.get_logger(__name__)


def _error_page(request: Request[Any, Any, Any], status: int, detail: str, errors: list[FieldError] | None = None,
                headers: dict[str, str] | None = None) -> Template:
    template = "error_fragment.html" if is_htmx(request) else "error.html"
    if is_htmx(request):
        # Into the element the request meant to replace, not over it: a pane swapped by
        # outerHTML (the review item, "#item") keeps its id, so the rows and keys that load the
        # next item into it still find it. An action may name a better place (HX-Retarget).
        headers = {"HX-Reswap": "innerHTML", **(headers or {})}
    return page(request, template, status=status, title=TITLES.get(status, "Error"), status_code=status, detail=detail, errors=errors or [],
                headers=headers)


def is_console_path(path: str) -> bool:
    return path == PATH or path.startswith(PATH + "/")


def unrouted(request: Request[Any, Any, Any], exc: HTTPException) -> Template:
    """An address under /console that no console route answers (404), or not with this method
    (405: a form's address opened as a page). Routing fails before the console's router and its
    middleware run, so the app's handler sends these here: a person gets a page with the
    console's headers, not the API's problem+json."""
    if exc.status_code == 405:
        detail = "this address takes a form, it is not a page; go back to the console and try again"
    elif exc.status_code == 404:
        detail = "there is no console page at this address; check the link"
    else:
        detail = str(exc.detail)
    headers = {name.decode(): value.decode() for name, value in SECURITY_HEADERS}
    headers["cache-control"] = "no-store"
    if exc.headers:
        headers.update(exc.headers)  # Allow, for a 405
    return _error_page(request, exc.status_code, detail, headers=headers)


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
