"""Wire shapes of the archive: what the chat platform sends and what compliance reads back.

Unknown fields are refused rather than dropped: an archive that silently discards a field the
platform started sending (attachments, say) loses evidence without anyone noticing.

The optional fields on ``Message`` and ``Agent`` (kinds, events, attachments, e-mail) came with the
platform connectors (docs/connectors.md). Those structs encode with ``omit_defaults``: a
conversation that uses none of the new fields encodes exactly as it did before they existed, so
hashes and submission MACs of earlier conversations do not change.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Union
from uuid import UUID

import msgspec

Timestamp = Annotated[datetime, msgspec.Meta(tz=True, description="RFC 3339 with a time zone")]
ShortText = Annotated[str, msgspec.Meta(max_length=200)]
MetaValue = Union[str, int, float, bool, None]


class Sender(msgspec.Struct, forbid_unknown_fields=True):
    role: Literal["visitor", "agent", "bot", "system"]
    id: ShortText | None = None
    name: ShortText | None = None


Sha256Hex = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]
# What a message of kind "event" records, in one vocabulary for every platform.
EventType = Literal["join", "leave", "transfer", "assign", "close", "reopen", "rating", "form", "navigation", "other"]


class Attachment(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """A file on a message, as the platform describes it (the file itself is not part of this)."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=255)] | None = None
    content_type: Annotated[str, msgspec.Meta(max_length=255)] | None = None
    size: Annotated[int, msgspec.Meta(ge=0)] | None = None
    sha256: Sha256Hex | None = None
    url: Annotated[str, msgspec.Meta(max_length=4096)] | None = None


class Message(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    at: Timestamp
    sender: Sender
    # Empty for a message that is only an attachment, or an event the platform gave no words.
    text: str = ""
    # "note": an internal note the visitor never saw; "event": a system event (see ``event``).
    kind: Literal["message", "note", "event"] = "message"
    event: EventType | None = None
    attachments: Annotated[list[Attachment], msgspec.Meta(max_length=100)] = []
    # The platform's own message id: how a later copy of the same message is recognised.
    id: ShortText | None = None
    # Set on a later version of an edited message; the original stays as its own entry.
    edited_at: Timestamp | None = None
    deleted: bool = False

    def carries_nothing(self) -> bool:
        """No words, no attachment, no event, not deleted: nothing a reader could see. Ingest
        refuses such a message; connectors leave it out and count it (a file alone, an event
        without words, a message whose words were deleted on the platform are all real)."""
        return not self.text.strip() and not self.attachments and self.kind != "event" and not self.deleted


class Visitor(msgspec.Struct, forbid_unknown_fields=True):
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    name: ShortText | None = None
    email: Annotated[str, msgspec.Meta(max_length=320)] | None = None


class Agent(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    name: ShortText | None = None
    # The custodian identity compliance tools search by.
    email: Annotated[str, msgspec.Meta(max_length=320)] | None = None


class Ratings(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """The visitor's answers to a post-chat survey (or the platform's own rating). The numbers are
    kept in clear for reports (archive/metrics); the comment is free text, so it is redacted and
    sealed with the conversation like a message."""

    csat: Annotated[int, msgspec.Meta(ge=1, le=5, description="satisfaction, 1 (very unsatisfied) to 5 (very satisfied)")] | None = None
    nps: Annotated[int, msgspec.Meta(ge=0, le=10, description="likelihood to recommend, 0 to 10")] | None = None
    ces: Annotated[int, msgspec.Meta(ge=1, le=7, description="customer effort, 1 (very easy) to 7 (very difficult)")] | None = None
    comment: Annotated[str, msgspec.Meta(max_length=4000)] | None = None


class ConversationIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    external_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    site: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
    channel: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]
    language: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")] | None = None
    started_at: Timestamp
    ended_at: Timestamp
    visitor: Visitor
    agents: Annotated[list[Agent], msgspec.Meta(max_length=100)] = []
    tags: Annotated[list[Annotated[str, msgspec.Meta(min_length=1, max_length=64)]], msgspec.Meta(max_length=50)] = []
    # Values are checked in archive.ingest so the error can name the offending key.
    metadata: Annotated[dict[Annotated[str, msgspec.Meta(max_length=64)], Any], msgspec.Meta(max_length=50)] = {}
    messages: list[Message]
    # Unset (not null) when absent, so a conversation without ratings encodes — and its
    # submission MAC reads — exactly as before ratings existed.
    ratings: Ratings | None | msgspec.UnsetType = msgspec.UNSET


class BatchIn(msgspec.Struct, forbid_unknown_fields=True):
    conversations: list[ConversationIn]


class IngestResult(msgspec.Struct):
    id: UUID
    external_id: str
    # "revised": a new revision of an archived conversation (only when revisions were asked for).
    status: Literal["created", "existing", "revised"]
    content_sha256: str
    redactions: dict[str, int]
    revision: int = 1


class BatchResult(msgspec.Struct):
    results: list[IngestResult]


class StoredConversation(msgspec.Struct, kw_only=True):
    """What is encrypted: the redacted conversation, minus nothing."""

    external_id: str
    site: str
    channel: str
    language: str | None
    started_at: datetime
    ended_at: datetime
    visitor: Visitor
    agents: list[Agent]
    tags: list[str]
    metadata: dict[str, MetaValue]
    messages: list[Message]
    # Unset when the conversation has none: earlier conversations keep their exact encoding.
    ratings: Ratings | msgspec.UnsetType = msgspec.UNSET


class ConversationOut(msgspec.Struct, kw_only=True):
    id: UUID
    external_id: str
    site: str
    channel: str
    language: str | None
    started_at: datetime
    ended_at: datetime
    visitor: Visitor
    agents: list[Agent]
    tags: list[str]
    metadata: dict[str, MetaValue]
    messages: list[Message]
    ratings: Ratings | msgspec.UnsetType = msgspec.UNSET
    content_sha256: str
    redactions: dict[str, int]
    retain_until: datetime | None = None
    archived_at: datetime
    # Which revision this is, and how many the conversation has (the latest is the default read).
    revision: int = 1
    revisions: int = 1


class RevisionOut(msgspec.Struct, kw_only=True):
    """One revision of a conversation, without its content (``?revision=N`` reads that)."""

    revision: int
    archived_at: datetime
    started_at: datetime
    ended_at: datetime
    message_count: int
    content_sha256: str
    redactions: dict[str, int]
    latest: bool


class RevisionsOut(msgspec.Struct, kw_only=True):
    id: UUID
    external_id: str
    revisions: list[RevisionOut]
