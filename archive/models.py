"""Wire shapes of the archive: what the chat platform sends and what compliance reads back.

Unknown fields are refused rather than dropped: an archive that silently discards a field the
platform started sending (attachments, say) loses evidence without anyone noticing.
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


class Message(msgspec.Struct, forbid_unknown_fields=True):
    at: Timestamp
    sender: Sender
    text: str


class Visitor(msgspec.Struct, forbid_unknown_fields=True):
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    name: ShortText | None = None
    email: Annotated[str, msgspec.Meta(max_length=320)] | None = None


class Agent(msgspec.Struct, forbid_unknown_fields=True):
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    name: ShortText | None = None


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


class BatchIn(msgspec.Struct, forbid_unknown_fields=True):
    conversations: list[ConversationIn]


class IngestResult(msgspec.Struct):
    id: UUID
    external_id: str
    status: Literal["created", "existing"]
    content_sha256: str
    redactions: dict[str, int]


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
    content_sha256: str
    redactions: dict[str, int]
    retain_until: datetime | None = None
    archived_at: datetime
