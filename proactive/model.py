"""The engine's value types: what is delivered, reported, explained and remembered."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from proactive.rules import Rule

VisitorKey = tuple[Any, str]  # (site id, visitor hash)
GroupKey = tuple[Any, str | None]  # (tenant id, agent group); None: rules without a group


class Invitation(msgspec.Struct):
    """As delivered to the browser."""

    id: str
    rule: str
    variant: str
    message: str
    group: str | None
    expires_at: datetime


class DeliveredInvitation(Invitation):
    """An invitation as it leaves the server: ``expires_in`` is the seconds it has left by the
    server's clock when sent. The widget times it from its arrival with that, never by reading
    ``expires_at`` on the visitor's clock, which may be minutes off."""

    expires_in: float

    @classmethod
    def of(cls, invitation: Invitation, now: float) -> DeliveredInvitation:
        left = round(max(0.0, invitation.expires_at.timestamp() - now), 3)
        return cls(**msgspec.structs.asdict(invitation), expires_in=left)


class OpenInvitation(msgspec.Struct):
    """An invitation the engine sent, until it closes (and a while after: it is stored)."""

    invitation: Invitation
    rule_id: str
    key: VisitorKey
    tenant: Any
    sent_at: float
    expires: float
    status: str = "sent"  # sent → shown → accepted | dismissed | expired | withdrawn
    closed_at: float | None = None


class RuleEntry(msgspec.Struct, frozen=True):
    id: str
    tenant: Any
    site: Any
    rule: Rule


class SiteConfig(msgspec.Struct, frozen=True):
    """A site's engagement settings (``site.settings`` in the database)."""

    pacing_per_minute: int = 60
    timezone: str = "UTC"
    holidays: frozenset[str] = frozenset()  # ISO dates (local to ``timezone``) schedules skip
    attributes: dict[str, str] = {}  # declared visitor attributes: name → str | number | bool


class GroupCapacity(msgspec.Struct):
    online_agents: int
    max_chats_per_agent: int
    active_chats: int
    reported_at: datetime  # when Parley received the report
    # The moment the chat platform says the numbers describe (its ``as_of``), when it said: a
    # report describing an earlier moment than the group's current one is not applied.
    as_of: datetime | None = None

    @property
    def describes(self) -> datetime:
        """The moment the numbers are true of: ``as_of``, or, for a report without one, when it came."""
        return self.as_of or self.reported_at

    def supersedes(self, current: GroupCapacity | None) -> bool:
        """Whether this report replaces ``current``: a report without ``as_of`` always does (the
        last one received wins, as before ``as_of`` existed); one with it unless it describes an
        earlier moment than ``current`` (a retry or a reordered delivery of an older report)."""
        return current is None or self.as_of is None or self.as_of >= current.describes


class Outcome(msgspec.Struct):
    rule: str
    rule_id: str
    targeted: bool
    condition: bool
    trace: list[str]
    # "would send", "sent at …", "waiting for capacity: position 3 of 7 since 14:02:10",
    # "delayed until …", "suppressed: <reason>", "not matched", "not targeted: …"
    decision: str
    next_check_at: datetime | None = None
    # For a rule with a goal: "reached at 14:03:10, counted for variant a (last touch)",
    # "reached, not counted for this rule (…)" or "not reached".
    goal: str | None = None


class Decision(msgspec.Struct, frozen=True, array_like=True):
    """One outcome of an episode: ``sent``, ``control`` or ``suppressed_<reason>`` — what
    backtests and the live engine are compared on."""

    at: float
    visitor_hash: str
    rule_id: str
    outcome: str
