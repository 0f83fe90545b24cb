"""Chatwoot account webhooks: messages arrive one by one, a resolve closes the conversation.

Followed: chatwoot/chatwoot
  lib/webhooks/trigger.rb              (Webhooks::Trigger#request_headers: X-Chatwoot-Delivery,
                                        X-Chatwoot-Timestamp, X-Chatwoot-Signature
                                        "sha256=" HMAC-SHA256 over "<timestamp>.<body>")
  spec/lib/webhooks/trigger_spec.rb    (the same headers, as the tests pin them)
  app/listeners/webhook_listener.rb    (message_created, message_updated, conversation_status_changed)
  app/models/message.rb                (Message#webhook_data: private, sender, attachments)
  app/models/attachment.rb             (Attachment#push_event_data: file_type, data_url, file_size)
  app/presenters/conversations/event_data_presenter.rb (the conversation in a push: meta.sender…)
  app/models/concerns/message_filter_helpers.rb (webhook_sendable?: activity messages are not sent)
  app/finders/message_finder.rb        (GET …/messages: 20 per page, ``before=<id>`` pages back)
  app/views/api/v1/models/_message.json.jbuilder (the API's message shape)
chatwoot/docs docs/product/others/webhook-events.md (sample payloads)

``message_created``/``message_updated`` become ``Pending`` drafts under the conversation's
display id; ``conversation_status_changed`` to ``resolved`` (or the older
``conversation_resolved``) becomes a ``Close``. With an API URL and token the close also fetches
every message back (``GET /api/v1/accounts/{account}/conversations/{id}/messages``, paged with
``before``), including activity messages webhooks never carry, so a missed webhook loses nothing.
Without API access the close adds a "Conversation resolved" event of its own, since the activity
message Chatwoot writes is not sent by webhook.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
import msgspec

from archive.connectors import api
from archive.connectors import normalise as n
from archive.connectors.adapter import Adapter, Obj, Scalar, api_shaped, body_key, shaped
from archive.connectors.errors import FetchFailed, PayloadInvalid
from archive.connectors.outcomes import ChatwootRef, Close, Draft, FetchRef, Ignored, Outcome, Pending
from archive.connectors.push import ConnectorConfig, Push
from archive.connectors.signatures import check_fresh, check_hex_signature, hmac_hex, required_header, signed_at
from archive.connectors.timestamps import BadTimestamp, maybe_time, parse_time
from archive.errors import FieldError
from archive.models import Agent, EventType, Message, Ratings, Sender, Visitor

SIGNATURE_HEADER = "X-Chatwoot-Signature"
TIMESTAMP_HEADER = "X-Chatwoot-Timestamp"
DELIVERY_HEADER = "X-Chatwoot-Delivery"
MESSAGE_EVENTS = {"message_created", "message_updated"}
MESSAGE_TYPES = {0: "incoming", 1: "outgoing", 2: "activity", 3: "template"}
CHANNELS = {
    "WebWidget": "web",
    "Email": "email",
    "Api": "api",
    "Whatsapp": "whatsapp",
    "FacebookPage": "facebook",
    "TwilioSms": "sms",
    "Sms": "sms",
    "Telegram": "telegram",
    "Line": "line",
    "Instagram": "instagram",
    "TwitterProfile": "twitter",
    "Tiktok": "tiktok",
    "Voice": "voice",
}
# Activity messages are written in the account's language; these English forms are the default.
ACTIVITY_EVENTS: list[tuple[re.Pattern[str], EventType]] = [
    (re.compile(r"\bresolved\b", re.I), "close"),
    (re.compile(r"\breopened\b", re.I), "reopen"),
    (re.compile(r"\bassigned\b|\bunassigned\b", re.I), "assign"),
]
MAX_PAGES = 500  # 20 messages a page: 10 000 messages
# The JSON types read from a push (Message#webhook_data, EventDataPresenter) and from the API.
class _Event(msgspec.Struct):
    event: str | None = None


class _Meta(msgspec.Struct):
    sender: Obj | None = None
    assignee: Obj | None = None
    contact: Obj | None = None
    labels: list[Any] | None = None


class _MessageShape(msgspec.Struct):
    id: Scalar = None
    message_type: Scalar = None  # "incoming" in a push, 0 in the API
    content: str | None = None
    private: bool | None = None  # an internal note: a string here would turn a visitor's words into one
    sender: Obj | None = None
    contact: Obj | None = None
    attachments: list[Any] | None = None


class _ConversationShape(msgspec.Struct):
    meta: _Meta | None = None
    additional_attributes: Obj | None = None
    custom_attributes: Obj | None = None
    labels: list[Any] | None = None
    messages: list[_MessageShape] | None = None
    account: Obj | None = None


class _MessageEvent(_MessageShape):
    conversation: _ConversationShape | None = None
    account: Obj | None = None
    inbox: Obj | None = None


class _Page(msgspec.Struct):
    payload: list[_MessageShape]
    meta: _Meta | None = None


_ACCOUNT_IN_URL = re.compile(r"^(?P<base>.*?)/(?:app|api/v1)/accounts/(?P<account>\d+)(?:/.*)?$")


def verify(push: Push, config: ConnectorConfig, now: datetime) -> None:
    signature = required_header(push, SIGNATURE_HEADER)
    timestamp = required_header(push, TIMESTAMP_HEADER)
    check_fresh(signed_at(timestamp, TIMESTAMP_HEADER), now, config.tolerance_seconds, TIMESTAMP_HEADER)
    expected = hmac_hex(config.secret, timestamp.encode() + b"." + push.body)
    check_hex_signature(expected, signature, SIGNATURE_HEADER, prefix="sha256=")


def delivery_key(push: Push, config: ConnectorConfig) -> str:
    delivery = push.header(DELIVERY_HEADER)
    return f"chatwoot:delivery:{delivery[:200]}" if delivery else body_key(push, config)


def parse(push: Push, config: ConnectorConfig) -> Outcome:
    payload = push.json_object()
    event = shaped(payload, _Event, "the Chatwoot push").event
    if event in MESSAGE_EVENTS:
        shaped(payload, _MessageEvent, "the Chatwoot push")
        conversation = payload.get("conversation") or {}
        attributes = payload.get("content_attributes")
        if event == "message_updated" and conversation.get("status") == "resolved" and isinstance(attributes, dict) and _submitted(attributes):
            return _answered_after_resolve(payload, config)
        return _pending(payload)
    if event == "conversation_resolved" or (event == "conversation_status_changed" and payload.get("status") == "resolved"):
        shaped(payload, _ConversationShape, "the Chatwoot push")
        return _close(payload, config)
    if event == "conversation_status_changed":
        return Ignored(f"Chatwoot conversation status changed to {payload.get('status')!r}")
    return Ignored(f"Chatwoot {event or 'untyped'} event is not archived")


def _pending(payload: dict[str, Any]) -> Pending:
    conversation = payload.get("conversation") or {}
    display_id = n.text_or_none(conversation.get("id") or conversation.get("display_id"))
    if not display_id:
        raise PayloadInvalid("a Chatwoot message event needs its conversation", [FieldError("conversation.id", "missing")])
    message = message_from(payload, "")
    sender = payload.get("sender") or {}
    meta = conversation.get("meta") or {}
    contact = meta.get("sender") or payload.get("contact") or (sender if sender.get("type") == "contact" else None)
    author = _agent(sender) if message.sender.role == "agent" else None
    agents = [a for a in (author, _agent(meta.get("assignee"))) if a]
    draft = Draft(
        external_id=f"chatwoot:{display_id}",
        site="chatwoot",
        channel=_channel(conversation.get("channel")),
        language=n.language_or_none((conversation.get("additional_attributes") or {}).get("conversation_language")),
        started_at=maybe_time(conversation.get("created_at")),
        visitor=_visitor(contact),
        agents=agents,
        tags=n.tags(conversation.get("labels")),
        metadata=_metadata(payload.get("account"), payload.get("inbox"), conversation),
        messages=[message],
        ratings=_survey([payload]),
    )
    return Pending(thread=display_id, draft=draft)


def _answered_after_resolve(payload: dict[str, Any], config: ConnectorConfig) -> Outcome:
    """Chatwoot sends its CSAT survey when a conversation is resolved, so the visitor's rating
    and feedback arrive after the conversation was archived. With API access the answered
    survey closes it again: the whole conversation is fetched back, answers included, into its
    next revision. Without, the answer waits pending for the next resolve, since a revision
    assembled from the pending messages alone would lack what the first resolve carried."""
    pending = _pending(payload)
    close = _close({**(payload.get("conversation") or {}), "messages": []}, config, resolve_event=False)
    if close.fetch is None:
        return msgspec.structs.replace(pending, wait_for_close=True)
    draft = msgspec.structs.replace(close.draft, messages=pending.draft.messages, ratings=pending.draft.ratings)
    return Close(thread=close.thread, draft=draft, fetch=close.fetch)


def _close(payload: dict[str, Any], config: ConnectorConfig, resolve_event: bool = True) -> Close:
    display_id = n.text_or_none(payload.get("id"))
    if not display_id:
        raise PayloadInvalid("a Chatwoot conversation event needs the conversation id", [FieldError("id", "missing")])
    meta = payload.get("meta") or {}
    ended = (
        maybe_time(payload.get("updated_at"))
        or maybe_time(payload.get("timestamp"))
        or maybe_time(payload.get("last_activity_at"))
    )
    messages = [message_from(m, f"messages[{i}]") for i, m in enumerate(payload.get("messages") or [])]
    ref = _ref(payload, display_id, config)
    if ref is None and ended is not None and resolve_event:
        messages.append(
            Message(at=ended, sender=Sender(role="system"), text="Conversation resolved", kind="event", event="close")
        )
    assignee = _agent(meta.get("assignee"))
    draft = Draft(
        external_id=f"chatwoot:{display_id}",
        site="chatwoot",
        channel=_channel(payload.get("channel")),
        language=n.language_or_none((payload.get("additional_attributes") or {}).get("conversation_language")),
        started_at=maybe_time(payload.get("created_at")),
        ended_at=ended,
        visitor=_visitor(meta.get("sender")),
        agents=[assignee] if assignee else [],
        tags=n.tags(payload.get("labels")),
        metadata=_metadata(None, None, payload),
        messages=messages,
        ratings=_survey(payload.get("messages")),
    )
    return Close(thread=display_id, draft=draft, fetch=ref)


def _ref(payload: dict[str, Any], display_id: str, config: ConnectorConfig) -> ChatwootRef | None:
    if not (config.api_url and config.api_token):
        return None
    _, account_in_url = _api_parts(config.api_url)
    account = n.text_or_none(
        n.first(
            payload.get("account_id"),
            (payload.get("account") or {}).get("id"),
            next(
                (m.get("account_id") for m in payload.get("messages") or [] if isinstance(m, dict) and m.get("account_id")), None
            ),
            account_in_url,
        )
    )
    if not account:
        raise PayloadInvalid(
            "this Chatwoot push does not say which account it is from; set the connector's API URL to "
            "https://<chatwoot>/app/accounts/<account id>",
            [FieldError("account_id", "missing")],
        )
    return ChatwootRef(account_id=account, conversation_id=display_id)


def message_from(raw: dict[str, Any], where: str) -> Message:
    """A message in webhook shape (Message#webhook_data) or API shape (push_event_data)."""
    try:
        at = parse_time(raw.get("created_at"))
    except BadTimestamp as exc:
        raise PayloadInvalid(
            "a Chatwoot message has no readable created_at", [FieldError(f"{where}.created_at".lstrip("."), str(exc))]
        ) from None
    kind_raw = raw.get("message_type")
    message_type = MESSAGE_TYPES.get(kind_raw, kind_raw) if isinstance(kind_raw, int) else kind_raw
    attributes = raw.get("content_attributes") or {}
    text = raw.get("content") if isinstance(raw.get("content"), str) else ""
    if isinstance(attributes, dict) and (answers := _submitted(attributes)):
        text = "\n".join(filter(None, [text, *answers]))
    common: dict[str, Any] = {
        "at": at,
        "text": text,
        "id": n.short(raw.get("id")),
        "attachments": [_attachment(a) for a in raw.get("attachments") or [] if isinstance(a, dict)],
        "deleted": bool(attributes.get("deleted")) if isinstance(attributes, dict) else False,
    }
    sender = raw.get("sender") or {}
    if message_type == "activity":
        event: EventType = next((name for pattern, name in ACTIVITY_EVENTS if pattern.search(str(text or ""))), "other")
        return Message(sender=Sender(role="system"), kind="event", event=event, **common)
    kind: Literal["note", "message"] = "note" if raw.get("private") else "message"
    if message_type == "incoming":
        contact = sender if sender.get("type") in (None, "contact") and sender else (raw.get("contact") or {})
        role_sender = Sender(role="visitor", id=n.short(contact.get("id")), name=n.short(contact.get("name")))
    elif sender.get("type") in (None, "user") and sender.get("id") is not None:
        role_sender = Sender(
            role="agent", id=n.short(sender.get("id")), name=n.short(n.first(sender.get("available_name"), sender.get("name")))
        )
    else:
        role_sender = Sender(role="bot", id=n.short(sender.get("id")), name=n.short(sender.get("name")))
    return Message(sender=role_sender, kind=kind, **common)


def _survey(raw_messages: Any) -> Ratings | None:
    """The visitor's answer to Chatwoot's CSAT survey (1-5 and the feedback), from the survey
    message's ``content_attributes``, among raw messages (the latest answer wins)."""
    found = None
    for raw in raw_messages if isinstance(raw_messages, list) else []:
        attributes = raw.get("content_attributes") if isinstance(raw, dict) else None
        values = attributes.get("submitted_values") if isinstance(attributes, dict) else None
        survey = values.get("csat_survey_response") if isinstance(values, dict) else None
        if isinstance(survey, dict):
            found = n.csat(survey.get("rating"), survey.get("feedback_message")) or found
    return found


def _submitted(attributes: dict[str, Any]) -> list[str]:
    """What the visitor answered to a form, an option list, an e-mail request or the CSAT survey
    (the widget writes it into the question's ``content_attributes``, and Chatwoot pushes the
    question again as ``message_updated``): archived as lines after the question, like Crisp's
    pickers and LiveChat's forms, since those are the visitor's own words."""
    lines: list[str] = []
    values = attributes.get("submitted_values")
    if isinstance(values, list):  # form, input_select: [{name, title, value}]
        for item in values:
            if isinstance(item, dict):
                label, value = n.text_or_none(n.first(item.get("title"), item.get("name"))), n.text_or_none(item.get("value"))
                lines.append(f"{label}: {value}" if label and value and label != value else value or label or "")
    elif isinstance(values, dict) and isinstance(survey := values.get("csat_survey_response"), dict):
        rating, feedback = n.text_or_none(survey.get("rating")), n.text_or_none(survey.get("feedback_message"))
        lines += [f"Rating: {rating}" if rating else "", feedback or ""]
    lines.append(n.text_or_none(attributes.get("submitted_email")) or "")
    return [line for line in lines if line]


def _attachment(raw: dict[str, Any]) -> Any:
    url = raw.get("data_url") or raw.get("external_url")
    name = n.first(raw.get("fallback_title"), n.name_from_url(url))
    return n.attachment(name=name, content_type=raw.get("content_type"), size=raw.get("file_size"), url=url)


def _visitor(contact: dict[str, Any] | None) -> Visitor | None:
    if not contact or contact.get("id") is None:
        return None
    return Visitor(id=n.short(contact["id"]) or "", name=n.short(contact.get("name")), email=n.short(contact.get("email"), 320))


def _agent(user: dict[str, Any] | None) -> Agent | None:
    if not user or user.get("id") is None:
        return None
    return Agent(
        id=n.short(user["id"]) or "",
        name=n.short(n.first(user.get("available_name"), user.get("name"))),
        email=n.short(user.get("email"), 320),
    )


def _channel(value: Any) -> str | None:
    text = n.text_or_none(value)
    if not text:
        return None
    name = text.split("::")[-1]
    return CHANNELS.get(name) or n.channel_slug(name)


def _metadata(account: Any, inbox: Any, conversation: dict[str, Any]) -> dict[str, Any]:
    account = account if isinstance(account, dict) else {}
    inbox = inbox if isinstance(inbox, dict) else {}
    return n.metadata(
        {
            "chatwoot_account_id": account.get("id"),
            "chatwoot_inbox_id": n.first(inbox.get("id"), conversation.get("inbox_id")),
            "chatwoot_inbox": inbox.get("name"),
            "priority": conversation.get("priority"),
            # Set by the widget (setConversationCustomAttributes): links the chat to its invitation.
            "invitation_id": (conversation.get("custom_attributes") or {}).get("invitation_id"),
        }
    )


def _api_parts(api_url: str) -> tuple[str, str | None]:
    """``https://host`` or ``https://host/app/accounts/3`` → (base URL, account id or None)."""
    url = api_url.rstrip("/")
    match = _ACCOUNT_IN_URL.match(url)
    if match:
        return match.group("base"), match.group("account")
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}".rstrip("/"), None


async def fetch(ref: FetchRef, config: ConnectorConfig, client: httpx.AsyncClient) -> Draft:
    assert isinstance(ref, ChatwootRef)
    base, _ = _api_parts(api.base_url(config, None, "Chatwoot"))
    headers = {"api_access_token": api.token(config, "Chatwoot")}
    account = f"{base}/api/v1/accounts/{ref.account_id}"
    url = f"{account}/conversations/{ref.conversation_id}/messages"
    seen: dict[str, dict[str, Any]] = {}
    meta: dict[str, Any] = {}
    params: dict[str, Any] | None = None
    for _ in range(MAX_PAGES):
        page = await api.call(client, "Chatwoot", "GET", url, headers=headers, params=params)
        if not isinstance(page, dict) or not isinstance(page.get("payload"), list):
            raise FetchFailed("bad_response", "the Chatwoot API answered without a message list ('payload')")
        api_shaped(page, _Page, "Chatwoot")
        meta = meta or (page.get("meta") or {})
        fresh = [m for m in page["payload"] if isinstance(m, dict) and str(m.get("id")) not in seen]
        if not fresh:
            break
        for m in fresh:
            seen[str(m.get("id"))] = m
        ids = [m["id"] for m in fresh if isinstance(m.get("id"), int)]
        if not ids:
            break
        params = {"before": min(ids)}
    else:
        raise FetchFailed(
            "too_large", f"the Chatwoot conversation {ref.conversation_id} has more than {MAX_PAGES} pages of messages"
        )
    emails = await _agent_emails(client, account, headers)
    messages = [message_from(m, "payload") for m in seen.values()]
    agents = {
        m.sender.id: Agent(id=m.sender.id, name=m.sender.name, email=emails.get(m.sender.id))
        for m in messages
        if m.sender.role == "agent" and m.sender.id
    }
    assignee = _agent(meta.get("assignee"))
    if assignee:
        agents[assignee.id] = Agent(id=assignee.id, name=assignee.name, email=assignee.email or emails.get(assignee.id))
    return Draft(
        external_id=f"chatwoot:{ref.conversation_id}",
        visitor=_visitor(meta.get("contact")),
        agents=list(agents.values()),
        tags=n.tags(meta.get("labels")),
        messages=messages,
        ratings=_survey(sorted(seen.values(), key=lambda m: m.get("id") if isinstance(m.get("id"), int) else 0)),
    )


async def _agent_emails(client: httpx.AsyncClient, account_url: str, headers: dict[str, str]) -> dict[str, str]:
    """Agent e-mails (the messages API leaves them out); an agent-bot token may not list agents,
    and the transcript is worth archiving without them, so a refusal here is not an error."""
    try:
        agents = await api.call(client, "Chatwoot", "GET", f"{account_url}/agents", headers=headers)
    except FetchFailed:
        return {}
    if not isinstance(agents, list):
        return {}
    return {str(a["id"]): str(a["email"]) for a in agents if isinstance(a, dict) and a.get("id") is not None and a.get("email")}


def check_config(config: ConnectorConfig) -> list[FieldError]:
    if bool(config.api_url) != bool(config.api_token):
        field = "api_token" if config.api_url else "api_url"
        return [FieldError(field, "Chatwoot fetch-back needs both the API URL and the API token")]
    return []


ADAPTER = Adapter(
    platform="chatwoot", verify=verify, delivery_key=delivery_key, parse=parse, fetch=fetch, check_config=check_config
)
