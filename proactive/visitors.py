"""What the site's own server tells the engine about a visitor: attributes (plan, logged-in state,
CRM segment) and triggers.

Both arrive as events of the visitor with no tab (``SERVER_TAB``): they go through the journal
like the browser's, so they are durable when answered, replayed by backtests, and erased with the
visitor. Attributes the server set are *trusted*: ``parley.identify`` in the browser cannot
overwrite them. Only attributes the site declares (site setting ``attributes``: name → str,
number or bool) are accepted, with values of the declared type.

Who may call: an API key of the ingest role of the site's tenant, or a request signed with the
site's secret (``X-Parley-Site``: the site key, ``X-Parley-Timestamp``: epoch seconds,
``X-Parley-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">``), so a browser holding
only the public site key cannot forge them. The secret is derived from the tenant's identity key
and the site id — never stored — and shown to admins by ``GET /v1/admin/sites/{id}/secret``.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

import msgspec

from archive.errors import FieldError, Forbidden, InvalidInput, NotFound, Unauthenticated
from archive.redaction import Redactor
from archive.runtime import Runtime
from archive.tables import Site
from archive.tenancy import Principal, tenant_context
from archive.validation import convert, decode_json
from proactive import store
from proactive.events import as_stored, valid_id
from proactive.model import SiteConfig
from proactive.rules import finite_number
from proactive.service import site_config
from proactive.state import SERVER_TAB

SIGNATURE_TOLERANCE = 300.0  # seconds a signed request stays valid (replays after that are refused)
MAX_TEXT = 256
Scalar = str | float | bool | None


class AttributesIn(msgspec.Struct, forbid_unknown_fields=True):
    site: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    attributes: Annotated[dict[str, Scalar], msgspec.Meta(min_length=1, max_length=50)]


class ServerEventIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
    type: Literal["trigger", "custom"] = "trigger"
    props: Annotated[dict[str, Scalar], msgspec.Meta(max_length=20)] = {}


class EventsIn(msgspec.Struct, forbid_unknown_fields=True):
    site: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    events: Annotated[list[ServerEventIn], msgspec.Meta(min_length=1, max_length=50)]


class VisitorUpdateOut(msgspec.Struct):
    site: str
    accepted: int
    attributes: dict[str, Any]  # the visitor's attributes after the change


class SiteSecretOut(msgspec.Struct):
    site: str
    secret: str


class BadSignature(Unauthenticated):
    title = "Signature not accepted"


def check_attributes(config: SiteConfig, attributes: dict[str, Any], path: str = "attributes") -> tuple[dict[str, Any], list[FieldError]]:
    """The attributes in canonical form (numbers as floats), or every one that is not declared or
    not of its declared type. ``None`` removes an attribute."""
    errors: list[FieldError] = []
    kept: dict[str, Any] = {}
    for name, value in attributes.items():
        kind = config.attributes.get(name)
        where = f"{path}.{name}"
        if kind is None:
            declared = ", ".join(sorted(config.attributes)) or "none yet"
            errors.append(FieldError(where, f"not declared for this site (declared: {declared}); declare it in the site's engagement settings"))
        elif value is None:
            kept[name] = None
        elif kind == "bool" and isinstance(value, bool):
            kept[name] = value
        elif kind == "number" and finite_number(value) is not None:
            kept[name] = finite_number(value)
        elif kind == "str" and isinstance(value, str) and len(value) <= MAX_TEXT:
            kept[name] = value
        else:
            words = {"bool": "true or false", "number": "a number", "str": f"text of at most {MAX_TEXT} characters"}
            errors.append(FieldError(where, f"must be {words[kind]} (declared {kind}) or null"))
    return kept, errors


def site_secret(identity_hash: Any, site_id: UUID) -> str:
    """A site's signing secret: derived from the tenant's identity key, never stored. (A further
    HMAC of the keyed hash, so it never equals a visitor hash kept in a column.)"""
    seed = identity_hash(f"site-secret|{site_id}")
    return hmac.new(seed.encode(), b"parley site secret v1", hashlib.sha256).hexdigest()


async def secret_for(rt: Runtime, tenant_id: UUID, site_id: UUID) -> SiteSecretOut:
    row = await Site.select(Site.id, Site.name).where((Site.id == site_id) & (Site.tenant == tenant_id)).first()
    if row is None:
        raise NotFound(f"no site {site_id}")
    ctx = await tenant_context(rt, tenant_id)
    return SiteSecretOut(row["name"], site_secret(ctx.crypto.identity_hash, row["id"]))


async def signed_site(rt: Runtime, site_key: str | None, timestamp: str | None, signature: str | None, body: bytes) -> dict[str, Any]:
    """The site a signed request speaks for, or 401."""
    if not site_key or not timestamp or not signature:
        raise BadSignature("send an ingest API key, or sign the request: X-Parley-Site, X-Parley-Timestamp, X-Parley-Signature")
    site = await rt.engagement.sites.by_key(site_key)
    if site is None:
        raise BadSignature("unknown site key")
    try:
        sent_at = float(timestamp)
    except ValueError:
        raise BadSignature("X-Parley-Timestamp is epoch seconds") from None
    if not abs(rt.clock.time() - sent_at) <= SIGNATURE_TOLERANCE:
        raise BadSignature(f"X-Parley-Timestamp is more than {SIGNATURE_TOLERANCE:g} s away from the server's clock")
    ctx = await tenant_context(rt, site["tenant"])
    secret = site_secret(ctx.crypto.identity_hash, site["id"])
    expected = "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature.strip()):
        raise BadSignature("the signature does not match the body (HMAC-SHA256 of '<timestamp>.<body>' with the site's secret)")
    return site


async def _site_for(rt: Runtime, principal: Principal | None, signed: dict[str, Any] | None, name: str) -> dict[str, Any]:
    if signed is not None:
        if signed["name"] != name:
            raise InvalidInput("the body names another site than the signature", [FieldError("site", f"the signed site is {signed['name']!r}")])
        return signed
    assert principal is not None
    if principal.role != "ingest":
        raise Forbidden("only an ingest API key (or a request signed with the site's secret) may do this")
    site = await Site.select(Site.id, Site.tenant, Site.name, Site.settings).where(
        (Site.tenant == principal.tenant_id) & (Site.name == name)).first()
    if site is None:
        raise InvalidInput(f"no site named {name!r}", [FieldError("site", f"no site {name!r}")])
    return site


async def _apply(rt: Runtime, site: dict[str, Any], visitor_id: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    engagement = rt.engagement
    engagement.require_live()
    ctx = await tenant_context(rt, site["tenant"])
    visitor_hash = ctx.crypto.identity_hash(visitor_id)
    state = await engagement.visitor(site["tenant"], site["id"], visitor_hash)
    assert state is not None
    now = engagement.engine.clock()
    redactor = Redactor(ctx.redaction)  # attribute values and event names are redacted like the browser's
    stored = [{**as_stored({"url": None, "title": None, "referrer": None, **e, "at_epoch": now}, redactor), "tab": SERVER_TAB}
              for e in events]
    engagement.engine.apply_events(state, stored)
    engagement.journal.add(store.Batch(site["tenant"], site["id"], visitor_hash, SERVER_TAB, SERVER_TAB, uuid4().hex[:16], now, stored,
                                       store.seal_payloads(ctx.crypto, visitor_hash, stored)))
    await engagement.journal.commit()  # a 2xx means durable
    return dict(state.attributes or {})


def _visitor_id(visitor_id: str) -> None:
    if not valid_id(visitor_id):
        raise InvalidInput("visitor_id is not valid", [FieldError("visitor_id", "1-64 letters, digits, '_' or '-'")])


async def set_attributes(rt: Runtime, principal: Principal | None, signed: dict[str, Any] | None, visitor_id: str, body: bytes) -> VisitorUpdateOut:
    data = convert(decode_json(body), AttributesIn, "the attributes are invalid; nothing was changed")
    _visitor_id(visitor_id)
    site = await _site_for(rt, principal, signed, data.site)
    config = site_config(site["settings"])  # as stored: a site without rules is not in the engine
    attributes, errors = check_attributes(config, data.attributes)
    if errors:
        raise InvalidInput("the attributes are invalid; nothing was changed", errors)
    now_attrs = await _apply(rt, site, visitor_id, [{"type": "identify", "name": None, "props": attributes}])
    return VisitorUpdateOut(data.site, len(attributes), now_attrs)


async def add_events(rt: Runtime, principal: Principal | None, signed: dict[str, Any] | None, visitor_id: str, body: bytes) -> VisitorUpdateOut:
    data = convert(decode_json(body), EventsIn, "the events are invalid; nothing was stored")
    _visitor_id(visitor_id)
    site = await _site_for(rt, principal, signed, data.site)
    events = [{"type": e.type, "name": e.name, "props": dict(e.props)} for e in data.events]
    now_attrs = await _apply(rt, site, visitor_id, events)
    return VisitorUpdateOut(data.site, len(events), now_attrs)
