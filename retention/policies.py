"""Retention policies: an ordered list of rules plus a default, and an optional floor.

The first rule whose ``match`` fits a conversation decides its duration; otherwise the default.
``retain_until = ended_at + duration``, never earlier than ``ended_at + floor``; ``forever`` keeps
it (retain_until is NULL). A floor in *compliance* mode, like S3 Object Lock's, can never be
lowered or removed once set; in *governance* mode an admin may change it, with a reason that goes
into the ledger.
"""

from __future__ import annotations

import calendar
from datetime import datetime, timedelta, timezone
from typing import Any, Literal
from uuid import UUID

import msgspec

from archive import db, ingest, ledger
from archive.db import json_column
from archive.errors import FieldError, Forbidden, InvalidInput
from archive.runtime import Runtime
from archive.tables import Conversation
from archive.tenancy import Principal
from retention.deletion import Protection
from retention.tables import RetentionPolicy

RECOMPUTE_BATCH = 1000


class Match(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    site: str | None = None
    channel: str | None = None
    tags: list[str] = []
    language: str | None = None


class Rule(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    name: str
    match: Match = msgspec.field(default_factory=Match)
    days: int | None = None
    months: int | None = None
    years: int | None = None
    forever: bool = False


class Default(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    days: int | None = None
    months: int | None = None
    years: int | None = None
    forever: bool = False


class Floor(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    mode: Literal["compliance", "governance"]
    days: int | None = None
    months: int | None = None
    years: int | None = None


class Policy(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    default: Default = msgspec.field(default_factory=lambda: Default(forever=True))
    rules: list[Rule] = []
    floor: Floor | None = None


class PolicyIn(Policy, forbid_unknown_fields=True, omit_defaults=True):
    reason: str | None = None  # required when a governance floor is lowered or removed


class PolicyOut(msgspec.Struct):
    policy: Policy
    version: int
    updated_at: datetime | None


def add_months(moment: datetime, months: int) -> datetime:
    month = moment.month - 1 + months
    year, month = moment.year + month // 12, month % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def _duration_fields(obj: Any) -> dict[str, int]:
    return {k: getattr(obj, k) for k in ("days", "months", "years") if getattr(obj, k) is not None}


def expires(ended_at: datetime, obj: Any) -> datetime | None:
    """``ended_at`` plus the duration of a rule, default or floor; None for forever."""
    if getattr(obj, "forever", False):
        return None
    fields = _duration_fields(obj)
    moment = ended_at + timedelta(days=fields.get("days", 0))
    return add_months(moment, fields.get("months", 0) + 12 * fields.get("years", 0))


def _floor_length(floor: Floor | None, reference: datetime) -> timedelta:
    if floor is None:
        return timedelta(0)
    until = expires(reference, floor)
    return (until - reference) if until else timedelta(0)


def validate(policy: Policy) -> list[FieldError]:
    errors: list[FieldError] = []

    def duration(obj: Any, path: str, allow_forever: bool = True) -> None:
        fields = _duration_fields(obj)
        forever = getattr(obj, "forever", False)
        if forever and fields:
            errors.append(FieldError(path, "give either a duration or forever, not both"))
        elif not forever and len(fields) != 1:
            errors.append(FieldError(path, "give exactly one of days, months or years" + (" (or forever: true)" if allow_forever else "")))
        for name, value in fields.items():
            if value < 1 or value > 1200 * (1 if name != "days" else 31):
                errors.append(FieldError(f"{path}.{name}", "must be a positive whole number within 100 years"))

    duration(policy.default, "default")
    if policy.floor is not None:
        duration(policy.floor, "floor", allow_forever=False)
    names: dict[str, int] = {}
    for i, rule in enumerate(policy.rules):
        path = f"rules[{i}]"
        duration(rule, path)
        if not rule.name.strip():
            errors.append(FieldError(f"{path}.name", "rules need a name (it is written on deletion receipts)"))
        elif rule.name in names:
            errors.append(FieldError(f"{path}.name", f"duplicates rules[{names[rule.name]}].name"))
        names.setdefault(rule.name, i)
        for j, earlier in enumerate(policy.rules[:i]):
            if _covers(earlier.match, rule.match):
                errors.append(FieldError(
                    path, f"can never apply: rules[{j}] ({earlier.name!r}) matches every conversation this rule matches and comes first"
                ))
                break
    return errors


def _covers(a: Match, b: Match) -> bool:
    """Does every conversation matched by ``b`` also match ``a``?"""
    return (
        (a.site is None or a.site == b.site)
        and (a.channel is None or a.channel == b.channel)
        and (a.language is None or a.language == b.language)
        and set(a.tags) <= set(b.tags)
    )


def matches(match: Match, site: str, channel: str, language: str | None, tags: list[str]) -> bool:
    return (
        (match.site is None or match.site == site)
        and (match.channel is None or match.channel == channel)
        and (match.language is None or (language or "").lower().split("-")[0] == match.language.lower().split("-")[0])
        and set(match.tags) <= set(tags)
    )


def decide(policy: Policy, site: str, channel: str, language: str | None, tags: list[str], ended_at: datetime) -> tuple[str, datetime | None]:
    """(rule name or "default", retain_until) for one conversation."""
    chosen: Any = policy.default
    name = "default"
    for rule in policy.rules:
        if matches(rule.match, site, channel, language, tags):
            chosen, name = rule, rule.name
            break
    until = expires(ended_at, chosen)
    if until is not None and policy.floor is not None:
        until = max(until, ended_at + _floor_length(policy.floor, ended_at))
    return name, until


async def current(tenant_id: UUID) -> PolicyOut:
    row = await RetentionPolicy.select().where(RetentionPolicy.tenant == tenant_id).first()
    if row is None:
        return PolicyOut(policy=Policy(), version=0, updated_at=None)
    document = row["document"]
    return PolicyOut(
        policy=msgspec.convert(json_column(document), Policy),
        version=row["version"], updated_at=row["updated_at"],
    )


def _check_floor_change(old: Floor | None, new: Floor | None, principal: Principal, reason: str | None) -> str | None:
    """None if allowed silently; a description when it is a ledgered governance change."""
    if old is None:
        return None
    now = datetime.now(timezone.utc)
    old_len, new_len = _floor_length(old, now), _floor_length(new, now)
    if old.mode == "compliance":
        if new is None or new.mode != "compliance" or new_len < old_len:
            raise InvalidInput(
                "the retention floor is in compliance mode: it can be raised but never lowered or removed",
                [FieldError("floor", f"keep at least {_describe(old)} in compliance mode")],
            )
        return None
    if new is None or new_len < old_len or new.mode != old.mode and new.mode != "compliance":
        if principal.role != "admin":
            raise Forbidden("lowering or removing a governance-mode floor needs an admin key")
        if not (reason or "").strip():
            raise InvalidInput("lowering or removing a governance-mode floor needs a reason", [FieldError("reason", "say why, for the ledger")])
        return f"{_describe(old)} → {_describe(new) if new else 'none'}"
    return None


def _describe(floor: Floor) -> str:
    return ", ".join(f"{v} {k}" for k, v in _duration_fields(floor).items()) + f" ({floor.mode})"


async def put(principal: Principal, incoming: PolicyIn) -> PolicyOut:
    policy = Policy(default=incoming.default, rules=incoming.rules, floor=incoming.floor)
    errors = validate(policy)
    if errors:
        raise InvalidInput("the retention policy is invalid; nothing was changed", errors)
    async with db.write_transaction():
        await ledger.lock_head(principal.tenant_id)  # deletion re-reads the floor under this lock
        old = await current(principal.tenant_id)
        change = _check_floor_change(old.policy.floor, policy.floor, principal, incoming.reason)
        version = old.version + 1
        document = msgspec.json.encode(policy).decode()
        if old.version == 0:
            await RetentionPolicy.insert(RetentionPolicy(tenant=principal.tenant_id, document=document, version=version))
        else:
            await RetentionPolicy.update(
                {RetentionPolicy.document: document, RetentionPolicy.version: version, RetentionPolicy.updated_at: datetime.now(timezone.utc)}
            ).where(RetentionPolicy.tenant == principal.tenant_id)
        details: dict[str, Any] = {"version": version, "policy": msgspec.to_builtins(policy)}
        if change:
            details.update({"floor_change": change, "reason": incoming.reason})
        await ledger.append(principal.tenant_id, ledger.Entry(actor=principal.actor, action="policy.change", subject=f"v{version}", details=details))
    return await current(principal.tenant_id)


class ComplianceFloorGuard:
    """A compliance-mode floor, as a deletion guard: nothing younger than the floor is deleted,
    whatever asks (a sweep with a stale retain_until, an erasure request). Re-read inside the
    deletion transaction; policy changes take the same ledger-head lock."""

    async def protect(self, rt: Runtime, tenant_id: UUID, rows: list[dict[str, Any]], now: datetime) -> dict[UUID, Protection]:
        floor = (await current(tenant_id)).policy.floor
        if floor is None or floor.mode != "compliance":
            return {}
        protected: dict[UUID, Protection] = {}
        for row in rows:
            until = expires(row["ended_at"], floor)
            if until is not None and until > now:
                protected[row["id"]] = Protection(
                    "compliance_floor", "compliance floor", f"compliance-mode retention floor until {until.date().isoformat()}"
                )
        return protected


async def recompute(tenant_id: UUID, batch: int = RECOMPUTE_BATCH) -> int:
    """Bring retain_until up to the current policy version, one batch per transaction."""
    state = await current(tenant_id)
    updated = 0
    while True:
        rows = await Conversation.select(
            Conversation.id, Conversation.site, Conversation.channel, Conversation.language, Conversation.tags, Conversation.ended_at,
        ).where(
            (Conversation.tenant == tenant_id)
            & ((Conversation.policy_version.is_null()) | (Conversation.policy_version != state.version))
        ).limit(batch)
        if not rows:
            return updated
        async with db.write_transaction():
            for row in rows:
                tags = json_column(row["tags"])
                _, until = decide(state.policy, row["site"], row["channel"], row["language"], tags, row["ended_at"])
                await Conversation.update({Conversation.retain_until: until, Conversation.policy_version: state.version}).where(
                    Conversation.id == row["id"]
                )
        updated += len(rows)


async def recompute_all() -> int:
    from archive.tables import Tenant

    return sum([await recompute(t["id"]) for t in await Tenant.select(Tenant.id)])


class RetainUntilStep(ingest.IngestStep):
    """At ingest, each conversation gets the retain_until the tenant's current policy decides."""

    async def before_insert(self, rt: Runtime, tenant_id: UUID, items: list[ingest.Prepared]) -> None:
        state = await current(tenant_id)
        for item in items:
            s = item.stored
            item.retain_until = decide(state.policy, s.site, s.channel, s.language, s.tags, s.ended_at)[1]
            item.policy_version = state.version
