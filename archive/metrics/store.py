"""Keeping ``conversation_metrics`` true: written at ingest, rewritten on a revision, deleted with
the conversation — each inside the transaction that changes the conversation.

Two figures depend on *other* conversations, and are kept exact by recomputing the neighbourhood
of every change rather than at report time (a report over a million conversations cannot afford
a self-join):

* **Concurrency** (an agent's busy intervals): a new, revised or deleted interval changes the
  shares of the agent's intervals that overlap it. Those, and everything overlapping them, are
  loaded (busy intervals last at most ``MAX_BUSY_SECONDS``, which bounds the search) and their
  shares recomputed.
* **FCR** (``next_contact_s``): a visitor's conversation changes the next contact of their
  earlier conversations about a shared topic. The visitor's conversations around it are loaded
  and recomputed.

Ingests of one tenant are serialised by the ledger head lock they all take before the steps run,
so two ingests never recompute the same neighbourhood from stale rows. Every change bumps the
change counter of the UTC hour the changed rows started in (``metrics_change``), which is what
invalidates cached report cells (archive/metrics/cells.py).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, NamedTuple
from uuid import UUID

import structlog

from archive import db
from archive.db import json_column
from archive.ingest import IngestStep, Prepared
from archive.metrics import compute
from archive.metrics.compute import FCR_HORIZON_SECONDS, MAX_BUSY_SECONDS, MAX_SPAN_SECONDS, Busy, Figures, Visit
from archive.metrics.tables import ConversationMetrics

if TYPE_CHECKING:
    from archive.runtime import Runtime

log = structlog.get_logger(__name__)

# A "visitor" with more conversations than this around one change is not a person (a platform
# sending one id for every anonymous visitor): their FCR is not tracked.
MAX_VISITS = 5000
# Changes further apart than this are looked up in separate queries (a backfill in random order
# must not load everything in between).
CLUSTER_GAP_SECONDS = 86_400

COLUMNS = (
    "tenant", "conversation", "agent", "is_primary", "started_at", "ended_at", "site", "channel", "agent_group",
    "visitor_hash", "topics", "awaited", "first_reply_s", "resolution_s", "visitor_messages", "agent_messages",
    "handovers", "csat", "nps", "ces", "invitation_id", "rule", "variant", "replies", "reply_total_s",
    "busy_from", "busy_to",
)
INSERT = f"INSERT INTO conversation_metrics ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})"
UPDATE_LOAD = "UPDATE conversation_metrics SET conc1 = ?, conc2 = ?, conc3 = ?, conc4 = ?, peak = ? WHERE id = ?"
UPDATE_NEXT = "UPDATE conversation_metrics SET next_contact_s = ? WHERE conversation = ?"
COUNT_CHATS = (
    "INSERT INTO funnel_chats (tenant, rule, variant, chats) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (tenant, rule, variant) DO UPDATE SET chats = funnel_chats.chats + excluded.chats"
)
BUMP = (
    "INSERT INTO metrics_change (tenant, hour, version) VALUES (?, ?, 1) "
    "ON CONFLICT (tenant, hour) DO UPDATE SET version = metrics_change.version + 1"
)


class Link(NamedTuple):
    """The engagement rule and variant whose invitation a conversation came from."""

    rule: UUID
    variant: str


# Invitation ids (with the start of the conversation each was found in, epoch seconds) to the
# rule and variant that sent them; the engagement engine knows (proactive/funnel.py), and the
# composition root hands its resolver to the step.
# It gets the runtime: the invitation events it reads are sealed under the tenant's key.
Resolver = Callable[["Runtime", UUID, dict[str, int]], Awaitable[dict[str, Link]]]


async def no_invitations(rt: Runtime, tenant_id: UUID, wanted: dict[str, int]) -> dict[str, Link]:
    return {}


class MetricsStep(IngestStep):
    """Support figures of every ingested conversation and revision, in the ingest transaction."""

    def __init__(self, resolve: Resolver = no_invitations) -> None:
        self.resolve = resolve

    async def after_insert(self, rt: Runtime, tenant_id: UUID, items: list[Prepared]) -> None:
        await record(rt, tenant_id, [(p.id, p.visitor_hash, compute.figures(p.stored)) for p in items], self.resolve)


async def record(rt: Runtime, tenant_id: UUID, conversations: list[tuple[UUID, str, Figures]], resolve: Resolver = no_invitations) -> None:
    """Write (or rewrite, for a revision) the metrics rows of these conversations and bring their
    neighbours up to date. Inside the ingest transaction."""
    ids = [cid for cid, _, _ in conversations]
    before = await _rows_of(tenant_id, ids)
    links = await resolve(rt, tenant_id, {f.invitation_id: f.started_at for _, _, f in conversations if f.invitation_id})
    # A revision (the post-chat survey, a reopened chat) may come after event retention purged the
    # invitation's events: the link found when the conversation was first archived stays.
    earlier = await _links_of(tenant_id, ids) if before else {}
    if before:
        await ConversationMetrics.delete().where(
            (ConversationMetrics.tenant == tenant_id) & ConversationMetrics.conversation.is_in(ids)
        )
    was = {cid: link for (cid, _), link in earlier.items()}
    counted: Counter[Link] = Counter()
    rows = []
    for cid, visitor_hash, f in conversations:
        link = links.get(f.invitation_id or "") or earlier.get((cid, f.invitation_id or ""))
        if link != was.get(cid):  # a new chat of the rule, or a revision that changed its link
            counted.update([link] if link else [])
            counted.subtract([was[cid]] if cid in was else [])
        for part in f.parts:
            rows.append((
                tenant_id, cid, part.agent, int(part.primary), f.started_at, f.ended_at, f.site, f.channel, f.group,
                visitor_hash, json.dumps(f.topics), int(f.awaited and part.primary), f.first_reply_s if part.primary else None,
                f.resolution_s, f.visitor_messages, f.agent_messages, f.handovers, f.csat, f.nps, f.ces, f.invitation_id,
                link.rule if link else None, link.variant if link else None,
                part.replies, part.reply_total_s,
                part.busy_from, part.busy_to,
            ))
    await db.execute_many(INSERT, rows)
    await db.execute_many(COUNT_CHATS, [(tenant_id, link.rule, link.variant, n) for link, n in counted.items() if n])
    after = [
        _Row(cid, p.agent, f.started_at, f.ended_at, visitor_hash, tuple(f.topics), p.busy_from, p.busy_to, p.primary)
        for cid, visitor_hash, f in conversations for p in f.parts
    ]
    await _refresh(tenant_id, before + after)


async def _links_of(tenant_id: UUID, ids: list[UUID]) -> dict[tuple[UUID, str], Link]:
    """The rule and variant each of these conversations is linked to now, by conversation and
    invitation id."""
    m = ConversationMetrics
    found = await m.select(m.conversation, m.invitation_id, m.rule, m.variant).where(
        (m.tenant == tenant_id) & m.conversation.is_in(ids) & (m.is_primary == 1) & m.rule.is_not_null()
    )
    return {(r["conversation"], r["invitation_id"] or ""): Link(r["rule"], r["variant"] or "") for r in found}


async def delete(tenant_id: UUID, conversation_ids: list[UUID]) -> None:
    """The metrics rows of conversations being deleted, inside the deletion transaction; their
    neighbours' figures (concurrency, FCR) are recomputed without them."""
    if not conversation_ids:
        return
    before = await _rows_of(tenant_id, conversation_ids)
    if not before:
        return
    await ConversationMetrics.delete().where(
        (ConversationMetrics.tenant == tenant_id) & ConversationMetrics.conversation.is_in(conversation_ids)
    )
    await _refresh(tenant_id, before)


class _Row:
    """What a changed row contributes to its neighbourhoods."""

    __slots__ = ("conversation", "agent", "started", "ended", "visitor", "topics", "busy_from", "busy_to", "primary")

    def __init__(self, conversation: UUID, agent: str, started: int, ended: int, visitor: str, topics: tuple[str, ...],
                 busy_from: int | None, busy_to: int | None, primary: bool) -> None:
        self.conversation, self.agent, self.started, self.ended = conversation, agent, started, ended
        self.visitor, self.topics, self.busy_from, self.busy_to, self.primary = visitor, topics, busy_from, busy_to, primary


async def _rows_of(tenant_id: UUID, ids: list[UUID]) -> list[_Row]:
    if not ids:
        return []
    m = ConversationMetrics
    found = await m.select(
        m.conversation, m.agent, m.started_at, m.ended_at, m.visitor_hash, m.topics, m.busy_from, m.busy_to, m.is_primary
    ).where((m.tenant == tenant_id) & m.conversation.is_in(ids))
    return [
        _Row(r["conversation"], r["agent"], r["started_at"], r["ended_at"], r["visitor_hash"], tuple(json_column(r["topics"])),
             r["busy_from"], r["busy_to"], bool(r["is_primary"]))
        for r in found
    ]


async def _refresh(tenant_id: UUID, changed: list[_Row]) -> None:
    """Recompute the neighbourhoods of ``changed`` (rows as they were and as they are now) and
    mark every hour whose rows changed."""
    hours = {r.started // 3600 for r in changed}
    hours |= await _refresh_loads(tenant_id, [r for r in changed if r.agent and r.busy_from is not None])
    hours |= await _refresh_visits(tenant_id, [r for r in changed if r.primary])
    await db.execute_many(BUMP, [(tenant_id, hour * 3600) for hour in sorted(hours)])


def _clusters(spans: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """Spans merged where they lie within ``CLUSTER_GAP_SECONDS`` of each other."""
    merged: list[list[int]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1] + CLUSTER_GAP_SECONDS:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    return [(lo, hi) for lo, hi in merged]


async def _refresh_loads(tenant_id: UUID, changed: list[_Row]) -> set[int]:
    """Concurrency shares of every interval overlapping a changed one. Returns the hours of the
    rows updated."""
    hours: set[int] = set()
    if not changed:
        return hours
    m = ConversationMetrics
    for lo, hi in _clusters((r.busy_from or 0, r.busy_to or 0) for r in changed):
        agents = sorted({r.agent for r in changed if lo <= (r.busy_from or 0) <= hi})
        # Intervals overlapping [lo, hi] start after lo - MAX_BUSY; what overlaps *them* starts
        # after lo - 2 * MAX_BUSY and before hi + MAX_BUSY.
        rows = await m.select(m.id, m.agent, m.started_at, m.busy_from, m.busy_to, m.conc1, m.conc2, m.conc3, m.conc4, m.peak).where(
            (m.tenant == tenant_id) & m.agent.is_in(agents)
            & (m.busy_from >= lo - 2 * MAX_BUSY_SECONDS) & (m.busy_from < hi + MAX_BUSY_SECONDS)
        )
        by_agent: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            by_agent[row["agent"]].append(row)
        updates = []
        for agent, intervals in by_agent.items():
            spans = [(r.busy_from or 0, r.busy_to or 0) for r in changed if r.agent == agent]
            computed = compute.loads(Busy(r["id"], r["busy_from"], r["busy_to"]) for r in intervals)
            for row in intervals:
                # Only rows whose every overlapping interval was loaded, and that could have changed.
                if not any(row["busy_from"] <= s_hi and row["busy_to"] >= s_lo for s_lo, s_hi in spans):
                    continue
                load = computed[row["id"]]
                if (tuple(row[c] for c in ("conc1", "conc2", "conc3", "conc4")), row["peak"]) != (load.shares, load.peak):
                    updates.append((*load.shares, load.peak, row["id"]))
                    hours.add(row["started_at"] // 3600)
        await db.execute_many(UPDATE_LOAD, updates)
    return hours


async def _refresh_visits(tenant_id: UUID, changed: list[_Row]) -> set[int]:
    """``next_contact_s`` of the changed visitors' conversations around each change. Returns the
    hours of the conversations updated."""
    hours: set[int] = set()
    if not changed:
        return hours
    m = ConversationMetrics
    reach = FCR_HORIZON_SECONDS + MAX_SPAN_SECONDS
    for lo, hi in _clusters((r.started, r.started) for r in changed):
        visitors = sorted({r.visitor for r in changed if lo <= r.started <= hi})
        rows = await m.select(m.conversation, m.visitor_hash, m.started_at, m.ended_at, m.topics, m.next_contact_s).where(
            (m.tenant == tenant_id) & m.visitor_hash.is_in(visitors) & (m.is_primary == 1)
            & (m.started_at >= lo - reach) & (m.started_at <= hi + reach)
        )
        by_visitor: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            by_visitor[row["visitor_hash"]].append(row)
        updates = []
        changed_ids = {r.conversation for r in changed}
        for visitor, visits in by_visitor.items():
            if len(visits) > MAX_VISITS:
                log.warning("fcr_visitor_skipped", visits=len(visits), reason="too many conversations for one visitor")
                continue
            starts = [r.started for r in changed if r.visitor == visitor]
            first, last = min(starts), max(starts)
            nexts = compute.next_contacts(
                Visit(r["conversation"], r["started_at"], r["ended_at"], tuple(json_column(r["topics"]))) for r in visits
            )
            for row in visits:
                # Changed conversations and those before them whose next contact may be a changed one,
                # as long as everything they could meet was loaded.
                reachable = first - FCR_HORIZON_SECONDS <= row["ended_at"] <= last + MAX_SPAN_SECONDS and row["started_at"] <= last
                if not reachable and row["conversation"] not in changed_ids:
                    continue
                value = nexts[row["conversation"]]
                if value != row["next_contact_s"]:
                    updates.append((value, row["conversation"]))
                    hours.add(row["started_at"] // 3600)
        await db.execute_many(UPDATE_NEXT, updates)
    return hours
