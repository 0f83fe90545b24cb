"""Request and response shapes of the HTTP API that are not domain types."""

from __future__ import annotations

from typing import Annotated

import msgspec

from archive.signing import PublishedKey


class CreateKeyIn(msgspec.Struct, forbid_unknown_fields=True):
    role: str
    name: Annotated[str, msgspec.Meta(max_length=200)] = ""
    # The scope of a reviewer key: its sites (required) and channels (optional; none: all).
    sites: Annotated[list[str], msgspec.Meta(max_length=100)] = []
    channels: Annotated[list[str], msgspec.Meta(max_length=100)] = []


class CreateSiteIn(msgspec.Struct, forbid_unknown_fields=True):
    name: str
    allowed_origins: Annotated[list[str], msgspec.Meta(max_length=50)] = []


class UpdateSiteIn(msgspec.Struct, forbid_unknown_fields=True):
    allowed_origins: Annotated[list[str], msgspec.Meta(max_length=50)]


class WhoAmI(msgspec.Struct):
    tenant: str
    role: str
    key_prefix: str


class Check(msgspec.Struct):
    ok: bool
    detail: str = ""


class Readiness(msgspec.Struct):
    ready: bool
    checks: dict[str, Check]


class PublicKeys(msgspec.Struct):
    algorithm: str
    active_version: int
    # Every signing key that ever signed, by version (hex raw Ed25519 public keys).
    keys: dict[int, str]
    # The same keys with their origin and validity periods, oldest first.
    history: list[PublishedKey]
