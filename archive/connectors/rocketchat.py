"""Rocket.Chat Omnichannel (Livechat) webhooks: the whole transcript arrives when a chat closes.

Followed: RocketChat/Rocket.Chat
  apps/meteor/app/livechat/server/hooks/sendToCRM.ts   (payload: type, messages, servedBy, closedAt…)
  apps/meteor/app/livechat/server/lib/guests.ts        (getLivechatRoomGuestInfo: visitor, agent)
  apps/meteor/app/livechat/server/lib/webhooks.ts      (sendRequest: X-RocketChat-Livechat-Token)
  apps/meteor/app/livechat/server/api/v1/webhooks.ts   (the "Send Test" sample session)
  apps/meteor/app/utils/server/functions/normalizeMessageFileUpload.ts (fileUpload on file messages)

Authentication is the workspace's "Secret Token", sent verbatim in X-RocketChat-Livechat-Token;
the scheme has no timestamp, so replays are caught by the delivery key (the body repeats).
``LivechatSession`` (chat closed) and ``LivechatEdit`` (a closed chat's details edited) carry
every visible message; other types (start, queued, taken, forwarded, single messages, lead
capture, offline messages) are ignored: the close brings them all again.

Rocket.Chat filters system messages out of the payload except the closing message
(``closingMessage``, kept as a close event) and, if enabled, navigation history (kept as
navigation events). Transfers therefore show as a second agent authoring messages, not as events.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from archive.connectors import normalise as n
from archive.connectors.adapter import Adapter, Obj, Scalar, body_key, shaped
from archive.connectors.assemble import assemble
from archive.connectors.errors import PayloadInvalid
from archive.connectors.outcomes import Draft, Finished, Ignored, Inherit, Outcome
from archive.connectors.push import ConnectorConfig, Push
from archive.connectors.signatures import check_token
from archive.connectors.timestamps import BadTimestamp, maybe_time, parse_time
from archive.errors import FieldError
from archive.models import Agent, Attachment, Message, Sender, Visitor

TOKEN_HEADER = "X-RocketChat-Livechat-Token"
# The fixed room id of the sample session the "Send Test" button posts (webhooks.ts).
TEST_SESSION_ID = "fasd6f5a4sd6f8a4sdf"
FINISHED_TYPES = {"LivechatSession", "LivechatEdit"}
# Metadata only a LivechatSession push carries.
CLOSE_FACTS = ("department_id", "closer", "closed_by")


# The JSON types read from a push (sendToCRM.ts); other fields are read as scalars or not at all.
class _Kind(msgspec.Struct):
    type: str | None = None


class _Page(msgspec.Struct):
    location: Obj | None = None


class _Navigation(msgspec.Struct):
    page: _Page | None = None


class _User(msgspec.Struct):
    id: Scalar = msgspec.field(default=None, name="_id")
    name: Scalar = None
    username: Scalar = None


class _MessageShape(msgspec.Struct, rename="camel"):
    u: _User | None = None
    agent_id: Scalar = None
    username: Scalar = None
    files: list[Any] | None = None
    file_upload: Obj | None = None
    attachments: list[Any] | None = None
    navigation: _Navigation | None = None


class _SessionShape(msgspec.Struct, rename="camel"):
    id: Scalar = msgspec.field(default=None, name="_id")  # the room: the conversation's external id
    visitor: Obj | None = None
    agent: Obj | None = None
    closed_by: Obj | None = None
    custom_fields: Obj | None = None
    tags: list[Any] | None = None
    messages: list[_MessageShape] | None = None


def verify(push: Push, config: ConnectorConfig, now: datetime) -> None:
    check_token(config.secret, push.header(TOKEN_HEADER), f"the {TOKEN_HEADER} header")


def parse(push: Push, config: ConnectorConfig) -> Outcome:
    payload = push.json_object()
    kind = shaped(payload, _Kind, "the Rocket.Chat push").type
    if kind not in FINISHED_TYPES:
        return Ignored(f"Rocket.Chat {kind or 'untyped'} push: the transcript comes with the close")
    room_id = n.text_or_none(payload.get("_id"))
    if room_id == TEST_SESSION_ID:
        return Ignored("Rocket.Chat webhook test")
    if not room_id:
        raise PayloadInvalid("a LivechatSession needs the room id", [FieldError("_id", "missing")])
    shaped(payload, _SessionShape, "the Rocket.Chat push")
    found = draft(payload, room_id)
    if not found.messages:  # a chat closed before anyone wrote (an abandoned widget, say)
        return Ignored(f"Rocket.Chat {kind} of room {room_id} has no messages: nothing to archive")
    conversation = assemble([found], config)
    if kind == "LivechatEdit":
        # getAdditionalFieldsByType('LivechatEdit') is {}: no closedAt, closedBy, closer, servedBy or
        # departmentId. Taken from the archived session, an edit that changed nothing is the same
        # conversation again, and one that did still knows when and by whom the chat was closed.
        return Finished(conversation, inherit=Inherit(metadata=CLOSE_FACTS, ended_at=True, first_agent=True))
    return Finished(conversation)


def draft(payload: dict[str, Any], room_id: str) -> Draft:
    visitor_raw = payload.get("visitor") or {}
    visitor = Visitor(
        id=n.short(n.first(visitor_raw.get("_id"), visitor_raw.get("token"), visitor_raw.get("username")))
        or f"rocketchat-visitor:{room_id}",
        name=n.short(n.first(visitor_raw.get("name"), visitor_raw.get("username"))),
        email=_email(visitor_raw.get("email")),
    )
    served = payload.get("agent") or {}
    agents: list[Agent] = []
    if served.get("_id"):
        agents.append(
            Agent(
                id=n.short(served["_id"]) or "",
                name=n.short(n.first(served.get("name"), served.get("username"))),
                email=n.short(served.get("email"), 320),
            )
        )
    messages = []
    senders = _Senders(visitor_raw, served)
    authors: set[str] = set()
    for index, raw in enumerate(payload.get("messages") or []):
        message = _message(raw, index, senders)
        messages.append(message)
        if message.sender.role == "agent" and message.sender.id and message.sender.id not in authors:
            authors.add(message.sender.id)
            agents.append(Agent(id=message.sender.id, name=message.sender.name))
    closed_by = payload.get("closedBy") or {}
    metadata = n.metadata(
        {
            "topic": payload.get("topic"),
            "department_id": payload.get("departmentId"),
            "closer": payload.get("closer"),
            "closed_by": closed_by.get("username"),
        }
    )
    metadata.update(n.metadata(payload.get("customFields") or {}, prefix="field."))
    return Draft(
        external_id=room_id,
        site="rocketchat",
        channel="web",
        started_at=_time(payload.get("createdAt"), "createdAt"),
        ended_at=maybe_time(payload.get("closedAt")) or maybe_time(payload.get("lastMessageAt")),
        visitor=visitor,
        agents=agents,
        tags=n.tags(payload.get("tags")),
        metadata=metadata,
        messages=messages,
    )


class _Senders:
    """Who wrote each message. A transcript has a handful of authors and hundreds of messages, so
    each author's Sender is built once (this is the hot loop of a Rocket.Chat push)."""

    def __init__(self, visitor: dict[str, Any], served: dict[str, Any]) -> None:
        self.visitor_username = visitor.get("username")
        self.visitor = Sender(
            role="visitor",
            id=n.short(n.first(visitor.get("_id"), visitor.get("token"))),
            name=n.short(n.first(visitor.get("name"), visitor.get("username"))),
        )
        self.served = served
        self.known: dict[tuple[str, Any, Any, Any], Sender] = {}

    def of(self, raw: dict[str, Any], role: str) -> Sender:
        if role == "visitor":
            return self.visitor
        agent_id, user = raw.get("agentId"), raw.get("u") or {}
        key = (role, agent_id, user.get("_id"), user.get("name") or raw.get("username"))
        sender = self.known.get(key)
        if sender is None:
            served_name = self.served.get("name") if agent_id and agent_id == self.served.get("_id") else None
            sender = Sender(
                role=role,  # type: ignore[arg-type]
                id=n.short(n.first(agent_id, user.get("_id"))),
                name=n.short(n.first(user.get("name"), served_name, raw.get("username"))),
            )
            self.known[key] = sender
        return sender


def _message(raw: dict[str, Any], index: int, senders: _Senders) -> Message:
    text = raw.get("msg")
    if not isinstance(text, str):
        text = ""
    attachments = _attachments(raw) if ("file" in raw or "files" in raw) else []
    if not text.strip() and raw.get("attachments"):
        text = "\n".join(a["description"] for a in raw["attachments"] if isinstance(a, dict) and a.get("description"))
    edited = raw.get("editedAt")
    common: dict[str, Any] = {
        "at": _time(raw.get("ts"), f"messages[{index}].ts"),
        "text": text,
        "attachments": attachments,
        "id": n.short(raw.get("_id")),
        "edited_at": maybe_time(edited) if edited else None,
    }
    if raw.get("closingMessage"):
        return Message(sender=senders.of(raw, "system"), kind="event", event="close", **common)
    if raw.get("navigation"):
        page = (raw["navigation"] or {}).get("page") or {}
        where = [n.text_or_none(page.get("title")), n.text_or_none((page.get("location") or {}).get("href"))]
        common["text"] = text or " ".join(w for w in where if w)
        return Message(sender=senders.of(raw, "system"), kind="event", event="navigation", **common)
    from_visitor = not raw.get("agentId") and raw.get("username") == senders.visitor_username
    return Message(sender=senders.of(raw, "visitor" if from_visitor else "agent"), **common)


def _attachments(raw: dict[str, Any]) -> list[Attachment]:
    files = [f for f in (raw.get("files") or ([raw["file"]] if isinstance(raw.get("file"), dict) else [])) if isinstance(f, dict)]
    upload = raw.get("fileUpload") or {}
    described = [a for a in raw.get("attachments") or [] if isinstance(a, dict)]
    out = []
    for i, f in enumerate(files):
        link = (
            upload.get("publicFilePath")
            if i == 0 and upload.get("publicFilePath")
            else (described[i].get("title_link") if i < len(described) else None)
        )
        out.append(
            n.attachment(
                name=f.get("name"),
                content_type=f.get("type") or (upload.get("type") if i == 0 else None),
                size=f.get("size"),
                url=link,
            )
        )
    return out


def _email(value: Any) -> str | None:
    if isinstance(value, list):
        for item in value:
            address = item.get("address") if isinstance(item, dict) else item
            if n.text_or_none(address):
                return n.short(address, 320)
        return None
    return n.short(value, 320)


def _time(value: Any, field: str) -> datetime:
    try:
        return parse_time(value)
    except BadTimestamp as exc:
        raise PayloadInvalid(f"{field} is not a timestamp", [FieldError(field, str(exc))]) from None


# webhooks.ts sendRequest: ``if (result.status === 200)`` is success; any other status is logged
# as an error and counted as a webhook failure, so every answer to Rocket.Chat is a 200.
ADAPTER = Adapter(platform="rocketchat", verify=verify, delivery_key=body_key, parse=parse, delivered_status=200)
