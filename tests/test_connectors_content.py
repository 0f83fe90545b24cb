"""What an unusual message becomes: one message with no words, a sticker, an image pasted into an
HTML body, or a message longer than the ingest API takes never costs the whole conversation; what
a message carries is kept, and what carries nothing is left out with a trace in the metadata."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from archive.connectors import service
from archive.connectors.assemble import SKIPPED_COUNT, SKIPPED_IDS, assemble
from archive.connectors.intercom import conversation_draft
from archive.connectors.livechat import chat_draft
from archive.connectors.normalise import html_content, html_to_text
from archive.connectors.outcomes import Draft
from archive.models import Message, Sender
from tests.connectors import compact, config, payload, servers
from tests.test_connectors_http import (
    CHATWOOT_SECRET,
    INTERCOM_SECRET,
    INTERCOM_TOKEN,
    LIVECHAT_SECRET,
    LIVECHAT_TOKEN,
    ROCKETCHAT_TOKEN,
    chatwoot_headers,
    connector,
    intercom_headers,
    livechat_body,
    push,
    read,
    stats,
)

T = 1793092400  # Intercom's epoch seconds, after the fixture conversation's start
STICKER = "https://cdn.livechat-static.com/stickers/thumbs-up.png"
SCREENSHOT = "https://downloads.intercomcdn.com/i/o/991/screenshot.png"


def intercom_part(part_id: str, at: int, body: Any, *, redacted: bool = False, author_type: str = "user") -> dict[str, Any]:
    author = {"type": author_type, "id": "66f1d2e3a4b5c6d7e8f90a1b" if author_type == "user" else "7423911", "name": "N"}
    return {"type": "conversation_part", "id": part_id, "part_type": "comment", "body": body, "created_at": at,
            "updated_at": at, "author": author, "attachments": [], "redacted": redacted}


def intercom_with(*parts: dict[str, Any]):
    def change(conversation: dict[str, Any]) -> dict[str, Any]:
        listed = conversation["conversation_parts"]["conversation_parts"]
        close = [p for p in listed if p["part_type"] == "close"]
        kept = [p for p in listed if p["part_type"] != "close"]
        conversation["conversation_parts"]["conversation_parts"] = kept + list(parts) + close
        conversation["conversation_parts"]["total_count"] = len(kept) + len(parts) + len(close)
        return conversation
    return change


def intercom_fixture_with(*parts: dict[str, Any]) -> dict[str, Any]:
    return intercom_with(*parts)(payload("intercom", "api_conversation.json"))


# --- Intercom ------------------------------------------------------------------------------------


def test_an_intercom_part_an_admin_redacted_is_kept_as_a_deleted_message_without_words():
    conversation = assemble([conversation_draft(intercom_fixture_with(intercom_part("p-red", T, "", redacted=True)))])
    [redacted] = [m for m in conversation.messages if m.id == "p-red"]
    assert (redacted.text, redacted.deleted, redacted.sender.role) == ("", True, "visitor")


def test_an_image_pasted_into_an_intercom_body_is_kept_as_an_attachment():
    body = f'<div class="intercom-container"><img src="{SCREENSHOT}"></div>'
    conversation = assemble([conversation_draft(intercom_fixture_with(intercom_part("p-img", T, body)))])
    [pasted] = [m for m in conversation.messages if m.id == "p-img"]
    assert pasted.text == "" and [(a.url, a.name, a.content_type) for a in pasted.attachments] == [
        (SCREENSHOT, "screenshot.png", "image/png")
    ]


def test_an_intercom_part_with_nothing_in_it_is_left_out_and_counted_in_the_metadata():
    conversation = assemble([conversation_draft(intercom_fixture_with(
        intercom_part("p-null", T, None, author_type="admin"), intercom_part("p-blank", T + 1, "<p> </p>"),
    ))])
    assert not [m for m in conversation.messages if m.id in ("p-null", "p-blank")]
    assert (conversation.metadata[SKIPPED_COUNT], conversation.metadata[SKIPPED_IDS]) == (2, "p-null, p-blank")


def test_a_conversation_without_empty_messages_has_no_skipped_count():
    conversation = assemble([conversation_draft(payload("intercom", "api_conversation.json"))])
    assert SKIPPED_COUNT not in conversation.metadata and SKIPPED_IDS not in conversation.metadata


async def test_an_intercom_close_with_redacted_empty_and_image_parts_is_archived_whole(client, tenant, runtime):
    parts = (
        intercom_part("p-red", T, "", redacted=True),
        intercom_part("p-null", T + 10, None, author_type="admin"),
        intercom_part("p-img", T + 20, f'<img src="{SCREENSHOT}">'),
    )
    async with servers.intercom(INTERCOM_TOKEN, intercom_with(*parts)) as api:
        created = await connector(client, tenant, "intercom", secret=INTERCOM_SECRET, api_url=api.url, api_token=INTERCOM_TOKEN)
        body = compact(payload("intercom", "notification_conversation_admin_closed.json"))
        response = await push(client, created, body, intercom_headers(body))
        assert response.status_code == 202, response.text
        assert await service.run_jobs(runtime) == 1
    assert (await stats(client, tenant, created))["failed"] == 0
    conversation = await read(client, tenant, response.json()["conversation"])
    by_id = {m.get("id"): m for m in conversation["messages"]}
    assert by_id["p-red"].get("deleted") is True and [a["url"] for a in by_id["p-img"]["attachments"]] == [SCREENSHOT]
    assert "p-null" not in by_id and conversation["metadata"][SKIPPED_COUNT] == 1


# --- LiveChat ------------------------------------------------------------------------------------


def livechat_rich(answer: dict[str, Any]) -> dict[str, Any]:
    customer = next(u["id"] for u in answer["users"] if u["type"] == "customer")
    agent = next(u["id"] for u in answer["users"] if u["type"] == "agent")
    at = answer["thread"]["events"][-1]["created_at"]
    answer["thread"]["events"][-1:-1] = [
        {"id": "R1", "type": "rich_message", "template_id": "sticker", "author_id": customer, "created_at": at,
         "visibility": "all", "elements": [{"image": {"url": STICKER, "name": "thumbs-up.png", "content_type": "image/png"}}]},
        {"id": "R2", "type": "rich_message", "template_id": "quick_replies", "author_id": agent, "created_at": at,
         "visibility": "all", "elements": [{"buttons": [{"text": "Ja", "type": "message"}, {"text": "Nei", "type": "message"}]}]},
        {"id": "R3", "type": "rich_message", "template_id": "cards", "author_id": agent, "created_at": at, "visibility": "all",
         "elements": [{"title": "Retur", "subtitle": "14 dager", "buttons": [{"text": "Se vilkår", "type": "url", "value": "https://x"}]}]},
    ]
    return answer


def test_a_livechat_sticker_is_an_image_attachment_and_quick_replies_are_their_labels():
    conversation = assemble([chat_draft(livechat_rich(payload("livechat", "api_get_chat.json")))])
    by_id = {m.id: m for m in conversation.messages}
    assert [(a.url, a.name, a.content_type) for a in by_id["R1"].attachments] == [(STICKER, "thumbs-up.png", "image/png")]
    assert by_id["R2"].text == "Ja | Nei"
    assert by_id["R3"].text == "Retur\n14 dager\nSe vilkår"


async def test_a_livechat_chat_with_a_sticker_and_quick_replies_is_archived(client, tenant, runtime):
    async with servers.livechat(LIVECHAT_TOKEN, livechat_rich) as api:
        created = await connector(client, tenant, "livechat", secret=LIVECHAT_SECRET, api_url=api.url, api_token=LIVECHAT_TOKEN)
        response = await push(client, created, livechat_body(), {})
        assert response.status_code == 200 and response.json()["status"] == "queued", response.text  # LiveChat counts only 200
        assert await service.run_jobs(runtime) == 1
    assert (await stats(client, tenant, created))["failed"] == 0
    conversation = await read(client, tenant, response.json()["conversation"])
    assert {"R1", "R2", "R3"} <= {m.get("id") for m in conversation["messages"]}


# --- HTML ----------------------------------------------------------------------------------------


def test_html_links_keep_their_target_after_the_words():
    assert html_to_text('<p>Se <a href="https://shop.example/ordre/55">ordren</a> her</p>') == "Se ordren (https://shop.example/ordre/55) her"
    assert html_to_text('<p><a href="https://shop.example/">https://shop.example/</a></p>') == "https://shop.example/"
    assert html_to_text('<p><a href="mailto:a@b.example">a@b.example</a></p>') == "a@b.example"
    assert html_to_text('<p><a href="javascript:alert(1)">klikk</a></p>') == "klikk"


def test_html_images_are_listed_but_not_data_uris():
    text, images = html_content('<p>Se bildet</p><img src="https://a.example/1.png"><img src="data:image/png;base64,AAAA">')
    assert (text, images) == ("Se bildet", ["https://a.example/1.png"])


# --- Long messages -------------------------------------------------------------------------------

LONG = "> Tidligere e-post: Lorem ipsum dolor sit amet, consectetur adipiscing elit.\n" * 3000  # 240,000 characters


async def test_a_chatwoot_email_longer_than_the_ingest_limit_is_archived_whole(client, tenant, runtime):
    assert len(LONG) > runtime.settings.max_message_chars
    created = await connector(client, tenant, "chatwoot", secret=CHATWOOT_SECRET)
    message = payload("chatwoot", "message_created_incoming.json")
    message["content"] = LONG
    body = compact(message)
    assert (await push(client, created, body, chatwoot_headers(body, "long-1"))).status_code == 202
    resolve = compact(payload("chatwoot", "conversation_status_changed_resolved.json"))
    response = await push(client, created, resolve, chatwoot_headers(resolve, "long-2"))
    assert response.status_code == 201, response.text
    conversation = await read(client, tenant, response.json()["conversation"])
    assert [m["text"] for m in conversation["messages"] if len(m["text"]) > 1000] == [LONG]


async def test_a_rocketchat_message_longer_than_the_ingest_limit_is_archived_whole(client, tenant, runtime):
    created = await connector(client, tenant, "rocketchat", secret=ROCKETCHAT_TOKEN)
    body = payload("rocketchat", "livechat_session_closed.json")
    body["messages"][1]["msg"] = LONG
    response = await push(client, created, compact(body), {"X-RocketChat-Livechat-Token": ROCKETCHAT_TOKEN})
    assert response.status_code == 200 and response.json()["status"] == "archived", response.text
    conversation = await read(client, tenant, response.json()["conversation"])
    assert conversation["messages"][1]["text"] == LONG


async def test_the_ingest_api_still_refuses_a_message_over_its_limit_naming_it(client, tenant, runtime):
    limit = runtime.settings.max_message_chars
    conversation = {
        "external_id": "too-long-for-the-api", "site": "shop", "channel": "web",
        "started_at": "2026-10-20T13:00:00Z", "ended_at": "2026-10-20T13:05:00Z", "visitor": {"id": "v1"},
        "messages": [{"at": "2026-10-20T13:01:00Z", "sender": {"role": "visitor"}, "text": "x" * (limit + 1)}],
    }
    response = await client.post("/v1/transcripts", json=conversation, headers=tenant.headers("ingest"))
    assert response.status_code == 422 and {"path": "messages[0].text", "message": f"at most {limit} characters"} in response.json()["errors"]


def test_the_default_message_limit_is_above_every_supported_platforms_own():
    from config.settings import Settings

    assert Settings().max_message_chars >= 150_000  # Chatwoot's Message content limit (app/models/message.rb)


# --- assemble ------------------------------------------------------------------------------------


def test_a_message_that_only_says_it_was_deleted_is_kept():
    at = datetime(2026, 10, 20, 13, 0, tzinfo=timezone.utc)
    draft = Draft(external_id="x", messages=[Message(at=at, sender=Sender(role="visitor", id="v"), text="", deleted=True)])
    assert [m.deleted for m in assemble([draft], config("generic")).messages] == [True]


async def test_an_empty_rocketchat_session_is_answered_200_ignored_and_counted_as_ignored(client, tenant):
    created = await connector(client, tenant, "rocketchat", secret=ROCKETCHAT_TOKEN)
    body = payload("rocketchat", "livechat_session_closed.json")
    body["messages"] = []
    response = await push(client, created, compact(body), {"X-RocketChat-Livechat-Token": ROCKETCHAT_TOKEN})
    assert (response.status_code, response.json()["status"]) == (200, "ignored") and "no messages" in response.json()["reason"]
    counted = await stats(client, tenant, created)
    assert (counted["ignored"], counted["rejected"]) == (1, {})


# --- Rocket.Chat LivechatEdit --------------------------------------------------------------------


def livechat_edit(change: Any = None) -> bytes:
    """saveInfo on a closed room: the whole room again as LivechatEdit, without what
    getAdditionalFieldsByType adds only to a LivechatSession (sendToCRM.ts)."""
    body = payload("rocketchat", "livechat_session_closed.json")
    body["type"] = "LivechatEdit"
    for key in ("departmentId", "servedBy", "closedAt", "closedBy", "closer"):
        body.pop(key)
    if change:
        change(body)
    return compact(body)


async def test_a_livechat_edit_that_changed_nothing_is_the_same_conversation_again(client, tenant):
    created = await connector(client, tenant, "rocketchat", secret=ROCKETCHAT_TOKEN)
    headers = {"X-RocketChat-Livechat-Token": ROCKETCHAT_TOKEN}
    first = (await push(client, created, compact(payload("rocketchat", "livechat_session_closed.json")), headers)).json()
    again = (await push(client, created, livechat_edit(), headers)).json()
    assert (again["status"], again["result"], again["conversation"], again["revision"]) == ("archived", "existing", first["conversation"], 1)


async def test_a_livechat_edit_of_the_tags_is_a_revision_that_keeps_when_and_by_whom_the_chat_closed(client, tenant):
    created = await connector(client, tenant, "rocketchat", secret=ROCKETCHAT_TOKEN)
    headers = {"X-RocketChat-Livechat-Token": ROCKETCHAT_TOKEN}
    first = (await push(client, created, compact(payload("rocketchat", "livechat_session_closed.json")), headers)).json()
    edited = (await push(client, created, livechat_edit(lambda b: b.update(tags=["billing", "refund-done"])), headers)).json()
    assert (edited["result"], edited["revision"], edited["conversation"]) == ("revised", 2, first["conversation"])
    latest = await read(client, tenant, first["conversation"])
    assert latest["tags"] == ["billing", "refund-done"]
    assert latest["ended_at"].startswith("2026-10-14T09:24:03.9")
    assert {k: latest["metadata"].get(k) for k in ("closer", "closed_by", "department_id")} == {
        "closer": "user", "closed_by": "kari.hansen", "department_id": "vZ3X5cHFsMLBm8jqa",
    }
    assert "rocketchat_type" not in latest["metadata"]


async def test_a_livechat_edit_of_a_chat_never_archived_is_archived_with_what_it_says(client, tenant):
    created = await connector(client, tenant, "rocketchat", secret=ROCKETCHAT_TOKEN)
    edit = livechat_edit(lambda b: b.update(_id="room-archived-first-by-an-edit"))
    response = await push(client, created, edit, {"X-RocketChat-Livechat-Token": ROCKETCHAT_TOKEN})
    assert (response.status_code, response.json()["result"]) == (200, "created"), response.text
    conversation = await read(client, tenant, response.json()["conversation"])
    assert "closer" not in conversation["metadata"] and conversation["ended_at"].startswith("2026-10-14T09:24:03.8")
