"""Each fetch-back platform's API on 127.0.0.1, answering with a fixture (optionally changed by
the test), in the shape the phase-1 adapter tests pinned (tests/test_connectors_<platform>.py)."""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from aiohttp import web

from tests.connectors import PlatformApi, answer, payload

Change = Callable[[Any], Any]


def _same(value: Any) -> Any:
    return value


def intercom(token: str, change: Change = _same) -> PlatformApi:
    api = PlatformApi()

    async def conversation(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {token}":
            return answer({"type": "error.list", "errors": [{"code": "unauthorized", "message": "Access Token Invalid"}]}, 401)
        return answer(change(payload("intercom", "api_conversation.json")))

    api.route("GET", "/conversations/{id}", conversation)
    return api


def crisp(identifier: str, key: str, change: Change = _same) -> PlatformApi:
    api = PlatformApi()
    expected = "Basic " + base64.b64encode(f"{identifier}:{key}".encode()).decode()

    def refused(request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != expected:
            return answer({"error": True, "reason": "invalid_session", "data": {}}, 401)
        return None

    async def conversation(request: web.Request) -> web.Response:
        return refused(request) or answer(payload("crisp", "api_conversation.json"))

    async def messages(request: web.Request) -> web.Response:
        if (no := refused(request)) is not None:
            return no
        listing = change(payload("crisp", "api_messages.json"))
        before = request.query.get("timestamp_before")
        rows = [m for m in listing["data"] if before is None or m["timestamp"] < int(before)]
        return answer({"error": False, "reason": "resolved", "data": rows[-40:]})

    async def operators(request: web.Request) -> web.Response:
        return refused(request) or answer(payload("crisp", "api_operators.json"))

    api.route("GET", "/website/{website}/conversation/{session}", conversation)
    api.route("GET", "/website/{website}/conversation/{session}/messages", messages)
    api.route("GET", "/website/{website}/operators/list", operators)
    return api


def livechat(account_token: str, change: Change = _same) -> PlatformApi:
    api = PlatformApi()
    expected = "Basic " + base64.b64encode(account_token.encode()).decode()

    async def get_chat(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != expected:
            return answer({"error": {"type": "authentication", "message": "Invalid access token"}}, 401)
        return answer(change(payload("livechat", "api_get_chat.json")))

    api.route("POST", "/agent/action/get_chat", get_chat)
    return api


def chatwoot(token: str, change: Change = _same) -> PlatformApi:
    """The messages endpoint as Chatwoot's MessageFinder pages it: 20 at a time, ``before=<id>``."""
    api = PlatformApi()

    async def messages(request: web.Request) -> web.Response:
        if request.headers.get("api_access_token") != token:
            return answer({"error": "Invalid Access Token"}, 401)
        listing = change(payload("chatwoot", "api_messages.json"))
        rows = listing["payload"]
        if "before" in request.query:
            rows = [m for m in rows if m["id"] < int(request.query["before"])]
        return answer({"meta": listing["meta"], "payload": sorted(rows, key=lambda m: m["created_at"])[-20:]})

    async def agents(request: web.Request) -> web.Response:
        return answer(payload("chatwoot", "api_agents.json"))

    api.route("GET", "/api/v1/accounts/7/conversations/184/messages", messages)
    api.route("GET", "/api/v1/accounts/7/agents", agents)
    return api


def files(contents: dict[str, bytes], redirects: dict[str, str] | None = None) -> PlatformApi:
    """A file host: ``contents`` by path; ``redirects`` answers 302 from a path to a URL."""
    api = PlatformApi()

    async def serve(request: web.Request) -> web.StreamResponse:
        if request.path in (redirects or {}):
            raise web.HTTPFound((redirects or {})[request.path])
        if request.path not in contents:
            return web.Response(status=404)
        return web.Response(body=contents[request.path], content_type="application/octet-stream")

    api.route("GET", "/{tail:.*}", serve)
    return api
