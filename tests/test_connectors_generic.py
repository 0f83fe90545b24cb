"""The generic connector: Parley's own shape, signed ``t=<ts>,v1=<HMAC-SHA256>`` like Stripe."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta, timezone

import pytest

from archive.connectors import Finished, PayloadInvalid, SignatureRejected, authenticate, delivery_key, parse
from archive.connectors.generic import sign
from archive.models import Agent, Attachment
from tests.connectors import at, compact, config, payload, push, raw

SECRET = "whsec_generic_3b9d"
NOW = datetime(2026, 11, 12, 14, 13, 30, tzinfo=timezone.utc)
CONFIG = config("generic", secret=SECRET)


def header(body: bytes, *, secret: str = SECRET, when: datetime = NOW) -> str:
    timestamp = int(when.timestamp())
    return f"t={timestamp},v1=" + hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def body() -> bytes:
    return raw("generic", "conversation.json")


def test_a_correctly_signed_push_is_authenticated():
    authenticate(push(body(), X_Parley_Signature=header(body())), CONFIG, NOW)


def test_the_documented_signing_helper_matches_the_scheme():
    assert sign(SECRET, body(), int(NOW.timestamp())) == header(body())


def test_one_matching_signature_among_several_is_enough():
    rotated = header(body(), secret="old-secret") + "," + header(body()).split(",")[1]
    authenticate(push(body(), X_Parley_Signature=rotated), CONFIG, NOW)


def test_a_push_signed_with_another_secret_is_refused():
    with pytest.raises(SignatureRejected) as error:
        authenticate(push(body(), X_Parley_Signature=header(body(), secret="other")), CONFIG, NOW)
    assert error.value.reason == "bad_signature"


def test_a_push_signed_six_minutes_ago_is_stale():
    with pytest.raises(SignatureRejected) as error:
        authenticate(push(body(), X_Parley_Signature=header(body(), when=NOW - timedelta(minutes=6))), CONFIG, NOW)
    assert error.value.reason == "stale"


@pytest.mark.parametrize("value", ["v1=abcd", "t=1794492810", "sha256=abcd"])
def test_a_header_without_timestamp_and_signature_is_refused(value):
    with pytest.raises(SignatureRejected) as error:
        authenticate(push(body(), X_Parley_Signature=value), CONFIG, NOW)
    assert error.value.reason == "bad_signature"


def test_an_unsigned_push_is_refused():
    with pytest.raises(SignatureRejected) as error:
        authenticate(push(body()), CONFIG, NOW)
    assert error.value.reason == "missing_signature"


def test_the_conversation_is_finished_as_sent_with_epoch_times_converted():
    result = parse(push(body()), CONFIG)
    assert isinstance(result, Finished)
    conversation = result.conversation
    assert conversation.ended_at == at("2026-11-12T14:13:00Z")
    assert [m.at for m in conversation.messages[1:4]] == [
        at("2026-11-12T14:01:17Z"),
        at("2026-11-12T14:01:40Z"),
        at("2026-11-12T14:02:21.5Z"),
    ]


def test_notes_events_attachments_and_agent_emails_come_through():
    conversation = parse(push(body()), CONFIG).conversation
    assert conversation.agents[1] == Agent(id="agent-9", name="Erik Dahl", email="erik.dahl@shop.example")
    assert [(m.kind, m.event) for m in conversation.messages if m.kind != "message"] == [
        ("event", "join"),
        ("note", None),
        ("event", "transfer"),
        ("event", "close"),
    ]
    attachment_only = conversation.messages[3]
    assert attachment_only.text == "" and attachment_only.attachments[0] == Attachment(
        name="kvitto.pdf",
        content_type="application/pdf",
        size=20931,
        sha256="9f2c4e8a1b3d5f7092c4e6a8b0d2f4a6c8e0b2d4f6a8c0e2b4d6f8a0c2e4b6d8",
        url="https://files.shop.example/u/7c1e/kvitto.pdf",
    )


def test_an_unknown_field_is_refused_by_its_path():
    conversation = payload("generic", "conversation.json")
    conversation["messages"][0]["mood"] = "happy"
    with pytest.raises(PayloadInvalid) as error:
        parse(push(compact(conversation)), CONFIG)
    assert error.value.errors[0].path == "messages[0].mood"


def test_a_missing_required_field_is_named():
    conversation = payload("generic", "conversation.json")
    del conversation["visitor"]
    with pytest.raises(PayloadInvalid) as error:
        parse(push(compact(conversation)), CONFIG)
    assert error.value.errors[0].path == "visitor"


def test_an_event_outside_the_vocabulary_is_refused():
    conversation = payload("generic", "conversation.json")
    conversation["messages"][1]["event"] = "party"
    with pytest.raises(PayloadInvalid) as error:
        parse(push(compact(conversation)), CONFIG)
    assert error.value.errors[0].path == "messages[1].event"


def test_the_delivery_header_names_the_delivery_and_otherwise_the_body_does():
    assert delivery_key(push(body(), X_Parley_Delivery="evt_1"), CONFIG) == "generic:delivery:evt_1"
    assert delivery_key(push(body()), CONFIG) == delivery_key(push(body()), CONFIG) != delivery_key(push(b"{}"), CONFIG)
