"""What every connector shares: timestamps, the extended conversation shape, merging drafts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import msgspec
import pytest

from archive.connectors import Close, ConnectorConfig, Draft, PayloadInvalid, Push, check_config
from archive.connectors.assemble import assemble
from archive.connectors.normalise import html_to_text
from archive.connectors.outcomes import IntercomRef, Outcome
from archive.connectors.timestamps import BadTimestamp, parse_time
from archive.models import Agent, Attachment, ConversationIn, Message, Sender, Visitor
from tests.connectors import config
from tests.factories import conversation

INSTANT = datetime(2026, 10, 14, 9, 2, 51, 730000, tzinfo=timezone.utc)
T = datetime(2026, 11, 1, 10, 0, tzinfo=timezone.utc)


def test_epoch_seconds_milliseconds_and_microseconds_are_the_same_instant():
    seconds = INSTANT.timestamp()
    assert parse_time(seconds) == parse_time(int(seconds * 1000)) == parse_time(int(seconds * 1_000_000)) == INSTANT
    assert parse_time(str(int(seconds * 1000))) == INSTANT


@pytest.mark.parametrize(
    "text",
    [
        "2026-10-14T09:02:51.730Z",  # JavaScript, Rails
        "2026-10-14T09:02:51.730000Z",  # LiveChat (microseconds)
        "2026-10-14T11:02:51.730+02:00",
        "2026-10-14 09:02:51.730 UTC",  # Ruby Time#to_s
        "2026-10-14T09:02:51.730",  # no zone: UTC
    ],
)
def test_platform_time_strings_parse_to_the_same_utc_instant(text):
    assert parse_time(text) == INSTANT


def test_mongodb_extended_json_dates_are_read():
    assert parse_time({"$date": int(INSTANT.timestamp() * 1000)}) == INSTANT


@pytest.mark.parametrize("value", ["yesterday", "", None, True, [1]])
def test_unreadable_timestamps_are_refused(value):
    with pytest.raises(BadTimestamp):
        parse_time(value)


def test_conversations_without_the_new_fields_encode_exactly_as_before():
    body = conversation("ext-1")
    encoded = msgspec.json.encode(msgspec.convert(body, ConversationIn), order="sorted")
    before = msgspec.json.encode(body, order="sorted")
    assert msgspec.json.decode(encoded) == msgspec.json.decode(before) | {
        "messages": [m | {"sender": m["sender"] | {"name": None}} for m in body["messages"]]
    }
    assert b'"kind"' not in encoded and b'"attachments"' not in encoded and b'"email":null' not in encoded


def test_a_message_may_be_only_an_attachment():
    message = msgspec.convert(
        {"at": "2026-11-01T10:00:00Z", "sender": {"role": "visitor"}, "attachments": [{"name": "a.pdf", "size": 10}]}, Message
    )
    assert message.text == "" and message.attachments == [Attachment(name="a.pdf", size=10)]


def test_unknown_message_fields_are_still_refused():
    with pytest.raises(msgspec.ValidationError, match="unknown field `color`"):
        msgspec.convert({"at": "2026-11-01T10:00:00Z", "sender": {"role": "agent"}, "text": "x", "color": "red"}, Message)


def _message(seconds: int, text: str, message_id: str | None = None, **extra) -> Message:
    return Message(at=T + timedelta(seconds=seconds), sender=Sender(role="agent", id="a-1"), text=text, id=message_id, **extra)


def test_an_edited_message_keeps_its_original_words_as_its_own_entry():
    first = Draft(external_id="c", messages=[_message(10, "Sendungsnummer 0034…", "m1")])
    later = Draft(
        external_id="c", messages=[_message(10, "This message was deleted", "m1", deleted=True), _message(20, "bye", "m2")]
    )
    merged = assemble([first, later]).messages
    assert [(m.id, m.text, m.deleted) for m in merged] == [
        ("m1", "Sendungsnummer 0034…", False),
        ("m1", "This message was deleted", True),
        ("m2", "bye", False),
    ]


def test_the_same_message_seen_twice_is_one_message_with_what_both_knew():
    without_size = _message(10, "", "m1", attachments=[Attachment(name="a.png")])
    with_size = _message(10, "", "m1", attachments=[Attachment(name="a.png", size=42)])
    merged = assemble([Draft(external_id="c", messages=[without_size]), Draft(external_id="c", messages=[with_size])])
    assert merged.messages == [with_size]


def test_messages_without_ids_are_the_same_when_time_sender_and_words_are():
    merged = assemble([Draft(external_id="c", messages=[_message(5, "hi"), _message(5, "hi"), _message(5, "hello")])])
    assert [m.text for m in merged.messages] == ["hi", "hello"]


def test_start_and_end_widen_to_cover_every_message():
    draft = Draft(
        external_id="c",
        started_at=T + timedelta(seconds=30),
        ended_at=T + timedelta(seconds=40),
        messages=[_message(10, "early"), _message(90, "late")],
    )
    merged = assemble([draft])
    assert (merged.started_at, merged.ended_at) == (T + timedelta(seconds=10), T + timedelta(seconds=90))


def test_agents_are_merged_by_id_and_keep_the_email_any_draft_knew():
    merged = assemble(
        [
            Draft(external_id="c", agents=[Agent(id="7", email="kari@example.com")], messages=[_message(1, "x")]),
            Draft(external_id="c", agents=[Agent(id="7", name="Kari"), Agent(id="9", name="Ola")]),
        ]
    )
    assert merged.agents == [Agent(id="7", name="Kari", email="kari@example.com"), Agent(id="9", name="Ola")]


def test_later_drafts_complete_the_visitor():
    merged = assemble(
        [
            Draft(external_id="c", visitor=Visitor(id="v", email="v@example.com"), messages=[_message(1, "x")]),
            Draft(external_id="c", visitor=Visitor(id="v", name="Vera")),
        ]
    )
    assert merged.visitor == Visitor(id="v", name="Vera", email="v@example.com")


def test_connector_site_and_channel_override_what_the_payload_says():
    draft = Draft(external_id="c", site="chatwoot", channel="web", messages=[_message(1, "x")])
    merged = assemble([draft], ConnectorConfig(platform="chatwoot", secret="s", site="eu-shop", channel="support"))
    assert (merged.site, merged.channel) == ("eu-shop", "support")


def test_a_draft_that_makes_no_valid_conversation_names_the_field():
    draft = Draft(external_id="c", messages=[Message(at=T, sender=Sender(role="agent", id="x" * 300), text="hi")])
    with pytest.raises(PayloadInvalid) as error:
        assemble([draft])
    assert error.value.errors[0].path == "messages[0].sender.id"


def test_a_conversation_with_no_messages_and_no_times_is_refused():
    with pytest.raises(PayloadInvalid) as error:
        assemble([Draft(external_id="c")])
    assert error.value.errors[0].path == "messages"


def test_push_headers_are_read_whatever_their_case():
    push = Push.of(b"{}", [("X-Chatwoot-Signature", "sha256=ab")])
    assert push.header("x-chatwoot-signature") == push.header("X-CHATWOOT-SIGNATURE") == "sha256=ab"


@pytest.mark.parametrize("platform", ["intercom", "crisp", "livechat"])
def test_platforms_that_send_ids_only_need_an_api_token(platform):
    assert [e.path for e in check_config(config(platform))] == ["api_token"]
    assert check_config(config(platform, api_token="id:key")) == []


def test_chatwoot_fetch_back_needs_url_and_token_together():
    assert [e.path for e in check_config(config("chatwoot", api_url="https://chat.example.com"))] == ["api_token"]
    assert check_config(config("chatwoot")) == []


def test_the_connector_secret_and_token_stay_out_of_its_repr():
    text = repr(config("crisp", secret="very-secret", api_token="id:token-value"))
    assert "very-secret" not in text and "token-value" not in text


def test_a_close_survives_a_round_trip_through_json():
    close = Close(thread="215", draft=Draft(external_id="intercom:215", site="app"), fetch=IntercomRef(conversation_id="215"))
    assert msgspec.json.decode(msgspec.json.encode(close), type=Outcome) == close


def test_html_bodies_become_plain_text_and_plain_text_is_left_alone():
    assert html_to_text("<p>Hei <b>Søren</b>,</p><p>takk &amp; ha det</p>") == "Hei Søren,\ntakk & ha det"
    assert html_to_text("a<b and I <3 it & more") == "a<b and I <3 it & more"
