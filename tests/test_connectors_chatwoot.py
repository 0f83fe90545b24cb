"""Chatwoot: signed message events accumulate; a resolve closes, fetching back when it can."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from datetime import datetime, timedelta, timezone

import httpx
import pytest
from aiohttp import web

from archive.connectors import (
    Close,
    FetchFailed,
    Ignored,
    PayloadInvalid,
    Pending,
    SignatureRejected,
    authenticate,
    complete,
    delivery_key,
    parse,
)
from archive.connectors.outcomes import ChatwootRef
from archive.models import Agent, Visitor
from tests.connectors import PlatformApi, answer, at, compact, config, payload, push

SECRET = "cw-webhook-secret-9c1f"
NOW = datetime(2026, 10, 20, 13, 20, 20, tzinfo=timezone.utc)
CONFIG = config("chatwoot", secret=SECRET)
API_TOKEN = "cw-user-token-Hk2"
WEBHOOKS = [
    "message_created_incoming.json",
    "message_created_outgoing.json",
    "message_created_attachment_only.json",
    "message_created_private_note.json",
    "message_created_second_agent.json",
    "message_created_later_deleted.json",
    "message_updated_deleted.json",
    "message_created_reply.json",
]  # message 9107's webhook was "missed"


def signed(
    body: bytes, *, secret: str = SECRET, when: datetime = NOW, delivery: str | None = "5f7c1d2e-8a3b-4c6d-9e0f-1a2b3c4d5e6f"
):
    timestamp = str(int(when.timestamp()))
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    headers = {"X_Chatwoot_Signature": f"sha256={digest}", "X_Chatwoot_Timestamp": timestamp}
    if delivery:
        headers["X_Chatwoot_Delivery"] = delivery
    return push(body, **headers)


def event(name: str, cfg=CONFIG):
    return parse(signed(compact(payload("chatwoot", name))), cfg)


def test_a_correctly_signed_push_is_authenticated():
    authenticate(signed(b'{"event":"message_created"}'), CONFIG, NOW)


def test_a_push_signed_with_another_secret_is_refused():
    with pytest.raises(SignatureRejected) as error:
        authenticate(signed(b'{"event":"message_created"}', secret="other"), CONFIG, NOW)
    assert error.value.reason == "bad_signature"


def test_a_body_changed_after_signing_is_refused():
    good = signed(b'{"event":"message_created","content":"hi"}')
    tampered = push(b'{"event":"message_created","content":"hI"}', **{k.replace("-", "_"): v for k, v in good.headers.items()})
    with pytest.raises(SignatureRejected):
        authenticate(tampered, CONFIG, NOW)


@pytest.mark.parametrize("skew", [timedelta(seconds=301), timedelta(seconds=-301)])
def test_a_push_signed_more_than_five_minutes_away_is_stale(skew):
    with pytest.raises(SignatureRejected) as error:
        authenticate(signed(b"{}", when=NOW - skew), CONFIG, NOW)
    assert error.value.reason == "stale"


def test_a_push_signed_five_minutes_ago_is_still_accepted():
    authenticate(signed(b"{}", when=NOW - timedelta(seconds=300)), CONFIG, NOW)


def test_an_unsigned_push_is_refused():
    with pytest.raises(SignatureRejected) as error:
        authenticate(push(b"{}", X_Chatwoot_Timestamp=str(int(NOW.timestamp()))), CONFIG, NOW)
    assert error.value.reason == "missing_signature"


def test_a_signature_without_the_sha256_prefix_is_refused():
    good = signed(b"{}")
    bare = push(
        b"{}",
        X_Chatwoot_Signature=good.header("x-chatwoot-signature").removeprefix("sha256="),
        X_Chatwoot_Timestamp=good.header("x-chatwoot-timestamp"),
    )
    with pytest.raises(SignatureRejected) as error:
        authenticate(bare, CONFIG, NOW)
    assert error.value.reason == "bad_signature"


def test_the_delivery_header_is_the_dedup_key():
    body = compact(payload("chatwoot", "message_created_incoming.json"))
    assert delivery_key(signed(body, delivery="d-1"), CONFIG) == "chatwoot:delivery:d-1"
    assert delivery_key(signed(body, delivery="d-1", when=NOW + timedelta(seconds=30)), CONFIG) == "chatwoot:delivery:d-1"


def test_without_a_delivery_header_the_body_is_the_dedup_key():
    body = compact(payload("chatwoot", "message_created_incoming.json"))
    other = compact(payload("chatwoot", "message_created_outgoing.json"))
    assert delivery_key(signed(body, delivery=None), CONFIG) == delivery_key(signed(body, delivery=None), CONFIG)
    assert delivery_key(signed(body, delivery=None), CONFIG) != delivery_key(signed(other, delivery=None), CONFIG)


def test_a_new_message_is_kept_pending_under_the_conversation():
    result = event("message_created_incoming.json")
    assert isinstance(result, Pending) and result.thread == "184"
    message = result.draft.messages[0]
    assert (message.id, message.sender.role, message.sender.id, message.at) == (
        "9101",
        "visitor",
        "5521",
        at("2026-10-20T13:04:11Z"),
    )
    assert result.draft.visitor == Visitor(id="5521", name="Jürgen Müller", email="juergen.mueller@example.de")


def test_an_agents_message_brings_the_agents_email():
    result = event("message_created_outgoing.json")
    assert Agent(id="12", name="Ingrid Solberg", email="ingrid.solberg@nordlys.example") in result.draft.agents


def test_a_private_message_is_an_internal_note():
    message = event("message_created_private_note.json").draft.messages[0]
    assert (message.kind, message.sender.role, message.sender.id) == ("note", "agent", "12")


def test_an_attachment_only_message_keeps_its_file():
    message = event("message_created_attachment_only.json").draft.messages[0]
    assert message.text == ""
    [file] = message.attachments
    assert (file.name, file.content_type, file.size) == ("karton-beschädigt.jpg", "image/jpeg", 248113)
    assert file.url.startswith("https://chat.nordlys.example/rails/active_storage/blobs/redirect/")


def test_a_deleted_message_arrives_marked_deleted():
    message = event("message_updated_deleted.json").draft.messages[0]
    assert (message.id, message.deleted, message.text) == ("9108", True, "This message was deleted")


def test_resolving_a_conversation_closes_it():
    result = event("conversation_status_changed_resolved.json")
    assert isinstance(result, Close) and result.thread == "184" and result.fetch is None
    assert result.draft.ended_at == at("2026-10-20T13:20:13.318442Z")


@pytest.mark.parametrize("name", ["conversation_status_changed_open.json", "conversation_typing_on.json"])
def test_other_events_are_ignored(name):
    assert isinstance(event(name), Ignored)


async def test_without_api_access_the_close_assembles_the_accumulated_messages():
    pending = [event(name).draft for name in WEBHOOKS]
    close = event("conversation_status_changed_resolved.json")
    conversation = await complete(close, pending, CONFIG)
    assert conversation.external_id == "chatwoot:184"
    assert (conversation.site, conversation.channel, conversation.language, conversation.tags) == (
        "chatwoot",
        "web",
        "de",
        ["reklamation"],
    )
    assert conversation.visitor == Visitor(id="5521", name="Jürgen Müller", email="juergen.mueller@example.de")
    assert sorted(conversation.agents, key=lambda a: a.id) == [
        Agent(id="12", name="Ingrid Solberg", email="ingrid.solberg@nordlys.example"),
        Agent(id="15", name="Thomas Lie", email="thomas.lie@nordlys.example"),
    ]
    ids = [m.id for m in conversation.messages]
    assert ids[:6] == ["9101", "9102", "9103", "9104", "9106", "9108"] and "9107" not in ids
    assert conversation.messages[-1].kind == "event" and conversation.messages[-1].event == "close"
    assert conversation.started_at == at("2026-10-20T13:03:58Z")


async def test_a_deleted_message_keeps_its_original_words_next_to_the_deletion():
    pending = [event(name).draft for name in WEBHOOKS]
    conversation = await complete(event("conversation_status_changed_resolved.json"), pending, CONFIG)
    versions = [(m.text, m.deleted) for m in conversation.messages if m.id == "9108"]
    assert versions == [
        ("Die Sendungsnummer lautet 00340434161234567890, Ihre Adresse Hafenstraße 12.", False),
        ("This message was deleted", True),
    ]


def chatwoot_api(token: str = API_TOKEN) -> PlatformApi:
    """Chatwoot's messages endpoint as MessageFinder pages it: the 20 latest, or the 20 before ``before``."""
    listing = payload("chatwoot", "api_messages.json")
    api = PlatformApi()

    async def messages(request: web.Request) -> web.Response:
        if request.headers.get("api_access_token") != token:
            return answer({"error": "Invalid Access Token"}, 401)
        rows = listing["payload"]
        if "before" in request.query:
            rows = [m for m in rows if m["id"] < int(request.query["before"])]
        page = sorted(rows, key=lambda m: m["created_at"])[-20:]
        return answer({"meta": listing["meta"], "payload": page})

    async def agents(request: web.Request) -> web.Response:
        return answer(payload("chatwoot", "api_agents.json"))

    api.route("GET", "/api/v1/accounts/7/conversations/184/messages", messages)
    api.route("GET", "/api/v1/accounts/7/agents", agents)
    return api


async def test_with_api_access_the_close_fetches_every_message_back():
    async with chatwoot_api() as api:
        cfg = config("chatwoot", secret=SECRET, api_url=api.url, api_token=API_TOKEN)
        pending = [event(name, cfg).draft for name in WEBHOOKS]
        close = event("conversation_status_changed_resolved.json", cfg)
        assert close.fetch == ChatwootRef(account_id="7", conversation_id="184")
        conversation = await complete(close, pending, cfg)
    pages = [r["query"] for r in api.requests if r["path"].endswith("/messages")]
    assert pages == [{}, {"before": "9105"}, {"before": "9101"}]
    assert all(r["headers"]["api_access_token"] == API_TOKEN for r in api.requests)
    ids = [m.id for m in conversation.messages]
    assert "9107" in ids  # the message whose webhook never came
    assert len(conversation.messages) == 25  # 24 from the API, plus the deleted message's original words
    events = [(m.event, m.text) for m in conversation.messages if m.kind == "event"]
    assert events == [
        ("assign", "Assigned to Thomas Lie by Ingrid Solberg"),
        ("close", "Conversation was marked resolved by Thomas Lie"),
    ]


async def test_fetched_agents_get_their_email_from_the_agents_list():
    async with chatwoot_api() as api:
        cfg = config("chatwoot", secret=SECRET, api_url=api.url, api_token=API_TOKEN)
        conversation = await complete(event("conversation_status_changed_resolved.json", cfg), [], cfg)
    assert {a.id: a.email for a in conversation.agents} == {
        "12": "ingrid.solberg@nordlys.example",
        "15": "thomas.lie@nordlys.example",
    }


async def test_a_refused_api_token_is_reported_without_the_token():
    async with chatwoot_api(token="the-right-one") as api:
        cfg = config("chatwoot", secret=SECRET, api_url=api.url, api_token=API_TOKEN)
        with pytest.raises(FetchFailed) as error:
            await complete(event("conversation_status_changed_resolved.json", cfg), [], cfg)
    assert error.value.reason == "unauthorized" and "--api-token" in error.value.detail
    assert API_TOKEN not in error.value.detail and error.value.status == 502


async def test_an_api_that_does_not_answer_in_time_fails_the_fetch():
    release = asyncio.Event()
    api = PlatformApi()

    async def hang(request: web.Request) -> web.Response:
        await release.wait()
        return answer({"payload": []})

    api.route("GET", "/api/v1/accounts/7/conversations/184/messages", hang)
    async with api:
        cfg = config("chatwoot", secret=SECRET, api_url=api.url, api_token=API_TOKEN)
        try:
            async with httpx.AsyncClient(timeout=httpx.Timeout(0.2)) as client:
                with pytest.raises(FetchFailed) as error:
                    await complete(event("conversation_status_changed_resolved.json", cfg), [], cfg, client)
        finally:
            release.set()
    assert error.value.reason == "timeout"


def test_the_account_can_come_from_the_api_url_when_the_push_does_not_say():
    body = payload("chatwoot", "conversation_status_changed_resolved.json")
    body["messages"] = []
    cfg = config("chatwoot", secret=SECRET, api_url="https://chat.nordlys.example/app/accounts/7", api_token=API_TOKEN)
    result = parse(signed(compact(body)), cfg)
    assert result.fetch == ChatwootRef(account_id="7", conversation_id="184")


def test_a_close_that_cannot_name_its_account_asks_for_it():
    body = payload("chatwoot", "conversation_status_changed_resolved.json")
    body["messages"] = []
    cfg = config("chatwoot", secret=SECRET, api_url="https://chat.nordlys.example", api_token=API_TOKEN)
    with pytest.raises(PayloadInvalid) as error:
        parse(signed(compact(body)), cfg)
    assert error.value.errors[0].path == "account_id" and "/app/accounts/" in error.value.detail


async def test_messages_of_the_same_second_delivered_out_of_order_keep_chatwoots_order():
    # created_at has whole seconds and Sidekiq delivers webhooks in any order; ids grow with time.
    def message(message_id: int, text: str):
        body = payload("chatwoot", "message_created_incoming.json")
        body.update(id=message_id, content=text, created_at="2026-10-20T13:05:11.000Z")
        return parse(signed(compact(body)), CONFIG).draft

    later, earlier = message(7302, "second"), message(7301, "first")
    conversation = await complete(event("conversation_status_changed_resolved.json"), [later, earlier], CONFIG)
    assert [m.id for m in conversation.messages if m.id in ("7301", "7302")] == ["7301", "7302"]


def _answered_survey(status: str) -> dict:
    body = payload("chatwoot", "message_created_outgoing.json")
    body.update(id=9206, event="message_updated", content_type="input_csat", content="Please rate the conversation",
                content_attributes={"submitted_values": {"csat_survey_response": {"rating": 4, "feedback_message": "Quick and kind"}}})
    body["conversation"]["status"] = status
    return body


def test_with_api_access_a_survey_answered_after_the_resolve_closes_the_conversation_again():
    """The survey is sent at the resolve, so its answer arrives after the archive: with API
    access it closes the conversation again and the fetch-back brings the whole conversation,
    answers included, into its next revision (no second close event of its own)."""
    cfg = config("chatwoot", secret=SECRET, api_url="https://chat.nordlys.example/app/accounts/7", api_token=API_TOKEN)
    result = parse(signed(compact(_answered_survey("resolved"))), cfg)
    assert isinstance(result, Close) and result.fetch == ChatwootRef(account_id="7", conversation_id="184")
    assert [m.text for m in result.draft.messages] == ["Please rate the conversation\nRating: 4\nQuick and kind"]
    still_open = parse(signed(compact(_answered_survey("open"))), cfg)  # answered before any resolve: just a message
    assert not isinstance(still_open, Close) and still_open.draft.messages[0].text.endswith("Quick and kind")
