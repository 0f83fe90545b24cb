"""The engine's connection to the store and the API: site settings, rules CRUD, intake, capacity,
stats, explanations, backtests, retention and erasure. The live engine itself is ``rt.engagement``
(proactive.runtime)."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import date, datetime, timedelta, timezone
from typing import Annotated, Any, Literal, Mapping
from uuid import UUID, uuid4

import msgspec
import structlog

from archive import db, ledger
from archive.clock import is_time_zone
from archive.db import json_column
from archive.errors import FieldError, Forbidden, InvalidInput, NotFound, Unauthenticated
from archive.redaction import Redactor
from archive.runtime import Runtime
from archive.tables import Site
from archive.tenancy import Principal, tenant_context
from archive.validation import convert, decode_json
from proactive import backtest as backtests
from proactive import funnel, handoff, store
from proactive.engine import WAIT_BUCKETS
from proactive.events import CollectIn, as_stored, check_event, is_bot, utc, valid_id
from proactive.geo import NOWHERE, Location, located
from proactive.model import DeliveredInvitation, GroupCapacity, Invitation, Outcome, RuleEntry, SiteConfig
from proactive.rules import ATTRIBUTE_NAME, Rule, compile_all, compile_rule, load_document, to_yaml, undeclared_attributes
from proactive.runtime import RULES_CHANGED, SITE_CHANGED, VISITOR_ERASED
from proactive.tables import MarketingRule, RuleCounter

log = structlog.get_logger(__name__)

COUNTER_NAMES = ("matched", "sent", "shown", "accepted", "dismissed", "expired", "goals", "waits", "served_after_wait")
SUPPRESSIONS = ("cap", "capacity", "hours", "holdout", "active_chat", "goal_reached", "pacing", "open_invitation", "absent")


# --- sites -----------------------------------------------------------------------------------


async def _site_by_name(tenant_id: UUID, name: str, path: str) -> dict[str, Any]:
    row = await Site.select(Site.id, Site.name, Site.settings).where((Site.tenant == tenant_id) & (Site.name == name)).first()
    if row is None:
        raise InvalidInput(f"no site named {name!r}", [FieldError(path, f"no site {name!r}; create it first (parley sites create)")])
    return row


class SiteEngagementOut(msgspec.Struct, omit_defaults=True):
    """Holidays and declared attributes are shown once a site has some."""

    site: str
    pacing_per_minute: int
    timezone: str
    holidays: list[str] = []
    attributes: dict[str, str] = {}


AttributeName = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
AttributeType = Literal["str", "number", "bool"]
MAX_ATTRIBUTES = 50


class SiteEngagementIn(msgspec.Struct, forbid_unknown_fields=True):
    """What ``PATCH /v1/admin/sites/{id}/engagement`` changes; fields left out stay as they are.
    ``holidays`` and ``attributes`` replace the whole list / map when given."""

    pacing_per_minute: Annotated[int, msgspec.Meta(ge=1, le=10_000)] | None = None
    timezone: Annotated[str, msgspec.Meta(min_length=1, max_length=64)] | None = None
    holidays: Annotated[list[date], msgspec.Meta(max_length=400)] | None = None
    attributes: Annotated[dict[AttributeName, AttributeType], msgspec.Meta(max_length=MAX_ATTRIBUTES)] | None = None


def site_config(settings: Any) -> SiteConfig:
    raw = json_column(settings) or {}
    default = SiteConfig()
    return SiteConfig(pacing_per_minute=int(raw.get("pacing_per_minute") or default.pacing_per_minute),
                      timezone=str(raw.get("timezone") or default.timezone),
                      holidays=frozenset(str(d) for d in raw.get("holidays") or ()),
                      attributes={str(k): str(v) for k, v in (raw.get("attributes") or {}).items()})


async def _site_row(tenant_id: UUID, site_id: UUID) -> dict[str, Any]:
    row = await Site.select(Site.id, Site.name, Site.site_key, Site.settings).where((Site.id == site_id) & (Site.tenant == tenant_id)).first()
    if row is None:
        raise NotFound(f"no site {site_id}")
    return row


async def get_site_engagement(tenant_id: UUID, site_id: UUID) -> SiteEngagementOut:
    row = await _site_row(tenant_id, site_id)
    config = site_config(row["settings"])
    return SiteEngagementOut(row["name"], config.pacing_per_minute, config.timezone, sorted(config.holidays), dict(config.attributes))


def _declaration_errors(raw: Any) -> list[FieldError]:
    """Each bad attribute declaration by its name (msgspec would say ``attributes[...]``)."""
    attributes = raw.get("attributes") if isinstance(raw, dict) else None
    if not isinstance(attributes, dict):
        return []
    errors = []
    for name, kind in attributes.items():
        if not ATTRIBUTE_NAME.match(str(name)):
            errors.append(FieldError(f"attributes.{name}", "a name of 1-40 lowercase letters, digits or '_', starting with a letter"))
        elif kind not in ("str", "number", "bool"):
            errors.append(FieldError(f"attributes.{name}", f"the type is str, number or bool, not {kind!r}"))
    return errors


def parse_site_engagement(raw: Any) -> SiteEngagementIn:
    named = _declaration_errors(raw)
    try:
        data = convert(raw, SiteEngagementIn, "the site settings are invalid; nothing was changed")
    except InvalidInput as exc:
        raise InvalidInput(exc.detail, [*(e for e in exc.errors if not (named and e.path.startswith("attributes["))), *named]) from None
    if data.timezone is not None and not is_time_zone(data.timezone):
        raise InvalidInput("the site settings are invalid; nothing was changed",
                           [FieldError("timezone", "an IANA time zone such as Europe/Oslo")])
    return data


async def update_site_engagement(rt: Runtime, tenant_id: UUID, actor: str, site_id: UUID, data: SiteEngagementIn) -> SiteEngagementOut:
    """Pacing and the calendar-day time zone of one site; the engine applies them at once."""
    async with db.write_transaction():
        row = await _site_row(tenant_id, site_id)
        settings = dict(json_column(row["settings"]) or {})
        if data.attributes is not None:
            await _still_declared(site_id, data.attributes)
        changes = {k: v for k, v in msgspec.to_builtins(data).items() if v is not None}
        settings.update(changes)
        await Site.update({Site.settings: json.dumps(settings)}).where(Site.id == site_id)
        await ledger.append(tenant_id, ledger.Entry(actor=actor, action="site.engagement", subject=row["name"], details=changes))
    rt.engagement.sites.forget(row["site_key"])
    await load_site_rules(rt, site_id)
    await rt.signals.announce(SITE_CHANGED, str(site_id))
    return await get_site_engagement(tenant_id, site_id)


async def _still_declared(site_id: UUID, attributes: Mapping[str, str]) -> None:
    """A declaration the site's rules still read may not be dropped (or retyped so they cannot
    match): the rules would silently stop holding."""
    errors = []
    for entry in await _site_entries(site_id):
        for problem in undeclared_attributes(entry.rule, attributes):
            name = next(n for p, n, _, _ in entry.rule.attribute_reads if problem.path.startswith(p.removesuffix(".field")))
            errors.append(FieldError(f"attributes.{name}", f"rule {entry.rule.name!r} reads visitor.attributes.{name} "
                                                            f"({problem.path}: {problem.message}); change or delete the rule first"))
    if errors:
        raise InvalidInput("the site's rules read attributes this change would drop or retype; nothing was changed", errors)


# --- rules -----------------------------------------------------------------------------------


class RuleOut(msgspec.Struct):
    id: UUID
    name: str
    site: str
    version: int
    enabled: bool
    definition: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class ValidationOut(msgspec.Struct):
    valid: bool
    rules: int
    errors: list[FieldError]


class ImportOut(msgspec.Struct):
    created: list[str]
    updated: list[str]
    # Rules the document repeats exactly as they are: kept as they are — same version, no ledger
    # entry, nothing reloaded — so a deploy that re-applies the same rules file changes nothing.
    unchanged: list[str] = msgspec.field(default_factory=list)


def _definition(row: dict[str, Any]) -> dict[str, Any]:
    definition: dict[str, Any] = json_column(row["definition"])
    return definition


async def _site_entries(site_id: UUID) -> list[RuleEntry]:
    entries = []
    for row in await MarketingRule.select().where(MarketingRule.site == site_id):
        rule, problems = compile_rule(_definition(row))
        if rule is not None:
            entries.append(RuleEntry(id=str(row["id"]), tenant=row["tenant"], site=site_id, rule=rule))
        else:
            log.error("stored_rule_invalid", rule=str(row["id"]), problems=len(problems))
    return entries


async def load_site_rules(rt: Runtime, site_id: UUID) -> None:
    """The site's settings and rules into the live engine (it decides its visitors again)."""
    entries = await _site_entries(site_id)
    site = await Site.select(Site.settings).where(Site.id == site_id).first()
    engine = rt.engagement.engine
    engine.set_site(site_id, site_config(site["settings"]) if site else SiteConfig())
    engine.set_rules(site_id, entries)


async def load_all_rules(rt: Runtime) -> int:
    sites = {r["site"] for r in await MarketingRule.select(MarketingRule.site)}
    for site_id in sites:
        await load_site_rules(rt, site_id)
    return len(sites)


async def _rules_changed(rt: Runtime, site_ids: set[UUID]) -> None:
    for site_id in site_ids:
        await load_site_rules(rt, site_id)
        await rt.signals.announce(RULES_CHANGED, str(site_id))
    await rt.engagement.journal.commit()  # invitations a deleted rule held are given back durably


async def _out(row: dict[str, Any]) -> RuleOut:
    site = await Site.select(Site.name).where(Site.id == row["site"]).first()
    definition = _definition(row)
    return RuleOut(
        id=row["id"], name=row["name"], site=site["name"] if site else "?", version=row["version"],
        enabled=definition.get("enabled", True) is not False, definition=definition,
        created_at=row["created_at"], updated_at=row["updated_at"],
    )


async def list_rules(tenant_id: UUID) -> list[RuleOut]:
    rows = await MarketingRule.select().where(MarketingRule.tenant == tenant_id).order_by(MarketingRule.name)
    return [await _out(r) for r in rows]


async def get_rule(tenant_id: UUID, rule_id: UUID) -> RuleOut:
    row = await MarketingRule.select().where((MarketingRule.id == rule_id) & (MarketingRule.tenant == tenant_id)).first()
    if row is None:
        raise NotFound(f"no rule {rule_id}")
    return await _out(row)


async def _save(rt: Runtime, principal: Principal, definitions: list[dict[str, Any]], replace_id: UUID | None = None) -> ImportOut:
    """All-or-nothing upsert by name (or replace one rule by id)."""
    compiled = compile_all(definitions)
    sites = {}
    for i, d in enumerate(definitions):
        sites[d["site"]] = await _site_by_name(principal.tenant_id, d["site"], f"rules[{i}].site")
    check_declared(compiled, {name: site_config(site["settings"]) for name, site in sites.items()})
    created, updated, unchanged = [], [], []
    touched: set[UUID] = set()
    now = rt.clock.now()
    async with db.write_transaction():
        for definition in definitions:
            site = sites[definition["site"]]
            if replace_id is not None:
                existing = await MarketingRule.select().where((MarketingRule.id == replace_id) & (MarketingRule.tenant == principal.tenant_id)).first()
                if existing is None:
                    raise NotFound(f"no rule {replace_id}")
                clash = await MarketingRule.select(MarketingRule.id).where(
                    (MarketingRule.tenant == principal.tenant_id) & (MarketingRule.name == definition["name"]) & (MarketingRule.id != replace_id)
                ).first()
                if clash:
                    raise InvalidInput("another rule has this name", [FieldError("name", f"{definition['name']!r} is taken")])
            else:
                existing = await MarketingRule.select().where((MarketingRule.tenant == principal.tenant_id) & (MarketingRule.name == definition["name"])).first()
            if existing is None:
                await MarketingRule.insert(MarketingRule(id=uuid4(), tenant=principal.tenant_id, site=site["id"], name=definition["name"],
                                                         definition=json.dumps(definition)))
                created.append(definition["name"])
                touched.add(site["id"])
            elif existing["site"] == site["id"] and _definition(existing) == json.loads(json.dumps(definition)):
                unchanged.append(definition["name"])
            else:
                touched.update({existing["site"], site["id"]})  # a rule moved to another site leaves its old one
                await MarketingRule.update({
                    MarketingRule.site: site["id"], MarketingRule.name: definition["name"], MarketingRule.definition: json.dumps(definition),
                    MarketingRule.version: existing["version"] + 1, MarketingRule.updated_at: now,
                }).where(MarketingRule.id == existing["id"])
                updated.append(definition["name"])
        if created or updated:
            await ledger.append(principal.tenant_id, ledger.Entry(
                actor=principal.actor, action="rules.change", details={"created": created, "updated": updated},
            ))
    if touched:
        await _rules_changed(rt, touched)
    return ImportOut(created=created, updated=updated, unchanged=unchanged)


async def create_rule(rt: Runtime, principal: Principal, definition: dict[str, Any]) -> RuleOut:
    if await MarketingRule.exists().where((MarketingRule.tenant == principal.tenant_id) & (MarketingRule.name == definition.get("name"))):
        raise InvalidInput("a rule with this name exists; PUT /v1/rules/{id} replaces it", [FieldError("name", "already taken")])
    await _save(rt, principal, [definition])
    return await get_rule_by_name(principal.tenant_id, definition["name"])


async def get_rule_by_name(tenant_id: UUID, name: str) -> RuleOut:
    row = await MarketingRule.select().where((MarketingRule.tenant == tenant_id) & (MarketingRule.name == name)).first()
    if row is None:
        raise NotFound(f"no rule {name!r}")
    return await _out(row)


async def replace_rule(rt: Runtime, principal: Principal, rule_id: UUID, definition: dict[str, Any]) -> RuleOut:
    await get_rule(principal.tenant_id, rule_id)
    await _save(rt, principal, [definition], replace_id=rule_id)
    return await get_rule(principal.tenant_id, rule_id)


async def delete_rule(rt: Runtime, principal: Principal, rule_id: UUID) -> None:
    """The rule goes, and so does the capacity its open invitations held (they are withdrawn)."""
    row = await MarketingRule.select().where((MarketingRule.id == rule_id) & (MarketingRule.tenant == principal.tenant_id)).first()
    if row is None:
        raise NotFound(f"no rule {rule_id}")
    async with db.write_transaction():
        await MarketingRule.delete().where(MarketingRule.id == rule_id)
        await ledger.append(principal.tenant_id, ledger.Entry(actor=principal.actor, action="rules.delete", subject=row["name"]))
    await _rules_changed(rt, {row["site"]})


def check_declared(rules: list[Rule], configs: dict[str, SiteConfig]) -> None:
    """Refuse rules reading attributes their site does not declare (or cannot match as declared);
    ``configs``: by site name. The field paths are those of ``compile_all`` (``rules[i]…``)."""
    errors = [e for rule in rules if rule.site in configs for e in undeclared_attributes(rule, configs[rule.site].attributes)]
    if errors:
        raise InvalidInput("the rules read visitor attributes their site does not declare as used; nothing was saved", errors)


async def validate_document(tenant_id: UUID, text: bytes, media: str) -> ValidationOut:
    """The document's problems, as import would report them (sites that exist are checked for the
    attributes the rules read; a site that does not exist yet is not an error here)."""
    try:
        items = load_document(text, "json" if media == "json" else "yaml")
        compiled = compile_all(items)
        names = sorted({r.site for r in compiled})
        rows = await Site.select(Site.name, Site.settings).where((Site.tenant == tenant_id) & Site.name.is_in(names)) if names else []
        check_declared(compiled, {row["name"]: site_config(row["settings"]) for row in rows})
    except InvalidInput as exc:
        return ValidationOut(valid=False, rules=0, errors=exc.errors or [FieldError("$", exc.detail)])
    return ValidationOut(valid=True, rules=len(items), errors=[])


async def import_document(rt: Runtime, principal: Principal, text: bytes, media: str) -> ImportOut:
    return await _save(rt, principal, load_document(text, "json" if media == "json" else "yaml"))


class RulesDocument(msgspec.Struct):
    """What ``export_document`` writes as YAML (for the OpenAPI document)."""

    rules: list[dict[str, Any]]


async def export_document(tenant_id: UUID) -> str:
    return to_yaml([r.definition for r in await list_rules(tenant_id)])


# --- intake ----------------------------------------------------------------------------------


class Rejected(msgspec.Struct):
    index: int
    reason: str


class CollectOut(msgspec.Struct):
    accepted: int
    rejected: list[Rejected]
    invitations: list[DeliveredInvitation]
    dropped: str | None = None  # "bot", or "duplicate" for a batch id applied before


def delivered(invitations: list[Invitation], now: float) -> list[DeliveredInvitation]:
    return [DeliveredInvitation.of(i, now) for i in invitations]


class SiteNotAccepted(Unauthenticated):
    title = "Site not accepted"


class OriginNotAllowed(Forbidden):
    title = "Site not accepted"


async def resolve_site(rt: Runtime, site_key: str | None, origins: list[str]) -> dict[str, Any]:
    """The site of a public request. ``origins``: where the page that sent it may be served from
    (see api.proactive.page_origins); one of them must be allowed, when the site lists any."""
    if not site_key:
        raise SiteNotAccepted("send the site key as site_key in the body, ?site= or the X-Parley-Site header")
    site = await rt.engagement.sites.by_key(site_key)
    if site is None:
        raise SiteNotAccepted("unknown site key")
    allowed = site["allowed_origins"]
    if allowed and not any(o in allowed for o in origins):
        shown = origins[0] if origins else None
        raise OriginNotAllowed(f"origin {shown!r} is not allowed for this site; add it with PATCH /v1/admin/sites/{{id}}")
    return site


async def visitor_key(rt: Runtime, site: dict[str, Any], visitor_id: str) -> tuple[Any, str]:
    ctx = await tenant_context(rt, site["tenant"])
    return (site["id"], ctx.crypto.identity_hash(visitor_id))


async def collect(rt: Runtime, body: bytes, site_key: str | None, origins: list[str], user_agent: str, where: Location = NOWHERE) -> CollectOut:
    """One batch from the snippet. ``where``: the country and region of the client's address
    (proactive.geo; the address itself never gets here), recorded on the batch's pageviews."""
    rt.engagement.require_live()
    batch = convert(decode_json(body), CollectIn, "the batch is invalid")
    site = await resolve_site(rt, batch.site_key or site_key, origins)
    if is_bot(user_agent):
        return CollectOut(accepted=0, rejected=[], invitations=[], dropped="bot")
    for name in ("visitor_id", "session_id", "tab_id", "batch_id"):
        value = getattr(batch, name)
        if value is not None and not valid_id(value):
            raise InvalidInput(f"{name} is not valid", [FieldError(name, "1-64 letters, digits, '_' or '-'")])
    engagement = rt.engagement
    engine = engagement.engine
    now = engine.clock()  # the server's receive time: what every duration is measured on
    tab = batch.tab_id or batch.session_id
    ctx = await tenant_context(rt, site["tenant"])
    redactor = Redactor(ctx.redaction)  # browser data is redacted like transcripts, before anything sees it
    good, rejected = [], []
    config: SiteConfig | None = None
    for index, event in enumerate(batch.events):
        checked = check_event(event, now)
        if not isinstance(checked, str) and checked["type"] == "identify":
            # parley.identify(): only the site's declared attributes, each of its declared type
            from proactive.visitors import check_attributes

            config = config or site_config(site["settings"])
            kept, problems = check_attributes(config, checked["props"], "props")
            checked = f"{problems[0].path}: {problems[0].message}" if problems else {**checked, "props": kept}
        if isinstance(checked, str):
            rejected.append(Rejected(index, checked))
        else:
            stored = as_stored(checked, redactor)
            stored["tab"] = tab
            if where.country is not None and stored["type"] == "pageview":
                stored["props"] = {**stored["props"], **located(where)}
            good.append(stored)
    good.sort(key=lambda e: e["at_epoch"])  # the browser's clock orders a batch, nothing more
    key = await visitor_key(rt, site, batch.visitor_id)
    tenant = site["tenant"]
    arrived = store.Batch(tenant, site["id"], key[1], batch.session_id, tab, batch.batch_id or uuid4().hex[:16], now, good,
                         store.seal_payloads(ctx.crypto, key[1], good))
    invitations: list[Invitation] | None = None
    if not engagement.owns(tenant):
        # Engine replicas: another process decides for this site; it gets the events through the store.
        handed = await handoff.accept(rt, arrived, batch.batch_id is not None)
        if handed.repeated:
            return CollectOut(accepted=len(good), rejected=rejected, invitations=delivered(handed.invitations, engine.clock()), dropped="duplicate")
        invitations = handed.invitations
    else:
        state = await engagement.visitor(tenant, site["id"], key[1])
        assert state is not None
        if batch.batch_id is not None and state.seen_batch(batch.batch_id):
            await engagement.journal.commit()  # the first copy may still be being written
            return CollectOut(accepted=len(good), rejected=rejected, invitations=delivered(await engagement.take(tenant, key), engine.clock()), dropped="duplicate")
        if good:
            engine.apply_events(state, good)
            engagement.journal.add(arrived)
        await engagement.journal.commit()
    rt.events.write([
        {"tenant": str(site["tenant"]), "site": str(site["id"]), "visitor_hash": key[1], "session_id": batch.session_id,
         "type": e["type"], "name": e["name"] or "", "url": e["url"] or "", "at": utc(e["at_epoch"]).isoformat(),
         "props": e["props"]}
        for e in good
    ])
    if invitations is None:
        invitations = await engagement.take(tenant, key)
    return CollectOut(accepted=len(good), rejected=rejected, invitations=delivered(invitations, engine.clock()))


# --- capacity --------------------------------------------------------------------------------


class GroupIn(msgspec.Struct, forbid_unknown_fields=True):
    online_agents: Annotated[int, msgspec.Meta(ge=0, le=100_000)]
    max_chats_per_agent: Annotated[int, msgspec.Meta(ge=0, le=1000)]
    active_chats: Annotated[int, msgspec.Meta(ge=0, le=10_000_000)]


# How far ahead of this server's clock a report's as_of may be: the platform's clock and ours are
# never exactly in step. A report further ahead is refused (it would outrank every report of the
# next minutes and keep them from being applied).
CAPACITY_CLOCK_SKEW = timedelta(seconds=30)


class CapacityIn(msgspec.Struct, forbid_unknown_fields=True):
    groups: dict[Annotated[str, msgspec.Meta(min_length=1, max_length=64)], GroupIn]
    # The moment the numbers describe (RFC 3339 with an offset). Given, a report older than the
    # group's current one — a retried or reordered delivery — is acknowledged and not applied.
    as_of: Annotated[datetime, msgspec.Meta(tz=True)] | None = None


class GroupOut(msgspec.Struct):
    online_agents: int
    max_chats_per_agent: int
    active_chats: int
    outstanding_invitations: int
    free_slots: int
    reported_at: datetime
    waiting: int = 0  # visitors queued for this group
    accepted_unreported: int = 0  # accepted invitations the platform has not counted as chats yet
    as_of: datetime | None = None  # the moment the numbers describe, as the report gave it (null: reported_at)


class GroupReportOut(GroupOut):
    """A group's state after a report (``PUT``): ``applied`` false when the report was older than
    the state the group already had, which is shown and stays."""

    applied: bool = True
    reason: str | None = None


def parse_capacity(raw: Any) -> CapacityIn:
    """Every bad group and number at once, named by path (``groups.sales.online_agents``)."""
    return convert(raw, CapacityIn, "the capacity report is invalid; nothing was changed")


async def set_capacity(rt: Runtime, principal: Principal, data: CapacityIn) -> dict[str, GroupReportOut]:
    """A report frees or takes slots; waiting visitors are invited before this returns. A group
    whose current report describes a later moment than this one's ``as_of`` keeps it; the answer
    says so (2xx all the same: the platform must not retry what is already superseded)."""
    rt.engagement.require_live()
    now = rt.clock.now()
    as_of = data.as_of
    if as_of is not None:
        if as_of > now + CAPACITY_CLOCK_SKEW:
            raise InvalidInput("the capacity report is invalid; nothing was changed", [FieldError(
                "as_of", f"{as_of.isoformat()} is ahead of the server's clock ({now.isoformat()}) by more than "
                f"{CAPACITY_CLOCK_SKEW.total_seconds():g} s",
            )])
        as_of = as_of.astimezone(timezone.utc)
    groups = {name: GroupCapacity(g.online_agents, g.max_chats_per_agent, g.active_chats, now, as_of) for name, g in data.groups.items()}
    if not rt.engagement.owns(principal.tenant_id):
        await handoff.forward_capacity(rt, principal.tenant_id, groups)  # the owning replica decides the waiting visitors
        current = await capacity(rt, principal)
        applied = {name for name, cap in groups.items() if name in current and
                   (current[name].reported_at, current[name].as_of) == (cap.reported_at, cap.as_of)}
    else:
        applied = rt.engagement.engine.set_capacity(principal.tenant_id, groups)
        await rt.engagement.journal.commit()
        current = await capacity(rt, principal)
    out = {}
    for name, state in current.items():
        if name not in groups:
            continue
        report = GroupReportOut(**msgspec.structs.asdict(state))
        if name not in applied:
            report.applied = False
            kept = state.as_of or state.reported_at
            report.reason = f"older than the report already applied (as of {kept.isoformat()}): acknowledged, not applied"
        out[name] = report
    return out


async def capacity(rt: Runtime, principal: Principal) -> dict[str, GroupOut]:
    if not rt.engagement.owns(principal.tenant_id):
        return await _stored_capacity(principal.tenant_id)
    engine = rt.engagement.engine
    out = {}
    for (tenant, name), cap in engine.capacity.items():
        if tenant == principal.tenant_id and name is not None:
            key = (tenant, name)
            out[name] = GroupOut(cap.online_agents, cap.max_chats_per_agent, cap.active_chats, engine.outstanding[key],
                                 engine.free_slots(tenant, name) or 0, cap.reported_at, engine.waiting(tenant, name), len(engine.accepted.get(key, ())), cap.as_of)
    return out


async def _stored_capacity(tenant_id: UUID) -> dict[str, GroupOut]:
    """Capacity as the store has it (engine replicas, asked of a process that does not own the
    tenant); ``waiting`` as the owner last wrote it (in its commits, as the queues change)."""
    usage = await store.group_usage(tenant_id)
    waiting = await store.waiting_counts(tenant_id)
    out = {}
    for (_, name), cap in await store.capacity_reports(tenant_id):
        if name is None:
            continue
        outstanding, accepted = usage.get(name, (0, 0))
        free = cap.online_agents * cap.max_chats_per_agent - cap.active_chats - outstanding - accepted
        out[name] = GroupOut(cap.online_agents, cap.max_chats_per_agent, cap.active_chats, outstanding, free, cap.reported_at,
                             waiting.get(name, 0), accepted, cap.as_of)
    return out


# --- stats, explain, backtest ----------------------------------------------------------------


class WaitStats(msgspec.Struct):
    served: int
    p50_seconds: float | None
    p95_seconds: float | None


class VariantStats(msgspec.Struct):
    counts: dict[str, int]
    suppressed: dict[str, int]
    rates: dict[str, float]
    wait: WaitStats
    # How the chats this variant's invitations led to went (proactive/funnel.py).
    outcomes: funnel.Outcomes | None = None


class GoalOut(msgspec.Struct, omit_defaults=True):
    """What ``counts.goals`` counts: the rule's goal and how a conversion is credited."""

    within_seconds: float
    attribution: str  # last | first: which rule's invitation before the goal is credited
    event: str | None = None
    url: str | None = None


def goal_of(rule: Rule) -> GoalOut | None:
    if rule.goal_key is None:
        return None
    return GoalOut(rule.goal_within, rule.goal_attribution, rule.goal_event, rule.goal_url)


class StatsOut(msgspec.Struct):
    rule: str
    rule_id: UUID
    variants: dict[str, VariantStats]
    totals: VariantStats
    # The same outcomes for the chats on the rule's site no invitation led to, and over how many days.
    uninvited: funnel.Outcomes | None = None
    outcome_days: int = funnel.OUTCOME_DAYS
    goal: GoalOut | None = None


def _wait_quantile(counts: dict[str, int], q: float) -> float | None:
    """From the wait histogram: the upper bound of the bucket holding the q-th wait."""
    buckets = [(bound, counts.get(f"wait_le_{bound:g}", 0)) for bound in WAIT_BUCKETS]
    total = sum(n for _, n in buckets)
    if not total:
        return None
    seen = 0
    for bound, n in buckets:
        seen += n
        if seen >= q * total:
            return float(bound)
    return float(WAIT_BUCKETS[-1])


def _variant_stats(counts: dict[str, int]) -> VariantStats:
    main = {n: counts.get(n, 0) for n in COUNTER_NAMES}
    suppressed = {r: counts.get(f"suppressed_{r}", 0) for r in SUPPRESSIONS}
    sent = main["sent"]
    rates = {
        "send_rate": round(sent / main["matched"], 4) if main["matched"] else 0.0,
        "show_rate": round(main["shown"] / sent, 4) if sent else 0.0,
        "accept_rate": round(main["accepted"] / sent, 4) if sent else 0.0,
        "dismiss_rate": round(main["dismissed"] / sent, 4) if sent else 0.0,
        "goal_rate": round(main["goals"] / (sent or suppressed["holdout"]), 4) if (sent or suppressed["holdout"]) else 0.0,
    }
    wait = WaitStats(main["served_after_wait"], _wait_quantile(counts, 0.5), _wait_quantile(counts, 0.95))
    return VariantStats(counts=main, suppressed=suppressed, rates=rates, wait=wait)


async def stats(rt: Runtime, principal: Principal, rule_id: UUID) -> StatsOut:
    rule = await get_rule(principal.tenant_id, rule_id)
    # Everything counted so far is written first, then only the store is read: adding counters
    # still being written to what was read could count a commit that landed meanwhile twice.
    await rt.engagement.journal.commit()
    per_variant: dict[str, dict[str, int]] = defaultdict(dict)
    for row in await RuleCounter.select().where(RuleCounter.rule == rule_id):
        per_variant[row["variant"]][row["name"]] = per_variant[row["variant"]].get(row["name"], 0) + row["count"]
    totals: dict[str, int] = defaultdict(int)
    for counts in per_variant.values():
        for name, count in counts.items():
            totals[name] += count
    compiled, _ = compile_rule(rule.definition)
    out = StatsOut(rule=rule.name, rule_id=rule.id, variants={v: _variant_stats(c) for v, c in sorted(per_variant.items())},
                   totals=_variant_stats(totals), goal=goal_of(compiled) if compiled else None)
    return await _with_chats(rt, principal, rule, out)


async def _with_chats(rt: Runtime, principal: Principal, rule: RuleOut, out: StatsOut) -> StatsOut:
    """The funnel's part of the stats: chats per variant (counts.chats, rates.chat_rate) and how
    they went, against the site's uninvited chats."""
    chats = await funnel.rule_chats(rt, principal.tenant_id, rule.id, rule.site)
    variants = {v: out.variants.get(v) or _variant_stats({}) for v in sorted(out.variants.keys() | chats.chats.keys())}

    def add(found: VariantStats, count: int, outcomes: funnel.Outcomes | None) -> None:
        found.counts["chats"] = count
        found.rates["chat_rate"] = round(count / found.counts["sent"], 4) if found.counts["sent"] else 0.0
        found.outcomes = outcomes

    for variant, found in variants.items():
        add(found, chats.chats.get(variant, 0), chats.outcomes.get(variant))
    add(out.totals, sum(chats.chats.values()), chats.totals)
    out.variants, out.uninvited = variants, chats.uninvited
    return out


async def explain(rt: Runtime, principal: Principal, visitor_id: str, site_name: str) -> list[Outcome]:
    site = await _site_by_name(principal.tenant_id, site_name, "site")
    ctx = await tenant_context(rt, principal.tenant_id)
    state = await rt.engagement.peek(site["id"], ctx.crypto.identity_hash(visitor_id))
    return rt.engagement.engine.explain(state, site["id"])


async def backtest(rt: Runtime, principal: Principal, rule_id: UUID, days: int) -> backtests.BacktestOut:
    row = await MarketingRule.select().where((MarketingRule.id == rule_id) & (MarketingRule.tenant == principal.tenant_id)).first()
    if row is None:
        raise NotFound(f"no rule {rule_id}")
    compiled, _ = compile_rule(_definition(row))
    if compiled is None:
        raise InvalidInput("the stored rule no longer compiles", [FieldError("definition", "fix the rule first")])
    entry = RuleEntry(str(rule_id), row["tenant"], row["site"], msgspec.structs.replace(compiled, enabled=True))
    entries = [e for e in await _site_entries(row["site"]) if e.id != entry.id] + [entry]
    site = await Site.select(Site.settings).where(Site.id == row["site"]).first()
    until = rt.clock.time()
    ctx = await tenant_context(rt, principal.tenant_id)
    batches = await store.replay_batches(row["site"], rt.clock.now() - timedelta(days=days), ctx.crypto)
    # Replaying is pure CPU over possibly many events: a worker thread, not the event loop.
    result = await rt.workers.run(backtests.replay, entries, row["site"], site_config(site["settings"] if site else None), batches, until)
    return backtests.summary(entry, days, result)


# --- upkeep ----------------------------------------------------------------------------------


async def purge_events(rt: Runtime, retention_days: int) -> int:
    """Event retention: events, visitor memory and closed invitations older than the period."""
    cutoff = rt.clock.now() - timedelta(days=retention_days)
    async with db.write_transaction():
        count = await store.purge(cutoff)
    await rt.events.purge(cutoff)
    return count


async def erase_visitor_data(tenant_id: UUID, visitor_hash: str) -> int:
    """Inside the erasure's transaction: everything stored about the visitor; returns the number
    of behaviour events deleted."""
    return await store.delete_visitor(tenant_id, visitor_hash)


async def forget_visitor(rt: Runtime, tenant_id: UUID, visitor_hash: str) -> None:
    """After the erasure committed: every engine process drops the visitor from memory (and gives
    back the capacity its open invitations held)."""
    await rt.signals.announce(VISITOR_ERASED, f"{tenant_id}:{visitor_hash}")
    rt.engagement.engine.forget(tenant_id, visitor_hash)
    rt.engagement.delivery.forget(visitor_hash)
    await rt.engagement.journal.commit()
    await rt.events.delete_visitor(tenant_id, visitor_hash)
