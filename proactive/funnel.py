"""From invitation to outcome: which archived chats an invitation led to, and how they went.

The widget hands the invitation id to the chat platform (docs/connectors.md shows how for each
platform; the plain API takes ``metadata.invitation_id``), and the platform's transcript brings
it back. At ingest the id is looked up (``resolve``) and the conversation's metrics rows name the
rule and variant (archive/metrics/store.py), so a rule's chats stay counted after the engine's
own records of the invitation are purged.

A rule's stats (``GET /v1/rules/{id}/stats``) gain, per variant: ``chats`` (all time, next to the
invitations ``sent``; kept in ``funnel_chats``, so chats deleted by retention stay counted as
the invitations that led to them do), ``chat_rate`` (chats per invitation sent), and the outcomes of the chats of
the last ``OUTCOME_DAYS`` days — resolution time, CSAT, FCR — beside the same outcomes of the
chats on the rule's site that no invitation led to (``uninvited``): whether an invited chat goes
better or worse than one the visitor started, and which variant's chats go best.
"""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec

from archive.metrics import cells
from archive.metrics.cells import Group
from archive.metrics.report import Csat, Span, figures
from archive.metrics.store import Link
from archive.metrics.tables import FunnelChats
from archive.tables import Site
from proactive import store
from proactive.tables import BehaviourEvent, EngagementInvitation, MarketingRule

if TYPE_CHECKING:
    from archive.runtime import Runtime

OUTCOME_DAYS = 30
# The snippet records these with the invitation's id, rule name and variant (docs/snippet.md).
INVITATION_EVENTS = ["invitation_shown", "invitation_accepted"]
# How long before a chat starts its invitation may have been shown (invitations expire sooner).
LOOKBACK_SECONDS = 2 * 3600
LOOKAHEAD_SECONDS = 3600  # browser clocks run fast too


async def resolve(rt: Runtime, tenant_id: UUID, wanted: dict[str, int]) -> dict[str, Link]:
    """The rule and variant of each invitation id (``wanted``: id → the chat's start, epoch
    seconds): first from the engine's own record of the invitations it sent (the rule's id, which
    a rename does not change, and the variant the engine chose), then, for ids no longer there,
    from the invitation events the snippet recorded around the chats' starts (by rule name)."""
    if not wanted:
        return {}
    i = EngagementInvitation
    sent = {
        row["id"]: Link(row["rule"], row["variant"] or "")
        for row in await i.select(i.id, i.rule, i.variant).where((i.tenant == tenant_id) & i.id.is_in(sorted(wanted)))
    }
    rest = {invitation: start for invitation, start in wanted.items() if invitation not in sent}
    return {**await _from_events(rt, tenant_id, rest), **sent} if rest else sent


async def _from_events(rt: Runtime, tenant_id: UUID, wanted: dict[str, int]) -> dict[str, Link]:
    """The invitation events' answer. Their props are sealed (proactive.store.PAYLOAD_FIELDS):
    opened with the tenant's key."""
    sites = [row["id"] for row in await Site.select(Site.id).where(Site.tenant == tenant_id)]
    if not sites:
        return {}
    e = BehaviourEvent
    since = datetime.fromtimestamp(min(wanted.values()) - LOOKBACK_SECONDS, timezone.utc)
    until = datetime.fromtimestamp(max(wanted.values()) + LOOKAHEAD_SECONDS, timezone.utc)
    rows = await e.select(e.props, e.payload, e.visitor_hash, e.name, e.url, e.title, e.referrer).where(
        e.site.is_in(sites) & (e.at >= since) & (e.at <= until) & e.type.is_in(INVITATION_EVENTS)
    )
    crypto = (await rt.tenants.context(tenant_id)).crypto
    named: dict[str, tuple[str, str]] = {}
    for row in rows:
        props = store.event_payload(row, crypto)["props"] or {}
        invitation = str(props.get("invitation_id") or "")
        if invitation in wanted and props.get("rule"):
            named[invitation] = (str(props["rule"]), str(props.get("variant") or ""))
    if not named:
        return {}
    r = MarketingRule
    ids = {
        row["name"]: row["id"]
        for row in await r.select(r.id, r.name).where((r.tenant == tenant_id) & r.name.is_in(sorted({n for n, _ in named.values()})))
    }
    return {invitation: Link(ids[name], variant) for invitation, (name, variant) in named.items() if name in ids}


class Outcomes(msgspec.Struct):
    """How a set of chats went (the last ``OUTCOME_DAYS`` days)."""

    chats: int
    resolution_s: Span
    csat: Csat
    fcr_rate: float | None


class RuleChats(msgspec.Struct):
    days: int
    chats: dict[str, int]  # per variant, all time
    outcomes: dict[str, Outcomes]  # per variant
    totals: Outcomes
    uninvited: Outcomes


async def rule_chats(rt: Runtime, tenant_id: UUID, rule_id: UUID, site: str) -> RuleChats:
    """The chats a rule's invitations led to, per variant, and the uninvited chats of its site."""
    counted = await FunnelChats.select(FunnelChats.variant, FunnelChats.chats).where(
        (FunnelChats.tenant == tenant_id) & (FunnelChats.rule == rule_id) & (FunnelChats.chats > 0)
    )
    ctx = await rt.tenants.context(tenant_id)
    zone = ZoneInfo(ctx.settings.time_zone)
    now = math.floor(rt.clock.now().timestamp())
    since = cells.day_start(cells.local_day(now, zone) - timedelta(days=OUTCOME_DAYS - 1), zone)
    parts = await cells.collect(tenant_id, zone, since, now, ["funnel"], now)
    invited: dict[str, list[Group]] = defaultdict(list)
    uninvited: list[Group] = []
    for part in parts:
        for key, group in part["funnel"].items():
            key_site, key_rule, variant = key.split(cells.FUNNEL_SEPARATOR)
            if key_rule == str(rule_id):
                invited[variant].append(group)
            elif key_rule == "" and key_site == site:
                uninvited.append(group)
    return RuleChats(
        days=OUTCOME_DAYS,
        chats={row["variant"]: row["chats"] for row in counted},
        outcomes={variant: _outcomes(groups, ctx.settings) for variant, groups in sorted(invited.items())},
        totals=_outcomes([g for groups in invited.values() for g in groups], ctx.settings),
        uninvited=_outcomes(uninvited, ctx.settings),
    )


def _outcomes(groups: list[Group], settings: Any) -> Outcomes:
    found = figures(groups, settings)
    return Outcomes(chats=found.conversations, resolution_s=found.resolution_s, csat=found.csat, fcr_rate=found.fcr_rate)
