"""LiveChat: ``chat_deactivated`` with the webhook's secret_key; the thread from the Agent Chat API."""

from __future__ import annotations

import base64
from datetime import datetime, timezone

import pytest
from aiohttp import web

from archive.connectors import Close, FetchFailed, Ignored, SignatureRejected, authenticate, complete, delivery_key, parse
from archive.connectors.outcomes import LiveChatRef
from archive.models import Agent, Attachment, Visitor
from tests.connectors import PlatformApi, answer, at, compact, config, payload, push, raw

SECRET = "lc-fixture-secret-6Jq2vN8xR4"  # the secret_key in the fixture webhooks
NOW = datetime(2026, 11, 9, 10, 19, 45, tzinfo=timezone.utc)
ACCOUNT_TOKEN = "a3f1c2d4-5e6f-4a7b-8c9d-0e1f2a3b4c5d:dal:Xq8rT2vB9nM4kL7pZ1wE"
CHAT, THREAD = "SBH2K9T0QX", "SBH2KD0M8F"
CONFIG = config("livechat", secret=SECRET)


def deactivated() -> bytes:
    return raw("livechat", "webhook_chat_deactivated.json")


def test_a_webhook_carrying_the_connector_secret_is_authenticated():
    authenticate(push(deactivated()), CONFIG, NOW)


def test_a_webhook_with_another_secret_key_is_refused():
    body = payload("livechat", "webhook_chat_deactivated.json")
    body["secret_key"] = "guess"
    with pytest.raises(SignatureRejected) as error:
        authenticate(push(compact(body)), CONFIG, NOW)
    assert error.value.reason == "bad_signature"


def test_a_webhook_without_a_secret_key_is_refused():
    body = payload("livechat", "webhook_chat_deactivated.json")
    del body["secret_key"]
    with pytest.raises(SignatureRejected) as error:
        authenticate(push(compact(body)), CONFIG, NOW)
    assert error.value.reason == "missing_signature"


def test_a_body_that_is_not_json_is_unauthenticated_not_malformed():
    with pytest.raises(SignatureRejected) as error:
        authenticate(push(b"secret_key=guess"), CONFIG, NOW)
    assert error.value.reason == "missing_signature"


def test_the_dedup_key_repeats_for_a_retry_and_holds_nothing_of_the_secret():
    key = delivery_key(push(deactivated()), CONFIG)
    assert key == delivery_key(push(compact(payload("livechat", "webhook_chat_deactivated.json"))), CONFIG)
    assert SECRET not in key and key != delivery_key(push(raw("livechat", "webhook_incoming_event.json")), CONFIG)


def test_a_deactivated_chat_fetches_its_thread_back():
    result = parse(push(deactivated()), CONFIG)
    assert isinstance(result, Close) and result.fetch == LiveChatRef(chat_id=CHAT, thread_id=THREAD)
    assert result.thread == f"{CHAT}:{THREAD}"


def test_other_webhooks_are_ignored():
    assert isinstance(parse(push(raw("livechat", "webhook_incoming_event.json")), CONFIG), Ignored)


def livechat_api() -> PlatformApi:
    api = PlatformApi()
    expected = "Basic " + base64.b64encode(ACCOUNT_TOKEN.encode()).decode()

    async def get_chat(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != expected:
            return answer({"error": {"type": "authentication", "message": "Invalid access token"}}, 401)
        asked = await request.json()
        if asked != {"chat_id": CHAT, "thread_id": THREAD}:
            return answer({"error": {"type": "not_found", "message": "Chat not found"}}, 404)
        return answer(payload("livechat", "api_get_chat.json"))

    api.route("POST", "/agent/action/get_chat", get_chat)
    return api


async def fetched(token: str = ACCOUNT_TOKEN):
    async with livechat_api() as api:
        cfg = config("livechat", secret=SECRET, api_url=api.url, api_token=token)
        conversation = await complete(parse(push(deactivated()), cfg), [], cfg)
    return conversation, api.requests


async def test_the_thread_is_asked_for_by_chat_and_thread_id():
    _, requests = await fetched()
    [request] = requests
    assert (request["method"], request["path"], request["json"]) == (
        "POST",
        "/agent/action/get_chat",
        {"chat_id": CHAT, "thread_id": THREAD},
    )


async def test_the_thread_becomes_a_conversation_with_every_event():
    conversation, _ = await fetched()
    assert (conversation.external_id, conversation.site, conversation.tags) == (
        f"livechat:{CHAT}:{THREAD}",
        "390e44e6-f1e6-4c2b-9d4e-74a14508c2e1",
        ["zwrot"],
    )
    assert [(m.kind, m.event) for m in conversation.messages] == [
        ("event", "form"),
        ("event", "assign"),
        ("message", None),
        ("message", None),
        ("message", None),
        ("note", None),
        ("event", "transfer"),
        ("message", None),
        ("message", None),
        ("event", "close"),
    ]
    assert conversation.started_at == at("2026-11-09T10:15:01.930551Z")
    assert conversation.ended_at == at("2026-11-09T10:19:40.300126Z")  # microseconds kept


async def test_the_customer_is_the_visitor_and_both_agents_are_listed_with_email():
    conversation, _ = await fetched()
    assert conversation.visitor == Visitor(
        id="c5e1a3f0-6b2d-4f8e-9a17-3d4c5b6a7e80", name="Zofia Wiśniewska", email="zofia.wisniewska@example.pl"
    )
    assert conversation.agents == [
        Agent(id="anna.kowalska@sklep.example", name="Anna Kowalska", email="anna.kowalska@sklep.example"),
        Agent(id="piotr.nowak@sklep.example", name="Piotr Nowak", email="piotr.nowak@sklep.example"),
    ]


async def test_a_whisper_to_agents_is_an_internal_note():
    conversation, _ = await fetched()
    note = next(m for m in conversation.messages if m.kind == "note")
    assert (note.sender.role, note.sender.id, note.text) == (
        "agent",
        "anna.kowalska@sklep.example",
        "Piotr, przejmiesz? Zwroty to twój dział.",
    )


async def test_a_file_event_is_an_attachment_only_message():
    conversation, _ = await fetched()
    message = next(m for m in conversation.messages if m.attachments)
    assert message.text == "" and message.sender.role == "visitor"
    assert message.attachments == [
        Attachment(
            name="paragon.jpg",
            content_type="image/jpeg",
            size=96531,
            url="https://cdn.files-text.com/api/lc/att/11442778/2f9a1c7e4b0d8a63/paragon.jpg",
        )
    ]


async def test_the_prechat_form_is_kept_as_a_form_event():
    conversation, _ = await fetched()
    form = conversation.messages[0]
    assert form.text == "Imię i nazwisko: Zofia Wiśniewska\nE-mail: zofia.wisniewska@example.pl\nTemat: Zwrot"


async def test_a_token_livechat_refuses_fails_the_fetch():
    with pytest.raises(FetchFailed) as error:
        await fetched(token="acc:wrong")
    assert error.value.reason == "unauthorized"


@pytest.mark.parametrize(("dropped", "named"), [(("chat_id",), ["payload.chat_id"]), (("thread_id",), ["payload.thread_id"]),
                                                (("chat_id", "thread_id"), ["payload.chat_id", "payload.thread_id"])])
def test_a_deactivation_without_its_ids_names_each_missing_one(dropped, named):
    from archive.connectors import PayloadInvalid

    body = payload("livechat", "webhook_chat_deactivated.json")
    for key in dropped:
        del body["payload"][key]
    with pytest.raises(PayloadInvalid) as error:
        parse(push(compact(body)), CONFIG)
    assert [e.path for e in error.value.errors] == named
