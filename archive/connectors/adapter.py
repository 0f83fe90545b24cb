"""The shape of one platform adapter, and helpers the adapters share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import httpx

from archive.connectors.errors import FetchFailed, PayloadInvalid
from archive.connectors.outcomes import Draft, FetchRef, Outcome
from archive.connectors.push import ConnectorConfig, Push, keyed_digest
from archive.errors import FieldError, InvalidInput
from archive.validation import convert

Verify = Callable[[Push, ConnectorConfig, datetime], None]
DeliveryKey = Callable[[Push, ConnectorConfig], str]
Parse = Callable[[Push, ConnectorConfig], Outcome]
Fetch = Callable[[FetchRef, ConnectorConfig, httpx.AsyncClient], Awaitable[Draft]]
CheckConfig = Callable[[ConnectorConfig], list[FieldError]]
S = TypeVar("S")
# A JSON object whose fields an adapter reads one by one.
Obj = dict[str, Any]
# A value an adapter compares or uses as a key (an id, a type): any JSON scalar, never a container.
Scalar = str | int | float | bool | None


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
    # The one HTTP status the platform counts as delivered, when it accepts no other 2xx
    # (Rocket.Chat: webhooks.ts ``sendRequest`` succeeds only on 200). None: the documented
    # 200/201/202 by outcome.
    delivered_status: int | None = None


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


def shaped(raw: Any, shape: type[S], what: str) -> S:
    """``raw`` decoded as ``shape``: a Struct naming the JSON types the adapter relies on (an
    object where it reads fields, a list where it iterates). A push of another shape is a 422
    naming every offending field by its path in the push, never an exception halfway through
    reading it."""
    try:
        return convert(raw, shape, f"{what} is not in the platform's shape; nothing was stored")
    except InvalidInput as exc:
        raise PayloadInvalid(exc.detail, exc.errors) from None


def api_shaped(raw: Any, shape: type[S], platform: str) -> S:
    """``shaped`` for a platform API's answer: a wrong shape is the API's fault, so FetchFailed
    (``bad_response``, retried like any bad answer), naming the fields but never their values."""
    try:
        return convert(raw, shape)
    except InvalidInput as exc:
        where = "; ".join(f"{e.path}: {e.message}" for e in exc.errors[:5])
        raise FetchFailed("bad_response", f"the {platform} API answered in an unexpected shape ({where})") from None
