"""Errors a caller can cause, in domain terms. The API maps them to RFC 9457 problems."""

from __future__ import annotations

import re

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
    title = "Request cannot be processed"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(DomainError):
    title = "Not found"


class Conflict(DomainError):
    title = "Conflict"

    def __init__(self, detail: str, **extra: object) -> None:
        super().__init__(detail)
        self.extra = extra


class InvalidInput(DomainError):
    title = "Invalid input"

    def __init__(self, detail: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.errors = errors or []


class MalformedBody(InvalidInput):
    """The body is not JSON (or not UTF-8) at all: 400 rather than 422."""

    title = "Malformed request body"


class TooLarge(InvalidInput):
    title = "Request too large"


class Forbidden(DomainError):
    title = "Forbidden"
