"""Throughput through a connector against the plain ingest API, in the same run on one server.

The same 20-message conversations are pushed one per request both ways: as Rocket.Chat
``LivechatSession`` webhooks (token check, delivery key, parsing, assembly, revision-aware ingest,
delivery and counters in the ingest transaction) and as Parley's own shape to
``POST /v1/transcripts``. Both run with the same concurrency, alternately, best of two each, so
warm-up and file growth favour neither. Target: the connector within 80 % of the plain API.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import httpx
import msgspec

from bench.corpus import chat_text, conversation
from bench.harness import Row, Server, Table, bench_tenant

CONCURRENCY = 8
GOAL = 0.8


def livechat_session(parley: dict[str, Any]) -> dict[str, Any]:
    """The conversation as Rocket.Chat's Omnichannel webhook sends a closed chat (sendToCRM.ts)."""
    visitor = parley["visitor"]
    agent = parley["agents"][0]
    guest = f"guest-{visitor['id']}"
    messages = []
    for i, m in enumerate(parley["messages"]):
        from_visitor = m["sender"]["role"] == "visitor"
        author = {"_id": visitor["id"], "username": guest, "name": visitor["name"]} if from_visitor else {
            "_id": agent["id"], "username": "agent.bench", "name": agent["name"]}
        message = {"_id": f"{parley['external_id']}-{i}", "username": author["username"], "msg": m["text"], "ts": m["at"],
                   "rid": parley["external_id"], "u": author}
        if not from_visitor:
            message["agentId"] = agent["id"]
        messages.append(message)
    return {
        "_id": parley["external_id"], "type": "LivechatSession", "createdAt": parley["started_at"], "closedAt": parley["ended_at"],
        "lastMessageAt": parley["ended_at"], "tags": parley["tags"],
        "visitor": {"_id": visitor["id"], "token": f"t-{visitor['id']}", "name": visitor["name"], "username": guest,
                    "email": [{"address": visitor["email"]}]},
        "agent": {"_id": agent["id"], "username": "agent.bench", "name": agent["name"], "email": "agent@example.org"},
        "messages": messages,
    }


def _bodies(n: int, seed: int, offset: int) -> list[dict[str, Any]]:
    rng, chat = random.Random(seed), chat_text()
    bodies = []
    for i in range(n):
        body = conversation(rng, chat, offset + i)
        body.pop("language")  # a Rocket.Chat session names no language either
        bodies.append(body)
    return bodies


async def _setup() -> tuple[str, str, str]:
    from archive.connectors.store import ConnectorIn, create

    runtime, tenant, key = await bench_tenant("connectors", "ingest")
    ctx = await runtime.tenants.context(tenant.id)
    created = await create(ctx, ConnectorIn(platform="rocketchat"), "bench", "http://bench.invalid")
    await runtime.stop()
    return key.key, str(created.id), created.secret


async def _rate(url: str, path: str, headers: dict[str, str], bodies: list[bytes], expect: int) -> float:
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    async with httpx.AsyncClient(base_url=url, headers={"content-type": "application/json", **headers}, timeout=60) as http:

        async def worker() -> None:
            while not queue.empty():
                body = queue.get_nowait()
                response = await http.post(path, content=body)
                if response.status_code != expect:
                    raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")

        started = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(CONCURRENCY)])
        return len(bodies) / (time.perf_counter() - started)


def run(table: Table, conversations: int) -> None:
    api_key, connector_id, secret = asyncio.run(_setup())
    plain_path, push_path = "/v1/transcripts", f"/v1/connectors/{connector_id}/events"
    plain_headers, push_headers = {"Authorization": f"Bearer {api_key}"}, {"X-RocketChat-Livechat-Token": secret}
    plain = through = 0.0
    with Server("api.asgi:create", "granian", {"PARLEY_SCHEDULER": "false"}) as server:
        warm = _bodies(50, 1, 50_000_000)
        asyncio.run(_rate(server.url, plain_path, plain_headers, [msgspec.json.encode(b) for b in warm[:25]], 201))
        asyncio.run(_rate(server.url, push_path, push_headers, [msgspec.json.encode(livechat_session(b)) for b in warm[25:]], 200))
        for attempt in range(2):
            plain_bodies = _bodies(conversations, 10 + attempt, 60_000_000 + attempt * 1_000_000)
            push_bodies = _bodies(conversations, 20 + attempt, 70_000_000 + attempt * 1_000_000)
            plain = max(plain, asyncio.run(_rate(server.url, plain_path, plain_headers, [msgspec.json.encode(b) for b in plain_bodies], 201)))
            pushes = [msgspec.json.encode(livechat_session(b)) for b in push_bodies]
            through = max(through, asyncio.run(_rate(server.url, push_path, push_headers, pushes, 200)))  # Rocket.Chat is answered 200
    ratio = through / plain
    table.add(Row("connector: Rocket.Chat pushes over HTTP, one chat each", through, "conv/s", plain,
                  target=f"ratio >= {GOAL}", passed=ratio >= GOAL,
                  note=f"baseline: POST /v1/transcripts, one conversation each, same server, {CONCURRENCY} concurrent"))
