"""The one analyzer: text → opaque, keyed tokens with positions, shared by both index backends
and by the query side, so a search means the same thing on SQLite FTS5 and on OpenSearch.

Pipeline per token: Unicode NFKC → case folding → word tokenisation (CJK runs become character
bigrams) → Snowball stemming for the conversation's language (surface forms where there is no
stemmer, e.g. Slovenian or Japanese) → diacritic folding (after stemming, so stemmers see real
words: Russian й, Norwegian å) → keyed BLAKE2b (56 bits) with the tenant's blind-index key → 12 base32 characters.

Prefix search indexes hashed edge n-grams (3..10 characters; a longer prefix is matched on its
first 10) of the folded surface form.
See docs/search.md for what the index still reveals.
"""

from __future__ import annotations

import base64
import hashlib
import re
import unicodedata
from functools import lru_cache
from typing import Iterable, Iterator

import Stemmer

TOKEN_BYTES = 7  # 56 bits: collisions among a million distinct terms have odds of ~1e-5
MIN_PREFIX, MAX_PREFIX = 3, 10
MESSAGE_BOUNDARY = "\x00|"  # hashed like a term; stops phrases spanning two messages

# BCP 47 primary subtag → Snowball algorithm.
STEMMERS: dict[str, str] = {
    "en": "english", "nb": "norwegian", "nn": "norwegian", "no": "norwegian", "ru": "russian",
    "de": "german", "sv": "swedish", "da": "danish", "fi": "finnish", "fr": "french", "es": "spanish",
    "it": "italian", "nl": "dutch", "pt": "portuguese", "pl": "polish", "cs": "czech", "tr": "turkish",
    "hu": "hungarian", "ro": "romanian", "el": "greek", "lt": "lithuanian", "et": "estonian",
    "ar": "arabic", "hi": "hindi", "id": "indonesian", "ga": "irish", "sr": "serbian",
}
SURFACE = ""  # the "language" of unstemmed forms

_WORD = re.compile(r"\w+", re.UNICODE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")


def primary_language(tag: str | None) -> str:
    return (tag or "").split("-")[0].lower()


@lru_cache(maxsize=64)
def _stemmer(language: str) -> Stemmer.Stemmer | None:
    algorithm = STEMMERS.get(language)
    return Stemmer.Stemmer(algorithm) if algorithm else None


def fold(text: str) -> str:
    """Strip diacritics (é→e, å→a, й→и); letters without a decomposition (ø, æ, ß) stay."""
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


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
        # mixed tokens such as "abc日本" are split into their parts above


def is_cjk(word: str) -> bool:
    return bool(_CJK.match(word))


class Analyzer:
    """Per-tenant: owns the blind-index key and caches term → token (vocabularies are small)."""

    def __init__(self, index_key: bytes) -> None:
        self._key = index_key
        self._tokens: dict[str, str] = {}
        self._stems: dict[tuple[str, str], str] = {}
        self._word_tokens: dict[tuple[str, str], frozenset[str]] = {}
        self._terms: dict[tuple[str, str], str] = {}
        self._prefixes: dict[str, tuple[str, ...]] = {}

    def token(self, namespace: str, term: str) -> str:
        cache_key = namespace + term
        token = self._tokens.get(cache_key)
        if token is None:
            digest = hashlib.blake2b(cache_key.encode(), key=self._key, digest_size=TOKEN_BYTES).digest()
            token = base64.b32encode(digest).decode().rstrip("=").lower()
            if len(self._tokens) > 500_000:
                self._tokens.clear()
            self._tokens[cache_key] = token
        return token

    def stem(self, word: str, language: str) -> str:
        key = (word, language)
        stem = self._stems.get(key)
        if stem is None:
            stemmer = _stemmer(language) if not is_cjk(word) else None
            stem = fold(stemmer.stemWord(word) if stemmer else word)
            if len(self._stems) > 500_000:
                self._stems.clear()
            self._stems[key] = stem
        return stem

    # --- documents ---------------------------------------------------------------------------

    def terms(self, text: str, language: str) -> list[str]:
        cache = self._terms
        out = []
        for word in words(text):
            token = cache.get((word, language))
            if token is None:
                if len(cache) > 500_000:
                    cache.clear()
                token = cache[(word, language)] = self.token("t:", self.stem(word, language))
            out.append(token)
        return out

    def prefixes(self, text: str) -> list[str]:
        cache = self._prefixes
        out: list[str] = []
        for word in words(text):
            grams = cache.get(word)
            if grams is None:
                surface = fold(word)
                if len(cache) > 500_000:
                    cache.clear()
                grams = cache[word] = tuple(self.token("p:", surface[:n]) for n in range(MIN_PREFIX, min(len(surface), MAX_PREFIX) + 1))
            out.extend(grams)
        return out

    def word_tokens(self, word: str, language: str) -> frozenset[str]:
        """Every token a (case-folded) word can be matched by: stem, surface form and prefixes."""
        key = (word, language)
        found = self._word_tokens.get(key)
        if found is None:
            surface = fold(word)
            tokens = {self.token("t:", self.stem(word, language)), self.token("t:", surface)}
            tokens.update(self.token("p:", surface[:n]) for n in range(MIN_PREFIX, min(len(surface), MAX_PREFIX) + 1))
            found = frozenset(tokens)
            if len(self._word_tokens) > 200_000:
                self._word_tokens.clear()
            self._word_tokens[key] = found
        return found

    def boundary(self) -> str:
        return self.token("t:", MESSAGE_BOUNDARY)

    # --- queries -----------------------------------------------------------------------------

    def term_alternatives(self, word: str, languages: Iterable[str]) -> list[str]:
        """A query word may match documents of any of the tenant's languages: one token each."""
        forms = {self.stem(w, lang) for lang in [*languages, SURFACE] for w in words(word)}
        return sorted(self.token("t:", f) for f in forms)

    def phrase_alternatives(self, text: str, languages: Iterable[str]) -> list[list[str]]:
        """A phrase is analysed once per language (documents are stemmed in one language)."""
        seqs = {tuple(self.token("t:", self.stem(w, lang)) for w in words(text)) for lang in [*languages, SURFACE]}
        return sorted(list(s) for s in seqs if s)

    def prefix_token(self, prefix: str) -> str | None:
        surface = fold("".join(words(prefix)))
        if len(surface) < MIN_PREFIX:
            return None
        return self.token("p:", surface[:MAX_PREFIX])


def highlight_terms(analyzer: Analyzer, text: str, language: str, wanted: set[str]) -> list[tuple[int, int]]:
    """Character spans of words in ``text`` whose token is in ``wanted`` (term or prefix tokens)."""
    spans = []
    normalized = unicodedata.normalize("NFKC", text)
    for match in _WORD.finditer(normalized):
        word = match.group().casefold()
        if not is_cjk(word) and not wanted.isdisjoint(analyzer.word_tokens(word, language)):
            spans.append(match.span())
    return spans
