"""The query language compliance officers type, parsed into a tree with positioned errors.

    refund invoice                 both words (default operator AND)
    refund OR chargeback           either
    refund -test   /  NOT test     exclude
    "card was declined"            phrase (within one message)
    refun*                         prefix (at least 3 characters)
    refund~  refnd~1  chargebak~2  typo tolerant: up to 1 or 2 letters wrong, missing, extra or
                                   swapped (``~`` alone: 1 for 4-7 letters, 2 from 8 letters)
    refund NEAR/5 invoice          within 5 words of each other, either order
    (refund OR return) AND late    grouping
    agent:a-17  visitor:v-123  site:shop  channel:web  tag:vip  lang:nb
    sender:agent refund            the text terms must occur in messages by agents (visitor|agent|bot|system)
    date:2026-01-01..2026-03-31    conversation started in this range (either end may be empty)
    date:>=2026-01-01  date:<2026-02-01

Operators are upper-case (``and``/``or`` in lower case are ordinary words).

The tree knows nothing of HTTP or of the index: search compiles it into an index plan
(``archive.search.plan``), and anything else that speaks the language (supervision policies) can
walk it the same way.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, timezone
from typing import Union

import msgspec

from archive.limits import MAX_QUERY_CHARS, MAX_QUERY_DEPTH, MAX_QUERY_PARTS, date_problem

FIELDS = ("agent", "visitor", "site", "channel", "tag", "lang", "sender", "date")
SENDERS = ("visitor", "agent", "bot", "system")
MAX_EDITS = 2
RELAXED_MIN_LETTERS = 5  # a query without hits retries words this long with typo tolerance


class QuerySyntaxError(Exception):
    def __init__(self, message: str, position: int, query: str) -> None:
        super().__init__(message)
        self.message = message
        self.position = position
        self.query = query

    def __str__(self) -> str:
        return f"{self.message} (at position {self.position})"


class Term(msgspec.Struct, frozen=True, tag=True):
    text: str


class Phrase(msgspec.Struct, frozen=True, tag=True):
    text: str


class Prefix(msgspec.Struct, frozen=True, tag=True):
    text: str


class Fuzzy(msgspec.Struct, frozen=True, tag=True):
    """A word with typo tolerance: ``distance`` edits, or None for the length-based default."""

    text: str
    distance: int | None = None
    position: int = -1  # in the query text, for errors found later (e.g. tolerance turned off)


class Near(msgspec.Struct, frozen=True, tag=True):
    left: Term | Phrase
    right: Term | Phrase
    distance: int


class Field(msgspec.Struct, frozen=True, tag=True):
    name: str
    value: str


class DateRange(msgspec.Struct, frozen=True, tag=True):
    start: datetime | None
    end: datetime | None  # exclusive


class And(msgspec.Struct, frozen=True, tag=True):
    children: list["Node"]


class Or(msgspec.Struct, frozen=True, tag=True):
    children: list["Node"]


class Not(msgspec.Struct, frozen=True, tag=True):
    child: "Node"


class MatchAll(msgspec.Struct, frozen=True, tag=True):
    pass


Node = Union[Term, Phrase, Prefix, Fuzzy, Near, Field, DateRange, And, Or, Not, MatchAll]


class Parsed(msgspec.Struct, frozen=True):
    tree: Node
    senders: tuple[str, ...]  # empty: all senders


_FUZZY = re.compile(r"(?P<text>.+?)~(?P<distance>\d*)")
_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<near>NEAR/(?P<dist>\d+)(?=\s|$))
  | (?P<op>(?:AND|OR|NOT)(?=[\s()"]|$))
  | (?P<minus>-(?=\S))
  | (?P<field>(?P<fname>[A-Za-z]+):(?:"(?P<fquoted>[^"]*)"|(?P<fvalue>[^\s()"]+)))
  | (?P<phrase>"(?P<ptext>[^"]*)")
  | (?P<word>[^\s()"]+)
    """,
    re.VERBOSE,
)


# Quotation marks other than '"' that people type or paste (word processors, mail clients and
# keyboards of languages that quote „so“ or «so»): they delimit phrases like '"'. One character
# each, so positions in errors still point into the query as typed.
_QUOTES = str.maketrans(dict.fromkeys("\u201c\u201d\u201e\u201f\u00ab\u00bb\uff02", '"'))


_WORD_TOKEN = re.compile(r'[^\s()"]+')
_URL_REST = re.compile(r"//[^/\s]")  # what follows the scheme of a web address: https://example.com


class _Tok(msgspec.Struct):
    kind: str
    value: str
    pos: int
    extra: str = ""


def _lex(query: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    query = query.translate(_QUOTES)
    while pos < len(query):
        m = _TOKEN.match(query, pos)
        if m is None:
            if query[pos] == '"':
                raise QuerySyntaxError("unclosed quote", pos, query)
            raise QuerySyntaxError(f"unexpected character {query[pos]!r}", pos, query)
        kind = m.lastgroup or ""
        if m.group("ws"):
            pass
        elif m.group("near"):
            tokens.append(_Tok("near", m.group("dist"), pos))
        elif m.group("op"):
            tokens.append(_Tok(m.group("op").lower(), m.group("op"), pos))
        elif m.group("field") and m.group("fname").lower() in FIELDS and not _URL_REST.match(m.group("fvalue") or ""):
            value = m.group("fquoted") if m.group("fquoted") is not None else m.group("fvalue")
            tokens.append(_Tok("field", value, pos, m.group("fname").lower()))
        elif m.group("field") and m.group("fname").islower() and not _URL_REST.match(m.group("fvalue") or ""):
            raise QuerySyntaxError(f"unknown field {m.group('fname')!r}; fields are {', '.join(FIELDS)}", pos, query)
        elif m.group("field"):
            # A web address (https://…) or a capitalised word before a colon ("Re:", "Ordre:") is
            # text, searched like the words of the message it was copied from.
            word = _WORD_TOKEN.match(query, pos)
            assert word is not None
            tokens.append(_Tok("word", word.group(), pos))
            m = word
        elif m.group("phrase") is not None and kind == "phrase":
            tokens.append(_Tok("phrase", m.group("ptext"), pos))
        elif m.group("minus"):
            tokens.append(_Tok("minus", "-", pos))
        else:
            tokens.append(_Tok(kind, m.group(), pos))
        pos = m.end()
    return tokens


def _day(text: str, pos: int, query: str) -> datetime:
    try:
        if "T" in text:
            value = datetime.fromisoformat(text.replace("Z", "+00:00"))
            value = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        else:
            value = datetime.combine(date.fromisoformat(text), time(), tzinfo=timezone.utc)
    except ValueError:
        raise QuerySyntaxError(f"{text!r} is not a date (use YYYY-MM-DD)", pos, query) from None
    # A day is added to some ends: the range stops short of the calendar's ends (archive.limits).
    problem = date_problem(value)
    if problem is not None:
        raise QuerySyntaxError(f"date {text!r} {problem}", pos, query)
    return value


def _date_range(value: str, pos: int, query: str) -> DateRange:
    one_day = timedelta(days=1)
    if ".." in value:
        start, _, end = value.partition("..")
        found = DateRange(
            start=_day(start, pos, query) if start else None,
            end=(_day(end, pos, query) + (one_day if "T" not in end else timedelta())) if end else None,
        )
        if found.start is not None and found.end is not None and found.end <= found.start:
            raise QuerySyntaxError(f"the date range {value!r} ends where it starts or before (write the earlier date first)", pos, query)
        return found
    for op in (">=", "<=", ">", "<"):
        if value.startswith(op):
            d = _day(value[len(op):], pos, query)
            return {">=": DateRange(d, None), "<=": DateRange(None, d + one_day), ">": DateRange(d + one_day, None), "<": DateRange(None, d)}[op]
    day = _day(value, pos, query)
    return DateRange(day, day + one_day)


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.tokens = _lex(query)
        self.i = 0
        self.nodes = 0
        self.senders: list[str] = []
        self.depth = 0  # parentheses and NOT/- currently open

    def deeper(self, tok: _Tok) -> None:
        self.depth += 1
        if self.depth > MAX_QUERY_DEPTH:
            raise QuerySyntaxError(f"query nests too deeply: at most {MAX_QUERY_DEPTH} parentheses and NOT/- inside each other", tok.pos, self.query)

    def peek(self) -> _Tok | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self) -> _Tok:
        tok = self.tokens[self.i]
        self.i += 1
        self.nodes += 1
        if self.nodes > MAX_QUERY_PARTS:
            raise QuerySyntaxError(f"query is too complex: at most {MAX_QUERY_PARTS} words, operators and fields", tok.pos, self.query)
        return tok

    def end_pos(self) -> int:
        return len(self.query)

    def parse(self) -> Node:
        if not self.tokens:
            return MatchAll()
        node = self.or_expr()
        tok = self.peek()
        if tok is not None:
            raise QuerySyntaxError("unexpected ')'" if tok.kind == "rparen" else f"unexpected {tok.value!r}", tok.pos, self.query)
        return node

    def or_expr(self) -> Node:
        children = [self.and_expr()]
        while (tok := self.peek()) is not None and tok.kind == "or":
            self.take()
            children.append(self.and_expr())
        return children[0] if len(children) == 1 else Or(children)

    def and_expr(self) -> Node:
        children = [self.unary()]
        while (tok := self.peek()) is not None and tok.kind not in ("or", "rparen"):
            if tok.kind == "and":
                self.take()
            children.append(self.unary())
        children = [c for c in children if not isinstance(c, MatchAll)] or [MatchAll()]
        return children[0] if len(children) == 1 else And(children)

    def unary(self) -> Node:
        tok = self.peek()
        if tok is None:
            raise QuerySyntaxError("the query ends where a term was expected", self.end_pos(), self.query)
        if tok.kind in ("not", "minus"):
            self.take()
            self.deeper(tok)
            node = Not(self.unary())
            self.depth -= 1
            return node
        return self.primary()

    def primary(self) -> Node:
        tok = self.peek()
        assert tok is not None
        if tok.kind == "lparen":
            self.take()
            self.deeper(tok)
            node = self.or_expr()
            close = self.peek()
            if close is None or close.kind != "rparen":
                raise QuerySyntaxError("missing ')'", tok.pos, self.query)
            self.take()
            self.depth -= 1
            return node
        if tok.kind in ("rparen", "and", "or", "near"):
            raise QuerySyntaxError(f"{tok.value!r} needs a term before it", tok.pos, self.query)
        node = self.atom()
        while (nxt := self.peek()) is not None and nxt.kind == "near":
            self.take()
            if not isinstance(node, (Term, Phrase)):
                raise QuerySyntaxError("NEAR joins two words or phrases", nxt.pos, self.query)
            right_tok = self.peek()
            if right_tok is None:
                raise QuerySyntaxError("NEAR needs a word or phrase after it", self.end_pos(), self.query)
            right = self.atom()
            if not isinstance(right, (Term, Phrase)):
                raise QuerySyntaxError("NEAR joins two words or phrases", right_tok.pos, self.query)
            node = Near(node, right, int(nxt.value))
        return node

    def atom(self) -> Node:
        tok = self.take()
        if tok.kind == "phrase":
            if not tok.value.strip():
                raise QuerySyntaxError("empty phrase", tok.pos, self.query)
            return Phrase(tok.value)
        if tok.kind == "field":
            return self.field(tok)
        if tok.kind == "word":
            if "~" in tok.value:
                return self.fuzzy(tok)
            if tok.value.endswith("*"):
                stem = tok.value.rstrip("*")
                if len(stem) < 3:
                    raise QuerySyntaxError("a prefix needs at least 3 characters before '*'", tok.pos, self.query)
                return Prefix(stem)
            return Term(tok.value)
        raise QuerySyntaxError(f"unexpected {tok.value!r}", tok.pos, self.query)

    def fuzzy(self, tok: _Tok) -> Node:
        m = _FUZZY.fullmatch(tok.value)
        if m is None or "*" in m.group("text"):
            raise QuerySyntaxError("'~' follows a whole word, as in refund~ or refund~1", tok.pos, self.query)
        distance = int(m.group("distance")) if m.group("distance") else None
        if distance is not None and not 1 <= distance <= MAX_EDITS:
            raise QuerySyntaxError(f"typo tolerance is 1 or 2 edits (refund~1, refund~2), not {distance}", tok.pos, self.query)
        return Fuzzy(m.group("text"), distance, tok.pos)

    def field(self, tok: _Tok) -> Node:
        name, value = tok.extra, tok.value
        if not value:
            raise QuerySyntaxError(f"{name}: needs a value", tok.pos, self.query)
        if name == "date":
            return _date_range(value, tok.pos, self.query)
        if name == "sender":
            value = value.lower()
            if value not in SENDERS:
                raise QuerySyntaxError(f"sender: is one of {', '.join(SENDERS)}", tok.pos, self.query)
            self.senders.append(value)
            return MatchAll()
        return Field(name, value)


def parse(query: str) -> Parsed:
    if len(query) > MAX_QUERY_CHARS:
        raise QuerySyntaxError(f"query is too long: at most {MAX_QUERY_CHARS} characters", MAX_QUERY_CHARS, query[:40] + "…")
    parser = _Parser(query)
    tree = parser.parse()
    if _only_unsearchable_text(tree) and not parser.senders:
        # "😡" or "?!" alone would otherwise be an empty query, which lists the whole archive:
        # not what someone who typed something wanted, and a hold or an export would cover it all.
        first = next((t.pos for t in parser.tokens if t.kind in ("word", "phrase")), 0)
        raise QuerySyntaxError(
            "nothing in the query can be searched for: emoji and punctuation are not indexed; search for a word", first, query
        )
    return Parsed(tree=tree, senders=tuple(sorted(set(parser.senders))))


_SEARCHABLE = re.compile(r"\w")  # what the analyzer makes words of (archive/analysis.py: words)


def _only_unsearchable_text(tree: Node) -> bool:
    """Text in the query, none of it with a letter or digit in it, and no field either (``sender:``
    is not in the tree: the caller checks it)."""
    texts: list[str] = []
    fields = False

    def walk(node: Node) -> None:
        nonlocal fields
        if isinstance(node, (Term, Phrase, Prefix, Fuzzy)):
            texts.append(node.text)
        elif isinstance(node, Near):
            texts.extend([node.left.text, node.right.text])
        elif isinstance(node, (Field, DateRange)):
            fields = True
        elif isinstance(node, (And, Or)):
            for child in node.children:
                walk(child)
        elif isinstance(node, Not):
            walk(node.child)

    walk(tree)
    return bool(texts) and not fields and not any(_SEARCHABLE.search(t) for t in texts)


def relax_for_typos(tree: Node) -> Node | None:
    """The same query with typo tolerance on every plain word of RELAXED_MIN_LETTERS or more that
    is not negated (what a search without hits retries); None when no word qualifies."""
    changed = False

    def walk(node: Node) -> Node:
        nonlocal changed
        if isinstance(node, Term) and sum(c.isalpha() for c in node.text) >= RELAXED_MIN_LETTERS and node.text.isalpha():
            changed = True
            return Fuzzy(node.text)
        if isinstance(node, And):
            return And([walk(c) for c in node.children])
        if isinstance(node, Or):
            return Or([walk(c) for c in node.children])
        return node  # phrases, prefixes, NEAR, fields, and everything under NOT stay exact

    relaxed = walk(tree)
    return relaxed if changed else None
