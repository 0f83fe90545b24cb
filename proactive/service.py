"""The engine's connection to the store and the API: rules CRUD, intake, capacity, stats,
explanations, backtests. The live engine itself is ``rt.engagement`` (proactive.runtime)."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Annotated, Any
from uuid import UUID, uuid4

import msgspec
import structlog

from archive import db, ledger
from archive.clock import ManualClock
from archive.db import json_column
from archive.errors import FieldError, Forbidden, InvalidInput, NotFound, Unauthenticated
from archive.runtime import Runtime
from archive.tables import Site
from archive.tenancy import Principal, tenant_context
from archive.validation import convert, decode_json
from proactive import funnel
from proactive.engine import Engine
from proactive.events import CollectIn, check_event, is_bot, stored_url, utc, valid_id
from proactive.model import GroupCapacity, Invitation, Outcome, RuleEntry
from proactive.rules import compile_all, compile_rule, load_document, to_yaml
from proactive.tables import BehaviourEvent, MarketingRule, RuleCounter

log = structlog.get_logger(__name__)

COUNTER_NAMES = ("matched", "sent", "shown", "accepted", "dismissed", "expired", "goals")
SUPPRESSIONS = ("cap", "capacity", "hours", "holdout", "active_chat", "goal_reached", "pacing")


# --- sites -----------------------------------------------------------------------------------


async def _site_by_name(tenant_id: UUID, name: str, path: str) -> dict[str, Any]:
    row = await Site.select(Site.id, Site.name).where((Site.tenant == tenant_id) & (Site.name == name)).first()
    if row is None:
        raise InvalidInput(f"no site named {name!r}", [FieldError(path, f"no site {name!r}; create it first (parley sites create)")])
    return row


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


def _definition(row: dict[str, Any]) -> dict[str, Any]:
    definition: dict[str, Any] = json_column(row["definition"])
    return definition


async def load_site_rules(rt: Runtime, site_id: UUID) -> None:
    rows = await MarketingRule.select().where(MarketingRule.site == site_id)
    entries = []
    for row in rows:
        rule, problems = compile_rule(_definition(row))
        if rule is not None:
            entries.append(RuleEntry(id=str(row["id"]), tenant=row["tenant"], site=site_id, rule=rule))
        else:
            log.error("stored_rule_invalid", rule=str(row["id"]), problems=len(problems))
    site = await Site.select(Site.settings).where(Site.id == site_id).first()
    settings = (json_column(site["settings"]) if site else None) or {}
    rt.engagement.engine.set_rules(site_id, entries, settings.get("pacing_per_minute"))


async def load_all_rules(rt: Runtime) -> int:
    sites = {r["site"] for r in await MarketingRule.select(MarketingRule.site)}
    for site_id in sites:
        await load_site_rules(rt, site_id)
    return len(sites)


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
    compile_all(definitions)
    sites = {}
    for i, d in enumerate(definitions):
        sites[d["site"]] = await _site_by_name(principal.tenant_id, d["site"], f"rules[{i}].site")
    created, updated = [], []
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
            else:
                await MarketingRule.update({
                    MarketingRule.site: site["id"], MarketingRule.name: definition["name"], MarketingRule.definition: json.dumps(definition),
                    MarketingRule.version: existing["version"] + 1, MarketingRule.updated_at: now,
                }).where(MarketingRule.id == existing["id"])
                updated.append(definition["name"])
        await ledger.append(principal.tenant_id, ledger.Entry(
            actor=principal.actor, action="rules.change", details={"created": created, "updated": updated},
        ))
    for site in {s["id"]: s for s in sites.values()}.values():
        await load_site_rules(rt, site["id"])
    if replace_id is None:
        for old_site in {r["site"] for r in await MarketingRule.select(MarketingRule.site).where(MarketingRule.tenant == principal.tenant_id)}:
            await load_site_rules(rt, old_site)
    return ImportOut(created=created, updated=updated)


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
    old = await get_rule(principal.tenant_id, rule_id)
    await _save(rt, principal, [definition], replace_id=rule_id)
    result = await get_rule(principal.tenant_id, rule_id)
    if old.site != result.site:
        site = await _site_by_name(principal.tenant_id, old.site, "site")
        await load_site_rules(rt, site["id"])
    return result


async def delete_rule(rt: Runtime, principal: Principal, rule_id: UUID) -> None:
    row = await MarketingRule.select().where((MarketingRule.id == rule_id) & (MarketingRule.tenant == principal.tenant_id)).first()
    if row is None:
        raise NotFound(f"no rule {rule_id}")
    async with db.write_transaction():
        await MarketingRule.delete().where(MarketingRule.id == rule_id)
        await ledger.append(principal.tenant_id, ledger.Entry(actor=principal.actor, action="rules.delete", subject=row["name"]))
    await load_site_rules(rt, row["site"])


def validate_document(text: bytes, media: str) -> ValidationOut:
    try:
        items = load_document(text, "json" if media == "json" else "yaml")
        compile_all(items)
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
    invitations: list[Invitation]
    dropped: str | None = None


class SiteNotAccepted(Unauthenticated):
    title = "Site not accepted"


class OriginNotAllowed(Forbidden):
    title = "Site not accepted"


async def resolve_site(rt: Runtime, site_key: str | None, origin: str | None) -> dict[str, Any]:
    if not site_key:
        raise SiteNotAccepted("send the site key as site_key in the body, ?site= or the X-Parley-Site header")
    site = await rt.engagement.sites.by_key(site_key)
    if site is None:
        raise SiteNotAccepted("unknown site key")
    if site["allowed_origins"] and origin not in site["allowed_origins"]:
        raise OriginNotAllowed(f"origin {origin!r} is not allowed for this site; add it with PATCH /v1/admin/sites/{{id}}")
    return site


async def collect(rt: Runtime, body: bytes, site_key: str | None, origin: str | None, user_agent: str) -> CollectOut:
    batch = convert(decode_json(body), CollectIn, "the batch is invalid")
    site = await resolve_site(rt, batch.site_key or site_key, origin)
    if is_bot(user_agent):
        return CollectOut(accepted=0, rejected=[], invitations=[], dropped="bot")
    for name in ("visitor_id", "session_id"):
        if not valid_id(getattr(batch, name)):
            raise InvalidInput(f"{name} is not valid", [FieldError(name, "1-64 letters, digits, '_' or '-'")])
    engine = rt.engagement.engine
    now = engine.clock()
    good, rejected = [], []
    for index, event in enumerate(batch.events):
        checked = check_event(event, now)
        if isinstance(checked, str):
            rejected.append(Rejected(index, checked))
        else:
            checked["session_id"] = batch.session_id
            good.append(checked)
    ctx = await tenant_context(rt, site["tenant"])
    visitor_hash = ctx.crypto.identity_hash(batch.visitor_id)
    await rt.engagement.writer.write([
        BehaviourEvent(tenant=site["tenant"], site=site["id"], visitor_hash=visitor_hash, session_id=batch.session_id,
                       type=e["type"], name=(e["name"] or "")[:64], at=utc(e["at_epoch"]), url=stored_url(e["url"]),
                       props=msgspec.json.encode(e["props"]).decode())
        for e in good
    ])
    rt.events.write([
        {"tenant": str(site["tenant"]), "site": str(site["id"]), "visitor_hash": visitor_hash, "session_id": batch.session_id,
         "type": e["type"], "name": e["name"] or "", "url": stored_url(e["url"]), "at": utc(e["at_epoch"]).isoformat(),
         "props": e["props"]}
        for e in good
    ])
    state = engine.state_for(site["tenant"], site["id"], batch.visitor_id, visitor_hash)
    engine.apply_events(state, sorted(good, key=lambda e: e["at_epoch"]))
    return CollectOut(accepted=len(good), rejected=rejected, invitations=engine.take_pending(site["id"], batch.visitor_id))


# --- capacity --------------------------------------------------------------------------------


class GroupIn(msgspec.Struct, forbid_unknown_fields=True):
    online_agents: Annotated[int, msgspec.Meta(ge=0, le=100_000)]
    max_chats_per_agent: Annotated[int, msgspec.Meta(ge=0, le=1000)]
    active_chats: Annotated[int, msgspec.Meta(ge=0, le=10_000_000)]


class CapacityIn(msgspec.Struct, forbid_unknown_fields=True):
    groups: dict[Annotated[str, msgspec.Meta(min_length=1, max_length=64)], GroupIn]


class GroupOut(msgspec.Struct):
    online_agents: int
    max_chats_per_agent: int
    active_chats: int
    outstanding_invitations: int
    free_slots: int
    reported_at: datetime


def parse_capacity(raw: Any) -> CapacityIn:
    """Every bad group and number at once, named by path (``groups.sales.online_agents``)."""
    return convert(raw, CapacityIn, "the capacity report is invalid; nothing was changed")


def set_capacity(rt: Runtime, principal: Principal, data: CapacityIn) -> dict[str, GroupOut]:
    now = rt.clock.now()
    rt.engagement.engine.set_capacity(principal.tenant_id, {
        name: GroupCapacity(g.online_agents, g.max_chats_per_agent, g.active_chats, now) for name, g in data.groups.items()
    })
    return capacity(rt, principal)


def capacity(rt: Runtime, principal: Principal) -> dict[str, GroupOut]:
    engine = rt.engagement.engine
    out = {}
    for (tenant, name), cap in engine.capacity.items():
        if tenant == principal.tenant_id:
            out[name] = GroupOut(cap.online_agents, cap.max_chats_per_agent, cap.active_chats,
                                 engine.outstanding[(tenant, name)], engine.free_slots(tenant, name) or 0, cap.reported_at)
    return out


# --- stats, explain, backtest ----------------------------------------------------------------


class VariantStats(msgspec.Struct):
    counts: dict[str, int]
    suppressed: dict[str, int]
    rates: dict[str, float]
    # How the chats this variant's invitations led to went (proactive/funnel.py).
    outcomes: funnel.Outcomes | None = None


class StatsOut(msgspec.Struct):
    rule: str
    rule_id: UUID
    variants: dict[str, VariantStats]
    totals: VariantStats
    # The same outcomes for the chats on the rule's site no invitation led to, and over how many days.
    uninvited: funnel.Outcomes | None = None
    outcome_days: int = funnel.OUTCOME_DAYS


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
    return VariantStats(counts=main, suppressed=suppressed, rates=rates)


async def stats(rt: Runtime, principal: Principal, rule_id: UUID) -> StatsOut:
    rule = await get_rule(principal.tenant_id, rule_id)
    per_variant: dict[str, dict[str, int]] = defaultdict(dict)
    for row in await RuleCounter.select().where(RuleCounter.rule == rule_id):
        per_variant[row["variant"]][row["name"]] = per_variant[row["variant"]].get(row["name"], 0) + row["count"]
    for (rid, variant, name), count in rt.engagement.engine.counters.items():
        if rid == str(rule_id):
            per_variant[variant][name] = per_variant[variant].get(name, 0) + count
    totals: dict[str, int] = defaultdict(int)
    for counts in per_variant.values():
        for name, count in counts.items():
            totals[name] += count
    out = StatsOut(rule=rule.name, rule_id=rule.id, variants={v: _variant_stats(c) for v, c in sorted(per_variant.items())},
                   totals=_variant_stats(totals))
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


async def flush_counters(rt: Runtime) -> int:
    """Move in-memory counters into rule_counter (additive upserts), so stats survive restarts."""
    counters = rt.engagement.engine.counters
    if not counters:
        return 0
    snapshot = dict(counters)
    counters.clear()
    try:
        async with db.write_transaction():
            for (rule_id, variant, name), count in snapshot.items():
                await RuleCounter.raw(
                    "INSERT INTO rule_counter (rule, variant, name, count) VALUES ({}, {}, {}, {}) "
                    "ON CONFLICT (rule, variant, name) DO UPDATE SET count = rule_counter.count + excluded.count",
                    UUID(rule_id), variant, name, count,
                )
    except Exception:
        counters.update(snapshot)  # keep them for the next flush
        raise
    return len(snapshot)


async def explain(rt: Runtime, principal: Principal, visitor_id: str, site_name: str) -> list[Outcome]:
    site = await _site_by_name(principal.tenant_id, site_name, "site")
    engine = rt.engagement.engine
    return engine.explain(engine.visitors.get((site["id"], visitor_id)), site["id"])


def _replayable(row: dict[str, Any]) -> dict[str, Any]:
    """A stored behaviour event in the shape the engine applies (backtests, state rebuilds)."""
    props = json_column(row["props"])
    return {"type": row["type"], "name": row["name"] or None, "at_epoch": row["at"].timestamp(), "url": row["url"] or None,
            "title": None, "referrer": None, "props": props, "session_id": row["session_id"]}


class BacktestOut(msgspec.Struct):
    rule: str
    days: int
    events: int
    visitors: int
    invitations: int
    visitors_invited: int
    suppressed: dict[str, int]
    note: str = "capacity and pacing are not simulated: they depend on live agent load"


async def backtest(rt: Runtime, principal: Principal, rule_id: UUID, days: int) -> BacktestOut:
    row = await MarketingRule.select().where((MarketingRule.id == rule_id) & (MarketingRule.tenant == principal.tenant_id)).first()
    if row is None:
        raise NotFound(f"no rule {rule_id}")
    compiled, _ = compile_rule(_definition(row))
    if compiled is None:
        raise InvalidInput("the stored rule no longer compiles", [FieldError("definition", "fix the rule first")])
    since = rt.clock.now() - timedelta(days=days)
    events = await BehaviourEvent.select().where((BehaviourEvent.site == row["site"]) & (BehaviourEvent.at >= since)).order_by(BehaviourEvent.at)
    entry = RuleEntry(str(rule_id), row["tenant"], row["site"], compiled)
    # Replaying is pure CPU over possibly many events: a worker thread, not the event loop.
    out = await rt.workers.run(_replay, entry, [(e["visitor_hash"], _replayable(e)) for e in events])
    out.rule = row["name"]
    out.days = days
    return out


def _replay(entry: RuleEntry, events: list[tuple[str, dict[str, Any]]]) -> BacktestOut:
    by_visitor: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for visitor_hash, event in events:
        by_visitor[visitor_hash].append(event)
    sent, invited = 0, 0
    suppressed: dict[str, int] = defaultdict(int)
    for visitor_hash, items in by_visitor.items():
        clock = ManualClock(items[0]["at_epoch"])
        engine = Engine(clock=clock.time, gate_capacity=False, pace=False)
        engine.set_rules(entry.site, [entry])
        state = engine.state_for(entry.tenant, entry.site, visitor_hash, visitor_hash)
        for event in items:
            while (due := engine.next_due()) is not None and due <= event["at_epoch"]:
                clock.set(due)
                engine.tick()
            clock.set(event["at_epoch"])
            engine.apply_events(state, [event])
        end = items[-1]["at_epoch"] + 3600
        while (due := engine.next_due()) is not None and due <= end:
            clock.set(due)
            engine.tick()
        count = sum(c for (_, _, name), c in engine.counters.items() if name == "sent")
        sent += count
        invited += 1 if count else 0
        for (_, _, name), c in engine.counters.items():
            if name.startswith("suppressed_"):
                suppressed[name[11:]] += c
    return BacktestOut(rule=entry.rule.name, days=0, events=len(events), visitors=len(by_visitor), invitations=sent,
                       visitors_invited=invited, suppressed=dict(suppressed))


# --- upkeep ----------------------------------------------------------------------------------


async def purge_events(rt: Runtime, retention_days: int) -> int:
    cutoff = rt.clock.now() - timedelta(days=retention_days)
    count: int = await BehaviourEvent.count().where(BehaviourEvent.at < cutoff)
    if count:
        await BehaviourEvent.delete().where(BehaviourEvent.at < cutoff)
    await rt.events.purge(cutoff)
    return count


async def rebuild_state(rt: Runtime, window: float = 1800.0) -> int:
    """After a restart: replay recent events into visitor state, without sending invitations."""
    engine = rt.engagement.engine
    since = rt.clock.now() - timedelta(seconds=window)
    rows = await BehaviourEvent.select().where(BehaviourEvent.at >= since).order_by(BehaviourEvent.at)
    by_visitor: dict[tuple[Any, str], list[dict[str, Any]]] = defaultdict(list)
    tenants = {}
    for e in rows:
        by_visitor[(e["site"], e["visitor_hash"])].append(_replayable(e))
        tenants[e["site"]] = e["tenant"]
    # The visitor id itself is not stored (only its keyed hash); the state is keyed by the hash
    # until the visitor's next event, which re-attaches it under the id.
    for (site, visitor_hash), items in by_visitor.items():
        state = engine.state_for(tenants[site], site, visitor_hash, visitor_hash)
        engine.apply_events(state, items, replay=True)
    return len(by_visitor)


