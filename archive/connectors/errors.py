"""What a push or a fetch-back can fail with, in domain terms.

Each class carries ``reason``: a short, stable code the connector stats count by ("rejected by
reason"), and ``status`` (as every DomainError): the HTTP status the route answers with. A platform retries a
delivery that got a 5xx, so an unreachable platform API is a 502 (try again later), never a 4xx.
"""

from __future__ import annotations

from archive.errors import DomainError, FieldError, InvalidInput, MalformedBody


class SignatureRejected(DomainError):
    """The push is unsigned, wrongly signed or stale: 401, and nothing else is looked at."""

    title = "Push not authenticated"
    status = 401

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class PayloadMalformed(MalformedBody):
    """The body is not the JSON the platform sends at all (400)."""

    status = 400
    reason = "malformed"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, [FieldError("$", detail)])


class PayloadInvalid(InvalidInput):
    """The body is JSON but not in the platform's shape, or makes no valid conversation (422)."""

    status = 422
    reason = "invalid"


class FetchFailed(DomainError):
    """The platform's API could not give the conversation back (502: the platform should retry)."""

    title = "Platform API unavailable"
    status = 502

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class FetchNotConfigured(DomainError):
    """A close needs the platform's API, but the connector has no API URL or token (422)."""

    title = "Connector needs API access"
    status = 422
    reason = "api_not_configured"
