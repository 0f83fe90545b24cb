"""The third index backend: documents held in memory and plans evaluated in Python.

It exists so that "does this conversation match this query?" can be answered for ONE
conversation, before it is stored, with the very same meaning search gives the query: supervision
policies evaluate their compiled plan against the conversation's index document at ingest
(archive/supervision/evaluation.py). Running it through the search contract tests, next to FTS5
and OpenSearch, is what proves that a policy match and a search hit are the same thing.

Semantics, as FTS5 and OpenSearch implement them over the same token columns:

* a ``Match`` is any of its token sequences as a phrase (consecutive positions) in any of the
  plan's text columns (one per sender; a phrase never spans two columns, and a boundary token
  between messages stops it spanning two messages), any of its ``forms`` (transliteration keys)
  in the plan's bags, or a term of the plan's text columns whose typo neighbourhood holds one of
  its ``typos`` tokens;
* a ``NearMatch`` pair is two sequences in the same column with at most ``distance`` tokens
  between the end of one and the start of the other, in either order;
* a ``PrefixMatch`` is a word of the plan's senders whose prefix path starts with its token;
* filters compare the clear fields (``lang:`` matches the tag or its subtags, case-insensitively;
  dates are ``start <= started_at < end``).

Ranking follows the others in kind (the exact order of equal-ish scores may differ): words score
by tf-idf, a word matched through a form scores ``FORM_SCORE``, holding the exact spelling adds
``EXACT_BOOST``, and what matched only through prefixes or filters scores 0.

As a backend it is small and slow (it scans every document of the tenant): fine for tests and
one-conversation evaluation, not for an archive.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import timezone
from typing import Callable, Iterable, Iterator
from uuid import UUID

import msgspec

from archive import transliteration as tr
from archive.analysis import PATH_MARK, TERM, Analyzer, fold, words
from archive.search.backend import BackendStatus, CompactReport, IndexDoc, ScoredId, SearchPage
from archive.search.plan import (
    SENDERS,
    All,
    AnyOf,
    Cursor,
    Everything,
    Facet,
    FieldIs,
    Match,
    NearMatch,
    Plan,
    PlanNode,
    PrefixMatch,
    StartedIn,
    Without,
    iso_utc,
    positive_text,
)

FACETS = ("agent", "site", "channel", "tag", "language")
FACET_LIMIT = 50
DAY_FACET_LIMIT = 366
FORM_SCORE = 1.0
EXACT_BOOST = 3.0


class Columns(msgspec.Struct, frozen=True):
    """Which of a view's columns a plan looks in (its senders' text, prefix paths and forms).

    A view's ``p_<sender>`` holds prefix paths (or, analysed for a ``Relevant``, the plan tokens
    the paths start with); its ``f_<sender>`` holds the bag (exact spellings, typing keys) and the
    typo neighbourhoods of the sender's terms — what OpenSearch puts in its bag field."""

    text: list[str]
    prefixes: list[str]
    forms: list[str]

    @classmethod
    def of(cls, plan: Plan) -> Columns:
        return cls.for_senders(plan.senders)

    @classmethod
    def for_senders(cls, senders: tuple[str, ...]) -> Columns:
        chosen = senders or SENDERS
        return cls([f"t_{s}" for s in chosen], [f"p_{s}" for s in chosen], [f"f_{s}" for s in chosen])


class Relevant:
    """The prefix and form tokens some plans can ask about. A view analysed with it keeps only
    those in its bags, which changes no answer to those plans and spares collecting a
    conversation's whole bag of forms to test a few tokens.

    Unless ``typos`` (some plan was compiled from a ``word~``), the only forms a plan can ask
    about are typing keys (Cyrillic words typed in Latin letters), so a new word is analysed for
    its term, its prefix path (when a plan has a prefix) and its typing key only, not for its typo
    neighbourhood: the same lines as ``Analyzer.word`` for those tokens (a test holds them equal),
    without the dozens of keyed hashes a neighbourhood costs."""

    CACHE = 200_000

    def __init__(self, trees: Iterable[PlanNode], typos: bool = True) -> None:
        self.typos = typos
        prefixes: set[str] = set()
        forms: set[str] = set()
        trees_seen = list(trees)
        for tree in trees_seen:
            for node in _nodes(tree):
                if isinstance(node, PrefixMatch):
                    prefixes.add(node.token)
                elif isinstance(node, Match):
                    forms.update(node.forms)
                    forms.update(node.typos)
        self.prefixes, self.forms = frozenset(prefixes), frozenset(forms)
        self.terms = frozenset(token for tree in trees_seen for node in _nodes(tree) for token in _term_tokens(node))
        # Per language, per word (cached: the analyzer's tokens of a word never change): its term
        # token; its wanted (prefix, form) tokens, for the few words that have any; and all its
        # wanted tokens, term included, for the words that have any.
        self._terms: dict[str, dict[str, str]] = {}
        self._hits: dict[str, dict[str, tuple[frozenset[str], frozenset[str]]]] = {}
        self._wanted: dict[str, dict[str, frozenset[str]]] = {}

    def _caches(self, language: str) -> tuple[dict[str, str], dict[str, tuple[frozenset[str], frozenset[str]]], dict[str, frozenset[str]]]:
        terms = self._terms.get(language)
        if terms is None or len(terms) > self.CACHE:
            terms = self._terms[language] = {}
            self._hits[language], self._wanted[language] = {}, {}
        return terms, self._hits[language], self._wanted[language]

    def _learn(self, an: Analyzer, word: str, language: str) -> None:
        terms, hits, wanted = self._caches(language)
        terms[word], prefix_hits, form_hits = self._analyse(an, word, language)
        if prefix_hits or form_hits:
            hits[word] = (prefix_hits, form_hits)
        if prefix_hits or form_hits or terms[word] in self.terms:
            wanted[word] = prefix_hits | form_hits | ({terms[word]} & self.terms)

    def message(self, an: Analyzer, text: str, language: str) -> tuple[list[str], list[str], dict[str, tuple[frozenset[str], frozenset[str]]]]:
        """A message's words, their term tokens in order, and the words' wanted prefix and form
        tokens."""
        found = words(text)
        terms, hits, _ = self._caches(language)
        try:
            return found, [terms[w] for w in found], hits
        except KeyError:  # a word not seen before: analyse the new ones
            pass
        for word in found:
            if word not in terms:
                self._learn(an, word, language)
        return found, [terms[w] for w in found], self._hits[language]

    def present(self, an: Analyzer, texts: Iterable[str], language: str) -> frozenset[str]:
        """The wanted tokens (term, prefix, form) any word of ``texts`` has: what ``requirements``
        are tested against, found with set operations instead of a view (messages are joined by
        a line break, which no word spans, so the words are those of each message)."""
        found = set(words("\n".join(texts)))
        terms, _, _ = self._caches(language)
        for word in found.difference(terms):  # a set minus a dict iterates the set only
            self._learn(an, word, language)
        wanted = self._wanted[language]
        return frozenset().union(*[wanted[w] for w in wanted.keys() & found])

    def _analyse(self, an: Analyzer, word: str, language: str) -> tuple[str, frozenset[str], frozenset[str]]:
        if self.typos:
            tokens = an.word(word, language)
            return tokens.term, self._prefix_hits(tokens.path), self.forms.intersection((*tokens.bag, *tokens.typos))
        normal = an.normal(word, language)
        term = an.token(TERM, fold(normal), language)
        prefix_hits = self._prefix_hits(an.path(fold(word))) if self.prefixes else frozenset()
        form_hits: frozenset[str] = frozenset()
        if self.forms and tr.is_cyrillic(normal):
            form_hits = self.forms.intersection((an.typing_token(normal),))
        return term, prefix_hits, form_hits

    def _prefix_hits(self, path: str) -> frozenset[str]:
        """The plan prefix tokens ``path`` starts with (a prefix query's token is a path's head)."""
        return frozenset(p for p in self.prefixes if path.startswith(p)) if path else frozenset()


class Relaxed:
    """``node`` with positions, columns and negations relaxed, compiled to set tests: whether a
    document holding the tokens ``present`` (in any column, in any order) could satisfy it. False
    rules the document out for certain; True says nothing. Built once per plan, run per document
    with set operations only (no view)."""

    def __init__(self, node: PlanNode) -> None:
        self.could_match = _relaxed(node)


def _relaxed(node: PlanNode) -> Callable[[frozenset[str]], bool]:
    if isinstance(node, Match):
        singles = frozenset(seq[0] for seq in node.sequences if len(seq) == 1) | frozenset(node.forms) | frozenset(node.typos)
        phrases = [frozenset(seq) for seq in node.sequences if len(seq) > 1]
        return lambda present: not singles.isdisjoint(present) or any(phrase <= present for phrase in phrases)
    if isinstance(node, PrefixMatch):
        token = node.token
        return lambda present: token in present
    if isinstance(node, NearMatch):
        pairs = [frozenset((*left, *right)) for left, right in node.pairs]
        return lambda present: any(pair <= present for pair in pairs)
    if isinstance(node, (All, AnyOf)):
        children = [_relaxed(child) for child in node.children]
        if isinstance(node, All):
            return lambda present: all(child(present) for child in children)
        return lambda present: any(child(present) for child in children)
    return lambda present: True  # filters, negations, everything: decided on the view


def has_words(node: PlanNode) -> bool:
    """Whether ``node`` looks for any token (else ``could_match`` never rules anything out)."""
    return any(isinstance(n, (Match, PrefixMatch, NearMatch)) for n in _nodes(node))


def _term_tokens(node: PlanNode) -> Iterator[str]:
    if isinstance(node, Match):
        yield from (token for sequence in node.sequences for token in sequence)
    elif isinstance(node, NearMatch):
        yield from (token for left, right in node.pairs for token in (*left, *right))


def _nodes(node: PlanNode) -> Iterator[PlanNode]:
    yield node
    if isinstance(node, (All, AnyOf)):
        for child in node.children:
            yield from _nodes(child)
    elif isinstance(node, Without):
        yield from _nodes(node.child)


class DocView:
    """One index document, tokenised once: token lists (positions) of the text columns, token
    sets of every column. Sets and positions are built on first use.

    ``analysed`` builds the same view straight from the analyzer's tokens of each word, without
    joining the columns into strings and splitting them again: what one-conversation evaluation
    uses (tests hold it equal to the view of ``build_document``'s document)."""

    __slots__ = ("doc", "started", "_tokens", "_sets", "_positions")

    def __init__(self, doc: IndexDoc, terms: dict[str, list[str]] | None = None, sets: dict[str, frozenset[str]] | None = None) -> None:
        self.doc = doc
        self.started = iso_utc(doc.started_at)
        self._tokens: dict[str, list[str]] = dict(terms or {})
        self._sets: dict[str, frozenset[str]] = dict(sets or {})
        self._positions: dict[str, dict[str, list[int]]] = {}


    @classmethod
    def analysed(cls, an: Analyzer, doc: IndexDoc, messages: Iterable[tuple[str, str]], language: str,
                 relevant: Relevant | None = None) -> DocView:
        """The view of the document ``document_columns`` would make of (sender, text) pairs; with
        ``relevant``, its prefix and form bags hold only the tokens ``relevant`` names."""
        terms: dict[str, list[str]] = {f"t_{s}": [] for s in SENDERS}
        prefixes: dict[str, set[str]] = {s: set() for s in SENDERS}
        forms: dict[str, set[str]] = {s: set() for s in SENDERS}
        boundary = an.boundary()
        for role, text in messages:
            column = terms[f"t_{role}"]
            if column:
                column.append(boundary)
            if relevant is None:
                for word in words(text):
                    tokens = an.word(word, language)
                    column.append(tokens.term)
                    if tokens.path:  # in both, as the index keeps paths in its bag
                        prefixes[role].add(tokens.path)
                        forms[role].add(tokens.path)
                    forms[role].update(tokens.bag)
                    forms[role].update(tokens.typos)
                continue
            found, message_terms, hits = relevant.message(an, text, language)
            column.extend(message_terms)
            for word in hits.keys() & set(found):  # iterates the smaller of the two
                prefix_hits, form_hits = hits[word]
                prefixes[role].update(prefix_hits)
                forms[role].update(form_hits)
        sets = {f"p_{s}": frozenset(prefixes[s]) for s in SENDERS} | {f"f_{s}": frozenset(forms[s]) for s in SENDERS}
        return cls(doc, terms, sets)

    def tokens(self, column: str) -> list[str]:
        found = self._tokens.get(column)
        if found is None:
            found = self._tokens[column] = self.doc.columns.get(column, "").split()
        return found

    def token_set(self, column: str) -> frozenset[str]:
        found = self._sets.get(column)
        if found is None:
            if column.startswith("p_"):  # an indexed document keeps its paths in its bag
                found = frozenset(t for t in self.tokens("f_" + column[2:]) if t.startswith(PATH_MARK))
            elif column.startswith("f_"):
                terms = self.token_set("t_" + column[2:])
                typos = self.doc.typos
                found = frozenset(self.tokens(column)).union(*(typos[t] for t in terms if t in typos))
            else:
                found = frozenset(self.tokens(column))
            self._sets[column] = found
        return found

    def positions(self, column: str) -> dict[str, list[int]]:
        found = self._positions.get(column)
        if found is None:
            found = defaultdict(list)
            for position, token in enumerate(self.tokens(column)):
                found[token].append(position)
            self._positions[column] = found
        return found

    def phrase_starts(self, column: str, sequence: list[str]) -> list[int]:
        """Positions where ``sequence`` starts in ``column``."""
        if len(sequence) == 1:
            return self.positions(column).get(sequence[0], []) if sequence[0] in self.token_set(column) else []
        if not all(token in self.token_set(column) for token in sequence):
            return []
        index = self.positions(column)
        following = [set(index.get(token, [])) for token in sequence[1:]]
        return [start for start in index.get(sequence[0], []) if all(start + i + 1 in after for i, after in enumerate(following))]


def _near(view: DocView, column: str, left: list[str], right: list[str], distance: int) -> bool:
    a_starts, b_starts = view.phrase_starts(column, left), view.phrase_starts(column, right)
    for a in a_starts:
        for b in b_starts:
            gap = b - (a + len(left)) if a <= b else a - (b + len(right))
            if gap <= distance:
                return True
    return False


def _language_is(value: str, wanted: str) -> bool:
    value, wanted = value.lower(), wanted.lower()
    return value == wanted or value.startswith(wanted + "-")


def _has_form(view: DocView, tokens: list[str], columns: list[str]) -> bool:
    return any(not view.token_set(column).isdisjoint(tokens) for column in columns) if tokens else False


def matches(node: PlanNode, view: DocView, columns: Columns) -> bool:
    """Whether the document satisfies ``node`` (the plan's tree, or any part of it)."""
    doc = view.doc
    if isinstance(node, Match):
        for column in columns.text:
            present = view.token_set(column)
            for sequence in node.sequences:
                if sequence[0] in present and (len(sequence) == 1 or view.phrase_starts(column, sequence)):
                    return True
        return _has_form(view, node.forms + node.typos, columns.forms)
    if isinstance(node, PrefixMatch):
        token = node.token
        return any(path.startswith(token) for column in columns.prefixes for path in view.token_set(column))
    if isinstance(node, NearMatch):
        for column in columns.text:
            present = view.token_set(column)
            for left, right in node.pairs:
                if left[0] in present and right[0] in present and _near(view, column, left, right, node.distance):
                    return True
        return False
    if isinstance(node, FieldIs):
        if node.name == "site":
            return doc.site == node.value
        if node.name == "channel":
            return doc.channel == node.value
        if node.name == "tag":
            return node.value in doc.tags
        if node.name == "agent":
            return node.value in doc.agent_ids
        if node.name == "visitor":
            return doc.visitor_hash == node.value
        return _language_is(doc.language, node.value)
    if isinstance(node, StartedIn):
        return (node.start is None or view.started >= iso_utc(node.start)) and (node.end is None or view.started < iso_utc(node.end))
    if isinstance(node, All):
        return all(matches(child, view, columns) for child in node.children)
    if isinstance(node, AnyOf):
        return any(matches(child, view, columns) for child in node.children)
    if isinstance(node, Without):
        return not matches(node.child, view, columns)
    if isinstance(node, Everything):
        return True
    raise TypeError(f"cannot evaluate {type(node).__name__}")


def plan_matches(plan: Plan, view: DocView) -> bool:
    return view.doc.tenant_id == plan.tenant_id and matches(plan.tree, view, Columns.of(plan))


def _occurrences(leaf: Match | NearMatch, view: DocView, text_columns: list[str]) -> int:
    if isinstance(leaf, Match):
        return sum(len(view.phrase_starts(column, sequence)) for sequence in leaf.sequences for column in text_columns)
    return sum(1 for left, right in leaf.pairs for column in text_columns if _near(view, column, left, right, leaf.distance))


def _score(leaves: list[Match | NearMatch], view: DocView, columns: Columns, document_frequency: list[int], total: int) -> float:
    """tf-idf over the positive word leaves, plus the bonuses of forms and exact spellings."""
    score = 0.0
    for leaf, df in zip(leaves, document_frequency, strict=True):
        tf = _occurrences(leaf, view, columns.text)
        if tf:
            score += (1 + math.log(tf)) * math.log(1 + total / max(df, 1))
        if isinstance(leaf, Match):
            score += FORM_SCORE * _has_form(view, leaf.forms + leaf.typos, columns.forms) + EXACT_BOOST * _has_form(view, leaf.boost, columns.forms)
    return score


class MemoryBackend:
    name = "memory"

    def __init__(self) -> None:
        self._views: dict[UUID, DocView] = {}

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def status(self) -> BackendStatus:
        return BackendStatus(ok=True, detail=f"in memory ({len(self._views)} documents)")

    async def refresh(self) -> None:
        return None

    async def reset(self) -> None:
        self._views.clear()

    async def compaction_due(self) -> bool:
        return False

    async def compact(self) -> CompactReport:
        return CompactReport(bytes_before=0, bytes_after=0, seconds=0.0, detail="in memory: nothing to compact")

    async def index(self, docs: list[IndexDoc]) -> None:
        for doc in docs:
            self._views[doc.conversation_id] = DocView(doc)

    async def delete(self, tenant_id: UUID, conversation_ids: list[UUID]) -> None:
        for cid in conversation_ids:
            view = self._views.get(cid)
            if view is not None and view.doc.tenant_id == tenant_id:
                del self._views[cid]

    def documents(self) -> list[IndexDoc]:
        """What the index holds (tests look for plaintext in it)."""
        return [view.doc for view in self._views.values()]

    async def search(self, plan: Plan) -> SearchPage:
        matched = [view for view in self._views.values() if plan_matches(plan, view)]
        return SearchPage(total=len(matched), hits=_page(plan, matched), facets=_facets(matched, plan.facets))


def _page(plan: Plan, matched: list[DocView]) -> list[ScoredId]:
    cursor: Cursor = plan.cursor
    if plan.sort == "relevance":
        leaves = [leaf for leaf in positive_text(plan.tree) if isinstance(leaf, (Match, NearMatch))]
        columns = Columns.of(plan)
        frequency = [sum(1 for view in matched if _occurrences(leaf, view, columns.text)) for leaf in leaves]
        scored = [(_score(leaves, view, columns, frequency, len(matched)), view) for view in matched]
        scored.sort(key=lambda pair: (pair[0], pair[1].started, str(pair[1].doc.conversation_id)), reverse=True)
        window = scored[cursor.offset: cursor.offset + plan.size]
        return [ScoredId(view.doc.conversation_id, score, view.doc.started_at) for score, view in window]
    descending = plan.sort != "oldest"
    ordered = sorted(matched, key=lambda view: (view.started, str(view.doc.conversation_id)), reverse=descending)
    if cursor.started_at is not None:
        after = (cursor.started_at, cursor.conversation or "")
        ordered = [v for v in ordered if ((v.started, str(v.doc.conversation_id)) < after if descending else (v.started, str(v.doc.conversation_id)) > after)]
    return [ScoredId(view.doc.conversation_id, 0.0, view.doc.started_at) for view in ordered[: plan.size]]


def _top(counts: Counter[str], limit: int) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit])


def _facets(matched: Iterable[DocView], names: tuple[Facet, ...]) -> dict[str, dict[str, int]]:
    """The facets the plan asks for (none: nothing is counted)."""
    if not names:
        return {}
    counts: dict[str, Counter[str]] = {name: Counter() for name in (*FACETS, "day")}
    for view in matched:
        doc = view.doc
        counts["site"][doc.site] += 1
        counts["channel"][doc.channel] += 1
        counts["language"][doc.language] += 1
        counts["agent"].update(set(doc.agent_ids))
        counts["tag"].update(set(doc.tags))
        counts["day"][doc.started_at.astimezone(timezone.utc).date().isoformat()] += 1
    return {name: _top(counts[name], DAY_FACET_LIMIT if name == "day" else FACET_LIMIT) for name in names}
