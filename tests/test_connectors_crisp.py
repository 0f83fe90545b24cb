"""Crisp: a signed ``[timestamp;body]`` hook says a session resolved; the REST API has the rest."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import datetime, timedelta, timezone

import pytest
from aiohttp import web

from archive.connectors import Close, FetchFailed, Ignored, Push, SignatureRejected, authenticate, complete, delivery_key, parse
from archive.connectors.outcomes import CrispRef
from archive.models import Agent, Attachment, Visitor
from tests.connectors import PlatformApi, answer, compact, config, payload, push, raw

SIGNING_SECRET = "914a657d8cc2efbc20593f1806f9bde2"
NOW = datetime(2026, 11, 2, 15, 50, 45, tzinfo=timezone.utc)
IDENTIFIER, KEY = "43f34724-9eeb-4474-9cec-560250754dec", "d12e60c5d2aa264b90997a641b6474ffd6602b66d8e8abc49634c404f06fa7d0"
WEBSITE = "8c842203-7ed8-4e29-a608-7cf78a7d2fcc"
SESSION = "session_700c65e1-85e2-465a-b9ac-ecb5ec2c9881"
PAGE_SIZE = 4


def signed(body: bytes, *, secret: str = SIGNING_SECRET, when: datetime = NOW, milliseconds: bool = False):
    timestamp = str(int(when.timestamp() * (1000 if milliseconds else 1)))
    trace = b"[" + timestamp.encode() + b";" + body + b"]"
    return push(
        body, X_Crisp_Request_Timestamp=timestamp, X_Crisp_Signature=hmac.new(secret.encode(), trace, hashlib.sha256).hexdigest()
    )


def resolved_hook() -> bytes:
    return raw("crisp", "hook_session_set_state_resolved.json")


CONFIG = config("crisp", secret=SIGNING_SECRET)


@pytest.mark.parametrize("milliseconds", [False, True])
def test_a_hook_signed_over_timestamp_and_body_is_authenticated(milliseconds):
    authenticate(signed(resolved_hook(), milliseconds=milliseconds), CONFIG, NOW)


def test_a_hook_signed_with_another_secret_is_refused():
    with pytest.raises(SignatureRejected) as error:
        authenticate(signed(resolved_hook(), secret="other"), CONFIG, NOW)
    assert error.value.reason == "bad_signature"


def test_a_replayed_hook_older_than_five_minutes_is_stale():
    with pytest.raises(SignatureRejected) as error:
        authenticate(signed(resolved_hook(), when=NOW - timedelta(minutes=6)), CONFIG, NOW)
    assert error.value.reason == "stale"


def test_a_hook_without_its_timestamp_is_refused():
    good = signed(resolved_hook())
    with pytest.raises(SignatureRejected) as error:
        authenticate(push(resolved_hook(), X_Crisp_Signature=good.header("x-crisp-signature")), CONFIG, NOW)
    assert error.value.reason == "missing_signature"


def test_a_timestamp_that_is_not_a_number_is_refused():
    with pytest.raises(SignatureRejected) as error:
        authenticate(push(resolved_hook(), X_Crisp_Request_Timestamp="soon", X_Crisp_Signature="00"), CONFIG, NOW)
    assert error.value.reason == "bad_timestamp"


def test_a_resolved_session_is_fetched_back():
    result = parse(signed(resolved_hook()), CONFIG)
    assert isinstance(result, Close) and result.fetch == CrispRef(website_id=WEBSITE, session_id=SESSION)
    assert result.draft.ended_at == datetime(2026, 11, 2, 15, 50, 43, 783000, tzinfo=timezone.utc)  # epoch milliseconds


@pytest.mark.parametrize("name", ["hook_session_set_state_unresolved.json", "hook_message_send.json"])
def test_other_hooks_are_ignored(name):
    assert isinstance(parse(signed(raw("crisp", name)), CONFIG), Ignored)


def test_a_retried_hook_repeats_its_dedup_key():
    first = delivery_key(signed(resolved_hook()), CONFIG)
    assert first == delivery_key(signed(resolved_hook(), when=NOW + timedelta(seconds=20)), CONFIG)
    assert first != delivery_key(signed(raw("crisp", "hook_message_send.json")), CONFIG)


def crisp_api() -> PlatformApi:
    api = PlatformApi()
    listing = payload("crisp", "api_messages.json")["data"]
    expected = "Basic " + base64.b64encode(f"{IDENTIFIER}:{KEY}".encode()).decode()

    def authorised(request: web.Request) -> bool:
        return request.headers.get("Authorization") == expected and request.headers.get("X-Crisp-Tier") == "plugin"

    async def conversation(request: web.Request) -> web.Response:
        if not authorised(request):
            return answer({"error": True, "reason": "invalid_session", "data": {}}, 401)
        if request.match_info["session"] != SESSION:
            return answer({"error": True, "reason": "session_not_found", "data": {}}, 404)
        return answer(payload("crisp", "api_conversation.json"))

    async def messages(request: web.Request) -> web.Response:
        rows = listing
        if "timestamp_before" in request.query:
            rows = [m for m in rows if m["timestamp"] < int(request.query["timestamp_before"])]
        return answer({"error": False, "reason": "resolved", "data": rows[-PAGE_SIZE:]})

    async def operators(request: web.Request) -> web.Response:
        return answer(payload("crisp", "api_operators.json"))

    api.route("GET", "/website/{website}/conversation/{session}", conversation)
    api.route("GET", "/website/{website}/conversation/{session}/messages", messages)
    api.route("GET", "/website/{website}/operators/list", operators)
    return api


async def fetched(token: str = f"{IDENTIFIER}:{KEY}"):
    async with crisp_api() as api:
        cfg = config("crisp", secret=SIGNING_SECRET, api_url=api.url, api_token=token)
        conversation = await complete(parse(signed(resolved_hook()), cfg), [], cfg)
    return conversation, api.requests


async def test_messages_are_fetched_page_by_page_until_none_are_left():
    conversation, requests = await fetched()
    pages = [r["query"] for r in requests if r["path"].endswith("/messages")]
    assert pages == [
        {},
        {"timestamp_before": "1793634500384"},
        {"timestamp_before": "1793634063601"},
        {"timestamp_before": "1793634012381"},
    ]
    assert len(conversation.messages) == 9
    assert [m.at for m in conversation.messages] == sorted(m.at for m in conversation.messages)


async def test_the_visitor_comes_from_the_conversation_meta():
    conversation, _ = await fetched()
    assert conversation.visitor == Visitor(
        id="e3f1c9b0-4a7d-4c2e-8b5f-9d6a1e0c7b32", name="François Lefèvre", email="francois.lefevre@example.fr"
    )
    assert conversation.messages[0].sender.role == "visitor"
    assert (conversation.tags, conversation.metadata["data.commande"]) == (["livraison", "vip"], "40917")


async def test_operators_are_agents_with_the_emails_from_the_operator_list():
    conversation, _ = await fetched()
    assert sorted(conversation.agents, key=lambda a: a.name or "") == [
        Agent(id="3f6e2c1a-98d4-4b1f-a2c7-5e0d9b8f7a61", name="Hugo Martin", email="hugo.martin@boutique.example"),
        Agent(id="aa0b64dd-0cb0-4c8f-b6a9-e6b5f9ad0e5f", name="Léa Dubois", email="lea.dubois@boutique.example"),
    ]


async def test_notes_events_pickers_and_files_keep_their_meaning():
    conversation, _ = await fetched()
    by_id = {m.id: m for m in conversation.messages}
    assert by_id["163921901447"].kind == "note"
    assert (by_id["163921902512"].kind, by_id["163921902512"].event) == ("event", "join")
    assert (by_id["163922052006"].event, by_id["163922052006"].sender.role) == ("close", "system")
    assert by_id["163922031355"].text == "Votre problème est-il résolu ?\nOui" and by_id["163922031355"].sender.role == "bot"
    assert by_id["163922004118"].text == "" and by_id["163922004118"].attachments == [
        Attachment(
            name="bon-de-livraison.pdf",
            content_type="application/pdf",
            url="https://storage.crisp.chat/users/upload/session/7d0b3a1e9c4f2a60/bon-de-livraison_1x0m2ka.pdf",
        )
    ]


async def test_the_website_is_the_site_and_the_chat_origin_the_web_channel():
    conversation, _ = await fetched()
    assert (conversation.external_id, conversation.site, conversation.channel) == (f"crisp:{SESSION}", WEBSITE, "web")


async def test_a_token_crisp_refuses_fails_the_fetch():
    with pytest.raises(FetchFailed) as error:
        await fetched(token=f"{IDENTIFIER}:wrong")
    assert error.value.reason == "unauthorized"


@pytest.mark.parametrize(("where", "key", "named"), [("data", "session_id", "data.session_id"), ("both", "website_id", "website_id")])
def test_a_resolve_without_its_ids_names_the_missing_one(where, key, named):
    from archive.connectors import PayloadInvalid

    body = payload("crisp", "hook_session_set_state_resolved.json")
    body["data"].pop(key, None)
    if where == "both":
        body.pop(key, None)
    with pytest.raises(PayloadInvalid) as error:
        parse(signed(compact(body)), CONFIG)
    assert [e.path for e in error.value.errors] == [named]


def test_an_unsigned_website_hook_is_authenticated_by_the_key_in_the_webhook_url():
    """Website Hooks are not signed (docs.crisp.chat guides/web-hooks/website-hooks): the key
    appended to the URL Crisp posts to is compared with the connector's secret."""
    body = resolved_hook()
    authenticate(Push.of(body, {"Content-Type": "application/json"}, {"key": SIGNING_SECRET}), CONFIG, NOW)
    for query, reason in (({"key": "someone-elses-key"}, "bad_signature"), ({}, "missing_signature")):
        with pytest.raises(SignatureRejected) as refused:
            authenticate(Push.of(body, {"Content-Type": "application/json"}, query), CONFIG, NOW)
        assert refused.value.reason == reason
