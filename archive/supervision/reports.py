"""Supervision reports, as evidence that supervision happened: who reviewed what (activity),
how long items wait and in which status (ageing), and who changed which policy when (policies).

Each report covers ``[from, to)`` (by the time of the action, of the flag, of the change) and is a
table: named columns and rows, rendered as JSON or as CSV with a header row. Generating one is
ledgered (which report, which range), so the evidence of the evidence is there too.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

import msgspec
from piccolo.columns import Timestamptz
from piccolo.custom_types import Combinable

from archive import ledger
from archive.db import json_column
from archive.errors import NotFound
from archive.runtime import Runtime
from archive.supervision.policies import Stored
from archive.supervision.reviews import CLOSED, STATUSES
from archive.supervision.tables import ReviewEvent, ReviewItem, SupervisionPolicyVersion
from archive.tables import ApiKey
from archive.tenancy import Principal, TenantContext, tenant_context

KINDS = ("activity", "ageing", "policies")
ACTIONS = ("claim", "assign", "comment", "escalate", "resolve", "false_positive", "reopen")
# Age buckets of the ageing report: (label, upper bound).
AGES: tuple[tuple[str, timedelta | None], ...] = (
    ("<1d", timedelta(days=1)), ("1-3d", timedelta(days=3)), ("3-7d", timedelta(days=7)), ("7-30d", timedelta(days=30)), (">30d", None),
)


class ReportQuery(msgspec.Struct, forbid_unknown_fields=True):
    from_: Annotated[datetime, msgspec.Meta(tz=True)] | None = msgspec.field(default=None, name="from")
    to: Annotated[datetime, msgspec.Meta(tz=True)] | None = None
    format: Literal["json", "csv"] = "json"


class Report(msgspec.Struct):
    report: str
    from_: datetime | None = msgspec.field(name="from")
    to: datetime | None
    generated_at: datetime
    columns: list[str]
    rows: list[dict[str, Any]]


def _between(column: Timestamptz, query: ReportQuery, where: Combinable) -> Combinable:
    if query.from_ is not None:
        where &= column >= query.from_
    if query.to is not None:
        where &= column < query.to
    return where


async def _key_names(tenant_id: UUID) -> dict[str, str]:
    rows = await ApiKey.select(ApiKey.prefix, ApiKey.name).where(ApiKey.tenant == tenant_id)
    return {f"key:{r['prefix']}": r["name"] for r in rows}


async def activity(principal: Principal, query: ReportQuery) -> tuple[list[str], list[dict[str, Any]]]:
    """Actions per reviewer (every key that acted on review items), by action."""
    rows = await ReviewEvent.select(ReviewEvent.actor, ReviewEvent.action).where(
        _between(ReviewEvent.at, query, ReviewEvent.tenant == principal.tenant_id))
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for row in rows:
        counts[row["actor"]][row["action"]] += 1
    names = await _key_names(principal.tenant_id)
    columns = ["reviewer", "name", *ACTIONS, "total"]
    return columns, [
        {"reviewer": actor, "name": names.get(actor, ""), **{a: counted[a] for a in ACTIONS}, "total": sum(counted.values())}
        for actor, counted in sorted(counts.items())
    ]


def _age(age: timedelta) -> str:
    return next(label for label, bound in AGES if bound is None or age < bound)


async def ageing(principal: Principal, query: ReportQuery, now: datetime) -> tuple[list[str], list[dict[str, Any]]]:
    """Items flagged in the range by status and age: how long open ones have waited until now,
    how long closed ones took to close."""
    rows = await ReviewItem.select(ReviewItem.status, ReviewItem.created_at, ReviewItem.closed_at).where(
        _between(ReviewItem.created_at, query, ReviewItem.tenant == principal.tenant_id))
    cells: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for row in rows:
        until = row["closed_at"] if row["status"] in CLOSED and row["closed_at"] else now
        cells[(row["status"], _age(until - row["created_at"]))].append(row["created_at"])
    columns = ["status", "age", "count", "oldest_flagged_at"]
    return columns, [
        {"status": status, "age": label, "count": len(cells[(status, label)]), "oldest_flagged_at": min(cells[(status, label)])}
        for status in STATUSES for label, _ in AGES if cells.get((status, label))
    ]


async def policy_changes(ctx: TenantContext, query: ReportQuery) -> tuple[list[str], list[dict[str, Any]]]:
    """Every policy change in the range: who, when, and what the policy became."""
    rows = await SupervisionPolicyVersion.select().where(
        _between(SupervisionPolicyVersion.at, query, SupervisionPolicyVersion.tenant == ctx.tenant_id)).order_by(SupervisionPolicyVersion.id)
    columns = ["at", "policy", "name", "version", "change", "actor", "enabled", "severity", "sample_percent", "query", "patterns", "scope"]
    out = []
    for row in rows:
        snapshot = json_column(row["snapshot"])
        stored = msgspec.convert(snapshot.get("definition", {}), Stored)
        patterns = msgspec.json.decode(ctx.crypto.open_note(stored.patterns_sealed), type=list[str]) if stored.patterns_sealed else []
        out.append({
            "at": row["at"], "policy": row["policy"], "name": snapshot["name"], "version": row["version"], "change": row["change"],
            "actor": row["actor"], "enabled": snapshot["enabled"], "severity": snapshot["severity"], "sample_percent": snapshot["sample_percent"],
            "query": ctx.crypto.open_note(stored.query_sealed).decode() if stored.query_sealed else "", "patterns": patterns,
            "scope": msgspec.to_builtins(stored.scope),
        })
    return columns, out


async def report(rt: Runtime, principal: Principal, kind: str, query: ReportQuery) -> Report:
    if kind not in KINDS:
        raise NotFound(f"no report {kind!r}; reports are {', '.join(KINDS)}")
    now = rt.clock.now()
    if kind == "activity":
        columns, rows = await activity(principal, query)
    elif kind == "ageing":
        columns, rows = await ageing(principal, query, now)
    else:
        columns, rows = await policy_changes(await tenant_context(rt, principal.tenant_id), query)
    await ledger.append(principal.tenant_id, ledger.Entry(
        actor=principal.actor, action="supervision.report", subject=kind,
        details={"from": query.from_.isoformat() if query.from_ else None, "to": query.to.isoformat() if query.to else None,
                 "format": query.format, "rows": len(rows)},
    ))
    return Report(report=kind, from_=query.from_, to=query.to, generated_at=now, columns=columns, rows=rows)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, dict)):
        return msgspec.json.encode(value).decode()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def to_csv(result: Report) -> str:
    """The report's table with a header row (RFC 4180: CRLF line ends, quoted where needed)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(result.columns)
    for row in result.rows:
        writer.writerow([_cell(row.get(c)) for c in result.columns])
    return buffer.getvalue()
