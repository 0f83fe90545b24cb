"""One delivery from a platform, and the connector settings it is checked against."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

import msgspec

from archive.connectors.errors import PayloadInvalid, PayloadMalformed
from archive.errors import FieldError

PlatformName = Literal["rocketchat", "chatwoot", "intercom", "crisp", "livechat", "generic"]

# Pushes signed with a timestamp are refused when older (or newer) than this.
DEFAULT_TOLERANCE_SECONDS = 300


class ConnectorConfig(msgspec.Struct, frozen=True, kw_only=True):
    """What a connector needs to check and read one platform's pushes.

    ``secret`` is what the platform signs with (or sends as a token): it must be kept in a form
    that can be used again, so the caller stores it encrypted, never in clear. ``api_url`` and
    ``api_token`` are for fetch-back (see docs/connectors.md for what each platform expects).
    ``site`` and ``channel`` override what the adapter derives from the payload.
    """

    platform: PlatformName
    secret: Annotated[str, msgspec.Meta(min_length=1)]
    api_url: str | None = None
    api_token: str | None = None
    site: str | None = None
    channel: str | None = None
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS

    @property
    def fetches_back(self) -> bool:
        """API access is configured: closes read the platform's whole conversation back."""
        return bool(self.api_url and self.api_token)

    def __repr__(self) -> str:  # secrets stay out of logs and tracebacks
        return f"ConnectorConfig(platform={self.platform!r}, api_url={self.api_url!r}, site={self.site!r})"


class Push(msgspec.Struct, frozen=True):
    """The raw body exactly as received (signatures cover bytes), the request headers, and the
    webhook URL's query parameters (Crisp's Website Hooks are authenticated by a key there)."""

    body: bytes
    headers: dict[str, str]
    query: dict[str, str] = {}

    @classmethod
    def of(
        cls, body: bytes, headers: Mapping[str, str] | Iterable[tuple[str, str]], query: Mapping[str, str] | None = None
    ) -> Push:
        items = headers.items() if isinstance(headers, Mapping) else headers
        return cls(body, {name.lower(): value for name, value in items}, dict(query or {}))

    def header(self, name: str) -> str | None:
        value = self.headers.get(name.lower())
        return value.strip() if value is not None else None

    def json(self) -> Any:
        try:
            return msgspec.json.decode(self.body)
        except (msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise PayloadMalformed(f"the body is not valid UTF-8 JSON: {exc}") from None

    def json_object(self) -> dict[str, Any]:
        value = self.json()
        if not isinstance(value, dict):
            raise PayloadInvalid("expected a JSON object", [FieldError("$", "expected a JSON object")])
        return value


def keyed_digest(config: ConnectorConfig, material: bytes) -> str:
    """A dedup key derived from content, keyed so that a stored key reveals nothing of the content."""
    return hmac.new(config.secret.encode(), material, hashlib.sha256).hexdigest()
