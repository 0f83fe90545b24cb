"""Errors a caller can cause, in domain terms. The API maps them to RFC 9457 problems."""

from __future__ import annotations

import msgspec


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


class TooLarge(InvalidInput):
    title = "Request too large"


class Forbidden(DomainError):
    title = "Forbidden"
