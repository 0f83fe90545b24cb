"""Supervision policies: what flags a conversation for review.

A policy is a query in Parley's own query language (so words, phrases, ``NEAR/n``, prefixes,
languages and field filters mean exactly what they mean in search), optionally RE2 patterns run
on each message's text, a scope (sites, channels, agents, senders), a sampling share, a severity
and a switch. A conversation in scope is flagged when the query matches it or any pattern does;
independently of that, ``sample_percent`` of the conversations in scope are flagged for a random
review (deterministically per conversation: see archive/supervision/evaluation.py).

Every change makes a new version: the current one is in ``supervision_policy``, each one ever
made in ``supervision_policy_version`` (the policies report), and every change is ledgered. A
deleted policy stops flagging but stays, because review items refer to the version that flagged
them. The query and the patterns are kept sealed under the tenant key (a lexicon can name people
or products a competitor would like to know about); the ledger holds them sealed too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

import msgspec

from archive import db, ledger
from archive.db import json_column
from archive.errors import Conflict, FieldError, InvalidInput, NotFound
from archive.query import QuerySyntaxError, parse
from archive.runtime import Runtime
from archive.search.plan import TypoToleranceOff, compile_query
from archive.supervision.tables import SupervisionPolicy, SupervisionPolicyVersion
from archive.tenancy import Principal, TenantContext, tenant_context

Severity = Literal["low", "medium", "high"]
Sender = Literal["visitor", "agent", "bot", "system"]
SiteName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
ChannelName = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]
AgentId = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
MAX_PATTERNS = 50
# RE2 builds its automaton within this much memory; a pattern needing more is refused at once.
PATTERN_MAX_MEMORY = 8 << 20


class Scope(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """Which conversations a policy looks at; an empty list does not restrict. ``senders``
    restricts both the query's words and the patterns to messages of those senders."""

    sites: Annotated[list[SiteName], msgspec.Meta(max_length=100)] = []
    channels: Annotated[list[ChannelName], msgspec.Meta(max_length=100)] = []
    agents: Annotated[list[AgentId], msgspec.Meta(max_length=500)] = []
    senders: Annotated[list[Sender], msgspec.Meta(max_length=4)] = []


class PolicyIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    query: Annotated[str, msgspec.Meta(max_length=2000)] = ""
    patterns: Annotated[list[Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]], msgspec.Meta(max_length=MAX_PATTERNS)] = []
    scope: Scope = msgspec.field(default_factory=Scope)
    sample_percent: Annotated[float, msgspec.Meta(ge=0, le=100)] = 0.0
    severity: Severity = "medium"
    enabled: bool = True


class PolicyOut(msgspec.Struct):
    id: UUID
    name: str
    query: str
    patterns: list[str]
    scope: Scope
    sample_percent: float
    severity: str
    enabled: bool
    version: int
    status: str
    created_by: str
    created_at: datetime
    updated_by: str
    updated_at: datetime


class PolicyVersionOut(msgspec.Struct):
    version: int
    change: str
    actor: str
    at: datetime
    name: str
    query: str
    patterns: list[str]
    scope: Scope
    sample_percent: float
    severity: str
    enabled: bool


class Stored(msgspec.Struct, omit_defaults=True):
    """A policy's definition as stored: query and patterns sealed, scope in clear."""

    query_sealed: str = ""
    patterns_sealed: str = ""
    scope: Scope = msgspec.field(default_factory=Scope)


class Definition(msgspec.Struct, frozen=True):
    """A policy as evaluation needs it, unsealed (only ever in memory)."""

    id: UUID
    version: int
    name: str
    query: str
    patterns: tuple[str, ...]
    scope: Scope
    sample_percent: float
    severity: str


def pattern_options() -> Any:
    """RE2's options for policy patterns: bounded memory, errors reported to the caller only."""
    import re2

    options = re2.Options()
    options.max_mem = PATTERN_MAX_MEMORY
    options.log_errors = False
    return options


def compile_pattern(pattern: str) -> Any:
    """An RE2 pattern (linear time, bounded memory: a policy cannot stall ingest)."""
    import re2

    return re2.compile(pattern, pattern_options())


def query_senders(query: str, scope: Scope) -> tuple[str, ...]:
    """The senders whose messages the query's words are looked for in: ``sender:`` in the query
    and the scope's senders, intersected when both name some."""
    parsed = parse(query).senders if query else ()
    if parsed and scope.senders:
        return tuple(s for s in parsed if s in scope.senders)
    return tuple(parsed or sorted(scope.senders))


def check(ctx: TenantContext, data: PolicyIn) -> None:
    """Everything a type cannot say, every problem at once: the query parses and compiles for
    this tenant (errors carry the position, as in search), each pattern is valid RE2, the
    senders can meet, and the policy flags something."""
    import re2

    errors: list[FieldError] = []
    if data.query.strip():
        try:
            parsed = parse(data.query)
            compile_query(parsed.tree, ctx.analyzer, [], ctx.crypto.identity_hash)
        except QuerySyntaxError as exc:
            errors.append(FieldError("query", f"{exc.message} at position {exc.position}"))
        except TypoToleranceOff as exc:
            errors.append(FieldError("query", f"{exc} at position {exc.position}"))
        else:
            if parsed.senders and data.scope.senders and not set(parsed.senders) & set(data.scope.senders):
                errors.append(FieldError("scope.senders", f"the query looks only at {', '.join(parsed.senders)} messages, which this scope excludes"))
    for index, pattern in enumerate(data.patterns):
        try:
            compile_pattern(pattern)
        except re2.error as exc:
            reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
            errors.append(FieldError(f"patterns[{index}]", f"not a valid RE2 pattern ({reason}); RE2 has no backreferences or lookaround"))
    if not data.query.strip() and not data.patterns and data.sample_percent <= 0:
        errors.append(FieldError("query", "a policy needs a query, a pattern or a sample_percent above 0"))
    if errors:
        raise InvalidInput("the policy is invalid; nothing was changed", errors)


def _store(ctx: TenantContext, data: PolicyIn) -> Stored:
    return Stored(
        query_sealed=ctx.crypto.seal_note(data.query.encode()) if data.query.strip() else "",
        patterns_sealed=ctx.crypto.seal_note(msgspec.json.encode(data.patterns)) if data.patterns else "",
        scope=data.scope,
    )


def _unseal(ctx: TenantContext, stored: Stored) -> tuple[str, list[str]]:
    query = ctx.crypto.open_note(stored.query_sealed).decode() if stored.query_sealed else ""
    patterns = msgspec.json.decode(ctx.crypto.open_note(stored.patterns_sealed), type=list[str]) if stored.patterns_sealed else []
    return query, patterns


def _stored(row: dict[str, Any]) -> Stored:
    return msgspec.convert(json_column(row["definition"]), Stored)


def _snapshot(data: PolicyIn, stored: Stored) -> dict[str, Any]:
    return {"name": data.name, "enabled": data.enabled, "severity": data.severity, "sample_percent": data.sample_percent,
            "definition": msgspec.to_builtins(stored)}


def _out(ctx: TenantContext, row: dict[str, Any]) -> PolicyOut:
    stored = _stored(row)
    query, patterns = _unseal(ctx, stored)
    return PolicyOut(
        id=row["id"], name=row["name"], query=query, patterns=patterns, scope=stored.scope, sample_percent=row["sample_percent"],
        severity=row["severity"], enabled=row["enabled"], version=row["version"], status=row["status"],
        created_by=row["created_by"], created_at=row["created_at"], updated_by=row["updated_by"], updated_at=row["updated_at"],
    )


async def _record(tenant_id: UUID, policy_id: UUID, version: int, change: str, actor: str, at: datetime, snapshot: dict[str, Any]) -> None:
    """The version row and its ledger entry (inside the caller's transaction)."""
    await SupervisionPolicyVersion.insert(SupervisionPolicyVersion(
        tenant=tenant_id, policy=policy_id, version=version, change=change, actor=actor, at=at, snapshot=msgspec.json.encode(snapshot).decode(),
    ))
    definition = snapshot.get("definition", {})
    details = {"version": version, "name": snapshot.get("name"), "enabled": snapshot.get("enabled"), "severity": snapshot.get("severity"),
               "sample_percent": snapshot.get("sample_percent"), "scope": definition.get("scope", {}),
               "query_sealed": definition.get("query_sealed", ""), "patterns_sealed": definition.get("patterns_sealed", "")}
    await ledger.append(tenant_id, ledger.Entry(actor=actor, action=f"supervision.policy.{change}", subject=str(policy_id), details=details))


async def _name_taken(tenant_id: UUID, name: str, other_than: UUID | None = None) -> None:
    query = SupervisionPolicy.exists().where(
        (SupervisionPolicy.tenant == tenant_id) & (SupervisionPolicy.name == name) & (SupervisionPolicy.status == "active")
    )
    if other_than is not None:
        query = query.where(SupervisionPolicy.id != other_than)
    if await query:
        raise Conflict(f"a policy named {name!r} exists", field="name")


async def create(rt: Runtime, principal: Principal, data: PolicyIn) -> PolicyOut:
    ctx = await tenant_context(rt, principal.tenant_id)
    check(ctx, data)
    stored = _store(ctx, data)
    policy_id, now = uuid4(), rt.clock.now()
    async with db.write_transaction():
        await _name_taken(principal.tenant_id, data.name)
        await SupervisionPolicy.insert(SupervisionPolicy(
            id=policy_id, tenant=principal.tenant_id, name=data.name, version=1, enabled=data.enabled, severity=data.severity,
            sample_percent=data.sample_percent, definition=msgspec.json.encode(stored).decode(), status="active",
            created_by=principal.actor, created_at=now, updated_by=principal.actor, updated_at=now,
        ))
        await _record(principal.tenant_id, policy_id, 1, "create", principal.actor, now, _snapshot(data, stored))
    return await get(rt, principal, policy_id)


async def _row(tenant_id: UUID, policy_id: UUID, *, deleted: bool = True) -> dict[str, Any]:
    query = SupervisionPolicy.select().where((SupervisionPolicy.id == policy_id) & (SupervisionPolicy.tenant == tenant_id))
    row = await query.first()
    if row is None or (not deleted and row["status"] != "active"):
        raise NotFound(f"no policy {policy_id}")
    return row


async def get(rt: Runtime, principal: Principal, policy_id: UUID) -> PolicyOut:
    ctx = await tenant_context(rt, principal.tenant_id)
    return _out(ctx, await _row(principal.tenant_id, policy_id))


async def list_policies(rt: Runtime, principal: Principal, include_deleted: bool = False) -> list[PolicyOut]:
    ctx = await tenant_context(rt, principal.tenant_id)
    query = SupervisionPolicy.select().where(SupervisionPolicy.tenant == principal.tenant_id)
    if not include_deleted:
        query = query.where(SupervisionPolicy.status == "active")
    return [_out(ctx, row) for row in await query.order_by(SupervisionPolicy.created_at)]


async def replace(rt: Runtime, principal: Principal, policy_id: UUID, data: PolicyIn) -> PolicyOut:
    ctx = await tenant_context(rt, principal.tenant_id)
    check(ctx, data)
    stored = _store(ctx, data)
    now = rt.clock.now()
    async with db.write_transaction():
        row = await _row(principal.tenant_id, policy_id, deleted=False)
        await _name_taken(principal.tenant_id, data.name, other_than=policy_id)
        version = row["version"] + 1
        await SupervisionPolicy.update({
            SupervisionPolicy.name: data.name, SupervisionPolicy.version: version, SupervisionPolicy.enabled: data.enabled,
            SupervisionPolicy.severity: data.severity, SupervisionPolicy.sample_percent: data.sample_percent,
            SupervisionPolicy.definition: msgspec.json.encode(stored).decode(), SupervisionPolicy.updated_by: principal.actor,
            SupervisionPolicy.updated_at: now,
        }).where(SupervisionPolicy.id == policy_id)
        await _record(principal.tenant_id, policy_id, version, "update", principal.actor, now, _snapshot(data, stored))
    return await get(rt, principal, policy_id)


async def delete(rt: Runtime, principal: Principal, policy_id: UUID) -> None:
    """Stop the policy for good (it stays, marked deleted: its review items refer to it)."""
    now = rt.clock.now()
    async with db.write_transaction():
        row = await _row(principal.tenant_id, policy_id, deleted=False)
        version = row["version"] + 1
        await SupervisionPolicy.update({
            SupervisionPolicy.status: "deleted", SupervisionPolicy.enabled: False, SupervisionPolicy.version: version,
            SupervisionPolicy.updated_by: principal.actor, SupervisionPolicy.updated_at: now,
        }).where(SupervisionPolicy.id == policy_id)
        snapshot = {"name": row["name"], "enabled": False, "severity": row["severity"], "sample_percent": row["sample_percent"],
                    "definition": json_column(row["definition"])}
        await _record(principal.tenant_id, policy_id, version, "delete", principal.actor, now, snapshot)


def _version_out(ctx: TenantContext, row: dict[str, Any]) -> PolicyVersionOut:
    snapshot = json_column(row["snapshot"])
    stored = msgspec.convert(snapshot.get("definition", {}), Stored)
    query, patterns = _unseal(ctx, stored)
    return PolicyVersionOut(
        version=row["version"], change=row["change"], actor=row["actor"], at=row["at"], name=snapshot["name"], query=query,
        patterns=patterns, scope=stored.scope, sample_percent=snapshot["sample_percent"], severity=snapshot["severity"],
        enabled=snapshot["enabled"],
    )


async def versions(rt: Runtime, principal: Principal, policy_id: UUID) -> list[PolicyVersionOut]:
    ctx = await tenant_context(rt, principal.tenant_id)
    await _row(principal.tenant_id, policy_id)
    rows = await SupervisionPolicyVersion.select().where(
        (SupervisionPolicyVersion.tenant == principal.tenant_id) & (SupervisionPolicyVersion.policy == policy_id)
    ).order_by(SupervisionPolicyVersion.version)
    return [_version_out(ctx, r) for r in rows]


async def definitions(ctx: TenantContext, *, policy_id: UUID | None = None, version: int | None = None) -> list[Definition]:
    """The tenant's enabled policies, unsealed for evaluation; with ``policy_id`` that policy
    alone (enabled or not, so a backfill can apply a policy before it is switched on), and with
    ``version`` as it was at that version."""
    if policy_id is not None and version is not None:
        found = await SupervisionPolicyVersion.select().where(
            (SupervisionPolicyVersion.tenant == ctx.tenant_id) & (SupervisionPolicyVersion.policy == policy_id)
            & (SupervisionPolicyVersion.version == version)
        ).first()
        if found is None:
            raise NotFound(f"no version {version} of policy {policy_id}")
        return [_definition(ctx, policy_id, version, json_column(found["snapshot"]))]
    query = SupervisionPolicy.select().where((SupervisionPolicy.tenant == ctx.tenant_id) & (SupervisionPolicy.status == "active"))
    query = query.where(SupervisionPolicy.id == policy_id) if policy_id is not None else query.where(SupervisionPolicy.enabled == True)  # noqa: E712 - Piccolo builds SQL from ==
    rows = await query.order_by(SupervisionPolicy.created_at)
    return [
        _definition(ctx, r["id"], r["version"], {"name": r["name"], "severity": r["severity"], "sample_percent": r["sample_percent"],
                                                 "definition": json_column(r["definition"])})
        for r in rows
    ]


async def enabled_versions(tenant_id: UUID) -> list[tuple[UUID, int]]:
    """(id, version) of the tenant's enabled policies, in the order ``definitions`` gives them:
    cheap to ask on every ingest, to tell whether compiled policies are still current."""
    rows = await SupervisionPolicy.select(SupervisionPolicy.id, SupervisionPolicy.version).where(
        (SupervisionPolicy.tenant == tenant_id) & (SupervisionPolicy.status == "active") & (SupervisionPolicy.enabled == True)  # noqa: E712 - Piccolo builds SQL from ==
    ).order_by(SupervisionPolicy.created_at)
    return [(r["id"], r["version"]) for r in rows]


def _definition(ctx: TenantContext, policy_id: UUID, version: int, snapshot: dict[str, Any]) -> Definition:
    stored = msgspec.convert(snapshot.get("definition", {}), Stored)
    query, patterns = _unseal(ctx, stored)
    return Definition(id=policy_id, version=version, name=snapshot["name"], query=query, patterns=tuple(patterns), scope=stored.scope,
                      sample_percent=float(snapshot["sample_percent"]), severity=snapshot["severity"])
