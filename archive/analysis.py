"""The one analyzer: text → opaque, keyed tokens, shared by both index backends and by the query
side, so a search means the same thing on SQLite FTS5 and on OpenSearch.

Per word, in one pass (``Analyzer.word``, cached per word and language):

* **term** (positional, ``t_<sender>``): Unicode NFKC → case folding → word tokenisation (CJK runs
  become character bigrams) → the word's normal form in the conversation's language (Snowball stem,
  else dictionary lemma, else the word; ``archive.wordforms``) → letter folding (diacritics and the
  letters that do not decompose: ø→o, æ→ae, ß→ss, đ→d, ł→l, þ→th; after normalising, so stemmers
  and lemmatizers see real words) → keyed BLAKE2b (56 bits) → 14 hex digits.
* **prefix path** (in the bag, ``f_<sender>``): one token per word whose leading blocks are keyed
  hashes of the folded surface form's prefixes of 3, 4 … 8 characters, so a prefix query is a
  prefix match on tokens (``p<block3><block4>…*``) instead of one stored n-gram per prefix length.
* **bag** (``f_<sender>``, per conversation and sender, no positions): the *exact* unfolded normal
  form when folding changed it (ranks exact spellings first) and the Latin *typing key* of a
  Cyrillic word (``archive.transliteration``).
* **typo neighbourhood**, when the tenant has typo tolerance on: the one-letter deletions of the
  normal form (``archive.typos``). The backends keep them apart from the document (SQLite in a
  vocabulary table from deletion to term, OpenSearch in the bag); either way a typo query meets a
  conversation exactly when the conversation holds a term the deletion was cut from.

Every form is hashed under its own namespace, and word forms under the document's language too,
with the tenant's blind-index key: nothing in the index reads as text. A query word is read as a
word of each of the tenant's languages, each reading meeting only documents of that language
(``query_word``). See docs/search.md for what the index still reveals.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Generic, Iterable, Iterator, NamedTuple, TypeVar

import msgspec
from anyascii import anyascii

from archive import transliteration as tr
from archive import typos
from archive.wordforms import LEMMATIZERS, STEMMERS, SURFACE, normal_form

TOKEN_BYTES = 7  # 56 bits: collisions among a million distinct terms have odds of ~1e-5
MIN_PREFIX, MAX_PREFIX = 3, 8
# Hex digits per block of a prefix path: the first block tells apart every 3-letter prefix of a
# tenant's vocabulary (tens of thousands: 40 bits), each next one the few dozen letters that can
# follow a prefix (24 bits); a collision would let a prefix query find a sibling's words.
PATH_ROOT_DIGITS, PATH_STEP_DIGITS = 10, 6
PATH_MARK = "p"  # not a hex digit: no other token starts like a path
MESSAGE_BOUNDARY = "\x00|"  # hashed like a term; stops phrases spanning two messages
# Entries per analyzer cache (cleared when full). A tenant's analyzer lives as long as the
# process: about 100,000 words cost ~50 MB, and hold most of what running text repeats.
CACHE_LIMIT = 100_000

# Token namespaces: each kind of form is hashed apart, so a deletion can never equal a term.
TERM, PREFIX, EXACT, TYPING_KEY, TYPO = "t:", "p:", "e:", "x:", "y:"

# What the words of a text are, as indexed. An index records the version it was written with, and
# `parley index status` says when a rebuild would re-analyse conversations indexed before a change.
#   1: until 2026-11-24.
#   2: invisible characters inside words dropped (soft hyphen, zero-width joiners, word joiner,
#      BOM); the numero sign breaks words ("№12345" is the word 12345, not "no12345").
ANALYZER_VERSION = 2

K = TypeVar("K")
V = TypeVar("V")

__all__ = ["ANALYZER_VERSION", "Analyzer", "QueryWord", "WordTokens", "STEMMERS", "LEMMATIZERS", "SURFACE", "fold", "words",
           "primary_language", "highlight_terms"]

_WORD = re.compile(r"\w+", re.UNICODE)
# Invisible characters that sit inside words (soft hyphen from web pages and word processors,
# zero-width (non-)joiner of Persian and Indic scripts, word joiner, BOM): not word characters
# to ``\w``, so they cut a word in two where a reader sees one. Dropped before tokenising.
_INVISIBLE_IN_WORDS = "\u00ad\u200c\u200d\u2060\ufeff"
_INVISIBLE = re.compile(f"[{_INVISIBLE_IN_WORDS}]")
_DROP_INVISIBLE = str.maketrans(dict.fromkeys(_INVISIBLE_IN_WORDS))
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")


def primary_language(tag: str | None) -> str:
    return (tag or "").split("-")[0].lower()


def _fold_letter(letter: str) -> str:
    """What folding makes of one character of NFD text: combining marks go; Latin letters without
    a decomposition (ø, æ, đ, ł, þ, œ, ı, ħ …) get their usual ASCII spelling; other scripts keep
    their letters (Cyrillic й/ё lost their marks as combining marks)."""
    if unicodedata.combining(letter):
        return ""
    if "\u00c0" <= letter <= "\u024f" or "\u1e00" <= letter <= "\u1eff":
        return anyascii(letter).lower() or letter
    return letter


class _FoldTable(dict[int, str]):
    """A ``str.translate`` table for ``_fold_letter``, filled in as characters first occur (it
    memoises a pure function of one character; translate runs the loop in C)."""

    def __missing__(self, code: int) -> str:
        folded = self[code] = _fold_letter(chr(code))
        return folded


_FOLDS = _FoldTable()


def fold(text: str) -> str:
    """Strip diacritics (é→e, å→a, й→и) and spell undecomposable Latin letters out (ø→o, æ→ae)."""
    if text.isascii():
        return text
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", text).translate(_FOLDS))


# The numero sign, which Russian writes glued to the number ("заказ №12345"): NFKC makes it the
# letters "No", which would glue to the digits ("no12345"), so a search for 12345 missed it. It
# separates words instead, as a space would (one character for one: highlight offsets hold).
_NUMERO = "\u2116"


def words(text: str) -> list[str]:
    """Case-folded word tokens; a CJK run yields its character bigrams (a lone character itself)."""
    if _NUMERO in text:
        text = text.replace(_NUMERO, " ")
    normalized = unicodedata.normalize("NFKC", text).casefold()
    if _INVISIBLE.search(normalized) is not None:
        normalized = normalized.translate(_DROP_INVISIBLE)
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
    path: str  # the prefix path ("" for words shorter than MIN_PREFIX)
    bag: tuple[str, ...]  # exact spelling, typing key
    typos: tuple[str, ...]  # deletion neighbourhood (typo tolerance on)


class QueryWord(msgspec.Struct, frozen=True):
    """What one query word matches: any term token (positional), any bag token, any typo
    neighbourhood token; documents holding a ``boost`` token (the exact spelling) rank higher."""

    terms: list[str]
    forms: list[str]
    typos: list[str]
    boost: list[str]
    # The term tokens of the words the typo neighbourhood is made of (the query word and its
    # deletions, where long enough to have a neighbourhood): a term equal to one of them meets
    # the query through its own token, which the SQLite vocabulary does not store.
    typo_terms: list[str] = []


class Analyzer:
    """Per tenant: owns the blind-index key, whether typo neighbourhoods are indexed, and caches."""

    def __init__(self, index_key: bytes, typo_tolerance: bool = True) -> None:
        self._keyed = hashlib.blake2b(key=index_key, digest_size=TOKEN_BYTES)
        self.typo_tolerance = typo_tolerance
        self._normals: _PerLanguage[str] = _PerLanguage()
        self._words: _PerLanguage[WordTokens] = _PerLanguage()
        self._paths: _Generations[str, str] = _Generations()
        self._blocks: dict[str, str] = {}  # a prefix's block: cheap to hash again, read six times per new word
        self._neighbourhoods: _Generations[tuple[str, str], tuple[str, ...]] = _Generations()
        self._typing: _Generations[str, str] = _Generations()  # Cyrillic normal form → its typing-key token
        self._highlight: _Generations[tuple[str, str], frozenset[str]] = _Generations()

    def _digest(self, text: str) -> str:
        hasher = self._keyed.copy()  # the keyed state, set up once
        hasher.update(text.encode())
        return hasher.hexdigest()

    def token(self, namespace: str, term: str, language: str | None = None) -> str:
        """The keyed token of ``term``; forms of words are scoped to the document's language."""
        return self._digest(namespace + term if language is None else f"{namespace}{language}:{term}")

    def normal(self, word: str, language: str) -> str:
        """The unfolded normal form of a case-folded word (stem, lemma or the word itself)."""
        found = self._normals.get(language, word)
        if found is None:
            found = word if is_cjk(word) else normal_form(word, language).casefold()
            self._normals.add(language, word, found)
        return found

    def canonical(self, word: str, language: str) -> str:
        return fold(self.normal(word, language))

    def path(self, surface: str) -> str:
        """The prefix path of a folded surface form: ``p`` and one block per prefix length, so the
        path of a prefix is a prefix of the path of every word that starts with it."""
        if len(surface) < MIN_PREFIX:
            return ""
        found = self._paths.get(surface)
        if found is None:
            blocks = self._blocks
            parts = [PATH_MARK]
            for n in range(MIN_PREFIX, min(len(surface), MAX_PREFIX) + 1):
                prefix = surface[:n]
                block = blocks.get(prefix)
                if block is None:  # short prefixes are shared by many words: hashed once
                    block = self._digest(PREFIX + prefix)[:PATH_ROOT_DIGITS if n == MIN_PREFIX else PATH_STEP_DIGITS]
                    if len(blocks) >= CACHE_LIMIT:
                        blocks.clear()
                    blocks[prefix] = block
                parts.append(block)
            found = "".join(parts)
            self._paths.put(surface, found)
        return found

    def neighbourhood(self, canonical: str, language: str) -> tuple[str, ...]:
        """The typo-neighbourhood tokens of a normal form (shared by all its inflections): the
        form's own token first, then its deletions' (sorted). The SQLite vocabulary stores only
        the deletions, since a typo query also asks for the terms it would meet through the first
        (``QueryWord.typo_terms``)."""
        key = (canonical, language)
        found = self._neighbourhoods.get(key)
        if found is None:
            # The hashing inlined: a word of n letters has n + 1 of these, on every new word.
            keyed, scope = self._keyed, f"{TYPO}{language}:"
            hashed = []
            for deletion in typos.indexed_neighbourhood(canonical) - {canonical}:
                hasher = keyed.copy()
                hasher.update((scope + deletion).encode())
                hashed.append(hasher.hexdigest())
            if hashed:
                hashed.sort()
                hasher = keyed.copy()
                hasher.update((scope + canonical).encode())
                hashed.insert(0, hasher.hexdigest())
            found = tuple(hashed)
            self._neighbourhoods.put(key, found)
        return found

    def typing_token(self, normal: str) -> str:
        """The typing-key token of a Cyrillic normal form (the script scopes it: no language);
        cached, since a stem is shared by all of a word's inflections."""
        found = self._typing.get(normal)
        if found is None:
            found = self.token(TYPING_KEY, tr.cyrillic_key(normal))
            self._typing.put(normal, found)
        return found

    # --- documents ---------------------------------------------------------------------------

    def word(self, word: str, language: str) -> WordTokens:
        """The tokens of one case-folded document word (cached: most words of a message recur)."""
        found = self._words.get(language, word)
        if found is None:
            normal = self.normal(word, language)
            canonical = fold(normal)
            bag = []
            if canonical != normal:
                bag.append(self.token(EXACT, normal, language))
            if tr.is_cyrillic(normal):
                bag.append(self.typing_token(normal))
            neighbourhood = self.neighbourhood(canonical, language) if self.typo_tolerance and not is_cjk(word) else ()
            found = WordTokens(self.token(TERM, canonical, language), self.path(fold(word)), tuple(bag), neighbourhood)
            self._words.add(language, word, found)
        return found

    def analyze(self, text: str, language: str) -> list[WordTokens]:
        """One pass over a message: the tokens of each word, in order."""
        cache = self._words.of(language)
        return [cache.get(w) or self.word(w, language) for w in words(text)]

    def boundary(self) -> str:
        return self.token(TERM, MESSAGE_BOUNDARY)

    def word_tokens(self, word: str, language: str) -> frozenset[str]:
        """Every whole token a case-folded document word can be matched by (for highlighting;
        prefix paths are matched by ``highlight_terms``)."""
        key = (word, language)
        found = self._highlight.get(key)
        if found is None:
            tokens = self.word(word, language)
            found = frozenset({tokens.term, *tokens.bag, *tokens.typos})
            self._highlight.put(key, found)
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
        neighbourhood: set[str] = set()
        typo_terms: set[str] = set()
        boost: set[str] = set()
        for word in words(text):
            for language in languages:
                normal = self.normal(word, language)
                canonical = fold(normal)
                terms.add(self.token(TERM, canonical, language))
                if language != SURFACE and not is_cjk(word):
                    # The word as typed may itself be the normal form of its inflections, where
                    # its own normal form is not (Norwegian kortnummer → kortnumm, kortnummeret →
                    # kortnummer; Slovene racun → racuna, račun → račun): looked up as typed too.
                    terms.add(self.token(TERM, fold(word), language))
                if canonical != normal:
                    boost.add(self.token(EXACT, normal, language))
                if distance != 0 and not is_cjk(word):
                    # A lemmatizer guesses a lemma for a misspelt word ("karitca" is no Slovene
                    # word) that is often further from the right one than the word as typed; a
                    # stemmer only strips endings, so its stem is tried as well as the word.
                    typed = fold(word)
                    for form in {typed} if language in LEMMATIZERS else {canonical, typed}:
                        edits = typos.auto_distance(form) if distance is None else distance
                        spellings = typos.neighbourhood(form, edits)
                        neighbourhood.update(self.token(TYPO, s, language) for s in spellings)
                        typo_terms.update(self.token(TERM, s, language) for s in spellings if typos.has_neighbourhood(s))
                forms.update(self.token(TYPING_KEY, k) for k in self.typing_keys(word, language))
        return QueryWord(sorted(terms), sorted(forms), sorted(neighbourhood), sorted(boost), sorted(typo_terms))

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
        """The path a prefix query looks for as a token prefix (matched on its first MAX_PREFIX letters)."""
        surface = fold("".join(words(prefix)))
        if len(surface) < MIN_PREFIX:
            return None
        return self.path(surface[:MAX_PREFIX])


class _Generations(Generic[K, V]):
    """A cache of up to CACHE_LIMIT entries in two generations (see ``_PerLanguage``): what is
    still in use survives when the cache turns over, instead of every entry going at once — a
    search that arrived just after a clear-all recomputed the paths and tokens of every word it
    highlighted."""

    def __init__(self) -> None:
        self._young: dict[K, V] = {}
        self._old: dict[K, V] = {}

    def get(self, key: K) -> V | None:
        found = self._young.get(key)
        if found is None and self._old:
            found = self._old.pop(key, None)
            if found is not None:
                self.put(key, found)
        return found

    def put(self, key: K, value: V) -> None:
        if len(self._young) >= CACHE_LIMIT // 2:
            self._old, self._young = self._young, {}
        self._young[key] = value


class _PerLanguage(Generic[V]):
    """A cache kept per language under one budget of CACHE_LIMIT entries, in two generations:
    entries are added to the young one; when it holds half the budget it becomes the old one
    (the previous old one is dropped), and a word found only in the old one moves back to the
    young. Words a tenant keeps using survive every turn; clearing everything at once, as this
    cache did before, dropped them too. On the benchmark text 22 % of words miss it, against 24 %
    clearing everything and 19 % with no limit at all."""

    def __init__(self) -> None:
        self._young: dict[str, dict[str, V]] = {}
        self._old: dict[str, dict[str, V]] = {}
        self._size = 0  # entries in the young generation

    def of(self, language: str) -> dict[str, V]:
        """The young generation of ``language`` (the fast path: most words are found here)."""
        cache = self._young.get(language)
        if cache is None:
            cache = self._young[language] = {}
        return cache

    def get(self, language: str, key: str) -> V | None:
        found = self.of(language).get(key)
        if found is None:
            old = self._old.get(language)
            found = old.pop(key, None) if old else None
            if found is not None:
                self.add(language, key, found)
        return found

    def add(self, language: str, key: str, value: V) -> None:
        if self._size >= CACHE_LIMIT // 2:
            # A new young generation of new dicts: a caller holding the previous young dict
            # of a language keeps reading it for the rest of its message, harmlessly.
            self._old, self._young, self._size = self._young, {}, 0
        self.of(language)[key] = value
        self._size += 1


def highlight_terms(analyzer: Analyzer, text: str, language: str, wanted: set[str], paths: tuple[str, ...] = (),
                    seen: dict[str, bool] | None = None) -> list[tuple[int, int]]:
    """Character spans of words in ``text`` whose tokens meet ``wanted`` (any term or form) or
    whose prefix path starts with one of ``paths`` (prefix queries). ``seen`` remembers each
    word's answer across the messages of one search (in ``language``)."""
    spans = []
    seen = {} if seen is None else seen
    normalized = unicodedata.normalize("NFKC", text)
    starts: list[int] | None = None
    if normalized != text or _INVISIBLE.search(text):  # spans are of ``text``: map positions back
        normalized, starts, ends = _normalized_with_origins(text)
    for match in _WORD.finditer(normalized):
        word = match.group().casefold()
        found = seen.get(word)
        if found is None:
            found = seen[word] = not is_cjk(word) and (
                not wanted.isdisjoint(analyzer.word_tokens(word, language))
                or bool(paths and analyzer.path(fold(word)).startswith(paths)))
        if found:
            spans.append(match.span() if starts is None else (starts[match.start()], ends[match.end() - 1]))
    return spans


def _joins_previous(ch: str) -> bool:
    """A combining mark, a Hangul vowel or final consonant jamo (which NFC composes with what
    precedes), or an invisible character inside a word (dropped, as ``words`` does)."""
    return unicodedata.category(ch)[0] == "M" or "\u1160" <= ch <= "\u11ff" or ch in _INVISIBLE_IN_WORDS


def _normalized_with_origins(text: str) -> tuple[str, list[int], list[int]]:
    """``text`` in NFKC, one character with its marks at a time, and for each character of the
    result where the character it came from starts and ends in ``text`` (NFKC changes lengths:
    "cafe" + U+0301 is four characters, "ﬁ" two; a soft hyphen none)."""
    parts: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    i, n = 0, len(text)
    while i < n:
        j = i + 1
        while j < n and _joins_previous(text[j]):
            j += 1
        piece = " " if text[i] == _NUMERO else unicodedata.normalize("NFKC", text[i:j]).translate(_DROP_INVISIBLE)
        parts.append(piece)
        starts.extend([i] * len(piece))
        ends.extend([j] * len(piece))
        i = j
    return "".join(parts), starts, ends
