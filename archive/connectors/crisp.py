"""Crisp web hooks: ``session:set_state`` to ``resolved`` closes; the REST API gives the messages.

Two kinds of hooks reach the same connector (docs.crisp.chat, guides/web-hooks):
  Plugin Hooks (Marketplace) are signed: X-Crisp-Signature over the timestamp and the raw body.
  Website Hooks (Settings → Website settings → Advanced → Web Hooks) "are not signed, in contrary
  to Plugin Hooks": Crisp recommends a key appended to the endpoint URL (``?key=KEY``), which the
  receiver compares with its own. A push without a signature is checked by that key.

Followed: crisp-im/go-crisp-api
  crisp/events.go            (EventsService.VerifyHook: HMAC-SHA256 over "[<timestamp>;<raw body>]",
                              hex; hook envelope {website_id, event, data, timestamp})
  examples/events_webhooks/main.go (the X-Crisp-Request-Timestamp and X-Crisp-Signature headers)
  crisp/website_conversation.go, crisp/website_operator.go (REST shapes: messages, meta, operators)
crisp-im/node-crisp-api
  lib/crisp.ts               (REST base https://api.crisp.chat/v1/, Basic auth, X-Crisp-Tier;
                              answers wrap the result in {"error", "reason", "data"})
  lib/resources/WebsiteConversation.ts (GET …/conversation/{session}/messages?timestamp_before=,
                              message types text/file/animation/audio/note/picker/field/carousel/event)
  lib/events/Events.ts       (session:set_state carries {website_id, session_id, state})

The hook carries ids only, so every close is fetched back: the conversation (visitor, segments),
the messages page by page (newest first, ``timestamp_before`` the oldest seen), and the operator
list for e-mails (best effort). The API token is "identifier:key" (tier ``plugin``) or
"<tier>:identifier:key".
"""

from __future__ import annotations

import base64
import re
from datetime import datetime
from typing import Any

import httpx
import msgspec

from archive.connectors import api
from archive.connectors import normalise as n
from archive.connectors.adapter import Adapter, Obj, api_shaped, body_key, needs_api, shaped
from archive.connectors.errors import FetchFailed, FetchNotConfigured, PayloadInvalid, SignatureRejected
from archive.connectors.outcomes import Close, CrispRef, Draft, FetchRef, Ignored, Outcome
from archive.connectors.push import ConnectorConfig, Push
from archive.connectors.signatures import check_fresh, check_hex_signature, check_token, hmac_hex, required_header, signed_at
from archive.connectors.timestamps import maybe_time
from archive.errors import FieldError
from archive.models import Agent, EventType, Message, Sender, Visitor

SIGNATURE_HEADER = "X-Crisp-Signature"
TIMESTAMP_HEADER = "X-Crisp-Request-Timestamp"
KEY_PARAMETER = "key"  # Website Hooks: <webhook URL>?key=<the connector's secret>
DEFAULT_API = "https://api.crisp.chat/v1"
MAX_PAGES = 1000
CHANNELS = {"chat": "web", "email": "email"}
EVENT_NAMESPACES: list[tuple[re.Pattern[str], EventType]] = [
    (re.compile(r"unresolved|reopen", re.I), "reopen"),
    (re.compile(r"resolved|closed", re.I), "close"),
    (re.compile(r"assign|routing|transfer", re.I), "assign"),
    (re.compile(r"participant|join", re.I), "join"),
    (re.compile(r"rating|feedback", re.I), "rating"),
]



# The JSON types read from a hook and from the REST answers (node-crisp-api WebsiteConversation).
class _Hook(msgspec.Struct):
    data: Obj | None = None


class _Meta(msgspec.Struct):
    data: Obj | None = None
    segments: list[Any] | None = None


class _Conversation(msgspec.Struct):
    meta: _Meta | None = None
    assigned: Obj | None = None


class _Content(msgspec.Struct):
    choices: list[Any] | None = None
    targets: list[Any] | None = None


class _Message(msgspec.Struct):
    user: Obj | None = None
    content: _Content | str | None = None


class _Operator(msgspec.Struct):
    details: Obj | None = None


def verify(push: Push, config: ConnectorConfig, now: datetime) -> None:
    if not push.header(SIGNATURE_HEADER):
        if KEY_PARAMETER in push.query:  # a Website Hook: unsigned, authenticated by the key in the URL Crisp was given
            check_token(config.secret, push.query[KEY_PARAMETER], f"the webhook URL's {KEY_PARAMETER} parameter")
            return
        raise SignatureRejected(
            "missing_signature",
            f"the {SIGNATURE_HEADER} header (Plugin Hooks) is missing, and so is the webhook URL's {KEY_PARAMETER} "
            f"parameter (Website Hooks are not signed: enter the webhook URL as <webhook URL>?{KEY_PARAMETER}=<secret>)",
        )
    signature = required_header(push, SIGNATURE_HEADER)
    timestamp = required_header(push, TIMESTAMP_HEADER)
    check_fresh(signed_at(timestamp, TIMESTAMP_HEADER), now, config.tolerance_seconds, TIMESTAMP_HEADER)
    expected = hmac_hex(config.secret, b"[" + timestamp.encode() + b";" + push.body + b"]")
    check_hex_signature(expected, signature, SIGNATURE_HEADER)


def parse(push: Push, config: ConnectorConfig) -> Outcome:
    payload = push.json_object()
    event = payload.get("event")
    shaped(payload, _Hook, "the Crisp hook")
    data = payload.get("data") or {}
    if event != "session:set_state" or data.get("state") != "resolved":
        detail = f" to {data.get('state')!r}" if event == "session:set_state" else ""
        return Ignored(f"Crisp {event or 'untyped'}{detail} is not archived")
    website_id = n.text_or_none(n.first(data.get("website_id"), payload.get("website_id")))
    session_id = n.text_or_none(data.get("session_id"))
    if not website_id or not session_id:
        missing = [("website_id", website_id), ("data.session_id", session_id)]
        raise PayloadInvalid(
            "a Crisp state change needs website_id and session_id", [FieldError(path, "missing") for path, v in missing if not v]
        )
    draft = Draft(
        external_id=f"crisp:{session_id}",
        site=n.site_or_none(website_id) or "crisp",
        ended_at=maybe_time(payload.get("timestamp")),
    )
    return Close(thread=session_id, draft=draft, fetch=CrispRef(website_id=website_id, session_id=session_id))


def message_from(raw: dict[str, Any], visitor_id: str | None) -> Message:
    content = raw.get("content")
    kind_raw = raw.get("type")
    user = raw.get("user") or {}
    attachments = []
    text = content if isinstance(content, str) else ""
    if isinstance(content, dict):
        if kind_raw in ("file", "animation", "audio"):
            attachments.append(n.attachment(name=content.get("name"), content_type=content.get("type"), url=content.get("url")))
        else:
            text = _structured_text(content)
    at = maybe_time(raw.get("timestamp"))
    if at is None:
        raise PayloadInvalid("a Crisp message has no timestamp", [FieldError("data.timestamp", "missing")])
    common: dict[str, Any] = {"at": at, "text": text, "attachments": attachments, "id": n.short(raw.get("fingerprint"))}
    if kind_raw == "event":
        namespace = str((content or {}).get("namespace") or "") if isinstance(content, dict) else ""
        event: EventType = next((name for pattern, name in EVENT_NAMESPACES if pattern.search(namespace)), "other")
        return Message(
            sender=Sender(role="system", id=n.short(user.get("user_id")), name=n.short(user.get("nickname"))),
            kind="event",
            event=event,
            **common,
        )
    if raw.get("from") == "user":
        sender = Sender(role="visitor", id=n.short(visitor_id or user.get("user_id")), name=n.short(user.get("nickname")))
    else:
        sender = Sender(
            role="bot" if raw.get("automated") else "agent", id=n.short(user.get("user_id")), name=n.short(user.get("nickname"))
        )
    return Message(sender=sender, kind="note" if kind_raw == "note" else "message", **common)


def _structured_text(content: dict[str, Any]) -> str:
    """Pickers, fields and carousels: the question and what was chosen or typed."""
    parts = [n.text_or_none(content.get("text"))]
    chosen = [c.get("label") for c in content.get("choices") or [] if isinstance(c, dict) and c.get("selected")]
    parts.extend(n.text_or_none(c) for c in chosen)
    parts.append(n.text_or_none(content.get("value")))
    for target in content.get("targets") or []:
        if isinstance(target, dict):
            parts.append(n.text_or_none(" ".join(filter(None, [target.get("title"), target.get("description")]))))
    return "\n".join(p for p in parts if p)


def _credentials(config: ConnectorConfig) -> tuple[str, str]:
    parts = api.token(config, "Crisp").split(":")
    if len(parts) == 2:
        return "plugin", ":".join(parts)
    if len(parts) == 3:
        return parts[0], ":".join(parts[1:])
    raise FetchNotConfigured("the Crisp API token must be 'identifier:key' (or '<tier>:identifier:key')")


def _data(answer: Any, what: str) -> Any:
    if not isinstance(answer, dict) or answer.get("error") is True or "data" not in answer:
        reason = answer.get("reason") if isinstance(answer, dict) else None
        raise FetchFailed("bad_response", f"the Crisp API did not return the {what}" + (f" ({reason})" if reason else ""))
    return answer["data"]


async def fetch(ref: FetchRef, config: ConnectorConfig, client: httpx.AsyncClient) -> Draft:
    assert isinstance(ref, CrispRef)
    base = api.base_url(config, DEFAULT_API, "Crisp")
    tier, credentials = _credentials(config)
    headers = {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode(), "X-Crisp-Tier": tier}
    conversation_url = f"{base}/website/{ref.website_id}/conversation/{ref.session_id}"
    conversation = _data(await api.call(client, "Crisp", "GET", conversation_url, headers=headers), "conversation")
    api_shaped(conversation, _Conversation, "Crisp")
    meta = conversation.get("meta") or {}
    visitor_id = n.short(n.first(conversation.get("people_id"), ref.session_id))
    raw_messages: dict[str, dict[str, Any]] = {}
    params: dict[str, Any] | None = None
    for _ in range(MAX_PAGES):
        page = _data(
            await api.call(client, "Crisp", "GET", f"{conversation_url}/messages", headers=headers, params=params), "messages"
        )
        api_shaped(page or [], list[_Message], "Crisp")
        fresh = [m for m in page or [] if isinstance(m, dict) and str(m.get("fingerprint")) not in raw_messages]
        if not fresh:
            break
        for m in fresh:
            raw_messages[str(m.get("fingerprint"))] = m
        stamps = [m["timestamp"] for m in fresh if isinstance(m.get("timestamp"), (int, float))]
        if not stamps:
            break
        params = {"timestamp_before": int(min(stamps))}
    else:
        raise FetchFailed("too_large", f"the Crisp conversation {ref.session_id} has more than {MAX_PAGES} pages of messages")
    emails = await _operator_emails(client, f"{base}/website/{ref.website_id}/operators/list", headers)
    messages = [message_from(m, visitor_id) for m in raw_messages.values()]
    agents = {
        m.sender.id: Agent(id=m.sender.id, name=m.sender.name, email=emails.get(m.sender.id))
        for m in messages
        if m.sender.role == "agent" and m.sender.id
    }
    assigned = n.text_or_none((conversation.get("assigned") or {}).get("user_id"))
    if assigned and assigned not in agents:
        agents[assigned] = Agent(id=assigned, email=emails.get(assigned))
    metadata = n.metadata({"subject": meta.get("subject"), "crisp_inbox_id": conversation.get("inbox_id")})
    metadata.update(n.metadata(meta.get("data") or {}, prefix="data."))
    return Draft(
        external_id=f"crisp:{ref.session_id}",
        site=n.site_or_none(ref.website_id),
        channel=CHANNELS.get(str(meta.get("origin")), n.channel_slug(meta.get("origin"))),
        started_at=maybe_time(conversation.get("created_at")),
        ended_at=maybe_time(conversation.get("updated_at")),
        visitor=Visitor(
            id=visitor_id or ref.session_id, name=n.short(meta.get("nickname")), email=n.short(meta.get("email"), 320)
        ),
        agents=list(agents.values()),
        tags=n.tags(meta.get("segments")),
        metadata=metadata,
        messages=messages,
    )


async def _operator_emails(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> dict[str, str]:
    """Operator e-mails by user id; a token without that scope still archives the transcript."""
    try:
        operators = api_shaped(_data(await api.call(client, "Crisp", "GET", url, headers=headers), "operators"), list[_Operator], "Crisp")
    except FetchFailed:
        return {}
    out = {}
    for entry in operators:
        details = entry.details or {}
        if details.get("user_id") and details.get("email"):
            out[str(details["user_id"])] = str(details["email"])
    return out


def check_config(config: ConnectorConfig) -> list[FieldError]:
    errors = needs_api(config, url_required=False)
    if config.api_token and len(config.api_token.split(":")) not in (2, 3):
        errors.append(FieldError("api_token", "the Crisp API token is 'identifier:key' (or '<tier>:identifier:key')"))
    return errors


ADAPTER = Adapter(platform="crisp", verify=verify, delivery_key=body_key, parse=parse, fetch=fetch, check_config=check_config)
