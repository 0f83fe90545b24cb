"""The engagement engine's tables: rules, behaviour events, rule counters."""

from __future__ import annotations

from piccolo.columns import JSON, UUID, BigInt, ForeignKey, Integer, Timestamptz, Varchar
from piccolo.columns.defaults.timestamptz import TimestamptzNow
from piccolo.table import Table

from archive.tables import Site, Tenant


class MarketingRule(Table, tablename="marketing_rule"):
    id = UUID(primary_key=True)
    tenant = ForeignKey(references=Tenant, null=False)
    site = ForeignKey(references=Site, null=False)
    name = Varchar(length=100)
    definition = JSON(default="{}")  # as the marketer wrote it (round-trips through export)
    version = Integer(default=1)
    created_at = Timestamptz(default=TimestamptzNow())
    updated_at = Timestamptz(default=TimestamptzNow())


class BehaviourEvent(Table, tablename="behaviour_event"):
    """Appended durably for backtests, analytics and rebuilding state; removed after the
    event retention period. The visitor id is stored as a keyed hash, URLs without query."""

    tenant = ForeignKey(references=Tenant, null=False)
    site = UUID()
    visitor_hash = Varchar(length=64)
    session_id = Varchar(length=64)
    type = Varchar(length=24)
    name = Varchar(length=64, default="")
    at = Timestamptz()
    url = Varchar(length=512, default="")
    props = JSON(default="{}")
    received_at = Timestamptz(default=TimestamptzNow())


class RuleCounter(Table, tablename="rule_counter"):
    rule = UUID()
    variant = Varchar(length=64)
    name = Varchar(length=48)
    count = BigInt(default=0)  # type: ignore[assignment]  # a column named like Table.count


PROACTIVE_TABLES: list[type[Table]] = [MarketingRule, BehaviourEvent, RuleCounter]
