"""Merge drafts of one conversation into the ConversationIn that ingest stores.

The drafts come in the order they were learnt: accumulated pushes first, then the close push,
then the platform's API answer. Rules, chosen so that nothing once seen is lost:

* Messages with the same platform id are one message. A later copy with the same words adds
  what it knows (an attachment's size, say); a later copy with *different* words (an edit, a
  deletion) is kept as its own entry after the original, marked ``edited_at``/``deleted``, as
  Slack's and Mattermost's compliance exports keep both. Messages without an id are the same
  when time, sender and words are.
* Agents are merged by id, filling in name and e-mail from whichever draft knew them; the
  visitor likewise, later drafts winning where both know a field.
* ``started_at``/``ended_at`` widen to cover every message, so a conversation whose close time
  the platform did not send still validates.
* A message with nothing in it (no words, no attachment, no event, not deleted) is left out and
  counted in ``metadata.skipped_empty_messages`` (ids in ``skipped_empty_message_ids``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import msgspec

from archive.connectors.errors import PayloadInvalid
from archive.connectors.outcomes import Draft
from archive.connectors.push import ConnectorConfig
from archive.errors import FieldError, field_path
from archive.models import Agent, ConversationIn, Message, Visitor

T = TypeVar("T")
_MSGSPEC_PATH_SUFFIX = " - at `$"
# Metadata saying how many platform messages carried nothing to keep, and their platform ids.
SKIPPED_COUNT = "skipped_empty_messages"
# Platforms whose numeric message ids grow with time, so they order messages of the same second
# (Chatwoot: whole-second created_at, webhooks delivered by Sidekiq in any order).
ID_ORDERED_PLATFORMS = frozenset({"chatwoot"})
SKIPPED_IDS = "skipped_empty_message_ids"


def assemble(drafts: Sequence[Draft], config: ConnectorConfig | None = None) -> ConversationIn:
    if not drafts:
        raise ValueError("assemble needs at least one draft")
    external_id = drafts[-1].external_id
    ids_ordered = config is not None and config.platform in ID_ORDERED_PLATFORMS
    messages, empty = without_empty(merge_messages((m for d in drafts for m in d.messages), ids_ordered))
    times: list[datetime | None] = [m.at for m in messages]
    started = _earliest([d.started_at for d in drafts] + times)
    ended = _latest([d.ended_at for d in drafts] + times)
    if started is None or ended is None:
        raise PayloadInvalid(
            "the conversation has no messages and no start or end time; nothing to archive",
            [FieldError("messages", "a conversation needs at least one message")],
        )
    visitor = merge_visitor(d.visitor for d in drafts) or Visitor(id=f"unknown-visitor:{external_id}"[:200])
    tags: list[str] = []
    for d in drafts:
        tags.extend(t for t in d.tags if t not in tags)
    metadata: dict[str, Any] = {}
    if empty:  # first, so that the 50-key cap never drops the trace
        metadata[SKIPPED_COUNT] = len(empty)
        if ids := ", ".join(m.id for m in empty if m.id):
            metadata[SKIPPED_IDS] = ids[:1000]
    for d in drafts:
        metadata.update(d.metadata)
    conversation: dict[str, Any] = {
        "external_id": external_id,
        "site": (config.site if config and config.site else None)
        or _last(d.site for d in drafts)
        or (config.platform if config else "chat"),
        "channel": (config.channel if config and config.channel else None) or _last(d.channel for d in drafts) or "web",
        "language": _last(d.language for d in drafts),
        "started_at": started,
        "ended_at": max(ended, started),
        "visitor": visitor,
        "agents": merge_agents(a for d in drafts for a in d.agents),
        "tags": tags[:50],
        "metadata": dict(list(metadata.items())[:50]),
        "messages": messages,
    }
    ratings = _last(d.ratings for d in drafts)
    if ratings is not None:
        conversation["ratings"] = ratings
    return to_conversation(msgspec.to_builtins(conversation))


def to_conversation(raw: object) -> ConversationIn:
    """Validate builtins as a ConversationIn; a failure names the offending field."""
    try:
        return msgspec.convert(raw, ConversationIn)
    except msgspec.ValidationError as exc:
        message, _, path = str(exc).partition(_MSGSPEC_PATH_SUFFIX)
        path = path.rstrip("`").lstrip(".")
        raise PayloadInvalid(
            "the push does not make a valid conversation; nothing was stored",
            [FieldError(field_path(path, message) or "$", message)],
        ) from None


def merge_messages(messages: Iterable[Message], ids_ordered: bool = False) -> list[Message]:
    """Messages in time order; ties in arrival order, or — ``ids_ordered`` — by numeric platform id
    first (messages without one keep their arrival order after those)."""
    kept: list[Message] = []
    by_id: dict[str, list[int]] = {}
    anonymous: dict[tuple[Any, ...], int] = {}
    for message in messages:
        if message.id is None:
            key = (message.at, message.sender.role, message.sender.id, message.text, message.kind)
            if key in anonymous:
                kept[anonymous[key]] = _fill(kept[anonymous[key]], message)
            else:
                anonymous[key] = len(kept)
                kept.append(message)
            continue
        versions = by_id.setdefault(message.id, [])
        same = next((i for i in versions if _same_words(kept[i], message)), None)
        if same is not None:
            kept[same] = _fill(kept[same], message)
            continue
        if versions:
            original = kept[versions[0]]
            # A later, different copy is an edit (or a deletion) of the first: it sorts right after
            # the original; ``edited_at`` says when the change was made, where the platform said.
            message = msgspec.structs.replace(message, at=original.at)
        versions.append(len(kept))
        kept.append(message)
    def position(i: int) -> tuple[datetime, int, int, int]:
        number = kept[i].id
        if ids_ordered and number is not None and number.isascii() and number.isdigit():
            return (kept[i].at, 0, int(number), i)
        return (kept[i].at, 1, 0, i)

    order = sorted(range(len(kept)), key=position)
    return [kept[i] for i in order]


def without_empty(messages: list[Message]) -> tuple[list[Message], list[Message]]:
    """(messages to keep, messages with nothing in them). A message with no words, no attachment,
    that is no event and was not deleted carries nothing a reader could see (an Intercom part
    whose body the API returns null, a card type Parley cannot read): it is left out and counted
    in the metadata, so one such message never costs the whole transcript, and the record says
    that it was there."""
    kept: list[Message] = []
    empty: list[Message] = []
    for message in messages:
        (empty if message.carries_nothing() else kept).append(message)
    return kept, empty


def merge_agents(agents: Iterable[Agent]) -> list[Agent]:
    merged: dict[str, Agent] = {}
    for agent in agents:
        known = merged.get(agent.id)
        merged[agent.id] = (
            agent if known is None else Agent(id=agent.id, name=agent.name or known.name, email=agent.email or known.email)
        )
    return list(merged.values())[:100]


def merge_visitor(visitors: Iterable[Visitor | None]) -> Visitor | None:
    result: Visitor | None = None
    for visitor in visitors:
        if visitor is None:
            continue
        if result is None or visitor.id != result.id:
            # A later draft naming another visitor (Chatwoot merges contacts) wins outright.
            result = visitor
        else:
            result = Visitor(id=visitor.id, name=visitor.name or result.name, email=visitor.email or result.email)
    return result


def _same_words(a: Message, b: Message) -> bool:
    return a.text == b.text and a.deleted == b.deleted and a.kind == b.kind


def _fill(known: Message, later: Message) -> Message:
    """The same message seen again: keep the first copy, take what the later one adds."""
    return msgspec.structs.replace(
        known,
        attachments=later.attachments
        if len(later.attachments) >= len(known.attachments) and later.attachments
        else known.attachments,
        sender=later.sender if (later.sender.name and not known.sender.name) else known.sender,
        event=known.event or later.event,
        edited_at=known.edited_at or later.edited_at,
    )


def _earliest(values: list[datetime | None]) -> datetime | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def _latest(values: list[datetime | None]) -> datetime | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _last(values: Iterable[T | None]) -> T | None:
    """The last value given (None and empty ones left out)."""
    found = None
    for value in values:
        if value:
            found = value
    return found
