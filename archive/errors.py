"""Errors a caller can cause, in domain terms.

One hierarchy: every class knows the status it stands for (as Litestar's
``HTTPException.status_code`` does), so the API maps an error with one attribute read instead of
an ``isinstance`` ladder, and the CLI prints the same ``detail`` an HTTP client would see.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

import msgspec

_NAMED_FIELD = re.compile(r"^Object (?:missing required|contains unknown) field `(?P<field>[^`]+)`$")


def field_path(parent: str, message: str) -> str:
    """msgspec reports a missing or unknown field at its parent object; point at the field itself."""
    named = _NAMED_FIELD.match(message)
    if named is None:
        return parent
    return f"{parent}.{named.group('field')}" if parent and parent != "$" else named.group("field")


class FieldError(msgspec.Struct, frozen=True):
    """One offending field: ``path`` is a JSON-path-like location such as ``messages[3].at``."""

    path: str
    message: str


class DomainError(Exception):
    status: ClassVar[int] = 400
    title: ClassVar[str] = "Request cannot be processed"

    def __init__(self, detail: str, errors: list[FieldError] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors: list[FieldError] = errors or []
        # Extra members of the problem document (e.g. ``existing_id`` on a conflict).
        self.extra: dict[str, Any] = extra


class NotFound(DomainError):
    status = 404
    title = "Not found"


class Conflict(DomainError):
    status = 409
    title = "Conflict"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail, **extra)


class InvalidInput(DomainError):
    status = 422
    title = "Invalid input"


class MalformedBody(InvalidInput):
    """The body is not JSON (or not UTF-8) at all, or a path parameter is malformed: 400, not 422."""

    status = 400
    title = "Malformed request"


class TooLarge(InvalidInput):
    status = 413
    title = "Request too large"


class Unauthenticated(DomainError):
    status = 401
    title = "Authentication required"


class Forbidden(DomainError):
    status = 403
    title = "Forbidden"


class Unavailable(DomainError):
    """A dependency (the key service, the index) cannot serve this right now; retrying later helps."""

    status = 503
    title = "Service unavailable"
