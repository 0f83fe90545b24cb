"""Ingest of 20-message conversations (~1.5 KB text): service layer, HTTP batches, and the
cost of redaction + encryption against storing the same plaintext without them."""

from __future__ import annotations

import asyncio
import random
import time
from contextlib import contextmanager
from typing import Any, Iterator

import msgspec

from bench.corpus import chat_text, conversation
from bench.harness import Row, Server, Table, bench_tenant

BATCH = 100


@contextmanager
def _without_protection() -> Iterator[None]:
    """The baseline pipeline: identical, except redaction and encryption are identity functions."""
    from archive import crypto, ingest, redaction

    class Plain:
        def __init__(self, ciphertext: bytes) -> None:
            self.ciphertext, self.wrapped_key, self.master_version = ciphertext, b"", 1

    def unredacted(messages: Any, options: Any, language: str | None = None) -> redaction.RedactedConversation:
        return redaction.RedactedConversation(texts=[m.text for m in messages], counts={})

    saved = (ingest.redact_conversation, redaction.Redactor.redact, crypto.TenantCrypto.seal)
    ingest.redact_conversation = unredacted  # type: ignore[assignment]
    redaction.Redactor.redact = lambda self, text: text  # type: ignore[method-assign]
    crypto.TenantCrypto.seal = lambda self, cid, plaintext: Plain(plaintext)  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        ingest.redact_conversation, redaction.Redactor.redact, crypto.TenantCrypto.seal = saved  # type: ignore[method-assign]


async def _service_rate(n: int, protected: bool) -> float:
    from archive.ingest import ingest
    from archive.models import ConversationIn
    from archive.tenancy import Principal

    runtime, tenant, _ = await bench_tenant(f"svc-{int(protected)}")
    principal = Principal(key_id=tenant.id, key_prefix="bench", tenant_id=tenant.id, tenant_slug=tenant.slug, role="ingest")
    rng, text = random.Random(7), chat_text()
    batches = [
        [msgspec.convert(conversation(rng, text, i + b * BATCH), ConversationIn) for i in range(BATCH)]
        for b in range(n // BATCH)
    ]
    started = time.perf_counter()
    if protected:
        for batch in batches:
            await ingest(runtime, principal, batch, True)
    else:
        with _without_protection():
            for batch in batches:
                await ingest(runtime, principal, batch, True)
    elapsed = time.perf_counter() - started
    if not protected:
        # The baseline stored its conversations unencrypted: left in the outbox, the next bench's
        # drain (console) would try to decrypt them and log each one as unreadable.
        from archive.tables import IndexOutbox

        await IndexOutbox.delete().where(IndexOutbox.tenant == tenant.id)
    await runtime.stop()
    return n / elapsed


def _http_rate(n: int) -> float:
    import httpx

    key = asyncio.run(_ingest_key())
    rng, text = random.Random(11), chat_text()
    bodies = [
        msgspec.json.encode({"conversations": [conversation(rng, text, 10_000_000 + i + b * BATCH) for i in range(BATCH)]})
        for b in range(n // BATCH)
    ]
    with Server("api.asgi:create", "granian", {"PARLEY_SCHEDULER": "false"}) as server:
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {key}", "content-type": "application/json"}, timeout=60) as http:
            http.post("/v1/transcripts", content=bodies[0]).raise_for_status()  # warm-up
            started = time.perf_counter()
            for body in bodies[1:]:
                response = http.post("/v1/transcripts", content=body)
                if response.status_code != 201:
                    raise RuntimeError(response.text[:500])
            elapsed = time.perf_counter() - started
    return (len(bodies) - 1) * BATCH / elapsed


async def _ingest_key() -> str:

    runtime, _, key = await bench_tenant("ingest-http", "ingest")
    await runtime.stop()
    return key.key


def run(table: Table, conversations: int) -> None:
    # Alternate the two pipelines and keep each one's best run, so warm-up and file growth
    # do not favour whichever happens to run second.
    plain = protected = 0.0
    for _ in range(2):
        plain = max(plain, asyncio.run(_service_rate(conversations, protected=False)))
        protected = max(protected, asyncio.run(_service_rate(conversations, protected=True)))
    table.add(Row("ingest, service layer (redact+encrypt)", protected, "conv/s", plain, note="baseline: plaintext, no redaction"))
    table.add(Row("ingest, service layer, messages", protected * 20, "msg/s"))
    overhead = plain / protected - 1
    table.add(Row("redaction+encryption overhead", overhead * 100, "% slower", target="<= 30%", passed=overhead <= 0.30,
                  note=f"baseline: same pipeline storing plaintext, {plain:,.0f} conv/s"))
    http = _http_rate(conversations)
    table.add(Row("ingest over HTTP, batches of 100", http, "conv/s", target=">= 500 conv/s", passed=http >= 500))
    table.add(Row("ingest over HTTP, messages", http * 20, "msg/s"))
