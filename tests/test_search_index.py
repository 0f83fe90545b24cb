"""The embedded index file: contentless tables that still delete, the time-ordered walk for
newest-first, the typo vocabulary, and schema upgrades — at the backend, below /v1/search."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import apsw
import msgspec
import pytest

from archive.analysis import ANALYZER_VERSION, Analyzer
from archive.query import parse
from archive.search import sqlite_fts
from archive.search.backend import IndexDoc
from archive.search.indexing import document_columns
from archive.search.plan import Cursor, FieldIs, Plan, compile_query
from archive.search.sqlite_fts import BagLayout, SqliteFtsBackend, TypoLayout

KEY = b"i" * 32
TENANT = uuid.UUID(int=7)
START = datetime(2026, 3, 1, tzinfo=timezone.utc)


def _doc(analyzer: Analyzer, n: int, *texts: str, language: str = "en") -> IndexDoc:
    analysed = document_columns(analyzer, [("visitor" if i % 2 == 0 else "agent", t) for i, t in enumerate(texts)], language)
    return IndexDoc(conversation_id=uuid.UUID(int=1000 + n), tenant_id=TENANT, site="shop", channel="web", language=language,
                    started_at=START + timedelta(hours=n), agent_ids=["a-1"], tags=[], visitor_hash="v" * 64,
                    columns=analysed.columns, typos=analysed.typos)


def _plan(analyzer: Analyzer, q: str, sort: str = "newest", size: int = 20, cursor: Cursor = Cursor()) -> Plan:
    return Plan(tenant_id=TENANT, tree=compile_query(parse(q).tree, analyzer, ["en"], lambda v: v), senders=(),
                sort=sort, size=size, cursor=cursor)


async def _walk(backend: SqliteFtsBackend, analyzer: Analyzer, q: str, sort: str) -> list[int]:
    seen, cursor = [], Cursor()
    while True:
        page = await backend.search(_plan(analyzer, q, sort, size=3, cursor=cursor))
        seen += [h.conversation_id.int - 1000 for h in page.hits]
        if len(page.hits) < 3:
            return seen
        last = page.hits[-1]
        cursor = Cursor(started_at=last.started_at.isoformat(), conversation=str(last.conversation_id))


@pytest.fixture
async def backend(tmp_path: Path):
    backend = SqliteFtsBackend(tmp_path / "search.sqlite3")
    yield backend
    await backend.close()


@pytest.mark.parametrize(("chunk", "spread"), [(1, 16), (64, 16), (64, 0)])  # spread 0: the walk against collected matches
async def test_walking_the_time_index_pages_like_sorting_the_matches(backend, monkeypatch, chunk, spread):
    analyzer = Analyzer(KEY)
    # Indexed out of time order (rowids do not follow started_at), in three batches.
    arrival = [7, 3, 19, 0, 12, 5, 16, 1, 9, 14, 2, 18, 6, 11, 4, 17, 8, 13, 10, 15]
    for batch in (arrival[:5], arrival[5:12], arrival[12:]):
        await backend.index([_doc(analyzer, n, f"order {n}", "refund please" if n % 3 else "thanks") for n in batch])
    sorted_pages = {sort: await _walk(backend, analyzer, "refund", sort) for sort in ("newest", "oldest")}
    monkeypatch.setattr(sqlite_fts, "SORT_LIMIT", 0)  # every search with words walks the index now
    monkeypatch.setattr(sqlite_fts, "WALK_CHUNK", chunk)
    monkeypatch.setattr(sqlite_fts, "WALK_SPREAD", spread)
    walked_pages = {sort: await _walk(backend, analyzer, "refund", sort) for sort in ("newest", "oldest")}
    expected = [n for n in range(20) if n % 3]
    assert walked_pages == sorted_pages == {"newest": expected[::-1], "oldest": expected}
    page = await backend.search(_plan(analyzer, "refund OR thanks", "newest", size=5))
    assert (page.total, [h.conversation_id.int - 1000 for h in page.hits]) == (20, [19, 18, 17, 16, 15])


async def test_contentless_tables_delete_and_replace_conversations(backend):
    analyzer = Analyzer(KEY)
    await backend.index([_doc(analyzer, 1, "my parcel is late"), _doc(analyzer, 2, "my parcel arrived")])
    await backend.index([_doc(analyzer, 1, "my invoice is wrong")])  # the same conversation again
    assert [h.conversation_id.int - 1000 for h in (await backend.search(_plan(analyzer, "parcel"))).hits] == [2]
    assert [h.conversation_id.int - 1000 for h in (await backend.search(_plan(analyzer, "invoice"))).hits] == [1]
    await backend.delete(TENANT, [uuid.UUID(int=1002)])
    assert (await backend.search(_plan(analyzer, "parc*"))).total == 0


async def test_a_term_is_met_through_its_own_spelling_without_the_vocabulary_storing_it(backend, tmp_path):
    """The vocabulary holds a term's deletions only: a typo query that meets a term through the
    term's own spelling (the query has a letter too many) asks search_fts for that term directly,
    and only for words long enough to have a neighbourhood, as before."""
    analyzer = Analyzer(KEY)
    await backend.index([_doc(analyzer, 1, "the subscription renewed", "your parcel"), _doc(analyzer, 2, "a cab on the map")])
    own = _doc(analyzer, 1, "subscription").typos[analyzer.word("subscription", "en").term][0]
    conn = apsw.Connection(str(tmp_path / "search.sqlite3"))
    stored = conn.execute("SELECT count(*) FROM search_typo WHERE search_typo MATCH ?", (TypoLayout(sqlite_fts.TYPO_LAYOUT).key(own),)).fetchall()
    conn.close()
    assert stored == [(0,)]
    assert [h.conversation_id.int - 1000 for h in (await backend.search(_plan(analyzer, "subscriptions~"))).hits] == [1]
    assert [h.conversation_id.int - 1000 for h in (await backend.search(_plan(analyzer, "parcxel~"))).hits] == [1]  # only through "parcel" itself
    assert (await backend.search(_plan(analyzer, "cabx~"))).total == 0  # "cab" is too short to have typos


async def test_the_typo_vocabulary_is_written_once_per_term_across_restarts(backend, tmp_path):
    analyzer = Analyzer(KEY)
    await backend.index([_doc(analyzer, 1, "the subscription renewed")])
    await backend.close()
    restarted = SqliteFtsBackend(tmp_path / "search.sqlite3")  # forgets which terms it wrote
    await restarted.index([_doc(analyzer, 2, "cancel my subscription")])
    await restarted.close()
    term, layout = analyzer.word("subscription", "en").term, TypoLayout(sqlite_fts.TYPO_LAYOUT)
    deletion = layout.key(_doc(analyzer, 2, "subscription").typos[term][1])  # [0] is the term's own
    conn = apsw.Connection(str(tmp_path / "search.sqlite3"))
    rows = conn.execute("SELECT count(*) FROM search_typo WHERE search_typo MATCH ? AND rowid = ?", (deletion, layout.row(term))).fetchall()
    conn.close()
    assert rows == [(1,)]
    reopened = SqliteFtsBackend(tmp_path / "search.sqlite3")
    assert (await reopened.search(_plan(analyzer, "subscribtion~"))).total == 2
    await reopened.close()


async def test_an_index_file_of_an_older_schema_is_recreated_empty(tmp_path):
    path = tmp_path / "search.sqlite3"
    _older_index_file(path)
    backend = SqliteFtsBackend(path)
    analyzer = Analyzer(KEY)
    await backend.index([_doc(analyzer, 1, "hello")])
    assert (await backend.search(_plan(analyzer, "hello"))).total == 1
    await backend.close()
    conn = apsw.Connection(str(path))
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    conn.close()
    assert "search_prefix" not in tables and {"search_fts", "search_bag", "search_typo"} <= tables


def _older_index_file(path: Path) -> None:
    """An index file as schema version 3 left it (n-gram prefix table, user_version 3)."""
    old = apsw.Connection(str(path))
    old.execute("CREATE VIRTUAL TABLE search_prefix USING fts5(p_visitor)")
    old.execute("INSERT INTO search_prefix (p_visitor) VALUES ('ab abc abcd')")
    old.execute("PRAGMA user_version = 3")
    old.close()


async def test_after_an_upgrade_status_asks_for_a_rebuild_and_the_rebuild_finds_the_archive_again(client, tenant, runtime, tmp_path):
    from archive.search import indexing
    from tests.search_corpus import bodies

    response = await client.post("/v1/transcripts", json={"conversations": bodies()}, headers=tenant.headers("ingest"))
    assert response.status_code == 201, response.text
    await indexing.drain_all(runtime)  # indexed before the upgrade (into the suite's index)
    path = tmp_path / "search.sqlite3"
    _older_index_file(path)
    upgraded = SqliteFtsBackend(path)  # what the new version opens in the same data directory
    embedded = runtime.swap_search(upgraded)
    try:
        search = {"q": "refund", "size": 100}
        before = await client.post("/v1/search", json=search, headers=tenant.headers("compliance"))
        assert before.json()["total"] == 0
        assert "upgraded from schema 3: run `parley index rebuild`" in (await upgraded.status()).detail
        await indexing.rebuild(runtime)
        after = await client.post("/v1/search", json=search, headers=tenant.headers("compliance"))
        assert {h["external_id"] for h in after.json()["hits"]} == {"en-1", "en-2"}
        assert "upgraded" not in (await upgraded.status()).detail
    finally:
        runtime.swap_search(embedded)
        await upgraded.close()


async def test_a_rebuild_by_another_process_voids_what_this_one_cached(tmp_path):
    analyzer, other = Analyzer(KEY), uuid.UUID(int=8)
    server = SqliteFtsBackend(tmp_path / "search.sqlite3")
    await server.index([_doc(analyzer, 1, "the subscription renewed")])
    assert (await server.search(_plan(analyzer, "subscribtion~"))).total == 1  # tenant and terms now cached
    rebuild = SqliteFtsBackend(tmp_path / "search.sqlite3")  # `parley index rebuild`, another process
    await rebuild.reset()
    await rebuild.index([msgspec.structs.replace(_doc(analyzer, 2, "another tenant's parcel"), tenant_id=other)])
    await rebuild.close()
    await server.index([_doc(analyzer, 3, "my subscription lapsed")])  # its terms were written before the reset
    assert [h.conversation_id.int - 1000 for h in (await server.search(_plan(analyzer, "subscribtion~"))).hits] == [3]
    await server.close()


def _in_page_order(hits) -> list[tuple[float, float, int]]:
    return [(-h.score, -h.started_at.timestamp(), -h.conversation_id.int) for h in hits]


@pytest.mark.parametrize("margin", [0, 1, 32])
async def test_relevance_pages_keep_the_full_order_through_ties(backend, monkeypatch, margin):
    # Many conversations score alike (the same text): the page boundary falls inside a tie, and
    # reading only the matches that score at least as well as the page's last must not lose or
    # repeat any of them, whether the tie ends within the scores read past the page or not.
    monkeypatch.setattr(sqlite_fts, "TIE_MARGIN", margin)
    analyzer = Analyzer(KEY)
    await backend.index([_doc(analyzer, n, "refund refund please" if n % 4 == 0 else "refund please" if n % 4 == 1 else "the parcel")
                         for n in range(30)])
    seen = []
    for offset in range(0, 40, 4):
        seen += (await backend.search(_plan(analyzer, "refund", "relevance", size=4, cursor=Cursor(offset=offset)))).hits
    ids = [h.conversation_id.int - 1000 for h in seen]
    assert sorted(ids) == [n for n in range(30) if n % 4 in (0, 1)]
    assert _in_page_order(seen) == sorted(_in_page_order(seen))
    assert ids[:8] == [28, 24, 20, 16, 12, 8, 4, 0]  # two occurrences first, newest first among equals


async def test_relevance_pages_past_the_scored_matches_follow_newest_first(backend):
    # "refund OR parc*": the prefix matches carry no score and follow the scored ones.
    analyzer = Analyzer(KEY)
    await backend.index([_doc(analyzer, n, "refund please" if n < 3 else "the parcel") for n in range(8)])
    page = await backend.search(_plan(analyzer, "refund OR parc*", "relevance", size=20))
    assert [h.conversation_id.int - 1000 for h in page.hits] == [2, 1, 0, 7, 6, 5, 4, 3]


OR_QUERIES = ["refund", "refund OR parcel", "tromsø OR tromso", "zakaz OR refund", "refnd~ OR parcel", '"refund please" OR zakaz',
              "refund OR parcel OR zakaz OR tromsø OR delivery"]


@pytest.mark.parametrize("q", OR_QUERIES)
async def test_an_or_of_words_by_relevance_answers_as_when_its_matches_are_read_apart(backend, monkeypatch, q):
    # By relevance, an OR of words takes its matches from the scores (one read of the FTS
    # tables); the answer — total, order, scores, facets — must be that of reading the matches
    # apart, through every way a word matches: terms, phrases, typo expansions, Cyrillic typed
    # in Latin letters (forms), and exact spellings that only raise a score.
    analyzer = Analyzer(KEY)
    texts = ["refund please", "refund refund", "the parcel", "Tromsø harbour", "Tromso harbour", "delivery of the parcel",
             "refunds and refnds"]
    docs = [_doc(analyzer, n, texts[n % len(texts)], "the end") for n in range(28)]
    docs += [_doc(analyzer, 100 + n, "где мой заказ" if n % 2 else "заказы пришли", language="ru") for n in range(6)]
    await backend.index(docs)

    async def answer(q: str) -> tuple[int, list[tuple[int, float]], dict[str, dict[str, int]]]:
        plan = Plan(tenant_id=TENANT, tree=compile_query(parse(q).tree, analyzer, ["en", "ru"], lambda v: v), senders=(),
                    sort="relevance", size=7, cursor=Cursor(offset=2), facets=("day", "language"))
        page = await backend.search(plan)
        return page.total, [(h.conversation_id.int - 1000, round(h.score, 9)) for h in page.hits], page.facets

    together = await answer(q)
    monkeypatch.setattr(sqlite_fts, "scored_alike", lambda node: False)
    apart = await answer(q)
    assert together == apart
    assert together[0] > 0


async def test_facets_count_the_same_along_the_facet_index_and_from_the_matches(backend, monkeypatch):
    analyzer = Analyzer(KEY)
    await backend.index([_doc(analyzer, n, "refund please" if n % 2 else "the parcel") for n in range(60)])  # 60 hours

    async def facets(q: str) -> dict[str, dict[str, int]]:
        plan = msgspec.structs.replace(_plan(analyzer, q), facets=("agent", "day", "language"))
        return (await backend.search(plan)).facets

    counted = {}
    for dense in (0.0, 2.0):  # every match set dense (the index walk), none dense (grouping the matches)
        monkeypatch.setattr(sqlite_fts, "DENSE_FACETS", dense)
        counted[dense] = await facets("refund")
    assert counted[0.0] == counted[2.0] == {"agent": {"a-1": 30}, "day": {"2026-03-01": 12, "2026-03-02": 12, "2026-03-03": 6},
                                            "language": {"en": 30}}


async def test_facets_of_a_query_matching_every_conversation_count_the_tenant_and_nobody_else(backend):
    analyzer = Analyzer(KEY)
    await backend.index([_doc(analyzer, n, "refund please" if n % 2 else "the parcel") for n in range(60)])
    other = [msgspec.structs.replace(_doc(analyzer, 100 + n, "refund"), tenant_id=uuid.UUID(int=8)) for n in range(5)]
    await backend.index(other)  # another tenant's conversations never count
    plan = msgspec.structs.replace(_plan(analyzer, "refund OR parcel"), facets=("agent", "day", "language"))
    page = await backend.search(plan)
    assert page.total == 60
    assert page.facets == {"agent": {"a-1": 60}, "day": {"2026-03-01": 24, "2026-03-02": 24, "2026-03-03": 12}, "language": {"en": 60}}


def _rowids_in_time_order(path: Path) -> list[int]:
    conn = apsw.Connection(str(path))
    rows = conn.execute("SELECT conversation FROM search_doc ORDER BY rowid").fetchall()
    conn.close()
    return [uuid.UUID(bytes=r[0]).int - 1000 for r in rows]


async def test_rowids_follow_start_times_whatever_order_conversations_arrive_in(backend, tmp_path):
    # A rebuild goes in id order and imports bring old conversations late; newest-first walks
    # time and rowids together only if rowids follow time.
    analyzer = Analyzer(KEY)
    for batch in ([9, 2, 5], [0, 7], [3, 8, 1, 6, 4]):
        await backend.index([_doc(analyzer, n, "refund") for n in batch])
    await backend.index([_doc(analyzer, 5, "refund again")])  # re-indexed: keeps its place
    assert _rowids_in_time_order(tmp_path / "search.sqlite3") == list(range(10))


async def test_conversations_starting_in_one_full_second_still_get_rowids(backend, monkeypatch):
    monkeypatch.setattr(sqlite_fts, "NEARBY", 2)  # a taken second looks one second further, then past the newest
    analyzer = Analyzer(KEY)
    same_second = [msgspec.structs.replace(_doc(analyzer, n, "refund"), started_at=START) for n in range(5)]
    await backend.index(same_second + [_doc(analyzer, 9, "refund")])
    page = await backend.search(_plan(analyzer, "refund", size=10))
    assert page.total == 6 and len({h.conversation_id for h in page.hits}) == 6


async def test_conversations_of_one_second_imported_late_still_take_their_place_in_time(backend, tmp_path):
    # Three conversations started in the same second, indexed after later ones: each takes the
    # next free second after their own rather than a place after the newest.
    analyzer = Analyzer(KEY)
    await backend.index([_doc(analyzer, n, "refund") for n in (3, 4, 5)])
    await backend.index([msgspec.structs.replace(_doc(analyzer, n, "refund"), started_at=START) for n in (0, 1, 2)])
    assert _rowids_in_time_order(tmp_path / "search.sqlite3") == [0, 1, 2, 3, 4, 5]


async def test_compaction_gives_the_space_of_deleted_conversations_back_to_the_file_system(backend, tmp_path):
    path, analyzer = tmp_path / "search.sqlite3", Analyzer(KEY)
    for batch in range(20):  # a drain's worth of small batches: many segments
        await backend.index([_doc(analyzer, n, f"order {n}", " ".join(f"item{n}x{i}" for i in range(40)))
                             for n in range(batch * 20, batch * 20 + 20)])
    await backend.delete(TENANT, [uuid.UUID(int=1000 + n) for n in range(40, 400)])  # retention took most
    await backend.close()  # checkpointed: the file alone holds the index
    before = path.stat().st_size
    reopened = SqliteFtsBackend(path)
    await reopened.compact()
    assert path.stat().st_size < before / 2
    assert (await reopened.search(_plan(analyzer, "order", size=100))).total == 40
    assert (await reopened.search(_plan(analyzer, "item7x3"))).total == 1
    await reopened.close()
    conn = apsw.Connection(str(path))
    # Incremental auto-vacuum: no page left free, and no VACUUM needed to get there.
    assert conn.execute("PRAGMA auto_vacuum").fetchall() == [(2,)] and conn.execute("PRAGMA freelist_count").fetchall() == [(0,)]
    conn.close()


async def test_a_bulk_load_asks_for_a_compaction_in_proportion_to_what_the_index_holds(backend, tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite_fts, "COMPACT_AFTER", 10)
    analyzer = Analyzer(KEY)
    await backend.index([_doc(analyzer, n, f"order {n}") for n in range(9)])
    assert not await backend.compaction_due()  # below the minimum
    await backend.index([_doc(analyzer, n, f"order {n}") for n in range(9, 100)])
    assert await backend.compaction_due()
    await backend.compact()
    assert not await backend.compaction_due()  # counted again from the compaction
    await backend.index([_doc(analyzer, n, f"order {n}") for n in range(100, 115)])
    assert not await backend.compaction_due()  # the minimum, but not a fifth of the 115 held
    await backend.index([_doc(analyzer, n, f"order {n}") for n in range(115, 125)])
    assert await backend.compaction_due()  # 25 of 125


async def test_a_drained_bulk_load_leaves_the_index_in_one_segment_per_table(backend, tmp_path, monkeypatch):
    """The drain compacts once a large backlog is drained: the file is what the nightly job
    would leave, without waiting for the night."""
    from archive.search import indexing

    monkeypatch.setattr(sqlite_fts, "COMPACT_AFTER", 100)
    analyzer = Analyzer(KEY)
    for batch in range(10):
        await backend.index([_doc(analyzer, n, f"order {n}", " ".join(f"item{n}x{i}" for i in range(20)))
                             for n in range(batch * 20, batch * 20 + 20)])

    class Rt:
        search = backend

    assert _segments(tmp_path / "search.sqlite3") > 3
    await indexing._compact_if_due(Rt(), indexing.DrainReport())  # type: ignore[arg-type]
    assert _segments(tmp_path / "search.sqlite3") == 3  # search_fts, search_bag, search_typo
    assert (await backend.search(_plan(analyzer, "item7x3"))).total == 1


def _segments(path: Path) -> int:
    """Segments over the FTS5 tables (each has one or more leaf pages listed in ``<table>_idx``)."""
    conn = apsw.Connection(str(path))
    total = sum(conn.execute(f"SELECT count(DISTINCT segid) FROM {table}_idx").fetchall()[0][0] for table in sqlite_fts.FTS_TABLES)
    conn.close()
    return total


def _position(path: Path, n: int) -> int:
    """The position part of conversation n's rowid (its tenant's bits removed)."""
    conn = apsw.Connection(str(path))
    rowid = conn.execute("SELECT rowid FROM search_doc WHERE conversation = ?", (uuid.UUID(int=1000 + n).bytes,)).fetchall()[0][0]
    conn.close()
    return rowid & ((1 << sqlite_fts.TENANT_SHIFT) - 1)


def _seconds(n: int) -> int:
    return int((START + timedelta(hours=n)).timestamp()) - sqlite_fts.ROWID_EPOCH


def _as_written_before(path: Path, layout: str) -> SqliteFtsBackend:
    """The index file as a release before ``layout`` was recorded left it, opened again."""
    conn = apsw.Connection(str(path))
    conn.execute("DELETE FROM search_meta WHERE key = ?", (layout,))
    conn.close()
    return SqliteFtsBackend(path)


async def test_a_file_of_the_earlier_rowid_layout_keeps_it_until_a_rebuild_recreates_it(backend, tmp_path):
    # Files written before one-rowid-per-second keep 256 slots per second: mixing the layouts
    # would put new conversations before old ones in rowid order. A rebuild switches.
    path, analyzer = tmp_path / "search.sqlite3", Analyzer(KEY)
    await backend.index([_doc(analyzer, 0, "refund")])
    assert _position(path, 0) == _seconds(0)
    await backend.close()
    earlier = _as_written_before(path, "rowid_layout")
    await earlier.index([_doc(analyzer, 1, "refund")])
    assert _position(path, 1) == _seconds(1) << 8
    assert "earlier layout (rowids: slots): `parley index rebuild`" in (await earlier.status()).detail
    await earlier.reset()
    await earlier.index([_doc(analyzer, 2, "refund")])
    assert _position(path, 2) == _seconds(2)
    await earlier.close()


async def test_a_file_of_the_earlier_typo_layout_keeps_finding_typos_until_a_rebuild_recreates_it(tmp_path):
    # Files written before the narrow typo vocabulary hold 48-bit hex keys under 56-bit terms:
    # read as narrow, no typo would be found. They stay wide, old rows and new, until a rebuild.
    path, analyzer = tmp_path / "search.sqlite3", Analyzer(KEY)
    backend = SqliteFtsBackend(path)
    await backend.index([])  # creates the file
    await backend.search(_plan(analyzer, "refund"))
    await backend.close()
    earlier = _as_written_before(path, "typo_layout")
    await earlier.index([_doc(analyzer, 0, "the subscription renewed")])
    await earlier.close()
    earlier = SqliteFtsBackend(path)  # restarted: the layout is read from the file again
    await earlier.index([_doc(analyzer, 1, "my subscription, cancelled")])
    assert (await earlier.search(_plan(analyzer, "subscribtion~"))).total == 2
    assert _vocabulary_rows(path) == {int(analyzer.word(w, "en").term, 16) for w in ("subscription", "renewed", "cancelled")}
    assert "earlier layout (typo vocabulary: wide): `parley index rebuild`" in (await earlier.status()).detail
    await earlier.reset()
    await earlier.index([_doc(analyzer, 2, "my subscription, cancelled")])
    assert (await earlier.search(_plan(analyzer, "subscribtion~"))).total == 1
    assert _vocabulary_rows(path) == {int(analyzer.word(w, "en").term[:8], 16) for w in ("subscription", "cancelled")}
    assert "layout" not in (await earlier.status()).detail
    await earlier.close()


BAG_QUERIES = ["refun*", "sender:agent refun*", "sender:visitor refun*", "sender:bot refun*", "refunds", "naroc*", "Tromsø",
               "sender:agent tromso", "sender:visitor tromso", "refundable*", "(refun* OR tromso) -parcel"]
BAG_DOCS = [("I want a refund", "refunded, and the refundable fee too"), ("Tromsø office", "the parcel from Tromso"),
            ("naročilo je tu", "hvala"), ("nothing here", "refunds go to Tromsø")]


async def _bag_answers(backend: SqliteFtsBackend, analyzer: Analyzer) -> dict[str, list[tuple[int, float]]]:
    answers = {}
    for q in BAG_QUERIES:
        parsed = parse(q)
        plan = Plan(tenant_id=TENANT, tree=compile_query(parsed.tree, analyzer, ["en"], lambda v: v), senders=parsed.senders,
                    sort="relevance", size=20, cursor=Cursor())
        page = await backend.search(plan)
        answers[q] = [(h.conversation_id.int - 1000, round(h.score, 6)) for h in page.hits]
    return answers


async def test_a_file_of_the_earlier_bag_layout_answers_alike_until_a_rebuild_recreates_it(tmp_path):
    # Files written before the sets layout keep one bag column per sender (detail=column) and
    # the analyzer's 24-bit path blocks; read as sets, no prefix would be found. Every query
    # answers the same from either layout — prefixes and forms, over every sender or some.
    analyzer, docs = Analyzer(KEY), [_doc(Analyzer(KEY), n, *texts) for n, texts in enumerate(BAG_DOCS)]
    current = SqliteFtsBackend(tmp_path / "now" / "search.sqlite3")
    await current.index(docs)
    expected = await _bag_answers(current, analyzer)
    await current.close()
    assert expected["sender:agent refun*"] and expected["sender:bot refun*"] == []
    assert {n for n, _ in expected["sender:visitor refun*"]} == {0}  # "refunds" is the agent's in conversation 3
    path = tmp_path / "before" / "search.sqlite3"
    created = SqliteFtsBackend(path)
    await created.open()  # creates the file
    await created.close()
    conn = apsw.Connection(str(path))
    conn.execute("DROP TABLE search_bag")
    conn.execute(f"CREATE VIRTUAL TABLE search_bag USING fts5({', '.join(sqlite_fts.BAG_COLUMNS)}, content='', contentless_delete=1,"
                 " tokenize='ascii', detail=column)")
    conn.close()
    earlier = _as_written_before(path, "bag_layout")
    await earlier.index(docs)
    assert await _bag_answers(earlier, analyzer) == expected
    assert "earlier layout (bag: columns): `parley index rebuild`" in (await earlier.status()).detail
    await earlier.reset()
    await earlier.index(docs)
    assert await _bag_answers(earlier, analyzer) == expected
    assert "layout" not in (await earlier.status()).detail
    await earlier.close()


def test_the_sets_bag_writes_each_token_once_with_the_senders_who_wrote_it():
    path = "p" + "a" * 10 + "b" * 6 + "c" * 6  # a prefix path: the root and two 24-bit blocks
    columns = {"f_visitor": f"{path} 0123", "f_agent": f"{path} 4567", "f_bot": "0123", "f_system": "89ab 4567"}
    row = sorted(BagLayout("sets").row(columns)[0].split())
    # the path keeps 20 bits per letter after the first three; one hex digit: visitor 1, agent 2, bot 4, system 8
    assert row == sorted(["p" + "a" * 10 + "b" * 5 + "c" * 5 + "3", "01235", "4567a", "89ab8"])
    assert BagLayout("sets").row({"f_agent": "0123"}) == ("01232",) and BagLayout("sets").row({}) == ("",)
    assert BagLayout("columns").row(columns) == (f"{path} 0123", f"{path} 4567", "0123", "89ab 4567")


async def test_a_visitor_is_found_by_the_hash_kept_as_bytes_and_as_the_hex_of_files_written_before(backend, tmp_path):
    analyzer, hashed = Analyzer(KEY), "ab" * 32
    docs = [msgspec.structs.replace(_doc(analyzer, n, "refund"), visitor_hash=h) for n, h in ((1, hashed), (2, "cd" * 32))]
    await backend.index(docs)
    plan = Plan(tenant_id=TENANT, tree=FieldIs("visitor", hashed), senders=(), sort="newest", size=20, cursor=Cursor())
    assert [h.conversation_id.int - 1000 for h in (await backend.search(plan)).hits] == [1]
    conn = apsw.Connection(str(tmp_path / "search.sqlite3"))
    assert conn.execute("SELECT DISTINCT typeof(visitor_hash), length(visitor_hash) FROM search_doc").fetchall() == [("blob", 32)]
    conn.execute("UPDATE search_doc SET visitor_hash = hex(visitor_hash)")  # as a release before wrote it
    conn.execute("UPDATE search_doc SET visitor_hash = lower(visitor_hash)")
    conn.close()
    assert [h.conversation_id.int - 1000 for h in (await backend.search(plan)).hits] == [1]


async def test_a_prefix_over_some_senders_is_answered_again_on_a_new_connection(backend):
    # The term dictionary those queries read is a temp table of the connection: a backend that
    # closed and opened again (a restart, ``parley index`` commands) must make it again.
    analyzer = Analyzer(KEY)
    await backend.index([_doc(analyzer, 1, "where is my refund", "the refund is on its way")])
    for _ in range(2):
        assert (await _bag_answers(backend, analyzer))["sender:agent refun*"] == [(1, 0.0)]
        await backend.close()


def _vocabulary_rows(path: Path) -> set[int]:
    """The typo vocabulary's rowids (a contentless table cannot be scanned; its vocabulary can)."""
    conn = apsw.Connection(str(path))
    conn.execute("CREATE VIRTUAL TABLE temp.entries USING fts5vocab(main, search_typo, instance)")
    rows = {r[0] for r in conn.execute("SELECT DISTINCT doc FROM temp.entries")}
    conn.close()
    return rows


async def test_terms_that_share_a_vocabulary_row_are_each_found_by_their_typos(backend, monkeypatch):
    # A narrow row is a term's first 32 bits, so two terms may share one (odds ~1e-4 per term at
    # a million terms). Each adds its deletions to the row, and each is found. Shown with rows
    # of 4 bits, where the words below must share.
    monkeypatch.setattr(TypoLayout, "row", lambda self, term: int(term[0], 16))
    monkeypatch.setattr(TypoLayout, "terms", lambda self, row: f"{row:x}*")
    analyzer = Analyzer(KEY)
    words = ["subscription", "delivery", "invoice", "warranty", "headphones", "package", "payment", "shipping", "discount",
             "receipt", "exchange", "complaint", "cancellation", "replacement", "voucher", "checkout", "address", "tracking"]
    await backend.index([_doc(analyzer, n, word) for n, word in enumerate(words)])
    assert len({analyzer.word(w, "en").term[0] for w in words}) < len(words)  # some share a row
    for n, word in enumerate(words):
        typo = word[:3] + word[4:]  # a letter missing
        page = await backend.search(_plan(analyzer, f"{typo}~"))
        assert n in [h.conversation_id.int - 1000 for h in page.hits], word


async def test_compacting_a_file_not_yet_in_incremental_vacuum_mode_merges_and_says_how_to_switch(backend, tmp_path):
    path, analyzer = tmp_path / "search.sqlite3", Analyzer(KEY)
    await backend.index([_doc(analyzer, n, "refund") for n in range(3)])
    await backend.close()
    conn = apsw.Connection(str(path))
    conn.execute("PRAGMA auto_vacuum = 0")
    conn.execute("VACUUM")  # as a file created before this release
    conn.close()
    earlier = SqliteFtsBackend(path)
    report = await earlier.compact()
    assert "parley index rebuild" in report.detail
    assert (await earlier.search(_plan(analyzer, "refund"))).total == 3
    await earlier.close()


def _compaction_killed_at(path: Path, writes: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tests.compaction_killed", str(path), str(writes)],
                          capture_output=True, text=True, timeout=120, cwd=Path(__file__).parent.parent)


# Killed at its first write to disk, a quarter, half and three quarters of the way, and at its last.
@pytest.mark.parametrize("share", [0.0, 0.25, 0.5, 0.75, 1.0])
async def test_a_compaction_killed_mid_way_leaves_the_index_answering_as_before(backend, tmp_path, share):
    path, analyzer = tmp_path / "search.sqlite3", Analyzer(KEY)
    for batch in range(20):
        await backend.index([_doc(analyzer, n, f"order {n}", " ".join(f"item{n}x{i}" for i in range(40)), "refund please")
                             for n in range(batch * 20, batch * 20 + 20)])
    await backend.delete(TENANT, [uuid.UUID(int=1000 + n) for n in range(0, 400, 3)])
    queries = ["order", "item7x3", "item8x3", "refund", "refnud~", "ite*", '"refund please"']
    before = {q: (await backend.search(_plan(analyzer, q, size=500))).total for q in queries}
    await backend.close()
    shutil.copy(path, tmp_path / "counting.sqlite3")
    counted = await asyncio.to_thread(_compaction_killed_at, tmp_path / "counting.sqlite3", 0)  # how many writes in all
    total = int(counted.stdout.split(" after ")[1].split()[0])
    killed = await asyncio.to_thread(_compaction_killed_at, path, max(1, round(share * (total - 1))))
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr[-2000:]
    after = SqliteFtsBackend(path)
    assert {q: (await after.search(_plan(analyzer, q, size=500))).total for q in queries} == before
    conn = apsw.Connection(str(path))
    for table in sqlite_fts.FTS_TABLES:
        conn.execute(f"INSERT INTO {table}({table}) VALUES('integrity-check')")
    conn.close()
    await after.compact()  # and the next night's pass completes
    assert {q: (await after.search(_plan(analyzer, q, size=500))).total for q in queries} == before
    await after.close()


async def test_a_file_indexed_by_an_earlier_analyzer_asks_for_a_rebuild_until_one_is_done(backend, tmp_path):
    # The analyzer's words changed (soft hyphens, the numero sign): conversations indexed before
    # keep the old words until a rebuild; the status says so, a rebuild clears it.
    await backend.index([_doc(Analyzer(KEY), 0, "refund")])
    assert "analyzer" not in (await backend.status()).detail
    await backend.close()
    earlier = _as_written_before(tmp_path / "search.sqlite3", "analyzer")
    detail = (await earlier.status()).detail
    assert f"analysed by analyzer 1 (now {ANALYZER_VERSION}): `parley index rebuild`" in detail
    await earlier.reset()
    assert "analyzer" not in (await earlier.status()).detail
    await earlier.close()
