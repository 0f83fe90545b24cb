"""Connectors: real chat platforms' pushes, turned into Parley conversations.

A connector is one platform account pushing to ``POST /v1/connectors/{id}/events``. The route
(api/) does four things with a push, in this order, each a function here:

1. ``authenticate(push, config, now)`` — the platform's own scheme; raises SignatureRejected (401).
2. ``delivery_key(push, config)`` — the key a retried delivery repeats; store it, answer a repeat
   as a duplicate without parsing again.
3. ``parse(push, config)`` — Finished / Pending / Close / Ignored (see outcomes.py).
4. for a Close: ``complete(close, pending, config, client)`` — fetch back if the platform needs
   it, merge with the thread's pending drafts, and return the ConversationIn to ingest.

Nothing here touches the database, the index or the keys: what to store, and how (the secret and
pending drafts encrypted), is the caller's. docs/connectors.md documents each platform.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import httpx

from archive.connectors import chatwoot, crisp, generic, intercom, livechat, rocketchat
from archive.connectors.adapter import Adapter
from archive.connectors.api import api_client
from archive.connectors.assemble import assemble
from archive.connectors.errors import FetchFailed, FetchNotConfigured, PayloadInvalid, PayloadMalformed, SignatureRejected
from archive.connectors.outcomes import Close, Draft, Finished, Ignored, Outcome, Pending
from archive.connectors.push import ConnectorConfig, PlatformName, Push
from archive.errors import FieldError
from archive.models import ConversationIn

ADAPTERS: dict[str, Adapter] = {
    a.platform: a
    for a in (rocketchat.ADAPTER, chatwoot.ADAPTER, intercom.ADAPTER, crisp.ADAPTER, livechat.ADAPTER, generic.ADAPTER)
}
PLATFORMS: tuple[str, ...] = tuple(ADAPTERS)

__all__ = [
    "ADAPTERS",
    "PLATFORMS",
    "Close",
    "ConnectorConfig",
    "Draft",
    "FetchFailed",
    "FetchNotConfigured",
    "Finished",
    "Ignored",
    "Outcome",
    "PayloadInvalid",
    "PayloadMalformed",
    "Pending",
    "PlatformName",
    "Push",
    "SignatureRejected",
    "api_client",
    "authenticate",
    "check_config",
    "complete",
    "delivery_key",
    "parse",
]


def adapter(platform: str) -> Adapter:
    try:
        return ADAPTERS[platform]
    except KeyError:
        raise PayloadInvalid(
            f"unknown platform {platform!r}", [FieldError("platform", f"one of: {', '.join(PLATFORMS)}")]
        ) from None


def check_config(config: ConnectorConfig) -> list[FieldError]:
    """Problems with a connector's settings, to refuse at ``connectors create`` rather than at the
    first close (Intercom, Crisp and LiveChat cannot work without an API token)."""
    chosen = adapter(config.platform)
    return chosen.check_config(config) if chosen.check_config else []


def authenticate(push: Push, config: ConnectorConfig, now: datetime) -> None:
    adapter(config.platform).verify(push, config, now)


def delivery_key(push: Push, config: ConnectorConfig) -> str:
    return adapter(config.platform).delivery_key(push, config)


def parse(push: Push, config: ConnectorConfig) -> Outcome:
    return adapter(config.platform).parse(push, config)


async def complete(
    close: Close, pending: Sequence[Draft], config: ConnectorConfig, client: httpx.AsyncClient | None = None
) -> ConversationIn:
    """The finished conversation for a close: the thread's pending drafts (oldest first), the
    close's own draft, then — when the close names a fetch — the platform API's answer."""
    drafts = [*pending, close.draft]
    if close.fetch is not None:
        fetch = adapter(config.platform).fetch
        if fetch is None:
            raise FetchNotConfigured(f"{config.platform} connectors cannot fetch conversations back")
        if client is None:
            async with api_client() as own:
                drafts.append(await fetch(close.fetch, config, own))
        else:
            drafts.append(await fetch(close.fetch, config, client))
    return assemble(drafts, config)
