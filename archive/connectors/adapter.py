"""The shape of one platform adapter, and helpers the adapters share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import httpx

from archive.connectors.outcomes import Draft, FetchRef, Outcome
from archive.connectors.push import ConnectorConfig, Push, keyed_digest
from archive.errors import FieldError

Verify = Callable[[Push, ConnectorConfig, datetime], None]
DeliveryKey = Callable[[Push, ConnectorConfig], str]
Parse = Callable[[Push, ConnectorConfig], Outcome]
Fetch = Callable[[FetchRef, ConnectorConfig, httpx.AsyncClient], Awaitable[Draft]]
CheckConfig = Callable[[ConnectorConfig], list[FieldError]]


@dataclass(frozen=True)
class Adapter:
    """``verify`` raises SignatureRejected; ``parse`` raises PayloadMalformed/PayloadInvalid;
    ``fetch`` (platforms with an API) raises FetchFailed/FetchNotConfigured."""

    platform: str
    verify: Verify
    delivery_key: DeliveryKey
    parse: Parse
    fetch: Fetch | None = None
    check_config: CheckConfig | None = None


def body_key(push: Push, config: ConnectorConfig) -> str:
    """For platforms without a delivery id: a retried delivery repeats its body byte for byte."""
    return f"{config.platform}:body:{keyed_digest(config, push.body)}"


def needs_api(config: ConnectorConfig, *, url_required: bool) -> list[FieldError]:
    errors = []
    if url_required and not config.api_url:
        errors.append(FieldError("api_url", f"{config.platform} sends ids only; set the API URL to fetch conversations back"))
    if not config.api_token:
        errors.append(FieldError("api_token", f"{config.platform} sends ids only; set an API token to fetch conversations back"))
    return errors
