"""The embedded index: SQLite FTS5 in its own file (``<data dir>/search.sqlite3``), through apsw.

The index is derived data, rebuilt from the store by ``parley index rebuild``; its schema carries a
version in ``PRAGMA user_version`` and is recreated empty (then refilled through the outbox or a
rebuild) when that version changes. A separate file keeps index writes off the store's write lock.

Why apsw: the FTS5 tables are *contentless* (``content=''``: the index keeps no copy of the token
text — highlights come from the decrypted conversation) and must still delete rows when retention
or erasure removes a conversation, which needs ``contentless_delete`` (SQLite 3.43+). The standard
library's ``sqlite3`` links the system SQLite (3.40 on Debian 12); apsw's wheels bundle a current
one. Only this file uses it; the store stays on Piccolo's driver.

Tables:

* ``search_doc``: one row per conversation — tenant (a small integer, ``search_tenant``), filter
  columns, ``started_at`` in microseconds, its facet group; the rowid follows the start time
  (``_free_rowid``), and the index ``(tenant, started_at, conversation)`` is walked backwards for
  newest-first with the LIMIT pushed down.
* ``search_facet``: facet groups — the distinct (site, channel, language, day, agents and tags)
  of a tenant; facets count matches per group.
* ``search_label``: agent ids and tags, one row each (the agent: and tag: filters).
* ``search_fts``: ``t_<sender>`` terms with positions (phrases, NEAR, BM25).
* ``search_bag``: no positions: prefix paths (a prefix query is a token-prefix query), exact
  spellings, typing keys — each once per conversation, marked with the senders who wrote it
  (``BagLayout``).
* ``search_typo``: the typo vocabulary, one row per term (its rowid is the term's first 32 bits,
  ``TypoLayout``) whose text is the term's deletion neighbourhood — written once per term rather
  than once per conversation; a typo query matches its deletions here and then the terms in
  ``search_fts``.

A query becomes SQL around FTS ``MATCH`` sub-selects. Writes commit once per batch (the drain
hands over up to 1,000 conversations). ``synchronous`` stays FULL: the drain deletes its outbox
rows right after the commit, so a commit that a power cut could undo (NORMAL) would leave nothing
to replay — and at 1,000 conversations per commit the one fsync costs nothing measurable
(docs/search.md, "Index cost").
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import threading
import time
from collections import Counter
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TypeVar
from uuid import UUID

import apsw
import structlog

from archive.analysis import ANALYZER_VERSION, PATH_MARK, PATH_ROOT_DIGITS, PATH_STEP_DIGITS
from archive.search.backend import BackendStatus, CompactReport, IndexDoc, ScoredId, SearchPage
from archive.search.plan import (
    SENDERS,
    All,
    AnyOf,
    Everything,
    FieldIs,
    Match,
    NearMatch,
    Plan,
    PlanNode,
    PrefixMatch,
    StartedIn,
    Without,
    positive_text,
)

SCHEMA_VERSION = 5
TEXT_COLUMNS = [f"t_{s}" for s in SENDERS]
BAG_COLUMNS = [f"f_{s}" for s in SENDERS]
FTS_TABLES = ("search_fts", "search_bag", "search_typo")
TABLES = ("search_meta", "search_typo", "search_bag", "search_fts", "search_label", "search_doc", "search_facet", "search_tenant",
          # schema version 3
          "search_forms", "search_prefix")
# Ranking: conversations matched through a form (a transliteration, a typo) score this much per
# query word; holding the exact, unfolded spelling adds EXACT_BOOST.
FORM_SCORE = 1.0
EXACT_BOOST = 3.0
FACET_LIMIT = 50
DAY_LIMIT = 366
# Newest/oldest first: up to this many matches are sorted; with more, the time index is walked
# from the newest end and stops after one page (about size × tenant / matches rows).
SORT_LIMIT = 2000
WALK_CHUNK = 64  # the first chunk of the time index a newest-first walk reads
WALK_SPREAD = 16  # ... and walks only when their rowid range holds fewer than this many times as many
# Relevance reads this many scores past the page: a tie running beyond them is read whole.
TIE_MARGIN = 32
KNOWN_TERMS_LIMIT = 500_000  # terms whose typo neighbourhood this process has already written
CACHE_KIB = 65536
WAL_LIMIT_BYTES = 16 << 20
INCREMENTAL_VACUUM = 2  # PRAGMA auto_vacuum
# A drain that empties the outbox compacts the index when this much was written since the last
# compaction: at least COMPACT_AFTER conversations and COMPACT_SHARE of what the index holds (a
# bulk load, a backlog after an outage). Each drain batch is a segment of every FTS table, and
# FTS5's own merging leaves them in several, which repeat each term's entry: what drains wrote
# takes ~20 % more space than compacted (bench corpus). With a fifth of the index at most left
# uncompacted, the file stays within ~4 % of compacted; a compaction rewrites the whole index
# (~30 µs per conversation held), so the share also bounds its cost per conversation written
# (~150 µs, against ~2 ms to index one).
COMPACT_AFTER = 10_000
COMPACT_SHARE = 0.2
_CONTENTLESS = "content='', contentless_delete=1, tokenize='ascii'"
SCHEMA = [
    # Facts about the file itself; ``upgraded_from``: the schema version whose tables an upgrade
    # dropped, kept until the next reset (``parley index rebuild``) so status can say one is due.
    "CREATE TABLE search_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS search_tenant (id INTEGER PRIMARY KEY, tenant BLOB NOT NULL UNIQUE)",
    """CREATE TABLE search_doc (
        rowid INTEGER PRIMARY KEY, tenant INTEGER NOT NULL, conversation BLOB NOT NULL UNIQUE,
        site TEXT NOT NULL, channel TEXT NOT NULL, language TEXT NOT NULL, started_at INTEGER NOT NULL,
        visitor_hash TEXT NOT NULL, facet INTEGER NOT NULL)""",
    "CREATE INDEX search_doc_tenant_started ON search_doc (tenant, started_at, conversation)",
    "CREATE INDEX search_doc_tenant_facet ON search_doc (tenant, facet)",
    # The facet values of a conversation, shared by every conversation that has the same ones
    # (site, channel, language, day, agents and tags as JSON): facets count conversations per
    # ``search_doc.facet`` — one small integer — and read the values of each group once.
    """CREATE TABLE search_facet (
        id INTEGER PRIMARY KEY, tenant INTEGER NOT NULL, site TEXT NOT NULL, channel TEXT NOT NULL,
        language TEXT NOT NULL, day INTEGER NOT NULL, labels TEXT NOT NULL,
        UNIQUE (tenant, site, channel, language, day, labels))""",
    # Read only by (doc, kind, value): the key is the table (files created before kept a rowid
    # table and an index repeating it, twice the size).
    """CREATE TABLE search_label (doc INTEGER NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL,
        PRIMARY KEY (doc, kind, value)) WITHOUT ROWID""",
    f"CREATE VIRTUAL TABLE search_fts USING fts5({', '.join(TEXT_COLUMNS)}, {_CONTENTLESS}, detail=full)",
    # The bag in the ``sets`` layout (``BagLayout``); files created before it have one column per sender.
    f"CREATE VIRTUAL TABLE search_bag USING fts5(f, {_CONTENTLESS}, detail=none)",
    # Never deleted from (see the threat model in docs/search.md), so without the per-row sizes
    # that contentless_delete keeps (a tenth of the vocabulary's size); a term written again adds
    # the same postings under the same rowid, which FTS5 keeps once.
    "CREATE VIRTUAL TABLE search_typo USING fts5(deletions, content='', columnsize=0, tokenize='ascii', detail=none)",
]
DAY_MICROS = 86_400_000_000
FACET_GROUPS_LIMIT = 100_000  # facet groups whose id this process remembers
# Facets over a match set this share of the tenant or more walk the tenant's (tenant, facet)
# index, which is already grouped, instead of grouping the matches.
DENSE_FACETS = 0.25

T = TypeVar("T")
log = structlog.get_logger(__name__)


TENANT_SHIFT = 40  # a conversation's rowid: tenant << 40 | position (2^40 per tenant)
# The position: seconds since ROWID_EPOCH << slot bits | slot. Files created from this release on
# use no slot bits (one rowid per second, search_meta rowid_layout = 'seconds'): FTS5 stores each
# doclist entry as the varint gap to the previous rowid, and with 256 slots per second a term in
# conversations a minute apart cost a 2-byte gap instead of 1 — a byte on most of the ~17 million
# entries of a million messages, 7 % of the file. Older files keep their 8 slot bits until
# ``parley index rebuild`` recreates them; both layouts follow time, which is all searches need.
SLOT_BITS = {"seconds": 0, "slots": 8}
ROWID_LAYOUT = "seconds"
ROWID_EPOCH = 946_684_800  # 2000-01-01T00:00:00Z
# A taken second: the first free rowid among the next NEARBY seconds (a burst lands a few
# seconds later, still in time order), else the one after the tenant's newest.
NEARBY = 64


def tenant_rowids(tenant: int) -> tuple[int, int]:
    """The rowid range of a tenant's conversations in every table of the file. Searches read FTS
    doclists inside it, so they never touch another tenant's rows and need no join to tell."""
    return tenant << TENANT_SHIFT, ((tenant + 1) << TENANT_SHIFT) - 1


def _free_rowid(conn: apsw.Connection, tenant: int, started_at: datetime, slot_bits: int) -> int:
    """A rowid for a conversation of ``tenant`` that started at ``started_at``: rowids follow
    start times, whatever order conversations arrive in — live, imported or rebuilt — which is
    what lets newest-first walk time and rowids together (``_Query.walk``). A taken second gives
    the first free rowid shortly after it, else the one after the tenant's newest."""
    low, high = tenant_rowids(tenant)
    second = min(max(int(started_at.timestamp()) - ROWID_EPOCH, 0), (high - low) >> slot_bits)
    base = low + (second << slot_bits)
    near = min(base + (NEARBY << slot_bits) - 1, high)
    taken = {r[0] for r in _rows(conn, "SELECT rowid FROM search_doc WHERE rowid BETWEEN ? AND ?", (base, near))}
    if len(taken) <= near - base:
        return next(r for r in range(base, near + 1) if r not in taken)
    rowid = int(_rows(conn, "SELECT max(rowid) FROM search_doc WHERE rowid BETWEEN ? AND ?", (base, high))[0][0]) + 1
    if rowid > high:  # the tenant's range is used up to its last second
        raise RuntimeError("no rowid left for this start time in the tenant's range")
    return rowid


def _packed(visitor_hash: str) -> bytes | str:
    """A visitor hash (hex) as its bytes: half the size in every row of ``search_doc``."""
    try:
        return bytes.fromhex(visitor_hash)
    except ValueError:  # not hex: kept as it is
        return visitor_hash


def _micros(value: datetime) -> int:
    return int(value.astimezone(timezone.utc).timestamp() * 1_000_000)


def _from_micros(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1_000_000, timezone.utc)


def _iso_micros(text: str) -> int:
    return _micros(datetime.fromisoformat(text.replace("Z", "+00:00")))


class TypoLayout:
    """How the typo vocabulary (``search_typo``) stores a term's deletion neighbourhood: each
    deletion as a key, the term as the row's rowid. Recorded per file in ``search_meta``
    (``typo_layout``); files created before it was recorded are ``wide`` until ``parley index
    rebuild`` recreates them.

    * ``narrow`` (files from this release on): a deletion is its first 40 bits in base32 (8
      characters), the row is the term's first 32 bits, and a typo query asks ``search_fts`` for
      the terms that start with them (``…*``). Most deletions belong to one term, so an entry is
      mostly its key and its rowid: on the benchmark corpus the vocabulary is a third smaller
      than ``wide``. The price is in precision, and small: a term sharing its first 32 bits with
      an expanded one (odds ~1e-4 per expanded term at a million terms) or a query's deletion
      meeting a stranger's 40-bit key (~1e-5 per typo query) lets a typo query also find that
      term — typo matching is approximate by nature, and far less precise than that already.
    * ``wide``: a deletion is its first 48 bits in hex, the row the term's 56 bits, and an
      expansion names the exact terms."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.narrow = name == "narrow"

    def key(self, token: str) -> str:
        """A deletion's hashed token → its vocabulary key."""
        if self.narrow:
            return base64.b32hexencode(bytes.fromhex(token[:10])).decode().lower()
        return token[:12]

    def row(self, term: str) -> int:
        return int(term[:8], 16) if self.narrow else int(term, 16)

    def terms(self, row: int) -> str:
        """A vocabulary row → the MATCH alternative for its term(s) in ``search_fts``."""
        return f"{row:08x}*" if self.narrow else format(row, "014x")


TYPO_LAYOUT = "narrow"
PATH_SET_DIGITS = 5  # hex digits per letter after the first three, in the sets layout
NARROWED_LIMIT = 200_000
SET_DIGITS = [format(n, "x") for n in range(16)]
SENDER_BITS = {f"f_{sender}": 1 << i for i, sender in enumerate(SENDERS)}
ALL_SENDERS = (1 << len(SENDERS)) - 1
NO_MATCH = "x"  # a token no bag holds (bag tokens are hex, or a path starting with "p")


def _narrow_path(token: str) -> str:
    """A prefix path (``Analyzer.path``) with each block after the first cut to 5 hex digits."""
    if not token.startswith(PATH_MARK):
        return token
    head, rest = token[:1 + PATH_ROOT_DIGITS], token[1 + PATH_ROOT_DIGITS:]
    return head + "".join(rest[i:i + PATH_SET_DIGITS] for i in range(0, len(rest), PATH_STEP_DIGITS))


class BagLayout:
    """How ``search_bag`` keeps a conversation's bag tokens (prefix paths, exact spellings,
    typing keys). Recorded per file in ``search_meta`` (``bag_layout``); files created before it
    was recorded are ``columns`` until ``parley index rebuild`` recreates them.

    * ``sets`` (files from this release on): one column, ``detail=none``; each token once per
      conversation, followed by one hex digit: the set of senders who wrote it (visitor 1,
      agent 2, bot 4, system 8). A search over every sender asks for the token as a prefix
      (``tok*``: any set), one over some senders for the sets that include one of them, and a
      prefix query over some senders reads the candidate paths from the term dictionary
      (``fts5vocab``) and keeps those whose set fits. Prefix paths keep 20 bits per letter after
      the first three (24 in the analyzer, and on OpenSearch): a prefix's few dozen next letters
      still get blocks of their own (a collision, about one in a vocabulary of a million paths,
      would let a prefix also find a sibling's words). On the benchmark corpus the bag is a
      fifth smaller than ``columns``, where each posting also stored its column.
    * ``columns``: one column per sender (``f_<sender>``), ``detail=column``, the analyzer's
      paths as they are."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sets = name == "sets"
        self.columns = ["f"] if self.sets else BAG_COLUMNS
        self._narrowed: dict[str, str] = {}  # path → its narrow form: most words recur

    def row(self, columns: dict[str, str]) -> tuple[str, ...]:
        """A document's ``f_<sender>`` columns → the values of this layout's columns. (Sets
        are marked with set operations: a conversation has a few hundred bag tokens, nearly all
        written by the visitor, the agent or both, and this runs for every conversation indexed.)"""
        if not self.sets:
            return tuple(columns.get(c, "") for c in BAG_COLUMNS)
        written = [(set(self._narrow(text.split())), bit) for column, bit in SENDER_BITS.items() if (text := columns.get(column))]
        if not written:
            return ("",)
        if len(written) == 1:
            tokens, bit = written[0]
            return (" ".join([t + SET_DIGITS[bit] for t in tokens]),)
        if len(written) == 2:
            (first, bit1), (second, bit2) = written
            both = first & second
            parts = [[t + SET_DIGITS[bit1] for t in first - both], [t + SET_DIGITS[bit2] for t in second - both],
                     [t + SET_DIGITS[bit1 | bit2] for t in both]]
            return (" ".join(itertools.chain.from_iterable(parts)),)
        everyone: set[str] = set().union(*(tokens for tokens, _ in written))
        return (" ".join([t + SET_DIGITS[sum(bit for tokens, bit in written if t in tokens)] for t in everyone]),)

    def _narrow(self, tokens: list[str]) -> list[str]:
        """Bag tokens with their paths narrowed, through a cache read at C speed (``map``): the
        tokens of a conversation are mostly ones seen before."""
        narrowed = self._narrowed
        found = list(map(narrowed.get, tokens))
        if None in found:
            if len(narrowed) > NARROWED_LIMIT:
                narrowed.clear()
            for i, token in enumerate(tokens):
                if found[i] is None:
                    found[i] = narrowed[token] = _narrow_path(token)
        return found  # type: ignore[return-value]  # no None left

    def exact(self, tokens: list[str], columns: list[str]) -> str:
        """MATCH: any of ``tokens``, written by a sender of ``columns``."""
        if not self.sets:
            return f"{_columns(columns)} : ({' OR '.join(tokens)})"
        wanted = _sender_set(columns)
        if wanted == ALL_SENDERS:
            return "(" + " OR ".join(f"{t}*" for t in tokens) + ")"
        return "(" + " OR ".join(f"{t}{found:x}" for t in tokens for found in range(1, ALL_SENDERS + 1) if found & wanted) + ")"

    def prefix(self, token: str, columns: list[str], conn: apsw.Connection) -> str:
        """MATCH: a word whose prefix path starts with ``token``, written by a sender of ``columns``."""
        if not self.sets:
            return f"{_columns(columns)} : {token}*"
        token, wanted = _narrow_path(token), _sender_set(columns)
        if wanted == ALL_SENDERS:
            return f"{token}*"
        # The term dictionary, per connection (a temp table): paths are hex after the "p", so every
        # token starting with this path sorts below path + "g".
        conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.bag_terms USING fts5vocab(main, search_bag, row)")
        found = [t for (t,) in conn.execute("SELECT term FROM temp.bag_terms WHERE term >= ? AND term < ?", (token, token + "g"))
                 if int(t[-1], 16) & wanted]
        return "(" + " OR ".join(found or [NO_MATCH]) + ")"


def _sender_set(columns: list[str]) -> int:
    found = 0
    for column in columns:
        found |= SENDER_BITS[column]
    return found


BAG_LAYOUT = "sets"


def _quote(tokens: list[str]) -> str:
    return '"' + " ".join(tokens) + '"'


def _columns(columns: list[str]) -> str:
    return "{" + " ".join(columns) + "}"


def text_only(node: PlanNode) -> bool:
    """Whether ``node`` can be answered from the FTS tables alone: text leaves under AND/OR, and
    AND NOT inside an AND that keeps something."""
    if isinstance(node, (Match, NearMatch, PrefixMatch)):
        return True
    if isinstance(node, AnyOf):
        return all(text_only(c) for c in node.children)
    if isinstance(node, All):
        kept = [c for c in node.children if not isinstance(c, Without)]
        return bool(kept) and all(text_only(c) for c in kept) and all(
            text_only(c.child) for c in node.children if isinstance(c, Without))
    return False


def scored_alike(node: PlanNode) -> bool:
    """Whether relevance scores every match of ``node`` and nothing else: words and phrases
    under OR only. A word's matches are its terms, typo expansions and forms, and each of them
    gets a score (BM25 or a form bonus); a prefix gets none, and AND / NOT make the scored set
    wider than the matches. Then the matches are the scored rows, and need no second read."""
    if isinstance(node, (Match, NearMatch)):
        return True
    if isinstance(node, AnyOf):
        return all(scored_alike(c) for c in node.children)
    return False


class _Compiler:
    """PlanNode → SQL over ``search_doc d``. Text leaves become FTS MATCH sub-selects; an AND or
    OR whose children all live in one FTS table is merged into one MATCH expression. ``expand``
    turns typo tokens into the terms they were cut from (the vocabulary lookup)."""

    def __init__(self, plan: Plan, expand: Callable[[list[str]], list[str]], bounds: tuple[int, int],
                 bag_prefix: Callable[[str, list[str]], str], bag: BagLayout) -> None:
        self.plan = plan
        self.expand = expand
        self.bag_prefix, self.bag = bag_prefix, bag
        self.bounds = bounds  # the tenant's rowids: every FTS read stays inside them
        self.params: list[Any] = []

    def text_match(self, node: Match) -> str:
        alternatives = [_quote(seq) for seq in [*node.sequences, *([t] for t in node.typo_terms)]] + self.expand(node.typos)
        return f"{_columns(self.plan.text_columns())} : ({' OR '.join(alternatives)})"

    def bag_match(self, tokens: list[str]) -> str:
        return self.bag.exact(tokens, self.plan.bag_columns())

    def fts(self, node: PlanNode) -> tuple[str, str] | None:
        """(table, MATCH expression) when ``node`` is expressible in one FTS table."""
        if isinstance(node, Match):
            if node.forms:
                return None  # two tables: see matching()
            return "search_fts", self.text_match(node)
        if isinstance(node, NearMatch):
            body = " OR ".join(f"NEAR({_quote(a)} {_quote(b)}, {node.distance})" for a, b in node.pairs)
            return "search_fts", f"{_columns(self.plan.text_columns())} : ({body})"
        if isinstance(node, PrefixMatch):
            return "search_bag", self.bag_prefix(node.token, self.plan.bag_columns())
        if isinstance(node, (All, AnyOf)):
            parts = [self.fts(c) for c in node.children]
            if all(p is not None for p in parts) and len({p[0] for p in parts if p}) == 1:
                joiner = " AND " if isinstance(node, All) else " OR "
                return parts[0][0], joiner.join(f"({p[1]})" for p in parts if p)  # type: ignore[index]
        return None

    def select(self, table: str, expression: str) -> str:
        self.params += [expression, *self.bounds]
        return f"SELECT rowid FROM {table} WHERE {table} MATCH ? AND rowid BETWEEN ? AND ?"

    def per_table(self, node: PlanNode) -> list[tuple[str, str]] | None:
        """``node`` as alternatives, each one MATCH expression on one FTS table, when it is an
        OR of such (a word with forms is its words in search_fts OR its forms in search_bag)."""
        merged = self.fts(node)
        if merged is not None:
            return [merged]
        if isinstance(node, Match):
            return [("search_fts", self.text_match(node)), ("search_bag", self.bag_match(node.forms))]
        if isinstance(node, AnyOf):
            parts = [self.per_table(c) for c in node.children]
            if all(p is not None for p in parts):
                return [alternative for p in parts if p for alternative in p]
        return None

    def matching(self, node: PlanNode) -> str:
        """A SELECT of the tenant's rowids matching a text-only ``node`` (see ``text_only``),
        from the FTS tables alone: AND is INTERSECT, OR is UNION, AND NOT is EXCEPT. The
        alternatives of an OR are merged into one MATCH per table: FTS5 merges its doclists far
        faster than SQL unions the rows (a word read in five languages is five alternatives)."""
        alternatives = self.per_table(node)
        if alternatives is not None:
            by_table: dict[str, list[str]] = {}
            for table, expression in alternatives:
                by_table.setdefault(table, []).append(expression)
            return " UNION ".join(self.select(table, " OR ".join(f"({e})" for e in expressions))
                                  for table, expressions in by_table.items())
        if isinstance(node, AnyOf):
            return " UNION ".join(f"SELECT rowid FROM ({self.matching(c)})" for c in node.children)
        if isinstance(node, All):
            kept = " INTERSECT ".join(f"SELECT rowid FROM ({self.matching(c)})" for c in node.children if not isinstance(c, Without))
            dropped = "".join(f" EXCEPT SELECT rowid FROM ({self.matching(c.child)})" for c in node.children if isinstance(c, Without))
            return kept + dropped
        raise TypeError(f"not text only: {type(node).__name__}")

    def sql(self, node: PlanNode) -> str:
        """``node`` as a condition on ``search_doc d`` (filters, and text through sub-selects)."""
        if text_only(node):
            return f"d.rowid IN ({self.matching(node)})"
        if isinstance(node, FieldIs):
            return self.field(node)
        if isinstance(node, StartedIn):
            parts = []
            if node.start is not None:
                parts.append("d.started_at >= ?")
                self.params.append(_micros(node.start))
            if node.end is not None:
                parts.append("d.started_at < ?")
                self.params.append(_micros(node.end))
            return "(" + " AND ".join(parts or ["1"]) + ")"
        if isinstance(node, All):
            return "(" + " AND ".join(self.sql(c) for c in node.children) + ")"
        if isinstance(node, AnyOf):
            return "(" + " OR ".join(self.sql(c) for c in node.children) + ")"
        if isinstance(node, Without):
            return f"NOT {self.sql(node.child)}"
        if isinstance(node, Everything):
            return "1"
        raise TypeError(f"cannot compile {type(node).__name__}")

    def field(self, node: FieldIs) -> str:
        self.params.append(node.value)
        if node.name in ("tag", "agent"):
            self.params.insert(len(self.params) - 1, node.name)
            return "EXISTS (SELECT 1 FROM search_label l WHERE l.doc = d.rowid AND l.kind = ? AND l.value = ?)"
        if node.name == "lang":
            self.params.append(node.value.lower() + "-%")
            return "(lower(d.language) = lower(?) OR lower(d.language) LIKE ?)"
        if node.name == "visitor":  # kept as bytes (files written before: as hex text)
            self.params[-1:] = [_packed(node.value), node.value]
            return "d.visitor_hash IN (?, ?)"
        column = {"site": "site", "channel": "channel"}[node.name]
        return f"d.{column} = ?"


class SqliteFtsBackend:
    name = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._conn: apsw.Connection | None = None
        self._tenants: dict[UUID, int] = {}
        self._known_terms: set[int] = set()
        self._facet_groups: dict[tuple[Any, ...], int] = {}
        self._schema_cookie = -1
        self._layout: str | None = None
        self._typo_layout: TypoLayout | None = None
        self._bag_layout: BagLayout | None = None
        self._written = 0  # conversations indexed by this process since the last compaction
        self._held_before: int | None = None  # what the index held before those, counted once

    # Every call runs in a worker thread; one connection, serialised by a lock (FTS5 writes are
    # single-writer anyway, and searches are short).
    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(self._locked, fn, *args)

    def _locked(self, fn: Callable[..., T], *args: Any) -> T:
        with self._lock:
            if self._conn is None:
                self._conn = self._connect()
            self._forget_if_recreated(self._conn)
            return fn(self._conn, *args)

    def _forget_if_recreated(self, conn: apsw.Connection) -> None:
        """Another process may have recreated the tables (``parley index rebuild`` next to a
        running server): the file's schema cookie then changes, and which terms this process
        believes the typo vocabulary holds is void. (Tenant numbers survive a rebuild, see
        ``reset``; they are forgotten too, being cheap to read again.)"""
        cookie = _rows(conn, "PRAGMA main.schema_version")[0][0]
        if cookie != self._schema_cookie:
            self._forget()
            self._schema_cookie = cookie

    def _rowid_layout(self, conn: apsw.Connection) -> str:
        if self._layout is None:
            found = _rows(conn, "SELECT value FROM search_meta WHERE key = 'rowid_layout'")
            self._layout = found[0][0] if found else "slots"  # a file created before the key existed
        return self._layout

    def _typos(self, conn: apsw.Connection) -> TypoLayout:
        if self._typo_layout is None:
            found = _rows(conn, "SELECT value FROM search_meta WHERE key = 'typo_layout'")
            self._typo_layout = TypoLayout(found[0][0] if found else "wide")  # a file created before the key existed
        return self._typo_layout

    def _bag(self, conn: apsw.Connection) -> BagLayout:
        if self._bag_layout is None:
            found = _rows(conn, "SELECT value FROM search_meta WHERE key = 'bag_layout'")
            self._bag_layout = BagLayout(found[0][0] if found else "columns")  # a file created before the key existed
        return self._bag_layout

    def _forget(self) -> None:
        self._layout = None
        self._typo_layout = None
        self._bag_layout = None
        self._tenants.clear()
        self._known_terms.clear()
        self._facet_groups.clear()
        self._held_before = None

    def _open(self) -> apsw.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = apsw.Connection(str(self.path))
        conn.set_busy_timeout(30_000)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        # A drain batch of 1,000 conversations grows the WAL to tens of MB; without a limit the
        # file keeps that size after every checkpoint.
        conn.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
        conn.execute("PRAGMA temp_store=MEMORY")
        return conn

    def _connect(self) -> apsw.Connection:
        conn = self._open()
        version = _rows(conn, "PRAGMA user_version")[0][0]
        if version != SCHEMA_VERSION:
            # A file written by another version: its tables cannot be read, so they are recreated
            # empty; an older file held conversations that only a rebuild brings back.
            self._create(conn, upgraded_from=version or None)
            if version:
                log.warning("search_index_schema_upgraded", path=str(self.path), from_version=version,
                            to_version=SCHEMA_VERSION, action="run `parley index rebuild`")
        return conn

    def _create(self, conn: apsw.Connection, upgraded_from: int | None = None, keep_tenants: bool = False) -> None:
        with _writing(conn):
            for table in TABLES:
                if not (keep_tenants and table == "search_tenant"):
                    conn.execute(f"DROP TABLE IF EXISTS {table}")
            for statement in SCHEMA:
                conn.execute(statement)
            conn.execute("INSERT INTO search_meta (key, value) VALUES ('rowid_layout', ?)", (ROWID_LAYOUT,))
            conn.execute("INSERT INTO search_meta (key, value) VALUES ('typo_layout', ?)", (TYPO_LAYOUT,))
            conn.execute("INSERT INTO search_meta (key, value) VALUES ('bag_layout', ?)", (BAG_LAYOUT,))
            conn.execute("INSERT INTO search_meta (key, value) VALUES ('analyzer', ?)", (str(ANALYZER_VERSION),))
            if upgraded_from is not None:
                conn.execute("INSERT INTO search_meta (key, value) VALUES ('upgraded_from', ?)", (str(upgraded_from),))
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        _reclaim(conn, switch_on=True)  # the dropped tables' pages; cheap, the new ones are empty
        self._forget()

    async def open(self) -> None:
        await self._run(lambda conn: None)

    async def close(self) -> None:
        def close(conn: apsw.Connection) -> None:
            conn.close()
            self._conn = None

        if self._conn is not None:
            await self._run(close)

    async def status(self) -> BackendStatus:
        def check(conn: apsw.Connection) -> BackendStatus:
            detail = f"sqlite fts5 ({self.path.name}, schema {SCHEMA_VERSION}, SQLite {apsw.sqlite_lib_version()})"
            upgraded = _rows(conn, "SELECT value FROM search_meta WHERE key = 'upgraded_from'")
            if upgraded:
                # Still answers (ok): what was ingested since the upgrade is found, the rest is not.
                detail += f"; upgraded from schema {upgraded[0][0]}: run `parley index rebuild` to index earlier conversations"
            older = [f"{part}: {name}" for part, name, current in (
                ("rowids", self._rowid_layout(conn), ROWID_LAYOUT), ("typo vocabulary", self._typos(conn).name, TYPO_LAYOUT),
                ("bag", self._bag(conn).name, BAG_LAYOUT)) if name != current]
            if older:
                detail += f"; written in an earlier layout ({', '.join(older)}): `parley index rebuild` rewrites it smaller"
            analyzer = _rows(conn, "SELECT value FROM search_meta WHERE key = 'analyzer'")
            written = int(analyzer[0][0]) if analyzer else 1  # a file created before the key existed
            if written != ANALYZER_VERSION:
                detail += (f"; holds conversations analysed by analyzer {written} (now {ANALYZER_VERSION}): "
                           "`parley index rebuild` re-analyses them")
            return BackendStatus(ok=True, detail=detail)

        return await self._run(check)

    async def refresh(self) -> None:
        return None

    async def compact(self) -> CompactReport:
        """Each FTS table merged into one segment (FTS5 ``optimize``: drains leave a table in
        many, holding entries superseded by deletes), then the freed pages cut from the file.
        On its own connection, outside the lock: searches keep reading (WAL) while it writes;
        a drain waits for the write lock (30 s busy timeout, else its batch stays in the outbox
        for the next tick)."""

        def compact() -> CompactReport:
            started, before = time.monotonic(), _file_bytes(self.path)
            conn = self._open()
            try:
                for table in FTS_TABLES:
                    conn.execute(f"INSERT INTO {table}({table}) VALUES('optimize')")
                reclaimed = _reclaim(conn, switch_on=False)
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                conn.close()
            self._written, self._held_before = 0, None
            detail = "fts5 optimize, incremental vacuum" if reclaimed else (
                "fts5 optimize; the file keeps the freed pages for later writes until `parley index rebuild` recreates it")
            return CompactReport(bytes_before=before, bytes_after=_file_bytes(self.path),
                                 seconds=round(time.monotonic() - started, 3), detail=detail)

        return await asyncio.to_thread(compact)

    async def reset(self) -> None:
        # Tenant numbers are kept: a server next to the rebuild may hold them for a moment
        # longer, and a number given to another tenant would point its searches at that tenant's
        # rowid range.
        await self._run(lambda conn: self._create(conn, keep_tenants=True))

    def _tenant(self, conn: apsw.Connection, tenant_id: UUID, create: bool) -> int | None:
        found = self._tenants.get(tenant_id)
        if found is None:
            if create:
                conn.execute("INSERT OR IGNORE INTO search_tenant (tenant) VALUES (?)", (tenant_id.bytes,))
            rows = _rows(conn, "SELECT id FROM search_tenant WHERE tenant = ?", (tenant_id.bytes,))
            if not rows:
                return None
            found = self._tenants[tenant_id] = rows[0][0]
        return found

    async def index(self, docs: list[IndexDoc]) -> None:
        if docs:
            await self._run(self._index_or_forget, docs)

    def _index_or_forget(self, conn: apsw.Connection, docs: list[IndexDoc]) -> None:
        try:
            self._index(conn, docs)
        except BaseException:
            # Rolled back: the terms and facet groups this batch wrote are not in the file.
            self._forget()
            raise
        self._written += len(docs)

    async def compaction_due(self) -> bool:
        """Enough written since the last compaction that merging now pays (see COMPACT_AFTER).
        Counted in this process: after a restart the nightly job catches what came before."""
        if self._written < COMPACT_AFTER:
            return False
        if self._held_before is None:  # counted once per compaction, not on every idle drain tick
            held = await self._run(lambda conn: _rows(conn, "SELECT count(*) FROM search_doc")[0][0])
            self._held_before = max(0, held - self._written)
        return bool(self._written >= COMPACT_SHARE * (self._held_before + self._written))

    def _facet_group(self, conn: apsw.Connection, tenant: int, doc: IndexDoc) -> int:
        labels = json.dumps({"agent": doc.agent_ids, "tag": doc.tags}, sort_keys=True)
        key = (tenant, doc.site, doc.channel, doc.language, _micros(doc.started_at) // DAY_MICROS, labels)
        found = self._facet_groups.get(key)
        if found is None:
            if len(self._facet_groups) > FACET_GROUPS_LIMIT:
                self._facet_groups.clear()
            conn.execute("INSERT INTO search_facet (tenant, site, channel, language, day, labels) VALUES (?, ?, ?, ?, ?, ?)"
                         " ON CONFLICT DO NOTHING", key)
            found = self._facet_groups[key] = _rows(
                conn, "SELECT id FROM search_facet WHERE tenant = ? AND site = ? AND channel = ? AND language = ? AND day = ? AND labels = ?",
                key)[0][0]
        return found

    def _index(self, conn: apsw.Connection, docs: list[IndexDoc]) -> None:
        labels: list[tuple[int, str, str]] = []
        texts: list[tuple[Any, ...]] = []
        bags: list[tuple[Any, ...]] = []
        typos: list[tuple[int, str]] = []
        layout, bag = self._typos(conn), self._bag(conn)
        with _writing(conn):
            for doc in docs:
                tenant = self._tenant(conn, doc.tenant_id, create=True)
                assert tenant is not None
                old = _rows(conn, "SELECT rowid FROM search_doc WHERE conversation = ?", (doc.conversation_id.bytes,))
                if old:
                    _delete_rows(conn, old[0][0])
                rowid = _free_rowid(conn, tenant, doc.started_at, SLOT_BITS[self._rowid_layout(conn)])
                conn.execute(
                    "INSERT INTO search_doc (rowid, tenant, conversation, site, channel, language, started_at, visitor_hash, facet)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (rowid, tenant, doc.conversation_id.bytes, doc.site, doc.channel, doc.language, _micros(doc.started_at),
                     _packed(doc.visitor_hash), self._facet_group(conn, tenant, doc)),
                )
                labels += [(rowid, "agent", a) for a in doc.agent_ids] + [(rowid, "tag", t) for t in doc.tags]
                texts.append((rowid, *(doc.columns.get(c, "") for c in TEXT_COLUMNS)))
                bags.append((rowid, *bag.row(doc.columns)))
                typos += self._new_typos(doc.typos, layout)
            conn.executemany("INSERT OR IGNORE INTO search_label (doc, kind, value) VALUES (?, ?, ?)", labels)
            conn.executemany(f"INSERT INTO search_fts (rowid, {', '.join(TEXT_COLUMNS)}) VALUES (?, ?, ?, ?, ?)", texts)
            conn.executemany(f"INSERT INTO search_bag (rowid, {', '.join(bag.columns)}) VALUES (?{', ?' * len(bag.columns)})", bags)
            conn.executemany("INSERT INTO search_typo (rowid, deletions) VALUES (?, ?)", typos)

    def _new_typos(self, neighbourhoods: dict[str, tuple[str, ...]], layout: TypoLayout) -> Iterable[tuple[int, str]]:
        """Vocabulary rows for the terms this process has not written yet. Terms are keyed per
        tenant, so one vocabulary serves every tenant. (Known by the whole term: two terms may
        share a ``narrow`` row, and each must add its deletions to it.)"""
        if len(self._known_terms) > KNOWN_TERMS_LIMIT:
            self._known_terms.clear()
        for term, neighbourhood in neighbourhoods.items():
            value = int(term, 16)
            if value not in self._known_terms:
                self._known_terms.add(value)
                # The term's own token (first) is left out: a typo query asks search_fts for the
                # terms it would meet through it directly (``Match.typo_terms``), which is a
                # ninth of the vocabulary spared. Files written before kept it; both answer alike.
                yield layout.row(term), " ".join(layout.key(d) for d in neighbourhood[1:])

    async def delete(self, tenant_id: UUID, conversation_ids: list[UUID]) -> None:
        def delete(conn: apsw.Connection) -> None:
            tenant = self._tenant(conn, tenant_id, create=False)
            if tenant is None:
                return
            with _writing(conn):
                for cid in conversation_ids:
                    rows = _rows(conn, "SELECT rowid FROM search_doc WHERE conversation = ? AND tenant = ?", (cid.bytes, tenant))
                    if rows:
                        _delete_rows(conn, rows[0][0])

        if conversation_ids:
            await self._run(delete)

    async def search(self, plan: Plan) -> SearchPage:
        return await self._run(self._search, plan)

    def _search(self, conn: apsw.Connection, plan: Plan) -> SearchPage:
        tenant = self._tenant(conn, plan.tenant_id, create=False)
        if tenant is None:
            return SearchPage(total=0, hits=[], facets={name: {} for name in plan.facets})
        query = _Query(conn, plan, tenant, self._typos(conn), self._bag(conn))
        facets: dict[str, dict[str, int]] = {}
        if query.text_only and not plan.facets and plan.sort != "relevance" and query.rowids_follow_time():
            # Newest/oldest first: counting the matches is half the cost of collecting them, and
            # a page of many matches is found without them (``walk``).
            total = _rows(conn, f"SELECT count(*) FROM ({query.matching})", query.matching_params)[0][0]
            if total > SORT_LIMIT:
                return _page(total, query.walk(), facets)
        # Matches of a text query are collected once (the FTS sub-selects run once), then counted,
        # faceted and paged from the temporary table; a filter-only query is served by the
        # tenant's time index directly, unless it asks for facets.
        matched = query.text or bool(plan.facets)
        if matched:
            conn.execute("DROP TABLE IF EXISTS temp.matched")
            conn.execute("CREATE TEMP TABLE matched (id INTEGER PRIMARY KEY)")
            if plan.sort == "relevance" and query.scored_alike and query.rank():
                # An OR of words by relevance: the scored rows are the matches (``scored_alike``),
                # so the FTS tables are read once, for the scores (a tenth less time on a query
                # that matches every conversation).
                conn.execute("INSERT INTO temp.matched SELECT id FROM temp.ranked")
            elif query.text_only:  # straight from the FTS tables: search_doc is not read at all
                conn.execute(f"INSERT INTO temp.matched {query.matching}", query.matching_params)
            else:
                conn.execute(f"INSERT INTO temp.matched SELECT d.rowid FROM search_doc d WHERE {query.where}", query.params)
            total = conn.changes()
            facets = _facets(conn, tenant, plan.facets, total) if plan.facets else {}
        else:
            total = _rows(conn, f"SELECT count(*) FROM search_doc d WHERE {query.where}", query.params)[0][0]
        return _page(total, query.page(total, matched) if total else [], facets)


def _page(total: int, rows: list[tuple[Any, ...]], facets: dict[str, dict[str, int]]) -> SearchPage:
    return SearchPage(total=total, hits=[ScoredId(UUID(bytes=r[0]), float(r[1]), _from_micros(r[2])) for r in rows], facets=facets)


def _facets(conn: apsw.Connection, tenant: int, names: tuple[str, ...], total: int) -> dict[str, dict[str, int]]:
    """Counts over ``temp.matched`` per facet group (conversations that share their site,
    channel, language, day, agents and tags count together); the top values of each facet,
    most frequent first. Exact either way: a dense match set is counted along the tenant's
    ``(tenant, facet)`` index (no sort), a sparse one is grouped from the matches, and a query
    that matches every conversation of the tenant needs no membership test at all (a third of
    the cost at 50,000 conversations)."""
    size = _rows(conn, "SELECT count(*) FROM search_doc WHERE tenant = ?", (tenant,))[0][0]
    along_index = "SELECT d.facet AS id, count(*) AS n FROM search_doc d INDEXED BY search_doc_tenant_facet WHERE d.tenant = ?"
    params: tuple[Any, ...] = (tenant,)
    if total >= size:
        groups = f"{along_index} GROUP BY d.facet"
    elif total >= size * DENSE_FACETS:
        groups = f"{along_index} AND +d.rowid IN (SELECT id FROM temp.matched) GROUP BY d.facet"
    else:
        groups, params = "SELECT d.facet AS id, count(*) AS n FROM temp.matched m CROSS JOIN search_doc d ON d.rowid = m.id GROUP BY d.facet", ()
    return _facet_counts(_rows(
        conn, f"SELECT g.site, g.channel, g.language, g.day, g.labels, c.n FROM ({groups}) c JOIN search_facet g ON g.id = c.id", params), names)


def _facet_counts(groups: list[tuple[Any, ...]], names: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """``(site, channel, language, day, labels, n)`` per facet group → the top values of each
    facet. Thousands of groups share a few hundred days and label sets: each is decoded once."""
    counts: dict[str, Counter[str]] = {name: Counter() for name in names}
    days: dict[int, list[str]] = {}
    labels_of: dict[str, dict[str, list[str]]] = {}
    for site, channel, language, day, labels, n in groups:
        if day not in days:
            days[day] = [_from_micros(day * DAY_MICROS).strftime("%Y-%m-%d")]
        if labels not in labels_of:
            labels_of[labels] = json.loads(labels)
        values: dict[str, list[str]] = {"site": [site], "channel": [channel], "language": [language], "day": days[day], **labels_of[labels]}
        for name in names:
            counter = counts[name]
            for value in values[name]:
                counter[value] += n
    return {name: dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[:DAY_LIMIT if name == "day" else FACET_LIMIT])
            for name, c in counts.items()}


class _Query:
    """One search: its WHERE clause over ``search_doc d`` and the page of hits."""

    def __init__(self, conn: apsw.Connection, plan: Plan, tenant: int, typo: TypoLayout, bag: BagLayout) -> None:
        self.conn, self.plan, self.tenant, self.typo, self.bag = conn, plan, tenant, typo, bag
        self.bounds = tenant_rowids(tenant)
        self._expanded: dict[tuple[str, ...], list[str]] = {}
        self._prefixes: dict[tuple[str, tuple[str, ...]], str] = {}
        self.text = bool(positive_text(plan.tree))
        self.text_only = text_only(plan.tree)
        self.scored_alike = scored_alike(plan.tree)
        self.ranked: bool | None = None  # rank() ran: whether there was anything to rank by
        matcher = self.compiler()
        self.matching = matcher.matching(plan.tree) if self.text_only else ""
        self.matching_params = matcher.params
        compiler = self.compiler()
        if self.text:  # the tenant is its rowid range; the FTS sub-selects drive
            self.where = f"d.rowid BETWEEN ? AND ? AND {compiler.sql(plan.tree)}"
            self.params: list[Any] = [*self.bounds, *compiler.params]
        else:  # filters only: the tenant's time index is the plan
            self.where = f"d.tenant = ? AND {compiler.sql(plan.tree)}"
            self.params = [tenant, *compiler.params]

    def compiler(self, bounds: tuple[int, int] | None = None) -> _Compiler:
        return _Compiler(self.plan, self.expand, bounds or self.bounds, self.bag_prefix, self.bag)

    def bag_prefix(self, token: str, columns: list[str]) -> str:
        """A prefix query's MATCH on the bag (read from the term dictionary once per search)."""
        key = (token, tuple(columns))
        found = self._prefixes.get(key)
        if found is None:
            found = self._prefixes[key] = self.bag.prefix(token, columns, self.conn)
        return found

    def expand(self, tokens: list[str]) -> list[str]:
        """Typo tokens → the terms in the tenant's vocabulary they were cut from."""
        if not tokens:
            return []
        key = tuple(tokens)
        found = self._expanded.get(key)
        if found is None:
            rows = _rows(self.conn, "SELECT rowid FROM search_typo WHERE search_typo MATCH ?",
                         (" OR ".join(sorted({self.typo.key(t) for t in tokens})),))
            found = self._expanded[key] = sorted(self.typo.terms(r[0]) for r in rows)
        return found

    def page(self, total: int, matched: bool) -> list[tuple[Any, ...]]:
        """One page of (conversation, score, started_at); ``matched``: the matches are in
        ``temp.matched``."""
        plan, cursor = self.plan, self.plan.cursor
        source, where, params = "search_doc d", self.where, self.params
        if matched:
            source, where, params = "temp.matched m CROSS JOIN search_doc d ON d.rowid = m.id", "1", []  # m drives
        if plan.sort == "relevance" and self.rank():
            rows = self._best(cursor.offset + plan.size) if matched else None
            if rows is None:
                rows = _rows(
                    self.conn,
                    f"SELECT d.conversation, coalesce(-r.score, 0.0), d.started_at FROM {source}"
                    f" LEFT JOIN temp.ranked r ON r.id = d.rowid WHERE {where}"
                    " ORDER BY coalesce(r.score, 0.0) ASC, d.started_at DESC, d.conversation DESC LIMIT ? OFFSET ?",
                    (*params, plan.size, cursor.offset),
                )
            else:
                rows = rows[cursor.offset:]
            self.conn.execute("DROP TABLE temp.ranked")
            return rows
        descending = plan.sort != "oldest"
        order = "DESC" if descending else "ASC"
        if matched and total > SORT_LIMIT:
            # Many matches: walk the tenant's time index from the newest (or oldest) end, keep
            # the rows that matched, stop after one page (about size × tenant / matches rows).
            source = "search_doc d INDEXED BY search_doc_tenant_started"
            where, params = "d.tenant = ? AND +d.rowid IN (SELECT id FROM temp.matched)", [self.tenant]
        offset = cursor.offset if plan.sort == "relevance" else 0  # newest/oldest page by keyset
        if cursor.started_at is not None and plan.sort != "relevance":
            where += f" AND (d.started_at, d.conversation) {'<' if descending else '>'} (?, ?)"
            params = [*params, _iso_micros(cursor.started_at), UUID(cursor.conversation).bytes if cursor.conversation else b""]
        return _rows(
            self.conn,
            f"SELECT d.conversation, 0.0, d.started_at FROM {source} WHERE {where}"
            f" ORDER BY d.started_at {order}, d.conversation {order} LIMIT ? OFFSET ?",
            (*params, plan.size, offset),
        )

    def _timeline(self) -> apsw.Cursor:
        """The tenant's conversations from the cursor on, newest (oldest) first: (rowid,
        conversation, started_at)."""
        plan, cursor = self.plan, self.plan.cursor
        order = "ASC" if plan.sort == "oldest" else "DESC"
        params: tuple[Any, ...]
        where, params = "tenant = ?", (self.tenant,)
        if cursor.started_at is not None:
            where += f" AND (started_at, conversation) {'>' if order == 'ASC' else '<'} (?, ?)"
            params += (_iso_micros(cursor.started_at), UUID(cursor.conversation).bytes if cursor.conversation else b"")
        return self.conn.execute(
            f"SELECT rowid, conversation, started_at FROM search_doc INDEXED BY search_doc_tenant_started WHERE {where}"
            f" ORDER BY started_at {order}, conversation {order}", params)

    def rowids_follow_time(self) -> bool:
        """Whether the first chunk of the walk holds most of the conversations in its rowid range.
        Rowids follow start times (``_free_rowid``), but a start time in a second already full
        takes the next free rowid, possibly far later; the FTS range reads of ``walk`` cost what
        the range holds, and if that is much more than the chunk, collecting the matches once
        is cheaper."""
        timeline = self._timeline()
        try:
            rowids = [r[0] for r in itertools.islice(timeline, WALK_CHUNK)]
        finally:
            timeline.close()
        if not rowids:
            return False
        limit = WALK_SPREAD * len(rowids)
        inside = _rows(self.conn, "SELECT count(*) FROM (SELECT 1 FROM search_doc WHERE rowid BETWEEN ? AND ? LIMIT ?)",
                       (min(rowids), max(rowids), limit))[0][0]
        return bool(inside < limit)

    def walk(self) -> list[tuple[Any, ...]]:
        """A newest (oldest) first page of a text-only query with many matches, without
        collecting them: the tenant's time index is read from the cursor a chunk at a time, and
        the FTS tables are asked which rowids in the chunk's rowid range match (rowids follow
        arrival, which follows time closely, so the range stays narrow). The chunk starts at
        WALK_CHUNK rows and doubles until the page is full."""
        plan, timeline = self.plan, self._timeline()
        page: list[tuple[Any, ...]] = []
        size = WALK_CHUNK
        try:
            while len(page) < plan.size:
                chunk = list(itertools.islice(timeline, size))
                if not chunk:
                    break
                ranged = self.compiler((min(r[0] for r in chunk), max(r[0] for r in chunk)))
                found = {r[0] for r in _rows(self.conn, ranged.matching(plan.tree), ranged.params)}
                page += [(conversation, 0.0, started_at) for rowid, conversation, started_at in chunk if rowid in found]
                size *= 2
        finally:
            timeline.close()
        return page[:plan.size]

    def _best(self, needed: int) -> list[tuple[Any, ...]] | None:
        """The ``needed`` best-scored matches in page order, or None when fewer than that many
        matches have a score (the rest, unscored, follow newest first). One bounded sort over
        the scores finds them with every match that ties the last one; only those rows are read
        from search_doc, and ordered by (score, started_at, conversation) exactly as sorting
        every match would order them."""
        matched = "" if self.scored_alike else " AND r.id IN (SELECT id FROM temp.matched)"  # else every scored row matched
        best = _rows(self.conn, f"SELECT r.id, r.score FROM temp.ranked r WHERE true{matched} ORDER BY r.score LIMIT ?",
                     (needed + TIE_MARGIN,))
        if len(best) < needed:
            return None
        worst = best[needed - 1][1]
        if len(best) == needed + TIE_MARGIN and best[-1][1] == worst:  # the tie may go on: take all of it
            best = _rows(self.conn, f"SELECT r.id, r.score FROM temp.ranked r WHERE r.score <= ?{matched}", (worst,))
        scores = {rowid: score for rowid, score in best if score <= worst}
        rows = _rows(self.conn, "SELECT rowid, conversation, started_at FROM search_doc WHERE rowid IN (SELECT value FROM json_each(?))",
                     (json.dumps(list(scores)),))
        rows.sort(key=lambda r: (scores[r[0]], -r[2], _Descending(r[1])))
        return [(conversation, -scores[rowid], started_at) for rowid, conversation, started_at in rows[:needed]]

    def rank(self) -> bool:
        """Scores into ``temp.ranked`` (BM25 over the query's words, plus the form and
        exact-spelling bonuses), once per search; False when the query has no words to rank by.
        Materialised: as a joined sub-select SQLite would re-run the MATCH per row."""
        if self.ranked is None:
            self.ranked = self._rank()
        return self.ranked

    def _rank(self) -> bool:
        plan, ranker = self.plan, self.compiler()
        words: list[str] = []
        bonuses: list[tuple[str, str, float]] = []  # (MATCH on search_fts, MATCH on search_bag, score)
        boosts: list[str] = []  # MATCH on search_bag: the exact spellings
        for leaf in positive_text(plan.tree):
            if isinstance(leaf, Match):
                words.append(f"{_columns(plan.text_columns())} : ({' OR '.join(_quote(s) for s in leaf.sequences)})")
                typo = Match([], typos=leaf.typos, typo_terms=leaf.typo_terms)
                in_text = ranker.text_match(typo) if leaf.typo_terms or self.expand(leaf.typos) else ""
                if in_text or leaf.forms:
                    bonuses.append((in_text, ranker.bag_match(leaf.forms) if leaf.forms else "", FORM_SCORE))
                if leaf.boost:
                    boosts.append(ranker.bag_match(leaf.boost))
            elif isinstance(leaf, NearMatch):
                words.append((ranker.fts(leaf) or ("", ""))[1])
        if not words:
            return False
        self.conn.execute("DROP TABLE IF EXISTS temp.ranked")
        self.conn.execute("CREATE TEMP TABLE ranked (id INTEGER PRIMARY KEY, score REAL)")
        # bm25 is negative (lower is better), so bonuses are added negated; conversations matched
        # only through prefixes or filters rank after those matched by words.
        self.conn.execute(
            "INSERT INTO temp.ranked SELECT rowid, bm25(search_fts) FROM search_fts WHERE search_fts MATCH ? AND rowid BETWEEN ? AND ?",
            (" OR ".join(f"({w})" for w in words), *self.bounds),
        )
        for in_text, in_bag, bonus in bonuses:
            sources = [f"SELECT rowid AS id FROM {table} WHERE {table} MATCH ? AND rowid BETWEEN ? AND ?"
                       for table, match in (("search_fts", in_text), ("search_bag", in_bag)) if match]
            self.conn.execute(
                f"INSERT INTO temp.ranked SELECT id, ? FROM ({' UNION '.join(sources)}) WHERE true"
                " ON CONFLICT (id) DO UPDATE SET score = score + excluded.score",
                (-bonus, *(v for match in (in_text, in_bag) if match for v in (match, *self.bounds))),
            )
        for in_bag in boosts:  # an exact spelling raises a score, never adds a row (``scored_alike``)
            self.conn.execute(
                "UPDATE temp.ranked SET score = score - ? WHERE id IN (SELECT rowid FROM search_bag WHERE search_bag MATCH ? AND rowid BETWEEN ? AND ?)",
                (EXACT_BOOST, in_bag, *self.bounds),
            )
        return True


class _Descending:
    """Sorts bytes in reverse (conversation ids break ties newest-id first, as in SQL)."""

    __slots__ = ("value",)

    def __init__(self, value: bytes) -> None:
        self.value = value

    def __lt__(self, other: "_Descending") -> bool:
        return self.value > other.value


def _rows(conn: apsw.Connection, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
    """A query's rows. apsw types every value as any SQLite value; the schema fixes each column's."""
    return conn.execute(sql, tuple(params)).fetchall()


def _file_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*") if p.is_file())


def _reclaim(conn: apsw.Connection, switch_on: bool) -> bool:
    """Give free pages back to the file system: the file is in incremental auto-vacuum mode.
    Switching a file to it takes a VACUUM, which rewrites the file: done when the tables are
    (re)created and the file is nearly empty (``switch_on``), never by the nightly compaction,
    which on a file created before this release leaves free pages to later writes. False then."""
    if _rows(conn, "PRAGMA auto_vacuum")[0][0] == INCREMENTAL_VACUUM:
        _rows(conn, "PRAGMA incremental_vacuum")  # frees a page per step: stepped to the end
        return True
    if switch_on:
        conn.execute(f"PRAGMA auto_vacuum = {INCREMENTAL_VACUUM}")
        conn.execute("VACUUM")
        return True
    return False


@contextmanager
def _writing(conn: apsw.Connection) -> Iterator[None]:
    """One write transaction, taking the write lock up front (a deferred one that upgrades can
    fail outright when another process wrote in between)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _delete_rows(conn: apsw.Connection, rowid: int) -> None:
    for table in ("search_fts", "search_bag", "search_doc"):
        conn.execute(f"DELETE FROM {table} WHERE rowid = ?", (rowid,))
    conn.execute("DELETE FROM search_label WHERE doc = ?", (rowid,))
