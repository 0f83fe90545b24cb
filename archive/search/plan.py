"""The backend-neutral search plan: the parsed query with every word replaced by its keyed
tokens, plus filters, sort and page. Both backends compile exactly this, so they agree."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Callable, Literal, Union
from uuid import UUID

import msgspec

from archive import query as q
from archive.analysis import Analyzer, words

SENDERS = ("visitor", "agent", "bot", "system")
_APOSTROPHE = re.compile("['\u2019\u02bc]")
_APOSTROPHISED = re.compile("[^\\W\\d_]+(?:['\u2019\u02bc][^\\W\\d_]+)+")
Sort = Literal["relevance", "newest", "oldest"]
Facet = Literal["agent", "site", "channel", "tag", "language", "day"]


def iso_utc(value: datetime) -> str:
    """The one timestamp format of the index and of cursors (sortable as text)."""
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Match(msgspec.Struct, frozen=True, tag=True):
    """Any of these token sequences as a phrase (a one-token sequence is a term), any of the
    ``forms`` tokens (transliteration keys) in the bag, or a term whose typo neighbourhood holds
    one of the ``typos`` tokens. ``boost`` tokens (exact, unfolded spellings) only raise the score
    of conversations that hold them."""

    sequences: list[list[str]]
    forms: list[str] = []
    boost: list[str] = []
    typos: list[str] = []
    # Terms a typo query meets by their own token (``QueryWord.typo_terms``): only the SQLite
    # backend asks for them, its vocabulary keeping deletions only; OpenSearch's bag and the
    # memory backend hold each term's own neighbourhood token and meet it through ``typos``.
    typo_terms: list[str] = []


class PrefixMatch(msgspec.Struct, frozen=True, tag=True):
    """A word whose prefix path starts with ``token`` (see ``Analyzer.path``)."""

    token: str


class NearMatch(msgspec.Struct, frozen=True, tag=True):
    """Per language, a (left, right) pair of sequences within ``distance`` tokens."""

    pairs: list[tuple[list[str], list[str]]]
    distance: int


class FieldIs(msgspec.Struct, frozen=True, tag=True):
    name: Literal["agent", "visitor", "site", "channel", "tag", "lang"]
    value: str


class StartedIn(msgspec.Struct, frozen=True, tag=True):
    start: datetime | None
    end: datetime | None


class All(msgspec.Struct, frozen=True, tag=True):
    children: list["PlanNode"]


class AnyOf(msgspec.Struct, frozen=True, tag=True):
    children: list["PlanNode"]


class Without(msgspec.Struct, frozen=True, tag=True):
    child: "PlanNode"


class Everything(msgspec.Struct, frozen=True, tag=True):
    pass


PlanNode = Union[Match, PrefixMatch, NearMatch, FieldIs, StartedIn, All, AnyOf, Without, Everything]
TEXT_NODES = (Match, PrefixMatch, NearMatch)


class Cursor(msgspec.Struct, frozen=True, omit_defaults=True):
    offset: int = 0
    started_at: str | None = None
    conversation: str | None = None


class Plan(msgspec.Struct, frozen=True):
    tenant_id: UUID
    tree: PlanNode
    senders: tuple[str, ...]
    sort: Sort
    size: int
    cursor: Cursor
    facets: tuple[Facet, ...] = ()  # counted over the whole result only when asked for

    def text_columns(self) -> list[str]:
        return [f"t_{s}" for s in (self.senders or SENDERS)]

    def bag_columns(self) -> list[str]:
        return [f"f_{s}" for s in (self.senders or SENDERS)]


class TypoToleranceOff(Exception):
    """A query asked for typo tolerance (``~``) where the tenant has it turned off."""

    def __init__(self, position: int) -> None:
        super().__init__("typo tolerance (~) is turned off for this tenant (tenant setting typo_tolerance)")
        self.position = position


# A macrolanguage's tag names its members too: Norwegian ("no") is written as Bokmål ("nb") or
# Nynorsk ("nn"), and chat platforms tag it any of the three ways.
MACROLANGUAGES = {"no": ("no", "nb", "nn")}


def field_is(name: str, value: str) -> PlanNode:
    """``name:value`` as a plan: one FieldIs, or for ``lang:`` of a macrolanguage its members."""
    members = MACROLANGUAGES.get(value.lower()) if name == "lang" else None
    if members:
        return AnyOf([FieldIs("lang", member) for member in members])
    return FieldIs(name, value)  # type: ignore[arg-type]


def compile_query(parsed: q.Node, analyzer: Analyzer, languages: list[str], hash_visitor: Callable[[str], str]) -> PlanNode:
    """Replace words by tokens; ``hash_visitor`` turns a visitor id into its stored keyed hash."""

    def text(value: str, distance: int | None = 0) -> PlanNode:
        if len(words(value)) > 1:
            sequences = analyzer.phrase_alternatives(value, languages)
            if _APOSTROPHISED.fullmatch(value):  # den'gi, dal’neyshiy: also one Cyrillic word typed in Latin
                joined = _APOSTROPHE.sub("'", value)
                return Match(sequences, analyzer.typing_forms(joined, languages))
            return Match(sequences)
        word = analyzer.query_word(value, languages, distance)
        if not word.terms:
            return Everything()
        return Match([[t] for t in word.terms], forms=word.forms, boost=word.boost, typos=word.typos, typo_terms=word.typo_terms)

    def fuzzy(node: q.Fuzzy) -> PlanNode:
        if not analyzer.typo_tolerance:
            raise TypoToleranceOff(node.position)
        return text(node.text, node.distance)  # None: by each reading's length

    def near_side(node: q.Term | q.Phrase, language: str) -> list[str]:
        return analyzer.near_side(node.text, language)

    def walk(node: q.Node) -> PlanNode:
        if isinstance(node, (q.Term, q.Phrase)):
            return text(node.text)
        if isinstance(node, q.Fuzzy):
            return fuzzy(node)
        if isinstance(node, q.Prefix):
            token = analyzer.prefix_token(node.text)
            joined: PlanNode = PrefixMatch(token) if token else Everything()
            parts = words(node.text)
            last = analyzer.prefix_token(parts[-1]) if len(parts) > 1 else None
            if last is None:
                return joined
            # e-post*, chat-støt*: the analyzer keeps a hyphenated word as its parts, so the prefix
            # is the words before it as a phrase and a word starting with the last part (in one
            # conversation: paths have no positions), or the parts written as one word (epost…).
            split = All([text(" ".join(parts[:-1])), PrefixMatch(last)])
            return AnyOf([joined, split]) if token else split
        if isinstance(node, q.Near):
            pairs = {(tuple(near_side(node.left, lang)), tuple(near_side(node.right, lang))) for lang in [*languages, ""]}
            return NearMatch(sorted((list(a), list(b)) for a, b in pairs if a and b), node.distance)
        if isinstance(node, q.Field):
            value = hash_visitor(node.value) if node.name == "visitor" else node.value
            return field_is(node.name, value)
        if isinstance(node, q.DateRange):
            return StartedIn(node.start, node.end)
        if isinstance(node, q.And):
            children: list[PlanNode] = [c for c in (walk(c) for c in node.children) if not isinstance(c, Everything)]
            return All(children) if len(children) > 1 else (children[0] if children else Everything())
        # A word with nothing searchable in it (emoji, punctuation: no token) compiles to
        # Everything and is left out, as in AND: `refund OR 😡` and `refund -😡` mean `refund`,
        # not the whole archive and not nothing.
        if isinstance(node, q.Or):
            alternatives: list[PlanNode] = [c for c in (walk(c) for c in node.children) if not isinstance(c, Everything)]
            return AnyOf(alternatives) if len(alternatives) > 1 else (alternatives[0] if alternatives else Everything())
        if isinstance(node, q.Not):
            child = walk(node.child)
            return Everything() if isinstance(child, Everything) else Without(child)
        return Everything()

    return walk(parsed)


def and_filters(tree: PlanNode, filters: list[PlanNode]) -> PlanNode:
    nodes: list[PlanNode] = [n for n in [tree, *filters] if not isinstance(n, Everything)]
    if not nodes:
        return Everything()
    return nodes[0] if len(nodes) == 1 else All(nodes)


def positive_text(node: PlanNode) -> list[PlanNode]:
    """Text leaves that contribute to relevance (not under a negation)."""
    if isinstance(node, TEXT_NODES):
        return [node]
    if isinstance(node, (All, AnyOf)):
        return [leaf for child in node.children for leaf in positive_text(child)]
    return []


def positive_tokens(node: PlanNode) -> set[str]:
    tokens: set[str] = set()
    for leaf in positive_text(node):
        if isinstance(leaf, Match):
            tokens.update(t for seq in leaf.sequences for t in seq)
            tokens.update(leaf.forms)
            tokens.update(leaf.boost)
            tokens.update(leaf.typos)
        elif isinstance(leaf, NearMatch):
            tokens.update(t for a, b in leaf.pairs for t in (*a, *b))
    return tokens


def positive_paths(node: PlanNode) -> tuple[str, ...]:
    """Prefix paths of the prefix queries that contribute to relevance (for highlighting)."""
    return tuple(sorted({leaf.token for leaf in positive_text(node) if isinstance(leaf, PrefixMatch)}))
