"""Finding what an officer means: word forms, letters beyond diacritics, Cyrillic typed in Latin
letters, and typos — in the analyzer, in the query language, and through /v1/search on both backends."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from archive import transliteration as tr
from archive import typos
from archive.analysis import Analyzer, fold, highlight_terms
from archive.query import Fuzzy, QuerySyntaxError, Term, parse, relax_for_typos
from archive.search import indexing
from archive.search.plan import Match, TypoToleranceOff, compile_query
from archive.wordforms import LEMMATIZERS, STEMMERS, normalizer
from tests.factories import conversation

KEY = b"k" * 32


def _meet(an: Analyzer, query: str, word: str, language: str, languages: list[str], distance: int | None = 0) -> bool:
    """Whether a query word finds a document word (term or form), as both backends decide it."""
    q = an.query_word(query, languages, distance)
    w = an.word(word, language)
    return w.term in q.terms or not set(w.bag).isdisjoint(q.forms) or not set(w.typos).isdisjoint(q.typos)


# --- the analyzer ------------------------------------------------------------------------------

def test_folding_spells_out_letters_that_do_not_decompose():
    assert fold("tromsø ærø straße đurić łódź þórshöfn œuvre ıstanbul") == "tromso aero strasse duric lodz thorshofn oeuvre istanbul"


def test_folding_leaves_other_scripts_their_letters():
    assert fold("счёт йога 注文") == "счет иога 注文"


def test_every_language_without_a_snowball_stemmer_has_a_lemmatizer():
    assert set(LEMMATIZERS).isdisjoint(STEMMERS)
    assert all(normalizer(language) is not None for language in LEMMATIZERS)


@pytest.mark.parametrize(("query", "forms"), [
    ("naročilo", ["naročila", "naročilu", "naročilom"]),
    ("kartica", ["kartico", "kartici", "kartice"]),
    ("pošiljka", ["pošiljke", "pošiljko", "pošiljki"]),
])
def test_slovenian_word_forms_meet_at_their_lemma(query, forms):
    an = Analyzer(KEY)
    assert [f for f in forms if not _meet(an, query, f, "sl", ["sl"])] == []


def test_a_lemma_does_not_merge_different_words():
    an = Analyzer(KEY)
    assert not _meet(an, "naročilo", "naročnina", "sl", ["sl"])
    assert not _meet(an, "kartica", "karta", "sl", ["sl"])


def test_a_query_word_is_read_in_each_language_only_against_that_language():
    an = Analyzer(KEY)
    # Slovak reads "geslo" (Slovene: password) as a form of "gesť"; that must not find German "gestern".
    assert not _meet(an, "geslo", "gestern", "de", ["de", "sk", "sl"])
    assert _meet(an, "refund", "refunds", "nb", ["en", "nb"])  # an English word in a Norwegian chat


@pytest.mark.parametrize(("typed", "cyrillic"), [
    ("posylka", "посылка"), ("posylku", "посылку"), ("posilka", "посылки"), ("schet", "счёт"), ("shchet", "счёт"),
    ("schyot", "счёт"), ("zhaloba", "жалобу"), ("dengi", "деньги"), ("khleb", "хлеб"), ("hleb", "хлеба"),
    ("tsena", "цена"), ("cena", "цену"), ("delat", "делать"), ("novyy", "новый"), ("zdravstvuyte", "здравствуйте"),
    ("požaluista", "пожалуйста"),
])
def test_cyrillic_typed_in_latin_letters_finds_the_cyrillic_word(typed, cyrillic):
    assert _meet(Analyzer(KEY), typed, cyrillic, "ru", ["en", "ru"])


@pytest.mark.parametrize(("typed", "cyrillic"), [("zakaz", "отказ"), ("schet", "счётчик"), ("net", "нет"), ("pošilka", "посылка")])
def test_transliteration_keeps_different_words_apart(typed, cyrillic):
    assert not _meet(Analyzer(KEY), typed, cyrillic, "ru", ["en", "ru"])


def test_only_plain_latin_and_slavic_transliteration_letters_are_read_as_cyrillic():
    assert tr.cyrillic_candidates("tromsø", "ru") == []
    assert tr.cyrillic_candidates("pošta", "ru")[0] == "пошта"
    assert tr.cyrillic_candidates("net", "ru") == []  # too short to tell from an English word


def test_typing_keys_fold_the_usual_spellings_of_a_letter_together():
    assert len({tr.typing_key(s) for s in ("schet", "shchet", "shhet", "schyot", "sch'et")}) == 1
    assert tr.cyrillic_key("щит") != tr.cyrillic_key("сыт")


def test_typo_neighbourhoods_grow_with_word_length():
    assert typos.auto_distance("cat") == 0 and typos.auto_distance("refund") == 1 and typos.auto_distance("subscription") == 2
    assert typos.indexed_neighbourhood("car") == set() and typos.indexed_neighbourhood("4471x") == set()
    assert typos.neighbourhood("card", 1) == {"card", "ard", "crd", "cad", "car"}


@pytest.mark.parametrize(("typed", "word", "language"), [
    ("refnd", "refunded", "en"), ("recieved", "received", "en"), ("pasword", "password", "en"),
    ("subscribtion", "subscription", "en"), ("naročlo", "naročilu", "sl"), ("закас", "заказа", "ru"),
    ("Rückerstatung", "Rückerstattungen", "de"),
])
def test_a_misspelt_word_finds_the_word_it_misspells(typed, word, language):
    assert _meet(Analyzer(KEY), typed, word.casefold(), language, [language], distance=None)


@pytest.mark.parametrize(("typed", "word"), [("refund", "fund"), ("refund", "rotund"), ("invoice", "voice")])
def test_typo_tolerance_stops_at_its_edit_distance(typed, word):
    assert not _meet(Analyzer(KEY), typed, word, "en", ["en"], distance=None)


def test_without_typo_tolerance_no_neighbourhood_is_indexed():
    on, off = Analyzer(KEY).word("subscription", "en"), Analyzer(KEY, typo_tolerance=False).word("subscription", "en")
    assert on.term == off.term and len(on.typos) == len(typos.indexed_neighbourhood("subscript")) and off.typos == ()


# --- the query language ------------------------------------------------------------------------

def test_typo_operator_takes_an_optional_edit_distance():
    assert parse("refund~").tree == Fuzzy("refund", None, 0)
    assert parse("x refnd~1").tree.children[1] == Fuzzy("refnd", 1, 2)  # type: ignore[union-attr]
    assert parse("chargebak~2").tree == Fuzzy("chargebak", 2, 0)


@pytest.mark.parametrize(("query", "message"), [("refund~3", "1 or 2 edits"), ("ref*~", "whole word"), ('"a b"~2', "whole word")])
def test_typo_operator_errors_name_the_position(query, message):
    with pytest.raises(QuerySyntaxError) as error:
        parse(query)
    assert message in error.value.message and error.value.position >= 0


def test_relaxing_a_query_makes_long_plain_words_typo_tolerant_but_not_negations():
    relaxed = relax_for_typos(parse('refnd invoice -test "card declined" tag:vip sub').tree)
    assert relaxed is not None
    kinds = [type(c).__name__ for c in relaxed.children]  # type: ignore[union-attr]
    assert kinds == ["Fuzzy", "Fuzzy", "Not", "Phrase", "Field", "Term"]
    assert relax_for_typos(Term("card")) is None


def test_a_query_compiles_into_a_plan_without_any_http_or_index():
    """Supervision policies reuse parse and compile_query as they are."""
    tree = compile_query(parse("posylka refnd~").tree, Analyzer(KEY), ["en", "ru"], lambda v: v)
    posylka, refnd = tree.children  # type: ignore[union-attr]
    assert isinstance(posylka, Match) and posylka.forms and isinstance(refnd, Match) and len(refnd.typos) > 10
    with pytest.raises(TypoToleranceOff):
        compile_query(parse("refnd~").tree, Analyzer(KEY, typo_tolerance=False), ["en"], lambda v: v)


# --- through /v1/search, on both backends ------------------------------------------------------

async def _ingest(client, runtime, tenant, *conversations: tuple[str, str, list[str]]) -> None:
    bodies = [conversation(eid, *texts, language=lang, visitor={"id": f"v-{eid}"}) for eid, lang, texts in conversations]
    response = await client.post("/v1/transcripts", json={"conversations": bodies}, headers=tenant.headers("ingest"))
    assert response.status_code == 201, response.text
    await indexing.drain_all(runtime)


async def _search(client, tenant, q: str) -> dict:
    response = await client.post("/v1/search", json={"q": q}, headers=tenant.headers("compliance"))
    assert response.status_code == 200, response.text
    return response.json()


async def test_exact_spelling_ranks_above_the_folded_match(client, runtime, tenant, search_backend):
    await _ingest(client, runtime, tenant,
                  ("plain-1", "nb", ["Pakken er i Tromso nå.", "Den kommer fra Tromso i morgen."]),
                  ("exact", "nb", ["Pakken er i Tromsø.", "Takk."]),
                  ("plain-2", "nb", ["Lageret i Tromso er stengt.", "Vi sender fra Oslo."]))
    assert [h["external_id"] for h in (await _search(client, tenant, "Tromsø"))["hits"]][0] == "exact"
    assert {h["external_id"] for h in (await _search(client, tenant, "Tromso"))["hits"]} == {"plain-1", "plain-2", "exact"}


async def test_a_search_without_hits_retries_with_typo_tolerance(client, runtime, tenant, search_backend):
    await _ingest(client, runtime, tenant, ("refund", "en", ["I want a refund for the broken headphones.", "The refund is on its way."]))
    exact = await _search(client, tenant, "refund")
    assert exact["typo_tolerant"] is False and exact["total"] == 1
    retried = await _search(client, tenant, "refnd")
    assert retried["typo_tolerant"] is True and [h["external_id"] for h in retried["hits"]] == ["refund"]
    assert "<mark>refund</mark>" in retried["hits"][0]["highlights"][0]["fragment"]
    entries = (await client.get("/v1/audit", params={"action": "search"}, headers=tenant.headers("compliance"))).json()
    assert entries[-1]["details"]["typo_tolerant"] is True


async def test_latin_letters_find_and_highlight_cyrillic_words(client, runtime, tenant, search_backend):
    await _ingest(client, runtime, tenant, ("ru", "ru", ["Где моя посылка?", "Посылку отправили вчера."]))
    hit = (await _search(client, tenant, "posylka"))["hits"][0]
    assert hit["external_id"] == "ru" and hit["highlights"][0]["fragment"] == "Где моя <mark>посылка</mark>?"


async def test_typo_tolerance_is_switched_per_tenant(client, runtime, tenant, search_backend):
    settings = (await client.get("/v1/admin/settings", headers=tenant.headers("admin"))).json()
    response = await client.put("/v1/admin/settings", json={**settings, "typo_tolerance": False}, headers=tenant.headers("admin"))
    assert response.status_code == 200 and response.json()["typo_tolerance"] is False
    await _ingest(client, runtime, tenant, ("refund", "en", ["I want a refund.", "Done."]))
    assert (await _search(client, tenant, "refnd")) | {"facets": None} == {
        "total": 0, "hits": [], "facets": None, "next_cursor": None, "typo_tolerant": False}
    rejected = await client.post("/v1/search", json={"q": "x refund~"}, headers=tenant.headers("compliance"))
    assert rejected.status_code == 422
    error = rejected.json()["errors"][0]
    assert error["path"] == "q" and "turned off" in error["message"] and "position 2" in error["message"]


async def test_index_holds_none_of_the_new_forms_in_clear(client, runtime, tenant):
    """Folded, transliterated and misspelt forms are keyed tokens like every other (SQLite file read
    byte by byte; OpenSearch keeps token fields out of _source, see test_search.py). Tokens are hex
    digits, so no Latin word beyond a–f can be spelled by one."""
    await _ingest(client, runtime, tenant, ("forms", "ru", ["Посылка пришла в Tromsø, счёт оплачен.", "Спасибо за заказ."]))
    path = Path(runtime.search.path)
    raw = b"".join(p.read_bytes() for p in (path, path.with_name(path.name + "-wal")) if p.exists())
    assert [w for w in ("посылк", "заказ", "tromsø", "posylk", "posilk", "tromso", "oplachen", "zakaz", "spasibo")
            if w.encode() in raw] == []


async def test_decomposed_letters_are_found_and_highlighted_as_whole_words(client, runtime, tenant, search_backend):
    # Text typed on some keyboards (macOS, iOS) arrives decomposed: c + U+030C for č, e + U+0301 for é.
    nfd = unicodedata.normalize("NFD", "Naročilo je poslano, café je zaprt.")
    await _ingest(client, runtime, tenant, ("nfd", "sl", [nfd, "Hvala."]))
    for q, marked in (("naročilo", "<mark>Naročilo</mark> je poslano, café je zaprt."),
                      (unicodedata.normalize("NFD", "naročilo"), "<mark>Naročilo</mark> je poslano, café je zaprt."),
                      ("café", "Naročilo je poslano, <mark>café</mark> je zaprt.")):
        hits = (await _search(client, tenant, q))["hits"]
        assert [h["highlights"][0]["fragment"] for h in hits] == [unicodedata.normalize("NFD", marked)], q


def test_a_soft_hyphen_inside_a_word_is_highlighted_with_the_word():
    an = Analyzer(KEY)
    text = "Please re\u00adfund my pay\u00adment"
    wanted = set(an.query_word("refund", ["en"]).terms)
    assert [text[s:e] for s, e in highlight_terms(an, text, "en", wanted)] == ["re\u00adfund"]


def test_the_numero_sign_separates_a_number_from_its_label():
    # "заказ №12345": NFKC spells № as "No", which glued to the digits made the word "no12345".
    an = Analyzer(KEY)
    text = "Ваш заказ №48213 отправлен"
    wanted = set(an.query_word("48213", ["ru"]).terms)
    assert [text[s:e] for s, e in highlight_terms(an, text, "ru", wanted)] == ["48213"]
    assert an.query_word("№48213", ["ru"]).terms == an.query_word("48213", ["ru"]).terms


async def test_a_word_typed_in_its_dictionary_form_finds_its_inflections(client, runtime, tenant, search_backend):
    # Stemmers cut the dictionary form and its inflections differently where an ending looks like
    # a suffix (kortnummer → kortnumm, kortnummeret → kortnummer); the word as typed meets them.
    await _ingest(client, runtime, tenant,
                  ("nb", "nb", ["Kortnummeret mitt ble belastet to ganger.", "Kvaliteten på svaret var dårlig."]),
                  ("ru", "ru", ["Список каналов обновлён.", "Спасибо."]),
                  ("sl", "sl", ["Račun ni prišel.", "Hvala."]))
    for q, expected in (("kortnummer", "nb"), ("kvalitet", "nb"), ("канал", "ru"), ("racun", "sl")):
        result = await _search(client, tenant, q)
        assert (q, [h["external_id"] for h in result["hits"]], result["typo_tolerant"]) == (q, [expected], False)
