"""Pushes and API answers of the wrong JSON types: a correctly signed push whose fields have another
type than the platform sends (an object where a list was, a string where an object was, …) is a
422 problem naming the field by its path in the push, never a 500, and stores nothing; an API
answer of the wrong shape is a bad response that is retried, never a crash of the job.

The sweep starts from each platform's real fixtures and replaces every field, at every depth and
in every list item, with a value of each other JSON type: a property over all the shapes one
wrong value can make, checked exhaustively so that it cannot pass by luck or fail by chance."""

from __future__ import annotations

import copy
import hashlib
import hmac
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import httpx
import pytest

from archive.connectors import (
    ConnectorConfig,
    FetchFailed,
    PayloadInvalid,
    PayloadMalformed,
    Push,
    authenticate,
    complete,
    parse,
)
from archive.connectors.generic import sign
from archive.connectors.outcomes import Close
from archive.tables import ConnectorDraft, Conversation
from tests.connectors import compact, payload
from tests.test_connectors_http import connector, push, stats

SECRET = "shape-check-secret"
SWAPS: list[Any] = ["x", 7, 2.5, True, None, [], {}, [7], {"x": 7}]


def signed(platform: str, body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    """The body as the platform sends it, with the platform's own signature over it."""
    if platform == "livechat":
        body = {**body, "secret_key": SECRET}
    raw = compact(body)
    stamp = str(int(time.time()))
    if platform == "rocketchat":
        return raw, {"X-RocketChat-Livechat-Token": SECRET}
    if platform == "chatwoot":
        digest = hmac.new(SECRET.encode(), stamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
        return raw, {"X-Chatwoot-Signature": f"sha256={digest}", "X-Chatwoot-Timestamp": stamp}
    if platform == "intercom":
        return raw, {"X-Hub-Signature": "sha1=" + hmac.new(SECRET.encode(), raw, hashlib.sha1).hexdigest()}
    if platform == "crisp":
        trace = b"[" + stamp.encode() + b";" + raw + b"]"
        return raw, {"X-Crisp-Request-Timestamp": stamp, "X-Crisp-Signature": hmac.new(SECRET.encode(), trace, hashlib.sha256).hexdigest()}
    if platform == "livechat":
        return raw, {}
    return raw, {"X-Parley-Signature": sign(SECRET, raw, int(stamp))}


PUSHES = [
    ("rocketchat", "livechat_session_closed.json"),
    ("chatwoot", "message_created_incoming.json"),
    ("chatwoot", "message_created_attachment_only.json"),
    ("chatwoot", "conversation_status_changed_resolved.json"),
    ("intercom", "notification_conversation_admin_closed.json"),
    ("crisp", "hook_session_set_state_resolved.json"),
    ("livechat", "webhook_chat_deactivated.json"),
    ("generic", "conversation.json"),
]


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every field and list item of a JSON document, at every depth."""
    if isinstance(value, dict):
        for key, inner in value.items():
            yield prefix + (key,)
            yield from paths(inner, prefix + (key,))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield prefix + (index,)
            yield from paths(inner, prefix + (index,))


def replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    changed = copy.deepcopy(document)
    target = changed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return changed


def same_type(a: Any, b: Any) -> bool:
    return type(a) is type(b) or (isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) and not isinstance(b, bool))


def mutations(document: Any) -> Iterator[tuple[str, Any]]:
    for path in paths(document):
        original = document
        for step in path:
            original = original[step]
        for swap in SWAPS:
            if not same_type(original, swap):
                yield ".".join(map(str, path)) + f" = {swap!r}", replaced(document, path, swap)


@pytest.mark.parametrize(("platform", "fixture"), PUSHES)
async def test_a_signed_push_of_any_wrong_type_is_refused_by_field_or_read_never_crashes(platform, fixture):
    config = ConnectorConfig(platform=platform, secret=SECRET)
    crashed: list[str] = []
    refused = 0
    for where, document in mutations(payload(platform, fixture)):
        body, headers = signed(platform, document)
        pushed = Push.of(body, headers)
        try:
            authenticate(pushed, config, datetime.now(timezone.utc))
            outcome = parse(pushed, config)
            if isinstance(outcome, Close) and outcome.fetch is None:
                await complete(outcome, [], config)
        except (PayloadInvalid, PayloadMalformed) as exc:
            refused += 1
            assert exc.errors and all(e.path and e.path != "$" for e in exc.errors), (where, exc.errors)
        except Exception as exc:  # what this test is for: anything else is a 500
            crashed.append(f"{where}: {type(exc).__name__}: {exc}")
    assert not crashed, "\n".join(crashed[:30]) + f"\n({len(crashed)} crashes)"
    assert refused > 0  # the sweep did reach fields the adapter reads


@pytest.mark.parametrize(
    ("platform", "fixture", "path", "value", "named"),
    [
        ("rocketchat", "livechat_session_closed.json", ("visitor",), "guest", "visitor"),
        ("rocketchat", "livechat_session_closed.json", ("messages",), 7, "messages"),
        ("rocketchat", "livechat_session_closed.json", ("type",), [], "type"),
        ("chatwoot", "message_created_incoming.json", ("conversation",), 3, "conversation"),
        ("chatwoot", "message_created_incoming.json", ("conversation", "meta", "sender"), "x", "conversation.meta.sender"),
        ("chatwoot", "conversation_status_changed_resolved.json", ("messages",), True, "messages"),
        ("intercom", "notification_conversation_admin_closed.json", ("data",), "x", "data"),
        ("intercom", "notification_conversation_admin_closed.json", ("data", "item", "conversation_parts", "conversation_parts"), 7,
         "data.item.conversation_parts.conversation_parts"),
        ("crisp", "hook_session_set_state_resolved.json", ("data",), "x", "data"),
        ("livechat", "webhook_chat_deactivated.json", ("payload",), [], "payload"),
    ],
)
async def test_a_push_of_the_wrong_type_is_a_422_problem_naming_the_field_and_stores_nothing(
    client, tenant, platform, fixture, path, value, named
):
    created = await connector(client, tenant, platform, secret=SECRET, **({"api_token": "id:key"} if platform in ("intercom", "crisp", "livechat") else {}))
    body, headers = signed(platform, replaced(payload(platform, fixture), path, value))
    conversations, drafts = await Conversation.count(), await ConnectorDraft.count()
    response = await push(client, created, body, headers)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert named in [e["path"] for e in response.json()["errors"]], response.json()
    assert (await Conversation.count(), await ConnectorDraft.count()) == (conversations, drafts)
    assert (await stats(client, tenant, created))["rejected"] == {"invalid": 1}


# --- API answers (fetch-back) --------------------------------------------------------------------

API_ANSWERS = [
    ("intercom", "api_conversation.json", {"conversation_id": "215468932547901"}),
    ("livechat", "api_get_chat.json", {"chat_id": "PJ0MRSHTDG", "thread_id": "K600PKZON8"}),
    ("chatwoot", "api_messages.json", {"account_id": "1", "conversation_id": "184"}),
]


def answering(platform: str, document: Any) -> httpx.AsyncClient:
    """A client whose every call gets ``document`` (Chatwoot's second page: nothing more)."""
    calls = {"n": 0}

    def handler(request: httpx.Request) -> httpx.Response:
        calls["n"] += 1
        if platform == "chatwoot" and (calls["n"] > 1 or request.url.path.endswith("/agents")):
            return httpx.Response(200, json={"payload": []} if not request.url.path.endswith("/agents") else [])
        return httpx.Response(200, json=document)

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(("platform", "fixture", "ids"), API_ANSWERS)
async def test_an_api_answer_of_any_wrong_type_is_a_bad_response_never_a_crash(platform, fixture, ids):
    from archive.connectors import ADAPTERS
    from archive.connectors.outcomes import ChatwootRef, IntercomRef, LiveChatRef

    ref = {"intercom": IntercomRef, "livechat": LiveChatRef, "chatwoot": ChatwootRef}[platform](**ids)
    config = ConnectorConfig(platform=platform, secret=SECRET, api_url="https://api.example", api_token="id:key")
    fetch = ADAPTERS[platform].fetch
    assert fetch is not None
    crashed: list[str] = []
    bad = 0
    document = payload(platform, fixture)
    for where, changed in mutations(document):
        async with answering(platform, changed) as client:
            try:
                await fetch(ref, config, client)
            except FetchFailed as exc:
                bad += 1
                assert exc.reason == "bad_response", exc
            except PayloadInvalid:
                bad += 1
            except Exception as exc:
                crashed.append(f"{where}: {type(exc).__name__}: {exc}")
    assert not crashed, "\n".join(crashed[:30]) + f"\n({len(crashed)} crashes)"
    assert bad > 0
