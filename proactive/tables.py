"""The engagement engine's tables: rules, behaviour events, rule counters, and the engine's durable
memory — visitors, invitations and agent capacity (see proactive.store)."""

from __future__ import annotations

from piccolo.columns import JSON, UUID, BigInt, Bytea, ForeignKey, Integer, Timestamptz, Varchar
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
    """Appended durably for backtests and analytics; removed after the event retention period.
    Holds everything a rule can read, redacted (proactive.events.as_stored): the visitor id as a
    keyed hash; the page content — name, URL, title, referrer, props — sealed in ``payload`` under
    the tenant's event key (proactive.store.PAYLOAD_FIELDS); the columns of those names are empty
    for rows written since (they hold older rows' values until retention removes them).
    ``received_at`` is the server's time (what durations are measured on), ``at`` the browser's
    (it orders events in a batch); ``batch_id`` groups the events the engine applied together."""

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
    tab_id = Varchar(length=64, default="")
    title = Varchar(length=512, default="")
    referrer = Varchar(length=512, default="")
    batch_id = Varchar(length=64, default="")
    payload = Bytea(null=True, default=None)


class RuleCounter(Table, tablename="rule_counter"):
    rule = UUID()
    variant = Varchar(length=64)
    name = Varchar(length=48)
    count = BigInt(default=0)  # type: ignore[assignment]  # a column named like Table.count


class VisitorMemory(Table, tablename="visitor_memory"):
    """One row per visitor of a site: the engine's state for them (proactive.state.dump), written
    with the events that changed it. Deleted with the event retention period after the visitor's
    last event, and by erasure."""

    tenant = ForeignKey(references=Tenant, null=False)
    site = UUID()
    visitor_hash = Varchar(length=64)
    last_seen = Timestamptz()
    next_due = Timestamptz(null=True, default=None)  # a decision due while the visitor is not in memory
    state = Bytea()


class EngagementInvitation(Table, tablename="engagement_invitation"):
    """Every invitation sent, open or closed: open ones hold agent capacity across restarts, recent
    ones pace the site, all of them are what ``/collect`` and the stream deliver."""

    id = Varchar(length=32, primary_key=True)
    tenant = ForeignKey(references=Tenant, null=False)
    site = UUID()
    visitor_hash = Varchar(length=64)
    rule = UUID()
    rule_name = Varchar(length=100)
    variant = Varchar(length=64)
    agent_group = Varchar(length=64, default="")
    message = Varchar(length=500)
    status = Varchar(length=16)
    sent_at = Timestamptz()
    expires_at = Timestamptz()
    closed_at = Timestamptz(null=True, default=None)
    delivered_at = Timestamptz(null=True, default=None)  # engine replicas: when a channel took it (proactive.handoff)


class AgentCapacity(Table, tablename="agent_capacity"):
    """The last capacity report per agent group."""

    tenant = ForeignKey(references=Tenant, null=False)
    agent_group = Varchar(length=64)
    online_agents = Integer()
    max_chats_per_agent = Integer()
    active_chats = Integer()
    reported_at = Timestamptz()  # when the report was received
    # The moment the report's numbers describe, when the platform said (``as_of``); NULL for a
    # report without one, which describes ``reported_at``.
    as_of = Timestamptz(null=True, default=None)
    # Visitors waiting for a slot of the group, as the owning process last wrote it (engine
    # replicas: a process that does not own the tenant answers capacity from this row).
    waiting = Integer(default=0)


class EngagementHandoff(Table, tablename="engagement_handoff"):
    """Engine replicas (proactive.handoff): a collect batch stored by a process that does not own its
    site, waiting for the owner. Its events are in ``behaviour_event`` (same tenant, visitor hash,
    batch id and ``received_at``); the row goes in the owner's commit that applied them."""

    tenant = UUID()
    site = UUID()
    visitor_hash = Varchar(length=64)
    batch_id = Varchar(length=64)
    received_at = Timestamptz()


PROACTIVE_TABLES: list[type[Table]] = [MarketingRule, BehaviourEvent, RuleCounter, VisitorMemory, EngagementInvitation, AgentCapacity,
                                       EngagementHandoff]
