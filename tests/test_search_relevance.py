"""Recall and precision per language and category on the relevance set (tests/search_relevance.py),
on SQLite FTS5 and on OpenSearch (osmem), which must return the very same conversations."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from archive.search import indexing
from archive.search.opensearch import OpenSearchBackend
from archive.tables import Conversation, IndexOutbox
from tests.conftest import make_tenant
from tests.search_relevance import CASES, CATEGORIES, bodies

MIN_RECALL, MIN_PRECISION = 0.95, 0.9
CELLS = [(language, category) for language, categories in CASES.items() for category in CATEGORIES if category in categories]


async def _found(client, tenant) -> dict[str, set[str]]:
    found = {}
    for categories in CASES.values():
        for cases in categories.values():
            for query, _ in cases:
                response = await client.post("/v1/search", json={"q": query, "size": 100}, headers=tenant.headers("compliance"))
                assert response.status_code == 200, (query, response.text)
                found[query] = {hit["external_id"] for hit in response.json()["hits"]}
    return found


@pytest.fixture(scope="module")
async def results(client, runtime, osmem_server) -> dict[str, dict[str, set[str]]]:
    """Every query's hits, per backend: the set indexed once into each."""
    tenant = await make_tenant(runtime)
    response = await client.post("/v1/transcripts", json={"conversations": bodies()}, headers=tenant.headers("ingest"))
    assert response.status_code == 201, response.text
    await indexing.drain_all(runtime)
    by_backend = {"sqlite": await _found(client, tenant)}

    clone = osmem_server.clone()
    backend = OpenSearchBackend(clone.url, prefix=f"r{secrets.token_hex(4)}")
    await backend.open()
    await indexing.drain_all(runtime)  # what other tests left goes to the embedded index
    embedded = runtime.swap_search(backend)
    try:
        ids = [r["id"] for r in await Conversation.select(Conversation.id).where(Conversation.tenant == tenant.id)]
        await IndexOutbox.insert(*[IndexOutbox(tenant=tenant.id, conversation=i, op="upsert") for i in ids])
        await indexing.drain_all(runtime)
        by_backend["opensearch"] = await _found(client, tenant)
    finally:
        await indexing.drain_all(runtime)
        runtime.swap_search(embedded)
        await backend.close()
        clone.close()
    return by_backend


def _scores(found: dict[str, set[str]], cases: list[tuple[str, set[str]]]) -> tuple[float, float]:
    relevant = sum(len(expected) for _, expected in cases)
    retrieved = sum(len(found[q]) for q, _ in cases)
    hits = sum(len(found[q] & expected) for q, expected in cases)
    return (hits / relevant if relevant else 1.0), (hits / retrieved if retrieved else 1.0)


def _misses(found: dict[str, set[str]], cases: list[tuple[str, set[str]]]) -> dict[str, Any]:
    return {q: {"missing": sorted(e - found[q]), "unexpected": sorted(found[q] - e)} for q, e in cases if found[q] != e}


async def test_both_backends_find_the_same_conversations(results):
    sqlite, opensearch = results["sqlite"], results["opensearch"]
    assert {q: sorted(h) for q, h in sqlite.items() if h != opensearch[q]} == {}, opensearch


@pytest.mark.parametrize(("language", "category"), CELLS, ids=[f"{lang}-{cat}" for lang, cat in CELLS])
async def test_recall_and_precision(results, language, category):
    cases = CASES[language][category]
    for backend, found in results.items():
        recall, precision = _scores(found, cases)
        assert recall >= MIN_RECALL and precision >= MIN_PRECISION, (backend, recall, precision, _misses(found, cases))


async def test_report_recall_and_precision(results, capsys):
    """Prints the table the issue asks for (always shown, also when everything passes)."""
    lines = ["", "relevance set: recall / precision per language and category (SQLite = OpenSearch)",
             f"{'language':10}" + "".join(f"{c:>18}" for c in CATEGORIES)]
    for language, categories in CASES.items():
        row = f"{language:10}"
        for category in CATEGORIES:
            if category not in categories:
                row += f"{'-':>18}"
                continue
            recall, precision = _scores(results["sqlite"], categories[category])
            row += f"{f'{recall:.2f} / {precision:.2f}':>18}"
        lines.append(row)
    with capsys.disabled():
        print("\n".join(lines))
    assert len(lines) == 3 + len(CASES)
