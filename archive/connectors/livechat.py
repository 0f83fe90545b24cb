"""LiveChat webhooks: ``chat_deactivated`` closes a thread; the Agent Chat API gives it whole.

Followed: livechat/livechat-public-docs
  src/pages/management/webhooks/v3.5/index.mdx   (envelope {webhook_id, secret_key, action,
                                                  organization_id, payload, additional_data};
                                                  chat_deactivated carries chat_id, thread_id, user_id)
  src/pages/messaging/agent-chat-api/v3.5/index.mdx (POST /v3.5/agent/action/get_chat with
                                                  {"chat_id", "thread_id"}; Basic or Bearer auth)
  payloads/messaging/v3.5/agent-chat-api/other-structures/{chat,thread}.json, users/*.json,
  events/{message,file,system_message,filled_form,rich_message}.json

LiveChat does not sign webhooks: each one carries the webhook's ``secret_key`` in the body, which
must equal this connector's secret (compared in constant time). There is no timestamp; replays
are caught by the delivery key, derived from the body without the secret.

A LiveChat *chat* is the lasting relation with one customer; each *thread* is one conversation
in it, so a thread is what Parley archives (``external_id`` ``livechat:<chat>:<thread>``).
Events with ``visibility: agents`` are internal (whispers): kind ``note``.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import httpx
import msgspec

from archive.connectors import api
from archive.connectors import normalise as n
from archive.connectors.adapter import Adapter, Obj, Scalar, api_shaped, needs_api, shaped
from archive.connectors.errors import FetchFailed, PayloadInvalid, SignatureRejected
from archive.connectors.outcomes import Close, Draft, FetchRef, Ignored, LiveChatRef, Outcome
from archive.connectors.push import ConnectorConfig, Push, keyed_digest
from archive.connectors.signatures import check_token
from archive.connectors.timestamps import maybe_time
from archive.errors import FieldError, InvalidInput
from archive.models import Agent, EventType, Message, Sender, Visitor

DEFAULT_API = "https://api.livechatinc.com/v3.5"
# system_message_type → event. The list LiveChat documents: agent_added, agent_joined, agent_left,
# agent_removed, archived_customer_disconnected, chat_transferred, customer_added, customer_banned,
# customer_removed, customer_updated, manual_archived_agent, manual_archived_customer, rating.*,
# routing.archived_*, routing.assigned_*, routing.unassigned_*, routing.idle, system_archived,
# transcript_requested, transcript_sent.
SYSTEM_EVENTS: dict[str, EventType] = {
    "agent_added": "join",
    "agent_joined": "join",
    "customer_added": "join",
    "agent_left": "leave",
    "agent_removed": "leave",
    "customer_removed": "leave",
    "chat_transferred": "transfer",
    "manual_archived_agent": "close",
    "manual_archived_customer": "close",
    "archived_customer_disconnected": "close",
    "customer_banned": "close",
    "system_archived": "close",
}
SYSTEM_EVENT_PREFIXES: tuple[tuple[str, EventType], ...] = (
    ("routing.archived_", "close"),
    ("routing.assigned_", "assign"),
    ("routing.unassigned_", "assign"),
    ("rating.", "rating"),
)



# The JSON types read from a webhook and from get_chat (Agent Chat API v3.5 chat, thread, events).
class _Payload(msgspec.Struct):
    chat_id: Scalar = None  # chat_deactivated: what the chat is fetched back by
    thread_id: Scalar = None


class _Webhook(msgspec.Struct):
    payload: _Payload | None = None


class _Field(msgspec.Struct):
    answers: list[Any] | None = None


class _Element(msgspec.Struct):
    image: Obj | None = None
    buttons: list[Any] | None = None


class _Event(msgspec.Struct):
    fields: list[_Field] | None = None
    elements: list[_Element] | None = None


class _Thread(msgspec.Struct):
    events: list[_Event] | None = None
    tags: list[Any] | None = None
    user_ids: list[Any] | None = None


class _User(msgspec.Struct):
    session_fields: list[Any] | None = None


class _Chat(msgspec.Struct):
    thread: _Thread
    users: list[_User] | None = None


def system_event(system_message_type: str) -> EventType:
    if system_message_type in SYSTEM_EVENTS:
        return SYSTEM_EVENTS[system_message_type]
    return next((event for prefix, event in SYSTEM_EVENT_PREFIXES if system_message_type.startswith(prefix)), "other")


def verify(push: Push, config: ConnectorConfig, now: datetime) -> None:
    try:
        payload = push.json_object()
    except InvalidInput:
        # Not even JSON: unauthenticated like any push without the secret, so a 401, not a 400.
        raise SignatureRejected("missing_signature", "the body is not a JSON object carrying secret_key") from None
    presented = payload.get("secret_key")
    check_token(config.secret, presented if isinstance(presented, str) else None, "the webhook's secret_key")


def delivery_key(push: Push, config: ConnectorConfig) -> str:
    payload = push.json_object()
    payload.pop("secret_key", None)
    return f"livechat:body:{keyed_digest(config, msgspec.json.encode(payload, order='sorted'))}"


def parse(push: Push, config: ConnectorConfig) -> Outcome:
    payload = push.json_object()
    action = payload.get("action")
    if action != "chat_deactivated":
        return Ignored(f"LiveChat {action or 'untyped'} webhook is not archived")
    shaped(payload, _Webhook, "the LiveChat webhook")
    body = payload.get("payload") or {}
    chat_id, thread_id = n.text_or_none(body.get("chat_id")), n.text_or_none(body.get("thread_id"))
    if not chat_id or not thread_id:
        missing = [("payload.chat_id", chat_id), ("payload.thread_id", thread_id)]
        raise PayloadInvalid(
            "chat_deactivated needs chat_id and thread_id", [FieldError(path, "missing") for path, v in missing if not v]
        )
    draft = Draft(
        external_id=f"livechat:{chat_id}:{thread_id}", site=n.site_or_none(payload.get("organization_id")) or "livechat"
    )
    return Close(thread=f"{chat_id}:{thread_id}", draft=draft, fetch=LiveChatRef(chat_id=chat_id, thread_id=thread_id))


def chat_draft(chat: dict[str, Any]) -> Draft:
    thread = chat.get("thread") or {}
    users = {str(u.get("id")): u for u in chat.get("users") or [] if isinstance(u, dict) and u.get("id") is not None}
    customers = [u for u in users.values() if u.get("type") == "customer"]
    customer = customers[0] if customers else {}
    messages = [m for m in (_event(e, users) for e in thread.get("events") or [] if isinstance(e, dict)) if m is not None]
    form_email = next((a for m in thread.get("events") or [] if isinstance(m, dict) for a in _form_answers(m, "email")), None)
    # The thread's participants (user_ids) and anyone who wrote in it; a chat's users also list
    # agents who only had access to earlier threads.
    involved = {str(u) for u in thread.get("user_ids") or []} | {m.sender.id for m in messages if m.sender.id}
    agents = [
        Agent(id=n.short(u["id"]) or "", name=n.short(u.get("name")), email=n.short(u.get("email"), 320))
        for key, u in users.items()
        if u.get("type") == "agent" and key in involved
    ]
    chat_id, thread_id = str(chat.get("id")), str(thread.get("id"))
    return Draft(
        external_id=f"livechat:{chat_id}:{thread_id}",
        started_at=maybe_time(thread.get("created_at")),
        visitor=Visitor(
            id=n.short(customer.get("id")) or f"livechat-customer:{chat_id}",
            name=n.short(customer.get("name")),
            email=n.short(n.first(customer.get("email"), form_email), 320),
        )
        if customer or form_email
        else None,
        agents=agents,
        tags=n.tags(thread.get("tags")),
        metadata=n.metadata({"livechat_chat_id": chat_id, "previous_thread_id": thread.get("previous_thread_id"),
                             "invitation_id": _session_field(customer, "invitation_id")}),
        messages=messages,
    )


def _session_field(customer: dict[str, Any], key: str) -> Any:
    """A session variable the widget set (set_session_variables): LiveChat lists them as
    one-key objects in the customer's ``session_fields``."""
    for pair in customer.get("session_fields") or []:
        if isinstance(pair, dict) and key in pair:
            return pair[key]
    return None


def _event(event: dict[str, Any], users: dict[str, dict[str, Any]]) -> Message | None:
    at = maybe_time(event.get("created_at"))
    if at is None:
        raise PayloadInvalid("a LiveChat event has no created_at", [FieldError("thread.events.created_at", "missing")])
    kind_raw = event.get("type")
    author = users.get(str(event.get("author_id")), {})
    common: dict[str, Any] = {"at": at, "id": n.short(event.get("id")), "text": n.text_or_none(event.get("text")) or ""}
    if kind_raw == "system_message":
        return Message(
            sender=Sender(role="system"), kind="event", event=system_event(str(event.get("system_message_type"))), **common
        )
    if kind_raw == "filled_form":
        lines = [
            f"{str(f.get('label') or f.get('type')).rstrip(': ')}: {_answer(f)}"
            for f in event.get("fields") or []
            if isinstance(f, dict)
        ]
        common["text"] = "\n".join(line for line in lines if not line.endswith(": "))
        return Message(sender=_sender(author, event), kind="event", event="form", **common)
    if kind_raw == "file":
        common["attachments"] = [
            n.attachment(
                name=event.get("name"), content_type=event.get("content_type"), size=event.get("size"), url=event.get("url")
            )
        ]
    elif kind_raw == "rich_message":
        common["text"], common["attachments"] = _rich(event)
    elif kind_raw not in ("message", "file"):
        return Message(sender=_sender(author, event), kind="event", event="other", **common)
    note = event.get("visibility") == "agents"
    return Message(sender=_sender(author, event), kind="note" if note else "message", **common)


def _rich(event: dict[str, Any]) -> tuple[str, list[Any]]:
    """A rich message (cards, sticker, quick replies): each element's title, subtitle and button
    labels as text, its image as an attachment. A sticker is an image only; quick replies are
    buttons only (Agent Chat API ``rich_message``)."""
    lines: list[str] = []
    images: list[Any] = []
    for element in event.get("elements") or []:
        if not isinstance(element, dict):
            continue
        lines += [t for t in (n.text_or_none(element.get("title")), n.text_or_none(element.get("subtitle"))) if t]
        labels = [n.text_or_none(b.get("text")) for b in element.get("buttons") or [] if isinstance(b, dict)]
        if any(labels):
            lines.append(" | ".join(label for label in labels if label))
        image = element.get("image") or {}
        if n.text_or_none(image.get("url")):
            images.append(n.attachment(name=image.get("name"), content_type=image.get("content_type"), url=image.get("url")))
    return "\n".join(lines), images[:100]


def _sender(author: dict[str, Any], event: dict[str, Any]) -> Sender:
    kind = author.get("type")
    role = "visitor" if kind == "customer" else "bot" if kind == "bot" else "agent"
    return Sender(role=role, id=n.short(event.get("author_id")), name=n.short(author.get("name")))  # type: ignore[arg-type]


def _answer(field: dict[str, Any]) -> str:
    answer = field.get("answer")
    if isinstance(answer, dict):
        return str(answer.get("label") or "")
    if field.get("answers"):
        return ", ".join(str(a.get("label")) for a in field["answers"] if isinstance(a, dict))
    return str(answer or "")


def _form_answers(event: dict[str, Any], field_type: str) -> list[str]:
    if event.get("type") != "filled_form":
        return []
    return [
        str(f["answer"])
        for f in event.get("fields") or []
        if isinstance(f, dict) and f.get("type") == field_type and isinstance(f.get("answer"), str) and f["answer"]
    ]


def _authorization(config: ConnectorConfig) -> str:
    token = api.token(config, "LiveChat")
    # A personal access token is used with the account id, as Basic "account_id:token".
    if ":" in token:
        return "Basic " + base64.b64encode(token.encode()).decode()
    return f"Bearer {token}"


async def fetch(ref: FetchRef, config: ConnectorConfig, client: httpx.AsyncClient) -> Draft:
    assert isinstance(ref, LiveChatRef)
    base = api.base_url(config, DEFAULT_API, "LiveChat")
    chat = await api.call(
        client,
        "LiveChat",
        "POST",
        f"{base}/agent/action/get_chat",
        headers={"Authorization": _authorization(config), "Content-Type": "application/json"},
        json={"chat_id": ref.chat_id, "thread_id": ref.thread_id},
    )
    if not isinstance(chat, dict) or not isinstance(chat.get("thread"), dict):
        raise FetchFailed("bad_response", "the LiveChat API did not answer with a chat and its thread")
    api_shaped(chat, _Chat, "LiveChat")
    return chat_draft(chat)


def check_config(config: ConnectorConfig) -> list[FieldError]:
    return needs_api(config, url_required=False)


# LiveChat's delivery contract (livechat/livechat-public-docs src/pages/management/configuration-api/
# v2.0/index.mdx, the only version that states one): "it should respond with HTTP 200 response.
# Otherwise, LiveChat will retry sending the webhook ... until it receives the correct HTTP 200
# response" (~10 s timeout, up to 10 times within 6 hours). So every receipt is answered 200.
ADAPTER = Adapter(
    platform="livechat", verify=verify, delivery_key=delivery_key, parse=parse, fetch=fetch, check_config=check_config,
    delivered_status=200,
)
