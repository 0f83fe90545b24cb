"""Intercom: ``conversation.admin.closed`` says a conversation closed; the API gives it whole.

Followed: intercom/Intercom-OpenAPI descriptions/2.11/api.intercom.io.yaml
  GET /conversations/{conversation_id} (retrieveConversation, ``display_as=plaintext``), schemas
  conversation, conversation_source, conversation_parts, conversation_part, conversation_part_author,
  part_attachment, contact_reference.
Signed notifications (developers.intercom.com, "Signed Notifications"): ``X-Hub-Signature:
sha1=<hex>``, HMAC-SHA1 of the raw body keyed with the app's client secret; the notification
envelope is ``{"type": "notification_event", "id": "notif_…", "topic", "app_id", "data": {"item"}}``.

The notification carries the conversation with only its latest parts, so the close is always
fetched back (and so is a conversation rated after its close, ``conversation.rating.added``);
the notification id is the delivery key. Intercom signs no timestamp: replays are
caught by that key. ``ping`` (sent when the webhook is saved) and other topics are ignored.
The API returns at most the 500 most recent parts; a longer conversation is archived with what
it returns and ``metadata.intercom_parts_missing`` saying how many are not there.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import msgspec

from archive.connectors import api
from archive.connectors import normalise as n
from archive.connectors.adapter import Adapter, Obj, Scalar, api_shaped, body_key, needs_api, shaped
from archive.connectors.errors import FetchFailed, PayloadInvalid
from archive.connectors.outcomes import Close, Draft, FetchRef, Ignored, IntercomRef, Outcome
from archive.connectors.push import ConnectorConfig, Push
from archive.connectors.signatures import check_hex_signature, hmac_hex, required_header
from archive.connectors.timestamps import maybe_time
from archive.errors import FieldError, InvalidInput
from archive.models import Agent, Message, Sender, Visitor

SIGNATURE_HEADER = "X-Hub-Signature"
DEFAULT_API = "https://api.intercom.io"
API_VERSION = "2.11"
CLOSE_TOPIC = "conversation.admin.closed"
# The visitor rates after the close: the conversation is fetched back again, rating included, as
# its next revision (the support KPIs read it as CSAT).
RATING_TOPIC = "conversation.rating.added"
VISITOR_TYPES = {"user", "lead", "contact"}
CHANNELS = {"conversation": "web", "phone_call": "phone", "phone_switch": "phone"}
# part_type → (kind, event); anything else is an "other" event.
PART_TYPES: dict[str, tuple[str, str | None]] = {
    "comment": ("message", None),
    "note": ("note", None),
    "note_and_reopen": ("note", None),
    "close": ("event", "close"),
    "open": ("event", "reopen"),
    "assignment": ("event", "assign"),
    "default_assignment": ("event", "assign"),
    "away_mode_assignment": ("event", "assign"),
    "assign_and_reopen": ("event", "assign"),
    "assign_and_unsnooze": ("event", "assign"),
    "participant_added": ("event", "join"),
    "participant_removed": ("event", "leave"),
    "conversation_rating_changed": ("event", "rating"),
    "conversation_rating_remark_added": ("event", "rating"),
}
EVENT_WORDS = {
    "close": "closed the conversation",
    "reopen": "reopened the conversation",
    "assign": "assigned the conversation",
    "join": "added a participant",
    "leave": "removed a participant",
    "rating": "rating changed",
}



# The JSON types read from a notification and from GET /conversations/{id} (Intercom-OpenAPI
# 2.11: conversation, conversation_source, conversation_parts, conversation_part).
class _Author(msgspec.Struct):
    type: Scalar = None


class _Part(msgspec.Struct):
    author: _Author | None = None
    attachments: list[Any] | None = None


class _Parts(msgspec.Struct):
    conversation_parts: list[_Part] | None = None


class _Contacts(msgspec.Struct):
    contacts: list[Any] | None = None


class _Tags(msgspec.Struct):
    tags: list[Any] | None = None


class _Conversation(msgspec.Struct):
    source: _Part | None = None
    conversation_parts: _Parts | None = None
    contacts: _Contacts | None = None
    tags: _Tags | None = None
    conversation_rating: Obj | None = None
    custom_attributes: Obj | None = None


class _Data(msgspec.Struct):
    item: _Conversation | None = None


class _Notification(msgspec.Struct):
    data: _Data | None = None


def verify(push: Push, config: ConnectorConfig, now: datetime) -> None:
    signature = required_header(push, SIGNATURE_HEADER)
    check_hex_signature(hmac_hex(config.secret, push.body, "sha1"), signature, SIGNATURE_HEADER, prefix="sha1=")


def delivery_key(push: Push, config: ConnectorConfig) -> str:
    try:
        notification = push.json_object().get("id")
    except InvalidInput:
        notification = None
    return f"intercom:notification:{str(notification)[:200]}" if notification else body_key(push, config)


def parse(push: Push, config: ConnectorConfig) -> Outcome:
    payload = push.json_object()
    topic = payload.get("topic")
    if topic not in (CLOSE_TOPIC, RATING_TOPIC):
        return Ignored(f"Intercom {topic or 'untyped'} notification is not archived")
    shaped(payload, _Notification, "the Intercom notification")
    item = ((payload.get("data") or {}).get("item")) or {}
    conversation_id = n.text_or_none(item.get("id"))
    if not conversation_id:
        raise PayloadInvalid("the notification names no conversation", [FieldError("data.item.id", "missing")])
    # The notification's parts are only the latest ones; the messages come from the fetch.
    draft = conversation_draft(item, messages=False, site=n.site_or_none(payload.get("app_id")) or "intercom")
    return Close(thread=conversation_id, draft=draft, fetch=IntercomRef(conversation_id=conversation_id))


def conversation_draft(conversation: dict[str, Any], messages: bool = True, site: str | None = None) -> Draft:
    conversation_id = str(conversation.get("id"))
    source = conversation.get("source") or {}
    parts_list = conversation.get("conversation_parts") or {}
    parts = [p for p in parts_list.get("conversation_parts") or [] if isinstance(p, dict)]
    authors = [a for a in [source.get("author")] + [p.get("author") for p in parts] if isinstance(a, dict)]
    contacts = [c for c in (conversation.get("contacts") or {}).get("contacts") or [] if isinstance(c, dict)]
    visitor = _visitor(contacts, authors)
    agents: dict[str, Agent] = {}
    for author in authors:
        if author.get("type") == "admin" and author.get("id") is not None:
            agent_id = str(author["id"])
            agents[agent_id] = Agent(id=agent_id, name=n.short(author.get("name")), email=n.short(author.get("email"), 320))
    assignee = conversation.get("admin_assignee_id")
    if assignee not in (None, 0) and str(assignee) not in agents:
        agents[str(assignee)] = Agent(id=str(assignee))
    out: list[Message] = []
    if messages:
        if source.get("id") is not None or source.get("body"):
            out.append(_source_message(source, conversation))
        out.extend(_part_message(p) for p in parts)
    closes = [maybe_time(p.get("created_at")) for p in parts if p.get("part_type") == "close"]
    rating = conversation.get("conversation_rating") or {}
    total = parts_list.get("total_count")
    metadata = n.metadata(
        {
            "title": conversation.get("title"),
            "priority": conversation.get("priority"),
            "team_assignee_id": conversation.get("team_assignee_id"),
            "rating": rating.get("rating"),
            "rating_remark": rating.get("remark"),
            # A conversation data attribute: links the chat to its engagement invitation.
            "invitation_id": (conversation.get("custom_attributes") or {}).get("invitation_id"),
            "intercom_parts_missing": (total - len(parts))
            if messages and isinstance(total, int) and total > len(parts)
            else None,
        }
    )
    return Draft(
        external_id=f"intercom:{conversation_id}",
        site=site,
        channel=CHANNELS.get(str(source.get("type")), n.channel_slug(source.get("type"))),
        started_at=maybe_time(conversation.get("created_at")),
        ended_at=next((c for c in reversed(closes) if c), None) or maybe_time(conversation.get("updated_at")),
        visitor=visitor,
        agents=list(agents.values()),
        tags=n.tags((conversation.get("tags") or {}).get("tags")),
        metadata=metadata,
        messages=out,
        # Intercom's conversation rating: 1 to 5, with the visitor's remark.
        ratings=n.csat(rating.get("rating"), rating.get("remark")),
    )


def _visitor(contacts: list[dict[str, Any]], authors: list[dict[str, Any]]) -> Visitor | None:
    contact = contacts[0] if contacts else next((a for a in authors if a.get("type") in VISITOR_TYPES), None)
    if not contact or contact.get("id") is None:
        return None
    contact_id = str(contact["id"])
    described = next((a for a in authors if a.get("type") in VISITOR_TYPES and str(a.get("id")) == contact_id), {})
    return Visitor(
        id=n.short(contact_id) or contact_id, name=n.short(described.get("name")), email=n.short(described.get("email"), 320)
    )


def _sender(author: dict[str, Any] | None, role_for_people: str | None = None) -> Sender:
    author = author or {}
    kind = author.get("type")
    role = role_for_people or ("visitor" if kind in VISITOR_TYPES else "bot" if kind == "bot" else "agent")
    return Sender(role=role, id=n.short(author.get("id")), name=n.short(author.get("name")))  # type: ignore[arg-type]


def _source_message(source: dict[str, Any], conversation: dict[str, Any]) -> Message:
    subject = n.html_to_text(source.get("subject"))
    body, images = n.html_content(source.get("body"))
    return Message(
        at=maybe_time(conversation.get("created_at")) or maybe_time(conversation.get("updated_at")),  # type: ignore[arg-type]
        sender=_sender(source.get("author")),
        text="\n".join(t for t in (subject, body) if t),
        attachments=_attachments(source.get("attachments"), images),
        id=n.short(f"source-{source.get('id')}"),
        deleted=bool(source.get("redacted")),
    )


def _part_message(part: dict[str, Any]) -> Message:
    kind, event = PART_TYPES.get(str(part.get("part_type")), ("event", "other"))
    text, images = n.html_content(part.get("body"))
    author = part.get("author") or {}
    common: dict[str, Any] = {
        "at": maybe_time(part.get("created_at")),
        "text": text,
        "attachments": _attachments(part.get("attachments"), images),
        "id": n.short(part.get("id")),
        "edited_at": None,
        "deleted": bool(part.get("redacted")),
    }
    if common["at"] is None:
        raise PayloadInvalid(
            "an Intercom conversation part has no created_at", [FieldError("conversation_parts.created_at", "missing")]
        )
    if kind == "event":
        if not text:
            words = EVENT_WORDS.get(event or "", str(part.get("part_type") or "event").replace("_", " "))
            common["text"] = f"{author.get('name') or 'Intercom'} {words}" if event in EVENT_WORDS else words
        return Message(sender=_sender(author, "system"), kind="event", event=event, **common)  # type: ignore[arg-type]
    return Message(sender=_sender(author), kind=kind, **common)  # type: ignore[arg-type]


def _attachments(listed: Any, images: list[str]) -> list[Any]:
    """The part's attachments, then the images inline in its HTML body (a pasted screenshot, a
    GIF) that are not among them: Intercom lists those in the body only."""
    out = [_attachment(a) for a in listed or [] if isinstance(a, dict)]
    known = {a.url for a in out}
    return (out + [n.attachment(url=src) for src in images if src not in known])[:100]


def _attachment(raw: dict[str, Any]) -> Any:
    return n.attachment(name=raw.get("name"), content_type=raw.get("content_type"), size=raw.get("filesize"), url=raw.get("url"))


async def fetch(ref: FetchRef, config: ConnectorConfig, client: httpx.AsyncClient) -> Draft:
    assert isinstance(ref, IntercomRef)
    base = api.base_url(config, DEFAULT_API, "Intercom")
    headers = {"Authorization": f"Bearer {api.token(config, 'Intercom')}", "Intercom-Version": API_VERSION}
    conversation = await api.call(
        client,
        "Intercom",
        "GET",
        f"{base}/conversations/{ref.conversation_id}",
        headers=headers,
        params={"display_as": "plaintext"},
    )
    if not isinstance(conversation, dict) or conversation.get("type") != "conversation":
        raise FetchFailed("bad_response", "the Intercom API did not answer with a conversation")
    api_shaped(conversation, _Conversation, "Intercom")
    return conversation_draft(conversation)


def check_config(config: ConnectorConfig) -> list[FieldError]:
    return needs_api(config, url_required=False)


ADAPTER = Adapter(
    platform="intercom", verify=verify, delivery_key=delivery_key, parse=parse, fetch=fetch, check_config=check_config
)
