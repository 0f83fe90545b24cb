"""The embedded index: SQLite FTS5 in its own file (``<data dir>/search.sqlite3``).

The index is derived data, rebuilt from the store by ``parley index rebuild``; its schema carries a
version in ``PRAGMA user_version`` and is recreated empty (then refilled through the outbox or a
rebuild) when that version changes. A separate file keeps index writes off the store's write lock.

Text columns (``t_<sender>``) keep positions for phrases and NEAR; prefix n-grams live in a second
FTS5 table and the bag of other forms (exact spellings, transliteration keys, typo neighbourhoods)
in a third, both ``detail=column`` (sender filters need columns, bags need no positions). Tokens
are base32 (letters and digits), so the ``ascii`` tokenizer is exact. Filters (site, channel, tags, dates…) are plain columns of
``search_doc``; a query becomes SQL around one or more FTS ``MATCH`` sub-selects.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, TypeVar
from uuid import UUID

from archive.search.backend import FACETS, BackendStatus, IndexDoc, ScoredId, SearchPage
from archive.search.plan import (
    SENDERS,
    All,
    AnyOf,
    Cursor,
    Everything,
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

SCHEMA_VERSION = 3
TEXT_COLUMNS = [f"t_{s}" for s in SENDERS]
PREFIX_COLUMNS = [f"p_{s}" for s in SENDERS]
FORM_COLUMNS = [f"f_{s}" for s in SENDERS]
TABLES = ("search_forms", "search_prefix", "search_fts", "search_label", "search_doc")
# Ranking: conversations matched through a form (a transliteration, a typo) score this much per
# query word; holding the exact, unfolded spelling adds EXACT_BOOST.
FORM_SCORE = 1.0
EXACT_BOOST = 3.0
SCHEMA = [
    """CREATE TABLE search_doc (
        rowid INTEGER PRIMARY KEY, tenant TEXT NOT NULL, conversation TEXT NOT NULL UNIQUE,
        site TEXT NOT NULL, channel TEXT NOT NULL, language TEXT NOT NULL, started_at TEXT NOT NULL,
        agent_ids TEXT NOT NULL, tags TEXT NOT NULL, visitor_hash TEXT NOT NULL)""",
    "CREATE INDEX search_doc_tenant_started ON search_doc (tenant, started_at, rowid)",
    # Agent ids and tags, one row each, so facets are an indexed GROUP BY instead of json_each.
    "CREATE TABLE search_label (doc INTEGER NOT NULL, kind TEXT NOT NULL, value TEXT NOT NULL)",
    "CREATE INDEX search_label_doc ON search_label (doc, kind)",
    f"CREATE VIRTUAL TABLE search_fts USING fts5({', '.join(TEXT_COLUMNS)}, tokenize='ascii', detail=full)",
    f"CREATE VIRTUAL TABLE search_prefix USING fts5({', '.join(PREFIX_COLUMNS)}, tokenize='ascii', detail=column)",
    f"CREATE VIRTUAL TABLE search_forms USING fts5({', '.join(FORM_COLUMNS)}, tokenize='ascii', detail=column)",
]
FACET_SQL = {
    "site": "SELECT d.site, count(*) FROM search_doc d WHERE d.rowid IN ({ids}) GROUP BY 1",
    "channel": "SELECT d.channel, count(*) FROM search_doc d WHERE d.rowid IN ({ids}) GROUP BY 1",
    "language": "SELECT d.language, count(*) FROM search_doc d WHERE d.rowid IN ({ids}) GROUP BY 1",
    "agent": "SELECT l.value, count(*) FROM search_label l WHERE l.kind = 'agent' AND l.doc IN ({ids}) GROUP BY 1",
    "tag": "SELECT l.value, count(*) FROM search_label l WHERE l.kind = 'tag' AND l.doc IN ({ids}) GROUP BY 1",
    "day": "SELECT substr(d.started_at, 1, 10), count(*) FROM search_doc d WHERE d.rowid IN ({ids}) GROUP BY 1",
}
FACET_LIMIT = 50

T = TypeVar("T")


def _quote(tokens: list[str]) -> str:
    return '"' + " ".join(tokens) + '"'


def _columns(columns: list[str]) -> str:
    return "{" + " ".join(columns) + "}"


class _Compiler:
    """PlanNode → SQL over ``search_doc d``. Text leaves become FTS MATCH sub-selects; an AND or
    OR whose children are all text is merged into one MATCH expression."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.params: list[Any] = []

    def text_match(self, node: Match) -> str:
        body = " OR ".join(_quote(seq) for seq in node.sequences)
        return f"{_columns(self.plan.text_columns())} : ({body})"

    def forms_match(self, tokens: list[str]) -> str:
        return f"{_columns(self.plan.form_columns())} : ({' OR '.join(tokens)})"

    def fts(self, node: PlanNode) -> tuple[str, str] | None:
        """(table, MATCH expression) when ``node`` is expressible in one FTS table."""
        if isinstance(node, Match):
            if node.forms:
                return None  # two tables: see sql()
            return "search_fts", self.text_match(node)
        if isinstance(node, NearMatch):
            body = " OR ".join(f"NEAR({_quote(a)} {_quote(b)}, {node.distance})" for a, b in node.pairs)
            return "search_fts", f"{_columns(self.plan.text_columns())} : ({body})"
        if isinstance(node, PrefixMatch):
            return "search_prefix", f"{_columns(self.plan.prefix_columns())} : {_quote([node.token])}"
        if isinstance(node, (All, AnyOf)):
            parts = [self.fts(c) for c in node.children]
            if all(p is not None for p in parts) and len({p[0] for p in parts if p}) == 1:
                joiner = " AND " if isinstance(node, All) else " OR "
                return parts[0][0], joiner.join(f"({p[1]})" for p in parts if p)  # type: ignore[index]
        return None

    def sql(self, node: PlanNode) -> str:
        merged = self.fts(node)
        if merged is not None:
            table, expression = merged
            self.params.append(expression)
            return f"d.rowid IN (SELECT rowid FROM {table} WHERE {table} MATCH ?)"
        if isinstance(node, Match):  # words or their forms
            self.params += [self.text_match(node), self.forms_match(node.forms)]
            return ("d.rowid IN (SELECT rowid FROM search_fts WHERE search_fts MATCH ?"
                    " UNION SELECT rowid FROM search_forms WHERE search_forms MATCH ?)")
        if isinstance(node, FieldIs):
            return self.field(node)
        if isinstance(node, StartedIn):
            parts = []
            if node.start is not None:
                parts.append("d.started_at >= ?")
                self.params.append(iso_utc(node.start))
            if node.end is not None:
                parts.append("d.started_at < ?")
                self.params.append(iso_utc(node.end))
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
        if node.name == "tag":
            return "EXISTS (SELECT 1 FROM json_each(d.tags) WHERE value = ?)"
        if node.name == "agent":
            return "EXISTS (SELECT 1 FROM json_each(d.agent_ids) WHERE value = ?)"
        if node.name == "lang":
            self.params.append(node.value.lower() + "-%")
            return "(lower(d.language) = lower(?) OR lower(d.language) LIKE ?)"
        column = {"visitor": "visitor_hash", "site": "site", "channel": "channel"}[node.name]
        return f"d.{column} = ?"


class SqliteFtsBackend:
    name = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    # Every call runs in a worker thread; one connection, serialised by a lock (FTS5 writes are
    # single-writer anyway, and searches are short).
    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(self._locked, fn, *args)

    def _locked(self, fn: Callable[..., T], *args: Any) -> T:
        with self._lock:
            if self._conn is None:
                self._conn = self._connect()
            return fn(self._conn, *args)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
            self._create(conn)
        return conn

    @staticmethod
    def _create(conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        for table in TABLES:
            conn.execute(f"DROP TABLE IF EXISTS {table}")
        for statement in SCHEMA:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")

    async def open(self) -> None:
        await self._run(lambda conn: None)

    async def close(self) -> None:
        def close(conn: sqlite3.Connection) -> None:
            conn.close()
            self._conn = None

        if self._conn is not None:
            await self._run(close)

    async def status(self) -> BackendStatus:
        def check(conn: sqlite3.Connection) -> BackendStatus:
            conn.execute("SELECT count(*) FROM search_doc WHERE rowid = 0").fetchone()
            return BackendStatus(ok=True, detail=f"sqlite fts5 ({self.path.name})")

        return await self._run(check)

    async def refresh(self) -> None:
        return None

    async def reset(self) -> None:
        await self._run(self._create)

    async def index(self, docs: list[IndexDoc]) -> None:
        if docs:
            await self._run(self._index, docs)

    @staticmethod
    def _index(conn: sqlite3.Connection, docs: list[IndexDoc]) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            for doc in docs:
                key = str(doc.conversation_id)
                old = conn.execute("SELECT rowid FROM search_doc WHERE conversation = ?", (key,)).fetchone()
                if old is not None:
                    _delete_rows(conn, old[0])
                rowid = conn.execute(
                    "INSERT INTO search_doc (tenant, conversation, site, channel, language, started_at, agent_ids, tags, visitor_hash)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (str(doc.tenant_id), key, doc.site, doc.channel, doc.language, iso_utc(doc.started_at),
                     json.dumps(doc.agent_ids), json.dumps(doc.tags), doc.visitor_hash),
                ).lastrowid
                conn.executemany(
                    "INSERT INTO search_label (doc, kind, value) VALUES (?, ?, ?)",
                    [(rowid, "agent", a) for a in doc.agent_ids] + [(rowid, "tag", t) for t in doc.tags],
                )
                conn.execute(
                    f"INSERT INTO search_fts (rowid, {', '.join(TEXT_COLUMNS)}) VALUES (?, ?, ?, ?, ?)",
                    (rowid, *(doc.columns.get(c, "") for c in TEXT_COLUMNS)),
                )
                conn.execute(
                    f"INSERT INTO search_prefix (rowid, {', '.join(PREFIX_COLUMNS)}) VALUES (?, ?, ?, ?, ?)",
                    (rowid, *(doc.columns.get(c, "") for c in PREFIX_COLUMNS)),
                )
                conn.execute(
                    f"INSERT INTO search_forms (rowid, {', '.join(FORM_COLUMNS)}) VALUES (?, ?, ?, ?, ?)",
                    (rowid, *(doc.columns.get(c, "") for c in FORM_COLUMNS)),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    async def delete(self, tenant_id: UUID, conversation_ids: list[UUID]) -> None:
        def delete(conn: sqlite3.Connection) -> None:
            conn.execute("BEGIN IMMEDIATE")
            for cid in conversation_ids:
                row = conn.execute(
                    "SELECT rowid FROM search_doc WHERE conversation = ? AND tenant = ?", (str(cid), str(tenant_id))
                ).fetchone()
                if row is not None:
                    _delete_rows(conn, row[0])
            conn.execute("COMMIT")

        if conversation_ids:
            await self._run(delete)

    async def search(self, plan: Plan) -> SearchPage:
        return await self._run(self._search, plan)

    @staticmethod
    def _search(conn: sqlite3.Connection, plan: Plan) -> SearchPage:
        compiler = _Compiler(plan)
        where = compiler.sql(plan.tree)
        # With words to match, let the FTS sub-selects drive (the unary + keeps SQLite from
        # scanning the tenant's whole index range first); without, the tenant index is the plan.
        tenant = "+d.tenant" if positive_text(plan.tree) else "d.tenant"
        base = f"FROM search_doc d WHERE {tenant} = ? AND {where}"
        params = [str(plan.tenant_id), *compiler.params]
        conn.execute("DROP TABLE IF EXISTS temp.matched")
        conn.execute("CREATE TEMP TABLE matched (id INTEGER PRIMARY KEY, started_at TEXT)")
        conn.execute(f"INSERT INTO temp.matched SELECT d.rowid, d.started_at {base}", params)
        total = conn.execute("SELECT count(*) FROM temp.matched").fetchone()[0]
        rows = _page(conn, plan, compiler)
        facets = {
            name: {str(k): v for k, v in conn.execute(
                sql.format(ids="SELECT id FROM temp.matched") + f" ORDER BY 2 DESC, 1 LIMIT {FACET_LIMIT if name != 'day' else 366}"
            ).fetchall()}
            for name, sql in FACET_SQL.items()
        }
        conn.execute("DROP TABLE temp.matched")
        return SearchPage(
            total=total,
            hits=[ScoredId(UUID(r[0]), float(r[1]), datetime.fromisoformat(r[2].replace("Z", "+00:00"))) for r in rows],
            facets={k: facets[k] for k in (*FACETS, "day")},
        )


def _delete_rows(conn: sqlite3.Connection, rowid: int) -> None:
    for table in ("search_fts", "search_prefix", "search_forms", "search_doc"):
        conn.execute(f"DELETE FROM {table} WHERE rowid = ?", (rowid,))
    conn.execute("DELETE FROM search_label WHERE doc = ?", (rowid,))


def _page(conn: sqlite3.Connection, plan: Plan, compiler: _Compiler) -> list[tuple[str, float, str]]:
    cursor: Cursor = plan.cursor
    if plan.sort == "relevance":
        ranker = _Compiler(plan)
        words: list[str] = []
        bonuses: list[tuple[str, float]] = []  # (MATCH on search_forms, score)
        for leaf in positive_text(plan.tree):
            if isinstance(leaf, Match):
                words.append(ranker.text_match(leaf))
                if leaf.forms:
                    bonuses.append((ranker.forms_match(leaf.forms), FORM_SCORE))
                if leaf.boost:
                    bonuses.append((ranker.forms_match(leaf.boost), EXACT_BOOST))
            elif isinstance(leaf, NearMatch):
                words.append((ranker.fts(leaf) or ("", ""))[1])
        if words:
            # Materialise the scores once: as a joined sub-select SQLite would re-run the MATCH per
            # row. bm25 is negative (lower is better), so bonuses are added negated; conversations
            # matched only through prefixes or filters rank after those matched by words.
            conn.execute("DROP TABLE IF EXISTS temp.ranked")
            conn.execute("CREATE TEMP TABLE ranked (id INTEGER PRIMARY KEY, score REAL)")
            conn.execute(
                "INSERT INTO temp.ranked SELECT rowid, bm25(search_fts) FROM search_fts WHERE search_fts MATCH ?",
                (" OR ".join(f"({w})" for w in words),),
            )
            for expression, bonus in bonuses:
                conn.execute(
                    "INSERT INTO temp.ranked SELECT rowid, ? FROM search_forms WHERE search_forms MATCH ? AND true"
                    " ON CONFLICT (id) DO UPDATE SET score = score + excluded.score",
                    (-bonus, expression),
                )
            rows = conn.execute(
                "SELECT d.conversation, coalesce(-r.score, 0.0), d.started_at FROM temp.matched m"
                " JOIN search_doc d ON d.rowid = m.id LEFT JOIN temp.ranked r ON r.id = m.id"
                " ORDER BY coalesce(r.score, 0.0) ASC, d.started_at DESC, d.conversation DESC LIMIT ? OFFSET ?",
                (plan.size, cursor.offset),
            ).fetchall()
            conn.execute("DROP TABLE temp.ranked")
            return rows
    descending = plan.sort != "oldest"
    order = "DESC" if descending else "ASC"
    after = ""
    params: list[Any] = []
    if cursor.started_at is not None and plan.sort != "relevance":
        after = f"WHERE (d.started_at, d.conversation) {'<' if descending else '>'} (?, ?)"
        params = [cursor.started_at, cursor.conversation]
    offset = cursor.offset if plan.sort == "relevance" else 0
    return conn.execute(
        f"SELECT d.conversation, 0.0, d.started_at FROM temp.matched m JOIN search_doc d ON d.rowid = m.id {after}"
        f" ORDER BY d.started_at {order}, d.conversation {order} LIMIT ? OFFSET ?",
        (*params, plan.size, offset),
    ).fetchall()
