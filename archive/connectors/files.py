"""Fetching attachment files for the archive, when a connector is told to (``files.fetch``).

Every message keeps its attachments' metadata whatever this says. Fetching the files themselves
is opt-in per connector, because it sends Parley to URLs a platform put in a payload: only hosts
on the connector's allowlist are contacted (every redirect hop is checked again: Chatwoot's file
links redirect to its storage bucket, so both hosts are listed), a bare host means HTTPS only
(``http://host:port`` must be listed as such), each file is cut off at ``max_bytes`` and
``timeout_seconds``. A file that cannot be fetched leaves its attachment as metadata only and is
counted by reason in the connector's stats; it never stops the conversation from being archived.

Credentials are sent only where the platform needs them for its own files: Rocket.Chat's
protected uploads on the connector's own ``api_url`` host, with an API token ``<user id>:<token>``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Annotated
from urllib.parse import urljoin, urlsplit

import httpx
import msgspec

from archive.attachments import FetchedFile
from archive.connectors.push import ConnectorConfig
from archive.errors import FieldError
from archive.models import ConversationIn

MAX_REDIRECTS = 3
DEFAULT_MAX_BYTES = 10 * 1024 * 1024


class FileSettings(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """Per-connector attachment fetching (docs/connectors.md, *Attachment files*)."""

    fetch: bool = False
    # Hosts files may be fetched from: "files.example.com" (HTTPS), ".example.com" (any
    # subdomain, HTTPS), or an origin "http://10.0.0.5:3000" (exactly that, for plain HTTP).
    hosts: Annotated[list[Annotated[str, msgspec.Meta(min_length=1, max_length=255)]], msgspec.Meta(max_length=50)] = []
    max_bytes: Annotated[int, msgspec.Meta(ge=1, le=100 * 1024 * 1024)] = DEFAULT_MAX_BYTES
    timeout_seconds: Annotated[float, msgspec.Meta(gt=0, le=120)] = 10.0


def check(settings: FileSettings) -> list[FieldError]:
    if settings.fetch and not settings.hosts:
        return [FieldError("files.hosts", "list the hosts files may be fetched from (the platform's file or storage host)")]
    errors = []
    for i, host in enumerate(settings.hosts):
        if "://" in host:
            parts = urlsplit(host)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
                errors.append(FieldError(f"files.hosts[{i}]", "an origin is scheme://host[:port], e.g. http://10.0.0.5:3000"))
        elif "/" in host or ":" in host or " " in host:
            errors.append(FieldError(f"files.hosts[{i}]", "a host name such as files.example.com or .example.com"))
    return errors


def allowed(url: str, hosts: list[str]) -> bool:
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not host or parts.scheme not in ("http", "https"):
        return False
    origin = f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}"
    for entry in hosts:
        entry = entry.lower().rstrip("/")
        if "://" in entry:
            if origin == entry:
                return True
        elif parts.scheme == "https" and parts.port in (None, 443):
            if host == entry or (entry.startswith(".") and host.endswith(entry)):
                return True
    return False


def fetchable(conversation: ConversationIn) -> bool:
    return any(a.url for m in conversation.messages for a in m.attachments)


def _absolute(url: str, config: ConnectorConfig) -> str | None:
    if urlsplit(url).scheme:
        return url
    return urljoin(config.api_url.rstrip("/") + "/", url.lstrip("/")) if config.api_url else None


def _credentials(url: str, config: ConnectorConfig) -> dict[str, str]:
    if config.platform != "rocketchat" or not config.api_url or not config.api_token or ":" not in config.api_token:
        return {}
    if urlsplit(url).netloc != urlsplit(config.api_url).netloc:
        return {}
    user, _, token = config.api_token.partition(":")
    return {"X-User-Id": user, "X-Auth-Token": token}


class _Skip(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


async def _download(client: httpx.AsyncClient, url: str, config: ConnectorConfig, settings: FileSettings) -> bytes:
    for _ in range(MAX_REDIRECTS + 1):
        if not allowed(url, settings.hosts):
            raise _Skip("not_allowed")
        try:
            async with client.stream("GET", url, headers=_credentials(url, config), timeout=settings.timeout_seconds) as response:
                if response.is_redirect and response.headers.get("location"):
                    url = urljoin(url, response.headers["location"])
                    continue
                if response.status_code != 200:
                    raise _Skip("unavailable")
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > settings.max_bytes:
                    raise _Skip("too_large")
                data = bytearray()
                async for chunk in response.aiter_bytes():
                    data += chunk
                    if len(data) > settings.max_bytes:
                        raise _Skip("too_large")
                return bytes(data)
        except httpx.TimeoutException:
            raise _Skip("timeout") from None
        except httpx.HTTPError:
            raise _Skip("unreachable") from None
    raise _Skip("redirected")


async def fetch_files(
    conversation: ConversationIn, config: ConnectorConfig, settings: FileSettings, client: httpx.AsyncClient
) -> tuple[ConversationIn, list[FetchedFile], Counter[str]]:
    """Fetch every attachment with a URL the settings allow; returns the conversation with each
    fetched attachment's ``sha256`` and ``size`` filled in, the files, and outcomes by reason
    (``stored``, ``not_allowed``, ``too_large``, ``timeout``, ``unreachable``, ``unavailable``,
    ``redirected``, ``checksum_mismatch``)."""
    outcomes: Counter[str] = Counter()
    files: dict[str, FetchedFile] = {}
    by_url: dict[str, tuple[str, int] | None] = {}
    messages = []
    for message in conversation.messages:
        attachments = []
        for attachment in message.attachments:
            url = _absolute(attachment.url, config) if attachment.url else None
            if url is None:
                attachments.append(attachment)
                continue
            if url not in by_url:
                by_url[url] = None
                try:
                    data = await _download(client, url, config, settings)
                except _Skip as skip:
                    outcomes[skip.reason] += 1
                else:
                    digest = hashlib.sha256(data).hexdigest()
                    if attachment.sha256 and attachment.sha256 != digest:
                        outcomes["checksum_mismatch"] += 1
                    else:
                        by_url[url] = (digest, len(data))
                        files[digest] = FetchedFile(sha256=digest, data=data)
                        outcomes["stored"] += 1
            found = by_url[url]
            attachments.append(msgspec.structs.replace(attachment, sha256=found[0], size=found[1]) if found else attachment)
        messages.append(msgspec.structs.replace(message, attachments=attachments) if message.attachments else message)
    return msgspec.structs.replace(conversation, messages=messages), list(files.values()), outcomes
