"""Tenants, API keys, sites, and who is calling.

API keys look like ``prl_<prefix>_<secret>``. The 8-character prefix is stored in clear so keys can
be told apart in lists and logs; the key itself is stored only as a SHA-256 hash (keys are 256-bit
random secrets, so a slow password hash would add latency without adding safety) and compared in
constant time. The secret is shown once, when the key is created.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import string
from collections import OrderedDict
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Annotated, Any, Generic, Literal, TypeVar
from urllib.parse import urlsplit
from uuid import UUID, uuid4

import msgspec

from archive import ledger
from archive.analysis import Analyzer
from archive.clock import Clock, is_time_zone
from archive.crypto import TenantCrypto
from archive.db import json_column, write_transaction
from archive.errors import Conflict, FieldError, InvalidInput, NotFound
from archive.keyring import Keys
from archive.redaction import RedactionOptions, Redactor, options_from
from archive.signals import KEY_REVOKED, KEYRING_CHANGED, TENANT_CHANGED, Signals
from archive.tables import ApiKey, Site, Tenant

if TYPE_CHECKING:
    from archive.runtime import Runtime

K = TypeVar("K")
V = TypeVar("V")

Role = Literal["admin", "compliance", "marketing", "ingest", "reviewer", "supervisor"]
# The one list of roles (the CLI's choices and the API's validation read it). A reviewer works the
# supervision review queue and is scoped to sites (and optionally channels). A supervisor reads
# support reports (archive/metrics) and nothing else — no conversation content.
ROLES: tuple[str, ...] = ("admin", "compliance", "marketing", "ingest", "reviewer", "supervisor")
SCOPED_ROLES: tuple[str, ...] = ("reviewer",)

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_SITE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
KEY_PATTERN = re.compile(r"^prl_([a-z0-9]{8})_([A-Za-z0-9_-]{43})$")


NationalIdKind = Literal["no", "se", "dk", "fi", "si", "ru"]


class TenantSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """Per-tenant options. Card and IBAN redaction cannot be turned off; national identity numbers
    are redacted for the countries listed (Norway's by default). See docs/redaction.md."""

    card_mask: Literal["partial", "full"] = "partial"
    redact_email: bool = True
    redact_phone: bool = True
    national_ids: list[NationalIdKind] = msgspec.field(default_factory=lambda: ["no"])
    # ISO 3166 regions whose national phone formats are always recognised, on top of the
    # conversation's language (international formats always are). None: no explicit regions —
    # the conversation's language decides; default_languages (then Norway) only when it is unknown.
    phone_regions: list[Annotated[str, msgspec.Meta(pattern="^[A-Za-z]{2}$")]] | None = None
    default_languages: list[str] = msgspec.field(default_factory=lambda: ["en"])
    # Typo-tolerant search (refund~, and a retry of a search without hits): indexes each word's
    # deletion neighbourhood; see docs/search.md for the size cost and what it reveals.
    typo_tolerance: bool = True
    # Support reports (docs/kpi.md): the zone their days and hours are in (IANA), the first-reply
    # target the SLA share counts against, and how many days a return about the same topic makes
    # a conversation not resolved at first contact.
    time_zone: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] = "UTC"
    sla_first_reply_seconds: Annotated[int, msgspec.Meta(ge=1, le=86_400)] = 60
    fcr_days: Annotated[int, msgspec.Meta(ge=1, le=90)] = 7


class TenantSettingsChange(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """``PATCH /v1/admin/settings``: the fields given replace theirs, the others keep their value
    (``PUT`` replaces the whole settings, so a field left out returns to its default)."""

    card_mask: Literal["partial", "full"] | msgspec.UnsetType = msgspec.UNSET
    redact_email: bool | msgspec.UnsetType = msgspec.UNSET
    redact_phone: bool | msgspec.UnsetType = msgspec.UNSET
    national_ids: list[NationalIdKind] | msgspec.UnsetType = msgspec.UNSET
    phone_regions: list[Annotated[str, msgspec.Meta(pattern="^[A-Za-z]{2}$")]] | None | msgspec.UnsetType = msgspec.UNSET
    default_languages: list[str] | msgspec.UnsetType = msgspec.UNSET
    typo_tolerance: bool | msgspec.UnsetType = msgspec.UNSET
    time_zone: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | msgspec.UnsetType = msgspec.UNSET
    sla_first_reply_seconds: Annotated[int, msgspec.Meta(ge=1, le=86_400)] | msgspec.UnsetType = msgspec.UNSET
    fcr_days: Annotated[int, msgspec.Meta(ge=1, le=90)] | msgspec.UnsetType = msgspec.UNSET

    def applied_to(self, current: TenantSettings) -> TenantSettings:
        given = {name: value for name in self.__struct_fields__ if (value := getattr(self, name)) is not msgspec.UNSET}
        return msgspec.structs.replace(current, **given)


# A setting added to TenantSettings must be added above too, or PATCH could not change it.
assert TenantSettingsChange.__struct_fields__ == TenantSettings.__struct_fields__, "TenantSettingsChange lists every setting"


class Principal(msgspec.Struct, frozen=True):
    key_id: UUID
    key_prefix: str
    tenant_id: UUID
    tenant_slug: str
    role: str
    # A scoped key (role reviewer) sees only what belongs to these sites and, when any are
    # listed, these channels; empty means the whole tenant.
    sites: tuple[str, ...] = ()
    channels: tuple[str, ...] = ()

    @property
    def actor(self) -> str:
        return f"key:{self.key_prefix}"

    def sees(self, site: str, channel: str) -> bool:
        """Whether something of ``site`` and ``channel`` is within this key's scope."""
        if not self.sites:
            return True
        return site in self.sites and (not self.channels or channel in self.channels)


class TenantOut(msgspec.Struct):
    id: UUID
    slug: str
    name: str
    created_at: datetime


class ApiKeyOut(msgspec.Struct):
    id: UUID
    prefix: str
    role: str
    name: str
    tenant: str
    created_at: datetime
    revoked_at: datetime | None = None
    sites: list[str] = []
    channels: list[str] = []


class CreatedKey(msgspec.Struct):
    id: UUID
    key: str
    role: str
    tenant: str
    prefix: str
    name: str
    sites: list[str] = []
    channels: list[str] = []


class SiteOut(msgspec.Struct):
    id: UUID
    name: str
    site_key: str
    allowed_origins: list[str]
    tenant: str
    created_at: datetime
    embed: str = ""


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


# --- tenants -------------------------------------------------------------------------------------


async def create_tenant(rt: Runtime, slug: str, name: str | None = None, actor: str = "cli") -> TenantOut:
    if not _SLUG.match(slug):
        raise InvalidInput(
            "tenant slug must be 1-63 lowercase letters, digits or '-', starting with a letter or digit",
            [FieldError("slug", "use lowercase letters, digits and '-'")],
        )
    tenant_id = uuid4()
    wrapped, version = TenantCrypto.new_tenant_secret(rt.keyring, tenant_id)
    async with write_transaction():
        if await Tenant.exists().where(Tenant.slug == slug):
            raise Conflict(f"tenant {slug!r} already exists", slug=slug)
        row = Tenant(id=tenant_id, slug=slug, name=name or slug, wrapped_secret=wrapped, secret_version=version)
        await row.save()
        await ledger.init_chain(tenant_id)
        await ledger.append(tenant_id, ledger.Entry(actor=actor, action="tenant.create", subject=slug))
    return TenantOut(id=tenant_id, slug=slug, name=name or slug, created_at=row.created_at)


async def tenant_by_slug(slug: str) -> dict[str, Any]:
    row = await Tenant.select().where(Tenant.slug == slug).first()
    if row is None:
        raise NotFound(f"no tenant {slug!r}; create it with: parley tenants create {slug}")
    return row


async def list_tenants() -> list[TenantOut]:
    rows = await Tenant.select(Tenant.id, Tenant.slug, Tenant.name, Tenant.created_at).order_by(Tenant.slug)
    return [msgspec.convert(r, TenantOut) for r in rows]


class TenantContext:
    """A tenant's settings and crypto, cached per process (keys are derived once)."""

    def __init__(self, tenant_id: UUID, slug: str, settings: TenantSettings, crypto: TenantCrypto) -> None:
        self.tenant_id = tenant_id
        self.slug = slug
        self.settings = settings
        self.crypto = crypto
        self._analyzer: Analyzer | None = None
        self._redaction: RedactionOptions | None = None
        # (monotonic time, languages) the search expands query words into; see search.languages.
        self.languages: tuple[float, list[str]] | None = None

    @property
    def redaction(self) -> RedactionOptions:
        """The tenant's redaction options, resolved once per context."""
        if self._redaction is None:
            self._redaction = options_from(self.settings)
        return self._redaction

    def redacted(self, text: str) -> str:
        """Free text staff type (a case's name and description, a hold's reason, a reveal's
        reason) is stored in clear for everyone with access to read: a card number or an e-mail
        address pasted into it from a transcript is masked as ingest would mask it."""
        return Redactor(self.redaction).redact(text) if text else text

    @property
    def analyzer(self) -> Analyzer:
        """The tenant's blind-index analyzer (its token cache is worth keeping between requests)."""
        if self._analyzer is None:
            self._analyzer = Analyzer(self.crypto.index_key, typo_tolerance=self.settings.typo_tolerance)
        return self._analyzer


class _Lru(Generic[K, V]):
    """A bounded mapping that forgets the least recently used entry: every process cache is one."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def pop(self, key: K) -> None:
        self._items.pop(key, None)

    def values(self) -> list[V]:
        return list(self._items.values())

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


class TenantDirectory:
    """What a process caches about tenants: contexts (settings, keys) and verified API keys.

    Caches are bounded, and other processes invalidate them through ``archive.signals``: a key
    revoked or a setting changed anywhere is seen here at once; the TTLs are only a backstop.
    Unknown keys are never cached, so presenting random keys cannot grow memory.
    """

    CONTEXTS = 10_000
    KEYS = 10_000

    def __init__(self, keys: Keys, signals: Signals, clock: Clock, auth_ttl: float) -> None:
        self.keys = keys
        self.signals = signals
        self.clock = clock
        self.auth_ttl = auth_ttl
        self._contexts: _Lru[UUID, TenantContext] = _Lru(self.CONTEXTS)
        self._auth: _Lru[str, tuple[float, str, Principal]] = _Lru(self.KEYS)
        signals.subscribe(KEY_REVOKED, self._on_key_revoked)
        signals.subscribe(TENANT_CHANGED, self._on_tenant_changed)
        signals.subscribe(KEYRING_CHANGED, lambda _arg: self._contexts.clear())
        signals.on_reset(self.clear)

    async def context(self, tenant_id: UUID) -> TenantContext:
        self.signals.poll()
        ctx = self._contexts.get(tenant_id)
        if ctx is not None:
            return ctx
        row = await Tenant.select().where(Tenant.id == tenant_id).first()
        if row is None:
            raise NotFound("tenant not found")
        ctx = TenantContext(
            tenant_id=tenant_id,
            slug=row["slug"],
            settings=msgspec.convert(json_column(row["settings"]), TenantSettings),
            crypto=TenantCrypto(self.keys, tenant_id, row["wrapped_secret"], row["secret_version"]),
        )
        self._contexts.put(tenant_id, ctx)
        return ctx

    async def authenticate(self, key: str) -> Principal | None:
        """The principal for a presented key, or None when it is malformed, unknown or revoked."""
        match = KEY_PATTERN.match(key)
        if match is None:
            return None
        prefix = match.group(1)
        presented = _hash_key(key)
        self.signals.poll()
        if self.auth_ttl > 0:
            cached = self._auth.get(prefix)
            if cached is not None and self.clock.monotonic() - cached[0] <= self.auth_ttl:
                return cached[2] if hmac.compare_digest(cached[1], presented) else None
        row = (
            await ApiKey.select(
                ApiKey.id, ApiKey.role, ApiKey.secret_sha256, ApiKey.revoked_at, ApiKey.tenant,
                ApiKey.tenant.slug.as_alias("tenant_slug"), ApiKey.sites, ApiKey.channels,
            )
            .where(ApiKey.prefix == prefix)
            .first()
        )
        if row is None or row["revoked_at"] is not None:
            return None
        if not hmac.compare_digest(row["secret_sha256"], presented):
            return None
        principal = Principal(
            key_id=row["id"], key_prefix=prefix, tenant_id=row["tenant"], tenant_slug=row["tenant_slug"], role=row["role"],
            sites=tuple(json_column(row["sites"])), channels=tuple(json_column(row["channels"])),
        )
        if self.auth_ttl > 0:
            self._auth.put(prefix, (self.clock.monotonic(), row["secret_sha256"], principal))
        return principal

    def _on_key_revoked(self, arg: str) -> None:
        try:
            self.evict_key(UUID(arg))
        except ValueError:
            self._auth.clear()

    def _on_tenant_changed(self, arg: str) -> None:
        try:
            self._contexts.pop(UUID(arg))
        except ValueError:
            self._contexts.clear()

    def evict_key(self, key_id: UUID) -> None:
        for prefix, (_, _, principal) in list(self._auth._items.items()):
            if principal.key_id == key_id:
                self._auth.pop(prefix)

    def invalidate(self, tenant_id: UUID) -> None:
        self._contexts.pop(tenant_id)

    def clear(self) -> None:
        self._contexts.clear()
        self._auth.clear()


async def tenant_context(rt: Runtime, tenant_id: UUID) -> TenantContext:
    return await rt.tenants.context(tenant_id)


async def get_tenant_settings(tenant_id: UUID) -> TenantSettings:
    row = await Tenant.select(Tenant.settings).where(Tenant.id == tenant_id).first()
    if row is None:
        raise NotFound("tenant not found")
    return msgspec.convert(json_column(row["settings"]), TenantSettings)


def _check_time_zone(name: str) -> None:
    if not is_time_zone(name):
        raise InvalidInput(
            f"unknown time zone {name!r}; nothing was changed",
            [FieldError("time_zone", "an IANA time zone name such as Europe/Oslo or UTC")],
        )


async def put_tenant_settings(rt: Runtime, tenant_id: UUID, new: TenantSettings) -> TenantSettings:
    try:
        options_from(new)
    except (ValueError, msgspec.ValidationError) as exc:
        raise InvalidInput("the redaction settings are invalid; nothing was changed", [FieldError("phone_regions", str(exc))]) from None
    _check_time_zone(new.time_zone)
    await Tenant.update({Tenant.settings: msgspec.json.encode(new).decode()}).where(Tenant.id == tenant_id)
    # Every process (other replicas included) reloads the tenant before its next use.
    rt.tenants.invalidate(tenant_id)
    await rt.signals.announce(TENANT_CHANGED, str(tenant_id))
    return new


# --- API keys ------------------------------------------------------------------------------------


def _hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}; roles are {', '.join(ROLES)}", [FieldError("role", f"one of {', '.join(ROLES)}")])


_SCOPE_VALUE = {"sites": re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"), "channels": re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")}


def _check_scope(role: str, sites: list[str], channels: list[str]) -> None:
    """Reviewer keys name their sites (channels are optional); other roles are tenant-wide."""
    errors: list[FieldError] = []
    if role in SCOPED_ROLES and not sites:
        errors.append(FieldError("sites", f"a {role} key is scoped to one or more sites, e.g. [\"shop\"]"))
    if role not in SCOPED_ROLES:
        errors.extend(FieldError(name, f"only {', '.join(SCOPED_ROLES)} keys are scoped; a {role} key sees the whole tenant")
                      for name, values in (("sites", sites), ("channels", channels)) if values)
    for name, values in (("sites", sites), ("channels", channels)):
        errors.extend(FieldError(f"{name}[{i}]", f"{v!r} is not a {name[:-1]} name") for i, v in enumerate(values) if not _SCOPE_VALUE[name].match(v))
    if errors:
        raise InvalidInput("the key's scope is invalid", errors)


async def create_api_key(
    tenant_id: UUID, role: str, name: str = "", sites: list[str] | None = None, channels: list[str] | None = None
) -> CreatedKey:
    _check_role(role)
    sites, channels = sorted(set(sites or [])), sorted(set(channels or []))
    _check_scope(role, sites, channels)
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(8))
    key = f"prl_{prefix}_{secrets.token_urlsafe(32)}"
    key_id = uuid4()
    tenant = await Tenant.select(Tenant.slug).where(Tenant.id == tenant_id).first()
    if tenant is None:
        raise NotFound("tenant not found")
    await ApiKey.insert(
        ApiKey(id=key_id, tenant=tenant_id, role=role, name=name, prefix=prefix, secret_sha256=_hash_key(key),
               sites=json.dumps(sites), channels=json.dumps(channels))
    )
    return CreatedKey(id=key_id, key=key, role=role, tenant=tenant["slug"], prefix=prefix, name=name, sites=sites, channels=channels)


async def list_api_keys(tenant_id: UUID) -> list[ApiKeyOut]:
    rows = (
        await ApiKey.select(
            ApiKey.id, ApiKey.prefix, ApiKey.role, ApiKey.name, ApiKey.tenant.slug.as_alias("tenant"),
            ApiKey.created_at, ApiKey.revoked_at, ApiKey.sites, ApiKey.channels,
        )
        .where(ApiKey.tenant == tenant_id)
        .order_by(ApiKey.created_at)
    )
    return [msgspec.convert({**r, "sites": json_column(r["sites"]), "channels": json_column(r["channels"])}, ApiKeyOut) for r in rows]


async def revoke_api_key(rt: Runtime, key_id: UUID, tenant_id: UUID | None = None) -> ApiKeyOut:
    """Revoke a key. With ``tenant_id`` the key must belong to that tenant (else: not found)."""
    query = ApiKey.select(ApiKey.id, ApiKey.tenant, ApiKey.revoked_at).where(ApiKey.id == key_id)
    if tenant_id is not None:
        query = query.where(ApiKey.tenant == tenant_id)
    row = await query.first()
    if row is None:
        raise NotFound(f"no API key {key_id}")
    if row["revoked_at"] is None:
        await ApiKey.update({ApiKey.revoked_at: rt.clock.now()}).where(ApiKey.id == key_id)
    rt.tenants.evict_key(key_id)
    await rt.signals.announce(KEY_REVOKED, str(key_id))
    keys = [k for k in await list_api_keys(row["tenant"]) if k.id == key_id]
    return keys[0]


# --- sites ---------------------------------------------------------------------------------------


def normalise_origin(origin: str, path: str) -> str:
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") or parts.query:
        raise InvalidInput(
            f"{origin!r} is not an origin",
            [FieldError(path, "an origin is scheme://host[:port] with no path, e.g. https://shop.example.com")],
        )
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname.lower()}{port}"


def embed_tag(public_url: str, site_key: str) -> str:
    return f'<script async src="{public_url}/v1/snippet.js" data-site="{site_key}"></script>'


async def create_site(tenant_id: UUID, name: str, origins: list[str]) -> SiteOut:
    if not _SITE_NAME.match(name):
        raise InvalidInput(
            f"site name {name!r} is not allowed",
            [FieldError("name", "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit")],
        )
    clean = [normalise_origin(o, f"allowed_origins[{i}]") for i, o in enumerate(origins)]
    site_key = "ps_" + secrets.token_urlsafe(18)
    site_id = uuid4()
    async with write_transaction():
        if await Site.exists().where((Site.tenant == tenant_id) & (Site.name == name)):
            raise Conflict(f"site {name!r} already exists in this tenant", name=name)
        row = Site(id=site_id, tenant=tenant_id, name=name, site_key=site_key, allowed_origins=json.dumps(clean))
        await row.save()
    return await get_site(tenant_id, site_id)


def _site_out(row: dict[str, Any]) -> SiteOut:
    row = {**row, "allowed_origins": json_column(row["allowed_origins"])}
    return msgspec.convert(row, SiteOut)


_SITE_COLUMNS = (Site.id, Site.name, Site.site_key, Site.allowed_origins, Site.created_at)


async def get_site(tenant_id: UUID, site_id: UUID) -> SiteOut:
    row = (
        await Site.select(*_SITE_COLUMNS, Site.tenant.slug.as_alias("tenant"))
        .where((Site.id == site_id) & (Site.tenant == tenant_id))
        .first()
    )
    if row is None:
        raise NotFound(f"no site {site_id}")
    return _site_out(row)


async def list_sites(tenant_id: UUID) -> list[SiteOut]:
    rows = (
        await Site.select(*_SITE_COLUMNS, Site.tenant.slug.as_alias("tenant"))
        .where(Site.tenant == tenant_id)
        .order_by(Site.name)
    )
    return [_site_out(r) for r in rows]


async def update_site_origins(tenant_id: UUID, site_id: UUID, origins: list[str]) -> SiteOut:
    await get_site(tenant_id, site_id)
    clean = [normalise_origin(o, f"allowed_origins[{i}]") for i, o in enumerate(origins)]
    await Site.update({Site.allowed_origins: json.dumps(clean)}).where(Site.id == site_id)
    return await get_site(tenant_id, site_id)


async def delete_site(tenant_id: UUID, site_id: UUID) -> None:
    await get_site(tenant_id, site_id)
    await Site.delete().where((Site.id == site_id) & (Site.tenant == tenant_id))
