"""What the visitor answers inside a platform's own widgets is archived, and a push whose
ids, types or flags have the wrong JSON type is refused whole, naming the field (found with
payloads built from the platforms' sources: chatwoot/chatwoot widget ``messages_controller#update``
and ``survey_responses_controller``; LiveChat chat_deactivated; Rocket.Chat LivechatSession)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.connectors import compact, payload
from tests.test_connectors_http import (
    CHATWOOT_SECRET,
    LIVECHAT_SECRET,
    LIVECHAT_TOKEN,
    ROCKETCHAT_TOKEN,
    chatwoot_headers,
    connector,
    push,
    read,
    stats,
)


def _cw(name: str, change: Any = None) -> bytes:
    body = payload("chatwoot", name)
    if change:
        change(body)
    return compact(body)


async def _cw_push(client: Any, created: dict[str, Any], body: bytes, delivery: str) -> Any:
    response = await push(client, created, body, chatwoot_headers(body, delivery))
    assert response.status_code < 300, response.text
    return response


def _all_text(conversation: dict[str, Any]) -> str:
    return "\n".join(m.get("text", "") for m in conversation["messages"])


async def test_chatwoot_csat_rating_and_feedback_submitted_by_the_visitor_are_archived(client, tenant):
    """Chatwoot's widget answers a CSAT survey by PATCHing the ``input_csat`` message with
    ``submitted_values.csat_survey_response`` {rating, feedback_message}; Chatwoot then sends
    ``message_updated`` with those values in ``content_attributes`` (the same field is in the
    messages API answer). Expected: the archived conversation keeps the visitor's rating and
    feedback words (as text of that message, or a ``rating`` event), as Parley already does for
    Intercom ratings, Crisp pickers and LiveChat forms."""
    created = await connector(client, tenant, "chatwoot", secret=CHATWOOT_SECRET)
    await _cw_push(client, created, _cw("message_created_incoming.json"), "d-1")

    def csat(body: dict[str, Any]) -> None:
        body.update(
            id=9203, event="message_updated", content_type="input_csat",
            content="Bitte bewerten Sie das Gespräch",
            content_attributes={"submitted_values": {"csat_survey_response": {"rating": 1, "feedback_message": "Schrecklich, nie wieder"}}},
        )

    await _cw_push(client, created, _cw("message_created_outgoing.json", csat), "d-2")
    resolved = await _cw_push(client, created, _cw("conversation_status_changed_resolved.json"), "r-1")
    conversation = await read(client, tenant, resolved.json()["conversation"])
    assert "Schrecklich, nie wieder" in _all_text(conversation)


async def test_chatwoot_form_and_email_answers_submitted_by_the_visitor_are_archived(client, tenant):
    """Chatwoot bot/widget messages of content_type ``form``/``input_select`` store the visitor's
    answers in ``content_attributes.submitted_values`` [{name, title, value}], and ``input_email``
    in ``content_attributes.submitted_email`` (widget messages_controller#update). Expected: the
    answers are archived with the message (the visitor typed them; they are evidence). Today they
    would otherwise be dropped and only the question survive."""
    created = await connector(client, tenant, "chatwoot", secret=CHATWOOT_SECRET)

    def form(body: dict[str, Any]) -> None:
        body.update(
            id=9204, event="message_updated", content_type="form", content="Bitte Bestellnummer angeben",
            content_attributes={
                "items": [{"name": "order", "label": "Bestellnummer", "type": "text"}],
                "submitted_values": [{"name": "order", "title": "Bestellnummer", "value": "A-7781-Rückgabe"}],
            },
        )

    def email(body: dict[str, Any]) -> None:
        body.update(
            id=9205, event="message_updated", content_type="input_email", content="Wie lautet Ihre E-Mail?",
            content_attributes={"submitted_email": "juergen.mueller@example.de"},
        )

    await _cw_push(client, created, _cw("message_created_outgoing.json", form), "d-1")
    await _cw_push(client, created, _cw("message_created_outgoing.json", email), "d-2")
    resolved = await _cw_push(client, created, _cw("conversation_status_changed_resolved.json"), "r-1")
    text = _all_text(await read(client, tenant, resolved.json()["conversation"]))
    assert "Bestellnummer: A-7781-Rückgabe" in text
    assert "[email]" in text and "juergen.mueller@example.de" not in text  # the answer is redacted like any text


async def test_without_api_access_a_survey_answered_after_the_resolve_waits_for_the_next_resolve(client, tenant):
    """Chatwoot sends the CSAT survey when the conversation is resolved, so the answer comes
    after the archive. Without API access it is kept pending (a revision built from the pending
    messages alone would lack what the first resolve carried) and the next resolve archives it;
    with API access it closes the conversation again (test_connectors_chatwoot)."""
    created = await connector(client, tenant, "chatwoot", secret=CHATWOOT_SECRET)
    await _cw_push(client, created, _cw("message_created_incoming.json"), "d-1")
    first = await _cw_push(client, created, _cw("conversation_status_changed_resolved.json"), "r-1")

    def answered(body: dict[str, Any]) -> None:
        body.update(
            id=9206, event="message_updated", content_type="input_csat", content="Bitte bewerten Sie das Gespräch",
            content_attributes={"submitted_values": {"csat_survey_response": {"rating": 5, "feedback_message": "Sehr hilfreich"}}},
        )
        body["conversation"]["status"] = "resolved"

    waiting = await _cw_push(client, created, _cw("message_created_outgoing.json", answered), "d-2")
    assert waiting.json()["status"] == "pending", waiting.json()
    again = await _cw_push(client, created, _cw("conversation_status_changed_resolved.json"), "r-2")
    assert again.json()["conversation"] == first.json()["conversation"]
    after = await read(client, tenant, again.json()["conversation"])
    assert "Rating: 5\nSehr hilfreich" in _all_text(after)


def _rc(change: Any) -> bytes:
    body = payload("rocketchat", "livechat_session_closed.json")
    change(body)
    return compact(body)


def _lc(change: Any) -> bytes:
    body = payload("livechat", "webhook_chat_deactivated.json")
    body["secret_key"] = LIVECHAT_SECRET
    change(body)
    return compact(body)


def _cw_wrong(change: Any) -> bytes:
    return _cw("message_created_incoming.json", change)


CASES = [
    # platform, settings, body, headers-maker, offending path
    ("livechat", {"secret": LIVECHAT_SECRET, "api_token": LIVECHAT_TOKEN},
     _lc(lambda b: b["payload"].update(chat_id=["SBH2K9T0QX"])), lambda body: {}, "payload.chat_id"),
    ("chatwoot", {"secret": CHATWOOT_SECRET},
     _cw_wrong(lambda b: b.update(message_type=["incoming"])), lambda body: chatwoot_headers(body, "w-1"), "message_type"),
    ("chatwoot", {"secret": CHATWOOT_SECRET},
     _cw_wrong(lambda b: b.update(private="yes")), lambda body: chatwoot_headers(body, "w-2"), "private"),
    ("rocketchat", {"secret": ROCKETCHAT_TOKEN},
     _rc(lambda b: b.update(_id={"$oid": "hQzN5bS8xWm3JvE2k"})), lambda body: {"X-RocketChat-Livechat-Token": ROCKETCHAT_TOKEN}, "_id"),
]


@pytest.mark.parametrize("platform, options, body, headers, path", CASES, ids=[c[4] + "@" + c[0] for c in CASES])
async def test_a_signed_push_with_a_wrong_json_type_in_a_scalar_field_is_a_422_naming_it(client, tenant, platform, options, body, headers, path):
    """docs/connectors.md *Wrong JSON types*: "A signed push with another type anywhere … is a
    422 problem listing every offending field by its path … with nothing stored". Ids, types
    and flags read as scalars are not type-checked: a list chat_id is queued (and the fetch then
    fails for a day), a list message_type archives the visitor's words as a bot's, ``"private":
    "yes"`` archives a visitor message as an internal note, an object room id becomes the
    external_id "{'$oid': …}". Expected: 422 naming the field, nothing stored."""
    created = await connector(client, tenant, platform, **options)
    response = await push(client, created, body, headers(body))
    assert response.status_code == 422, response.text
    assert path in [e["path"] for e in response.json()["errors"]]
    assert (await stats(client, tenant, created))["accepted"] == 0
