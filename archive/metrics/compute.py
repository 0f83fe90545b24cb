"""Support figures of one conversation, computed from its metadata only.

Only timestamps, sender roles and ids, message kinds, agents, tags, metadata keys and the survey
numbers are read — never a message's words — so the figures may be stored in clear. The
definitions (docs/kpi.md has the long form):

* **Messages** are entries of kind ``message``; notes and events are not, and later versions of
  an edited or deleted message (``edited_at``/``deleted`` on an entry whose message came earlier)
  are not counted again — an edited message seen only once counts.
* **First reply**: from the visitor's first message to the first agent message after it. A bot
  is not an agent: what the KPI measures is how long a person took.
* **Reply times**: every agent message that answers waiting visitor messages counts, from the
  first message that waited; each agent gets their own.
* **Resolution**: ``ended_at − started_at``.
* **Handovers**: how often the agent writing changes from one agent message to the next.
* **Busy interval** of an agent: from their first action in the conversation (message, note or
  event they caused) — or its start, if they never acted — to its end; an agent who handed over
  is free after their last action. At most ``MAX_BUSY_SECONDS``.
* **Primary agent**: who sent the first reply, else the first agent involved. The conversation
  counts once, under them, wherever a report must not count it per agent.

Durations are whole seconds, rounded half up.
"""

from __future__ import annotations

import bisect
import math
import re
from collections import defaultdict
from collections.abc import Hashable, Iterable, Mapping
from datetime import datetime
from typing import NamedTuple

import msgspec

from archive.models import Message, Ratings, StoredConversation

# An agent counts as busy with one conversation for at most this long: a chat left open over
# a weekend must not read as two days of work (and the bound keeps neighbour lookups small).
MAX_BUSY_SECONDS = 12 * 3600
# FCR looks this far ahead for a return (the tenant's fcr_days may not exceed it).
FCR_HORIZON_SECONDS = 90 * 86_400
# Longest conversation the FCR neighbourhood search allows for; longer ones still count, but a
# return during them may be missed when a neighbour changes.
MAX_SPAN_SECONDS = 31 * 86_400
# Metadata keys naming the agent group (team, department), first found wins: ``group`` from the
# plain API, then what connectors carry (Intercom's team, Rocket.Chat's department).
GROUP_KEYS = ("group", "team", "department", "team_assignee_id", "department_id")
# The invitation id the widget hands to the chat platform: ``invitation_id`` from the plain
# API, or ``<prefix>.invitation_id`` where a connector keeps custom fields under a prefix.
INVITATION_KEY = "invitation_id"
# What an invitation id can be: the server issues 32 hex digits, and the browser path keeps only
# ids of this shape (proactive.events). The value lands in a clear column, so anything else in the
# field — words, a masked number — is not an id and is not kept.
_INVITATION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
LEVELS = 4  # concurrency is reported at 1, 2, 3 and 4+ open conversations


class AgentPart(msgspec.Struct, kw_only=True):
    """One agent's share of a conversation."""

    agent: str
    primary: bool
    busy_from: int | None
    busy_to: int | None
    replies: int = 0
    reply_total_s: int = 0


class Figures(msgspec.Struct, kw_only=True):
    started_at: int
    ended_at: int
    site: str
    channel: str
    group: str
    topics: list[str]
    awaited: bool
    first_reply_s: int | None
    resolution_s: int
    visitor_messages: int
    agent_messages: int
    handovers: int
    csat: int | None
    nps: int | None
    ces: int | None
    invitation_id: str | None
    parts: list[AgentPart]


def epoch(moment: datetime) -> int:
    return math.floor(moment.timestamp())


def seconds(start: datetime, end: datetime) -> int:
    return max(0, math.floor((end - start).total_seconds() + 0.5))


def _counted(messages: Iterable[Message]) -> list[Message]:
    """The messages in time order, each once: a later version of an edited or deleted message
    (``edited_at``/``deleted`` on an entry whose message came earlier) is left out. What makes it
    a later version is an earlier entry with the same platform ``id`` — or, for entries without
    one, an earlier entry of the same sender. An edited or deleted message seen only once (a
    platform such as Rocket.Chat sends the message as it is now, ``editedAt`` set; Intercom a
    redacted part) is the message itself and counts: the visitor did write, the agent did answer."""
    ordered = sorted(messages, key=lambda m: m.at)
    seen_ids: set[str] = set()
    seen_senders: set[tuple[str, str | None]] = set()
    kept = []
    for message in ordered:
        sender = (message.sender.role, message.sender.id)
        later = (message.id in seen_ids) if message.id is not None else (sender in seen_senders)
        if not (later and (message.edited_at is not None or message.deleted)):
            kept.append(message)
        if message.id is not None:
            seen_ids.add(message.id)
        seen_senders.add(sender)
    return kept


def figures(conversation: StoredConversation) -> Figures:
    """Everything the reports need from one conversation (see the module docstring)."""
    entries = _counted(conversation.messages)
    listed = [a.id for a in conversation.agents]
    sole = listed[0] if len(listed) == 1 else ""

    def agent_of(message: Message) -> str:
        return message.sender.id or sole

    acted: dict[str, list[datetime]] = defaultdict(list)
    replies: dict[str, list[int]] = defaultdict(list)
    speakers: list[str] = []
    waiting_since: datetime | None = None
    first_reply: tuple[str, int] | None = None
    visitor_messages = agent_messages = 0
    for message in entries:
        role = message.sender.role
        if role == "agent" or (role == "system" and message.sender.id in listed):
            actor = agent_of(message) if role == "agent" else message.sender.id or ""
            if actor:
                acted[actor].append(message.at)
        if message.kind != "message":
            continue
        if role == "visitor":
            visitor_messages += 1
            if waiting_since is None:
                waiting_since = message.at
        elif role == "agent":
            agent_messages += 1
            agent = agent_of(message)
            if agent:
                speakers.append(agent)
            if waiting_since is not None:
                gap = seconds(waiting_since, message.at)
                replies[agent].append(gap)
                if first_reply is None:
                    first_reply = (agent, gap)
                waiting_since = None
    involved = [a for a in dict.fromkeys([*listed, *acted]) if a]
    primary = first_reply[0] if first_reply and first_reply[0] else (involved[0] if involved else "")
    started, ended = conversation.started_at, conversation.ended_at
    last_action = max((max(times) for times in acted.values()), default=None)
    parts = []
    for agent in involved or [""]:
        busy_from: int | None = None
        busy_to: int | None = None
        if agent:
            times = acted.get(agent)
            # An agent whose last action is not the conversation's last was relieved by another.
            begin, finish = (min(times), ended if max(times) == last_action else max(times)) if times else (started, ended)
            busy_from = epoch(min(max(begin, started), ended))
            busy_to = max(busy_from, min(epoch(min(finish, ended)), busy_from + MAX_BUSY_SECONDS))
        gaps = replies.get(agent, [])
        parts.append(AgentPart(agent=agent, primary=agent == primary, busy_from=busy_from, busy_to=busy_to,
                               replies=len(gaps), reply_total_s=sum(gaps)))
    if "" in replies and all(p.agent for p in parts):
        # Replies by an agent nobody can name still count for the conversation: give them to the
        # primary row so conversation totals stay whole.
        lead = next(p for p in parts if p.primary)
        lead.replies += len(replies[""])
        lead.reply_total_s += sum(replies[""])
    ratings = conversation.ratings if isinstance(conversation.ratings, Ratings) else Ratings()
    return Figures(
        started_at=epoch(started),
        ended_at=epoch(ended),
        site=conversation.site,
        channel=conversation.channel,
        group=_group(conversation.metadata),
        topics=sorted(set(conversation.tags)) or [""],
        awaited=visitor_messages > 0,
        first_reply_s=first_reply[1] if first_reply else None,
        resolution_s=seconds(started, ended),
        visitor_messages=visitor_messages,
        agent_messages=agent_messages,
        handovers=sum(1 for a, b in zip(speakers, speakers[1:]) if a != b),
        csat=ratings.csat,
        nps=ratings.nps,
        ces=ratings.ces,
        invitation_id=invitation_id(conversation.metadata),
        parts=parts,
    )


def _group(metadata: Mapping[str, object]) -> str:
    for key in GROUP_KEYS:
        value = metadata.get(key)
        if value is not None and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()[:64]
    return ""


def invitation_id(metadata: Mapping[str, object]) -> str | None:
    """The engagement invitation a conversation came from, if the platform carried its id."""
    for key, value in metadata.items():
        if (key == INVITATION_KEY or key.endswith("." + INVITATION_KEY)) and isinstance(value, (str, int)) and not isinstance(value, bool):
            text = str(value).strip()
            if _INVITATION_ID.fullmatch(text):
                return text
    return None


# --- FCR: the visitor's next conversation about a shared topic ------------------------------------


class Visit(NamedTuple):
    key: Hashable
    started: int
    ended: int
    topics: tuple[str, ...]


def next_contacts(visits: Iterable[Visit], horizon: int = FCR_HORIZON_SECONDS) -> dict[Hashable, int | None]:
    """For each visit of one visitor: seconds from its end to the start of the next visit (one
    that started later) sharing a topic — 0 when that one started before it ended — if within
    ``horizon``; else None. Per topic the nearest later start gives the smallest gap, so one
    sorted pass per topic suffices."""
    items = list(visits)
    by_topic: dict[str, list[tuple[int, Hashable]]] = defaultdict(list)
    for visit in items:
        for topic in visit.topics:
            by_topic[topic].append((visit.started, visit.key))
    starts = {topic: sorted(s for s, _ in entries) for topic, entries in by_topic.items()}
    result: dict[Hashable, int | None] = {}
    for visit in items:
        best: int | None = None
        for topic in visit.topics:
            ordered = starts[topic]
            index = bisect.bisect_right(ordered, visit.started)
            if index < len(ordered):
                gap = max(0, ordered[index] - visit.ended)
                best = gap if best is None else min(best, gap)
        result[visit.key] = best if best is not None and best <= horizon else None
    return result


# --- concurrency: how many conversations an agent had open at once --------------------------------


class Busy(NamedTuple):
    key: Hashable
    start: int
    end: int


class Load(NamedTuple):
    shares: tuple[float, float, float, float]
    peak: int


def loads(intervals: Iterable[Busy]) -> dict[Hashable, Load]:
    """For one agent's busy intervals: for each, the seconds it spent at 1, 2, 3, 4+ open
    conversations, each divided by how many were open (so the shares of all intervals add up to
    the agent's wall-clock time at each level), and the most that were open at once during it.
    An interval ending when another starts does not overlap it."""
    everything = list(intervals)
    items = [b for b in everything if b.end > b.start]
    events = sorted([(b.start, 1, b.key) for b in items] + [(b.end, 0, b.key) for b in items], key=lambda e: (e[0], e[1]))
    shares: dict[Hashable, list[float]] = {b.key: [0.0] * LEVELS for b in items}
    peaks: dict[Hashable, int] = {b.key: 0 for b in items}
    active: set[Hashable] = set()
    previous: int | None = None
    for at, is_start, key in events:
        if previous is not None and at > previous and active:
            level = len(active)
            part = (at - previous) / level
            for open_key in active:
                shares[open_key][min(level, LEVELS) - 1] += part
        previous = at
        if is_start:
            active.add(key)
            level = len(active)
            for open_key in active:
                peaks[open_key] = max(peaks[open_key], level)
        else:
            active.discard(key)
    result = {key: Load((s[0], s[1], s[2], s[3]), peaks[key]) for key, s in shares.items()}
    for instant in everything:
        if instant.end <= instant.start:  # open for no time: the conversations open at that moment, and it
            result[instant.key] = Load((0.0, 0.0, 0.0, 0.0), 1 + sum(1 for b in items if b.start <= instant.start < b.end))
    return result
