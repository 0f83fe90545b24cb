"""The review console's server time: a search page at 1M messages, against the API search of the
same query in the same run (the baseline: what the console adds is rendering the page); and a
review queue action (resolve one item: its head, row and counts), against the same action over
``POST /v1/reviews/{id}/actions``.

Requests go through the app in-process (httpx's ASGI transport, no network, no client parsing
of the page), so the time is the server's: session check, search, decrypting and highlighting the
hits, rendering the template.
"""

from __future__ import annotations

import asyncio
import random
import re
import statistics
import time
from typing import Any

import msgspec

from bench.corpus import chat_text, conversation
from bench.harness import Row, Table, bench_tenant
from bench.search import _query_mix

BATCH = 100
PAGE = 25
FLAGGED = "guaranteed returns, trust me"


def _p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, int(len(ordered) * 0.95) - 1)]


async def _timed(call: Any, repeats: int) -> list[float]:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        response = await call()
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text[:500]
    return samples


async def _run(conversations: int, repeats: int) -> dict[str, Any]:
    import httpx

    from api.app import create_app
    from archive.ingest import ingest
    from archive.models import ConversationIn
    from archive.search import indexing
    from archive.tenancy import Principal
    from config.log import configure_logging

    rng, chat = random.Random(42), chat_text()
    corpus = [conversation(rng, chat, i) for i in range(conversations)]
    mix = _query_mix(corpus)
    runtime, tenant, key = await bench_tenant("console", role="compliance")
    principal = Principal(key_id=tenant.id, key_prefix="bench", tenant_id=tenant.id, tenant_slug=tenant.slug, role="admin")
    for b in range(0, len(corpus), BATCH):
        await ingest(runtime, principal, [msgspec.convert(c, ConversationIn) for c in corpus[b:b + BATCH]], True)
        if b % (BATCH * 10) == 0:
            await indexing.drain_all(runtime, refresh=False)
    await indexing.drain_all(runtime, refresh=False)
    del corpus

    configure_logging(runtime.settings)  # the bench's level (warning): no access line per request
    # The app as served, minus what a server process adds around it (jobs, the demo tenant).
    app = create_app(msgspec.structs.replace(runtime.settings, scheduler=False, demo=False), runtime)
    results: dict[str, Any] = {"pages": {}, "api": {}}
    async with app.lifespan(), httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as http:
        form = await http.get("/console/sign-in")
        token = re.search(r'name="_csrf" value="([^"]*)"', form.text)
        assert token
        signed = await http.post("/console/sign-in", data={"key": key.key, "_csrf": token.group(1)})
        assert signed.status_code == 303, signed.text[:500]
        bearer = {"Authorization": f"Bearer {key.key}"}
        for name, q in mix.items():
            for sort in ("relevance", "newest"):
                label = f"{name}, {sort}"
                results["pages"][label] = await _timed(lambda q=q, sort=sort: http.get("/console/search", params={"q": q, "sort": sort}), repeats)
                results["api"][label] = await _timed(
                    lambda q=q, sort=sort: http.post("/v1/search", json={"q": q, "sort": sort, "size": PAGE}, headers=bearer), repeats)
        results["actions"] = await _queue_actions(http, runtime, principal, bearer, repeats * 10)
    await runtime.stop()
    return results


async def _queue_actions(http: Any, runtime: Any, principal: Any, bearer: dict[str, str], n: int) -> dict[str, list[float]]:
    """``2n`` flagged conversations; ``n`` resolved through the console, ``n`` through the API, interleaved."""
    from archive.ingest import ingest
    from archive.models import ConversationIn

    policy = {"name": "bench guarantees", "query": f'"{FLAGGED}"', "patterns": [], "scope": {}, "sample_percent": 0, "severity": "high", "enabled": True}
    created = await http.post("/v1/supervision/policies", json=policy, headers=bearer)
    assert created.status_code == 201, created.text[:500]
    rng, chat = random.Random(7), chat_text()
    flagged = []
    for i in range(2 * n):
        body = conversation(rng, chat, 10_000_000 + i, messages=6)
        body["messages"][3]["text"] = f"Honestly, {FLAGGED}."
        flagged.append(msgspec.convert(body, ConversationIn))
    for b in range(0, len(flagged), BATCH):
        await ingest(runtime, principal, flagged[b:b + BATCH], True)
    listed = await http.get("/v1/reviews", params={"status": "open", "limit": 200}, headers=bearer)
    ids = [i["id"] for i in listed.json()["items"]]
    while listed.json()["next_cursor"] and len(ids) < 2 * n:
        listed = await http.get("/v1/reviews", params={"status": "open", "limit": 200, "cursor": listed.json()["next_cursor"]}, headers=bearer)
        ids += [i["id"] for i in listed.json()["items"]]
    assert len(ids) >= 2 * n, len(ids)
    page = await http.get("/console/reviews")
    csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
    assert csrf
    console_samples: list[float] = []
    api_samples: list[float] = []
    for i in range(n):
        console_samples += await _timed(lambda rid=ids[2 * i]: http.post(
            f"/console/reviews/{rid}/actions", data={"_csrf": csrf.group(1), "action": "resolve", "queue_status": "open,claimed,escalated"},
            headers={"hx-request": "true"}), 1)
        api_samples += await _timed(lambda rid=ids[2 * i + 1]: http.post(
            f"/v1/reviews/{rid}/actions", json={"action": "resolve"}, headers=bearer), 1)
    return {"console": console_samples, "api": api_samples}


def run(table: Table, conversations: int, repeats: int = 15) -> None:
    results = asyncio.run(_run(conversations, repeats))
    worst = 0.0
    for label, samples in results["pages"].items():
        p95 = _p95(samples)
        worst = max(worst, p95)
        table.add(Row(f"console search page p95: {label}", p95, "ms", _p95(results["api"][label]),
                      note=f"p50 {statistics.median(samples):.1f} ms; baseline: POST /v1/search, same query"))
    messages = conversations * 20
    table.add(Row(f"console search page p95, worst ({conversations:,} conv / {messages:,} msg)", worst, "ms",
                  target="<= 300 ms", passed=worst <= 300))
    actions = results["actions"]
    action_p95 = _p95(actions["console"])
    table.add(Row(f"console queue action p95 (resolve: head, row, counts; {len(actions['console'])} items)", action_p95, "ms",
                  _p95(actions["api"]), target="<= 100 ms", passed=action_p95 <= 100,
                  note=f"p50 {statistics.median(actions['console']):.1f} ms; baseline: POST /v1/reviews/{{id}}/actions"))
