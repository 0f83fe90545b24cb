"""Intercom: a signed close notification, and the conversation fetched back from the API."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timezone

import pytest
from aiohttp import web

from archive.connectors import Close, FetchFailed, Ignored, SignatureRejected, authenticate, complete, delivery_key, parse
from archive.connectors.outcomes import IntercomRef
from archive.models import Agent, Attachment, Visitor
from tests.connectors import PlatformApi, answer, compact, config, payload, push, raw

CLIENT_SECRET = "ic-client-secret-77a0"
NOW = datetime(2026, 10, 27, 9, 20, 0, tzinfo=timezone.utc)
TOKEN = "dG9rOmljLWFjY2Vzcy10b2tlbg=="
CONVERSATION = "215468932547901"


def signed(body: bytes, secret: str = CLIENT_SECRET):
    return push(body, X_Hub_Signature="sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest())


def closed_notification():
    return raw("intercom", "notification_conversation_admin_closed.json")


def test_a_notification_signed_with_the_client_secret_is_authenticated():
    authenticate(signed(closed_notification()), config("intercom", secret=CLIENT_SECRET), NOW)


def test_a_notification_signed_with_another_secret_is_refused():
    with pytest.raises(SignatureRejected) as error:
        authenticate(signed(closed_notification(), "nope"), config("intercom", secret=CLIENT_SECRET), NOW)
    assert error.value.reason == "bad_signature"


def test_a_signature_with_another_algorithm_prefix_is_refused():
    body = closed_notification()
    sha256 = "sha256=" + hmac.new(CLIENT_SECRET.encode(), body, hashlib.sha256).hexdigest()
    with pytest.raises(SignatureRejected):
        authenticate(push(body, X_Hub_Signature=sha256), config("intercom", secret=CLIENT_SECRET), NOW)


def test_an_unsigned_notification_is_refused():
    with pytest.raises(SignatureRejected) as error:
        authenticate(push(closed_notification()), config("intercom", secret=CLIENT_SECRET), NOW)
    assert error.value.reason == "missing_signature"


def test_the_notification_id_is_the_dedup_key():
    key = delivery_key(signed(closed_notification()), config("intercom", secret=CLIENT_SECRET))
    assert key == "intercom:notification:notif_5d1c7e9a-2b4f-4c8e-9a31-7f0e6d2b8c44"


def test_a_closed_conversation_is_fetched_back_by_its_id():
    result = parse(signed(closed_notification()), config("intercom", secret=CLIENT_SECRET))
    assert isinstance(result, Close) and result.fetch == IntercomRef(conversation_id=CONVERSATION)
    assert result.draft.messages == [] and result.draft.site == "ecahpwf5"


def test_a_rating_given_after_the_close_fetches_the_conversation_back_again():
    body = json.loads(closed_notification())
    body["topic"] = "conversation.rating.added"
    result = parse(signed(json.dumps(body).encode()), config("intercom", secret=CLIENT_SECRET))
    assert isinstance(result, Close) and result.fetch == IntercomRef(conversation_id=CONVERSATION)


@pytest.mark.parametrize("name", ["notification_ping.json", "notification_conversation_user_replied.json"])
def test_other_topics_are_ignored(name):
    assert isinstance(parse(signed(raw("intercom", name)), config("intercom", secret=CLIENT_SECRET)), Ignored)


def intercom_api() -> PlatformApi:
    api = PlatformApi()

    async def conversation(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return answer({"type": "error.list", "errors": [{"code": "unauthorized", "message": "Access Token Invalid"}]}, 401)
        if request.match_info["id"] != CONVERSATION:
            return answer({"type": "error.list", "errors": [{"code": "not_found", "message": "Resource Not Found"}]}, 404)
        return answer(payload("intercom", "api_conversation.json"))

    api.route("GET", "/conversations/{id}", conversation)
    return api


async def fetched(body: bytes | None = None):
    async with intercom_api() as api:
        cfg = config("intercom", secret=CLIENT_SECRET, api_url=api.url, api_token=TOKEN)
        conversation = await complete(parse(signed(body or closed_notification()), cfg), [], cfg)
    return conversation, api.requests


async def test_the_fetch_asks_for_plain_text_with_the_api_version_and_token():
    _, requests = await fetched()
    [request] = requests
    assert request["path"] == f"/conversations/{CONVERSATION}" and request["query"] == {"display_as": "plaintext"}
    assert request["headers"]["Intercom-Version"] == "2.11" and request["headers"]["Authorization"] == f"Bearer {TOKEN}"


async def test_the_fetched_conversation_has_every_part_in_order():
    conversation, _ = await fetched()
    assert conversation.external_id == f"intercom:{CONVERSATION}"
    assert [(m.kind, m.event) for m in conversation.messages] == [
        ("message", None),
        ("event", "assign"),
        ("message", None),
        ("message", None),
        ("note", None),
        ("event", "assign"),
        ("message", None),
        ("message", None),
        ("event", "close"),
    ]
    assert conversation.messages[0].text == "Hej! Mit abonnement blev trukket to gange i oktober."
    assert conversation.messages[-2].text == "Fedt, tak for hjælpen! 👍"


async def test_the_customer_is_the_visitor_with_the_email_intercom_gave():
    conversation, _ = await fetched()
    assert conversation.visitor == Visitor(id="66f1a2b3c4d5e6f708192a3b", name="Søren Kierkegaard", email="soren.k@example.dk")


async def test_both_admins_are_agents_with_their_emails():
    conversation, _ = await fetched()
    assert sorted(conversation.agents, key=lambda a: a.id) == [
        Agent(id="7423911", name="Maja Lindqvist", email="maja.lindqvist@acme.example"),
        Agent(id="7423955", name="Jonas Eriksson", email="jonas.eriksson@acme.example"),
    ]


async def test_the_bot_assignment_and_the_close_are_system_events_naming_who_acted():
    conversation, _ = await fetched()
    first_assign = conversation.messages[1]
    close = conversation.messages[-1]
    assert (first_assign.sender.role, first_assign.sender.name) == ("system", "Fin")
    assert (close.sender.role, close.sender.id, close.text) == ("system", "7423955", "Jonas Eriksson closed the conversation")


async def test_an_attachment_only_reply_keeps_the_file():
    conversation, _ = await fetched()
    message = next(m for m in conversation.messages if m.id == "19873301003")
    assert message.text == "" and message.sender.role == "visitor"
    assert message.attachments == [
        Attachment(
            name="kontoudtog oktober.pdf",
            content_type="application/pdf",
            size=88213,
            url="https://downloads.intercomcdn.com/i/o/ecahpwf5/1186352201/3f9a2b7c1d/kontoudtog%20oktober.pdf",
        )
    ]


async def test_epoch_seconds_become_the_conversations_times_and_tags_are_kept():
    conversation, _ = await fetched()
    assert conversation.started_at == datetime(2026, 10, 27, 9, 12, 5, tzinfo=timezone.utc)
    assert conversation.ended_at == datetime(2026, 10, 27, 9, 19, 55, tzinfo=timezone.utc)
    assert (conversation.site, conversation.channel, conversation.tags) == ("ecahpwf5", "web", ["billing"])


async def test_a_conversation_the_api_does_not_know_fails_the_fetch():
    body = payload("intercom", "notification_conversation_admin_closed.json")
    body["data"]["item"]["id"] = "999"
    with pytest.raises(FetchFailed) as error:
        await fetched(compact(body))
    assert error.value.reason == "not_found"


async def test_an_unreachable_api_fails_the_fetch_so_the_platform_retries():
    async with intercom_api() as api:
        url = api.url
    cfg = config("intercom", secret=CLIENT_SECRET, api_url=url, api_token=TOKEN)
    with pytest.raises(FetchFailed) as error:
        await complete(parse(signed(closed_notification()), cfg), [], cfg)
    assert error.value.reason == "unreachable" and error.value.status == 502
