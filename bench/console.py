"""The review console's server time: a search page at 1M messages, against the API search of the
same query in the same run (the baseline: what the console adds is rendering the page).

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

from bench.corpus import conversation, sentences
from bench.harness import Row, Table, bench_tenant
from bench.search import _query_mix, _vocabulary

BATCH = 100
PAGE = 25


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

    rng, pool = random.Random(42), sentences()
    corpus = [conversation(rng, pool, i) for i in range(conversations)]
    mix = _query_mix(_vocabulary(corpus), corpus)
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
    await runtime.stop()
    return results


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
