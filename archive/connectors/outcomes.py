"""What a push turns into, and the partial conversation every adapter speaks in.

A platform either sends the whole conversation when it ends (Rocket.Chat, generic), sends its
messages one by one and then a close (Chatwoot), or sends a close that carries ids only and the
transcript has to be fetched from its API (Intercom, Crisp, LiveChat; Chatwoot with API access).
So parsing a push gives one of four outcomes:

* ``Finished``: a complete conversation, ready for ingest.
* ``Pending``: a piece of a conversation still open (one message) to keep until it closes.
* ``Close``: the conversation ended; assemble it from what was kept for ``thread``, what the
  close push itself says (``draft``), and, when ``fetch`` is set, what the platform's API returns.
* ``Ignored``: nothing to archive (a typing event, a test ping, a reopen).

Every outcome is a msgspec Struct with a tag, so a caller can store a ``Pending`` draft, or queue
a ``Close`` for a retry, as JSON and decode it back unchanged.
"""

from __future__ import annotations

from datetime import datetime
from typing import Union

import msgspec

from archive.models import Agent, ConversationIn, Message, MetaValue, Ratings, Visitor


class Draft(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A conversation as far as one push (or one API answer) knows it: everything but the
    platform's conversation id may be missing. ``assemble`` merges drafts into a ConversationIn."""

    external_id: str
    site: str | None = None
    channel: str | None = None
    language: str | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    visitor: Visitor | None = None
    agents: list[Agent] = []
    tags: list[str] = []
    metadata: dict[str, MetaValue] = {}
    messages: list[Message] = []
    # The platform's own satisfaction rating (Intercom's conversation rating, Chatwoot's CSAT
    # survey), for the support KPIs (docs/kpi.md); the latest draft that knows one wins.
    ratings: Ratings | None = None


class ChatwootRef(msgspec.Struct, frozen=True, tag="chatwoot"):
    account_id: str
    conversation_id: str


class IntercomRef(msgspec.Struct, frozen=True, tag="intercom"):
    conversation_id: str


class CrispRef(msgspec.Struct, frozen=True, tag="crisp"):
    website_id: str
    session_id: str


class LiveChatRef(msgspec.Struct, frozen=True, tag="livechat"):
    chat_id: str
    thread_id: str


FetchRef = Union[ChatwootRef, IntercomRef, CrispRef, LiveChatRef]


class Inherit(msgspec.Struct, frozen=True, omit_defaults=True):
    """What a push never carries, to take from the conversation already archived under the same
    external_id when the push does not say it: the close time (when later than the push's),
    the first agent (the one who served the chat) and these metadata keys."""

    metadata: tuple[str, ...] = ()
    ended_at: bool = False
    first_agent: bool = False


class Finished(msgspec.Struct, frozen=True, tag="finished"):
    """``inherit``: facts this push leaves out (Rocket.Chat's LivechatEdit has no close time,
    closer or department), filled from the archived conversation before it is ingested."""

    conversation: ConversationIn
    inherit: Inherit | None = None


class Pending(msgspec.Struct, frozen=True, tag="pending"):
    """Keep ``draft`` under ``thread`` (the platform's conversation id) until the close.

    A piece dated before the close of a conversation already archived was delivered late (the
    platform sends in any order): it makes the next revision at once, unless ``wait_for_close``
    (an answer the platform asked for at the close, kept for the next resolve)."""

    thread: str
    draft: Draft
    wait_for_close: bool = False


class Close(msgspec.Struct, frozen=True, tag="close"):
    thread: str
    draft: Draft
    fetch: FetchRef | None = None


class Ignored(msgspec.Struct, frozen=True, tag="ignored"):
    reason: str


Outcome = Union[Finished, Pending, Close, Ignored]
