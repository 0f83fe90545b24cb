"""The one analyzer: text → opaque, keyed tokens, shared by both index backends and by the query
side, so a search means the same thing on SQLite FTS5 and on OpenSearch.

Per word, in one pass (``Analyzer.word``):

* **term** (positional, ``t_<sender>``): Unicode NFKC → case folding → word tokenisation (CJK runs
  become character bigrams) → the word's normal form in the conversation's language (Snowball stem,
  else dictionary lemma, else the word; ``archive.wordforms``) → letter folding (diacritics and the
  letters that do not decompose: ø→o, æ→ae, ß→ss, đ→d, ł→l, þ→th; after normalising, so stemmers
  and lemmatizers see real words) → keyed BLAKE2b (56 bits) → 12 base32 characters.
* **prefixes** (``p_<sender>``): hashed edge n-grams (3..10 characters) of the folded surface form.
* **forms** (``f_<sender>``, a bag per conversation and sender, no positions): other keys the word
  can be found by — the *exact* unfolded normal form when folding changed it (ranks exact spellings
  first), the Latin *typing key* of a Cyrillic word (``archive.transliteration``), and, when the
  tenant has typo tolerance on, the word's deletion neighbourhood (``archive.typos``).

Every form is hashed under its own namespace, and word forms under the document's language too,
with the tenant's blind-index key: nothing in the index reads as text. A query word is read as a
word of each of the tenant's languages, each reading meeting only documents of that language
(``query_word``). See docs/search.md for what the index still reveals.
"""

from __future__ import annotations

import base64
import hashlib
import re
import unicodedata
from functools import lru_cache
from typing import Iterable, Iterator, NamedTuple

import msgspec
from anyascii import anyascii

from archive import transliteration as tr
from archive import typos
from archive.wordforms import LEMMATIZERS, STEMMERS, SURFACE, normal_form

TOKEN_BYTES = 7  # 56 bits: collisions among a million distinct terms have odds of ~1e-5
MIN_PREFIX, MAX_PREFIX = 3, 10
MESSAGE_BOUNDARY = "\x00|"  # hashed like a term; stops phrases spanning two messages
CACHE_LIMIT = 200_000

# Token namespaces: each kind of form is hashed apart, so a deletion can never equal a term.
TERM, PREFIX, EXACT, TYPING_KEY, TYPO = "t:", "p:", "e:", "x:", "y:"

__all__ = ["Analyzer", "QueryWord", "WordTokens", "STEMMERS", "LEMMATIZERS", "SURFACE", "fold", "words",
           "primary_language", "highlight_terms"]

_WORD = re.compile(r"\w+", re.UNICODE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")


def primary_language(tag: str | None) -> str:
    return (tag or "").split("-")[0].lower()


@lru_cache(maxsize=4096)
def _fold_letter(letter: str) -> str:
    # Latin letters without a decomposition (ø, æ, đ, ł, þ, œ, ı, ħ …): their usual ASCII
    # spelling. Other scripts keep their letters (Cyrillic й/ё lost their marks above).
    if "\u00c0" <= letter <= "\u024f" or "\u1e00" <= letter <= "\u1eff":
        return anyascii(letter).lower() or letter
    return letter


def fold(text: str) -> str:
    """Strip diacritics (é→e, å→a, й→и) and spell undecomposable Latin letters out (ø→o, æ→ae)."""
    stripped = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    if not stripped.isascii():
        stripped = "".join(_fold_letter(c) for c in stripped)
    return unicodedata.normalize("NFC", stripped)


def words(text: str) -> list[str]:
    """Case-folded word tokens; a CJK run yields its character bigrams (a lone character itself)."""
    normalized = unicodedata.normalize("NFKC", text).casefold()
    if _CJK.search(normalized) is None:  # the common case, done in C
        return _WORD.findall(normalized)
    return list(_words_with_cjk(normalized))


def _words_with_cjk(normalized: str) -> Iterator[str]:
    for match in _WORD.finditer(normalized):
        word = match.group()
        if not _CJK.search(word):
            yield word
            continue
        run: list[str] = []
        for ch in word + " ":
            if _CJK.match(ch):
                run.append(ch)
                continue
            if run:
                yield from (run[i] + run[i + 1] for i in range(len(run) - 1)) if len(run) > 1 else run
                run = []
            if ch != " ":
                yield ch  # a non-CJK character inside a mixed token (rare): keep it as a word


def is_cjk(word: str) -> bool:
    return bool(_CJK.match(word))


class WordTokens(NamedTuple):
    """Everything the index stores for one word of a document."""

    term: str
    prefixes: tuple[str, ...]
    forms: tuple[str, ...]


class QueryWord(msgspec.Struct, frozen=True):
    """What one query word matches: any term token (positional), any form token (bag); documents
    holding a ``boost`` token (the exact, unfolded spelling) rank higher."""

    terms: list[str]
    forms: list[str]
    boost: list[str]


class Analyzer:
    """Per tenant: owns the blind-index key, whether typo neighbourhoods are indexed, and caches."""

    def __init__(self, index_key: bytes, typo_tolerance: bool = True) -> None:
        self._key = index_key
        self.typo_tolerance = typo_tolerance
        self._tokens: dict[str, str] = {}
        self._normals: dict[tuple[str, str], str] = {}
        self._words: dict[tuple[str, str], WordTokens] = {}
        self._highlight: dict[tuple[str, str], frozenset[str]] = {}

    def token(self, namespace: str, term: str, language: str | None = None) -> str:
        """The keyed token of ``term``; forms of words are scoped to the document's language."""
        cache_key = namespace + term if language is None else f"{namespace}{language}:{term}"
        token = self._tokens.get(cache_key)
        if token is None:
            digest = hashlib.blake2b(cache_key.encode(), key=self._key, digest_size=TOKEN_BYTES).digest()
            token = base64.b32encode(digest).decode().rstrip("=").lower()
            if len(self._tokens) > CACHE_LIMIT * 2:
                self._tokens.clear()
            self._tokens[cache_key] = token
        return token

    def normal(self, word: str, language: str) -> str:
        """The unfolded normal form of a case-folded word (stem, lemma or the word itself)."""
        key = (word, language)
        found = self._normals.get(key)
        if found is None:
            found = word if is_cjk(word) else normal_form(word, language).casefold()
            if len(self._normals) > CACHE_LIMIT:
                self._normals.clear()
            self._normals[key] = found
        return found

    def canonical(self, word: str, language: str) -> str:
        return fold(self.normal(word, language))

    # --- documents ---------------------------------------------------------------------------

    def word(self, word: str, language: str) -> WordTokens:
        """The tokens of one case-folded document word (cached: vocabularies are small)."""
        key = (word, language)
        found = self._words.get(key)
        if found is None:
            normal = self.normal(word, language)
            canonical = fold(normal)
            surface = fold(word)
            forms = set()
            if canonical != normal:
                forms.add(self.token(EXACT, normal, language))
            if tr.is_cyrillic(normal):
                forms.add(self.token(TYPING_KEY, tr.cyrillic_key(normal)))  # the script scopes it
            if self.typo_tolerance and not is_cjk(word):
                forms.update(self.token(TYPO, s, language) for s in typos.indexed_neighbourhood(canonical))
            found = WordTokens(
                term=self.token(TERM, canonical, language),
                prefixes=tuple(self.token(PREFIX, surface[:n]) for n in range(MIN_PREFIX, min(len(surface), MAX_PREFIX) + 1)),
                forms=tuple(sorted(forms)),
            )
            if len(self._words) > CACHE_LIMIT:
                self._words.clear()
            self._words[key] = found
        return found

    def analyze(self, text: str, language: str) -> list[WordTokens]:
        """One pass over a message: the tokens of each word, in order."""
        return [self.word(w, language) for w in words(text)]

    def boundary(self) -> str:
        return self.token(TERM, MESSAGE_BOUNDARY)

    def word_tokens(self, word: str, language: str) -> frozenset[str]:
        """Every token a case-folded document word can be matched by (for highlighting)."""
        key = (word, language)
        found = self._highlight.get(key)
        if found is None:
            tokens = self.word(word, language)
            found = frozenset({tokens.term, *tokens.prefixes, *tokens.forms})
            if len(self._highlight) > CACHE_LIMIT:
                self._highlight.clear()
            self._highlight[key] = found
        return found

    # --- queries -----------------------------------------------------------------------------

    def query_word(self, text: str, languages: Iterable[str], distance: int | None = 0) -> QueryWord:
        """A query word is read as a word of each of the tenant's languages, and each reading is
        looked for in documents of that language only: one term token per language. Plain
        Latin letters are also read as Cyrillic typed without a Cyrillic keyboard. ``distance``
        > 0 adds the deletion neighbourhood (typo tolerance; None: by the word's length)."""
        languages = [*languages, SURFACE]
        terms: set[str] = set()
        forms: set[str] = set()
        boost: set[str] = set()
        for word in words(text):
            for language in languages:
                normal = self.normal(word, language)
                canonical = fold(normal)
                terms.add(self.token(TERM, canonical, language))
                if canonical != normal:
                    boost.add(self.token(EXACT, normal, language))
                if distance != 0 and not is_cjk(word):
                    # A lemmatizer guesses a lemma for a misspelt word ("karitca" is no Slovene
                    # word) that is often further from the right one than the word as typed; a
                    # stemmer only strips endings, so its stem is tried as well as the word.
                    typed = fold(word)
                    for form in {typed} if language in LEMMATIZERS else {canonical, typed}:
                        edits = typos.auto_distance(form) if distance is None else distance
                        forms.update(self.token(TYPO, s, language) for s in typos.neighbourhood(form, edits))
                forms.update(self.token(TYPING_KEY, k) for k in self.typing_keys(word, language))
        return QueryWord(sorted(terms), sorted(forms), sorted(boost))

    def typing_forms(self, word: str, languages: Iterable[str]) -> list[str]:
        """Form tokens of a word that is one Cyrillic word typed in Latin letters even where the
        tokenizer would split it (an apostrophe for the soft sign: den'gi)."""
        latin = unicodedata.normalize("NFKC", word).casefold()
        return sorted({self.token(TYPING_KEY, k) for lang in [*languages, SURFACE] for k in self.typing_keys(latin, lang)})

    def typing_keys(self, word: str, language: str) -> set[str]:
        """Keys of the Cyrillic words a plain-Latin query word may stand for, as words of
        ``language`` (documents of other languages keep Cyrillic words as they are)."""
        spelling = language if language in tr.CYRILLIC_LANGUAGES else "ru"
        return {tr.cyrillic_key(self.normal(c, language)) for c in tr.cyrillic_candidates(word, spelling)}

    def phrase_alternatives(self, text: str, languages: Iterable[str]) -> list[list[str]]:
        """A phrase is read once per language, each reading matching documents of that language;
        typed in plain Latin letters, it is also spelled back into Cyrillic."""
        found = words(text)
        seqs = set()
        for language in [*languages, SURFACE]:
            seqs.add(tuple(self.token(TERM, self.canonical(w, language), language) for w in found))
            if not any(tr.is_cyrillic(w) for w in found):
                spelling = language if language in tr.CYRILLIC_LANGUAGES else "ru"
                spelled = [tr.cyrillic_candidates(w, spelling, min_letters=1) for w in found]
                if all(spelled):
                    seqs.add(tuple(self.token(TERM, self.canonical(c[0], language), language) for c in spelled))
        return sorted(list(s) for s in seqs if s)

    def near_side(self, text: str, language: str) -> list[str]:
        return [self.token(TERM, self.canonical(w, language), language) for w in words(text)]

    def prefix_token(self, prefix: str) -> str | None:
        surface = fold("".join(words(prefix)))
        if len(surface) < MIN_PREFIX:
            return None
        return self.token(PREFIX, surface[:MAX_PREFIX])


def highlight_terms(analyzer: Analyzer, text: str, language: str, wanted: set[str]) -> list[tuple[int, int]]:
    """Character spans of words in ``text`` whose tokens meet ``wanted`` (any term, prefix or form)."""
    spans = []
    normalized = unicodedata.normalize("NFKC", text)
    for match in _WORD.finditer(normalized):
        word = match.group().casefold()
        if not is_cjk(word) and not wanted.isdisjoint(analyzer.word_tokens(word, language)):
            spans.append(match.span())
    return spans
