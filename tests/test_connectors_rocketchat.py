"""Rocket.Chat Omnichannel: the closed chat's whole transcript in one signed-by-token push."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from archive.connectors import (
    Finished,
    Ignored,
    PayloadInvalid,
    PayloadMalformed,
    SignatureRejected,
    authenticate,
    delivery_key,
    parse,
)
from archive.models import Agent, Attachment, Visitor
from tests.connectors import at, compact, config, payload, push, raw

NOW = datetime(2026, 10, 14, 9, 24, 10, tzinfo=timezone.utc)
TOKEN = "rc-livechat-secret-token"
CONFIG = config("rocketchat", secret=TOKEN)


def closed_chat():
    result = parse(push(raw("rocketchat", "livechat_session_closed.json"), X_RocketChat_Livechat_Token=TOKEN), CONFIG)
    assert isinstance(result, Finished)
    return result.conversation


def by_id(conversation, message_id):
    return next(m for m in conversation.messages if m.id == message_id)


def test_the_livechat_token_header_authenticates_the_push():
    authenticate(push(b"{}", X_RocketChat_Livechat_Token=TOKEN), CONFIG, NOW)


def test_a_wrong_token_is_refused():
    with pytest.raises(SignatureRejected) as error:
        authenticate(push(b"{}", X_RocketChat_Livechat_Token="guess"), CONFIG, NOW)
    assert error.value.reason == "bad_signature"


def test_a_push_without_the_token_is_refused():
    with pytest.raises(SignatureRejected) as error:
        authenticate(push(b"{}"), CONFIG, NOW)
    assert error.value.reason == "missing_signature" and "X-RocketChat-Livechat-Token" in error.value.detail


def test_a_closed_session_becomes_one_finished_conversation():
    conversation = closed_chat()
    assert conversation.external_id == "hQzN5bS8xWm3JvE2k"
    assert (conversation.started_at, conversation.ended_at) == (at("2026-10-14T08:59:41.102Z"), at("2026-10-14T09:24:03.900Z"))
    assert conversation.tags == ["billing", "refund"]
    assert len(conversation.messages) == 8
    assert conversation.metadata["field.orderNumber"] == "SO-55821" and conversation.metadata["closer"] == "user"


def test_the_visitor_keeps_the_first_email_address():
    assert closed_chat().visitor == Visitor(id="kQcAtPbhHw9u4uZfA", name="Åse Nordmann", email="ase.nordmann@example.no")


def test_a_transferred_chat_lists_both_agents_and_the_serving_agents_email():
    agents = {a.id: a for a in closed_chat().agents}
    assert agents == {
        "Ytr7GQk4n2Jx3bN9c": Agent(id="Ytr7GQk4n2Jx3bN9c", name="Kari Hansen", email="kari.hansen@example.com"),
        "Bn4Ws9Kx2Lp7Qr3Tv": Agent(id="Bn4Ws9Kx2Lp7Qr3Tv", name="Ola Berg"),
    }
    assert by_id(closed_chat(), "P2mLx8vQeR4sT6yUz").sender.role == "agent"


def test_an_attachment_only_message_keeps_the_files_name_type_size_and_url():
    message = by_id(closed_chat(), "Lk8Jh6Gf4Ds2Aq0Pw")
    assert message.text == "" and message.sender.role == "visitor"
    assert message.attachments == [
        Attachment(
            name="faktura-oktober.png",
            content_type="image/png",
            size=184233,
            url="https://chat.example.com/file-upload/y8FqW2nR5tJ7kL9mC/faktura-oktober.png",
        )
    ]


def test_the_closing_message_is_a_close_event_from_the_system():
    message = by_id(closed_chat(), "Dn4Fm6Gk8Hl0Jz2Xc")
    assert (message.kind, message.event, message.sender.role, message.sender.id) == (
        "event",
        "close",
        "system",
        "Ytr7GQk4n2Jx3bN9c",
    )
    assert message.text == "Refusjon bekreftet, saken er løst."


def test_an_edited_message_says_when_it_was_edited():
    assert by_id(closed_chat(), "Zx3Cv5Bn7Mq9Wd1Fg").edited_at == at("2026-10-14T09:03:02.417Z")


def test_messages_keep_their_order_and_non_ascii_text_verbatim():
    conversation = closed_chat()
    assert [m.at for m in conversation.messages] == sorted(m.at for m in conversation.messages)
    assert "– kan dere sjekke?" in conversation.messages[0].text
    assert by_id(conversation, "Hj2Kl4Zx6Cv8Bn0Mq").text.endswith("i dag. 👍")


def test_the_send_test_button_is_ignored():
    result = parse(push(raw("rocketchat", "livechat_session_test.json")), CONFIG)
    assert result == Ignored("Rocket.Chat webhook test")


def test_pushes_before_the_close_are_ignored():
    result = parse(push(raw("rocketchat", "livechat_session_taken.json")), CONFIG)
    assert isinstance(result, Ignored) and "LivechatSessionTaken" in result.reason


def test_a_retried_delivery_repeats_its_key_and_another_session_does_not():
    body = raw("rocketchat", "livechat_session_closed.json")
    other = raw("rocketchat", "livechat_session_taken.json")
    assert delivery_key(push(body), CONFIG) == delivery_key(push(body), CONFIG) != delivery_key(push(other), CONFIG)


def test_the_delivery_key_reveals_nothing_of_the_transcript():
    key = delivery_key(push(raw("rocketchat", "livechat_session_closed.json")), CONFIG)
    assert key.startswith("rocketchat:body:") and "Åse" not in key and len(key) < 100


def test_a_message_with_an_unreadable_time_is_refused_naming_it():
    body = payload("rocketchat", "livechat_session_closed.json")
    body["messages"][2]["ts"] = "not a time"
    with pytest.raises(PayloadInvalid) as error:
        parse(push(compact(body)), CONFIG)
    assert error.value.errors[0].path == "messages[2].ts"


def test_a_body_that_is_not_json_is_malformed():
    with pytest.raises(PayloadMalformed):
        parse(push(b"type=LivechatSession"), CONFIG)


def test_fixture_is_the_shape_rocketchat_sends():
    body = json.loads(raw("rocketchat", "livechat_session_closed.json"))
    assert {"type", "messages", "servedBy", "closedAt", "closedBy", "closer", "visitor", "agent"} <= body.keys()


@pytest.mark.parametrize("messages", [[], None])
def test_a_chat_closed_before_anyone_wrote_is_ignored_with_the_reason(messages):
    body = payload("rocketchat", "livechat_session_closed.json")
    body["messages"] = messages
    result = parse(push(compact(body), X_RocketChat_Livechat_Token=TOKEN), CONFIG)
    assert isinstance(result, Ignored) and "no messages" in result.reason
