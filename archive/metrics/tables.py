"""The metrics tables: figures per conversation (in clear, numbers only), the change marks that
invalidate cached report cells, and the cells themselves.

``conversation_metrics`` holds one row per conversation *and agent who took part* (one row with
agent ``""`` when no agent did). Conversation-wide figures (resolution, ratings, FCR, …) are
repeated on every row of the conversation; ``is_primary`` marks the one row that counts the
conversation once (the agent who sent the first reply, else the first agent involved). Per-agent
figures (replies, the busy interval and the concurrency shares) belong to their row. Times are
epoch seconds: reports do arithmetic on them in SQL, the same on SQLite and PostgreSQL.

Nothing here is text a person wrote: agent ids, site, channel and group names are the same clear
facets the ``conversation`` row already has, the visitor is a keyed hash, and the invitation id is
the engagement engine's random id.
"""

from __future__ import annotations

from piccolo.columns import JSON, UUID, BigInt, Bytea, DoublePrecision, ForeignKey, Integer, Serial, Varchar
from piccolo.table import Table

from archive.tables import Tenant


class ConversationMetrics(Table, tablename="conversation_metrics"):
    id: Serial
    tenant = ForeignKey(references=Tenant, null=False)
    conversation = UUID()
    agent = Varchar(length=200, default="")
    is_primary = Integer(default=1)
    started_at = BigInt()
    ended_at = BigInt()
    site = Varchar(length=64)
    channel = Varchar(length=32)
    agent_group = Varchar(length=64, default="")
    visitor_hash = Varchar(length=64)
    # The conversation's tags (FCR compares topics); ["" ] when it has none.
    topics = JSON(default="[]")
    # Conversation-wide; first_reply_s and awaited only on the primary row.
    awaited = Integer(default=0)
    first_reply_s = Integer(null=True, default=None)
    resolution_s = Integer(default=0)
    visitor_messages = Integer(default=0)
    agent_messages = Integer(default=0)
    handovers = Integer(default=0)
    # Seconds from this conversation's end to the visitor's next one about a shared topic, when
    # that came within the FCR horizon (90 days); NULL when none did.
    next_contact_s = BigInt(null=True, default=None)
    csat = Integer(null=True, default=None)
    nps = Integer(null=True, default=None)
    ces = Integer(null=True, default=None)
    invitation_id = Varchar(length=64, null=True, default=None)
    rule = UUID(null=True, default=None)
    variant = Varchar(length=64, null=True, default=None)
    # This row's agent.
    replies = Integer(default=0)
    reply_total_s = BigInt(default=0)
    busy_from = BigInt(null=True, default=None)
    busy_to = BigInt(null=True, default=None)
    # Seconds of the busy interval spent at 1, 2, 3, 4+ open conversations, each divided by that
    # number: summed over an agent's rows they give the agent's wall-clock time at each level.
    conc1 = DoublePrecision(default=0.0)
    conc2 = DoublePrecision(default=0.0)
    conc3 = DoublePrecision(default=0.0)
    conc4 = DoublePrecision(default=0.0)
    peak = Integer(default=0)


class MetricsChange(Table, tablename="metrics_change"):
    """A counter per tenant and UTC hour, bumped in the transaction that changes any metrics row
    of a conversation that started in that hour; cached cells remember the counters they saw."""

    id: Serial
    tenant = ForeignKey(references=Tenant, null=False)
    hour = BigInt()
    version = BigInt(default=1)


class MetricsCell(Table, tablename="metrics_cell"):
    """One local day of one tenant, aggregated for one dimension (agent, group, site, channel,
    day, hour, funnel): a cache of what the report needs from that day's metrics rows, valid
    while ``fingerprint`` equals the sum of the day's change counters (archive/metrics/cells.py)."""

    id: Serial
    tenant = ForeignKey(references=Tenant, null=False)
    time_zone = Varchar(length=64)
    day = BigInt()
    dim = Varchar(length=16)
    format = Integer()
    fingerprint = BigInt()
    data = Bytea()


class FunnelChats(Table, tablename="funnel_chats"):
    """Chats each rule's invitations led to, per variant: counted when a conversation is first
    linked to the rule (at ingest, or by a revision that brings the invitation id) and never
    uncounted when retention or erasure deletes the conversation — the invitations ``sent`` it
    is divided by (``rule_counter``) are never uncounted either, so a rule's chat rate does not
    drift down as old chats expire. A revision that moves a chat to another rule moves its count."""

    id: Serial
    tenant = ForeignKey(references=Tenant, null=False)
    rule = UUID()
    variant = Varchar(length=64, default="")
    chats = BigInt(default=0)


METRICS_TABLES: list[type[Table]] = [ConversationMetrics, MetricsChange, MetricsCell, FunnelChats]
