"""Search over blind-index tokens: the same answers on SQLite FTS5 and OpenSearch, in every language."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from archive.search import indexing
from tests.search_corpus import EXPECTED, LANGUAGE_OF_QUERY, bodies


@pytest.fixture
async def archive(client, tenant, runtime, search_backend):
    response = await client.post("/v1/transcripts", json={"conversations": bodies()}, headers=tenant.headers("ingest"))
    assert response.status_code == 201, response.text
    from archive.tables import IndexOutbox

    await indexing.drain_all(runtime)
    assert await IndexOutbox.count().where(IndexOutbox.tenant == tenant.id) == 0
    return tenant


async def _search(client, tenant, q: str = "", **extra) -> dict:
    response = await client.post("/v1/search", json={"q": q, "size": 100, **extra}, headers=tenant.headers("compliance"))
    assert response.status_code == 200, response.text
    return response.json()


async def _ids(client, tenant, q: str, **extra) -> set[str]:
    return {hit["external_id"] for hit in (await _search(client, tenant, q, **extra))["hits"]}


async def test_every_query_finds_exactly_its_conversations(client, archive):
    wrong = {}
    for query, expected in EXPECTED.items():
        found = await _ids(client, archive, query)
        if found != expected:
            wrong[query] = {"missing": sorted(expected - found), "unexpected": sorted(found - expected)}
    assert wrong == {}


async def test_precision_and_recall_per_language(client, archive):
    for language, queries in LANGUAGE_OF_QUERY.items():
        relevant = retrieved = hits = 0
        for query in queries:
            found = await _ids(client, archive, query)
            expected = EXPECTED[query]
            relevant += len(expected)
            retrieved += len(found)
            hits += len(found & expected)
        recall = hits / relevant if relevant else 1.0
        precision = hits / retrieved if retrieved else 1.0
        assert (language, recall, precision) == (language, 1.0, 1.0)


async def test_filters_in_the_request_narrow_the_query(client, archive):
    assert await _ids(client, archive, "refund OR refusjon", filters={"language": "nb"}) == {"nb-1"}
    assert await _ids(client, archive, "", filters={"site": "blog"}) == {"en-3"}
    assert await _ids(client, archive, "", filters={"tag": "vip"}) == {"en-3"}
    assert await _ids(client, archive, "", filters={"agent": "a-ru"}) == {"ru-1", "ru-2"}
    assert await _ids(client, archive, "", filters={"visitor": "v-sl-2"}) == {"sl-2"}
    assert await _ids(client, archive, "", filters={"from": "2026-03-11T00:00:00Z", "to": "2026-03-12T00:00:00Z"}) == {"de-1"}
    assert await _ids(client, archive, "", filters={"channel": "whatsapp"}) == {"en-4"}


async def test_facets_count_the_whole_result(client, archive):
    result = await _search(client, archive, "", size=1, facets=["agent", "site", "channel", "tag", "language", "day"])
    assert result["total"] == 12 and len(result["hits"]) == 1
    facets = result["facets"]
    assert facets["site"] == {"shop": 11, "blog": 1}
    assert facets["channel"] == {"web": 11, "whatsapp": 1}
    assert facets["language"]["ru"] == 2 and facets["agent"]["a-en"] == 4
    assert facets["tag"] == {"vip": 1}
    assert facets["day"]["2026-03-01"] == 1 and len(facets["day"]) == 12


async def test_facets_are_counted_only_when_asked_for(client, archive):
    assert (await _search(client, archive, "refund"))["facets"] == {}
    assert (await _search(client, archive, "refund", facets=["channel"]))["facets"] == {"channel": {"web": 2}}


async def test_newest_and_oldest_pages_walk_everything_once(client, archive):
    for sort, first in (("newest", "ja-1"), ("oldest", "en-1")):
        seen, cursor = [], None
        while True:
            page = await _search(client, archive, "", sort=sort, size=5, cursor=cursor)
            seen += [h["external_id"] for h in page["hits"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert seen[0] == first and len(seen) == len(set(seen)) == 12


async def test_relevance_ranks_and_pages(client, archive):
    page1 = await _search(client, archive, "refund OR refusjon OR заказ", size=2)
    page2 = await _search(client, archive, "refund OR refusjon OR заказ", size=2, cursor=page1["next_cursor"])
    page3 = await _search(client, archive, "refund OR refusjon OR заказ", size=2, cursor=page2["next_cursor"])
    ids = [h["external_id"] for h in page1["hits"] + page2["hits"] + page3["hits"]]
    assert sorted(ids) == ["en-1", "en-2", "nb-1", "ru-1", "ru-2"]
    assert all(h["score"] > 0 for h in page1["hits"])


async def test_hits_carry_highlights_made_after_decryption(client, archive):
    hit = (await _search(client, archive, "refusjon"))["hits"][0]
    assert hit["external_id"] == "nb-1" and hit["visitor_id"] == "v-nb-1" and hit["language"] == "nb"
    fragments = [h["fragment"] for h in hit["highlights"]]
    assert fragments == ["Jeg vil ha <mark>refusjon</mark> for pakken", "<mark>Refusjonen</mark> er sendt, fakturaen kommer."]
    assert hit["agents"] == [{"id": "a-nb", "name": "Agent"}]


async def test_query_errors_point_at_the_position(client, tenant, search_backend):
    for q, fragment in (('refund AND', "position 10"), ("(refund", "missing ')'"), ("colour:red", "unknown field"),
                        ("re*", "at least 3"), ('"unclosed', "unclosed quote"),
                        ("refund date:2026-03-31..2026-03-01", "write the earlier date first) at position 7"),
                        # Only emoji or punctuation: nothing to search for, not the whole archive.
                        ("😡", "emoji and punctuation are not indexed"), ('"?!" OR -😡', "nothing in the query can be searched for")):
        response = await client.post("/v1/search", json={"q": q}, headers=tenant.headers("compliance"))
        assert response.status_code == 422, (q, response.text)
        error = response.json()["errors"][0]
        assert error["path"] == "q" and fragment in error["message"] + response.json()["detail"], (q, error)


async def test_a_query_with_emoji_beside_a_word_or_a_field_searches_the_rest(client, tenant, search_backend):
    for q in ("refund 😡", "😡 sender:agent", "😡 date:2026-01-01..2026-12-31"):
        response = await client.post("/v1/search", json={"q": q}, headers=tenant.headers("compliance"))
        assert response.status_code == 200, (q, response.text)


async def test_bad_request_fields_are_named(client, tenant, search_backend):
    for body, path in (({"size": 500}, "size"), ({"sort": "best"}, "sort"), ({"filters": {"colour": "red"}}, "filters.colour"),
                       ({"cursor": "not-a-cursor"}, "cursor"), ({"facets": ["site", "colour"]}, "facets[1]")):
        response = await client.post("/v1/search", json=body, headers=tenant.headers("compliance"))
        assert response.status_code in (400, 422) and response.json()["errors"][0]["path"] == path, response.text


async def test_each_search_is_ledgered_with_the_query_sealed(client, archive, runtime):
    await _search(client, archive, "refusjon", filters={"site": "shop"})
    entries = (await client.get("/v1/audit", params={"action": "search"}, headers=archive.headers("compliance"))).json()
    entry = entries[-1]
    assert entry["actor"] == f"key:{archive.keys['compliance'].prefix}"
    assert entry["details"]["query"] == "refusjon" and entry["details"]["filters"] == {"site": "shop"}
    assert "refusjon" not in entry["details"]["query_sealed"]


async def test_tenants_never_see_each_others_conversations(client, archive, other_tenant):
    assert await _ids(client, other_tenant, "refund") == set()
    assert (await _search(client, other_tenant, ""))["total"] == 0


async def test_index_holds_no_plaintext(client, archive, runtime, data_dir, search_backend):
    words = ["headphones", "refusjon", "Здравствуйте", "naročila", "Rückerstattung", "注文", "subscription"]
    if search_backend.name == "sqlite":
        path = Path(search_backend.path)
        raw = b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())
    elif search_backend.name == "memory":
        raw = json.dumps([msgspec.to_builtins(d) for d in search_backend.documents()], ensure_ascii=False).encode()
    else:
        docs = await search_backend.client.search(index=search_backend.alias, body={"query": {"match_all": {}}, "size": 1000})
        mapping = await search_backend.client.indices.get_mapping(index=search_backend.alias)
        raw = json.dumps([docs, mapping], ensure_ascii=False).encode()
        assert docs["hits"]["total"]["value"] >= 12
    assert [w for w in words if w.encode() in raw or w.lower().encode() in raw] == []


async def test_ingest_succeeds_while_the_index_is_down_and_catches_up(client, tenant, runtime, search_backend):
    from archive.search.opensearch import OpenSearchBackend
    from archive.tables import IndexOutbox

    down = OpenSearchBackend("http://127.0.0.1:9", prefix="down")  # nothing listens on the discard port
    working = runtime.swap_search(down)
    try:
        response = await client.post("/v1/transcripts", json={"conversations": bodies()[:3]}, headers=tenant.headers("ingest"))
        assert response.status_code == 201
        report = await indexing.drain(runtime)
        assert report.failed >= 3
        pending = await IndexOutbox.select().where(IndexOutbox.tenant == tenant.id)
        assert len(pending) == 3 and all(p["attempts"] == 1 and p["last_error"] for p in pending)
        ready = (await client.get("/readyz")).json()
        assert ready["checks"]["search"]["ok"] is False and "pending" in ready["checks"]["index_lag"]["detail"]
        # A search meanwhile says what is wrong and that retrying helps: 503, not a server error.
        searched = await client.post("/v1/search", json={"q": "refund"}, headers=tenant.headers("compliance"))
        assert searched.status_code == 503 and searched.headers["content-type"].startswith("application/problem+json")
        assert "search index" in searched.json()["detail"]
    finally:
        runtime.swap_search(working)
        await down.close()
    await IndexOutbox.update({IndexOutbox.next_attempt_at: IndexOutbox.created_at}).where(IndexOutbox.tenant == tenant.id)
    await indexing.drain_all(runtime)
    assert await IndexOutbox.count().where(IndexOutbox.tenant == tenant.id) == 0
    assert await _ids(client, tenant, "refund") == {"en-1", "en-2"}


async def test_a_fresh_index_records_the_analyzer_it_is_written_with(search_backend):
    # The status asks for a rebuild only of an index an earlier analyzer wrote (the SQLite file's
    # search_meta, the OpenSearch index's mapping _meta; the memory backend starts empty).
    from archive.analysis import ANALYZER_VERSION

    assert "analyzer" not in (await search_backend.status()).detail
    if search_backend.name == "opensearch":
        mappings = await search_backend.client.indices.get_mapping(index=search_backend.alias)
        assert {m["mappings"]["_meta"]["analyzer"] for m in mappings.values()} == {ANALYZER_VERSION}


async def test_rebuild_recreates_the_index_from_the_store(client, archive, runtime, search_backend):
    await search_backend.reset()
    assert await _ids(client, archive, "refund") == set()
    count = await indexing.rebuild(runtime)
    assert count >= 12
    assert await _ids(client, archive, "refund") == {"en-1", "en-2"}


async def test_the_drain_compacts_the_embedded_index_once_a_bulk_load_is_drained(client, tenant, runtime, monkeypatch):
    from archive.search import sqlite_fts

    monkeypatch.setattr(sqlite_fts, "COMPACT_AFTER", 5)
    monkeypatch.setattr(sqlite_fts, "COMPACT_SHARE", 0.0)  # other tests' conversations may share the file
    compactions: list[int] = []
    real = runtime.search.compact

    async def counted():
        compactions.append(1)
        return await real()

    monkeypatch.setattr(runtime.search, "compact", counted)
    response = await client.post("/v1/transcripts", json={"conversations": bodies()}, headers=tenant.headers("ingest"))
    assert response.status_code == 201, response.text
    drained = await indexing.drain_outbox(runtime)
    assert drained is not None and drained["indexed"] >= len(bodies()) and drained["failed"] == 0
    assert compactions == [1]  # the outbox emptied with more than COMPACT_AFTER written
    await indexing.drain_all(runtime)
    assert compactions == [1]  # nothing written since


async def test_compacting_the_index_changes_no_answer(client, archive, runtime, search_backend):
    # The nightly compaction merges what the drains wrote; every query finds what it found before.
    before = {query: await _ids(client, archive, query) for query in EXPECTED}
    result = await indexing.compact(runtime)
    assert {query: await _ids(client, archive, query) for query in EXPECTED} == before
    assert result["bytes_after"] <= result["bytes_before"]
