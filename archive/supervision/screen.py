"""Which words of a conversation the policies can ask about, decided with string comparisons.

Evaluating policies at ingest must not cost what indexing costs: running chat text brings ~50
words per conversation that no cache has seen, and ``Relevant.present`` (archive/search/memory.py)
analyses each of them for every token a plan could ask about — a keyed hash of its normal form, a
prefix path of keyed hashes, a typing key. The screen spares the hashes. While the policies
compile, it watches the analyzer hash their words (``Recorder``), so it knows the plaintext behind
each token the plans ask for: per language, the folded normal forms of their terms; the prefixes
of their prefix queries. A new word then costs its normal form (a stemmer or lemmatizer call), a
set lookup and a ``startswith``:

* a word's term token is wanted exactly when its folded normal form is one of the recorded
  forms of that language (the token is the recorded one: the same string, key and language);
* a word's prefix path starts with a prefix query's token exactly when its folded surface starts
  with the recorded prefix (each block of a path hashes one prefix of the surface);
* a Cyrillic word's typing key is wanted exactly when it is one of the recorded keys.

"Exactly" holds up to a collision of two keyed hashes, the same odds on which the index rests.
The recorded words are the policies' own query words; they stay in this process's memory, as the
policies' queries do. When the screen cannot vouch for a plan token (one it did not see hashed) or
a policy asks for typo tolerance (a word's typo neighbourhood is not a string comparison), it is
not built and the evaluator asks ``Relevant``. Tests hold the two to the same answers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from anyascii import anyascii

from archive import transliteration as tr
from archive.analysis import MAX_PREFIX, TERM, TYPING_KEY, Analyzer, fold, is_cjk, words
from archive.search.memory import Relevant
from archive.wordforms import normalizer

# Words that ``fold`` leaves as they are, told by a regular expression instead of by folding: ASCII
# letters and digits, and the Cyrillic letters а–я but й (no decomposition, no folding, nothing
# composes with them).
_PLAIN = re.compile("[0-9a-z_\u0430-\u0438\u043a-\u044f]*")


class _Romanized(dict[int, str]):
    """A ``str.translate`` table for ``transliteration.romanize`` (anyascii, lower-cased), filled
    in as characters first occur: anyascii maps each character on its own."""

    def __missing__(self, code: int) -> str:
        found = self[code] = anyascii(chr(code)).lower()
        return found


_ROMANIZED = _Romanized()


class Recorder(Analyzer):
    """The tenant's analyzer (same key, same caches) that notes the plaintext of what it hashes
    while plans are compiled: ``terms`` maps a token to (namespace, text, language), ``prefixes``
    a prefix query's token to its folded prefix."""

    terms: dict[str, tuple[str, str, str | None]]
    prefixes: dict[str, str]

    @classmethod
    def of(cls, analyzer: Analyzer) -> Recorder:
        recorder = cls.__new__(cls)
        recorder.__dict__.update(analyzer.__dict__)  # the same keyed hasher and caches, not copies
        recorder.terms, recorder.prefixes = {}, {}
        return recorder

    def token(self, namespace: str, term: str, language: str | None = None) -> str:
        found = super().token(namespace, term, language)
        self.terms[found] = (namespace, term, language)
        return found

    def prefix_token(self, prefix: str) -> str | None:
        found = super().prefix_token(prefix)
        if found is not None:
            surface = fold("".join(words(prefix)))[:MAX_PREFIX]
            if self.path(surface) == found:  # what the path was made of, checked
                self.prefixes[found] = surface
        return found


class Screen:
    """``Relevant.present`` by string comparison, for the plans a ``Recorder`` compiled. Build
    it with ``Screen.build``, which answers None when it cannot vouch for every plan token."""

    CACHE = 200_000  # words per language (cleared when full)

    def __init__(self, relevant: Relevant, terms: dict[str, dict[str, str]], prefixes: dict[str, str], keys: dict[str, str]) -> None:
        self.relevant = relevant
        self._terms = terms  # language → folded normal form → its wanted term token
        self._prefixes = sorted(prefixes.items())  # (folded prefix, token)
        self._heads = tuple(surface for surface, _ in self._prefixes)
        self._initials = frozenset(surface[0] for surface in self._heads)
        self._keys = keys  # typing key → its wanted token
        # Per language: every word already screened, and the wanted tokens of the few that have
        # any — one pair, replaced whole, so that ingests in worker threads never see a word
        # screened in one pair and its tokens kept in another.
        self._known: dict[str, tuple[set[str], dict[str, frozenset[str]]]] = {}

    @classmethod
    def build(cls, relevant: Relevant, recorder: Recorder) -> Screen | None:
        if relevant.typos:
            return None
        terms: dict[str, dict[str, str]] = {}
        for token in relevant.terms:
            seen = recorder.terms.get(token)
            if seen is None:
                return None  # a token hashed elsewhere: its plaintext is unknown
            namespace, text, language = seen
            if namespace != TERM:
                continue  # a token of another namespace in a term position is no word's term
            if language is None:  # hashed as "t:" + text: a word's term when text is "language:form"
                language, colon, text = text.partition(":")
                if not colon:
                    continue
            terms.setdefault(language, {})[text] = token
        prefixes = {}
        for token in relevant.prefixes:
            surface = recorder.prefixes.get(token)
            if surface is None:
                return None
            prefixes[surface] = token
        keys = {}
        for token in relevant.forms:
            seen = recorder.terms.get(token)
            if seen is None:
                return None
            namespace, text, language = seen
            if namespace == TYPING_KEY and language is None:
                keys[text] = token
            # Without typo tolerance a word's only form a plan asks for is its typing key.
        return cls(relevant, terms, prefixes, keys)

    def present(self, an: Analyzer, texts: Iterable[str], language: str) -> frozenset[str]:
        """The wanted tokens any word of ``texts`` has: ``Relevant.present``'s answer."""
        found = set(words("\n".join(texts)))
        known = self._known.get(language)
        if known is None or len(known[0]) > self.CACHE:
            known = self._known[language] = (set(), {})
        seen, hits = known
        new = found - seen
        if new:
            for word, wanted in self._screen(an, list(new), language).items():
                hits[word] = frozenset(wanted)
            seen |= new  # after the tokens: a word seen has its tokens kept
        return frozenset().union(*[hits[w] for w in hits.keys() & found])

    def _screen(self, an: Analyzer, new: list[str], language: str) -> dict[str, list[str]]:
        """The wanted tokens of each new word that has any (most have none)."""
        wanted: dict[str, list[str]] = {}
        normalize = normalizer(language)
        # Analyzer.normal, without its cache: each word is screened once, and the drain
        # computes the normal forms it needs in a pass of its own.
        normals = [word if is_cjk(word) else (normalize(word) if normalize is not None else word).casefold() for word in new]
        terms = self._terms.get(language)
        if terms:
            for word, normal in zip(new, normals, strict=True):
                term = terms.get(normal if _PLAIN.fullmatch(normal) else fold(normal))
                if term is not None:
                    wanted.setdefault(word, []).append(term)
        if self._heads:
            initials = self._initials
            for word in new:
                # An ASCII letter folds to itself and joins nothing that follows it: a word
                # starting with one folds to a string starting with it.
                if word[0].isascii() and word[0] not in initials:
                    continue
                surface = word if _PLAIN.fullmatch(word) else fold(word)
                if surface.startswith(self._heads):
                    wanted.setdefault(word, []).extend(token for head, token in self._prefixes if surface.startswith(head))
        if self._keys:
            for word, normal in zip(new, normals, strict=True):
                if tr.is_cyrillic(normal):
                    # transliteration.cyrillic_key, romanised by a table instead of by anyascii's loop
                    typing = self._keys.get(tr.typing_key(normal.translate(_ROMANIZED)))
                    if typing is not None:
                        wanted.setdefault(word, []).append(typing)
        return wanted
