"""Calling a platform's API for fetch-back: timeouts, size limits and errors that say what to fix.

One ``httpx.AsyncClient`` per process is enough (the caller owns it: ``api_client()``); each call
here sets its own headers. Every failure becomes ``FetchFailed`` with a reason code for the stats
and a detail naming the platform, the status and what to change; the token never appears in it.
Redirects are not followed: an API that redirects is misconfigured, and following one would send
the token to another host.
"""

from __future__ import annotations

from typing import Any

import httpx
import msgspec

from archive.connectors.errors import FetchFailed, FetchNotConfigured
from archive.connectors.push import ConnectorConfig

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
# A conversation's API answer larger than this is refused rather than read into memory.
MAX_RESPONSE_BYTES = 32 * 1024 * 1024


def api_client(timeout: httpx.Timeout = TIMEOUT) -> httpx.AsyncClient:
    return httpx.AsyncClient(timeout=timeout, follow_redirects=False, headers={"Accept": "application/json"})


def base_url(config: ConnectorConfig, default: str | None, platform: str) -> str:
    url = (config.api_url or default or "").rstrip("/")
    if not url:
        raise FetchNotConfigured(f"the {platform} connector needs --api-url to fetch conversations back")
    return url


def token(config: ConnectorConfig, platform: str) -> str:
    if not config.api_token:
        raise FetchNotConfigured(f"the {platform} connector needs --api-token to fetch conversations back")
    return config.api_token


async def call(
    client: httpx.AsyncClient,
    platform: str,
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    params: dict[str, Any] | None = None,
    json: Any = None,
) -> Any:
    """One API call; returns the decoded JSON body or raises FetchFailed."""
    try:
        async with client.stream(method, url, headers=headers, params=params, json=json) as response:
            body = await _read_capped(response, platform)
    except httpx.TimeoutException:
        raise FetchFailed("timeout", f"the {platform} API did not answer in time ({_where(url)})") from None
    except httpx.HTTPError as exc:
        raise FetchFailed(
            "unreachable", f"the {platform} API could not be reached at {_where(url)}: {type(exc).__name__}"
        ) from None
    status = response.status_code
    if status in (401, 403):
        raise FetchFailed(
            "unauthorized", f"the {platform} API refused the API token ({status}); check the connector's --api-token"
        )
    if status == 404:
        raise FetchFailed("not_found", f"the {platform} API has no such conversation ({_where(url)} answered 404)")
    if status == 429:
        raise FetchFailed("rate_limited", f"the {platform} API is rate limiting requests (429); the platform will retry the push")
    if 300 <= status < 400:
        raise FetchFailed("redirected", f"the {platform} API redirected ({status}); set --api-url to the final address")
    if status >= 400:
        raise FetchFailed("upstream_error", f"the {platform} API answered {status} for {_where(url)}")
    try:
        return msgspec.json.decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError):
        raise FetchFailed(
            "bad_response", f"the {platform} API answered with something that is not JSON ({_where(url)})"
        ) from None


async def _read_capped(response: httpx.Response, platform: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise FetchFailed("too_large", f"the {platform} API answer is larger than {MAX_RESPONSE_BYTES // (1024 * 1024)} MiB")
        chunks.append(chunk)
    return b"".join(chunks)


def _where(url: str) -> str:
    """The URL without query string: ids are fine in an error, query parameters may not be."""
    return url.split("?", 1)[0]
