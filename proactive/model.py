"""The engine's value types: what is delivered, reported and explained."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from proactive.rules import Rule


class Invitation(msgspec.Struct):
    """As delivered to the browser."""

    id: str
    rule: str
    variant: str
    message: str
    group: str | None
    expires_at: datetime


class OpenInvitation(msgspec.Struct):
    invitation: Invitation
    rule_id: str
    key: tuple[Any, str]
    tenant: Any
    expires: float
    status: str = "sent"


class RuleEntry(msgspec.Struct, frozen=True):
    id: str
    tenant: Any
    site: Any
    rule: Rule


class GroupCapacity(msgspec.Struct):
    online_agents: int
    max_chats_per_agent: int
    active_chats: int
    reported_at: datetime


class Outcome(msgspec.Struct):
    rule: str
    rule_id: str
    targeted: bool
    condition: bool
    trace: list[str]
    decision: str  # "would send", "suppressed: <reason>", "not matched", "not targeted"
    next_check_at: datetime | None = None
